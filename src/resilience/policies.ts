// Per-service policies (circuit breakers, outlier detection) on clusters.
// check* runs before a config is accepted and may throw; apply* runs after and
// keeps existing state where the policy did not change.
import type { Cluster } from '../balancing/cluster.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import { applyOutlierDetection } from '../balancing/outlier.js';
import { applyCircuitBreakers, checkCircuitBreakers } from './circuit-policy.js';

export function checkServicePolicies(services: Record<string, ServiceConfig>): void {
  for (const [name, svc] of Object.entries(services)) {
    checkCircuitBreakers(name, svc, services);
    const od = svc.outlierDetection;
    if (od && od.maxEjectionMs < od.baseEjectionMs) throw new Error(`services.${name}.outlierDetection.maxEjectionMs: must be >= baseEjectionMs`);
  }
}

export function applyClusterPolicies(cluster: Cluster, deps: { log: Logger; metrics: Metrics }): void {
  applyCircuitBreakers(cluster, deps);
  applyOutlierDetection(cluster, deps);
}
