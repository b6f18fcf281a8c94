// Per-service policies (circuit breakers, outlier detection) on clusters.
// check* runs before a config is accepted and may throw; apply* runs after and
// keeps existing state where the policy did not change.
import type { Cluster } from '../balancing/cluster.js';
import type { ServiceConfig } from '../config/schema.js';
import type { CompileDeps } from '../server/runtime.js';

export function checkServicePolicies(services: Record<string, ServiceConfig>): void {
  for (const [name, svc] of Object.entries(services)) {
    if (svc.circuitBreakers.length > 0) throw new Error(`services.${name}.circuitBreakers: circuit breakers are not available in this build`);
    if (svc.outlierDetection) throw new Error(`services.${name}.outlierDetection: outlier detection is not available in this build`);
  }
}

export function applyClusterPolicies(_cluster: Cluster, _deps: Pick<CompileDeps, 'log' | 'metrics'>): void {}
