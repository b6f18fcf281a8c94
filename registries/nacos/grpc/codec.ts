// The Nacos gRPC wire messages, encoded by hand (they are tiny). From Nacos'
// api/src/main/proto/nacos_grpc_service.proto (2.x and 3.x):
//
//   message Metadata { string type = 3; string clientIp = 8; map<string, string> headers = 7; }
//   message Payload  { Metadata metadata = 2; google.protobuf.Any body = 3; }
//   google.protobuf.Any { string type_url = 1; bytes value = 2; }
//   service Request         { rpc request (Payload) returns (Payload); }
//   service BiRequestStream { rpc requestBiStream (stream Payload) returns (stream Payload); }
//
// As in Nacos' GrpcUtils: metadata.type is the simple class name of the
// request/response (`ServerCheckRequest`), the body's value is the JSON of the
// object with its headers taken out (they travel in metadata.headers), and the
// Any's type_url is left empty.

export const REQUEST_PATH = '/Request/request';
export const BI_STREAM_PATH = '/BiRequestStream/requestBiStream';

export interface Payload {
  type: string;
  clientIp: string;
  headers: Record<string, string>;
  /** The body's value (JSON text of the request/response). */
  body: Buffer;
}

export class CodecError extends Error {
  override name = 'CodecError';
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
function field(num: number, value: Buffer): Buffer {
  return Buffer.concat([varint((num << 3) | 2), varint(value.length), value]);
}

function strField(num: number, s: string): Buffer {
  return s ? field(num, Buffer.from(s, 'utf8')) : Buffer.alloc(0);
}

export function encodeMetadata(type: string, clientIp: string, headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [strField(3, type)];
  // map<string,string> = repeated entry message { string key = 1; string value = 2; }
  for (const [k, v] of Object.entries(headers)) parts.push(field(7, Buffer.concat([strField(1, k), strField(2, v)])));
  parts.push(strField(8, clientIp));
  return Buffer.concat(parts);
}

export function encodePayload(p: Payload): Buffer {
  const meta = encodeMetadata(p.type, p.clientIp, p.headers);
  // Any: type_url (1) empty, value (2) = body
  const any = p.body.length ? field(2, p.body) : Buffer.alloc(0);
  return Buffer.concat([field(2, meta), field(3, any)]);
}

function readVarint(buf: Buffer, i: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (let n = 0; n < 10; n++) {
    if (i >= buf.length) throw new CodecError('truncated varint');
    const b = buf[i++]!;
    v += (b & 0x7f) * mul;
    mul *= 128;
    if (!(b & 0x80)) return [v, i];
  }
  throw new CodecError('varint too long');
}

/** Each field of a message: number, wire type, and the bytes (length-delimited) or value (varint). */
function* fields(buf: Buffer): Generator<{ num: number; wire: number; bytes?: Buffer; value?: number }> {
  let i = 0;
  while (i < buf.length) {
    const [key, a] = readVarint(buf, i);
    i = a;
    const num = Math.floor(key / 8);
    const wire = key & 7;
    if (num === 0) throw new CodecError('field number 0');
    if (wire === 0) {
      const [v, b] = readVarint(buf, i);
      i = b;
      yield { num, wire, value: v };
    } else if (wire === 2) {
      const [len, b] = readVarint(buf, i);
      if (b + len > buf.length) throw new CodecError('truncated field');
      yield { num, wire, bytes: buf.subarray(b, b + len) };
      i = b + len;
    } else if (wire === 1) {
      if (i + 8 > buf.length) throw new CodecError('truncated fixed64');
      i += 8;
    } else if (wire === 5) {
      if (i + 4 > buf.length) throw new CodecError('truncated fixed32');
      i += 4;
    } else throw new CodecError(`unsupported wire type ${wire}`);
  }
}

export function decodePayload(buf: Buffer): Payload {
  const p: Payload = { type: '', clientIp: '', headers: {}, body: Buffer.alloc(0) };
  for (const f of fields(buf)) {
    if (f.num === 2 && f.bytes) {
      for (const m of fields(f.bytes)) {
        if (!m.bytes) continue;
        if (m.num === 3) p.type = m.bytes.toString('utf8');
        else if (m.num === 8) p.clientIp = m.bytes.toString('utf8');
        else if (m.num === 7) {
          let k = '';
          let v = '';
          for (const e of fields(m.bytes)) {
            if (e.num === 1 && e.bytes) k = e.bytes.toString('utf8');
            else if (e.num === 2 && e.bytes) v = e.bytes.toString('utf8');
          }
          p.headers[k] = v;
        }
      }
    } else if (f.num === 3 && f.bytes) {
      for (const a of fields(f.bytes)) if (a.num === 2 && a.bytes) p.body = Buffer.from(a.bytes);
    }
  }
  return p;
}

/** A payload carrying `obj` as JSON. */
export function jsonPayload(type: string, obj: unknown, headers: Record<string, string> = {}, clientIp = ''): Payload {
  return { type, clientIp, headers, body: Buffer.from(JSON.stringify(obj), 'utf8') };
}

/** The JSON body of a payload as an object; CodecError when it is not one. */
export function payloadJson(p: Payload): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(p.body.toString('utf8') || '{}');
  } catch {
    throw new CodecError(`${p.type || 'payload'} body is not JSON`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new CodecError(`${p.type || 'payload'} body is not a JSON object`);
  return doc as Record<string, unknown>;
}

/** grpc-js custom (de)serializers. */
export const serializePayload = (p: Payload): Buffer => encodePayload(p);
export const deserializePayload = (b: Buffer): Payload => decodePayload(b);
