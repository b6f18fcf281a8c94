// JSON views of the running state for the admin API.
import type { ClusterManager } from '../balancing/clusters.js';
import type { Config } from '../config/schema.js';
import type { EndpointTable } from '../discovery/endpoint-table.js';
import type { Endpoint } from '../discovery/types.js';
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
    services: { total: sortedServiceNames(gw).length, withoutHealthy: withoutHealthy.sort() },
  };
}

/**
 * The services /api/services lists, in its order: from the registries, plus
 * services routes name that have no instances. Each is described by
 * describeService when its slice is written (json-stream.ts).
 */
export function sortedServiceNames(gw: AdminTarget): readonly string[] {
  const table = gw.table.namesVersion;
  const clusters = gw.clusters.membership;
  const c = sortedNames.get(gw.table);
  if (c !== undefined && c.table === table && c.clusters === clusters) return c.names;
  // Sorting 10,000 names takes 5-10 ms; a console polls a page every second or two, and the set of names rarely moves.
  const names = [...serviceNames(gw)].sort();
  sortedNames.set(gw.table, { table, clusters, names });
  return names;
}

/** Per table: the sorted names and the versions of the name sets they were made from (EndpointTable.namesVersion, ClusterManager.membership). */
const sortedNames = new WeakMap<EndpointTable, { table: number; clusters: number; names: readonly string[] }>();

/**
 * What a client asks of /api/services beyond the whole list: a search, filters
 * and a page. The console reads a page at a time this way, so a console left
 * open costs the gateway one page a poll, not every service (30 MB of JSON at
 * 100,000 endpoints).
 */
export interface ServiceQuery {
  /** Lower-cased text a service's name, an endpoint's host:port or a metadata `key=value` contains ('' for any). */
  q: string;
  /** The registry a service comes from; `(none)` for services only routes name. */
  registry: string | undefined;
  /** problems: no instance, an instance that cannot be used, or a breaker not closed; routed: named by a route. */
  show: 'all' | 'problems' | 'routed';
  /** Exactly these services. */
  names: ReadonlySet<string> | undefined;
  offset: number;
  limit: number;
}

/** The most services one page holds. */
export const MAX_PAGE = 10_000;

const QUERY_KEYS = ['q', 'registry', 'show', 'names', 'offset', 'limit'] as const;

/** The query in `params`; undefined when it has none of its keys (the whole list); a string saying what is wrong. */
export function parseServiceQuery(params: URLSearchParams): ServiceQuery | string | undefined {
  if (!QUERY_KEYS.some((k) => params.has(k))) return undefined;
  const int = (key: string, dflt: number, max: number): number | string => {
    const v = params.get(key);
    if (v === null || v === '') return dflt;
    if (!/^\d+$/.test(v) || Number(v) > max) return `${key} must be a whole number from 0 to ${max}`;
    return Number(v);
  };
  const offset = int('offset', 0, Number.MAX_SAFE_INTEGER);
  if (typeof offset === 'string') return offset;
  const limit = int('limit', MAX_PAGE, MAX_PAGE);
  if (typeof limit === 'string') return limit;
  const show = params.get('show') || 'all';
  if (show !== 'all' && show !== 'problems' && show !== 'routed') return 'show must be all, problems or routed';
  const names = params.get('names');
  return {
    q: (params.get('q') ?? '').trim().toLowerCase(),
    registry: params.get('registry') || undefined,
    show,
    names: names === null ? undefined : new Set(names.split(',').filter(Boolean)),
    offset,
    limit,
  };
}

/**
 * Whether a service has a problem, from this process's state: no instance, an
 * instance that cannot be used (what console/src/ui.tsx `usable` shows as
 * ejected, down, check failing or weight 0), or a service breaker not closed.
 * The console's "with problems" filter.
 */
export function serviceHasProblem(gw: AdminTarget, name: string, now: number): boolean {
  const cluster = gw.clusters.has(name) ? gw.clusters.get(name) : undefined;
  if (cluster === undefined) {
    const eps = gw.table.get(name)?.endpoints ?? [];
    return eps.length === 0 || eps.some((e) => !e.healthy || e.weight === 0);
  }
  if (cluster.instances.length === 0 || cluster.instances.some((i) => !i.available(now))) return true;
  const d = cluster.breakers?.describe() as { breakers?: { state?: string }[] } | undefined;
  return (d?.breakers ?? []).some((b) => b.state !== 'closed');
}

/**
 * Per endpoint list (a service's list is replaced, never changed, when its
 * endpoints change): the lower-cased text a search looks in, each instance's
 * `host:port` and metadata `key=value`, one NUL apart. Made once per list, so
 * a search typed a letter at a time does not rebuild 100,000 endpoints' text
 * per poll.
 */
const searchTexts = new WeakMap<readonly Endpoint[], string>();

/** What a search looks in, part by part: each instance's `host:port` and metadata `key=value`. */
function* searchParts(eps: readonly Endpoint[]): Generator<string> {
  for (const e of eps) {
    yield `${e.host}:${e.port}`;
    for (const k in e.metadata) yield `${k}=${e.metadata[k]}`;
  }
}

function searchText(eps: readonly Endpoint[]): string {
  let t = searchTexts.get(eps);
  if (t === undefined) {
    t = [...searchParts(eps)].join('\0').toLowerCase();
    searchTexts.set(eps, t);
  }
  return t;
}

function matchesText(gw: AdminTarget, name: string, q: string): boolean {
  if (name.toLowerCase().includes(q)) return true;
  const eps = gw.table.get(name)?.endpoints;
  if (eps === undefined || eps.length === 0) return false;
  // A NUL in the search could match across two parts of the joined text: look at each part alone.
  if (q.includes('\0')) {
    for (const part of searchParts(eps)) if (part.toLowerCase().includes(q)) return true;
    return false;
  }
  return searchText(eps).includes(q);
}

/**
 * The services matching `query`, in /api/services order, before paging, and
 * how many services there are in all; `problem` answers show=problems (in
 * worker mode it also asks the workers).
 */
export function matchServices(gw: AdminTarget, query: ServiceQuery, problem: (name: string) => boolean): { matched: string[]; total: number } {
  const all = sortedServiceNames(gw);
  const out: string[] = [];
  for (const name of all) {
    if (query.names !== undefined && !query.names.has(name)) continue;
    if (query.registry !== undefined && (gw.table.get(name)?.registry ?? '(none)') !== query.registry) continue;
    if (query.show === 'routed' && !gw.clusters.has(name)) continue;
    if (query.q !== '' && !matchesText(gw, name, query.q)) continue;
    if (query.show === 'problems' && !problem(name)) continue;
    out.push(name);
  }
  return { matched: out, total: all.length };
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
