// HTTP/2 abuse handling for downstream sessions (node:http2 servers).
//
// Malformed fields. nghttp2 (inside node:http2) already resets a stream with
// PROTOCOL_ERROR for an upper-case field name, a connection-specific field
// (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, te
// other than "trailers"), a bad pseudo-header and a content-length that the
// DATA frames contradict. Other invalid regular fields it drops without a
// word: a value with CR, LF, NUL or another control character, leading or
// trailing whitespace, a name with characters outside the token set, a Host
// that is not an authority. JavaScript never sees them, so `FrameTap` reads
// the connection's bytes before node:http2 does: it follows the frame layout,
// decodes every header block with its own HPACK decoder (RFC 7541: static and
// dynamic table, Huffman) and reports the streams whose block carries such a
// field; the listener resets those with PROTOCOL_ERROR instead of dispatching
// them. The decoder keeps no strings, only sizes and verdicts per dynamic
// table entry. When the tap cannot follow the bytes (an HPACK or framing error)
// node:http2 ends the connection anyway; the tap stops inspecting.
//
// Rapid reset (CVE-2023-44487). `ResetBudget` counts the streams a client
// resets before their response completed; over the budget the session gets
// GOAWAY ENHANCE_YOUR_CALM and is destroyed. The listener dispatches requests
// one event-loop turn after their HEADERS (setImmediate), so a stream reset in
// the same read never reaches the pipeline or an upstream; the tap hands
// node:http2 at most HEADERS_PER_TURN new streams per turn, so the count
// keeps up with a burst.
import http2 from 'node:http2';
import type net from 'node:net';
import { Duplex } from 'node:stream';

// ---------- HPACK Huffman code (RFC 7541 Appendix B) ----------

/**
 * Code length in bits of each symbol 0..255 and EOS (256). The code is
 * canonical: codes of one length are consecutive, in symbol order, and
 * shorter codes come first, so the lengths define it.
 */
const HUFFMAN_LENGTHS: readonly number[] = [
  // 0..31
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  // 32..63: ' ' ! " # $ % & ' ( ) * + , - . / 0..9 : ; < = > ?
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  // 64..95: @ A..Z [ \ ] ^ _
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  // 96..127: ` a..z { | } ~ DEL
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  // 128..255
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  // EOS
  30,
];

const EOS = 256;
const MAX_CODE_BITS = 30;
/** For each code length: the first code, the number of codes, and where its symbols start in HUFFMAN_SYMBOLS. */
const HUFFMAN_FIRST = new Int32Array(MAX_CODE_BITS + 1);
const HUFFMAN_COUNT = new Int32Array(MAX_CODE_BITS + 1);
const HUFFMAN_OFFSET = new Int32Array(MAX_CODE_BITS + 1);
const HUFFMAN_SYMBOLS = new Uint16Array(257);
{
  const order = HUFFMAN_LENGTHS.map((len, sym) => ({ len, sym })).sort((a, b) => a.len - b.len || a.sym - b.sym);
  let code = 0;
  let prevLen = order[0]!.len;
  order.forEach(({ len, sym }, i) => {
    code <<= len - prevLen;
    prevLen = len;
    if (HUFFMAN_COUNT[len] === 0) {
      HUFFMAN_FIRST[len] = code;
      HUFFMAN_OFFSET[len] = i;
    }
    HUFFMAN_COUNT[len]!++;
    HUFFMAN_SYMBOLS[i] = sym;
    code++;
  });
}

/** The code and length of a symbol, for tests and encoders of test input. */
export function huffmanCode(sym: number): { code: number; bits: number } {
  const bits = HUFFMAN_LENGTHS[sym]!;
  const i = HUFFMAN_SYMBOLS.indexOf(sym);
  return { code: HUFFMAN_FIRST[bits]! + (i - HUFFMAN_OFFSET[bits]!), bits };
}

/**
 * Decode a Huffman-coded string into `out`; the decoded length, or -1 when
 * the input is not a valid encoding (EOS inside, padding longer than 7 bits
 * or not all ones: RFC 7541 5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let code = 0;
  let bits = 0;
  let n = 0;
  for (let p = start; p < end; p++) {
    const byte = src[p]!;
    for (let k = 7; k >= 0; k--) {
      code = (code << 1) | ((byte >> k) & 1);
      bits++;
      const count = HUFFMAN_COUNT[bits]!;
      if (count !== 0) {
        const d = code - HUFFMAN_FIRST[bits]!;
        if (d < count) {
          const sym = HUFFMAN_SYMBOLS[HUFFMAN_OFFSET[bits]! + d]!;
          if (sym === EOS) return -1;
          out[n++] = sym;
          code = 0;
          bits = 0;
        }
      }
      if (bits > MAX_CODE_BITS) return -1;
    }
  }
  if (bits > 7 || code !== (1 << bits) - 1) return -1;
  return n;
}

// ---------- field validity (what nghttp2 would drop) ----------

const NAME_OK = new Uint8Array(256);
const VALUE_OK = new Uint8Array(256);
const AUTHORITY_OK = new Uint8Array(256);
{
  // token characters (RFC 9110 5.6.2), lower case only (RFC 9113 8.2.1)
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_OK[c.charCodeAt(0)] = 1;
  // field-vchar, SP and HTAB (RFC 9110 5.5); obs-text is kept, as nghttp2 does
  VALUE_OK[0x09] = 1;
  for (let c = 0x20; c <= 0x7e; c++) VALUE_OK[c] = 1;
  for (let c = 0x80; c <= 0xff; c++) VALUE_OK[c] = 1;
  // what nghttp2 accepts in a Host or :authority: unreserved, sub-delims, ":", "@", "[", "]", "%"
  for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@[]%") AUTHORITY_OK[c.charCodeAt(0)] = 1;
}

/** Name kinds: what a value is checked against. */
const enum Kind {
  Regular = 0,
  Pseudo = 1,
  Host = 2,
  /** a name nghttp2 would drop (or reset for upper case): the field is malformed whatever its value */
  BadName = 3,
}

/** Value verdict bits, kept per dynamic table entry. */
const VALUE_BAD_FIELD = 1;
const VALUE_BAD_AUTHORITY = 2;

function nameKind(b: Uint8Array, start: number, len: number): Kind {
  if (len === 0) return Kind.BadName;
  if (b[start] === 0x3a /* : */) return Kind.Pseudo;
  for (let i = start; i < start + len; i++) if (NAME_OK[b[i]!] === 0) return Kind.BadName;
  if (len === 4 && b[start] === 0x68 && b[start + 1] === 0x6f && b[start + 2] === 0x73 && b[start + 3] === 0x74) return Kind.Host;
  return Kind.Regular;
}

function valueVerdict(b: Uint8Array, start: number, len: number): number {
  if (len === 0) return 0;
  let v = 0;
  const first = b[start]!;
  const last = b[start + len - 1]!;
  // RFC 9113 8.2.1: no leading or trailing whitespace
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) v |= VALUE_BAD_FIELD;
  for (let i = start; i < start + len; i++) {
    const c = b[i]!;
    if (VALUE_OK[c] === 0) v |= VALUE_BAD_FIELD;
    if (AUTHORITY_OK[c] === 0) v |= VALUE_BAD_AUTHORITY;
  }
  return v;
}

function malformed(kind: Kind, verdict: number): boolean {
  switch (kind) {
    case Kind.Pseudo:
      return false; // nghttp2 resets bad pseudo-header fields itself
    case Kind.BadName:
      return true;
    case Kind.Host:
      return (verdict & (VALUE_BAD_FIELD | VALUE_BAD_AUTHORITY)) !== 0;
    default:
      return (verdict & VALUE_BAD_FIELD) !== 0;
  }
}

// ---------- HPACK decoding (RFC 7541) ----------

/** Static table names (RFC 7541 Appendix A), index 1..61. */
const STATIC_NAMES = [
  ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status', ':status', ':status', ':status', ':status', ':status',
  'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow', 'authorization',
  'cache-control', 'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-range', 'content-type',
  'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'link', 'location', 'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after',
  'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via', 'www-authenticate',
];
const STATIC_COUNT = STATIC_NAMES.length; // 61

interface TableEntry {
  size: number;
  nameLen: number;
  kind: Kind;
  verdict: number;
}

/** Result of inspecting one header block. */
export const enum BlockVerdict {
  Ok = 0,
  /** at least one field node:http2 would drop or reset */
  Malformed = 1,
  /** not a valid HPACK block: the decoder lost track (node:http2 ends the connection) */
  Undecodable = 2,
}

/**
 * An HPACK decoder that keeps only what validation needs: for each dynamic
 * table entry its size, its name length and kind and its value's verdict.
 * It must see every header block of the connection, in order.
 */
export class HeaderBlockInspector {
  private readonly table: TableEntry[] = [];
  private tableSize = 0;
  private maxSize: number;
  private scratch = new Uint8Array(256);
  private p = 0;

  /** settingsMaxSize: SETTINGS_HEADER_TABLE_SIZE this side announced (4096 unless changed). */
  constructor(private readonly settingsMaxSize = 4096) {
    this.maxSize = settingsMaxSize;
  }

  get dynamicTableSize(): number {
    return this.tableSize;
  }

  private int(b: Uint8Array, prefixBits: number, end: number): number {
    const max = (1 << prefixBits) - 1;
    let v = b[this.p++]! & max;
    if (v < max) return v;
    let shift = 0;
    for (;;) {
      if (this.p >= end || shift > 21) return -1;
      const c = b[this.p++]!;
      v += (c & 0x7f) * 2 ** shift;
      shift += 7;
      if ((c & 0x80) === 0) return v;
    }
  }

  /**
   * Decode one string literal at this.p; returns the decoded length with the
   * decoded bytes at `this.str` / `this.strStart`, or -1.
   */
  private str: Uint8Array = this.scratch;
  private strStart = 0;
  private string(b: Uint8Array, end: number): number {
    if (this.p >= end) return -1;
    const huffman = (b[this.p]! & 0x80) !== 0;
    const len = this.int(b, 7, end);
    if (len < 0 || this.p + len > end) return -1;
    const start = this.p;
    this.p += len;
    if (!huffman) {
      this.str = b;
      this.strStart = start;
      return len;
    }
    // The shortest code is 5 bits: at most len * 8 / 5 symbols.
    const need = Math.ceil((len * 8) / 5);
    if (this.scratch.length < need) this.scratch = new Uint8Array(Math.max(need, this.scratch.length * 2));
    const n = huffmanDecode(b, start, start + len, this.scratch);
    this.str = this.scratch;
    this.strStart = 0;
    return n;
  }

  private entry(index: number): TableEntry | undefined {
    const d = index - STATIC_COUNT - 1;
    if (d < 0 || d >= this.table.length) return undefined;
    return this.table[this.table.length - 1 - d];
  }

  private evict(limit: number): void {
    let drop = 0;
    while (this.tableSize > limit && drop < this.table.length) {
      this.tableSize -= this.table[drop]!.size;
      drop++;
    }
    if (drop) this.table.splice(0, drop);
  }

  private insert(e: TableEntry): void {
    if (e.size > this.maxSize) {
      // An entry larger than the table empties it and is not added (RFC 7541 4.4).
      this.table.length = 0;
      this.tableSize = 0;
      return;
    }
    this.evict(this.maxSize - e.size);
    this.table.push(e);
    this.tableSize += e.size;
  }

  inspect(b: Uint8Array, start = 0, end = b.length): BlockVerdict {
    this.p = start;
    let bad = false;
    let first = true;
    while (this.p < end) {
      const op = b[this.p]!;
      if (op & 0x80) {
        // indexed field
        const index = this.int(b, 7, end);
        if (index <= 0) return BlockVerdict.Undecodable;
        if (index > STATIC_COUNT) {
          const e = this.entry(index);
          if (!e) return BlockVerdict.Undecodable;
          if (malformed(e.kind, e.verdict)) bad = true;
        }
        first = false;
        continue;
      }
      if ((op & 0xe0) === 0x20) {
        // dynamic table size update: only at the start of a block
        if (!first) return BlockVerdict.Undecodable;
        const size = this.int(b, 5, end);
        if (size < 0 || size > this.settingsMaxSize) return BlockVerdict.Undecodable;
        this.maxSize = size;
        this.evict(size);
        continue;
      }
      first = false;
      const incremental = (op & 0x40) !== 0;
      const nameIndex = this.int(b, incremental ? 6 : 4, end);
      if (nameIndex < 0) return BlockVerdict.Undecodable;
      let kind: Kind;
      let nameLen: number;
      if (nameIndex === 0) {
        nameLen = this.string(b, end);
        if (nameLen < 0) return BlockVerdict.Undecodable;
        kind = nameKind(this.str, this.strStart, nameLen);
      } else if (nameIndex <= STATIC_COUNT) {
        const name = STATIC_NAMES[nameIndex - 1]!;
        nameLen = name.length;
        kind = nameIndex <= 14 ? Kind.Pseudo : nameIndex === 38 ? Kind.Host : Kind.Regular;
      } else {
        const e = this.entry(nameIndex);
        if (!e) return BlockVerdict.Undecodable;
        nameLen = e.nameLen;
        kind = e.kind;
      }
      const valueLen = this.string(b, end);
      if (valueLen < 0) return BlockVerdict.Undecodable;
      const verdict = valueVerdict(this.str, this.strStart, valueLen);
      if (malformed(kind, verdict)) bad = true;
      if (incremental) this.insert({ size: nameLen + valueLen + 32, nameLen, kind, verdict });
    }
    return bad ? BlockVerdict.Malformed : BlockVerdict.Ok;
  }
}

// ---------- the frame tap ----------

const PREFACE_LENGTH = 24;
const FRAME_HEADERS = 0x1;
const FRAME_PUSH_PROMISE = 0x5;
const FRAME_CONTINUATION = 0x9;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** node:http2's SETTINGS_MAX_FRAME_SIZE (the protocol default; the gateway does not raise it). */
const MAX_FRAME_SIZE = 16_384;
/** nghttp2 ends a connection whose header block spans more CONTINUATION frames than this (it allows 8). */
const MAX_HEADER_BLOCK = 16 * MAX_FRAME_SIZE;

/**
 * HEADERS frames handed to node:http2 per event-loop turn. node:http2
 * announces new streams only once the bytes of a read are processed, so this
 * bounds the streams one read can open (and reset) before the gateway sees
 * them: the rest of the read follows on the next turn.
 */
const HEADERS_PER_TURN = 32;

/**
 * A Duplex in front of a client connection that passes every byte through
 * unchanged, and reports each stream whose header block (request headers or
 * trailers) carries a field node:http2 would drop or reset. Give it to the
 * HTTP/2 server instead of the socket. A read holding more than
 * HEADERS_PER_TURN HEADERS frames is passed on in parts, one per turn.
 */
export class FrameTap extends Duplex {
  /** False once the tap could not follow the connection (it then only passes bytes). */
  inspecting = true;
  readonly inspector: HeaderBlockInspector;
  private prefaceLeft = PREFACE_LENGTH;
  private readonly head = Buffer.alloc(9);
  private headLen = 0;
  private payloadLeft = 0;
  private type = 0;
  private flags = 0;
  private streamId = 0;
  /** Payload pieces of the HEADERS / CONTINUATION frames of the block being read. */
  private pieces: Buffer[] = [];
  private frameBytes: Buffer[] = [];
  private blockBytes = 0;
  private blockStream = 0;
  private continuing = false;
  /** HEADERS frames passed on in this turn. */
  private turnHeaders = 0;
  /** Bytes read but held for the next turn, and whether the client's end follows them. */
  private backlog: Buffer | undefined;
  private endAfterBacklog = false;
  /** The session wants more bytes (false after push() said stop). */
  private wanted = true;

  constructor(
    readonly socket: net.Socket,
    initial: Buffer | undefined,
    private readonly onMalformed: (streamId: number) => void,
    headerTableSize = 4096,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.inspector = new HeaderBlockInspector(headerTableSize);
    socket.on('data', (chunk: Buffer) => {
      if (this.backlog) this.backlog = Buffer.concat([this.backlog, chunk]);
      else this.feed(chunk);
    });
    socket.on('end', () => {
      if (this.backlog) this.endAfterBacklog = true;
      else this.push(null);
    });
    // The connection's errors end it; the session learns of it through 'close'.
    socket.on('error', () => undefined);
    socket.on('close', () => this.destroy());
    if (initial?.length) this.feed(initial);
  }

  /** Scan a chunk and pass it on, or the part of it this turn allows. */
  private feed(chunk: Buffer): void {
    this.turnHeaders = 0;
    const stop = this.inspecting ? this.scan(chunk) : chunk.length;
    if (stop < chunk.length) {
      this.backlog = chunk.subarray(stop);
      this.socket.pause();
      setImmediate(this.nextTurn);
      if (stop > 0) this.wanted = this.push(chunk.subarray(0, stop));
      return;
    }
    this.wanted = this.push(chunk);
    if (!this.wanted) this.socket.pause();
  }

  private readonly nextTurn = (): void => {
    const b = this.backlog;
    this.backlog = undefined;
    if (this.destroyed || !b) return;
    this.feed(b);
    if (this.backlog) return;
    if (this.endAfterBacklog) this.push(null);
    else if (this.wanted) this.socket.resume();
  };

  override _read(): void {
    this.wanted = true;
    if (!this.backlog) this.socket.resume();
  }

  // node:http2 writes through its JS stream wrapper only (JSStreamSocket:
  // cork, one write per buffer with a callback, uncork). Those go straight to
  // the socket, whose own Writable buffers and reports them: the tap's
  // Writable side would only queue and copy what the socket does again.
  override write(chunk: Buffer, encOrCb?: BufferEncoding | ((e?: Error | null) => void), cb?: (e?: Error | null) => void): boolean {
    return this.socket.write(chunk, typeof encOrCb === 'function' ? encOrCb : cb);
  }

  override cork(): void {
    this.socket.cork();
  }

  override uncork(): void {
    this.socket.uncork();
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.socket.destroy();
    this.backlog = undefined;
    cb(err);
  }

  private giveUp(): void {
    this.inspecting = false;
    this.pieces = [];
    this.frameBytes = [];
  }

  /**
   * Follow the frames in a chunk of client bytes; returns where to stop for
   * this turn (a frame boundary), the chunk's length to take all of it.
   */
  private scan(chunk: Buffer): number {
    let p = 0;
    const n = chunk.length;
    while (p < n) {
      if (!this.inspecting) return n;
      if (this.prefaceLeft > 0) {
        const k = Math.min(this.prefaceLeft, n - p);
        this.prefaceLeft -= k;
        p += k;
        continue;
      }
      if (this.payloadLeft === 0 && this.headLen < 9) {
        if (this.headLen === 0 && this.turnHeaders >= HEADERS_PER_TURN) return p;
        if (this.headLen === 0 && n - p >= 9) {
          // The common case: a whole frame header in this chunk, read in place.
          this.startFrame(chunk, p);
          p += 9;
          if (!this.inspecting) return n;
          const len = this.payloadLeft;
          if (n - p >= len && (this.type === FRAME_HEADERS || this.type === FRAME_CONTINUATION)) {
            // A whole header frame in this chunk: inspected in place, no copies.
            this.payloadLeft = 0;
            this.endFrame(chunk, p, p + len);
            p += len;
            continue;
          }
          if (len === 0) this.endFrame();
          continue;
        }
        const k = Math.min(9 - this.headLen, n - p);
        chunk.copy(this.head, this.headLen, p, p + k);
        this.headLen += k;
        p += k;
        if (this.headLen < 9) return n;
        this.startFrame(this.head, 0);
        if (!this.inspecting) return n;
        if (this.payloadLeft === 0) this.endFrame();
        continue;
      }
      const k = Math.min(this.payloadLeft, n - p);
      if (this.type === FRAME_HEADERS || this.type === FRAME_CONTINUATION) this.frameBytes.push(chunk.subarray(p, p + k));
      this.payloadLeft -= k;
      p += k;
      if (this.payloadLeft === 0) this.endFrame();
    }
    return n;
  }

  private startFrame(h: Buffer, o: number): void {
    const length = (h[o]! << 16) | (h[o + 1]! << 8) | h[o + 2]!;
    this.type = h[o + 3]!;
    this.flags = h[o + 4]!;
    this.streamId = ((h[o + 5]! & 0x7f) << 24) | (h[o + 6]! << 16) | (h[o + 7]! << 8) | h[o + 8]!;
    this.payloadLeft = length;
    if (this.type === FRAME_HEADERS) this.turnHeaders++;
    if (length > MAX_FRAME_SIZE) {
      // FRAME_SIZE_ERROR: node:http2 ends the connection
      this.giveUp();
      return;
    }
    if (this.continuing && (this.type !== FRAME_CONTINUATION || this.streamId !== this.blockStream)) {
      // a header block interrupted: PROTOCOL_ERROR for the connection
      this.giveUp();
      return;
    }
    // CONTINUATION out of a block, or PUSH_PROMISE from a client: PROTOCOL_ERROR for the connection
    if ((this.type === FRAME_CONTINUATION && !this.continuing) || this.type === FRAME_PUSH_PROMISE) this.giveUp();
  }

  /**
   * A frame's payload is complete: `buf[start, end)` when it lies in one
   * chunk, else the pieces gathered in frameBytes.
   */
  private endFrame(buf?: Buffer, start = 0, end = 0): void {
    this.headLen = 0;
    const type = this.type;
    if (type !== FRAME_HEADERS && type !== FRAME_CONTINUATION) return;
    if (buf === undefined) {
      buf = this.frameBytes.length === 1 ? this.frameBytes[0]! : Buffer.concat(this.frameBytes);
      this.frameBytes = [];
      start = 0;
      end = buf.length;
    }
    if (type === FRAME_HEADERS) {
      if (this.flags & FLAG_PADDED) {
        if (end - start < 1) return this.giveUp();
        const pad = buf[start]!;
        start += 1;
        end -= pad;
      }
      if (this.flags & FLAG_PRIORITY) start += 5;
      if (end < start) return this.giveUp();
      this.blockStream = this.streamId;
      this.blockBytes = 0;
      if (this.pieces.length) this.pieces = [];
    }
    this.blockBytes += end - start;
    if (this.blockBytes > MAX_HEADER_BLOCK) return this.giveUp();
    if (!(this.flags & FLAG_END_HEADERS)) {
      // Socket chunks are never reused, so the pieces may point into them.
      this.pieces.push(buf.subarray(start, end));
      this.continuing = true;
      return;
    }
    this.continuing = false;
    let verdict: BlockVerdict;
    if (this.pieces.length === 0) verdict = this.inspector.inspect(buf, start, end);
    else {
      this.pieces.push(buf.subarray(start, end));
      const block = Buffer.concat(this.pieces);
      this.pieces = [];
      verdict = this.inspector.inspect(block);
    }
    if (verdict === BlockVerdict.Undecodable) return this.giveUp();
    if (verdict === BlockVerdict.Malformed) this.onMalformed(this.blockStream);
  }
}

// ---------- rapid reset ----------

/**
 * A token bucket over client resets: `max` tokens, refilled evenly over
 * `windowMs`; every stream the client resets before its response completed
 * takes one, every stream that completes gives one back (never above `max`).
 * `reset()` answers true once the bucket is overdrawn.
 */
export class ResetBudget {
  private tokens: number;
  private last: number;
  private readonly perMs: number;

  constructor(
    private readonly max: number,
    windowMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.tokens = max;
    this.last = this.now();
    this.perMs = max / windowMs;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.max, this.tokens + (t - this.last) * this.perMs);
    this.last = t;
  }

  /** A client reset; true when the budget is exhausted. */
  reset(): boolean {
    this.refill();
    this.tokens -= 1;
    return this.tokens < 0;
  }

  completed(): void {
    if (this.tokens < this.max) this.tokens = Math.min(this.max, this.tokens + 1);
  }
}

// ---------- one session ----------

const { NGHTTP2_PROTOCOL_ERROR, NGHTTP2_REFUSED_STREAM, NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

export interface H2GuardLimits {
  maxResetStreams: number;
  resetWindowMs: number;
}

/** On each stream: its session's guard, whether the gateway itself reset it, whether it was counted as a client reset. */
const GUARD = Symbol('meshgate.h2.guard');
const RESET_HERE = Symbol('meshgate.h2.resetHere');
const COUNTED = Symbol('meshgate.h2.counted');
type GuardedStream = http2.ServerHttp2Stream & { [GUARD]?: SessionGuard; [RESET_HERE]?: boolean; [COUNTED]?: boolean };

/** Reset a stream from the gateway's side (not counted as a client reset). */
export function resetStream(stream: http2.ServerHttp2Stream, code: number): void {
  (stream as GuardedStream)[RESET_HERE] = true;
  if (!stream.closed && !stream.destroyed) stream.close(code);
}

function countReset(s: GuardedStream): void {
  if (s[COUNTED] || s[RESET_HERE]) return;
  s[COUNTED] = true;
  s[GUARD]?.clientReset();
}

function onStreamAborted(this: GuardedStream): void {
  // 'aborted' comes before the stream is destroyed when the client reset it
  // (or nghttp2 did, for a protocol error); a local destroy() has already
  // marked the stream destroyed.
  if (!this.destroyed) countReset(this);
}

function onStreamClose(this: GuardedStream): void {
  const g = this[GUARD];
  if (!g) return;
  g.forget(this);
  if (this[COUNTED] || this[RESET_HERE]) return;
  // Closed with no response started: the client reset it. This is how a HEAD
  // stream shows it, whose writable side node:http2 ends at once (no 'aborted').
  // The gateway itself only destroys streams whose response has started.
  if (!this.headersSent) countReset(this);
  else if (!this.aborted) g.budget.completed();
}

function onIdle(guard: SessionGuard): void {
  // A stream opened meanwhile: the timer starts again when the last one closes.
  if (guard.openStreams === 0) guard.session?.close();
}

/**
 * What the listener knows about one HTTP/2 connection: the reset budget, the
 * streams its frame tap found malformed, the idle timer and the raw socket.
 *
 * The idle timer is the guard's, not node:http2's `session.setTimeout()`:
 * node:http2 marks a session destroyed before it clears that timer, and a
 * destroyed session ignores `setTimeout(0)`, so every session that ends
 * before its timer (a client that vanishes) stays in memory with its timer
 * for the whole idle period. This one is cleared by `release()`.
 */
export class SessionGuard {
  session: http2.ServerHttp2Session | undefined;
  readonly budget: ResetBudget;
  tripped = false;
  /** Streams with a malformed header block that node:http2 has not announced yet. */
  private pending: Set<number> | undefined;
  /** Open streams by id: trailers a tap reports are matched to them, the idle timer waits for none, and the send timeout reads their answers (send-watch.ts). */
  private readonly live = new Map<number, http2.ServerHttp2Stream>();
  private idle: NodeJS.Timeout | undefined;

  constructor(
    limits: H2GuardLimits,
    /** The connection as accepted (net or TLS socket), before any tap. */
    readonly socket: net.Socket,
    /** True when a FrameTap reads the connection (it reports malformed header blocks). */
    readonly tapped: boolean,
  ) {
    this.budget = new ResetBudget(limits.maxResetStreams, limits.resetWindowMs);
  }

  attach(session: http2.ServerHttp2Session): void {
    this.session = session;
  }

  /** Close the session gracefully (GOAWAY) once it has had no open stream for `ms`. */
  idleAfter(ms: number): void {
    this.idle = setTimeout(onIdle, ms, this);
    this.idle.unref();
  }

  /** The session or its connection closed: nothing of the guard's may keep it. */
  release(): void {
    clearTimeout(this.idle);
    this.idle = undefined;
  }

  /** The tap found a malformed header block on a stream. */
  readonly onMalformed = (id: number): void => {
    const open = this.live.get(id);
    if (open) {
      // trailers: the request is under way; resetting it errors its body upstream
      resetStream(open, NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    const pending = (this.pending ??= new Set());
    // Ids node:http2 refused itself are dropped when a later stream is announced;
    // a client that only sends refused streams cannot grow this without bound.
    if (pending.size >= 1024) pending.clear();
    pending.add(id);
  };

  /** A new stream; its request is dispatched one turn later. */
  onStream(stream: http2.ServerHttp2Stream): void {
    const s = stream as GuardedStream;
    s[GUARD] = this;
    // `on`, not `once`: each fires at most once per stream, and once() costs a wrapper per stream.
    stream.on('close', onStreamClose);
    if (stream.closed || stream.destroyed) {
      // Reset before it was announced: the RST_STREAM came in the same read as the HEADERS.
      if (stream.aborted) countReset(s);
      return;
    }
    stream.on('aborted', onStreamAborted);
    if (this.tripped) {
      resetStream(stream, NGHTTP2_REFUSED_STREAM);
      return;
    }
    const id = stream.id!;
    this.live.set(id, stream);
    const pending = this.pending;
    if (pending?.size) {
      if (pending.delete(id)) resetStream(stream, NGHTTP2_PROTOCOL_ERROR);
      // Lower ids were refused by node:http2 itself and will not be announced.
      for (const other of pending) if (other < id) pending.delete(other);
    }
  }

  forget(stream: http2.ServerHttp2Stream): void {
    // The last open stream closed: the session's idle time starts.
    if (stream.id !== undefined && this.live.delete(stream.id) && this.live.size === 0) this.idle?.refresh();
  }

  get openStreams(): number {
    return this.live.size;
  }

  /** The session's open streams. */
  streams(): IterableIterator<http2.ServerHttp2Stream> {
    return this.live.values();
  }

  clientReset(): void {
    const session = this.session;
    // A connection going away closes its streams: not the client's resets.
    if (this.tripped || !session || session.closed || session.destroyed || this.socket.destroyed) return;
    if (this.budget.reset()) this.trip();
  }

  /** GOAWAY ENHANCE_YOUR_CALM, and the connection closes. */
  trip(): void {
    if (this.tripped) return;
    this.tripped = true;
    try {
      this.session?.destroy(new Error('HTTP/2 client reset too many streams'), NGHTTP2_ENHANCE_YOUR_CALM);
    } catch {
      this.socket.destroy();
    }
  }
}
