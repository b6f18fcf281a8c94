// Chunked transfer coding (RFC 9112 7.1), decoding and encoding, for request
// bodies (server) and response bodies (client) alike.
//
//   chunk      = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//   chunk-size = 1*HEXDIG
//   chunk-ext  = *( ";" ext-name [ "=" ( token / quoted-string ) ] )
//
// RFC 9112 allows BWS around ";" and "="; llhttp does not, and neither does
// this decoder: no whitespace anywhere in a size line outside a quoted
// string. Quoted strings must close before the CRLF and may not use
// backslash escapes. A body's size lines may carry at most 16 KiB of
// extensions in all (llhttp's bound). Trailer fields follow the rules of
// head fields, and may not be content-length or transfer-encoding.
import { TCHAR, TOKEN_RE, WireError } from './grammar.js';
import { parseFieldLines } from './head.js';

const enum St {
  Size,
  /** After ";": the first byte of an extension name. */
  ExtNameStart,
  ExtName,
  /** After "=": a token, a quoted string, or nothing. */
  ExtValueStart,
  ExtToken,
  Quoted,
  /** After a closing quote: ";" or CR. */
  QuotedEnd,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailers,
  Done,
}

/** Hex digit value of a byte, or -1. */
function hex(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** qdtext (RFC 9110 5.6.4) without the backslash: HTAB, SP, visible ASCII but `"` and `\`, obs-text. */
function qdtext(c: number): boolean {
  return c === 9 || c === 32 || c === 33 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

/** Bytes of chunk extensions one body may carry, in all. */
export const MAX_EXTENSION_BYTES = 16 * 1024;

/** Decodes one chunked body incrementally; the trailer section is bounded by `maxTrailerBytes`. */
export class ChunkedDecoder {
  private state = St.Size;
  private size = 0;
  /** Significant hex digits of the size (leading zeros do not count). */
  private digits = 0;
  private sawDigit = false;
  /** Hex digits of the current size line, leading zeros included. */
  private sizeChars = 0;
  private left = 0;
  /** Bytes of chunk extensions, in all. */
  private meta = 0;
  private trailerBytes = 0;
  private trailerBuf: number[] | undefined;
  /** Where the current trailer line starts in trailerBuf. */
  private trailerLine = 0;
  private readonly trailerFields: string[] = [];
  /** Trailer fields, [name, value, ...], once the body ended. */
  trailers: string[] = [];

  constructor(
    private readonly maxTrailerBytes: number,
    /** The status a WireError carries (400 for requests, 502 for responses). */
    private readonly status: number,
  ) {}

  private fail(why: string): never {
    throw new WireError(this.status, why);
  }

  /**
   * Feeds bytes; `data` gets body bytes (subarrays of `buf`, not copies).
   * Returns the offset just past the body's end (the bytes after it belong to
   * the next message), or -1 when the body has not ended. Throws WireError.
   */
  feed(buf: Buffer, data: (b: Buffer) => void): number {
    let i = 0;
    const n = buf.length;
    while (i < n) {
      const c = buf[i]!;
      switch (this.state) {
        case St.Size: {
          const d = hex(c);
          if (d >= 0) {
            if (d > 0 || this.digits > 0) {
              if (++this.digits > 12) this.fail('chunk size too large');
            }
            this.sawDigit = true;
            this.size = this.size * 16 + d;
            if (++this.sizeChars > 64) this.fail('chunk size too long');
            i++;
          } else if (!this.sawDigit) this.fail('malformed chunk size');
          else if (c === 13) {
            this.state = St.SizeLf;
            i++;
          } else if (c === 59 /* ; */) {
            this.state = St.ExtNameStart;
            i++;
          } else this.fail('malformed chunk size');
          break;
        }
        case St.ExtNameStart:
          if (TCHAR[c] !== 1) this.fail('malformed chunk extension');
          this.state = St.ExtName;
          i = this.ext(i);
          break;
        case St.ExtName:
          if (TCHAR[c] === 1) i = this.ext(i);
          else if (c === 61 /* = */) {
            this.state = St.ExtValueStart;
            i = this.ext(i);
          } else i = this.extEnd(c, i);
          break;
        case St.ExtValueStart:
          if (c === 34 /* " */) {
            this.state = St.Quoted;
            i = this.ext(i);
          } else if (TCHAR[c] === 1) {
            this.state = St.ExtToken;
            i = this.ext(i);
          } else i = this.extEnd(c, i);
          break;
        case St.ExtToken:
          if (TCHAR[c] === 1) i = this.ext(i);
          else i = this.extEnd(c, i);
          break;
        case St.Quoted:
          if (c === 34) this.state = St.QuotedEnd;
          else if (!qdtext(c)) this.fail('malformed quoted chunk extension');
          i = this.ext(i);
          break;
        case St.QuotedEnd:
          i = this.extEnd(c, i);
          break;
        case St.SizeLf:
          if (c !== 10) this.fail('malformed chunk size line');
          i++;
          if (this.size === 0) {
            this.state = St.Trailers;
            this.trailerBuf = [];
            this.trailerLine = 0;
          } else {
            this.left = this.size;
            this.state = St.Data;
          }
          this.size = 0;
          this.digits = 0;
          this.sizeChars = 0;
          this.sawDigit = false;
          break;
        case St.Data: {
          const take = Math.min(this.left, n - i);
          data(i === 0 && take === n ? buf : buf.subarray(i, i + take));
          this.left -= take;
          i += take;
          if (this.left === 0) this.state = St.DataCr;
          break;
        }
        case St.DataCr:
          if (c !== 13) this.fail('chunk data longer than its size');
          this.state = St.DataLf;
          i++;
          break;
        case St.DataLf:
          if (c !== 10) this.fail('malformed chunk end');
          this.state = St.Size;
          i++;
          break;
        case St.Trailers: {
          const end = this.trailer(buf, i);
          if (end >= 0) return end;
          return -1;
        }
        case St.Done:
          return i;
      }
    }
    return this.state === St.Done ? i : -1;
  }

  /** One byte of a size line's extensions, counted against the bound. */
  private ext(i: number): number {
    if (++this.meta > MAX_EXTENSION_BYTES) this.fail('chunk extensions too long');
    return i + 1;
  }

  /** After an extension name or value: another extension, or the end of the line. */
  private extEnd(c: number, i: number): number {
    if (c === 59) this.state = St.ExtNameStart;
    else if (c === 13) this.state = St.SizeLf;
    else this.fail('malformed chunk extension');
    return this.ext(i);
  }

  /**
   * Trailer section bytes from `i`, each line parsed as a field as soon as
   * its CRLF arrives; an empty line ends the section. Returns the offset past
   * the section, or -1.
   */
  private trailer(buf: Buffer, i: number): number {
    const t = this.trailerBuf!;
    const n = buf.length;
    for (; i < n; i++) {
      const c = buf[i]!;
      if (c < 32 && c !== 9 && c !== 13 && c !== 10) this.fail('control character in trailers');
      const len = t.length;
      if (c === 10) {
        if (len === 0 || t[len - 1] !== 13) this.fail('bare LF in trailers');
        if (len - 1 === this.trailerLine) {
          // An empty line ends the section.
          this.state = St.Done;
          this.trailerBuf = undefined;
          this.trailers = this.trailerFields;
          return i + 1;
        }
        this.field(Buffer.from(t.slice(this.trailerLine, len - 1)).toString('latin1'));
        this.trailerLine = len + 1;
      } else if (len > 0 && t[len - 1] === 13) this.fail('bare CR in trailers');
      if (++this.trailerBytes > this.maxTrailerBytes) this.fail('trailers too large');
      t.push(c);
    }
    // A line still arriving: refused as soon as no ending can make it a field.
    if (t.length > this.trailerLine) {
      let line = Buffer.from(t.slice(this.trailerLine)).toString('latin1');
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      if (colon === 0 || (name.length > 0 && !TOKEN_RE.test(name))) this.fail('malformed trailer field');
      if (colon > 0 && isFraming(name)) this.fail(`${name.toLowerCase()} in trailers`);
    }
    return -1;
  }

  /** One complete trailer line. */
  private field(line: string): void {
    const f = parseFieldLines([line], 0, this.status);
    if (isFraming(f.raw[0]!)) this.fail(`${f.lower[0]} in trailers`);
    this.trailerFields.push(f.raw[0]!, f.raw[1]!);
  }
}

function isFraming(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === 'content-length' || lower === 'transfer-encoding';
}

// ---------- encoding ----------

/** The size line before `n` bytes of chunk data. */
export function chunkSizeLine(n: number): string {
  return `${n.toString(16)}\r\n`;
}

/** The last chunk and a trailer section: only fields a client may use in trailers, with valid names and values. */
export function lastChunk(trailers: Record<string, string | readonly string[]> | undefined, allowed: (name: string, value: string) => boolean): string {
  let s = '0\r\n';
  if (trailers) {
    for (const k in trailers) {
      const v = trailers[k]!;
      for (const one of typeof v === 'string' ? [v] : v) if (allowed(k, one)) s += `${k}: ${one}\r\n`;
    }
  }
  return `${s}\r\n`;
}
