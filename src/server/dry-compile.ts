// Compile a config without serving it (meshgate validate): catches what only
// compilation can see (filters, route handlers, policies, registry types).
// The same compile a reload runs, then the candidate is discarded.
import { ClusterManager } from '../balancing/clusters.js';
import type { Config } from '../config/schema.js';
import { EndpointTable } from '../discovery/endpoint-table.js';
import { loadRegistryFactory } from '../discovery/registries.js';
import { createLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';
import { MemoryStore } from '../store/memory.js';
import { compileRuntime } from './runtime.js';

export async function dryCompile(config: Config): Promise<void> {
  const log = createLogger('silent');
  for (const [i, r] of config.registries.entries()) {
    try {
      await loadRegistryFactory(r.type);
    } catch (e) {
      throw new Error(`registries[${i}].type: ${(e as Error).message}`);
    }
  }
  const store = new MemoryStore();
  try {
    compileRuntime(config, { clusters: new ClusterManager(new EndpointTable(log)), store, log, metrics: new Metrics({ processMetrics: false }) }).discard();
  } finally {
    await store.close();
  }
}
