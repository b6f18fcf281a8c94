// The circuit-breaker half of per-service policies: validation of
// `services.<name>.circuitBreakers` and attaching a ServiceBreakers to a
// cluster, keeping breaker state across reloads where rules did not change.
import type { Logger } from 'pino';
import type { Cluster } from '../balancing/cluster.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from './breaker.js';
import { ruleKey, ServiceBreakers } from './breaker-set.js';

/** Throws naming the bad key. Runs before a config is accepted. */
export function checkCircuitBreakers(name: string, svc: ServiceConfig, services: Record<string, ServiceConfig>): void {
  svc.circuitBreakers.forEach((cb, i) => {
    const at = `services.${name}.circuitBreakers[${i}]`;
    if (cb.strategy === 'slow_ratio' && cb.maxRtMs === undefined) throw new Error(`${at}.maxRtMs: required for strategy slow_ratio`);
    if (cb.strategy !== 'slow_ratio' && cb.maxRtMs !== undefined) throw new Error(`${at}.maxRtMs: only used by strategy slow_ratio`);
    if ((cb.strategy === 'slow_ratio' || cb.strategy === 'error_ratio') && cb.threshold > 1) {
      throw new Error(`${at}.threshold: a ratio between 0 and 1 for strategy ${cb.strategy}`);
    }
    if (cb.strategy === 'error_count' && !Number.isInteger(cb.threshold)) throw new Error(`${at}.threshold: a whole number of errors for strategy error_count`);
    if (cb.errors?.length === 0) throw new Error(`${at}.errors: list at least one error kind, or leave it out for the default`);
    const fb = cb.fallback;
    if (fb && 'service' in fb) {
      if (fb.service === name) throw new Error(`${at}.fallback.service: must be another service`);
      if (services[fb.service]?.circuitBreakers.some((o) => o.fallback && 'service' in o.fallback && o.fallback.service === name)) {
        throw new Error(`${at}.fallback.service: ${fb.service} falls back to ${name} in turn`);
      }
    }
  });
  const withFallback = svc.circuitBreakers.filter((cb) => cb.fallback);
  if (withFallback.length > 1 && new Set(withFallback.map((cb) => JSON.stringify(cb.fallback))).size > 1) {
    throw new Error(`services.${name}.circuitBreakers: rules name different fallbacks; one fallback applies to the service`);
  }
}

export interface BreakerPolicyDeps {
  log: Logger;
  metrics: Metrics;
  clock?: Clock;
}

/** Attach (or keep, or drop) the breakers of a cluster after a config was accepted. */
export function applyCircuitBreakers(cluster: Cluster, deps: BreakerPolicyDeps): void {
  const rules = cluster.config.circuitBreakers;
  const prev = cluster.breakers instanceof ServiceBreakers ? cluster.breakers : undefined;
  if (rules.length === 0) {
    if (cluster.breakers) {
      cluster.breakers.close?.();
      cluster.breakers = undefined;
    }
    return;
  }
  const signature = JSON.stringify(rules.map(ruleKey));
  // Unchanged rules: keep the running set itself, state and all.
  if (prev && prev.signature === signature && prev.defaultProbeTimeoutMs === cluster.config.timeoutMs) return;
  cluster.breakers = new ServiceBreakers(
    cluster.name,
    rules,
    { log: deps.log.child({ component: 'circuit-breaker' }), metrics: deps.metrics, clock: deps.clock, isLive: (id) => cluster.instance(id) !== undefined },
    cluster.config.timeoutMs,
    prev,
  );
}
