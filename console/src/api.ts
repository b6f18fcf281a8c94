// Admin API client: every call says it comes from the console (so a 401
// challenges with Bearer only and the browser shows no native dialog) and
// carries the credential the user logged in with (kept in sessionStorage).

const KEY = 'meshgate.credential';

export type Credential = { kind: 'token'; token: string } | { kind: 'basic'; user: string; password: string };

export function getCredential(): Credential | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Credential) : null;
  } catch {
    return null;
  }
}

export function setCredential(c: Credential | null): void {
  if (c) sessionStorage.setItem(KEY, JSON.stringify(c));
  else sessionStorage.removeItem(KEY);
}

function authHeader(c: Credential | null): string | undefined {
  if (!c) return undefined;
  if (c.kind === 'token') return `Bearer ${c.token}`;
  // btoa needs Latin-1: encode UTF-8 first so any password works.
  const bytes = new TextEncoder().encode(`${c.user}:${c.password}`);
  let bin = '';
  bytes.forEach((b) => (bin += String.fromCharCode(b)));
  return `Basic ${btoa(bin)}`;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

type Listener = () => void;
const unauthorized = new Set<Listener>();
/** Called when any request answers 401: the app shows the login form. */
export function onUnauthorized(l: Listener): () => void {
  unauthorized.add(l);
  return () => unauthorized.delete(l);
}

export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** A request whose non-2xx answers are returned, not thrown (apply needs 400/409/503 bodies). */
export async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown, cred: Credential | null = getCredential()): Promise<Answer<T>> {
  const headers: Record<string, string> = { 'x-meshgate-console': '1', accept: 'application/json' };
  const auth = authHeader(cred);
  if (auth) headers.authorization = auth;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store', credentials: 'omit' });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (e.g. /metrics): keep the text.
  }
  if (res.status === 401 && cred === getCredential()) unauthorized.forEach((l) => l());
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export async function get<T>(path: string): Promise<T> {
  return (await getAnswer<T>(path)).body;
}

/** get(), with the answer's headers (a page of /api/services counts its matches in x-total-count). */
export async function getAnswer<T>(path: string): Promise<Answer<T>> {
  const a = await call<T>('GET', path);
  if (a.status < 200 || a.status > 299) {
    const err = (a.body as { error?: string } | null)?.error;
    throw new ApiError(a.status, err ?? `${path}: HTTP ${a.status}`, a.body);
  }
  return a;
}

export const post = <T>(path: string, body: unknown): Promise<Answer<T>> => call<T>('POST', path, body);

// ---- shapes (as served by src/admin) ----

export interface Whoami {
  name: string | null;
  role: 'admin' | 'read';
  readOnly: boolean;
  authEnabled: boolean;
}

export interface Endpoint {
  host: string;
  port: number;
  weight: number;
  healthy: boolean;
  registryHealthy?: boolean;
  checkHealthy?: boolean;
  ejected?: boolean;
  ejectedUntil?: string | number | null;
  active?: number;
  metadata?: Record<string, string>;
}

export interface BreakerView {
  rule: number;
  strategy: string;
  threshold: number;
  state: string;
  scope?: string;
  instance?: string;
  window?: { total?: number; errors?: number; slow?: number; ratio?: number };
  [k: string]: unknown;
}

export interface Service {
  name: string;
  registry: string | null;
  version: number;
  routed: boolean;
  endpoints: Endpoint[];
  breakers?: { service: string; breakers: BreakerView[] };
  outlier?: { config?: Record<string, unknown>; maxEjected?: number; ejected?: unknown[] };
}

export interface Backend {
  service: string;
  weight?: number;
  subset?: Record<string, string>;
  [k: string]: unknown;
}

export interface FilterView {
  type: string;
  phase?: string;
  state?: unknown;
}

export interface RouteView {
  name: string;
  kind: string;
  match: Record<string, unknown>;
  backends?: Backend[];
  canary?: { backends?: Backend[]; [k: string]: unknown };
  grey?: Record<string, unknown>;
  filters: FilterView[];
}

export interface Routes {
  version: number;
  routes: RouteView[];
  globalFilters: FilterView[];
}

export interface Registry {
  name: string;
  type: string;
  up: boolean;
  synced: boolean;
  services: number;
  lastChangeAt?: string;
  error?: string;
  lastError?: string;
  details?: unknown;
}

export interface LastReload {
  at: number;
  ok: boolean;
  error?: string;
}

export interface Overview {
  version: number;
  startedAt: number;
  lastReload?: LastReload;
  workers: number;
  registries: Array<{ name: string; type: string; up: boolean; synced: boolean; services?: number; lastError?: string }>;
  services: { total: number; withoutHealthy: string[] };
  routes: number;
  configPath: string | null;
}

export interface StatPoint {
  t: number;
  rps: number;
  errorRate: number;
  byFlag: Record<string, number>;
  p50: number;
  p99: number;
}

export interface ConfigSource {
  path: string | null;
  text: string;
  /** null when there is no file (or it cannot be read). */
  hash: string | null;
  writable: boolean;
  /** Why the file cannot be written, when it cannot. */
  notWritable?: string;
  /** The file could not be read. */
  error?: string;
  /** Secret values are shown as *** (role read). */
  masked?: boolean;
  runningVersion: number;
  fileMatchesRunning: boolean;
  history: Array<{ hash: string | null; at: number | string; by: string | null; version: number }>;
  canRollback: boolean;
}

export type Validation = { ok: true; warnings: string[]; summary: string } | { ok: false; problems: string[]; warnings: string[] };

/** The gateway's order of services (/api/services sorts names by code unit). */
export const nameOrder = (a: { name: string }, b: { name: string }): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Worker mode: the live view per worker; merged here (ejected if any worker ejected, in-flight summed). */
export function mergeLive(workers: unknown[]): Service[] {
  const byName = new Map<string, Service>();
  for (const w of workers) {
    const list = (Array.isArray(w) ? w : (w as { services?: Service[] }).services ?? []) as Service[];
    for (const s of list) {
      const have = byName.get(s.name);
      if (!have) {
        byName.set(s.name, { ...s, endpoints: s.endpoints.map((e) => ({ ...e })) });
        continue;
      }
      for (const e of s.endpoints) {
        const m = have.endpoints.find((x) => x.host === e.host && x.port === e.port);
        if (!m) {
          have.endpoints.push({ ...e });
          continue;
        }
        m.ejected = Boolean(m.ejected || e.ejected);
        m.healthy = m.healthy && e.healthy;
        m.active = (m.active ?? 0) + (e.active ?? 0);
      }
      // A breaker is shown open when any worker has it open.
      if (s.breakers && have.breakers) {
        for (const b of s.breakers.breakers) {
          const m = have.breakers.breakers.find((x) => x.rule === b.rule && x.instance === b.instance);
          if (m && b.state !== 'closed') m.state = b.state;
        }
      }
    }
  }
  return [...byName.values()].sort(nameOrder);
}
