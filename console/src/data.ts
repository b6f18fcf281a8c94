// Loaders shared by pages: the overview (with a fallback built from the older
// endpoints), services (merged per worker in worker mode), the stats buffer.
import { ApiError, get, getAnswer, mergeLive, nameOrder, type Answer, type ConfigSource, type LastReload, type Overview, type Registry, type Routes, type Service, type StatPoint } from './api';

/** Worker count from /api/overview (undefined: not asked yet). */
let workersKnown: number | undefined;

export async function loadOverview(): Promise<Overview> {
  try {
    const o = await get<Overview>('/api/overview');
    workersKnown = o.workers ?? 0;
    return o;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
  }
  workersKnown = 0;
  // Older gateways: assemble the same view.
  const [cfg, regs, services, routes] = await Promise.all([
    get<{ version: number; lastReload?: LastReload }>('/api/config'),
    get<Registry[]>('/api/registries'),
    get<Service[]>('/api/services'),
    get<Routes>('/api/routes'),
  ]);
  return {
    version: cfg.version,
    startedAt: 0,
    lastReload: cfg.lastReload,
    workers: 0,
    registries: regs.map((r) => ({ name: r.name, type: r.type, up: r.up, synced: r.synced })),
    services: { total: services.length, withoutHealthy: services.filter((s) => !s.endpoints.some((e) => e.healthy && !e.ejected)).map((s) => s.name) },
    routes: routes.routes.length,
    configPath: null,
  };
}

/** What a page of services is asked for (the gateway filters and pages: src/admin/views.ts ServiceQuery). */
export interface ServiceFilter {
  q?: string;
  registry?: string;
  show?: 'all' | 'problems' | 'routed';
  /** Exactly these services (asked in groups, so a long list never makes a too-long URL). */
  names?: readonly string[];
  limit?: number;
}

export interface ServicePage {
  /** The page: the first `limit` matching services, in name order. */
  services: Service[];
  /** Services matching the filter. */
  matched: number;
  /** Services the gateway knows. */
  total: number;
}

/** Names per request of a `names` filter. */
const NAMES_PER_ASK = 100;

/**
 * A page of services, filtered and paged by the gateway: the console asks
 * for what it shows, never for every service (at 100,000 endpoints that is
 * 30 MB of JSON a poll). In worker mode the instance state is each worker's
 * live view, merged; registry names come from the control plane.
 */
export async function loadServicePage(f: ServiceFilter): Promise<ServicePage> {
  if (f.names !== undefined && f.names.length > NAMES_PER_ASK) {
    const out: ServicePage = { services: [], matched: 0, total: 0 };
    for (let i = 0; i < f.names.length; i += NAMES_PER_ASK) {
      const part = await loadServicePage({ ...f, names: f.names.slice(i, i + NAMES_PER_ASK) });
      out.services.push(...part.services);
      out.matched += part.matched;
      out.total = part.total;
    }
    out.services.sort(nameOrder);
    return out;
  }
  if (workersKnown === undefined) await loadOverview().catch(() => undefined);
  const p = new URLSearchParams();
  if (f.q) p.set('q', f.q);
  if (f.registry) p.set('registry', f.registry);
  if (f.show && f.show !== 'all') p.set('show', f.show);
  if (f.names !== undefined) p.set('names', f.names.join(','));
  p.set('limit', String(f.limit ?? 200));
  const qs = p.toString();
  const counts = (a: Answer<unknown>, n: number): { matched: number; total: number } => ({
    matched: Number(a.headers.get('x-total-count') ?? n),
    total: Number(a.headers.get('x-service-count') ?? n),
  });
  const plain = await getAnswer<Service[] | { workers: unknown[] }>(`/api/services?${qs}`);
  const plainList = Array.isArray(plain.body) ? plain.body : [];
  if (!workersKnown) return { services: plainList, ...counts(plain, plainList.length) };
  const live = await getAnswer<{ workers?: unknown[] } | Service[]>(`/api/services?live=1&${qs}`);
  if (Array.isArray(live.body) || !Array.isArray(live.body.workers)) return { services: plainList, ...counts(plain, plainList.length) };
  const merged = mergeLive(live.body.workers);
  const reg = new Map(plainList.map((s) => [s.name, s.registry]));
  for (const s of merged) s.registry = reg.get(s.name) ?? s.registry;
  // A service no worker described (none has started serving it yet) still shows, as the control plane has it.
  const described = new Set(merged.map((s) => s.name));
  const missing = plainList.filter((s) => !described.has(s.name));
  if (missing.length > 0) {
    merged.push(...missing);
    merged.sort(nameOrder);
  }
  const limit = f.limit ?? 200;
  return { services: merged.slice(0, limit), ...counts(live, merged.length) };
}

/** The services routes name, for their status (asked by name: only what a page shows). */
export async function loadServicesNamed(names: readonly string[]): Promise<Service[]> {
  const unique = [...new Set(names)].sort();
  if (unique.length === 0) return [];
  return (await loadServicePage({ names: unique, limit: unique.length })).services;
}

export const loadRoutes = (): Promise<Routes> => get<Routes>('/api/routes');
export const loadRegistries = (): Promise<Registry[]> => get<Registry[]>('/api/registries');
export const loadSource = (): Promise<ConfigSource> => get<ConfigSource>('/api/config/source');

// The stats buffer lives as long as the page, so switching views keeps the history.
const MAX_POINTS = 300;
let points: StatPoint[] = [];

export async function pollStats(): Promise<StatPoint[]> {
  const since = points.length ? points[points.length - 1]!.t : 0;
  const r = await get<{ intervalMs: number; points: StatPoint[] }>(`/api/stats?since=${since}`);
  const fresh = r.points.filter((p) => p.t > since);
  if (fresh.length) points = points.concat(fresh).slice(-MAX_POINTS);
  return points;
}
