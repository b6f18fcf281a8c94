// How authentication fits a compiled config (runtime.ts calls AuthSetup):
//
// - Each auth filter that finds its kind of credential either authenticates
//   (sets ex.consumer and the consumer header upstream) or answers 401 at once;
//   one that finds none lets the request on, since another kind may apply.
// - The gate runs after every auth filter of the request (global and route):
//   no consumer yet -> the route's anonymous consumer, or 401 with every
//   applicable challenge in WWW-Authenticate; then the route's `auth.allow`
//   -> 403 for a consumer not listed. Flag UA either way (gRPC clients get
//   UNAUTHENTICATED / PERMISSION_DENIED from the status).
// - Identity headers (every consumer header and claim header any auth filter
//   sets) are removed from every request first, on every route, auth or not:
//   a client never gets to name itself to an upstream.
import type { RouteConfig } from '../../config/schema.js';
import type { Exchange } from '../../exchange/exchange.js';
import { PHASES, type FilterInstance, type FilterResult } from '../types.js';
import { isAuthFilter, type AuthFilter } from './common.js';
import { parseStoredPassword } from './password.js';
import { AUTH_TYPES, compileConsumers, DEFAULT_CONSUMER_HEADER, type Consumers } from './consumers.js';

const AUTH_PHASE = PHASES.indexOf('auth');

/** The first filter of every request: drops client-sent identity headers. */
export interface IdentityStrip extends FilterInstance {
  readonly names: Set<string>;
}

export function identityStrip(): IdentityStrip {
  const names = new Set<string>([DEFAULT_CONSUMER_HEADER]);
  let list: string[] | undefined;
  let op: { remove: string[] } | undefined;
  return {
    type: 'identity_headers',
    phase: 'access',
    names,
    onRequest(ex: Exchange) {
      // Built once, after the config compiled (names are final by the first request).
      list ??= [...names];
      op ??= { remove: list };
      // Most requests carry none: a lookup per name, and a header operation only when one is there.
      const h = ex.req.headers;
      for (let i = 0; i < list.length; i++) {
        if (h[list[i]!] !== undefined) {
          ex.requestHeaderOps.push(op);
          return;
        }
      }
    },
    describe: () => ({ removed: [...names] }),
  };
}

export function createGate(route: string, auth: RouteConfig['auth'], filters: readonly AuthFilter[]): FilterInstance {
  const allow = auth?.allow ? new Set(auth.allow) : undefined;
  const anonymous = auth?.anonymous;
  const challenge = [...new Set(filters.map((f) => f.challenge))].join(', ');
  const consumerHeader = filters[0]!.identityHeaders[0]!;
  return {
    type: 'auth_gate',
    phase: 'auth',
    onRequest(ex: Exchange): FilterResult {
      let who = ex.consumer;
      if (who === undefined) {
        if (anonymous === undefined) {
          ex.vars.rejectedBy = 'auth';
          return { status: 401, flag: 'UA', message: 'authentication required', headers: { 'www-authenticate': challenge } };
        }
        who = anonymous;
        ex.consumer = who;
        ex.requestHeaderOps.push({ set: { [consumerHeader]: who } });
        return undefined;
      }
      if (allow !== undefined && !allow.has(who)) {
        ex.vars.rejectedBy = 'auth';
        return { status: 403, flag: 'UA', message: `consumer ${who} is not allowed on route ${route}` };
      }
      return undefined;
    },
    describe: () => ({ allow: auth?.allow, anonymous, kinds: filters.map((f) => f.type) }),
  };
}

/** The config's consumers, the identity-header strip, and each route's gate. */
export class AuthSetup {
  readonly consumers: Consumers;
  readonly strip = identityStrip();

  constructor(config: { consumers: ReadonlyArray<{ name: string; credentials: ReadonlyArray<{ type: string; [k: string]: unknown }> }>; admin?: { auth?: { basic: ReadonlyArray<{ password: string }> } } }) {
    this.consumers = compileConsumers(config.consumers);
    // The admin API's stored passwords are checked here too, so that a bad one refuses the config rather than a request.
    config.admin?.auth?.basic.forEach((u, i) => {
      try {
        parseStoredPassword(u.password);
      } catch (e) {
        throw new Error(`admin.auth.basic[${i}].password: ${(e as Error).message}`);
      }
    });
  }

  private collect(chain: readonly FilterInstance[]): AuthFilter[] {
    const out = chain.filter(isAuthFilter);
    for (const f of out) for (const h of f.identityHeaders) this.strip.names.add(h);
    return out;
  }

  /** Puts the strip first in the global chain (it runs for every request, routed or not). */
  addGlobal(chain: FilterInstance[]): void {
    this.collect(chain);
    chain.unshift(this.strip);
  }

  /**
   * The route's global and own chains with its gate after the last auth
   * filter that applies to it: in the route's chain when the route has auth
   * filters of its own, else in its copy of the global chain (so that global
   * traffic filters, CC rules keyed by consumer among them, see the final
   * consumer). No auth filter at all: both unchanged. Throws naming
   * routes[i].auth.* when the route names consumers that do not exist, or
   * asks for auth with no auth filter.
   */
  routeChains(rc: RouteConfig, i: number, globalChain: readonly FilterInstance[], chain: FilterInstance[]): { global: readonly FilterInstance[]; route: FilterInstance[] } {
    const auth = rc.auth;
    auth?.allow?.forEach((name, j) => {
      if (!this.consumers.names.has(name)) throw new Error(`routes[${i}].auth.allow[${j}]: unknown consumer "${name}"`);
    });
    rc.canary?.byConsumer?.forEach((name, j) => {
      if (!this.consumers.names.has(name)) throw new Error(`routes[${i}].canary.byConsumer[${j}]: unknown consumer "${name}"`);
    });
    if (auth?.anonymous !== undefined && !this.consumers.names.has(auth.anonymous)) throw new Error(`routes[${i}].auth.anonymous: unknown consumer "${auth.anonymous}"`);
    const own = this.collect(chain);
    const filters = [...this.collect(globalChain), ...own];
    if (filters.length === 0) {
      if (auth?.allow !== undefined || auth?.anonymous !== undefined) {
        const key = auth.allow !== undefined ? 'allow' : 'anonymous';
        throw new Error(`routes[${i}].auth.${key}: no auth filter (${AUTH_TYPES.join(', ')}) applies to this route, globally or on it`);
      }
      return { global: globalChain, route: chain };
    }
    const gate = createGate(rc.name, auth, filters);
    if (own.length > 0) return { global: globalChain, route: afterAuth(chain, gate) };
    return { global: afterAuth(globalChain, gate), route: chain };
  }
}

/** A copy of a phase-ordered chain with `gate` after its last filter of phase auth or earlier. */
function afterAuth(chain: readonly FilterInstance[], gate: FilterInstance): FilterInstance[] {
  let at = 0;
  while (at < chain.length && PHASES.indexOf(chain[at]!.phase) <= AUTH_PHASE) at++;
  return [...chain.slice(0, at), gate, ...chain.slice(at)];
}
