// RuntimeState: everything the request path needs, compiled from a Config.
// Immutable once built; a reload builds a new one and swaps one reference.
//
// A config generation's life: compileRuntime() builds a Candidate and changes
// nothing shared (clusters a new route needs are made aside, not registered);
// after the swap the gateway calls candidate.activate() (policies onto the
// shared clusters, new clusters registered); a refused candidate is released
// with candidate.discard(); the generation that served before is released with
// one retireRuntime() call.
import type { Logger } from 'pino';
import type { Cluster } from '../balancing/cluster.js';
import { Cluster as ClusterImpl } from '../balancing/cluster.js';
import type { ClusterManager } from '../balancing/clusters.js';
import { DEFAULT_SERVICE, type Config } from '../config/schema.js';
import type { Endpoint } from '../discovery/types.js';
import { AuthSetup } from '../filters/auth/gate.js';
import { compileFilters } from '../filters/index.js';
import type { FilterInstance } from '../filters/types.js';
import type { Metrics } from '../observability/metrics.js';
import { applyClusterPolicies, checkServicePolicies } from '../resilience/policies.js';
import { prepareServiceTls } from '../balancing/tls.js';
import { compileRoute, Router } from '../routing/router.js';
import type { CounterStore } from '../store/types.js';
import { compileRouteHandler, type CompileDeps, type RouteHandler } from '../upstreams/route-handlers.js';
export type { CompileDeps } from '../upstreams/route-handlers.js';
import '../upstreams/dubbo/index.js'; // registers the `dubbo` route handler
import '../upstreams/ai/index.js'; // registers the `ai` route handler

export interface RuntimeState {
  readonly version: number;
  readonly config: Config;
  readonly router: Router;
  readonly globalFilters: FilterInstance[];
  /** Filter instances by identity, so the next compile can carry state over. */
  readonly filterIndex: ReadonlyMap<string, FilterInstance>;
  readonly createdAt: number;
}

/** A compiled config that is not serving yet. */
export interface Candidate {
  readonly state: RuntimeState;
  /** Call right after the state is swapped in: service policies onto the shared clusters, new clusters registered. */
  activate(): void;
  /** The config was refused: release what compiling made (new filters, route handlers). */
  discard(): void;
}

let versionCounter = 0;

function routeHandlers(state: RuntimeState): RouteHandler[] {
  const out: RouteHandler[] = [];
  for (const r of state.router.routes) if (r.handler) out.push(r.handler as RouteHandler);
  return out;
}

/**
 * Compile a config. Throws (naming the bad key) having changed nothing shared:
 * existing clusters are referenced, not reconfigured; clusters for services
 * seen for the first time are made aside and registered by activate().
 */
/** `dry`: a check that will never serve (meshgate validate, the console's draft check): it takes no version number. */
export function compileRuntime(config: Config, deps: CompileDeps, previous?: RuntimeState, opts: { dry?: boolean } = {}): Candidate {
  const prevFilters = previous?.filterIndex ?? new Map<string, FilterInstance>();
  const reused = new Set(prevFilters.values());
  const filterIndex = new Map<string, FilterInstance>();
  const handlers: RouteHandler[] = [];
  const fresh = new Map<string, Cluster>();
  const cluster = (s: string): Cluster => {
    if (deps.clusters.has(s)) return deps.clusters.get(s);
    let c = fresh.get(s);
    if (!c) {
      c = new ClusterImpl(s, config.services[s] ?? DEFAULT_SERVICE);
      c.setEndpoints(deps.endpointsOf?.(s) ?? []);
      fresh.set(s, c);
    }
    return c;
  };
  const release = (): void => {
    for (const f of filterIndex.values()) if (!reused.has(f)) f.close?.();
    for (const h of handlers) h.close?.();
  };
  try {
    // Consumers first: auth filters look credentials up in them; the identity-header strip leads the global chain.
    const auth = new AuthSetup(config);
    const ctx = { store: deps.store, log: deps.log, metrics: deps.metrics, consumers: auth.consumers };
    const global = compileFilters(config.filters, ctx, 'filters', prevFilters);
    auth.addGlobal(global.chain);
    for (const [k, f] of global.byKey) filterIndex.set(k, f);

    const routes = config.routes.map((rc, i) => {
      const route = compileRoute(rc, i, cluster);
      const prefix = 'prefix' in rc.match.path ? rc.match.path.prefix : undefined;
      const compiled = compileFilters(rc.filters, { ...ctx, route: rc.name, routePrefix: prefix }, `routes[${i}].filters`, prevFilters);
      route.filters = compiled.chain;
      const replaced = new Set(compiled.chain.filter((f) => f.replacesGlobal).map((f) => f.type));
      route.globalFilters = replaced.size > 0 ? global.chain.filter((f) => !replaced.has(f.type)) : global.chain;
      const chains = auth.routeChains(rc, i, route.globalFilters, route.filters);
      route.globalFilters = chains.global;
      route.filters = chains.route;
      for (const [k, f] of compiled.byKey) filterIndex.set(k, f);
      if (route.kind === 'dubbo' || route.kind === 'ai') {
        try {
          const h = compileRouteHandler(route, deps);
          handlers.push(h);
          route.handler = h;
        } catch (e) {
          throw new Error(`routes[${i}].${route.kind}: ${(e as Error).message}`);
        }
      }
      return route;
    });
    checkServicePolicies(config.services);
    // Upstream TLS: files read and contexts made now, so a bad one refuses the config naming its key.
    prepareServiceTls(config.services, (service) => deps.log.warn({ service }, `services.${service}.tls.verify is false: upstream certificates are not checked`));
    const state: RuntimeState = { version: opts.dry ? 0 : ++versionCounter, config, router: new Router(routes), globalFilters: global.chain, filterIndex, createdAt: Date.now() };
    let settled = false;
    return {
      state,
      activate() {
        if (settled) return;
        settled = true;
        deps.clusters.setServiceConfigs(config.services);
        for (const c of fresh.values()) deps.clusters.adopt(c);
        for (const c of deps.clusters.all()) applyClusterPolicies(c, deps);
      },
      discard() {
        if (settled) return;
        settled = true;
        release();
      },
    };
  } catch (e) {
    // Filters made before the failure (ones the previous config did not already own).
    release();
    throw e;
  }
}

/**
 * Release a generation that stopped serving: its filters that `next` did not
 * carry over, its route handlers, and clusters `next` does not reference
 * (all of them when `next` is undefined: the gateway stops). Requests still
 * in flight keep their references and finish. Returns the clusters dropped.
 */
export function retireRuntime(old: RuntimeState, next: RuntimeState | undefined, clusters: ClusterManager): Cluster[] {
  const carried = new Set(next?.filterIndex.values() ?? []);
  for (const f of new Set(old.filterIndex.values())) if (!carried.has(f)) f.close?.();
  for (const h of routeHandlers(old)) h.close?.();
  const dropped = clusters.retain(next ? referencedServices(next.config) : new Set());
  for (const c of dropped) {
    c.breakers?.close?.();
    c.outlier?.close?.();
  }
  return dropped;
}

/** Services referenced by a config (routes, canaries, fallbacks, configured services). */
export function referencedServices(config: Config): Set<string> {
  const out = new Set<string>(Object.keys(config.services));
  for (const r of config.routes) {
    for (const b of r.backends) out.add(b.service);
    for (const b of r.canary?.backends ?? []) out.add(b.service);
    for (const p of r.ai?.providers ?? []) if (p.service) out.add(p.service);
  }
  for (const s of Object.values(config.services)) {
    for (const cb of s.circuitBreakers) if (cb.fallback && 'service' in cb.fallback) out.add(cb.fallback.service);
  }
  return out;
}
