// A protocol-faithful Consul HTTP API double (node:http), for the parts a
// service-discovery client uses:
//   GET /v1/catalog/services, GET /v1/health/service/<svc> (passing, tag, dc),
//   GET /v1/catalog/service/<svc>, GET /v1/status/leader,
//   PUT /v1/agent/service/register, PUT /v1/agent/service/deregister/<id>,
//   PUT /v1/agent/check/{pass,warn,fail}/<checkId>.
// Blocking queries behave like Consul's: `index` + `wait` hold the request
// while the query's index has not moved past `index`, up to wait plus a random
// jitter of up to wait/16; every answer carries X-Consul-Index (never 0).
// ACLs (when a token is configured): default deny; an anonymous request gets
// ACL-filtered empty results, an unknown token a 403 "ACL not found".
// Fault hooks: outage (listener closed), failWith (HTTP errors), garbage
// payloads, answers without X-Consul-Index, 400s, the index going backwards.
import http from 'node:http';
import { RestartableServer } from '../lib/restartable-server.js';

export type CheckStatus = 'passing' | 'warning' | 'critical';

export interface ServiceInput {
  ID?: string;
  Name: string;
  Tags?: string[];
  Address?: string;
  Port: number;
  Meta?: Record<string, string>;
  Weights?: { Passing: number; Warning: number };
  /** Node the instance runs on (default: the double's agent node). */
  Node?: string;
  /** Address of that node when it is new (default 127.0.0.1). */
  NodeAddress?: string;
  /** Status of the service's check; no check at all when omitted (Consul then treats it as passing). */
  Check?: CheckStatus;
}

export type GarbageMode = 'invalid-json' | 'wrong-shape' | 'html' | 'no-index' | 'bad-request' | 'zero-index';

export interface ConsulDoubleOptions {
  datacenter?: string;
  /** Enables ACLs with default deny; this token may read everything. */
  token?: string;
  /** The agent's node name and address (the node agent registrations land on). */
  nodeName?: string;
  nodeAddress?: string;
  /** Scale the blocking wait (tests): 1 means real durations. */
  waitScale?: number;
}

interface NodeRec {
  ID: string;
  Node: string;
  Address: string;
  Datacenter: string;
  TaggedAddresses: Record<string, string>;
  Meta: Record<string, string>;
  CreateIndex: number;
  ModifyIndex: number;
}

interface ServiceRec {
  node: string;
  ID: string;
  Service: string;
  Tags: string[];
  Address: string;
  Meta: Record<string, string>;
  Port: number;
  Weights: { Passing: number; Warning: number };
  CreateIndex: number;
  ModifyIndex: number;
}

interface CheckRec {
  Node: string;
  CheckID: string;
  Name: string;
  Status: CheckStatus;
  Notes: string;
  Output: string;
  ServiceID: string;
  ServiceName: string;
  Type: string;
  CreateIndex: number;
  ModifyIndex: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

interface Waiter {
  indexOf: () => number;
  min: number;
  done: () => void;
  timer: NodeJS.Timeout;
}

const MAX_WAIT_MS = 10 * 60_000;
const DEFAULT_WAIT_MS = 5 * 60_000;

function parseWait(v: string | null): number {
  if (!v) return DEFAULT_WAIT_MS;
  const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)?$/.exec(v);
  if (!m) return DEFAULT_WAIT_MS;
  const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Math.min(MAX_WAIT_MS, Number(m[1]) * (mult[m[2] ?? 's'] ?? 1000));
}

export class ConsulDouble {
  readonly datacenter: string;
  private readonly opts: ConsulDoubleOptions;
  private readonly http = new RestartableServer((req, res) => this.handle(req, res), 65_000);

  private raftIndex = 10;
  private servicesTableIndex = 10;
  private readonly serviceNameIndex = new Map<string, number>();
  private readonly nodes = new Map<string, NodeRec>();
  private readonly services = new Map<string, ServiceRec>(); // key node/id
  private readonly checks = new Map<string, CheckRec>(); // key node/checkId
  private readonly waiters = new Set<Waiter>();

  private failure: { status: number; body: string } | undefined;
  private garbageMode: GarbageMode | undefined;
  readonly requests: RecordedRequest[] = [];

  constructor(opts: ConsulDoubleOptions = {}) {
    this.opts = opts;
    this.datacenter = opts.datacenter ?? 'dc1';
    const agent = opts.nodeName ?? 'node1';
    this.ensureNode(agent, opts.nodeAddress ?? '127.0.0.1');
    // Every Consul catalog lists the servers as service "consul" (RPC port).
    this.register({ ID: 'consul', Name: 'consul', Port: 8300, Node: agent });
  }

  // ---------- lifecycle and faults ----------

  async start(port = 0): Promise<string> {
    await this.http.listen(port);
    return this.address;
  }

  /** host:port as the gateway config wants it. */
  get address(): string {
    return `127.0.0.1:${this.http.port}`;
  }

  /** Outage: stop listening and cut every connection (blocked queries included). */
  async outage(): Promise<void> {
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    await this.http.close();
  }

  /** Back from an outage, on the same port. */
  async recover(): Promise<void> {
    if (!this.http.listening) await this.start(this.http.port);
  }

  async stop(): Promise<void> {
    await this.outage();
  }

  /** Every request answers this status and text body (e.g. 500 "No cluster leader") until cleared with undefined. */
  failWith(status: number | undefined, body = 'No cluster leader'): void {
    this.failure = status ? { status, body } : undefined;
    this.wakeAll();
  }

  /** Read queries answer garbage of the given kind until cleared with undefined. */
  garbage(mode: GarbageMode | undefined): void {
    this.garbageMode = mode;
    this.wakeAll();
  }

  /**
   * The index goes backwards (snapshot restore, a new cluster): every index
   * drops to `to` and blocked queries answer at once, as Consul's restore
   * abandons the state store and fires every watch.
   */
  resetIndex(to: number): void {
    this.raftIndex = to;
    this.servicesTableIndex = Math.min(this.servicesTableIndex, to);
    for (const [k, v] of this.serviceNameIndex) this.serviceNameIndex.set(k, Math.min(v, to));
    this.wakeAll();
  }

  /** Bump the indexes of a service (and the catalog) without changing any data: a re-registration of the same thing. */
  touch(service: string): void {
    const idx = this.bump();
    this.servicesTableIndex = idx;
    this.serviceNameIndex.set(service, idx);
    this.notify();
  }

  get index(): number {
    return this.raftIndex;
  }

  // ---------- state changes (also reachable over the agent API) ----------

  private bump(): number {
    return ++this.raftIndex;
  }

  private ensureNode(name: string, address: string): NodeRec {
    let n = this.nodes.get(name);
    if (!n) {
      const idx = this.bump();
      n = {
        ID: `0000000${this.nodes.size}-1111-2222-3333-444444444444`.slice(-36),
        Node: name,
        Address: address,
        Datacenter: this.datacenter,
        TaggedAddresses: { lan: address, lan_ipv4: address, wan: address, wan_ipv4: address },
        Meta: { 'consul-network-segment': '' },
        CreateIndex: idx,
        ModifyIndex: idx,
      };
      this.nodes.set(name, n);
      // serfHealth: the node-level check every entry of /v1/health/service carries.
      this.checks.set(`${name}/serfHealth`, {
        Node: name, CheckID: 'serfHealth', Name: 'Serf Health Status', Status: 'passing', Notes: '',
        Output: 'Agent alive and reachable', ServiceID: '', ServiceName: '', Type: '', CreateIndex: idx, ModifyIndex: idx,
      });
    }
    return n;
  }

  /** Register (or replace) a service instance. Returns its ID. */
  register(input: ServiceInput): string {
    const node = input.Node ?? this.opts.nodeName ?? 'node1';
    this.ensureNode(node, input.NodeAddress ?? '127.0.0.1');
    const id = input.ID ?? input.Name;
    const key = `${node}/${id}`;
    const old = this.services.get(key);
    const idx = this.bump();
    const rec: ServiceRec = {
      node,
      ID: id,
      Service: input.Name,
      Tags: input.Tags ?? [],
      Address: input.Address ?? '',
      Meta: input.Meta ?? {},
      Port: input.Port,
      Weights: input.Weights ?? { Passing: 1, Warning: 1 },
      CreateIndex: old?.CreateIndex ?? idx,
      ModifyIndex: idx,
    };
    this.services.set(key, rec);
    if (old && old.Service !== rec.Service) this.serviceNameIndex.set(old.Service, idx);
    const checkKey = `${node}/service:${id}`;
    if (input.Check) {
      this.checks.set(checkKey, {
        Node: node, CheckID: `service:${id}`, Name: `Service '${input.Name}' check`, Status: input.Check, Notes: '',
        Output: '', ServiceID: id, ServiceName: input.Name, Type: 'ttl', CreateIndex: idx, ModifyIndex: idx,
      });
    } else this.checks.delete(checkKey);
    this.servicesTableIndex = idx;
    this.serviceNameIndex.set(input.Name, idx);
    this.notify();
    return id;
  }

  deregister(id: string, node: string = this.opts.nodeName ?? 'node1'): boolean {
    const key = `${node}/${id}`;
    const old = this.services.get(key);
    if (!old) return false;
    this.services.delete(key);
    for (const [k, c] of this.checks) if (c.Node === node && c.ServiceID === id) this.checks.delete(k);
    const idx = this.bump();
    this.servicesTableIndex = idx;
    this.serviceNameIndex.set(old.Service, idx);
    this.notify();
    return true;
  }

  /** Set the status of a service check (creates a TTL check if there was none). */
  setCheck(serviceId: string, status: CheckStatus, node: string = this.opts.nodeName ?? 'node1'): void {
    const svc = this.services.get(`${node}/${serviceId}`);
    if (!svc) throw new Error(`no service ${serviceId} on ${node}`);
    const key = `${node}/service:${serviceId}`;
    const idx = this.bump();
    const c = this.checks.get(key);
    if (c) {
      c.Status = status;
      c.ModifyIndex = idx;
    } else {
      this.checks.set(key, {
        Node: node, CheckID: `service:${serviceId}`, Name: `Service '${svc.Service}' check`, Status: status, Notes: '',
        Output: '', ServiceID: serviceId, ServiceName: svc.Service, Type: 'ttl', CreateIndex: idx, ModifyIndex: idx,
      });
    }
    this.serviceNameIndex.set(svc.Service, idx);
    this.notify();
  }

  private serviceIndex(name: string): number {
    // A service that never existed blocks on the whole services table, like Consul.
    return Math.max(1, this.serviceNameIndex.get(name) ?? this.servicesTableIndex);
  }

  private catalogIndex(): number {
    return Math.max(1, this.servicesTableIndex);
  }

  // ---------- payloads (exact Consul shapes) ----------

  private catalogServices(): Record<string, string[]> {
    const out: Record<string, Set<string>> = {};
    for (const s of this.services.values()) {
      const set = (out[s.Service] ??= new Set());
      for (const t of s.Tags) set.add(t);
    }
    const res: Record<string, string[]> = {};
    for (const name of Object.keys(out).sort()) res[name] = [...out[name]!].sort();
    return res;
  }

  private checkJson(c: CheckRec, tags: string[]): Record<string, unknown> {
    return {
      Node: c.Node, CheckID: c.CheckID, Name: c.Name, Status: c.Status, Notes: c.Notes, Output: c.Output,
      ServiceID: c.ServiceID, ServiceName: c.ServiceName, ServiceTags: c.ServiceID ? tags : [], Type: c.Type,
      Interval: '', Timeout: '', ExposedPort: 0, Definition: {}, CreateIndex: c.CreateIndex, ModifyIndex: c.ModifyIndex,
    };
  }

  private healthService(name: string, passingOnly: boolean, tags: string[]): unknown[] {
    const out: unknown[] = [];
    const list = [...this.services.values()].filter((s) => s.Service === name).sort((a, b) => (a.node + a.ID).localeCompare(b.node + b.ID));
    for (const s of list) {
      if (tags.some((t) => !s.Tags.includes(t))) continue;
      const node = this.nodes.get(s.node)!;
      const checks = [...this.checks.values()].filter((c) => c.Node === s.node && (c.ServiceID === '' || c.ServiceID === s.ID));
      if (passingOnly && checks.some((c) => c.Status !== 'passing')) continue;
      out.push({
        Node: {
          ID: node.ID, Node: node.Node, Address: node.Address, Datacenter: node.Datacenter,
          TaggedAddresses: node.TaggedAddresses, Meta: node.Meta, CreateIndex: node.CreateIndex, ModifyIndex: node.ModifyIndex,
        },
        Service: {
          ID: s.ID, Service: s.Service, Tags: s.Tags, Address: s.Address,
          TaggedAddresses: s.Address ? { lan_ipv4: { Address: s.Address, Port: s.Port }, wan_ipv4: { Address: s.Address, Port: s.Port } } : undefined,
          Meta: s.Meta, Port: s.Port, Weights: s.Weights, EnableTagOverride: false,
          Proxy: { Mode: '', MeshGateway: {}, Expose: {} }, Connect: {}, PeerName: '',
          CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
        },
        Checks: checks.map((c) => this.checkJson(c, s.Tags)),
      });
    }
    return out;
  }

  private catalogService(name: string, tags: string[]): unknown[] {
    return [...this.services.values()]
      .filter((s) => s.Service === name && tags.every((t) => s.Tags.includes(t)))
      .map((s) => {
        const node = this.nodes.get(s.node)!;
        return {
          ID: node.ID, Node: node.Node, Address: node.Address, Datacenter: node.Datacenter,
          TaggedAddresses: node.TaggedAddresses, NodeMeta: node.Meta, ServiceKind: '', ServiceID: s.ID,
          ServiceName: s.Service, ServiceTags: s.Tags, ServiceAddress: s.Address, ServiceWeights: s.Weights,
          ServiceMeta: s.Meta, ServicePort: s.Port, ServiceEnableTagOverride: false,
          CreateIndex: s.CreateIndex, ModifyIndex: s.ModifyIndex,
        };
      });
  }

  // ---------- HTTP ----------

  private wakeAll(): void {
    for (const w of [...this.waiters]) {
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.done();
    }
  }

  private notify(): void {
    for (const w of [...this.waiters]) {
      if (w.indexOf() > w.min) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.done();
      }
    }
  }

  /** Holds a blocking query until its index moves past `min` or wait (+ jitter) elapses, then answers. */
  private block(query: URLSearchParams, indexOf: () => number, answer: () => void): Waiter | undefined {
    const min = Number(query.get('index') ?? '0');
    if (!(min > 0) || indexOf() > min) {
      answer();
      return undefined;
    }
    const wait = parseWait(query.get('wait'));
    const scaled = wait * (this.opts.waitScale ?? 1);
    const jitter = Math.random() * (scaled / 16);
    const w: Waiter = {
      indexOf,
      min,
      done: answer,
      timer: setTimeout(() => {
        this.waiters.delete(w);
        answer();
      }, scaled + jitter),
    };
    this.waiters.add(w);
    return w;
  }

  private aclState(req: http.IncomingMessage, query: URLSearchParams): 'ok' | 'anonymous' | 'denied' {
    if (!this.opts.token) return 'ok';
    const auth = req.headers.authorization;
    const token =
      (req.headers['x-consul-token'] as string | undefined) ??
      (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined) ??
      query.get('token') ??
      undefined;
    if (!token) return 'anonymous';
    return token === this.opts.token ? 'ok' : 'denied';
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://consul');
    const path = url.pathname;
    const query = url.searchParams;
    this.requests.push({ method: req.method ?? 'GET', path, query, headers: req.headers });
    if (this.requests.length > 10_000) this.requests.splice(0, 5_000);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        this.route(req, res, path, query, Buffer.concat(chunks).toString('utf8'));
      } catch (e) {
        this.text(res, 500, (e as Error).message);
      }
    });
  }

  private text(res: http.ServerResponse, status: number, body: string): void {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  private json(res: http.ServerResponse, index: number | undefined, body: unknown, extra: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    const payload = JSON.stringify(body);
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(payload),
      Vary: 'Accept-Encoding',
      ...extra,
    };
    if (index !== undefined) {
      headers['X-Consul-Index'] = String(index);
      headers['X-Consul-Knownleader'] = 'true';
      headers['X-Consul-Lastcontact'] = '0';
      headers['X-Consul-Effective-Consistency'] = 'leader';
    }
    if (this.opts.token) headers['X-Consul-Default-Acl-Policy'] = 'deny';
    res.writeHead(200, headers);
    res.end(payload);
  }

  /** A blocking read: answers with the payload (or the current fault) once the index allows. */
  private read(res: http.ServerResponse, query: URLSearchParams, indexOf: () => number, payload: () => unknown, filtered: boolean, shape: 'object' | 'list'): void {
    const answer = (): void => {
      if (this.failure) return this.text(res, this.failure.status, this.failure.body);
      const idx = indexOf();
      const extra: Record<string, string> = filtered ? { 'X-Consul-Results-Filtered-By-Acls': 'true' } : {};
      switch (this.garbageMode) {
        case 'invalid-json': {
          const body = shape === 'list' ? '[{"Node": {"Node": "node1", ' : '{"web": ["a", ';
          res.writeHead(200, { 'Content-Type': 'application/json', 'X-Consul-Index': String(idx), 'Content-Length': Buffer.byteLength(body) });
          return void res.end(body);
        }
        case 'wrong-shape':
          return this.json(res, idx, shape === 'list' ? { error: 'unexpected' } : ['web', 'api']);
        case 'html': {
          const body = '<html><body><h1>502 Bad Gateway</h1></body></html>';
          res.writeHead(200, { 'Content-Type': 'text/html', 'X-Consul-Index': String(idx), 'Content-Length': Buffer.byteLength(body) });
          return void res.end(body);
        }
        case 'no-index':
          return this.json(res, undefined, payload());
        case 'zero-index':
          return this.json(res, 0, payload());
        case 'bad-request':
          return this.text(res, 400, 'Invalid wait time');
        default:
          return this.json(res, idx, payload(), extra);
      }
    };
    const w = this.block(query, indexOf, answer);
    // A client that gives up on a blocked query (timeout, cancel) leaves no waiter behind.
    if (w) res.once('close', () => {
      if (this.waiters.delete(w)) clearTimeout(w.timer);
    });
  }

  private route(req: http.IncomingMessage, res: http.ServerResponse, path: string, query: URLSearchParams, body: string): void {
    if (this.failure) return this.text(res, this.failure.status, this.failure.body);
    const dc = query.get('dc');
    if (dc && dc !== this.datacenter) return this.text(res, 500, 'No path to datacenter');
    const acl = this.aclState(req, query);
    if (acl === 'denied') return this.text(res, 403, 'ACL not found');
    const method = req.method ?? 'GET';
    let m: RegExpExecArray | null;

    if (method === 'GET' && path === '/v1/catalog/services') {
      return this.read(res, query, () => this.catalogIndex(), () => (acl === 'ok' ? this.catalogServices() : {}), acl !== 'ok', 'object');
    }
    if (method === 'GET' && (m = /^\/v1\/health\/service\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1]!);
      const passingParam = query.get('passing');
      const passing = passingParam !== null && passingParam !== 'false' && passingParam !== '0';
      const tags = query.getAll('tag');
      return this.read(res, query, () => this.serviceIndex(name), () => (acl === 'ok' ? this.healthService(name, passing, tags) : []), acl !== 'ok', 'list');
    }
    if (method === 'GET' && (m = /^\/v1\/catalog\/service\/([^/]+)$/.exec(path))) {
      const name = decodeURIComponent(m[1]!);
      const tags = query.getAll('tag');
      return this.read(res, query, () => this.serviceIndex(name), () => (acl === 'ok' ? this.catalogService(name, tags) : []), acl !== 'ok', 'list');
    }
    if (method === 'GET' && path === '/v1/status/leader') {
      return this.json(res, undefined, '127.0.0.1:8300');
    }
    if (path.startsWith('/v1/agent/') && acl !== 'ok') return this.text(res, 403, 'Permission denied');
    if (method === 'PUT' && path === '/v1/agent/service/register') {
      let def: Record<string, unknown>;
      try {
        def = JSON.parse(body) as Record<string, unknown>;
      } catch {
        return this.text(res, 400, 'Request decode failed: invalid JSON');
      }
      if (typeof def.Name !== 'string' || !def.Name) return this.text(res, 400, 'Missing service name');
      const check = (def.Check ?? (Array.isArray(def.Checks) ? def.Checks[0] : undefined)) as Record<string, unknown> | undefined;
      this.register({
        ID: typeof def.ID === 'string' && def.ID ? def.ID : def.Name,
        Name: def.Name,
        Tags: Array.isArray(def.Tags) ? (def.Tags as string[]) : [],
        Address: typeof def.Address === 'string' ? def.Address : '',
        Port: Number(def.Port ?? 0),
        Meta: (def.Meta as Record<string, string>) ?? {},
        Weights: (def.Weights as { Passing: number; Warning: number }) ?? { Passing: 1, Warning: 1 },
        // A new check starts critical unless it says otherwise (Consul's default).
        Check: check ? ((check.Status as CheckStatus | undefined) ?? 'critical') : undefined,
      });
      return this.json(res, undefined, null);
    }
    if (method === 'PUT' && (m = /^\/v1\/agent\/service\/deregister\/([^/]+)$/.exec(path))) {
      const id = decodeURIComponent(m[1]!);
      if (!this.deregister(id)) return this.text(res, 404, `Unknown service ID "${id}". Ensure that the service ID is passed, not the service name.`);
      return this.json(res, undefined, null);
    }
    if (method === 'PUT' && (m = /^\/v1\/agent\/check\/(pass|warn|fail)\/([^/]+)$/.exec(path))) {
      const checkId = decodeURIComponent(m[2]!);
      const svcId = checkId.startsWith('service:') ? checkId.slice(8) : checkId;
      const status: CheckStatus = m[1] === 'pass' ? 'passing' : m[1] === 'warn' ? 'warning' : 'critical';
      try {
        this.setCheck(svcId, status);
      } catch {
        return this.text(res, 404, `Unknown check ID "${checkId}"`);
      }
      return this.json(res, undefined, null);
    }
    return this.text(res, 404, '404 page not found');
  }
}
