// A protocol-faithful Eureka server double (node:http), REST API under a
// prefix: /eureka (Spring Cloud) or /eureka/v2 (Netflix).
//   GET  {p}/apps, {p}/apps/delta, {p}/apps/{APP}, {p}/apps/{APP}/{ID}
//   POST {p}/apps/{APP}               register           -> 204
//   PUT  {p}/apps/{APP}/{ID}          heartbeat          -> 200, 404 if unknown
//   DELETE {p}/apps/{APP}/{ID}        deregister         -> 200, 404 if unknown
//   PUT/DELETE {p}/apps/{APP}/{ID}/status?value=...      status override
//   PUT  {p}/apps/{APP}/{ID}/metadata?k=v                metadata update
// JSON only when the client sends Accept: application/json (XML otherwise).
// /apps/delta holds every instance changed in the last 3 minutes, once, in
// its latest state with actionType ADDED/MODIFIED/DELETED; apps__hashcode
// (e.g. "DOWN_1_UP_2_") is always over the whole registry.
// Fault hooks: outage, failWith, garbage, silent changes (missing from the
// delta, so a client's hashcode check fails), a corrupted delta hashcode,
// deltas disabled (403).
import http from 'node:http';
import { RestartableServer } from '../lib/restartable-server.js';

type Json = Record<string, unknown>;

export interface EurekaDoubleOptions {
  /** '/eureka' (Spring Cloud, default) or '/eureka/v2' (Netflix). */
  prefix?: string;
  /** Require HTTP Basic auth. */
  auth?: { user: string; password: string };
  /** How long changes stay in /apps/delta (Eureka: 180 s). */
  deltaRetentionMs?: number;
  /** Evict instances whose lease expired (no heartbeat for leaseInfo.durationInSecs), checked this often; off when unset. */
  evictionIntervalMs?: number;
}

export interface InstanceInput {
  app: string;
  instanceId?: string;
  hostName?: string;
  ipAddr: string;
  port: number;
  securePort?: number;
  securePortEnabled?: boolean;
  portEnabled?: boolean;
  status?: string;
  metadata?: Record<string, string>;
  vipAddress?: string;
}

export interface ChangeOptions {
  /** The change is not recorded in /apps/delta (a lost replication event): clients only see it in a full fetch. */
  silent?: boolean;
}

export type EurekaGarbage = 'invalid-json' | 'wrong-shape' | 'xml';

interface DeltaEntry {
  at: number;
  key: string;
  snapshot: Json;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

const STATUSES = new Set(['UP', 'DOWN', 'STARTING', 'OUT_OF_SERVICE', 'UNKNOWN']);

export class EurekaDouble {
  readonly prefix: string;
  private readonly opts: EurekaDoubleOptions;
  private readonly http = new RestartableServer((req, res) => this.handle(req, res));
  private evictTimer: NodeJS.Timeout | undefined;

  /** APP -> id -> instance JSON (exactly as served) */
  private readonly registry = new Map<string, Map<string, Json>>();
  /** Status overrides survive re-registration, as in Eureka's overriddenInstanceStatusMap. */
  private readonly overrides = new Map<string, string>();
  private readonly lastRenewal = new Map<string, number>();
  private deltaQueue: DeltaEntry[] = [];
  private version = 1;

  private failure: { status: number; body: string } | undefined;
  private garbageMode: EurekaGarbage | undefined;
  /** Hook: the next delta answers carry a wrong apps__hashcode. */
  corruptDeltaHashcode = false;
  /** Hook: /apps/delta answers 403, as a server with deltas disabled. */
  deltaDisabled = false;
  readonly requests: RecordedRequest[] = [];

  constructor(opts: EurekaDoubleOptions = {}) {
    this.opts = opts;
    this.prefix = (opts.prefix ?? '/eureka').replace(/\/+$/, '');
  }

  async start(port = 0): Promise<string> {
    await this.http.listen(port);
    if (this.opts.evictionIntervalMs && !this.evictTimer) {
      this.evictTimer = setInterval(() => this.evictExpired(), this.opts.evictionIntervalMs);
      this.evictTimer.unref();
    }
    return this.url;
  }

  /** Base URL for clients, e.g. http://127.0.0.1:PORT/eureka (with credentials when auth is on). */
  get url(): string {
    const creds = this.opts.auth ? `${encodeURIComponent(this.opts.auth.user)}:${encodeURIComponent(this.opts.auth.password)}@` : '';
    return `http://${creds}127.0.0.1:${this.http.port}${this.prefix}`;
  }

  get listenPort(): number {
    return this.http.port;
  }

  async outage(): Promise<void> {
    await this.http.close();
  }

  async recover(): Promise<void> {
    if (!this.http.listening) await this.start(this.http.port);
  }

  async stop(): Promise<void> {
    if (this.evictTimer) clearInterval(this.evictTimer);
    this.evictTimer = undefined;
    await this.outage();
  }

  failWith(status: number | undefined, body = 'Service Unavailable'): void {
    this.failure = status ? { status, body } : undefined;
  }

  garbage(mode: EurekaGarbage | undefined): void {
    this.garbageMode = mode;
  }

  // ---------- registry changes ----------

  private key(app: string, id: string): string {
    return `${app.toUpperCase()}/${id}`;
  }

  private record(app: string, id: string, inst: Json, actionType: 'ADDED' | 'MODIFIED' | 'DELETED', opts: ChangeOptions): void {
    const now = Date.now();
    inst.actionType = actionType;
    inst.lastUpdatedTimestamp = String(now);
    this.version++;
    if (!opts.silent) this.deltaQueue.push({ at: now, key: this.key(app, id), snapshot: structuredClone(inst) });
  }

  private instanceJson(input: InstanceInput, leaseDurationSecs = 90): Json {
    const now = Date.now();
    const app = input.app.toUpperCase();
    const hostName = input.hostName ?? input.ipAddr;
    return {
      instanceId: input.instanceId ?? `${hostName}:${input.app.toLowerCase()}:${input.port}`,
      hostName,
      app,
      ipAddr: input.ipAddr,
      status: input.status ?? 'UP',
      overriddenStatus: 'UNKNOWN',
      port: { $: input.port, '@enabled': String(input.portEnabled ?? true) },
      securePort: { $: input.securePort ?? 443, '@enabled': String(input.securePortEnabled ?? false) },
      countryId: 1,
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
      leaseInfo: {
        renewalIntervalInSecs: 30,
        durationInSecs: leaseDurationSecs,
        registrationTimestamp: now,
        lastRenewalTimestamp: now,
        evictionTimestamp: 0,
        serviceUpTimestamp: now,
      },
      metadata: input.metadata && Object.keys(input.metadata).length ? { ...input.metadata } : { '@class': 'java.util.Collections$EmptyMap' },
      homePageUrl: `http://${hostName}:${input.port}/`,
      statusPageUrl: `http://${hostName}:${input.port}/actuator/info`,
      healthCheckUrl: `http://${hostName}:${input.port}/actuator/health`,
      vipAddress: input.vipAddress ?? input.app.toLowerCase(),
      secureVipAddress: input.vipAddress ?? input.app.toLowerCase(),
      isCoordinatingDiscoveryServer: 'false',
      lastUpdatedTimestamp: String(now),
      lastDirtyTimestamp: String(now),
    };
  }

  /** Register (or re-register) an instance. Returns its id. */
  register(input: InstanceInput, opts: ChangeOptions = {}): string {
    return this.put(this.instanceJson(input), opts);
  }

  private put(inst: Json, opts: ChangeOptions): string {
    const app = String(inst.app).toUpperCase();
    inst.app = app;
    const id = String(inst.instanceId || inst.hostName);
    const k = this.key(app, id);
    const override = this.overrides.get(k);
    if (override) {
      inst.overriddenStatus = override;
      // An instance reporting DOWN or STARTING keeps that status; otherwise the override wins (Eureka's rules).
      if (inst.status !== 'DOWN' && inst.status !== 'STARTING') inst.status = override;
    }
    let m = this.registry.get(app);
    if (!m) this.registry.set(app, (m = new Map()));
    const existed = m.has(id);
    m.set(id, inst);
    this.lastRenewal.set(k, Date.now());
    this.record(app, id, inst, existed ? 'MODIFIED' : 'ADDED', opts);
    return id;
  }

  private find(app: string, id: string): Json | undefined {
    return this.registry.get(app.toUpperCase())?.get(id);
  }

  deregister(app: string, id: string, opts: ChangeOptions = {}): boolean {
    const A = app.toUpperCase();
    const m = this.registry.get(A);
    const inst = m?.get(id);
    if (!m || !inst) return false;
    m.delete(id);
    if (m.size === 0) this.registry.delete(A);
    this.lastRenewal.delete(this.key(A, id));
    this.record(A, id, inst, 'DELETED', opts);
    return true;
  }

  /** The instance reports a new status (as a heartbeat or re-registration with another status would). */
  setStatus(app: string, id: string, status: string, opts: ChangeOptions = {}): void {
    const inst = this.find(app, id);
    if (!inst) throw new Error(`unknown instance ${app}/${id}`);
    const override = this.overrides.get(this.key(app, id));
    inst.status = override && status !== 'DOWN' && status !== 'STARTING' ? override : status;
    inst.lastDirtyTimestamp = String(Date.now());
    this.record(app, id, inst, 'MODIFIED', opts);
  }

  /** PUT .../status?value=X: an operator override (e.g. OUT_OF_SERVICE during a deploy). */
  override(app: string, id: string, value: string, opts: ChangeOptions = {}): void {
    const inst = this.find(app, id);
    if (!inst) throw new Error(`unknown instance ${app}/${id}`);
    this.overrides.set(this.key(app, id), value);
    inst.overriddenStatus = value;
    inst.status = value;
    this.record(app, id, inst, 'MODIFIED', opts);
  }

  /** DELETE .../status: the override goes; the instance takes `value` (default UP). */
  removeOverride(app: string, id: string, value = 'UP', opts: ChangeOptions = {}): void {
    const inst = this.find(app, id);
    if (!inst) throw new Error(`unknown instance ${app}/${id}`);
    this.overrides.delete(this.key(app, id));
    inst.overriddenStatus = 'UNKNOWN';
    inst.status = value;
    this.record(app, id, inst, 'MODIFIED', opts);
  }

  /** Hook: set raw instance fields (e.g. status UP with an overriddenStatus, as seen mid-replication). */
  patch(app: string, id: string, fields: Json, opts: ChangeOptions = {}): void {
    const inst = this.find(app, id);
    if (!inst) throw new Error(`unknown instance ${app}/${id}`);
    Object.assign(inst, fields);
    this.record(app, id, inst, 'MODIFIED', opts);
  }

  setMetadata(app: string, id: string, md: Record<string, string>, opts: ChangeOptions = {}): void {
    const inst = this.find(app, id);
    if (!inst) throw new Error(`unknown instance ${app}/${id}`);
    const cur = { ...(inst.metadata as Record<string, string>) };
    delete cur['@class'];
    inst.metadata = { ...cur, ...md };
    this.record(app, id, inst, 'MODIFIED', opts);
  }

  private renew(app: string, id: string): boolean {
    const inst = this.find(app, id);
    if (!inst) return false;
    this.lastRenewal.set(this.key(app, id), Date.now());
    const lease = inst.leaseInfo as Json;
    lease.lastRenewalTimestamp = Date.now();
    return true;
  }

  evictExpired(): void {
    const now = Date.now();
    for (const [app, m] of [...this.registry]) {
      for (const [id, inst] of [...m]) {
        const secs = Number((inst.leaseInfo as Json | undefined)?.durationInSecs ?? 90);
        if (now - (this.lastRenewal.get(this.key(app, id)) ?? now) > secs * 1000) this.deregister(app, id);
      }
    }
  }

  instances(app: string): Json[] {
    return [...(this.registry.get(app.toUpperCase())?.values() ?? [])];
  }

  // ---------- payloads ----------

  /** Eureka's reconcile hashcode over the whole registry. */
  hashcode(): string {
    const counts = new Map<string, number>();
    for (const m of this.registry.values()) for (const i of m.values()) counts.set(String(i.status), (counts.get(String(i.status)) ?? 0) + 1);
    return [...counts.keys()].sort().map((s) => `${s}_${counts.get(s)}_`).join('');
  }

  private full(): Json {
    const application = [...this.registry.keys()].sort().map((name) => ({ name, instance: [...this.registry.get(name)!.values()] }));
    return { applications: { versions__delta: String(this.version), apps__hashcode: this.hashcode(), application } };
  }

  private delta(): Json {
    const cutoff = Date.now() - (this.opts.deltaRetentionMs ?? 180_000);
    this.deltaQueue = this.deltaQueue.filter((e) => e.at >= cutoff);
    // Each changed instance once, in its latest recorded state.
    const latest = new Map<string, Json>();
    for (const e of this.deltaQueue) latest.set(e.key, e.snapshot);
    const byApp = new Map<string, Json[]>();
    for (const inst of latest.values()) {
      const app = String(inst.app);
      if (!byApp.has(app)) byApp.set(app, []);
      byApp.get(app)!.push(inst);
    }
    const application = [...byApp.keys()].sort().map((name) => ({ name, instance: byApp.get(name)! }));
    const hash = this.corruptDeltaHashcode ? `UP_${9999}_` : this.hashcode();
    return { applications: { versions__delta: String(this.version), apps__hashcode: hash, application } };
  }

  private xml(apps: Json): string {
    const a = apps.applications as Json;
    const parts = [`<applications><versions__delta>${a.versions__delta}</versions__delta><apps__hashcode>${a.apps__hashcode}</apps__hashcode>`];
    for (const app of a.application as Json[]) {
      parts.push(`<application><name>${app.name}</name>`);
      for (const i of app.instance as Json[]) {
        parts.push(`<instance><instanceId>${i.instanceId}</instanceId><app>${i.app}</app><ipAddr>${i.ipAddr}</ipAddr><status>${i.status}</status><port enabled="true">${(i.port as Json).$}</port></instance>`);
      }
      parts.push('</application>');
    }
    parts.push('</applications>');
    return parts.join('');
  }

  // ---------- HTTP ----------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://eureka');
      this.requests.push({ method: req.method ?? 'GET', path: url.pathname, headers: req.headers });
      if (this.requests.length > 10_000) this.requests.splice(0, 5_000);
      try {
        this.route(req, res, url, Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        this.send(res, 500, 'text/plain', (e as Error).message);
      }
    });
  }

  private send(res: http.ServerResponse, status: number, type: string | undefined, body = ''): void {
    const headers: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(body) };
    if (type) headers['Content-Type'] = type;
    res.writeHead(status, headers);
    res.end(body);
  }

  private answer(req: http.IncomingMessage, res: http.ServerResponse, body: Json): void {
    if (this.garbageMode === 'invalid-json') return this.send(res, 200, 'application/json', '{"applications":{"versions__delta":"1","application":[{"name":');
    if (this.garbageMode === 'wrong-shape') return this.send(res, 200, 'application/json', JSON.stringify({ timestamp: Date.now(), status: 200, apps: 'none' }));
    const wantsJson = (req.headers.accept ?? '').includes('application/json');
    if (this.garbageMode === 'xml' || !wantsJson) return this.send(res, 200, 'application/xml', this.xml(body));
    this.send(res, 200, 'application/json', JSON.stringify(body));
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string): void {
    if (this.failure) return this.send(res, this.failure.status, 'text/plain', this.failure.body);
    if (this.opts.auth) {
      const expected = `Basic ${Buffer.from(`${this.opts.auth.user}:${this.opts.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.setHeader('WWW-Authenticate', 'Basic realm="Realm"');
        return this.send(res, 401, 'application/json', JSON.stringify({ timestamp: new Date().toISOString(), status: 401, error: 'Unauthorized', path: url.pathname }));
      }
    }
    if (!url.pathname.startsWith(`${this.prefix}/apps`)) return this.send(res, 404, 'text/plain', 'Not Found');
    const rest = url.pathname.slice(this.prefix.length + '/apps'.length).replace(/\/+$/, '');
    const parts = rest.split('/').filter(Boolean).map(decodeURIComponent);
    const method = req.method ?? 'GET';

    if (method === 'GET' && parts.length === 0) return this.answer(req, res, this.full());
    if (method === 'GET' && parts.length === 1 && parts[0] === 'delta') {
      if (this.deltaDisabled) return this.send(res, 403, undefined);
      return this.answer(req, res, this.delta());
    }
    const app = parts[0]?.toUpperCase() ?? '';
    const id = parts[1] ?? '';
    if (method === 'GET' && parts.length === 1) {
      const m = this.registry.get(app);
      if (!m) return this.send(res, 404, undefined);
      return this.send(res, 200, 'application/json', JSON.stringify({ application: { name: app, instance: [...m.values()] } }));
    }
    if (method === 'GET' && parts.length === 2) {
      const inst = this.find(app, id);
      if (!inst) return this.send(res, 404, undefined);
      return this.send(res, 200, 'application/json', JSON.stringify({ instance: inst }));
    }
    if (method === 'POST' && parts.length === 1) {
      let parsed: Json;
      try {
        parsed = JSON.parse(body) as Json;
      } catch {
        return this.send(res, 400, undefined);
      }
      const raw = (parsed.instance ?? parsed) as Json;
      if (!raw || typeof raw !== 'object' || (!raw.hostName && !raw.instanceId)) return this.send(res, 400, undefined);
      const port = typeof raw.port === 'object' && raw.port ? Number((raw.port as Json).$) : Number(raw.port ?? 7001);
      const portEnabled = typeof raw.port === 'object' && raw.port ? String((raw.port as Json)['@enabled'] ?? 'true') === 'true' : true;
      const inst = this.instanceJson(
        {
          app,
          instanceId: (raw.instanceId as string) || (raw.hostName as string),
          hostName: raw.hostName as string,
          ipAddr: (raw.ipAddr as string) ?? (raw.hostName as string),
          port,
          portEnabled,
          status: STATUSES.has(String(raw.status)) ? String(raw.status) : 'UP',
          metadata: (raw.metadata as Record<string, string>) ?? {},
          vipAddress: raw.vipAddress as string,
        },
        Number((raw.leaseInfo as Json | undefined)?.durationInSecs ?? 90),
      );
      if (raw.dataCenterInfo) inst.dataCenterInfo = raw.dataCenterInfo;
      this.put(inst, {});
      return this.send(res, 204, undefined);
    }
    if (method === 'PUT' && parts.length === 2) {
      // Heartbeat; an unknown instance answers 404 so the client registers again.
      return this.send(res, this.renew(app, id) ? 200 : 404, undefined);
    }
    if (method === 'DELETE' && parts.length === 2) {
      return this.send(res, this.deregister(app, id) ? 200 : 404, undefined);
    }
    if (parts.length === 3 && parts[2] === 'status') {
      if (!this.find(app, id)) return this.send(res, 404, undefined);
      const value = url.searchParams.get('value') ?? '';
      if (method === 'PUT') {
        if (!STATUSES.has(value)) return this.send(res, 400, undefined);
        this.override(app, id, value);
        return this.send(res, 200, undefined);
      }
      if (method === 'DELETE') {
        this.removeOverride(app, id, STATUSES.has(value) ? value : 'UP');
        return this.send(res, 200, undefined);
      }
    }
    if (method === 'PUT' && parts.length === 3 && parts[2] === 'metadata') {
      if (!this.find(app, id)) return this.send(res, 404, undefined);
      this.setMetadata(app, id, Object.fromEntries(url.searchParams));
      return this.send(res, 200, undefined);
    }
    return this.send(res, 405, undefined);
  }
}
