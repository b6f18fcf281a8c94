// Public surface of src/resilience: circuit breakers, flow control, system
// protection, and an admin view of all of them (for /api/resilience).
import type { Cluster } from '../balancing/cluster.js';
import type { FilterInstance } from '../filters/types.js';

export { CircuitBreaker, compileErrorTest, STATE_NAMES } from './breaker.js';
export { ServiceBreakers, ruleKey } from './breaker-set.js';
export { applyCircuitBreakers, checkCircuitBreakers } from './circuit-policy.js';
export { createFlowControl, FlowControl } from './flow/filter.js';
export { createSystemProtection, SystemProtection } from './system-protection.js';

const RESILIENCE_FILTERS = new Set(['flow_control', 'system_protection']);

/**
 * Every breaker (with state and window stats) and every flow_control /
 * system_protection filter (with counters), for an admin endpoint:
 * `describeResilience(gw.clusters.all(), gw.state.globalFilters, gw.state.router.routes)`.
 */
export function describeResilience(clusters: Iterable<Cluster>, globalFilters: readonly FilterInstance[], routes: Iterable<{ name: string; filters: readonly FilterInstance[] }>): unknown {
  const breakers: unknown[] = [];
  for (const c of clusters) if (c.breakers) breakers.push(c.breakers.describe());
  const filters: unknown[] = [];
  for (const f of globalFilters) if (RESILIENCE_FILTERS.has(f.type)) filters.push({ scope: 'global', type: f.type, state: f.describe?.() });
  for (const r of routes) {
    for (const f of r.filters) if (RESILIENCE_FILTERS.has(f.type)) filters.push({ scope: 'route', route: r.name, type: f.type, state: f.describe?.() });
  }
  return { breakers, filters };
}
