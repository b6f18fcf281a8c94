// A Nacos naming server double that speaks the v1 Open API and UDP push the way
// a Nacos 1.x/2.x server does for HTTP clients, so the real `nacos` npm client
// and the gateway can be tested against it. What it implements:
//   GET    /nacos/v1/ns/instance/list      ServiceInfo JSON; name and clusters echo the query
//   POST   /nacos/v1/ns/instance           register ("ok")
//   PUT    /nacos/v1/ns/instance           modify ("ok")
//   DELETE /nacos/v1/ns/instance           deregister ("ok")
//   PUT    /nacos/v1/ns/instance/beat      heartbeat; ephemeral instances that stop beating turn
//                                          unhealthy, then are deleted
//   GET    /nacos/v1/ns/service/list       {count, doms}
//   DELETE /nacos/v1/ns/service            delete an empty service
//   GET    /nacos/v1/ns/operator/metrics   {status:"UP", ...}
//   POST   /nacos/v1/auth/login            {accessToken, tokenTtl, globalAdmin}
// Every parameter may come in the query string (the npm client sends them all
// there, even for POST/PUT/DELETE) or in a form body.
// UDP push: a query with udpPort > 0 subscribes clientIP:udpPort to that
// (service, clusters); every change sends {"type":"dom","data":"<ServiceInfo>",
// "lastRefTime":N} (gzipped when >= 1024 bytes) and expects a push-ack.
// For test safety pushes go to 127.0.0.1 (the client's port is bound on all
// interfaces), not to the clientIP the client reports.
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface DoubleInstance {
  ip: string;
  port: number;
  weight: number;
  healthy: boolean;
  enabled: boolean;
  ephemeral: boolean;
  clusterName: string;
  metadata: Record<string, string>;
  lastBeat: number;
}

interface DoubleService {
  namespace: string;
  group: string;
  name: string;
  /** key ip:port:cluster */
  instances: Map<string, DoubleInstance>;
  emptySince?: number;
}

interface PushTarget {
  namespace: string;
  /** serviceName exactly as the client queried it (echoed in pushes). */
  queriedName: string;
  group: string;
  name: string;
  clusters: string;
  port: number;
  lastQuery: number;
}

export type FaultMode = 'none' | 'garbage' | 'wrong-shape' | 'error500';

export interface NacosDoubleOptions {
  /** Require auth on /nacos/v1/ns: accessToken, or username+password parameters. */
  auth?: { username: string; password: string };
  cacheMillis?: number;
  clientBeatInterval?: number;
  /** Ephemeral instance without a beat for this long: healthy=false. Default 15 s like Nacos. */
  unhealthyAfterMs?: number;
  /** ... and for this long: deleted. Default 30 s. */
  deleteAfterMs?: number;
  /** Delete services that stayed empty this long (Nacos 2 cleans after 60 s). Default: never. */
  emptyServiceCleanMs?: number;
  /** Forget a push subscriber that has not queried for this long. Default 30 s. */
  pushClientTtlMs?: number;
  tokenTtlSec?: number;
  /** Fixed port (for restarts); default: any free port. */
  port?: number;
}

const DEFAULT_GROUP = 'DEFAULT_GROUP';
const DEFAULT_CLUSTER = 'DEFAULT';

export class NacosDouble {
  private server: Server | undefined;
  private udp: Socket | undefined;
  private readonly services = new Map<string, DoubleService>();
  private readonly targets = new Map<string, PushTarget>();
  private readonly tokens = new Map<string, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private refTime = 0;
  port = 0;
  /** Fault injection for the HTTP API (naming endpoints only). */
  fault: FaultMode = 'none';
  /** Set: the service list answers this page number with a 500 (a listing cut half way). */
  failListPage: number | undefined;
  /** Service-list pages asked for. */
  listPages = 0;
  /** Turn UDP push off to test the polling fallback. */
  pushEnabled = true;
  readonly stats = { requests: 0, pushesSent: 0, pushAcks: 0, logins: 0, beats: 0, rejected: 0 };
  /** Query parameters of every request, newest last (bounded). */
  readonly requestLog: Array<{ method: string; path: string; params: Record<string, string> }> = [];

  constructor(private readonly opts: NacosDoubleOptions = {}) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? this.port ?? 0, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    const udp = createSocket('udp4');
    udp.on('message', (msg) => this.onAck(msg));
    udp.on('error', () => {});
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    this.udp = udp;
    this.sweeper = setInterval(() => this.sweep(), 250);
    this.sweeper.unref();
    return this;
  }

  /** Stop serving (an outage). Data is kept; start() again serves it on the same port. */
  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
    const udp = this.udp;
    this.udp = undefined;
    if (udp) await new Promise<void>((r) => udp.close(() => r()));
  }

  // ---------- programmatic access for tests (same effects as the HTTP API) ----------

  register(service: string, inst: Partial<DoubleInstance> & { ip: string; port: number }, group = DEFAULT_GROUP, namespace = 'public'): void {
    const svc = this.service(namespace, group, service, true)!;
    const full: DoubleInstance = {
      weight: 1,
      healthy: true,
      enabled: true,
      ephemeral: false,
      clusterName: DEFAULT_CLUSTER,
      metadata: {},
      lastBeat: Date.now(),
      ...inst,
    };
    svc.instances.set(`${full.ip}:${full.port}:${full.clusterName}`, full);
    svc.emptySince = undefined;
    this.changed(svc);
  }

  deregister(service: string, ip: string, port: number, group = DEFAULT_GROUP, namespace = 'public', cluster = DEFAULT_CLUSTER): void {
    const svc = this.service(namespace, group, service, false);
    if (!svc) return;
    if (svc.instances.delete(`${ip}:${port}:${cluster}`)) {
      if (svc.instances.size === 0) svc.emptySince = Date.now();
      this.changed(svc);
    }
  }

  update(service: string, ip: string, port: number, patch: Partial<DoubleInstance>, group = DEFAULT_GROUP, namespace = 'public', cluster = DEFAULT_CLUSTER): void {
    const inst = this.service(namespace, group, service, false)?.instances.get(`${ip}:${port}:${cluster}`);
    if (!inst) throw new Error(`no instance ${ip}:${port} in ${service}`);
    Object.assign(inst, patch);
    this.changed(this.service(namespace, group, service, false)!);
  }

  /** Replace a service's whole instance list in one change (one push). */
  setInstances(service: string, list: Array<Partial<DoubleInstance> & { ip: string; port: number }>, group = DEFAULT_GROUP, namespace = 'public'): void {
    const svc = this.service(namespace, group, service, true)!;
    svc.instances.clear();
    for (const inst of list) {
      const full: DoubleInstance = { weight: 1, healthy: true, enabled: true, ephemeral: false, clusterName: DEFAULT_CLUSTER, metadata: {}, lastBeat: Date.now(), ...inst };
      svc.instances.set(`${full.ip}:${full.port}:${full.clusterName}`, full);
    }
    svc.emptySince = svc.instances.size ? undefined : Date.now();
    this.changed(svc);
  }

  deleteService(service: string, group = DEFAULT_GROUP, namespace = 'public'): void {
    this.services.delete(this.key(namespace, group, service));
  }

  instances(service: string, group = DEFAULT_GROUP, namespace = 'public'): DoubleInstance[] {
    return [...(this.service(namespace, group, service, false)?.instances.values() ?? [])];
  }

  serviceNames(group = DEFAULT_GROUP, namespace = 'public'): string[] {
    return [...this.services.values()].filter((s) => s.group === group && s.namespace === namespace).map((s) => s.name);
  }

  pushSubscribers(): number {
    return this.targets.size;
  }

  /** Send raw bytes to every push subscriber (garbage-push tests). */
  pushRaw(data: Buffer): void {
    for (const t of this.targets.values()) this.udp?.send(data, t.port, '127.0.0.1');
  }

  // ---------- HTTP ----------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    const params: Record<string, string> = Object.fromEntries(url.searchParams);
    const body = await readBody(req);
    if (body && (req.headers['content-type'] ?? '').includes('application/x-www-form-urlencoded')) {
      for (const [k, v] of new URLSearchParams(body)) params[k] ??= v;
    }
    const method = req.method ?? 'GET';
    const path = url.pathname;
    this.requestLog.push({ method, path, params });
    if (this.requestLog.length > 5000) this.requestLog.splice(0, 1000);

    try {
      if (path === '/nacos/v1/auth/login' || path === '/nacos/v1/auth/users/login') {
        if (method !== 'POST') return send(res, 405, 'method not allowed');
        return this.login(params, res);
      }
      if (!path.startsWith('/nacos/v1/ns/')) return send(res, 404, 'not found');
      if (this.opts.auth && !this.authorized(params, req)) {
        this.stats.rejected++;
        return sendJson(res, 403, { timestamp: new Date().toISOString(), status: 403, error: 'Forbidden', message: 'user not found!', path });
      }
      if (this.fault === 'error500') return send(res, 500, 'server is broken');
      const route = `${method} ${path.slice('/nacos/v1/ns'.length)}`;
      switch (route) {
        case 'GET /instance/list':
          return this.instanceList(params, res);
        case 'POST /instance':
          return this.registerHttp(params, res);
        case 'PUT /instance':
          return this.modifyHttp(params, res);
        case 'DELETE /instance':
          return this.deregisterHttp(params, res);
        case 'PUT /instance/beat':
          return this.beat(params, res);
        case 'GET /service/list':
          return this.serviceList(params, res);
        case 'DELETE /service':
          return this.deleteServiceHttp(params, res);
        case 'GET /operator/metrics':
          return sendJson(res, 200, {
            status: 'UP',
            serviceCount: this.services.size,
            instanceCount: [...this.services.values()].reduce((n, s) => n + s.instances.size, 0),
            subscribeCount: this.targets.size,
            responsibleInstanceCount: 0,
            clientCount: this.targets.size,
            connectionBasedClientCount: 0,
            ephemeralIpPortClientCount: 0,
            persistentIpPortClientCount: 0,
            responsibleClientCount: 0,
            cpu: 0,
            load: 0,
            mem: 0,
          });
        default:
          return send(res, 404, `no such API: ${route}`);
      }
    } catch (err) {
      return send(res, 400, `caused: ${(err as Error).message};`);
    }
  }

  private login(params: Record<string, string>, res: ServerResponse): void {
    const a = this.opts.auth;
    if (!a || params.username !== a.username || params.password !== a.password) {
      return sendJson(res, 403, { timestamp: new Date().toISOString(), status: 403, error: 'Forbidden', message: 'unknown user!', path: '/nacos/v1/auth/login' });
    }
    this.stats.logins++;
    const ttl = this.opts.tokenTtlSec ?? 18000;
    const token = randomBytes(24).toString('base64url');
    this.tokens.set(token, Date.now() + ttl * 1000);
    sendJson(res, 200, { accessToken: token, tokenTtl: ttl, globalAdmin: true, username: a.username });
  }

  private authorized(params: Record<string, string>, req: IncomingMessage): boolean {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const token = params.accessToken ?? bearer;
    if (token) {
      const exp = this.tokens.get(token);
      return exp !== undefined && exp > Date.now();
    }
    // Nacos resolves username/password parameters into a login when no token is sent.
    const a = this.opts.auth!;
    return params.username === a.username && params.password === a.password;
  }

  private parseName(params: Record<string, string>): { namespace: string; group: string; name: string } {
    const raw = params.serviceName;
    if (!raw) throw new Error('Param \'serviceName\' is required.');
    const namespace = params.namespaceId || 'public';
    const at = raw.indexOf('@@');
    if (at >= 0) return { namespace, group: raw.slice(0, at), name: raw.slice(at + 2) };
    return { namespace, group: params.groupName || DEFAULT_GROUP, name: raw };
  }

  private instanceList(params: Record<string, string>, res: ServerResponse): void {
    const { namespace, group, name } = this.parseName(params);
    const clusters = params.clusters ?? '';
    const udpPort = Number(params.udpPort ?? 0);
    if (udpPort > 0) {
      const key = `${namespace}|${params.serviceName}|${clusters}|${udpPort}`;
      const t = this.targets.get(key);
      if (t) t.lastQuery = Date.now();
      else this.targets.set(key, { namespace, queriedName: params.serviceName!, group, name, clusters, port: udpPort, lastQuery: Date.now() });
    }
    if (this.fault === 'garbage') return send(res, 200, '{"name": "oops", hosts: [', 'application/json');
    if (this.fault === 'wrong-shape') return sendJson(res, 200, { name: params.serviceName, clusters, hosts: { not: 'a list' }, lastRefTime: Date.now() });
    const info = this.serviceInfo(namespace, group, name, params.serviceName!, clusters, params.healthyOnly === 'true');
    sendJson(res, 200, info);
  }

  private serviceInfo(namespace: string, group: string, name: string, echoName: string, clusters: string, healthyOnly: boolean) {
    const svc = this.service(namespace, group, name, false);
    const wanted = clusters ? new Set(clusters.split(',')) : undefined;
    const hosts = [];
    for (const i of svc?.instances.values() ?? []) {
      if (wanted && !wanted.has(i.clusterName)) continue;
      if (healthyOnly && !i.healthy) continue;
      hosts.push({
        instanceId: `${i.ip}#${i.port}#${i.clusterName}#${group}@@${name}`,
        ip: i.ip,
        port: i.port,
        weight: i.weight,
        healthy: i.healthy,
        enabled: i.enabled,
        ephemeral: i.ephemeral,
        clusterName: i.clusterName,
        serviceName: `${group}@@${name}`,
        metadata: i.metadata,
        instanceHeartBeatInterval: 5000,
        instanceHeartBeatTimeOut: this.opts.unhealthyAfterMs ?? 15000,
        ipDeleteTimeout: this.opts.deleteAfterMs ?? 30000,
        instanceIdGenerator: 'simple',
      });
    }
    const lastRefTime = this.nextRefTime();
    return {
      name: echoName,
      groupName: group,
      clusters,
      cacheMillis: this.opts.cacheMillis ?? 10000,
      hosts,
      lastRefTime,
      checksum: createHash('md5').update(JSON.stringify(hosts)).digest('hex'),
      allIPs: false,
      reachProtectionThreshold: false,
      valid: true,
    };
  }

  /** Strictly increasing, like Nacos' lastRefTime per change. */
  private nextRefTime(): number {
    this.refTime = Math.max(this.refTime + 1, Date.now());
    return this.refTime;
  }

  private registerHttp(params: Record<string, string>, res: ServerResponse): void {
    const { namespace, group, name } = this.parseName(params);
    const ip = params.ip;
    const port = Number(params.port);
    if (!ip || !Number.isInteger(port)) throw new Error('ip and port are required');
    let metadata: Record<string, string> = {};
    if (params.metadata) metadata = JSON.parse(params.metadata) as Record<string, string>;
    // The npm client sends `enable`, the Open API documents `enabled`.
    const enabledRaw = params.enabled ?? params.enable;
    this.register(
      name,
      {
        ip,
        port,
        weight: params.weight !== undefined ? Number(params.weight) : 1,
        healthy: params.healthy !== 'false',
        enabled: enabledRaw !== 'false',
        ephemeral: params.ephemeral !== 'false',
        clusterName: params.clusterName || DEFAULT_CLUSTER,
        metadata,
      },
      group,
      namespace,
    );
    send(res, 200, 'ok');
  }

  private modifyHttp(params: Record<string, string>, res: ServerResponse): void {
    const { namespace, group, name } = this.parseName(params);
    const patch: Partial<DoubleInstance> = {};
    if (params.weight !== undefined) patch.weight = Number(params.weight);
    const enabledRaw = params.enabled ?? params.enable;
    if (enabledRaw !== undefined) patch.enabled = enabledRaw !== 'false';
    if (params.metadata) patch.metadata = JSON.parse(params.metadata) as Record<string, string>;
    this.update(name, params.ip!, Number(params.port), patch, group, namespace, params.clusterName || DEFAULT_CLUSTER);
    send(res, 200, 'ok');
  }

  private deregisterHttp(params: Record<string, string>, res: ServerResponse): void {
    const { namespace, group, name } = this.parseName(params);
    this.deregister(name, params.ip!, Number(params.port), group, namespace, params.clusterName || DEFAULT_CLUSTER);
    send(res, 200, 'ok');
  }

  private beat(params: Record<string, string>, res: ServerResponse): void {
    this.stats.beats++;
    const beat = params.beat ? (JSON.parse(params.beat) as { serviceName?: string; ip: string; port: number; cluster?: string; weight?: number; metadata?: Record<string, string> }) : undefined;
    const { namespace, group, name } = this.parseName({ ...params, serviceName: params.serviceName ?? beat?.serviceName ?? '' });
    const ip = beat?.ip ?? params.ip;
    const port = Number(beat?.port ?? params.port);
    const cluster = beat?.cluster || params.clusterName || DEFAULT_CLUSTER;
    const svc = this.service(namespace, group, name, false);
    const inst = svc?.instances.get(`${ip}:${port}:${cluster}`);
    if (!inst) {
      if (!beat) return sendJson(res, 200, { clientBeatInterval: this.opts.clientBeatInterval ?? 5000, code: 20404, lightBeatEnabled: true });
      // Nacos re-registers an ephemeral instance it lost when a full beat arrives.
      this.register(name, { ip: ip!, port, weight: beat.weight ?? 1, clusterName: cluster, metadata: beat.metadata ?? {}, ephemeral: true }, group, namespace);
    } else {
      inst.lastBeat = Date.now();
      if (!inst.healthy) {
        inst.healthy = true;
        this.changed(svc!);
      }
    }
    sendJson(res, 200, { clientBeatInterval: this.opts.clientBeatInterval ?? 5000, code: 10200, lightBeatEnabled: true });
  }

  private serviceList(params: Record<string, string>, res: ServerResponse): void {
    if (this.fault === 'garbage') return send(res, 200, '<html>proxy error</html>', 'text/html');
    if (this.fault === 'wrong-shape') return sendJson(res, 200, { count: 'many', doms: 'x' });
    const namespace = params.namespaceId || 'public';
    const group = params.groupName || DEFAULT_GROUP;
    const pageNo = Math.max(1, Number(params.pageNo) || 1);
    const pageSize = Math.max(1, Number(params.pageSize) || 10);
    this.listPages++;
    if (pageNo === this.failListPage) return send(res, 500, 'server is busy');
    const names = this.serviceNames(group, namespace).sort();
    sendJson(res, 200, { count: names.length, doms: names.slice((pageNo - 1) * pageSize, pageNo * pageSize) });
  }

  private deleteServiceHttp(params: Record<string, string>, res: ServerResponse): void {
    const { namespace, group, name } = this.parseName(params);
    const svc = this.service(namespace, group, name, false);
    if (!svc) return send(res, 400, `caused: specified service not exist, serviceName : ${group}@@${name};`);
    if (svc.instances.size) return send(res, 400, `caused: specified service has instances, serviceName : ${group}@@${name};`);
    this.services.delete(this.key(namespace, group, name));
    send(res, 200, 'ok');
  }

  // ---------- state, expiry, push ----------

  private key(namespace: string, group: string, name: string): string {
    return `${namespace}|${group}@@${name}`;
  }

  private service(namespace: string, group: string, name: string, create: boolean): DoubleService | undefined {
    const k = this.key(namespace, group, name);
    let svc = this.services.get(k);
    if (!svc && create) this.services.set(k, (svc = { namespace, group, name, instances: new Map() }));
    return svc;
  }

  private sweep(): void {
    const now = Date.now();
    const unhealthy = this.opts.unhealthyAfterMs ?? 15000;
    const del = this.opts.deleteAfterMs ?? 30000;
    for (const svc of this.services.values()) {
      let changed = false;
      for (const [k, i] of svc.instances) {
        if (!i.ephemeral) continue;
        if (now - i.lastBeat > del) {
          svc.instances.delete(k);
          changed = true;
        } else if (i.healthy && now - i.lastBeat > unhealthy) {
          i.healthy = false;
          changed = true;
        }
      }
      if (changed) {
        if (svc.instances.size === 0) svc.emptySince = now;
        this.changed(svc);
      }
      if (this.opts.emptyServiceCleanMs !== undefined && svc.instances.size === 0 && svc.emptySince && now - svc.emptySince > this.opts.emptyServiceCleanMs) {
        this.services.delete(this.key(svc.namespace, svc.group, svc.name));
      }
    }
    const ttl = this.opts.pushClientTtlMs ?? 30000;
    for (const [k, t] of this.targets) if (now - t.lastQuery > ttl) this.targets.delete(k);
    for (const [t, exp] of this.tokens) if (exp < now) this.tokens.delete(t);
  }

  private changed(svc: DoubleService): void {
    if (!this.pushEnabled || !this.udp) return;
    for (const t of this.targets.values()) {
      if (t.namespace !== svc.namespace || t.group !== svc.group || t.name !== svc.name) continue;
      const info = this.serviceInfo(svc.namespace, svc.group, svc.name, t.queriedName, t.clusters, false);
      const packet = Buffer.from(JSON.stringify({ type: 'dom', data: JSON.stringify(info), lastRefTime: info.lastRefTime }));
      const wire = packet.length >= 1024 ? gzipSync(packet) : packet;
      this.stats.pushesSent++;
      this.udp.send(wire, t.port, '127.0.0.1');
    }
  }

  private onAck(msg: Buffer): void {
    try {
      const ack = JSON.parse(msg.toString()) as { type?: string };
      if (ack.type === 'push-ack') this.stats.pushAcks++;
    } catch {
      // not an ack
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (data += c));
    req.on('end', () => resolve(data));
    req.on('error', () => resolve(data));
  });
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain;charset=UTF-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON.stringify(body), 'application/json;charset=UTF-8');
}

export async function startNacosDouble(opts: NacosDoubleOptions = {}): Promise<NacosDouble> {
  return new NacosDouble(opts).start();
}
