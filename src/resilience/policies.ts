// Per-service policies (circuit breakers, outlier detection) on clusters.
// check* runs before a config is accepted and may throw; apply* runs after and
// keeps existing state where the policy did not change.
import type { Cluster } from '../balancing/cluster.js';
import type { ServiceConfig } from '../config/schema.js';
import type { CompileDeps } from '../server/runtime.js';
import { applyCircuitBreakers, checkCircuitBreakers } from './circuit-policy.js';

export function checkServicePolicies(services: Record<string, ServiceConfig>): void {
  for (const [name, svc] of Object.entries(services)) {
    checkCircuitBreakers(name, svc, services);
    if (svc.outlierDetection) throw new Error(`services.${name}.outlierDetection: outlier detection is not available in this build`);
  }
}

export function applyClusterPolicies(cluster: Cluster, deps: Pick<CompileDeps, 'log' | 'metrics'>): void {
  applyCircuitBreakers(cluster, deps);
}
