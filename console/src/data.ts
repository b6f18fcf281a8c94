// Loaders shared by pages: the overview (with a fallback built from the older
// endpoints), services (merged per worker in worker mode), the stats buffer.
import { ApiError, get, mergeLive, type ConfigSource, type LastReload, type Overview, type Registry, type Routes, type Service, type StatPoint } from './api';

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

/** Every service; in worker mode the instance state is each worker's live view, merged. */
export async function loadServices(): Promise<Service[]> {
  if (workersKnown === undefined) await loadOverview().catch(() => undefined);
  const plain = await get<Service[] | { workers: unknown[] }>('/api/services');
  if (Array.isArray(plain) && !workersKnown) return plain;
  const live = await get<{ workers?: unknown[] } | Service[]>('/api/services?live=1');
  if (Array.isArray(live) || !Array.isArray(live.workers)) return Array.isArray(plain) ? plain : [];
  const merged = mergeLive(live.workers);
  // Registry names come from the control plane (workers do not talk to registries).
  if (Array.isArray(plain)) {
    const reg = new Map(plain.map((s) => [s.name, s.registry]));
    for (const s of merged) s.registry = reg.get(s.name) ?? s.registry;
    for (const s of plain) if (!merged.some((m) => m.name === s.name)) merged.push(s);
    merged.sort((a, b) => a.name.localeCompare(b.name));
  }
  return merged;
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
