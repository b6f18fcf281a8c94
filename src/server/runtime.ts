// RuntimeState: everything the request path needs, compiled from a Config.
// Immutable once built; a reload builds a new one and swaps one reference.
import type { Logger } from 'pino';
import type { ClusterManager } from '../balancing/clusters.js';
import type { Config } from '../config/schema.js';
import { compileFilters } from '../filters/index.js';
import type { FilterInstance } from '../filters/types.js';
import type { Metrics } from '../observability/metrics.js';
import { applyClusterPolicies, checkServicePolicies } from '../resilience/policies.js';
import { compileRoute, Router } from '../routing/router.js';
import type { CounterStore } from '../store/types.js';
import { compileRouteHandler } from '../upstreams/route-handlers.js';
import '../upstreams/dubbo/index.js'; // registers the `dubbo` route handler

export interface RuntimeState {
  readonly version: number;
  readonly config: Config;
  readonly router: Router;
  readonly globalFilters: FilterInstance[];
  /** Filter instances by identity, so the next compile can carry state over. */
  readonly filterIndex: ReadonlyMap<string, FilterInstance>;
  readonly createdAt: number;
}

export interface CompileDeps {
  clusters: ClusterManager;
  store: CounterStore;
  log: Logger;
  metrics: Metrics;
}

let versionCounter = 0;

/**
 * Compile a config. Throws (naming the bad key) without touching the running
 * state; only on success are service policies applied to shared clusters.
 */
export function compileRuntime(config: Config, deps: CompileDeps, previous?: RuntimeState): RuntimeState {
  const prevFilters = previous?.filterIndex ?? new Map<string, FilterInstance>();
  const filterIndex = new Map<string, FilterInstance>();
  const ctx = { store: deps.store, log: deps.log, metrics: deps.metrics };
  const global = compileFilters(config.filters, ctx, 'filters', prevFilters);
  for (const [k, f] of global.byKey) filterIndex.set(k, f);

  const routes = config.routes.map((rc, i) => {
    const route = compileRoute(rc, i, (s) => deps.clusters.get(s));
    const prefix = 'prefix' in rc.match.path ? rc.match.path.prefix : undefined;
    const compiled = compileFilters(rc.filters, { ...ctx, route: rc.name, routePrefix: prefix }, `routes[${i}].filters`, prevFilters);
    route.filters = compiled.chain;
    for (const [k, f] of compiled.byKey) filterIndex.set(k, f);
    if (route.kind === 'dubbo' || route.kind === 'ai') {
      try {
        route.handler = compileRouteHandler(route, deps);
      } catch (e) {
        throw new Error(`routes[${i}].${route.kind}: ${(e as Error).message}`);
      }
    }
    return route;
  });
  const router = new Router(routes);
  checkServicePolicies(config.services);

  // Success: apply service policies (shared clusters) and retire what is gone.
  deps.clusters.setServiceConfigs(config.services);
  for (const c of deps.clusters.all()) applyClusterPolicies(c, deps);
  for (const [k, f] of prevFilters) if (!filterIndex.has(k) || filterIndex.get(k) !== f) f.close?.();

  return { version: ++versionCounter, config, router, globalFilters: global.chain, filterIndex, createdAt: Date.now() };
}

/** Services referenced by a config (routes, canaries, fallbacks, configured services). */
export function referencedServices(config: Config): Set<string> {
  const out = new Set<string>(Object.keys(config.services));
  for (const r of config.routes) {
    for (const b of r.backends) out.add(b.service);
    for (const b of r.canary?.backends ?? []) out.add(b.service);
  }
  for (const s of Object.values(config.services)) {
    for (const cb of s.circuitBreakers) if (cb.fallback && 'service' in cb.fallback) out.add(cb.fallback.service);
  }
  return out;
}
