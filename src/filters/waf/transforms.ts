// Transformations (`t:name`) on byte strings (one char per byte), with the
// semantics of ModSecurity v3 / Coraza. Each returns its input unchanged (the
// same string) when there is nothing to transform, so callers can cache by
// identity and skip work.

import { createHash } from 'node:crypto';
import type { Transform } from './types.js';

const NBSP = 0xa0;

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
function hexVal(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57;
}
function isOctal(c: number): boolean {
  return c >= 0x30 && c <= 0x37;
}
// C isspace() in the C locale: space, \t \n \v \f \r.
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isAlnum(c: number): boolean {
  return isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a);
}

// Builds a transformation's output as char codes in a typed array, made into
// one string at the end (Latin-1 bytes when every code is a byte: request
// values are byte strings), not one string per appended char.
// The array is one kept between calls (a typed array made per call costs
// more than the building: 12 against 6 µs for a 1.5 KiB value); an Out made
// while another is building gets its own.
class Out {
  private buf: Uint16Array;
  private n = 0;
  /** `capacity`: the expected length (most outputs are at most their input's); it grows past it. */
  constructor(capacity: number) {
    const kept = spare;
    if (kept !== undefined && kept.length >= capacity) {
      spare = undefined;
      this.buf = kept;
    } else this.buf = new Uint16Array(Math.max(16, capacity));
  }
  push(c: number): void {
    if (this.n === this.buf.length) this.grow(1);
    this.buf[this.n++] = c;
  }
  str(s: string): void {
    if (this.n + s.length > this.buf.length) this.grow(s.length);
    for (let i = 0; i < s.length; i++) this.buf[this.n++] = s.charCodeAt(i);
  }
  /** Drops the last code pushed. */
  pop(): void {
    this.n--;
  }
  done(): string {
    const s = codesToString(this.buf, this.n);
    if (spare === undefined || spare.length < this.buf.length) spare = this.buf;
    return s;
  }
  private grow(more: number): void {
    const b = new Uint16Array(Math.max(this.buf.length * 2, this.n + more));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
}

/** The array an Out builds in when no other Out is building (see Out). */
let spare: Uint16Array | undefined = new Uint16Array(4096);

/** Latin-1 bytes for codesToString, reused (it is only read up to what was written). */
let latin1 = Buffer.allocUnsafe(4096);

/** The string of the first n codes of buf. */
function codesToString(buf: Uint16Array, n: number): string {
  if (latin1.length < n) latin1 = Buffer.allocUnsafe(Math.max(n, latin1.length * 2));
  for (let i = 0; i < n; i++) {
    const c = buf[i]!;
    if (c > 0xff) return wideToString(buf, n);
    latin1[i] = c;
  }
  return latin1.toString('latin1', 0, n);
}

/** codesToString for codes above 0xff (String.fromCharCode takes a bounded argument list: 8,192 at a time). */
function wideToString(buf: Uint16Array, n: number): string {
  let out = '';
  for (let i = 0; i < n; i += 8192) out += String.fromCharCode.apply(null, buf.subarray(i, Math.min(n, i + 8192)) as unknown as number[]);
  return out;
}

// --- URL decoding ----------------------------------------------------------

/** %XX and `+`; invalid or truncated escapes are kept as they are. */
export function urlDecode(input: string): string {
  if (input.indexOf('%') < 0 && input.indexOf('+') < 0) return input;
  // Unchanged runs are copied as slices: bodies are long and mostly plain.
  const n = input.length;
  let out = '';
  let from = 0;
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c === 0x2b) {
      out += input.slice(from, i) + ' ';
      from = ++i;
    } else if (c === 0x25 && i + 2 < n && isHex(input.charCodeAt(i + 1)) && isHex(input.charCodeAt(i + 2))) {
      out += input.slice(from, i) + String.fromCharCode((hexVal(input.charCodeAt(i + 1)) << 4) | hexVal(input.charCodeAt(i + 2)));
      from = i += 3;
    } else i++;
  }
  return from === 0 ? input : out + input.slice(from);
}

// The best-fit table ModSecurity's recommended configuration loads for `%uXXXX`
// (`SecUnicodeMapFile unicode.mapping 20127`: code page 20127, US-ASCII, of
// the unicode.mapping file ModSecurity ships). Only the entries whose byte
// differs from the fallback below are listed (277 of its 370), as
// `codepoint:byte` in hex: accented Latin letters fold to their base letter,
// typographic quotes, dashes and spaces to their ASCII forms
// (U+2019 -> `'`, U+201C -> `"`, U+00AB -> `<`).
const UNICODE_MAP_20127 =
  'a0:20 a1:21 a2:63 a4:24 a5:59 a6:7c a9:43 aa:61 ab:3c ad:2d ae:52 b2:32 b3:33 b7:2e b8:2c b9:31 ba:6f bb:3e ' +
  'c0:41 c1:41 c2:41 c3:41 c4:41 c5:41 c6:41 c7:43 c8:45 c9:45 ca:45 cb:45 cc:49 cd:49 ce:49 cf:49 d0:44 d1:4e ' +
  'd2:4f d3:4f d4:4f d5:4f d6:4f d8:4f d9:55 da:55 db:55 dc:55 dd:59 e0:61 e1:61 e2:61 e3:61 e4:61 e5:61 e6:61 ' +
  'e7:63 e8:65 e9:65 ea:65 eb:65 ec:69 ed:69 ee:69 ef:69 f1:6e f2:6f f3:6f f4:6f f5:6f f6:6f f8:6f f9:75 fa:75 ' +
  'fb:75 fc:75 fd:79 ff:79 100:41 101:61 102:41 103:61 104:41 105:61 106:43 107:63 108:43 109:63 10a:43 10b:63 ' +
  '10c:43 10d:63 10e:44 10f:64 110:44 111:64 112:45 113:65 114:45 115:65 116:45 117:65 118:45 119:65 11a:45 11b:65 ' +
  '11c:47 11d:67 11e:47 11f:67 120:47 121:67 122:47 123:67 124:48 125:68 126:48 127:68 128:49 129:69 12a:49 12b:69 ' +
  '12c:49 12d:69 12e:49 12f:69 130:49 131:69 134:4a 135:6a 136:4b 137:6b 139:4c 13a:6c 13b:4c 13c:6c 13d:4c 13e:6c ' +
  '141:4c 142:6c 143:4e 144:6e 145:4e 146:6e 147:4e 148:6e 14c:4f 14d:6f 14e:4f 14f:6f 150:4f 151:6f 152:4f 153:6f ' +
  '154:52 155:72 156:52 157:72 158:52 159:72 15a:53 15b:73 15c:53 15d:73 15e:53 15f:73 160:53 161:73 162:54 163:74 ' +
  '164:54 165:74 166:54 167:74 168:55 169:75 16a:55 16b:75 16c:55 16d:75 16e:55 16f:75 170:55 171:75 172:55 173:75 ' +
  '174:57 175:77 176:59 177:79 178:59 179:5a 17b:5a 17c:7a 17d:5a 17e:7a 180:62 189:44 191:46 192:66 197:49 19a:6c ' +
  '19f:4f 1a0:4f 1a1:6f 1ab:74 1ae:54 1af:55 1b0:75 1b6:7a 1cd:41 1ce:61 1cf:49 1d0:69 1d1:4f 1d2:6f 1d3:55 1d4:75 ' +
  '1d5:55 1d6:75 1d7:55 1d8:75 1d9:55 1da:75 1db:55 1dc:75 1de:41 1df:61 1e4:47 1e5:67 1e6:47 1e7:67 1e8:4b 1e9:6b ' +
  '1ea:4f 1eb:6f 1ec:4f 1ed:6f 1f0:6a 261:67 2b9:27 2ba:22 2bc:27 2c4:5e 2c6:5e 2c8:27 2cb:60 2cd:5f 2dc:7e 300:60 ' +
  '302:5e 303:7e 30e:22 331:5f 332:5f 2000:20 2001:20 2002:20 2003:20 2004:20 2005:20 2006:20 2010:2d 2011:2d ' +
  '2013:2d 2014:2d 2018:27 2019:27 201a:2c 201c:22 201d:22 201e:22 2022:2e 2026:2e 2032:27 2035:60 2039:3c 203a:3e ' +
  '2122:54 ';

let unicodeMap: Int16Array | undefined;

/** Code point -> byte for `%uXXXX` (-1: not in the table). */
function unicodeMapTable(): Int16Array {
  if (unicodeMap === undefined) {
    const t = new Int16Array(0x10000).fill(-1);
    for (const pair of UNICODE_MAP_20127.trim().split(' ')) {
      const colon = pair.indexOf(':');
      t[parseInt(pair.slice(0, colon), 16)] = parseInt(pair.slice(colon + 1), 16);
    }
    unicodeMap = t;
  }
  return unicodeMap;
}

/**
 * urlDecode plus IIS `%uXXXX` as ModSecurity v3 decodes it with the
 * recommended configuration's best-fit table (UNICODE_MAP_20127 above): a
 * code point in the table becomes its byte; any other keeps its low byte,
 * except that full-width ASCII (U+FF01..U+FF5E) folds to ASCII by adding
 * 0x20 to the low byte.
 */
export function urlDecodeUni(input: string): string {
  if (input.indexOf('%') < 0 && input.indexOf('+') < 0) return input;
  // Unchanged runs (invalid escapes included) are copied as slices.
  const n = input.length;
  let out = '';
  let from = 0;
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c === 0x2b) {
      out += input.slice(from, i) + ' ';
      from = ++i;
      continue;
    }
    if (c === 0x25 && i + 1 < n) {
      const u = input.charCodeAt(i + 1);
      if (u === 0x75 || u === 0x55) {
        if (
          i + 5 < n &&
          isHex(input.charCodeAt(i + 2)) && isHex(input.charCodeAt(i + 3)) &&
          isHex(input.charCodeAt(i + 4)) && isHex(input.charCodeAt(i + 5))
        ) {
          let b = (hexVal(input.charCodeAt(i + 4)) << 4) | hexVal(input.charCodeAt(i + 5));
          const hi = (hexVal(input.charCodeAt(i + 2)) << 4) | hexVal(input.charCodeAt(i + 3));
          const mapped = unicodeMapTable()[(hi << 8) | b]!;
          if (mapped >= 0) b = mapped;
          else if (hi === 0xff && b > 0x00 && b < 0x5f) b += 0x20;
          out += input.slice(from, i) + String.fromCharCode(b);
          from = i += 6;
        } else {
          // Invalid or short %u: keep `%u` and go on after it.
          i += 2;
        }
        continue;
      }
      if (i + 2 < n && isHex(u) && isHex(input.charCodeAt(i + 2))) {
        out += input.slice(from, i) + String.fromCharCode((hexVal(u) << 4) | hexVal(input.charCodeAt(i + 2)));
        from = i += 3;
        continue;
      }
    }
    i++;
  }
  return from === 0 ? input : out + input.slice(from);
}

// --- case and whitespace -----------------------------------------------------

/** ASCII only (C locale tolower); bytes above 0x7f are left alone. */
export function lowercase(input: string): string {
  if (!/[A-Z]/.test(input)) return input;
  return input.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

export function uppercase(input: string): string {
  if (!/[a-z]/.test(input)) return input;
  return input.replace(/[a-z]+/g, (m) => m.toUpperCase());
}

// Whitespace for removeWhitespace/compressWhitespace: isspace() plus NBSP.
const WS_NBSP = /[\t\n\v\f\r \xa0]/;

export function removeWhitespace(input: string): string {
  if (!WS_NBSP.test(input)) return input;
  return input.replace(/[\t\n\v\f\r \xa0]+/g, '');
}

export function compressWhitespace(input: string): string {
  if (!/[\t\n\v\f\r\xa0]|  /.test(input)) return input;
  return input.replace(/[\t\n\v\f\r \xa0]+/g, ' ');
}

export function trimLeft(input: string): string {
  let i = 0;
  while (i < input.length && isSpace(input.charCodeAt(i))) i++;
  return i === 0 ? input : input.slice(i);
}

export function trimRight(input: string): string {
  let j = input.length;
  while (j > 0 && isSpace(input.charCodeAt(j - 1))) j--;
  return j === input.length ? input : input.slice(0, j);
}

export function trim(input: string): string {
  return trimRight(trimLeft(input));
}

export function removeNulls(input: string): string {
  return input.indexOf('\0') < 0 ? input : input.replace(/\0+/g, '');
}

export function replaceNulls(input: string): string {
  return input.indexOf('\0') < 0 ? input : input.replace(/\0/g, ' ');
}

// --- JavaScript / ANSI C / CSS escapes ----------------------------------------

// Reads up to 3 octal digits at i (the first is known to be octal).
function readOctal(input: string, i: number): { value: number; len: number } {
  let len = 1;
  while (len < 3 && i + len < input.length && isOctal(input.charCodeAt(i + len))) len++;
  let value = 0;
  for (let k = 0; k < len; k++) value = value * 8 + (input.charCodeAt(i + k) - 0x30);
  return { value, len };
}

const SIMPLE_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/**
 * JavaScript escapes: \uHHHH (low byte; full-width ASCII folded), \xHH,
 * \OOO (at most one byte: a third digit is not taken when the first is 4-7),
 * \a \b \f \n \r \t \v, and `\` before any other char is dropped.
 */
export function jsDecode(input: string): string {
  if (input.indexOf('\\') < 0) return input;
  const n = input.length;
  const out = new Out(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c !== 0x5c) {
      out.push(c);
      i++;
      continue;
    }
    if (i + 1 >= n) {
      // A lone trailing backslash is kept.
      out.push(c);
      i++;
      continue;
    }
    const d = input.charCodeAt(i + 1);
    if (
      d === 0x75 && i + 5 < n &&
      isHex(input.charCodeAt(i + 2)) && isHex(input.charCodeAt(i + 3)) &&
      isHex(input.charCodeAt(i + 4)) && isHex(input.charCodeAt(i + 5))
    ) {
      let b = (hexVal(input.charCodeAt(i + 4)) << 4) | hexVal(input.charCodeAt(i + 5));
      const hi = (hexVal(input.charCodeAt(i + 2)) << 4) | hexVal(input.charCodeAt(i + 3));
      if (hi === 0xff && b > 0x00 && b < 0x5f) b += 0x20;
      out.push(b);
      i += 6;
    } else if (d === 0x78 && i + 3 < n && isHex(input.charCodeAt(i + 2)) && isHex(input.charCodeAt(i + 3))) {
      out.push((hexVal(input.charCodeAt(i + 2)) << 4) | hexVal(input.charCodeAt(i + 3)));
      i += 4;
    } else if (isOctal(d)) {
      let { value, len } = readOctal(input, i + 1);
      if (len === 3 && d > 0x33) {
        len = 2;
        value = (d - 0x30) * 8 + (input.charCodeAt(i + 2) - 0x30);
      }
      out.push(value);
      i += 1 + len;
    } else {
      const simple = SIMPLE_ESCAPES[String.fromCharCode(d)];
      out.push(simple ?? d);
      i += 2;
    }
  }
  return out.done();
}

/**
 * ANSI C escapes: \a \b \f \n \r \t \v \\ \? \' \", \xHH (exactly two hex
 * digits), \OOO (1-3 octal digits, low byte). For an unknown escape the
 * backslash is dropped and the char kept.
 */
export function escapeSeqDecode(input: string): string {
  if (input.indexOf('\\') < 0) return input;
  const n = input.length;
  const out = new Out(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c !== 0x5c || i + 1 >= n) {
      out.push(c);
      i++;
      continue;
    }
    const d = input.charCodeAt(i + 1);
    const ch = String.fromCharCode(d);
    const simple = SIMPLE_ESCAPES[ch];
    if (simple !== undefined) {
      out.push(simple);
      i += 2;
    } else if (ch === '\\' || ch === '?' || ch === "'" || ch === '"') {
      out.push(d);
      i += 2;
    } else if ((d === 0x78 || d === 0x58) && i + 3 < n && isHex(input.charCodeAt(i + 2)) && isHex(input.charCodeAt(i + 3))) {
      out.push((hexVal(input.charCodeAt(i + 2)) << 4) | hexVal(input.charCodeAt(i + 3)));
      i += 4;
    } else if (isOctal(d)) {
      const { value, len } = readOctal(input, i + 1);
      out.push(value & 0xff);
      i += 1 + len;
    } else {
      out.push(d);
      i += 2;
    }
  }
  return out.done();
}

/**
 * CSS escapes (CSS 2): `\` + 1-6 hex digits gives one byte from the last two
 * digits (full-width ASCII U+FF01..U+FF5E folded to ASCII), and one
 * whitespace after it is consumed; `\` + newline is a line continuation;
 * `\` + any other char is that char; a trailing `\` is dropped.
 */
export function cssDecode(input: string): string {
  if (input.indexOf('\\') < 0) return input;
  const n = input.length;
  const out = new Out(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c !== 0x5c) {
      out.push(c);
      i++;
      continue;
    }
    if (i + 1 >= n) {
      i++;
      continue;
    }
    i++; // the backslash is not kept
    let j = 0;
    while (j < 6 && i + j < n && isHex(input.charCodeAt(i + j))) j++;
    if (j > 0) {
      const h = (k: number) => hexVal(input.charCodeAt(i + k));
      let b = j === 1 ? h(0) : (h(j - 2) << 4) | h(j - 1);
      // Full-width check only when the value can be U+FFxx: 4 digits, or
      // 5-6 digits with leading zeros.
      const fullCheck = j === 4 || (j === 5 && input[i] === '0') || (j === 6 && input[i] === '0' && input[i + 1] === '0');
      if (fullCheck && b > 0x00 && b < 0x5f && (input[i + j - 3] === 'f' || input[i + j - 3] === 'F') && (input[i + j - 4] === 'f' || input[i + j - 4] === 'F')) {
        b += 0x20;
      }
      out.push(b);
      if (i + j < n && isSpace(input.charCodeAt(i + j))) j++;
      i += j;
    } else if (input.charCodeAt(i) === 0x0a) {
      i++;
    } else {
      out.push(input.charCodeAt(i));
      i++;
    }
  }
  return out.done();
}

// --- HTML entities -------------------------------------------------------------

// strtol() then a cast to a byte: values past LONG_MAX saturate to 0xff.
function entityByte(digits: string, radix: number): number {
  const v = BigInt(radix === 16 ? '0x' + digits : digits);
  if (v > 0x7fffffffffffffffn) return 0xff;
  return Number(v & 0xffn);
}

const NAMED_ENTITIES: Record<string, number> = { quot: 0x22, amp: 0x26, lt: 0x3c, gt: 0x3e, nbsp: NBSP };

/**
 * &#DDD; &#xHH; (semicolon optional, value cut to one byte) and the named
 * entities quot, amp, lt, gt, nbsp (case-insensitive, semicolon optional).
 * Anything else is copied as it is.
 */
export function htmlEntityDecode(input: string): string {
  if (input.indexOf('&') < 0) return input;
  const n = input.length;
  const out = new Out(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c !== 0x26 || i + 1 >= n) {
      out.push(c);
      i++;
      continue;
    }
    let j = i + 1;
    if (input.charCodeAt(j) === 0x23) {
      // Numeric entity.
      if (j + 1 >= n) { out.str('&#'); i += 2; continue; }
      j++;
      const x = input.charCodeAt(j);
      if (x === 0x78 || x === 0x58) {
        if (j + 1 >= n) { out.str(input.slice(i, i + 3)); i += 3; continue; }
        j++;
        const k = j;
        while (j < n && isHex(input.charCodeAt(j))) j++;
        if (j === k) { out.str(input.slice(i, i + 3)); i += 3; continue; }
        out.push(entityByte(input.slice(k, j), 16));
      } else {
        const k = j;
        while (j < n && isDigit(input.charCodeAt(j))) j++;
        if (j === k) { out.str('&#'); i += 2; continue; }
        out.push(entityByte(input.slice(k, j), 10));
      }
      i = j < n && input.charCodeAt(j) === 0x3b ? j + 1 : j;
      continue;
    }
    const k = j;
    while (j < n && isAlnum(input.charCodeAt(j))) j++;
    if (j === k) { out.push(c); i++; continue; }
    const value = NAMED_ENTITIES[input.slice(k, j).toLowerCase()];
    if (value === undefined) {
      // Not decoded: copy `&name` and go on after it.
      out.str(input.slice(i, j));
      i = j;
      continue;
    }
    out.push(value);
    i = j < n && input.charCodeAt(j) === 0x3b ? j + 1 : j;
  }
  return out.done();
}

// --- UTF-8 to %uXXXX ------------------------------------------------------------

/**
 * Each UTF-8 sequence (a lead byte C0-DF, E0-EF or F0-F7 followed by the
 * right number of continuation bytes) becomes `%u` + the code point in
 * lower-case hex, at least 4 digits. Overlong forms are decoded too
 * (`\xc0\xaf` gives `%u002f`), so they cannot hide a char. ASCII and bytes
 * that do not start a complete sequence are kept as they are.
 */
export function utf8toUnicode(input: string): string {
  if (!/[\x80-\xff]/.test(input)) return input;
  const n = input.length;
  const out = new Out(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    let len = 0;
    let cp = 0;
    if ((c & 0xe0) === 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) === 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) === 0xf0) { len = 4; cp = c & 0x07; }
    if (len && i + len <= n) {
      let ok = true;
      for (let k = 1; k < len; k++) {
        const b = input.charCodeAt(i + k);
        if ((b & 0xc0) !== 0x80) { ok = false; break; }
        cp = (cp << 6) | (b & 0x3f);
      }
      if (ok) {
        out.str('%u' + cp.toString(16).padStart(4, '0'));
        i += len;
        continue;
      }
    }
    out.push(c);
    i++;
  }
  return out.done();
}

// --- comments -----------------------------------------------------------------

/** Each C comment `/* ... *\/` (an unterminated one too) becomes one space. */
export function replaceComments(input: string): string {
  if (input.indexOf('/*') < 0) return input;
  let out = '';
  let i = 0;
  for (;;) {
    const start = input.indexOf('/*', i);
    if (start < 0) return out + input.slice(i);
    out += input.slice(i, start) + ' ';
    const end = input.indexOf('*/', start + 2);
    if (end < 0) return out;
    i = end + 2;
  }
}

/**
 * Removes the comment markers `/*`, `*\/`, `<!--`, `-->`, `--` and `#`
 * (not the text between), scanning left to right once: a marker formed by
 * joining the chars around a removed one is removed only if it starts at or
 * after the scan position, as with an in-place erase.
 */
export function removeCommentsChar(input: string): string {
  if (!/\/\*|\*\/|--|#|<!--/.test(input)) return input;
  const n = input.length;
  let out = '';
  let i = 0;
  while (i < n) {
    const c = input[i];
    const next = input[i + 1];
    if ((c === '/' && next === '*') || (c === '*' && next === '/')) {
      i += 2;
    } else if (c === '<' && next === '!' && input[i + 2] === '-' && input[i + 3] === '-') {
      i += 4;
    } else if (c === '-' && next === '-') {
      i += input[i + 2] === '>' ? 3 : 2;
    } else if (c === '#') {
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

// --- command lines ---------------------------------------------------------------

/**
 * Windows/Unix command-line normalisation: drops `\ " ' ^`, turns runs of
 * space, tab, CR, LF, `,` and `;` into one space, drops a space before `/`
 * or `(`, and lower-cases ASCII.
 */
export function cmdLine(input: string): string {
  const n = input.length;
  // The longest prefix the steps below copy as is (the usual case is all of
  // it: nothing to build). Up to it, `space` is whether the last char was ' '.
  let start = 0;
  for (; start < n; start++) {
    const code = input.charCodeAt(start);
    if (code >= 0x41 && code <= 0x5a) break;
    if (code === 0x22 || code === 0x27 || code === 0x5c || code === 0x5e) break;
    if (code === 0x2c || code === 0x3b || code === 0x09 || code === 0x0d || code === 0x0a) break;
    if ((code === 0x20 || code === 0x2f || code === 0x28) && start > 0 && input.charCodeAt(start - 1) === 0x20) break;
  }
  if (start === n) return input;
  const out = new Out(n);
  for (let i = 0; i < start; i++) out.push(input.charCodeAt(i));
  let space = start > 0 && input.charCodeAt(start - 1) === 0x20;
  for (let i = start; i < n; i++) {
    const code = input.charCodeAt(i);
    switch (code) {
      case 0x22: // "
      case 0x27: // '
      case 0x5c: // \
      case 0x5e: // ^
        break;
      case 0x20:
      case 0x2c: // ,
      case 0x3b: // ;
      case 0x09:
      case 0x0d:
      case 0x0a:
        if (!space) {
          out.push(0x20);
          space = true;
        }
        break;
      case 0x2f: // /
      case 0x28: // (
        if (space) out.pop();
        space = false;
        out.push(code);
        break;
      default:
        out.push(code >= 0x41 && code <= 0x5a ? code + 32 : code);
        space = false;
    }
  }
  return out.done();
}

// --- paths -----------------------------------------------------------------------

/**
 * Removes `.` segments, resolves `..` against the previous segment (at the
 * root of an absolute path it is dropped; a relative path keeps leading
 * `..`), and collapses repeated slashes; a trailing slash is kept.
 */
export function normalizePath(input: string): string {
  if (input === '') return input;
  if (input.indexOf('//') < 0 && !/(^|\/)\.\.?(\/|$)/.test(input)) return input;
  const rooted = input[0] === '/';
  const trailing = input[input.length - 1] === '/';
  const stack: string[] = [];
  for (const seg of input.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (stack.length && stack[stack.length - 1] !== '..') stack.pop();
      else if (!rooted) stack.push('..');
      continue;
    }
    stack.push(seg);
  }
  let out = (rooted ? '/' : '') + stack.join('/');
  if (trailing && stack.length) out += '/';
  return out === input ? input : out;
}

/** normalizePath after turning every backslash into a slash. */
export function normalizePathWin(input: string): string {
  if (input.indexOf('\\') < 0) return normalizePath(input);
  return normalizePath(input.replace(/\\/g, '/'));
}

// --- base64, hex, hashes, length ------------------------------------------------------

const B64 = (() => {
  const t = new Int16Array(256).fill(-1);
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let k = 0; k < abc.length; k++) t[abc.charCodeAt(k)] = k;
  return t;
})();

function b64Bytes(sextets: number[]): string {
  const out = new Out(sextets.length);
  let k = 0;
  for (; k + 4 <= sextets.length; k += 4) {
    const v = (sextets[k] << 18) | (sextets[k + 1] << 12) | (sextets[k + 2] << 6) | sextets[k + 3];
    out.push((v >> 16) & 0xff);
    out.push((v >> 8) & 0xff);
    out.push(v & 0xff);
  }
  const rest = sextets.length - k;
  if (rest >= 2) {
    const v = (sextets[k] << 18) | (sextets[k + 1] << 12) | ((sextets[k + 2] ?? 0) << 6);
    out.push((v >> 16) & 0xff);
    if (rest === 3) out.push((v >> 8) & 0xff);
  }
  return out.done();
}

/**
 * Decodes base64 up to the first char outside the alphabet (`=` padding
 * included), as APR and Coraza do; a partial last group yields the bytes it
 * fully covers.
 */
export function base64Decode(input: string): string {
  const sextets: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const v = B64[input.charCodeAt(i) & 0xff];
    if (v < 0 || input.charCodeAt(i) > 0xff) break;
    sextets.push(v);
  }
  return b64Bytes(sextets);
}

/** Forgiving base64: chars outside the alphabet are skipped, decoding stops at `=`. */
export function base64DecodeExt(input: string): string {
  const sextets: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const code = input.charCodeAt(i);
    if (code === 0x3d) break;
    const v = code > 0xff ? -1 : B64[code];
    if (v >= 0) sextets.push(v);
  }
  return b64Bytes(sextets);
}

export function hexEncode(input: string): string {
  return Buffer.from(input, 'latin1').toString('hex');
}

/** Pairs of hex digits to bytes; stops at the first pair that is not hex. */
export function hexDecode(input: string): string {
  const out = new Out(input.length);
  let i = 0;
  for (; i + 1 < input.length; i += 2) {
    const a = input.charCodeAt(i);
    const b = input.charCodeAt(i + 1);
    if (!isHex(a) || !isHex(b)) break;
    out.push((hexVal(a) << 4) | hexVal(b));
  }
  return out.done();
}

/** Each `0x` followed by pairs of hex digits becomes those bytes. */
export function sqlHexDecode(input: string): string {
  if (!/0[xX][0-9a-fA-F]{2}/.test(input)) return input;
  const n = input.length;
  const out = new Out(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (
      c === 0x30 && i + 3 < n &&
      (input.charCodeAt(i + 1) | 0x20) === 0x78 &&
      isHex(input.charCodeAt(i + 2)) && isHex(input.charCodeAt(i + 3))
    ) {
      i += 2;
      while (i + 1 < n && isHex(input.charCodeAt(i)) && isHex(input.charCodeAt(i + 1))) {
        out.push((hexVal(input.charCodeAt(i)) << 4) | hexVal(input.charCodeAt(i + 1)));
        i += 2;
      }
      continue;
    }
    out.push(c);
    i++;
  }
  return out.done();
}

function digest(alg: 'sha1' | 'md5'): Transform {
  // The raw digest bytes as a byte string (ModSecurity's binary result).
  return (input) => createHash(alg).update(Buffer.from(input, 'latin1')).digest().toString('latin1');
}

export function length(input: string): string {
  return String(input.length);
}

export const TRANSFORMS: ReadonlyMap<string, Transform> = new Map<string, Transform>([
  ['none', (s) => s],
  ['urldecode', urlDecode],
  ['urldecodeuni', urlDecodeUni],
  ['lowercase', lowercase],
  ['uppercase', uppercase],
  ['jsdecode', jsDecode],
  ['htmlentitydecode', htmlEntityDecode],
  ['utf8tounicode', utf8toUnicode],
  ['removenulls', removeNulls],
  ['replacenulls', replaceNulls],
  ['cssdecode', cssDecode],
  ['cmdline', cmdLine],
  ['removewhitespace', removeWhitespace],
  ['compresswhitespace', compressWhitespace],
  ['replacecomments', replaceComments],
  ['removecommentschar', removeCommentsChar],
  ['normalizepath', normalizePath],
  ['normalisepath', normalizePath],
  ['normalizepathwin', normalizePathWin],
  ['normalisepathwin', normalizePathWin],
  ['escapeseqdecode', escapeSeqDecode],
  ['base64decode', base64Decode],
  ['base64decodeext', base64DecodeExt],
  ['hexencode', hexEncode],
  ['hexdecode', hexDecode],
  ['sqlhexdecode', sqlHexDecode],
  ['sha1', digest('sha1')],
  ['md5', digest('md5')],
  ['length', length],
  ['trim', trim],
  ['trimleft', trimLeft],
  ['trimright', trimRight],
]);

// --- what leaves a value alone ---------------------------------------------------

/**
 * When a transformation cannot change a value beyond ASCII case: `bytes`
 * (a 256-bit set, 8 words as prefilter.ts bytePresence lays them out) it
 * needs one of, and `spacePair` when a space followed by a space, `/` or `(`
 * is enough too. A value with none of them comes out equal to what went in,
 * ignoring ASCII case (the engine's prefilters ignore it as well), so the
 * engine need not transform it to know what its prefilters will say.
 * `all`: no such promise (decoders that rewrite everything, digests, length).
 */
export type TransformTrigger = { bytes: Uint32Array; spacePair: boolean } | 'all';

function triggerOf(chars: string, spacePair = false, extra?: (set: (c: number) => void) => void): TransformTrigger {
  const bytes = new Uint32Array(8);
  const set = (c: number): void => {
    bytes[c >>> 5]! |= 1 << (c & 31);
  };
  for (let i = 0; i < chars.length; i++) set(chars.charCodeAt(i));
  extra?.(set);
  return { bytes, spacePair };
}

const NO_TRIGGER = triggerOf('');
const WS = '\t\n\v\f\r \xa0';
const HIGH_BYTES = (set: (c: number) => void): void => {
  for (let c = 0x80; c <= 0xff; c++) set(c);
};

const TRIGGERS = new Map<Transform, TransformTrigger>([
  [TRANSFORMS.get('none')!, NO_TRIGGER],
  [urlDecode, triggerOf('%+')],
  [urlDecodeUni, triggerOf('%+')],
  [lowercase, NO_TRIGGER],
  [uppercase, NO_TRIGGER],
  [jsDecode, triggerOf('\\')],
  [cssDecode, triggerOf('\\')],
  [escapeSeqDecode, triggerOf('\\')],
  [htmlEntityDecode, triggerOf('&')],
  [utf8toUnicode, triggerOf('', false, HIGH_BYTES)],
  [removeNulls, triggerOf('\0')],
  [replaceNulls, triggerOf('\0')],
  // Changes only `"'\^,;`, tab, CR, LF, and a space before a space, `/` or `(` (and case).
  [cmdLine, triggerOf('"\'\\^,;\t\r\n', true)],
  [removeWhitespace, triggerOf(WS)],
  // Changes a whitespace char other than a space, or a space before another (a pair is the weaker test).
  [compressWhitespace, triggerOf('\t\n\v\f\r\xa0', true)],
  [trim, triggerOf(WS)],
  [trimLeft, triggerOf(WS)],
  [trimRight, triggerOf(WS)],
  // A comment needs `/*`, so a `*`.
  [replaceComments, triggerOf('*')],
  [removeCommentsChar, triggerOf('*-#')],
  // `//`, or a `.`/`..` segment.
  [normalizePath, triggerOf('/.')],
  [normalizePathWin, triggerOf('/.\\')],
]);

/** What a transformation needs to change a value (see TransformTrigger); `all` for one not listed. */
export function transformTrigger(t: Transform): TransformTrigger {
  return TRIGGERS.get(t) ?? 'all';
}

/** The trigger of a pipeline: any of its steps' triggers (a step's output has no new trigger bytes when it changed nothing). */
export function pipelineTrigger(ts: readonly Transform[]): TransformTrigger {
  const bytes = new Uint32Array(8);
  let spacePair = false;
  for (const t of ts) {
    const g = transformTrigger(t);
    if (g === 'all') return 'all';
    for (let k = 0; k < 8; k++) bytes[k]! |= g.bytes[k]!;
    spacePair ||= g.spacePair;
  }
  return { bytes, spacePair };
}

/** Whether `s` has a space followed by a space, `/` or `(`. */
export function hasSpacePair(s: string): boolean {
  let i = s.indexOf(' ');
  while (i >= 0 && i + 1 < s.length) {
    const c = s.charCodeAt(i + 1);
    if (c === 0x20 || c === 0x2f || c === 0x28) return true;
    i = s.indexOf(' ', i + 1);
  }
  return false;
}
