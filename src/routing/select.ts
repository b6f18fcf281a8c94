// Instance selection for a backend: subset (instance metadata), subset
// fallback, then the service's load balancer.
import type { Instance } from '../balancing/instance.js';
import type { Exchange } from '../server/exchange.js';
import type { CompiledBackend } from './canary.js';

export function pickInstance(backend: CompiledBackend, ex: Exchange, exclude: ReadonlySet<Instance>): Instance | undefined {
  const cluster = backend.cluster;
  if (backend.subset) {
    const inst = cluster.pick(ex, { subset: backend.subset }, exclude);
    if (inst || backend.subsetFallback === 'none') return inst;
    // Fall back to every instance only when the subset has no available instance at all.
    const view = cluster.view({ subset: backend.subset });
    const now = Date.now();
    if (view.instances.some((i) => i.available(now) && !exclude.has(i))) return undefined;
  }
  return cluster.pick(ex, undefined, exclude);
}
