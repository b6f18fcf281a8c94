// The gRPC health checking protocol as an active health check: one
// grpc.health.v1.Health/Check call per probe over a fresh connection (h2c,
// or TLS with ALPN h2 when requests to the instance use TLS).
// Healthy = the call ends with grpc-status 0 and the response says SERVING.
// The two messages are tiny, so they are encoded here by hand:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  (SERVING = 1)
import http2 from 'node:http2';
import type { HealthCheckConfig } from '../config/schema.js';
import { formatGrpcTimeout } from '../exchange/grpc-status.js';
import type { Instance } from './instance.js';
import type { Cluster } from './cluster.js';
import { probeTls, tlsConnectOptions } from './tls.js';

const SERVING = 1;

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-prefixed gRPC message frame carrying HealthCheckRequest{service}. */
export function healthCheckRequestFrame(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const msg = name.length ? Buffer.concat([Buffer.from([0x0a, ...varint(name.length)]), name]) : Buffer.alloc(0);
  const frame = Buffer.alloc(5 + msg.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(msg.length, 1);
  msg.copy(frame, 5);
  return frame;
}

/** The protobuf varint at msg[i]: its value and the index after it; undefined when it runs past the end. */
function readVarint(msg: Buffer, i: number): [number, number] | undefined {
  let v = 0;
  let shift = 0;
  for (;;) {
    if (i >= msg.length) return undefined;
    const b = msg[i++]!;
    v += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (!(b & 0x80)) return [v, i];
  }
}

/** The ServingStatus in a response body (one uncompressed gRPC frame); undefined when unreadable. */
export function parseHealthCheckResponse(body: Buffer): number | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  const len = body.readUInt32BE(1);
  if (body.length < 5 + len) return undefined;
  const msg = body.subarray(5, 5 + len);
  let status = 0; // proto3 default: UNKNOWN
  let i = 0;
  while (i < msg.length) {
    const key = msg[i++]!;
    const field = key >>> 3;
    const wire = key & 7;
    // varint (0) or length-delimited (2): both start with a varint; nothing else is expected.
    if (wire !== 0 && wire !== 2) return undefined;
    const read = readVarint(msg, i);
    if (read === undefined) return undefined;
    const [v, next] = read;
    i = next;
    if (wire === 0) {
      if (field === 1) status = v;
    } else i += v; // skip the length-delimited field
  }
  return status;
}

/** One Health/Check call. Settles within cfg.timeoutMs, never rejects. */
export function grpcHealthProbe(inst: Instance, cfg: HealthCheckConfig, cluster?: Cluster): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let done = false;
    const tls = probeTls(inst, cluster?.config);
    if (tls === null) {
      resolve(false);
      return;
    }
    // Over TLS (ALPN h2) when requests to the instance are.
    const session = http2.connect(`${tls ? 'https' : 'http'}://${inst.id}`, { settings: { enablePush: false }, ...(tls ? tlsConnectOptions(tls, inst.host, 'h2') : {}) });
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      session.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), cfg.timeoutMs);
    session.on('error', () => finish(false));
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ':method': 'POST',
        ':scheme': 'http',
        ':path': '/grpc.health.v1.Health/Check',
        ':authority': inst.id,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': formatGrpcTimeout(cfg.timeoutMs),
        'user-agent': 'meshgate-health-check',
      });
    } catch {
      finish(false);
      return;
    }
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let httpStatus = 0;
    stream.on('response', (h) => {
      httpStatus = Number(h[':status']);
      // Trailers-only: grpc-status arrives with the headers.
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      finish(httpStatus === 200 && grpcStatus === '0' && parseHealthCheckResponse(Buffer.concat(chunks)) === SERVING);
    });
    stream.on('error', () => finish(false));
    stream.on('close', () => finish(false));
    stream.end(healthCheckRequestFrame(cfg.grpcService));
  });
}
