// Backend selection for a route: canary rules (ingress-nginx semantics) and
// weighted backends.
import type { Cluster } from '../balancing/cluster.js';
import { ensureLinearRegexEngine } from '../config/linear-regex.js';
import type { BackendConfig, CanaryConfig } from '../config/schema.js';
import type { Exchange } from '../exchange/exchange.js';

// byHeaderPattern is matched against a client header.
ensureLinearRegexEngine();

export interface CompiledBackend {
  readonly service: string;
  readonly weight: number;
  readonly subset: Readonly<Record<string, string>> | undefined;
  readonly subsetFallback: 'all' | 'none';
  readonly cluster: Cluster;
}

/** Weighted choice among a route's backends (random per request, like Envoy's weighted clusters). */
export class BackendSet {
  readonly backends: readonly CompiledBackend[];
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(backends: CompiledBackend[]) {
    this.backends = backends.filter((b) => b.weight > 0);
    this.cumulative = new Float64Array(this.backends.length);
    let sum = 0;
    this.backends.forEach((b, i) => {
      sum += b.weight;
      this.cumulative[i] = sum;
    });
    this.total = sum;
  }

  pick(): CompiledBackend | undefined {
    const n = this.backends.length;
    if (n <= 1) return this.backends[0];
    const r = Math.random() * this.total;
    for (let i = 0; i < n; i++) if (r < this.cumulative[i]!) return this.backends[i];
    return this.backends[n - 1];
  }
}

export function compileBackends(list: readonly BackendConfig[], cluster: (service: string) => Cluster): BackendSet {
  return new BackendSet(
    list.map((b) => ({ service: b.service, weight: b.weight, subset: b.subset, subsetFallback: b.subsetFallback, cluster: cluster(b.service) })),
  );
}

export interface CompiledCanary {
  readonly header: string | undefined;
  readonly headerValue: string | undefined;
  readonly headerPattern: RegExp | undefined;
  readonly cookie: string | undefined;
  /** Consumers (ex.consumer, set by auth filters before the backend is chosen) sent to the canary. */
  readonly consumers: ReadonlySet<string> | undefined;
  readonly weight: number | undefined;
  readonly weightTotal: number;
  readonly backends: BackendSet;
}

export function compileCanary(c: CanaryConfig, cluster: (service: string) => Cluster): CompiledCanary {
  const headerValue = c.byHeaderValue !== undefined && c.byHeaderValue.length > 0 ? c.byHeaderValue : undefined;
  return {
    header: c.byHeader?.toLowerCase(),
    headerValue,
    // A pattern is ignored when a value is set (ingress-nginx); unanchored, partial match.
    headerPattern: headerValue === undefined && c.byHeaderPattern ? new RegExp(c.byHeaderPattern) : undefined,
    cookie: c.byCookie,
    consumers: c.byConsumer ? new Set(c.byConsumer) : undefined,
    weight: c.weight,
    weightTotal: c.weightTotal > 100 ? c.weightTotal : 100,
    backends: compileBackends(c.backends, cluster),
  };
}

/**
 * ingress-nginx canary decision: header, then cookie, then the consumer
 * (meshgate's addition), then weight. Returns true when the request goes to
 * the canary backends.
 */
export function routeToCanary(c: CompiledCanary, ex: Pick<Exchange, 'header'> & Partial<Pick<Exchange, 'consumer'>>, random: () => number = Math.random): boolean {
  if (c.header !== undefined) {
    const v = ex.header(c.header);
    if (v !== undefined) {
      if (c.headerValue !== undefined) {
        if (v === c.headerValue) return true;
      } else if (c.headerPattern !== undefined) {
        if (c.headerPattern.test(v)) return true;
      } else if (v === 'always') return true;
      else if (v === 'never') return false;
    }
  }
  if (c.cookie !== undefined) {
    const v = cookieValue(ex.header('cookie'), c.cookie);
    if (v === 'always') return true;
    if (v === 'never') return false;
  }
  if (c.consumers !== undefined && ex.consumer !== undefined && c.consumers.has(ex.consumer)) return true;
  if (c.weight !== undefined && c.weight > 0) {
    // random integer in 1..total, canary when <= weight
    const r = Math.floor(random() * c.weightTotal) + 1;
    return r <= c.weight;
  }
  return false;
}

/**
 * One cookie's value from a Cookie header (first occurrence, quotes stripped,
 * percent-decoded), as Exchange.cookie() reads it, without parsing every
 * cookie: the canary rule needs only its own, on every request.
 */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  const n = name.length;
  let i = 0;
  while (i < header.length) {
    while (header.charCodeAt(i) === 32 /* space */) i++;
    let end = header.indexOf(';', i);
    if (end < 0) end = header.length;
    if (header.startsWith(name, i)) {
      let j = i + n;
      while (header.charCodeAt(j) === 32) j++;
      if (header.charCodeAt(j) === 61 /* = */) {
        let v = header.slice(j + 1, end).trim();
        if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1);
        if (v.includes('%')) {
          try {
            v = decodeURIComponent(v);
          } catch {
            /* keep raw */
          }
        }
        return v;
      }
    }
    i = end + 1;
  }
  return undefined;
}
