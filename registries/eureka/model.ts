// The local copy of a Eureka registry: every instance of every application
// (all statuses, as the server holds them, so the reconcile hashcode can be
// checked), built from a full /apps answer and updated by /apps/delta.
import type { Endpoint } from '../../src/discovery/types.js';

export class EurekaPayloadError extends Error {}

export interface EurekaInstance {
  id: string;
  app: string;
  /** The status the server reports (what apps__hashcode counts). */
  status: string;
  overriddenStatus: string | undefined;
  host: string;
  port: number | undefined;
  securePort: number | undefined;
  metadata: Record<string, string>;
}

/** app name (upper case, as Eureka keeps it) -> instance id -> instance */
export type EurekaApps = Map<string, Map<string, EurekaInstance>>;

export interface ApplicationsAnswer {
  versionsDelta: string;
  hashcode: string;
  /** Instances in answer order; deltas carry actionType. */
  instances: { instance: EurekaInstance; actionType: string | undefined }[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Eureka's older JSON codec writes a one-element list as the element itself. */
function asList(v: unknown): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

function portOf(v: unknown): { port: number; enabled: boolean } | undefined {
  // {"$": 8080, "@enabled": "true"}; some writers send a bare number.
  if (typeof v === 'number' || typeof v === 'string') {
    const n = Number(v);
    return Number.isInteger(n) && n > 0 && n < 65536 ? { port: n, enabled: true } : undefined;
  }
  if (!isRecord(v)) return undefined;
  const n = Number(v.$);
  if (!Number.isInteger(n) || n <= 0 || n >= 65536) return undefined;
  return { port: n, enabled: String(v['@enabled'] ?? 'true') === 'true' };
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

function parseInstance(raw: unknown, appName: string): EurekaInstance | undefined {
  if (!isRecord(raw)) throw new EurekaPayloadError(`application ${appName}: instance is not an object`);
  const hostName = str(raw.hostName);
  // InstanceInfo.getId(): instanceId, else (non-AWS) the host name.
  const id = str(raw.instanceId) || hostName;
  const status = str(raw.status);
  if (!id || !status) return undefined;
  const port = portOf(raw.port);
  const secure = portOf(raw.securePort);
  const metadata: Record<string, string> = {};
  if (isRecord(raw.metadata)) {
    for (const [k, v] of Object.entries(raw.metadata)) if (k !== '@class' && v !== null && v !== undefined) metadata[k] = String(v);
  }
  const overridden = str(raw.overriddenStatus) || str(raw.overriddenstatus);
  return {
    id,
    app: (str(raw.app) || appName).toUpperCase(),
    status,
    overriddenStatus: overridden || undefined,
    host: str(raw.ipAddr) || hostName,
    port: port?.enabled ? port.port : undefined,
    securePort: secure?.enabled ? secure.port : undefined,
    metadata,
  };
}

/** Parse a /apps or /apps/delta JSON answer. Throws on anything not shaped like one. */
export function parseApplications(body: unknown): ApplicationsAnswer {
  if (!isRecord(body) || !isRecord(body.applications)) throw new EurekaPayloadError('expected {"applications": {...}}');
  const a = body.applications;
  const out: ApplicationsAnswer = { versionsDelta: str(a.versions__delta), hashcode: str(a.apps__hashcode), instances: [] };
  if (a.application !== undefined && a.application !== null && !Array.isArray(a.application) && !isRecord(a.application)) {
    throw new EurekaPayloadError('"application" is neither a list nor an object');
  }
  for (const app of asList(a.application)) {
    if (!isRecord(app) || typeof app.name !== 'string') throw new EurekaPayloadError('application without a name');
    for (const raw of asList(app.instance)) {
      const instance = parseInstance(raw, app.name);
      if (instance) out.instances.push({ instance, actionType: isRecord(raw) ? str(raw.actionType) || undefined : undefined });
    }
  }
  return out;
}

export function appsFromFull(answer: ApplicationsAnswer): EurekaApps {
  const apps: EurekaApps = new Map();
  for (const { instance } of answer.instances) {
    let m = apps.get(instance.app);
    if (!m) apps.set(instance.app, (m = new Map()));
    m.set(instance.id, instance);
  }
  return apps;
}

/**
 * Apply a delta to a copy of `apps` (the caller keeps the old copy if the
 * hashcode does not match). Deltas repeat changes for ~3 minutes, so applying
 * one twice must be harmless: ADDED/MODIFIED upsert, DELETED removes.
 */
export function applyDelta(apps: EurekaApps, delta: ApplicationsAnswer): { apps: EurekaApps; changed: Set<string> } {
  const next: EurekaApps = new Map(apps);
  const copied = new Set<string>();
  const changed = new Set<string>();
  const writable = (app: string): Map<string, EurekaInstance> => {
    let m = next.get(app);
    if (!copied.has(app)) {
      m = new Map(m ?? []);
      next.set(app, m);
      copied.add(app);
    }
    return m!;
  };
  for (const { instance, actionType } of delta.instances) {
    if (actionType === 'ADDED' || actionType === 'MODIFIED') {
      writable(instance.app).set(instance.id, instance);
      changed.add(instance.app);
    } else if (actionType === 'DELETED') {
      if (!next.get(instance.app)?.has(instance.id)) continue;
      writable(instance.app).delete(instance.id);
      changed.add(instance.app);
    }
  }
  // Eureka lists no application without instances.
  for (const app of copied) if (next.get(app)!.size === 0) next.delete(app);
  return { apps: next, changed };
}

/** Eureka's reconcile hashcode: instance counts by status, statuses sorted, e.g. "DOWN_1_UP_2_". */
export function reconcileHashcode(apps: EurekaApps): string {
  const counts = new Map<string, number>();
  for (const m of apps.values()) for (const i of m.values()) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  let out = '';
  for (const status of [...counts.keys()].sort()) out += `${status}_${counts.get(status)}_`;
  return out;
}

/**
 * Routable only when UP: the instance reports UP and no override (PUT
 * .../status, e.g. OUT_OF_SERVICE during a deploy) says otherwise.
 */
export function isRoutable(i: EurekaInstance): boolean {
  if (i.status !== 'UP') return false;
  return i.overriddenStatus === undefined || i.overriddenStatus === 'UP' || i.overriddenStatus === 'UNKNOWN';
}

/** metadata.weight is a string in Eureka; anything that is not a number >= 0 means the default 1. */
export function weightOf(md: Record<string, string>): number {
  const raw = md.weight;
  if (raw === undefined || raw.trim() === '') return 1;
  const w = Number(raw);
  return Number.isFinite(w) && w >= 0 ? w : 1;
}

export function endpointsOf(instances: Iterable<EurekaInstance>): Endpoint[] {
  const out: Endpoint[] = [];
  for (const i of instances) {
    if (!isRoutable(i) || !i.host) continue;
    const metadata = { ...i.metadata };
    let port = i.port;
    if (port === undefined && i.securePort !== undefined) {
      // Only the secure port is enabled: say so, the upstream needs TLS.
      port = i.securePort;
      metadata.secure = 'true';
    }
    if (port === undefined) continue;
    if (metadata['eureka.instanceId'] === undefined) metadata['eureka.instanceId'] = i.id;
    out.push({ host: i.host, port, weight: weightOf(i.metadata), healthy: true, metadata });
  }
  return out;
}

export function eurekaServiceName(app: string): string {
  return `${app.toLowerCase()}.eureka`;
}
