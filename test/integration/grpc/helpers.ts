// A real @grpc/grpc-js test service (test.Echo) with all four call kinds, and
// a grpc.health.v1.Health service. Messages are JSON (custom serializers):
// grpc-js does not care about the encoding, and a .proto file is not needed.
import * as grpc from '@grpc/grpc-js';

// Tests talk only to 127.0.0.1: never through a proxy from the environment.
for (const k of ['grpc_proxy', 'GRPC_PROXY', 'http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_grpc_proxy']) delete process.env[k];

export const CLIENT_OPTIONS: grpc.ClientOptions = { 'grpc.enable_http_proxy': 0 };

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): any => JSON.parse(b.toString('utf8')),
};

function method(name: string, requestStream: boolean, responseStream: boolean): grpc.MethodDefinition<any, any> {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  };
}

export const EchoService = {
  unary: method('Unary', false, false),
  serverStream: method('ServerStream', false, true),
  clientStream: method('ClientStream', true, false),
  bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(EchoService, 'Echo');
export type EchoClientT = InstanceType<typeof EchoClient> & Record<string, any>;

/** Metadata as plain JSON: text values as strings, -bin values as base64. */
function metadataJson(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = Buffer.isBuffer(v) ? `bin:${v.toString('base64')}` : String(v);
  return out;
}

export interface EchoServer {
  server: grpc.Server;
  port: number;
  address: string;
  /** Calls whose 'cancelled' event fired, by request id (x-test-id metadata). */
  cancelled: Set<string>;
  /** Deadlines the server saw (ms left when the call arrived), by x-test-id. */
  deadlines: Map<string, number>;
  calls: number;
  close(): Promise<void>;
}

export interface UnaryRequest {
  msg?: string;
  sleepMs?: number;
  /** Answer with this status right away (no response message: trailers-only). */
  fail?: { code: number; details: string };
}

/** health: also serve grpc.health.v1.Health with these statuses. */
export async function startEchoServer(name = 'echo', health?: Map<string, ServingStatus>): Promise<EchoServer> {
  const server = new grpc.Server();
  if (health) addHealth(server, health, () => undefined);
  const cancelled = new Set<string>();
  const deadlines = new Map<string, number>();
  const state = { calls: 0 };
  const track = (call: grpc.ServerUnaryCall<any, any> | grpc.ServerWritableStream<any, any> | grpc.ServerReadableStream<any, any> | grpc.ServerDuplexStream<any, any>): void => {
    state.calls++;
    const id = String(call.metadata.get('x-test-id')[0] ?? '');
    const d = call.getDeadline();
    const t = d instanceof Date ? d.getTime() : d;
    if (id && Number.isFinite(t)) deadlines.set(id, t - Date.now());
    (call as grpc.ServerUnaryCall<any, any>).on('cancelled', () => {
      if (id) cancelled.add(id);
    });
  };
  const trailer = (): grpc.Metadata => {
    const t = new grpc.Metadata();
    t.set('x-trailer', `from-${name}`);
    t.set('x-trailer-bin', Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    return t;
  };
  server.addService(EchoService, {
    unary(call: grpc.ServerUnaryCall<UnaryRequest, any>, cb: grpc.sendUnaryData<any>) {
      track(call);
      const req = call.request;
      if (req.fail) {
        const md = new grpc.Metadata();
        md.set('x-error-detail', 'detail');
        md.set('x-error-bin', Buffer.from([1, 2, 3]));
        cb({ code: req.fail.code, details: req.fail.details, metadata: md });
        return;
      }
      const head = new grpc.Metadata();
      head.set('x-served-by', name);
      head.set('x-head-bin', Buffer.from([0, 1, 2, 255]));
      call.sendMetadata(head);
      const answer = (): void => cb(null, { msg: req.msg, server: name, metadata: metadataJson(call.metadata) }, trailer());
      if (req.sleepMs) {
        const t = setTimeout(answer, req.sleepMs);
        call.on('cancelled', () => clearTimeout(t));
      } else answer();
    },
    serverStream(call: grpc.ServerWritableStream<{ count: number; size?: number; delayMs?: number }, any>) {
      track(call);
      const { count, size = 0, delayMs = 0 } = call.request;
      const pad = 'x'.repeat(size);
      let i = 0;
      let stopped = false;
      call.on('cancelled', () => (stopped = true));
      // Respect backpressure: write until the stream asks to wait, then wait for 'drain'.
      const pump = (): void => {
        while (!stopped && i < count) {
          const ok = call.write({ i: i++, pad });
          if (delayMs) {
            setTimeout(pump, delayMs);
            return;
          }
          if (!ok) {
            call.once('drain', pump);
            return;
          }
        }
        if (!stopped && i >= count) call.end(trailer());
      };
      pump();
    },
    clientStream(call: grpc.ServerReadableStream<{ msg: string }, any>, cb: grpc.sendUnaryData<any>) {
      track(call);
      const got: string[] = [];
      let answered = false;
      call.on('data', (m: { msg: string; fail?: { code: number; details: string } }) => {
        got.push(m.msg);
        // Answer before the client finished streaming.
        if (m.fail && !answered) {
          answered = true;
          cb({ code: m.fail.code, details: m.fail.details });
        }
      });
      call.on('end', () => {
        if (!answered) cb(null, { count: got.length, joined: got.join(',') }, trailer());
      });
    },
    bidi(call: grpc.ServerDuplexStream<{ msg: string }, any>) {
      track(call);
      call.on('data', (m: { msg: string }) => call.write({ echo: m.msg, server: name }));
      call.on('end', () => call.end(trailer()));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    port,
    address: `127.0.0.1:${port}`,
    cancelled,
    deadlines,
    get calls() {
      return state.calls;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

export function echoClient(target: string): EchoClientT {
  return new EchoClient(target.replace(/^https?:\/\//, ''), grpc.credentials.createInsecure(), CLIENT_OPTIONS) as EchoClientT;
}

// ---------- grpc.health.v1.Health with hand-written protobuf bytes ----------

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

const rawCodec = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const HealthService = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: rawCodec.serialize,
    requestDeserialize: rawCodec.deserialize,
    responseSerialize: rawCodec.serialize,
    responseDeserialize: rawCodec.deserialize,
  },
} satisfies grpc.ServiceDefinition;

/** Add grpc.health.v1.Health to a server: ServingStatus by service name ('' = the whole server); a name not listed answers NOT_FOUND. */
function addHealth(server: grpc.Server, statuses: Map<string, ServingStatus>, onCheck: () => void): void {
  server.addService(HealthService, {
    check(call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) {
      onCheck();
      // HealthCheckRequest: empty, or 0x0a <len> <service bytes>
      const b = call.request;
      const service = b.length >= 2 && b[0] === 0x0a ? b.subarray(2, 2 + b[1]!).toString('utf8') : '';
      const s = statuses.get(service);
      if (!s) return cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      // HealthCheckResponse: field 1 varint: SERVING = 1, NOT_SERVING = 2
      cb(null, Buffer.from([0x08, s === 'SERVING' ? 1 : 2]));
    },
  });
}

export async function startHealthServer(statuses: Map<string, ServingStatus>): Promise<{ port: number; address: string; checks: number; close(): void }> {
  const server = new grpc.Server();
  const state = { checks: 0 };
  addHealth(server, statuses, () => state.checks++);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    port,
    address: `127.0.0.1:${port}`,
    get checks() {
      return state.checks;
    },
    close: () => server.forceShutdown(),
  };
}

/** Promise helpers for the generic client. */
export function unary(client: EchoClientT, req: UnaryRequest, md = new grpc.Metadata(), opts: grpc.CallOptions = {}): Promise<{ res?: any; err?: grpc.ServiceError; head?: grpc.Metadata; status?: grpc.StatusObject }> {
  return new Promise((resolve) => {
    let head: grpc.Metadata | undefined;
    let status: grpc.StatusObject | undefined;
    let result: { res?: any; err?: grpc.ServiceError } | undefined;
    const maybe = (): void => {
      if (result && status) resolve({ ...result, head, status });
    };
    const call = client.unary(req, md, opts, (err: grpc.ServiceError | null, res: any) => {
      result = err ? { err } : { res };
      maybe();
    });
    call.on('metadata', (m: grpc.Metadata) => (head = m));
    call.on('status', (s: grpc.StatusObject) => {
      status = s;
      maybe();
    });
  });
}
