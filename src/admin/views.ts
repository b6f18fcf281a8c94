// JSON views of the running state for the admin API.
import type { ClusterManager } from '../balancing/clusters.js';
import type { Config } from '../config/schema.js';
import type { EndpointTable } from '../discovery/endpoint-table.js';
import type { RegistryWatcher } from '../discovery/types.js';
import type { Logger } from 'pino';
import type { Metrics } from '../observability/metrics.js';
import type { RuntimeState } from '../server/runtime.js';

/** What the admin API reads and drives of a gateway (the gateway implements it). */
export interface AdminTarget {
  readonly config: Config;
  readonly state: RuntimeState;
  readonly table: EndpointTable;
  readonly clusters: ClusterManager;
  readonly metrics: Metrics;
  readonly startedAt: number;
  readonly lastReload: { at: number; ok: boolean; error?: string } | undefined;
  registryWatchers(): Array<{ name: string; type: string; watcher: RegistryWatcher }>;
  /** Reload from the file (`by`: who asked, for the log and the history). */
  reload(next?: undefined, opts?: { by?: string }): Promise<{ ok: boolean; version?: number; error?: string; problems?: string[] }>;
  /** The config file, the file text that serves and the generations applied (the console's editor). */
  readonly configPath: string | undefined;
  readonly servingHash: string | undefined;
  readonly history: ReadonlyArray<{ version: number; at: number; by: string; text: string | undefined; hash: string | undefined }>;
  /** Where admin changes and refused requests are logged. */
  readonly log?: Logger;
}

export function describeRoutes(state: RuntimeState): unknown {
  return {
    version: state.version,
    routes: state.router.routes.map((r) => ({
      name: r.name,
      kind: r.kind,
      match: r.config.match,
      backends: r.config.backends,
      canary: r.config.canary,
      grey: r.config.grey,
      filters: r.filters.map((f) => ({ type: f.type, phase: f.phase, state: f.describe?.() })),
    })),
    globalFilters: state.globalFilters.map((f) => ({ type: f.type, phase: f.phase, state: f.describe?.() })),
  };
}

/** Every service name the gateway knows: reported by a registry, or named by a route (a cluster) without instances. */
function serviceNames(gw: AdminTarget): Set<string> {
  const names = new Set<string>(gw.table.serviceNames());
  for (const c of gw.clusters.all()) names.add(c.name);
  return names;
}

/** The console's first glance: versions, registries, and the services a route uses that have no instance to send to. */
export function describeOverview(gw: AdminTarget, workers: number): unknown {
  const now = Date.now();
  const withoutHealthy: string[] = [];
  for (const c of gw.clusters.all()) if (!c.instances.some((i) => i.available(now))) withoutHealthy.push(c.name);
  return {
    version: gw.state.version,
    startedAt: gw.startedAt,
    lastReload: gw.lastReload,
    workers,
    configPath: gw.configPath ?? null,
    routes: gw.state.router.routes.length,
    registries: gw.table.registryStates().map((r) => ({ name: r.name, type: r.type, up: r.up, synced: r.synced, services: r.services, lastError: r.lastError })),
    services: { total: serviceNames(gw).size, withoutHealthy: withoutHealthy.sort() },
  };
}

/**
 * The services /api/services lists, in its order: from the registries, plus
 * services routes name that have no instances. Each is described by
 * describeService when its slice is written (json-stream.ts).
 */
export function sortedServiceNames(gw: AdminTarget): string[] {
  return [...serviceNames(gw)].sort();
}

/** One entry of /api/services, as it is now. */
export function describeService(gw: AdminTarget, name: string): unknown {
  const entry = gw.table.get(name);
  const cluster = gw.clusters.has(name) ? gw.clusters.get(name) : undefined;
  const endpoints = cluster
    ? cluster.instances.map((i) => i.toJSON())
    : (entry?.endpoints ?? []).map((e) => ({ host: e.host, port: e.port, weight: e.weight, healthy: e.healthy, metadata: e.metadata }));
  return {
    name,
    registry: entry?.registry ?? null,
    version: entry?.version ?? 0,
    routed: cluster !== undefined,
    endpoints,
    breakers: cluster?.breakers?.describe(),
    outlier: cluster?.outlier?.describe?.(),
  };
}

/** Config keys whose values are secrets: masked in every view. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'token', 'accessToken', 'apiKeys', 'key', 'auth', 'secret']);

export function redactConfig(config: Config): unknown {
  const walk = (v: unknown, k?: string): unknown => {
    if (k && SECRET_KEYS.has(k) && (typeof v === 'string' || Array.isArray(v))) return Array.isArray(v) ? v.map(() => '***') : '***';
    if (Array.isArray(v)) return v.map((x) => walk(x));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([kk, vv]) => [kk, walk(vv, kk)]));
    return v;
  };
  return walk(config);
}

/** The filters of one type, global and per route, with their own view (the WAF: rule set, unsupported rules, counts). */
export function describeFilters(state: RuntimeState, type: string): unknown[] {
  const out: unknown[] = [];
  for (const f of state.globalFilters) if (f.type === type) out.push({ scope: 'global', ...(f.describe?.() as object) });
  for (const r of state.router.routes) {
    for (const f of r.filters) if (f.type === type) out.push({ scope: 'route', route: r.name, ...(f.describe?.() as object) });
  }
  return out;
}
