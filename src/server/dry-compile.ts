// Compile a config without serving it (meshgate validate, the console's draft check): catches what only
// compilation can see (filters, route handlers, policies, registry types).
// The same compile a reload runs, then the candidate is discarded.
import { ClusterManager } from '../balancing/clusters.js';
import { ConfigError, fileProblems, parseConfigText } from '../config/load.js';
import { serviceNameWarnings } from '../config/names.js';
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
    compileRuntime(config, { clusters: new ClusterManager(new EndpointTable(log)), store, log, metrics: new Metrics({ processMetrics: false }) }, undefined, { dry: true }).discard();
  } finally {
    await store.close();
  }
}

/** What `meshgate validate` and the console's draft check say of a config text. */
export type ConfigCheck = { ok: true; config: Config; warnings: string[] } | { ok: false; problems: string[]; warnings: string[] };

/**
 * The whole of `meshgate validate` on a text: parse, schema and document checks,
 * files the config names, a dry compile, and service names no registry gives
 * (warnings; problems with `strict`). `source` names the file in messages.
 */
export async function checkConfigText(text: string, source: string, strict = false): Promise<ConfigCheck> {
  let config: Config;
  try {
    config = parseConfigText(text, source);
    const files = fileProblems(config);
    if (files.length > 0) throw new ConfigError(source, files);
    await dryCompile(config);
  } catch (e) {
    return { ok: false, problems: e instanceof ConfigError ? e.problems : [(e as Error).message], warnings: [] };
  }
  const warnings = serviceNameWarnings(config);
  if (strict && warnings.length > 0) return { ok: false, problems: warnings, warnings: [] };
  return { ok: true, config, warnings };
}
