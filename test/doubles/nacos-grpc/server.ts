// A Nacos 2.x/3.x gRPC server double: the same services and messages as Nacos'
// (api/src/main/proto/nacos_grpc_service.proto; GrpcUtils: metadata.type is
// the class's simple name, the body's Any.value its JSON, headers in
// metadata.headers), the same connection rules (GrpcRequestAcceptor: requests
// on a connection whose ConnectionSetupRequest has not arrived are answered
// ErrorResponse 301 "Connection is unregistered."; ServerCheckRequest is
// always answered), and the naming requests a discovery client uses:
// ServiceListRequest, SubscribeServiceRequest, HealthCheckRequest; it pushes
// NotifySubscriberRequest to every subscriber on each change and records
// their NotifySubscriberResponse acks. Optionally an HTTP login
// (/nacos/v1/auth/login, /nacos/v3/auth/user/login) and a required token.
// It can be stopped and restarted on the same port, keeping its data.
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BI_STREAM_PATH, decodePayload, encodePayload, jsonPayload, payloadJson, REQUEST_PATH, type Payload } from '../../../registries/nacos/grpc/codec.js';

export interface DoubleInstance {
  ip: string;
  port: number;
  weight?: number;
  healthy?: boolean;
  enabled?: boolean;
  clusterName?: string;
  metadata?: Record<string, string>;
}

interface Service {
  namespace: string;
  group: string;
  name: string;
  hosts: Map<string, Required<DoubleInstance>>;
  lastRefTime: number;
}

interface Conn {
  peer: string;
  id: string;
  stream: grpc.ServerDuplexStream<Payload, Payload>;
  registered: boolean;
  labels?: unknown;
  clientVersion?: string;
  /** namespace##group@@service -> clusters */
  subs: Map<string, string>;
}

export interface NacosGrpcDoubleOptions {
  port?: number;
  /** Refuse requests without this accessToken (ErrorResponse 403). */
  requireToken?: string;
  /** Credentials for the HTTP login; an HTTP server is started when set. */
  login?: { username: string; password: string; token: string; tokenTtl?: number };
  /** Only this login path answers (e.g. 3.x: /nacos/v3/auth/user/login). */
  loginPath?: string;
  /** A 2.x server before ability negotiation: no supportAbilityNegotiation, no SetupAckRequest. */
  noAbilityNegotiation?: boolean;
  /** The connection is registered this long after ConnectionSetupRequest (requests meanwhile: 301). */
  setupDelayMs?: number;
}

const key = (ns: string, group: string, name: string) => `${ns}##${group}@@${name}`;

// Jackson NON_NULL, as Nacos' JacksonUtils: null fields are left out
function resp(extra: Record<string, unknown> = {}, requestId?: unknown): Record<string, unknown> {
  return { resultCode: 200, errorCode: 0, requestId, success: true, ...extra };
}

export class NacosGrpcDouble {
  private server: grpc.Server | undefined;
  private httpServer: http.Server | undefined;
  private readonly services = new Map<string, Service>();
  private readonly conns = new Map<string, Conn>();
  private connSeq = 0;
  private pushSeq = 0;
  private clock = 0;
  port = 0;
  httpPort = 0;
  running = false;
  /** requestIds of pushes not yet acked. */
  readonly pendingPushes = new Set<string>();
  /** Set: ServiceListRequest for this page number answers with a server error (a listing cut half way). */
  failListPage: number | undefined;
  readonly stats = { serverChecks: 0, setups: 0, subscribes: 0, unsubscribes: 0, serviceLists: 0, healthChecks: 0, pushesSent: 0, pushAcks: 0, refusedAuth: 0, logins: 0, unregisteredRefusals: 0, clientDetections: 0 };
  /** Every request type seen, with the metadata headers and the JSON body (for shape checks). */
  readonly seen: Array<{ type: string; headers: Record<string, string>; body: Record<string, unknown> }> = [];

  constructor(private readonly opts: NacosGrpcDoubleOptions = {}) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** The "HTTP" address whose port + 1000 is our gRPC port (what a user configures). */
  get httpAddress(): string {
    return `127.0.0.1:${this.port - 1000}`;
  }

  private now(): number {
    this.clock = Math.max(Date.now(), this.clock + 1);
    return this.clock;
  }

  async start(): Promise<this> {
    const server = new grpc.Server();
    const ser = (p: Payload) => encodePayload(p);
    const de = (b: Buffer) => decodePayload(b);
    const def: grpc.ServiceDefinition = {
      request: { path: REQUEST_PATH, requestStream: false, responseStream: false, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
    };
    const biDef: grpc.ServiceDefinition = {
      requestBiStream: { path: BI_STREAM_PATH, requestStream: true, responseStream: true, requestSerialize: ser, requestDeserialize: de, responseSerialize: ser, responseDeserialize: de },
    };
    server.addService(def, {
      request: (call: grpc.ServerUnaryCall<Payload, Payload>, cb: grpc.sendUnaryData<Payload>) => {
        try {
          const [type, body] = this.onRequest(call.getPeer(), call.request);
          cb(null, jsonPayload(type, body));
        } catch (err) {
          cb({ code: grpc.status.INTERNAL, details: (err as Error).message } as grpc.ServiceError, null);
        }
      },
    });
    server.addService(biDef, { requestBiStream: (stream: grpc.ServerDuplexStream<Payload, Payload>) => this.onStream(stream) });
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${this.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
    this.server = server;
    this.running = true;
    if (this.opts.login && !this.httpServer) await this.startHttp();
    return this;
  }

  /** Stop (connections cut, as a crashed server). Data is kept for restart(). */
  async stop(): Promise<void> {
    this.running = false;
    for (const c of this.conns.values()) c.stream.destroy();
    this.conns.clear();
    this.pendingPushes.clear();
    this.server?.forceShutdown();
    this.server = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    await new Promise<void>((r) => (this.httpServer ? this.httpServer.close(() => r()) : r()));
    this.httpServer = undefined;
  }

  private async startHttp(): Promise<void> {
    const login = this.opts.login!;
    this.httpServer = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        const path = (req.url ?? '').split('?')[0]!;
        const paths = this.opts.loginPath ? [this.opts.loginPath] : ['/nacos/v1/auth/login', '/nacos/v3/auth/user/login'];
        if (req.method !== 'POST' || !paths.includes(path)) {
          res.writeHead(404).end('not found');
          return;
        }
        const form = new URLSearchParams(data);
        if (form.get('username') !== login.username || form.get('password') !== login.password) {
          res.writeHead(403).end('unknown user!');
          return;
        }
        this.stats.logins++;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accessToken: login.token, tokenTtl: login.tokenTtl ?? 18000, globalAdmin: false, username: login.username }));
      });
    });
    await new Promise<void>((r) => this.httpServer!.listen(0, '127.0.0.1', () => r()));
    this.httpPort = (this.httpServer.address() as AddressInfo).port;
  }

  // ---------- protocol ----------

  private onStream(stream: grpc.ServerDuplexStream<Payload, Payload>): void {
    const peer = stream.getPeer();
    stream.on('data', (p: Payload) => {
      let body: Record<string, unknown>;
      try {
        body = payloadJson(p);
      } catch {
        return;
      }
      if (p.type === 'ConnectionSetupRequest') {
        this.stats.setups++;
        this.seen.push({ type: p.type, headers: p.headers, body });
        const conn: Conn = { peer, id: `${Date.now()}_${peer}_${++this.connSeq}`, stream, registered: false, labels: body.labels, clientVersion: String(body.clientVersion), subs: new Map() };
        this.conns.set(peer, conn);
        const register = () => {
          conn.registered = true;
          // ability negotiation: the server acks the setup
          if (!this.opts.noAbilityNegotiation) stream.write(jsonPayload('SetupAckRequest', { headers: {}, requestId: `ack-${++this.pushSeq}`, module: 'internal', abilityTable: {} }));
        };
        if (this.opts.setupDelayMs) setTimeout(register, this.opts.setupDelayMs);
        else register();
        return;
      }
      if (p.type === 'NotifySubscriberResponse') {
        const id = String(body.requestId);
        if (this.pendingPushes.delete(id)) this.stats.pushAcks++;
        return;
      }
      if (p.type === 'ClientDetectionResponse') {
        this.stats.clientDetections++;
      }
    });
    const gone = () => {
      const c = this.conns.get(peer);
      if (c?.stream === stream) this.conns.delete(peer);
    };
    stream.on('end', () => {
      gone();
      stream.end();
    });
    stream.on('error', gone);
    stream.on('close', gone);
  }

  private onRequest(peer: string, p: Payload): [string, Record<string, unknown>] {
    const body = payloadJson(p);
    this.seen.push({ type: p.type, headers: p.headers, body });
    const rid = body.requestId;
    if (p.type === 'ServerCheckRequest') {
      this.stats.serverChecks++;
      return ['ServerCheckResponse', resp({ connectionId: `${Date.now()}_${peer}`, ...(this.opts.noAbilityNegotiation ? {} : { supportAbilityNegotiation: true }) }, rid)];
    }
    const conn = this.conns.get(peer);
    if (!conn?.registered) {
      this.stats.unregisteredRefusals++;
      return ['ErrorResponse', { resultCode: 500, errorCode: 301, message: 'Connection is unregistered.', requestId: rid, success: false }];
    }
    if (this.opts.requireToken && p.headers.accessToken !== this.opts.requireToken && p.type !== 'HealthCheckRequest') {
      this.stats.refusedAuth++;
      return ['ErrorResponse', { resultCode: 500, errorCode: 403, message: 'unknown user!', requestId: rid, success: false }];
    }
    switch (p.type) {
      case 'HealthCheckRequest':
        this.stats.healthChecks++;
        return ['HealthCheckResponse', resp({}, rid)];
      case 'ServiceListRequest': {
        this.stats.serviceLists++;
        const ns = String(body.namespace || 'public');
        const group = String(body.groupName || 'DEFAULT_GROUP');
        const names = [...this.services.values()].filter((s) => s.namespace === ns && s.group === group).map((s) => s.name).sort();
        const pageNo = Math.max(1, Number(body.pageNo) || 1);
        const pageSize = Math.max(1, Number(body.pageSize) || 10);
        if (pageNo === this.failListPage) return ['ErrorResponse', { resultCode: 500, errorCode: 500, message: 'server is busy', requestId: rid, success: false }];
        return ['ServiceListResponse', resp({ count: names.length, serviceNames: names.slice((pageNo - 1) * pageSize, pageNo * pageSize) }, rid)];
      }
      case 'SubscribeServiceRequest': {
        const ns = String(body.namespace || 'public');
        const group = String(body.groupName || 'DEFAULT_GROUP');
        const name = String(body.serviceName);
        const clusters = typeof body.clusters === 'string' ? body.clusters : '';
        const k = key(ns, group, name);
        if (body.subscribe === false) {
          this.stats.unsubscribes++;
          conn.subs.delete(k);
        } else {
          this.stats.subscribes++;
          conn.subs.set(k, clusters);
        }
        const svc = this.services.get(k);
        return ['SubscribeServiceResponse', resp({ serviceInfo: this.serviceInfo(svc, ns, group, name, clusters) }, rid)];
      }
      default:
        return ['ErrorResponse', { resultCode: 500, errorCode: 500, message: `unsupported request: ${p.type}`, requestId: rid, success: false }];
    }
  }

  /** A ServiceInfo as Nacos' ServiceInfo JSON (gRPC flavour: plain name, groupName apart). */
  private serviceInfo(svc: Service | undefined, ns: string, group: string, name: string, clusters: string): Record<string, unknown> {
    const wanted = clusters ? clusters.split(',') : [];
    const hosts = svc
      ? [...svc.hosts.values()]
          .filter((h) => wanted.length === 0 || wanted.includes(h.clusterName))
          .map((h) => ({
            instanceId: `${h.ip}#${h.port}#${h.clusterName}#${group}@@${name}`,
            ip: h.ip,
            port: h.port,
            weight: h.weight,
            healthy: h.healthy,
            enabled: h.enabled,
            ephemeral: true,
            clusterName: h.clusterName,
            serviceName: `${group}@@${name}`,
            metadata: h.metadata,
            instanceHeartBeatInterval: 5000,
            instanceHeartBeatTimeOut: 15000,
            ipDeleteTimeout: 30000,
          }))
      : [];
    void ns;
    return { name, groupName: group, clusters, cacheMillis: 10000, hosts, lastRefTime: svc?.lastRefTime ?? this.now(), checksum: '', allIPs: false, reachProtectionThreshold: false, valid: true };
  }

  private changed(svc: Service): void {
    svc.lastRefTime = this.now();
    if (!this.running) return;
    const k = key(svc.namespace, svc.group, svc.name);
    for (const c of this.conns.values()) {
      const clusters = c.subs.get(k);
      if (clusters === undefined) continue;
      const requestId = `push-${++this.pushSeq}`;
      this.pendingPushes.add(requestId);
      this.stats.pushesSent++;
      c.stream.write(jsonPayload('NotifySubscriberRequest', { headers: {}, requestId, module: 'naming', serviceInfo: this.serviceInfo(svc, svc.namespace, svc.group, svc.name, clusters) }));
    }
  }

  /** Push an arbitrary (maybe malformed) serviceInfo to every subscriber of a service. */
  pushRaw(name: string, serviceInfo: unknown, group = 'DEFAULT_GROUP', namespace = 'public'): void {
    const k = key(namespace, group, name);
    for (const c of this.conns.values()) {
      if (!c.subs.has(k)) continue;
      const requestId = `push-${++this.pushSeq}`;
      this.pendingPushes.add(requestId);
      this.stats.pushesSent++;
      c.stream.write(jsonPayload('NotifySubscriberRequest', { headers: {}, requestId, module: 'naming', serviceInfo }));
    }
  }

  /** ConnectResetRequest to every client (Nacos sends it to rebalance or before shutting down). */
  resetClients(): void {
    for (const c of this.conns.values()) c.stream.write(jsonPayload('ConnectResetRequest', { headers: {}, requestId: `reset-${++this.pushSeq}`, module: 'internal' }));
  }

  /** Ask every client to prove it is alive (Nacos does this to idle connections). */
  detectClients(): void {
    for (const c of this.conns.values()) c.stream.write(jsonPayload('ClientDetectionRequest', { headers: {}, requestId: `detect-${++this.pushSeq}`, module: 'internal' }));
  }

  // ---------- test helpers ----------

  connections(): number {
    return this.conns.size;
  }

  subscribers(service: string, group = 'DEFAULT_GROUP', namespace = 'public'): number {
    const k = key(namespace, group, service);
    return [...this.conns.values()].filter((c) => c.subs.has(k)).length;
  }

  createService(name: string, group = 'DEFAULT_GROUP', namespace = 'public'): void {
    const k = key(namespace, group, name);
    if (!this.services.has(k)) this.services.set(k, { namespace, group, name, hosts: new Map(), lastRefTime: this.now() });
  }

  register(name: string, inst: DoubleInstance, group = 'DEFAULT_GROUP', namespace = 'public'): void {
    this.createService(name, group, namespace);
    const svc = this.services.get(key(namespace, group, name))!;
    svc.hosts.set(`${inst.ip}:${inst.port}`, {
      weight: 1,
      healthy: true,
      enabled: true,
      clusterName: 'DEFAULT',
      metadata: {},
      ...inst,
    });
    this.changed(svc);
  }

  deregister(name: string, ip: string, port: number, group = 'DEFAULT_GROUP', namespace = 'public'): void {
    const svc = this.services.get(key(namespace, group, name));
    if (!svc || !svc.hosts.delete(`${ip}:${port}`)) return;
    this.changed(svc);
  }

  deleteService(name: string, group = 'DEFAULT_GROUP', namespace = 'public'): void {
    this.services.delete(key(namespace, group, name));
  }
}

export async function startNacosGrpcDouble(opts: NacosGrpcDoubleOptions = {}): Promise<NacosGrpcDouble> {
  return new NacosGrpcDouble(opts).start();
}
