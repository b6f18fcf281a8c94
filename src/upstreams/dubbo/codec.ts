// Dubbo 2 wire protocol ("dubbo://") with hessian2 bodies.
//
// Frame: a 16-byte header, then the body.
//   0-1   magic 0xdabb
//   2     flags: 0x80 request, 0x40 two-way, 0x20 event, low 5 bits serialization (hessian2 = 2)
//   3     status (responses): 20 OK, 30/31 timeout, 40 bad request, 60 service not found, ...
//   4-11  request id, int64 big-endian (responses echo it)
//   12-15 body length, int32 big-endian
// A request body is consecutive hessian2 values written by one encoder (class
// definitions and references are shared across them): dubbo version, path,
// service version, method, parameter descriptor, each argument, attachments.
// A response body with status OK starts with an int flag (0 exception,
// 1 value, 2 null, 3..5 the same followed by attachments); any other status
// carries an error string.
import hessian from 'hessian.js';

export const MAGIC = 0xdabb;
export const HEADER_LENGTH = 16;
export const FLAG_REQUEST = 0x80;
export const FLAG_TWOWAY = 0x40;
export const FLAG_EVENT = 0x20;
export const SERIALIZATION_HESSIAN2 = 2;
export const DUBBO_VERSION = '2.0.2';
/** Dubbo's default payload limit (8 MiB). */
export const DEFAULT_MAX_BODY = 8 * 1024 * 1024;

export const Status = {
  OK: 20,
  CLIENT_TIMEOUT: 30,
  SERVER_TIMEOUT: 31,
  CHANNEL_INACTIVE: 35,
  BAD_REQUEST: 40,
  BAD_RESPONSE: 50,
  SERVICE_NOT_FOUND: 60,
  SERVICE_ERROR: 70,
  SERVER_ERROR: 80,
  CLIENT_ERROR: 90,
  SERVER_THREADPOOL_EXHAUSTED: 100,
} as const;

export const ResponseFlag = {
  EXCEPTION: 0,
  VALUE: 1,
  NULL: 2,
  EXCEPTION_WITH_ATTACHMENTS: 3,
  VALUE_WITH_ATTACHMENTS: 4,
  NULL_WITH_ATTACHMENTS: 5,
} as const;

export const GENERIC_METHOD = '$invoke';
export const GENERIC_DESCRIPTOR = 'Ljava/lang/String;[Ljava/lang/String;[Ljava/lang/Object;';

/** One Dubbo invocation, as it goes on the wire. */
export interface Invocation {
  /** Service interface (the exporter's path). */
  service: string;
  version: string;
  group: string;
  method: string;
  /** JVM parameter descriptor, e.g. `Ljava/lang/String;I`. */
  descriptor: string;
  args: readonly unknown[];
  attachments: Record<string, string>;
}

/** A generic ($invoke) call of `method` with Java parameter types and hessian-ready arguments. */
export function genericInvocation(
  service: string,
  version: string,
  group: string,
  method: string,
  types: readonly string[],
  args: readonly unknown[],
  attachments: Record<string, string>,
): Invocation {
  return {
    service,
    version,
    group,
    method: GENERIC_METHOD,
    descriptor: GENERIC_DESCRIPTOR,
    // String[] and Object[] are written as typed lists, as Java's Hessian2Output does.
    args: [method, { $class: '[string', $: types }, { $class: '[object', $: args }],
    attachments,
  };
}

// One encoder for the process: encoding is synchronous and the result is
// copied into the frame before the next use.
const encoder = new hessian.EncoderV2({ size: 4096 });

function writeId(buf: Buffer, id: number): void {
  // Ids stay below 2^53; written as two uint32 halves to avoid a BigInt per frame.
  buf.writeUInt32BE(Math.floor(id / 0x1_0000_0000), 4);
  buf.writeUInt32BE(id >>> 0, 8);
}

function frame(flags: number, status: number, id: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  out.writeUInt16BE(MAGIC, 0);
  out[2] = flags;
  out[3] = status;
  writeId(out, id);
  out.writeInt32BE(body.length, 12);
  body.copy(out, HEADER_LENGTH);
  return out;
}

/** A two-way request frame. Throws (TypeError) when an argument cannot be encoded. */
export function encodeRequest(id: number, inv: Invocation): Buffer {
  encoder.reset();
  encoder
    .writeString(DUBBO_VERSION)
    .writeString(inv.service)
    .writeString(inv.version || '0.0.0')
    .writeString(inv.method)
    .writeString(inv.descriptor);
  for (let i = 0; i < inv.args.length; i++) encoder.write(inv.args[i]);
  encoder.write(inv.attachments);
  return frame(FLAG_REQUEST | FLAG_TWOWAY | SERIALIZATION_HESSIAN2, 0, id, encoder.get());
}

const NULL_BODY = Buffer.from([0x4e]); // hessian2 null

/** Heartbeat request (0xE2, body null); providers answer with an event response. */
export function encodeHeartbeat(id: number): Buffer {
  return frame(FLAG_REQUEST | FLAG_TWOWAY | FLAG_EVENT | SERIALIZATION_HESSIAN2, 0, id, NULL_BODY);
}

/** Answer to a heartbeat the peer sent (0x22, status OK, body null). */
export function encodeHeartbeatResponse(id: number): Buffer {
  return frame(FLAG_EVENT | SERIALIZATION_HESSIAN2, Status.OK, id, NULL_BODY);
}

export interface Frame {
  flags: number;
  status: number;
  id: number;
  body: Buffer;
}

export class ProtocolError extends Error {
  readonly code = 'MESHGATE_DUBBO_PROTOCOL';
}

/**
 * Splits a byte stream into frames. Small frames that arrive in one chunk are
 * sliced, not copied; a large frame arriving in many chunks is joined once,
 * when it is complete.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Bytes needed before parsing is worth trying again. */
  private need = HEADER_LENGTH;

  constructor(private readonly maxBody = DEFAULT_MAX_BODY) {}

  /** Feed a chunk; calls onFrame for every complete frame. Throws ProtocolError on garbage. */
  push(chunk: Buffer, onFrame: (f: Frame) => void): void {
    let buf: Buffer;
    if (this.size === 0) buf = chunk;
    else {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size < this.need) return;
      buf = Buffer.concat(this.chunks, this.size);
      this.chunks = [];
      this.size = 0;
    }
    let off = 0;
    this.need = HEADER_LENGTH;
    while (buf.length - off >= HEADER_LENGTH) {
      if (buf.readUInt16BE(off) !== MAGIC) throw new ProtocolError('bad magic: not a Dubbo 2 stream');
      const len = buf.readInt32BE(off + 12);
      if (len < 0 || len > this.maxBody) throw new ProtocolError(`frame body of ${len} bytes exceeds the limit of ${this.maxBody}`);
      if (buf.length - off < HEADER_LENGTH + len) {
        this.need = HEADER_LENGTH + len;
        break;
      }
      const id = buf.readUInt32BE(off + 4) * 0x1_0000_0000 + buf.readUInt32BE(off + 8);
      onFrame({ flags: buf[off + 2]!, status: buf[off + 3]!, id, body: buf.subarray(off + HEADER_LENGTH, off + HEADER_LENGTH + len) });
      off += HEADER_LENGTH + len;
    }
    if (off < buf.length) {
      // Keep the tail; copy a small one so a large chunk is not pinned by a few bytes.
      const rest = buf.subarray(off);
      this.chunks.push(rest.length < 4096 ? Buffer.from(rest) : rest);
      this.size = rest.length;
    }
  }
}

/** The Java class of a decoded object (a non-enumerable property, so JSON never shows it). */
export const JAVA_CLASS: unique symbol = Symbol('javaClass');

/**
 * hessian.js turns objects of *Exception classes into JS Errors and drops their
 * fields. For JSON answers we want plain values and, for exceptions, the class
 * and the fields (GenericException carries the original class in a field).
 * This decoder reads objects as plain field maps that remember their class,
 * and byte arrays as base64 strings.
 */
class JsonDecoder extends hessian.DecoderV2 {
  readObject(withType?: boolean): unknown {
    const code = this.byteBuffer.get();
    let ref: number;
    if (code === 0x43) {
      this._readObjectDefinition();
      return this.readObject(withType);
    } else if (code === 0x4f) ref = this.readInt();
    else if (code >= 0x60 && code <= 0x6f) ref = code - 0x60;
    else this.throwError('readObject', code);
    const cls = this.classes[ref];
    if (!cls) throw new ProtocolError(`hessian object refers to unknown class definition ${ref}`);
    const fields: Record<string | symbol, unknown> = {};
    Object.defineProperty(fields, JAVA_CLASS, { value: cls.name, enumerable: false });
    this._addRef(fields);
    for (let i = 0; i < cls.fields.length; i++) {
      const name = cls.fields[i]!;
      const v = this.read(withType);
      // Inner-class back references (this$0) are cycles of no use to a client.
      if (name !== '$$ignore_inner_property$$') fields[name] = v;
    }
    return fields;
  }

  override readBytes(): Buffer {
    return super.readBytes().toString('base64') as unknown as Buffer;
  }
}

export interface JavaException {
  /** The Java class, e.g. java.lang.IllegalStateException. */
  exception: string;
  message: string | null;
}

export type DubboResult =
  | { kind: 'value'; value: unknown; attachments: Record<string, unknown> | undefined }
  | { kind: 'exception'; error: JavaException; attachments: Record<string, unknown> | undefined }
  /** Status other than OK: the body is the provider's error text. */
  | { kind: 'status'; status: number; message: string };

const GENERIC_EXCEPTION = /(^|\.)GenericException$/;

/** Class and message of a decoded exception object (plain Java exception or Dubbo's GenericException). */
export function describeException(v: unknown): JavaException {
  if (v === null || typeof v !== 'object') return { exception: 'java.lang.RuntimeException', message: v == null ? null : String(v) };
  const f = v as Record<string | symbol, unknown>;
  const cls = typeof f[JAVA_CLASS] === 'string' ? (f[JAVA_CLASS] as string) : 'java.lang.RuntimeException';
  if (typeof f.exceptionClass === 'string' && (GENERIC_EXCEPTION.test(cls) || f.exceptionMessage !== undefined)) {
    return { exception: f.exceptionClass, message: typeof f.exceptionMessage === 'string' ? f.exceptionMessage : null };
  }
  return { exception: cls, message: typeof f.detailMessage === 'string' ? f.detailMessage : null };
}

/** Decode a response body (a frame without the request flag). Throws on malformed hessian. */
export function decodeResponse(f: Frame): DubboResult {
  const d = new JsonDecoder(f.body);
  if (f.status !== Status.OK) {
    let message = '';
    try {
      const v = d.read(false);
      message = v == null ? '' : String(v);
    } catch {
      message = f.body.toString('utf8');
    }
    return { kind: 'status', status: f.status, message };
  }
  const flag = d.read(false);
  switch (flag) {
    case ResponseFlag.VALUE:
    case ResponseFlag.VALUE_WITH_ATTACHMENTS: {
      const value = d.read(false);
      const attachments = flag === ResponseFlag.VALUE_WITH_ATTACHMENTS ? (d.read(false) as Record<string, unknown>) : undefined;
      return { kind: 'value', value, attachments };
    }
    case ResponseFlag.NULL:
    case ResponseFlag.NULL_WITH_ATTACHMENTS: {
      const attachments = flag === ResponseFlag.NULL_WITH_ATTACHMENTS ? (d.read(false) as Record<string, unknown>) : undefined;
      return { kind: 'value', value: null, attachments };
    }
    case ResponseFlag.EXCEPTION:
    case ResponseFlag.EXCEPTION_WITH_ATTACHMENTS: {
      const error = describeException(d.read(false));
      const attachments = flag === ResponseFlag.EXCEPTION_WITH_ATTACHMENTS ? (d.read(false) as Record<string, unknown>) : undefined;
      return { kind: 'exception', error, attachments };
    }
    default:
      throw new ProtocolError(`unknown response flag ${String(flag)}`);
  }
}

/** Is this frame a request from the peer (heartbeat, readonly event)? */
export function isRequest(f: Frame): boolean {
  return (f.flags & FLAG_REQUEST) !== 0;
}

export function isEvent(f: Frame): boolean {
  return (f.flags & FLAG_EVENT) !== 0;
}

/** The payload of an event request: null for a heartbeat, "R" for readonly (provider shutting down). */
export function decodeEventData(f: Frame): unknown {
  if (f.body.length === 0) return null;
  try {
    return new hessian.DecoderV2(f.body).read(false);
  } catch {
    return undefined;
  }
}
