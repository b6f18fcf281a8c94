// A raw HTTP/2 client for tests: frames written by hand over node:net, so a
// test can send what node's own client refuses to (upper-case names, CR/LF/NUL
// in values, connection-specific fields, a content-length that lies, bursts of
// HEADERS + RST_STREAM). Header blocks use HPACK "literal without indexing,
// new name" with no Huffman coding; the frames the server sends are parsed
// (type, flags, stream id, payload) and recorded, not HPACK-decoded, except
// for a response's :status when it is a static-table index.
import net from 'node:net';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const CODE = { NO_ERROR: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2, REFUSED_STREAM: 7, CANCEL: 8, ENHANCE_YOUR_CALM: 0xb } as const;

/** The client connection preface (RFC 9113 3.4). */
export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** An HPACK integer with an n-bit prefix; the first byte carries `first`'s high bits. */
function hpackInt(value: number, prefixBits: number, first: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

/** A header block: every field a literal without indexing, new name, no Huffman. */
export function headerBlock(fields: ReadonlyArray<readonly [string | Buffer, string | Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.isBuffer(name) ? name : Buffer.from(name, 'latin1');
    const v = Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0x00]), Buffer.from(hpackInt(n.length, 7, 0)), n, Buffer.from(hpackInt(v.length, 7, 0)), v);
  }
  return Buffer.concat(parts);
}

/**
 * One field as "literal with incremental indexing, new name" (it enters the
 * server's dynamic table) or "literal without indexing"; `huffmanValue` is
 * an already Huffman-coded value.
 */
export function literalField(name: string, value: string | { huffman: Buffer }, indexing = false): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value.huffman;
  const h = typeof value === 'string' ? 0 : 0x80;
  return Buffer.concat([Buffer.from([indexing ? 0x40 : 0x00]), Buffer.from(hpackInt(n.length, 7, 0)), n, Buffer.from(hpackInt(v.length, 7, h)), v]);
}

/** An indexed field (RFC 7541 6.1): 62 is the newest dynamic table entry. */
export function indexedField(index: number): Buffer {
  return Buffer.from(hpackInt(index, 7, 0x80));
}

/** A HEADERS frame around a header block built by hand. */
export function headersFrameRaw(streamId: number, block: Buffer, endStream: boolean): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), streamId, block);
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

export function headersFrame(streamId: number, fields: ReadonlyArray<readonly [string | Buffer, string | Buffer]>, endStream: boolean): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), streamId, headerBlock(fields));
}

export function dataFrame(streamId: number, data: Buffer | string, endStream: boolean): Buffer {
  return frame(FRAME.DATA, endStream ? FLAG.END_STREAM : 0, streamId, Buffer.isBuffer(data) ? data : Buffer.from(data));
}

export function rstFrame(streamId: number, code: number = CODE.CANCEL): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

/** The request pseudo-header fields for a GET (or another method) to `path`. */
export function requestFields(path: string, method = 'GET', authority = 'gw.test'): Array<[string, string]> {
  return [
    [':method', method],
    [':scheme', 'http'],
    [':path', path],
    [':authority', authority],
  ];
}

export interface ReceivedFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
  at: number;
}

/** Static-table indices of :status (RFC 7541 Appendix A). */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

export class RawH2 {
  readonly frames: ReceivedFrame[] = [];
  closed = false;
  closedAt = 0;
  private buf: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.closedAt = performance.now();
      this.wake();
    });
  }

  /** Connect, send the preface and an empty SETTINGS frame. */
  static connect(port: number, host = '127.0.0.1'): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, host, () => {
        socket.off('error', reject);
        const c = new RawH2(socket);
        socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
        resolve(c);
      });
      socket.once('error', reject);
    });
  }

  write(...frames: Buffer[]): boolean {
    if (this.socket.destroyed) return false;
    return this.socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames));
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const f: ReceivedFrame = {
        type: this.buf[3]!,
        flags: this.buf[4]!,
        streamId: this.buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.buf.subarray(9, 9 + len)),
        at: performance.now(),
      };
      this.buf = this.buf.subarray(9 + len);
      this.frames.push(f);
      if (f.type === FRAME.SETTINGS && !(f.flags & FLAG.ACK)) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (f.type === FRAME.PING && !(f.flags & FLAG.ACK)) this.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
    }
    this.wake();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Wait until `pred` holds (checked on every frame and on close), or fail after timeoutMs. */
  until<T>(pred: () => T | undefined | false, timeoutMs = 5_000, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), timeoutMs);
      const check = (): void => {
        const v = pred();
        if (v) {
          clearTimeout(timer);
          resolve(v);
        } else if (this.closed) {
          clearTimeout(timer);
          const last = pred();
          if (last) resolve(last);
          else reject(new Error(`connection closed while waiting for ${what}`));
        } else this.waiters.push(check);
      };
      check();
    });
  }

  /** The RST_STREAM code the server sent for a stream, if any. */
  rstCode(streamId: number): number | undefined {
    const f = this.frames.find((x) => x.type === FRAME.RST_STREAM && x.streamId === streamId);
    return f ? f.payload.readUInt32BE(0) : undefined;
  }

  goaway(): { lastStreamId: number; code: number; at: number } | undefined {
    const f = this.frames.find((x) => x.type === FRAME.GOAWAY);
    return f ? { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4), at: f.at } : undefined;
  }

  /** The :status of the response on a stream, when the server sent it as a static-table index; 0 = a response of another status; undefined = none. */
  status(streamId: number): number | undefined {
    const f = this.frames.find((x) => x.type === FRAME.HEADERS && x.streamId === streamId);
    if (!f) return undefined;
    let p = f.payload;
    // Skip a dynamic table size update (001xxxxx) if the block starts with one.
    while (p.length && (p[0]! & 0xe0) === 0x20) p = p.subarray(1);
    const b = p[0] ?? 0;
    if (b & 0x80) return STATIC_STATUS[b & 0x7f] ?? 0;
    return 0;
  }

  /** Wait for the stream to end: a response with END_STREAM, an RST_STREAM, a GOAWAY that leaves it out, or the connection closing. */
  async outcome(streamId: number, timeoutMs = 5_000): Promise<{ rst?: number; status?: number; goaway?: number; closed?: true }> {
    return this.until(
      () => {
        const rst = this.rstCode(streamId);
        if (rst !== undefined) return { rst };
        const ended = this.frames.some((x) => x.streamId === streamId && (x.type === FRAME.DATA || x.type === FRAME.HEADERS) && x.flags & FLAG.END_STREAM);
        if (ended) return { status: this.status(streamId) };
        const g = this.goaway();
        if (g && (g.lastStreamId < streamId || this.closed)) return { goaway: g.code };
        if (this.closed) return { closed: true as const };
        return undefined;
      },
      timeoutMs,
      `stream ${streamId}`,
    );
  }

  close(): void {
    this.socket.destroy();
  }
}
