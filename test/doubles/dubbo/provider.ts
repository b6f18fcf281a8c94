// A Dubbo 2 provider double (net + hessian.js), written independently of the
// gateway's codec so the two check each other. It decodes requests as a Java
// provider does, answers generic ($invoke) and direct calls, heartbeats, and
// answers like Dubbo: results generalized (POJOs as maps with "class"),
// exceptions as GenericException for generic calls, status 60 for an unknown
// service key, status 70 for an unknown method.
import { createServer, type Server, type Socket } from 'node:net';
import hessian from 'hessian.js';

export class JavaException extends Error {
  constructor(
    readonly javaClass: string,
    message: string,
  ) {
    super(message);
  }
}

/** A method implementation that never answers. */
export const NEVER = Symbol('never');

export interface CallContext {
  provider: DubboProviderDouble;
  attachments: Record<string, unknown>;
  /** The parameter types the caller named. */
  types: string[];
}

export type MethodImpl = (args: unknown[], ctx: CallContext) => unknown;

export interface ServiceDef {
  interface: string;
  version?: string;
  group?: string;
  methods: Record<string, MethodImpl>;
}

export interface RecordedCall {
  service: string;
  version: string;
  group: string;
  /** The business method (for $invoke: its first argument). */
  method: string;
  generic: boolean;
  types: string[];
  args: unknown[];
  attachments: Record<string, unknown>;
  id: number;
}

export interface ProviderOptions {
  services: ServiceDef[];
  /** 'generic': exceptions of generic calls as GenericException (Dubbo 2.7+); 'plain': the exception class itself. */
  exceptionStyle?: 'generic' | 'plain';
  /** Answer with flags 3/4/5 (attachments) — what Dubbo 2.0.2+ providers do. */
  responseAttachments?: boolean;
  /** Send heartbeats to consumers every N ms (0: never). */
  heartbeatMs?: number;
  /** Do not answer heartbeats (a provider that hangs). */
  ignoreHeartbeats?: boolean;
  /** Keep every call in `calls` (default true; off for benchmarks). */
  record?: boolean;
}

const HEADER = 16;

/** A Dubbo frame, written independently of the gateway's codec (tests check one against the other). */
export function frame(flags: number, status: number, id: number, body: Buffer): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeUInt16BE(0xdabb, 0);
  h[2] = flags;
  h[3] = status;
  h.writeBigInt64BE(BigInt(id), 4);
  h.writeInt32BE(body.length, 12);
  return Buffer.concat([h, body]);
}

/** Consecutive hessian2 values. */
export function encode(...values: unknown[]): Buffer {
  const enc = new hessian.EncoderV2();
  for (const v of values) enc.write(v);
  return Buffer.from(enc.get());
}

/** Count parameters in a JVM descriptor such as `Ljava/lang/String;[JI`. */
export function descriptorTypes(desc: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < desc.length) {
    let dims = 0;
    while (desc[i] === '[') {
      dims++;
      i++;
    }
    let t: string;
    if (desc[i] === 'L') {
      const end = desc.indexOf(';', i);
      t = desc.slice(i + 1, end).replace(/\//g, '.');
      i = end + 1;
    } else {
      t = { I: 'int', J: 'long', Z: 'boolean', D: 'double', F: 'float', S: 'short', B: 'byte', C: 'char' }[desc[i]!] ?? '?';
      i++;
    }
    out.push(t + '[]'.repeat(dims));
  }
  return out;
}

function exceptionObject(e: JavaException, style: 'generic' | 'plain', generic: boolean): unknown {
  const stackTrace = { $class: '[java.lang.StackTraceElement', $: [] };
  if (style === 'generic' && generic) {
    // Dubbo's GenericException: its own fields first, then Throwable's; detailMessage is the cause's toString + stack.
    const fields: Record<string, unknown> = {
      exceptionClass: e.javaClass,
      exceptionMessage: e.message,
      detailMessage: `${e.javaClass}: ${e.message}\n\tat com.example.OrderServiceImpl.call(OrderServiceImpl.java:42)`,
      cause: null,
      stackTrace,
      suppressedExceptions: { $class: 'java.util.Collections$UnmodifiableRandomAccessList', $: [] },
    };
    const obj = { $class: 'org.apache.dubbo.rpc.service.GenericException', $: fields };
    fields.cause = obj; // Throwable.cause == this when unset
    return obj;
  }
  const fields: Record<string, unknown> = { detailMessage: e.message, cause: null, stackTrace, suppressedExceptions: null };
  const obj = { $class: e.javaClass, $: fields };
  fields.cause = obj;
  return obj;
}

export class DubboProviderDouble {
  readonly calls: RecordedCall[] = [];
  heartbeatsReceived = 0;
  /** Answers consumers gave to the provider's own heartbeats. */
  heartbeatRepliesReceived = 0;
  private readonly sockets = new Set<Socket>();
  private readonly services = new Map<string, ServiceDef>();
  private hbTimer: NodeJS.Timeout | undefined;
  port = 0;
  readonly host = '127.0.0.1';

  private constructor(
    private readonly server: Server,
    readonly opts: ProviderOptions,
  ) {
    for (const s of opts.services) this.services.set(DubboProviderDouble.key(s.interface, s.version ?? '', s.group ?? ''), s);
  }

  static key(iface: string, version: string, group: string): string {
    const v = version === '0.0.0' ? '' : version;
    return `${group}/${iface}:${v}`;
  }

  static async start(opts: ProviderOptions, port = 0): Promise<DubboProviderDouble> {
    const server = createServer();
    const p = new DubboProviderDouble(server, opts);
    server.on('connection', (s) => p.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    p.port = (server.address() as { port: number }).port;
    if (opts.heartbeatMs) {
      p.hbTimer = setInterval(() => {
        for (const s of p.sockets) s.write(frame(0xe2, 0, Date.now(), encode(null)));
      }, opts.heartbeatMs);
    }
    return p;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  get connections(): number {
    return this.sockets.size;
  }

  /** The provider URL Dubbo registers (interface-level layout). */
  url(def: ServiceDef, extra: Record<string, string> = {}): string {
    const params = new URLSearchParams({
      anyhost: 'true',
      application: 'orders-provider',
      dubbo: '2.0.2',
      generic: 'false',
      interface: def.interface,
      methods: Object.keys(def.methods).sort().join(','),
      side: 'provider',
      timestamp: String(Date.now()),
      ...(def.version ? { version: def.version } : {}),
      ...(def.group ? { group: def.group } : {}),
      ...extra,
    });
    return `dubbo://${this.address}/${def.interface}?${params.toString()}`;
  }

  private accept(s: Socket): void {
    this.sockets.add(s);
    s.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= HEADER) {
        if (buf.readUInt16BE(0) !== 0xdabb) {
          s.destroy();
          return;
        }
        const len = buf.readInt32BE(12);
        if (buf.length < HEADER + len) break;
        const flags = buf[2]!;
        const id = Number(buf.readBigInt64BE(4));
        const body = buf.subarray(HEADER, HEADER + len);
        buf = buf.subarray(HEADER + len);
        this.onFrame(s, flags, id, body);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => this.sockets.delete(s));
  }

  private onFrame(s: Socket, flags: number, id: number, body: Buffer): void {
    if (!(flags & 0x80)) {
      if (flags & 0x20) this.heartbeatRepliesReceived++;
      return;
    }
    if (flags & 0x20) {
      this.heartbeatsReceived++;
      if (!this.opts.ignoreHeartbeats && flags & 0x40) s.write(frame(0x22, 20, id, encode(null)));
      return;
    }
    let call: RecordedCall;
    try {
      const d = new hessian.DecoderV2(body);
      d.read(); // dubbo version
      const path = d.read() as string;
      const version = (d.read() as string | null) ?? '';
      const method = d.read() as string;
      const desc = d.read() as string;
      const args = descriptorTypes(desc).map(() => d.read());
      const attachments = (d.read() as Record<string, unknown> | null) ?? {};
      const generic = method === '$invoke' || method === '$invokeAsync';
      call = {
        service: path,
        version: (attachments.version as string | undefined) ?? version,
        group: (attachments.group as string | undefined) ?? '',
        method: generic ? (args[0] as string) : method,
        generic,
        types: generic ? ((args[1] as string[] | null) ?? []) : descriptorTypes(desc),
        args: generic ? ((args[2] as unknown[] | null) ?? []) : args,
        attachments,
        id,
      };
    } catch (e) {
      s.write(frame(0x02, 40, id, encode(`Failed to decode request: ${(e as Error).message}`)));
      return;
    }
    if (this.opts.record !== false) this.calls.push(call);
    if (!(flags & 0x40)) return;
    const def = this.services.get(DubboProviderDouble.key(call.service, call.version, call.group));
    if (!def) {
      const msg = `Not found exported service: ${call.group ? call.group + '/' : ''}${call.service}:${call.version}:${this.port} in [${[...this.services.keys()].join(', ')}], may be version or group mismatch`;
      s.write(frame(0x02, 60, id, encode(msg)));
      return;
    }
    const impl = def.methods[call.method];
    if (!impl) {
      const msg = `org.apache.dubbo.rpc.RpcException: java.lang.NoSuchMethodException: ${call.service}.${call.method}(${call.types.join(', ')})`;
      s.write(frame(0x02, 70, id, encode(msg)));
      return;
    }
    let result: unknown;
    try {
      result = impl(call.args, { provider: this, attachments: call.attachments, types: call.types });
    } catch (e) {
      this.reply(s, id, call, e);
      return;
    }
    if (result === NEVER) return;
    Promise.resolve(result).then(
      (v) => (v === NEVER ? undefined : this.reply(s, id, call, undefined, v)),
      (e) => this.reply(s, id, call, e),
    );
  }

  private reply(s: Socket, id: number, call: RecordedCall, err: unknown, value?: unknown): void {
    if (s.destroyed) return;
    const withAtt = this.opts.responseAttachments !== false;
    const att = { dubbo: '2.0.2' };
    let body: Buffer;
    if (err !== undefined) {
      if (!(err instanceof JavaException)) {
        s.write(frame(0x02, 80, id, encode(`provider double failed: ${(err as Error).message}`)));
        return;
      }
      const ex = exceptionObject(err, this.opts.exceptionStyle ?? 'generic', call.generic);
      body = withAtt ? encode(3, ex, att) : encode(0, ex);
    } else if (value === null || value === undefined) body = withAtt ? encode(5, att) : encode(2);
    else body = withAtt ? encode(4, value, att) : encode(1, value);
    s.write(frame(0x02, 20, id, body));
  }

  /** Announce shutdown (readonly event) to every consumer. */
  sendReadonly(): void {
    for (const s of this.sockets) s.write(frame(0xa2, 0, Date.now(), encode('R')));
  }

  /** Die: drop every connection at once (no FIN handshake niceties) and stop listening. */
  kill(): void {
    clearInterval(this.hbTimer);
    for (const s of this.sockets) s.destroy();
    this.server.close();
  }

  async stop(): Promise<void> {
    clearInterval(this.hbTimer);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
