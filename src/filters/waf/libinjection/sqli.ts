// `@detectSQLi`: libinjection's SQL injection detector (libinjection 3.9.2,
// BSD-3-Clause, see ./COPYING), written for byte strings (one char per byte).
//
// The input is read as a SQL fragment three ways: as-is, as if a single
// quote came before it, and as if a double quote did. Each reading is cut into
// SQL tokens, the token stream is folded (merging, dropping and re-typing
// tokens) down to at most five, and the token types, one char each, make a
// fingerprint such as "s&sos". A reading whose fingerprint is on the list of
// known injection shapes, and survives a few false-positive checks, means
// SQLi. The verdict and fingerprint match the C library's byte for byte,
// quirks included (NUL is accepted inside digit spans such as "$1" or
// x'..', bytes >= 0x80 compare as C's signed chars), because CRS's
// expectations were made with it.
//
// All state lives in module-level tokens reused by every call (calls do not
// nest: nothing here is async); a token points into the input instead of
// copying its text, so a call allocates only its result and merged phrases.
import { SQLI_FINGERPRINTS, SQL_WORDS } from './sqli-data.js';

export interface SqliResult {
  isSqli: boolean;
  /** The fingerprint that matched ('' when the input is not SQLi). */
  fingerprint: string;
}

// Token types: the char each one shows as in a fingerprint.
const T_NONE = 0;
const T_KEYWORD = 0x6b; // k
const T_UNION = 0x55; // U
const T_GROUP = 0x42; // B
const T_EXPRESSION = 0x45; // E
const T_SQLTYPE = 0x74; // t
const T_FUNCTION = 0x66; // f
const T_BAREWORD = 0x6e; // n
const T_NUMBER = 0x31; // 1
const T_VARIABLE = 0x76; // v
const T_STRING = 0x73; // s
const T_OPERATOR = 0x6f; // o
const T_LOGIC_OPERATOR = 0x26; // &
const T_COMMENT = 0x63; // c
const T_COLLATE = 0x41; // A
const T_LEFTPARENS = 0x28; // (
const T_RIGHTPARENS = 0x29; // )
const T_LEFTBRACE = 0x7b; // {
const T_RIGHTBRACE = 0x7d; // }
const T_DOT = 0x2e; // .
const T_COMMA = 0x2c; // ,
const T_COLON = 0x3a; // :
const T_SEMICOLON = 0x3b; // ;
const T_TSQL = 0x54; // T
const T_UNKNOWN = 0x3f; // ?
const T_EVIL = 0x58; // X
const T_BACKSLASH = 0x5c; // \

const CH_SINGLE = 0x27;
const CH_DOUBLE = 0x22;
const CH_TICK = 0x60;

// Readings ("contexts") and dialects.
const F_QUOTE_NONE = 1;
const F_QUOTE_SINGLE = 2;
const F_QUOTE_DOUBLE = 4;
const F_SQL_ANSI = 8;
const F_SQL_MYSQL = 16;

const MAX_TOKENS = 5;
/** Token text is kept to 31 bytes, as in the C token's 32-byte buffer. */
const VAL_MAX = 31;
const TOKEN_SIZE = 32;

// ---------------------------------------------------------------------------
// Keyword table: open addressing over the upper-cased bytes, so a lookup
// needs no substring. Keys with a NUL or a byte >= 0x80 never match (the C
// compare stops on them).

const WORD_SLOTS = 4096;
const WORD_MASK = WORD_SLOTS - 1;
const wordKeys: string[] = new Array<string>(WORD_SLOTS).fill('');
const wordTypes = new Uint8Array(WORD_SLOTS);
let maxWordLen = 0;

function hashWord(w: string): number {
  let h = 0;
  for (let i = 0; i < w.length; i++) h = (Math.imul(h, 31) + w.charCodeAt(i)) | 0;
  return h;
}

for (const [w, t] of SQL_WORDS) {
  let slot = hashWord(w) & WORD_MASK;
  while (wordKeys[slot] !== '') slot = (slot + 1) & WORD_MASK;
  wordKeys[slot] = w;
  wordTypes[slot] = t.charCodeAt(0);
  if (w.length > maxWordLen) maxWordLen = w.length;
}

// Fingerprint list: a fingerprint is a number, base 128, of its upper-cased
// type chars (at most 5, so below 2^35; the leading char is never 0, so
// lengths cannot collide), kept in an open-addressing table of doubles.
const FP_SLOTS = 32768;
const FP_MASK = FP_SLOTS - 1;
const fpKeys = new Float64Array(FP_SLOTS);

function fpSlot(key: number): number {
  return (Math.imul(key % 0x40000000, 0x9e3779b1) ^ Math.floor(key / 0x40000000)) >>> 17;
}

for (const f of SQLI_FINGERPRINTS) {
  // Stored as "0" + the upper-cased types.
  let key = 0;
  for (let i = 1; i < f.length; i++) key = key * 128 + f.charCodeAt(i);
  let slot = fpSlot(key) & FP_MASK;
  while (fpKeys[slot] !== 0) slot = (slot + 1) & FP_MASK;
  fpKeys[slot] = key;
}

function fingerprintListed(key: number): boolean {
  let slot = fpSlot(key) & FP_MASK;
  for (;;) {
    const k = fpKeys[slot]!;
    if (k === key) return true;
    if (k === 0) return false;
    slot = (slot + 1) & FP_MASK;
  }
}

// Phrases ("UNION ALL", "LOCK IN SHARE MODE") by their first char and the
// offset of each of their spaces (a phrase grows a word at a time), so most
// word pairs are turned down without hashing them.
const PHRASE_HEADS = new Uint8Array(128 * 32);
for (const [w] of SQL_WORDS) {
  for (let sp = w.indexOf(' '); sp > 0; sp = w.indexOf(' ', sp + 1)) PHRASE_HEADS[w.charCodeAt(0) * 32 + sp] = 1;
}

/** Type of str[start, start+len) as a SQL word, case-insensitive (ASCII); 0 if none. */
function lookupWord(str: string, start: number, len: number): number {
  if (len === 0 || len > maxWordLen) return 0;
  let h = 0;
  for (let i = start, end = start + len; i < end; i++) {
    let c = str.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    else if (c === 0 || c > 0x7f) return 0;
    h = (Math.imul(h, 31) + c) | 0;
  }
  let slot = h & WORD_MASK;
  for (;;) {
    const k = wordKeys[slot]!;
    if (k === '') return 0;
    if (k.length === len) {
      let i = 0;
      for (; i < len; i++) {
        let c = str.charCodeAt(start + i);
        if (c >= 0x61 && c <= 0x7a) c -= 0x20;
        if (c !== k.charCodeAt(i)) break;
      }
      if (i === len) return wordTypes[slot]!;
    }
    slot = (slot + 1) & WORD_MASK;
  }
}

/** Type of the phrase "<a> <b>" made of two tokens' texts; 0 if none. */
function lookupPhrase(a: Token, b: Token): number {
  const len = a.len + 1 + b.len;
  if (len > maxWordLen) return 0;
  let c0 = a.src.charCodeAt(a.off);
  if (c0 >= 0x61 && c0 <= 0x7a) c0 -= 0x20;
  if (!(c0 < 128 && PHRASE_HEADS[c0 * 32 + a.len] === 1)) return 0;
  let h = 0;
  for (let i = 0; i < len; i++) {
    let c = i < a.len ? a.src.charCodeAt(a.off + i) : i === a.len ? 0x20 : b.src.charCodeAt(b.off + i - a.len - 1);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    else if (c === 0 || c > 0x7f) return 0;
    h = (Math.imul(h, 31) + c) | 0;
  }
  let slot = h & WORD_MASK;
  for (;;) {
    const k = wordKeys[slot]!;
    if (k === '') return 0;
    if (k.length === len) {
      let i = 0;
      for (; i < len; i++) {
        let c = i < a.len ? a.src.charCodeAt(a.off + i) : i === a.len ? 0x20 : b.src.charCodeAt(b.off + i - a.len - 1);
        if (c >= 0x61 && c <= 0x7a) c -= 0x20;
        if (c !== k.charCodeAt(i)) break;
      }
      if (i === len) return wordTypes[slot]!;
    }
    slot = (slot + 1) & WORD_MASK;
  }
}

/** True when the token text is exactly `upper`, compared case-insensitively. */
function valIs(t: Token, upper: string): boolean {
  if (t.len !== upper.length) return false;
  for (let i = 0; i < upper.length; i++) {
    let c = valAt(t, i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== upper.charCodeAt(i)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Char classes.

/** Bytes that end a word: " []{}<>:\?=@!#~+-*\/&|^%(),';\t\n\v\f\r\"", 0xA0 and NUL. */
const WORD_END = new Uint8Array(256);
for (const c of ' []{}<>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r"\xa0\0') WORD_END[c.charCodeAt(0)] = 1;
/** Bytes that end a variable name after '@' (no brackets, braces or 0xA0; adds '`'). */
const VAR_END = new Uint8Array(256);
for (const c of ' <>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r`"\0') VAR_END[c.charCodeAt(0)] = 1;
/** White space as the tokenizer sees it after "--": includes 0xA0 and NUL. */
const WHITE = new Uint8Array(256);
for (const c of ' \t\n\v\f\r\xa0\0') WHITE[c.charCodeAt(0)] = 1;

// Spans of accepted bytes; NUL is always accepted (C's strchr finds the
// terminator), a quirk that matters for inputs with NUL bytes.
function acceptSet(chars: string): Uint8Array {
  const t = new Uint8Array(256);
  for (const c of chars) t[c.charCodeAt(0)] = 1;
  t[0] = 1;
  return t;
}
const MONEY_DIGITS = acceptSet('0123456789.,');
const LETTERS = acceptSet('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ');
const HEX_DIGITS = acceptSet('0123456789ABCDEFabcdef');
const BIN_DIGITS = acceptSet('01');

// What each leading byte starts.
const P_WHITE = 0;
const P_OPERATOR1 = 1;
const P_OPERATOR2 = 2;
const P_STRING = 3;
const P_HASH = 4;
const P_MONEY = 5;
const P_CHAR = 6;
const P_DASH = 7;
const P_NUMBER = 8;
const P_SLASH = 9;
const P_OTHER = 10;
const P_VAR = 11;
const P_WORD = 12;
const P_BSTRING = 13;
const P_ESTRING = 14;
const P_NQSTRING = 15;
const P_QSTRING = 16;
const P_USTRING = 17;
const P_XSTRING = 18;
const P_BWORD = 19;
const P_BACKSLASH = 20;
const P_TICK = 21;

const DISPATCH = new Uint8Array(256).fill(P_WORD);
for (let c = 0; c <= 32; c++) DISPATCH[c] = P_WHITE;
DISPATCH[127] = P_WHITE;
DISPATCH[160] = P_WHITE;
for (let c = 0x30; c <= 0x39; c++) DISPATCH[c] = P_NUMBER;
const punct: [string, number][] = [
  ['!', P_OPERATOR2], ['"', P_STRING], ['#', P_HASH], ['$', P_MONEY], ['%', P_OPERATOR1], ['&', P_OPERATOR2],
  ["'", P_STRING], ['(', P_CHAR], [')', P_CHAR], ['*', P_OPERATOR2], ['+', P_OPERATOR1], [',', P_CHAR],
  ['-', P_DASH], ['.', P_NUMBER], ['/', P_SLASH], [':', P_OPERATOR2], [';', P_CHAR], ['<', P_OPERATOR2],
  ['=', P_OPERATOR2], ['>', P_OPERATOR2], ['?', P_OTHER], ['@', P_VAR], ['[', P_BWORD], ['\\', P_BACKSLASH],
  [']', P_OTHER], ['^', P_OPERATOR1], ['`', P_TICK], ['{', P_CHAR], ['|', P_OPERATOR2], ['}', P_CHAR],
  ['~', P_OPERATOR1], ['B', P_BSTRING], ['b', P_BSTRING], ['E', P_ESTRING], ['e', P_ESTRING],
  ['N', P_NQSTRING], ['n', P_NQSTRING], ['Q', P_QSTRING], ['q', P_QSTRING], ['U', P_USTRING],
  ['u', P_USTRING], ['X', P_XSTRING], ['x', P_XSTRING],
];
for (const [c, p] of punct) DISPATCH[c.charCodeAt(0)] = p;

// ---------------------------------------------------------------------------
// Tokens and the state of one reading.

class Token {
  type = T_NONE;
  pos = 0;
  len = 0;
  /** Opening and closing quote of a string token (0: none, as for a string the input starts inside). */
  strOpen = 0;
  strClose = 0;
  /**
   * The token's text is src[off, off + min(len, 31)): the input itself, or a
   * merged phrase ("UNION ALL") of its own. Read it with valAt.
   */
  src = '';
  off = 0;
}

/** Byte i of the token's text; 0 past its end or past 31 bytes (the C token keeps 31 and a NUL). */
function valAt(t: Token, i: number): number {
  return i < t.len && i < VAL_MAX ? t.src.charCodeAt(t.off + i) : 0;
}

function clear(t: Token): void {
  t.type = T_NONE;
  t.pos = 0;
  t.len = 0;
  t.strOpen = 0;
  t.strClose = 0;
  t.src = '';
  t.off = 0;
}

function copy(dst: Token, src: Token): void {
  dst.type = src.type;
  dst.pos = src.pos;
  dst.len = src.len;
  dst.strOpen = src.strOpen;
  dst.strClose = src.strClose;
  dst.src = src.src;
  dst.off = src.off;
}

// The C library keeps 8 token slots; folding may look one past the fifth.
const tv: Token[] = Array.from({ length: MAX_TOKENS + 3 }, () => new Token());
const lastComment = new Token();

let s = '';
let slen = 0;
let flags = 0;
/** Where the tokenizer reads next. */
let at = 0;
/** The token the tokenizer writes. */
let cur: Token = tv[0]!;
let statsTokens = 0;
let statsCommentDdx = 0;
let statsCommentHash = 0;

/** Byte at i, 0 past the end (the C input is NUL-terminated). */
function byteAt(i: number): number {
  return i < slen ? s.charCodeAt(i) : 0;
}

function assign(t: Token, type: number, pos: number, len: number): void {
  t.type = type;
  t.pos = pos;
  t.len = len;
  t.src = s;
  t.off = pos;
}

function assignChar(t: Token, type: number, pos: number): void {
  assign(t, type, pos, 1);
}

function spanAccept(start: number, set: Uint8Array): number {
  let i = start;
  while (i < slen) {
    const c = s.charCodeAt(i);
    if (c > 255 || set[c] === 0) break;
    i++;
  }
  return i - start;
}

function spanUntil(start: number, set: Uint8Array): number {
  let i = start;
  while (i < slen) {
    const c = s.charCodeAt(i);
    if (c <= 255 && set[c] === 1) break;
    i++;
  }
  return i - start;
}

/** First i in [start, start+len-1) with s[i] = c0 and s[i+1] = c1, or -1. */
function findPair(start: number, len: number, c0: number, c1: number): number {
  const last = start + len - 1;
  for (let i = start; i < last; i++) if (s.charCodeAt(i) === c0 && s.charCodeAt(i + 1) === c1) return i;
  return -1;
}

function isBackslashEscaped(end: number, start: number): boolean {
  let p = end;
  while (p >= start && s.charCodeAt(p) === 0x5c) p--;
  return ((end - p) & 1) === 1;
}

/**
 * A quoted string whose opening quote (when offset > 0) is at pos. Backslash
 * escapes and doubled quotes do not close it; no closing quote runs it to the end.
 */
function parseStringCore(pos: number, delim: number, offset: number): number {
  const t = cur;
  const start = pos + offset;
  const d = String.fromCharCode(delim);
  let q = s.indexOf(d, start);
  t.strOpen = offset > 0 ? delim : 0;
  for (;;) {
    if (q < 0) {
      assign(t, T_STRING, start, slen - start);
      t.strClose = 0;
      return slen;
    }
    if (isBackslashEscaped(q - 1, start)) {
      q = s.indexOf(d, q + 1);
    } else if (q + 1 < slen && s.charCodeAt(q + 1) === delim) {
      q = s.indexOf(d, q + 2);
    } else {
      assign(t, T_STRING, start, q - start);
      t.strClose = delim;
      return q + 1;
    }
  }
}

function parseEolComment(pos: number): number {
  const nl = s.indexOf('\n', pos);
  if (nl < 0) {
    assign(cur, T_COMMENT, pos, slen - pos);
    return slen;
  }
  assign(cur, T_COMMENT, pos, nl - pos);
  return nl + 1;
}

function parseOperator1(pos: number): number {
  assignChar(cur, T_OPERATOR, pos);
  return pos + 1;
}

function parseOperator2(pos: number): number {
  if (pos + 1 >= slen) return parseOperator1(pos);
  if (pos + 2 < slen && s.charCodeAt(pos) === 0x3c && s.charCodeAt(pos + 1) === 0x3d && s.charCodeAt(pos + 2) === 0x3e) {
    assign(cur, T_OPERATOR, pos, 3); // <=>
    return pos + 3;
  }
  const type = lookupWord(s, pos, 2);
  if (type !== 0) {
    assign(cur, type, pos, 2);
    return pos + 2;
  }
  if (s.charCodeAt(pos) === 0x3a) {
    assign(cur, T_COLON, pos, 1);
    return pos + 1;
  }
  return parseOperator1(pos);
}

function parseHash(pos: number): number {
  // '#' starts a comment only in MySQL; seeing one asks for a MySQL reading.
  statsCommentHash += 1;
  if (flags & F_SQL_MYSQL) {
    statsCommentHash += 1;
    return parseEolComment(pos);
  }
  assignChar(cur, T_OPERATOR, pos);
  return pos + 1;
}

function parseDash(pos: number): number {
  const next = byteAt(pos + 1);
  if (pos + 2 < slen && next === 0x2d && isWhite(s.charCodeAt(pos + 2))) return parseEolComment(pos);
  if (pos + 2 === slen && next === 0x2d) return parseEolComment(pos);
  if (pos + 1 < slen && next === 0x2d && flags & F_SQL_ANSI) {
    // "--x" is a comment in ANSI SQL but two minus signs in MySQL.
    statsCommentDdx += 1;
    return parseEolComment(pos);
  }
  assignChar(cur, T_OPERATOR, pos);
  return pos + 1;
}

function isWhite(c: number): boolean {
  return c <= 255 && WHITE[c] === 1;
}

function parseSlash(pos: number): number {
  if (pos + 1 === slen || s.charCodeAt(pos + 1) !== 0x2a) return parseOperator1(pos);
  const end = findPair(pos + 2, slen - (pos + 2), 0x2a, 0x2f);
  const clen = end < 0 ? slen - pos : end + 2 - pos;
  let type = T_COMMENT;
  // A comment opening inside a comment (PostgreSQL nests them) or MySQL's
  // executable "/*!" cannot be parsed the same way by every engine: evil.
  if (end >= 0 && findPair(pos + 2, end - (pos + 1), 0x2f, 0x2a) >= 0) type = T_EVIL;
  else if (pos + 2 < slen && s.charCodeAt(pos + 2) === 0x21) type = T_EVIL;
  assign(cur, type, pos, clen);
  return pos + clen;
}

function parseBackslash(pos: number): number {
  // MySQL's "\N" is NULL.
  if (pos + 1 < slen && s.charCodeAt(pos + 1) === 0x4e) {
    assign(cur, T_NUMBER, pos, 2);
    return pos + 2;
  }
  assignChar(cur, T_BACKSLASH, pos);
  return pos + 1;
}

function parseMoney(pos: number): number {
  if (pos + 1 === slen) {
    assignChar(cur, T_BAREWORD, pos);
    return slen;
  }
  // $1,000.00 is a number; $$...$$ and $tag$...$tag$ are PostgreSQL strings.
  let xlen = spanAccept(pos + 1, MONEY_DIGITS);
  if (xlen === 0) {
    if (s.charCodeAt(pos + 1) === 0x24) {
      const end = s.indexOf('$$', pos + 2);
      const t = cur;
      if (end < 0) {
        assign(t, T_STRING, pos + 2, slen - (pos + 2));
        t.strOpen = 0x24;
        t.strClose = 0;
        return slen;
      }
      assign(t, T_STRING, pos + 2, end - (pos + 2));
      t.strOpen = 0x24;
      t.strClose = 0x24;
      return end + 2;
    }
    xlen = spanAccept(pos + 1, LETTERS);
    if (xlen === 0 || pos + xlen + 1 === slen || s.charCodeAt(pos + xlen + 1) !== 0x24) {
      assignChar(cur, T_BAREWORD, pos);
      return pos + 1;
    }
    const body = pos + xlen + 2;
    const end = s.indexOf(s.slice(pos, body), body);
    const t = cur;
    if (end < 0) {
      assign(t, T_STRING, body, slen - body);
      t.strOpen = 0x24;
      t.strClose = 0;
      return slen;
    }
    assign(t, T_STRING, body, end - body);
    t.strOpen = 0x24;
    t.strClose = 0x24;
    return end + xlen + 2;
  }
  if (xlen === 1 && s.charCodeAt(pos + 1) === 0x2e) return parseWord(pos);
  assign(cur, T_NUMBER, pos, 1 + xlen);
  return pos + 1 + xlen;
}

function parseWord(pos: number): number {
  const t = cur;
  const wlen = spanUntil(pos, WORD_END);
  assign(t, T_BAREWORD, pos, wlen);
  // "SELECT.1" or "SELECT`x`": a keyword before '.' or '`' is a token alone.
  const lim = wlen < VAL_MAX ? wlen : VAL_MAX;
  for (let i = 0; i < lim; i++) {
    const c = s.charCodeAt(pos + i);
    if (c === 0x2e || c === 0x60) {
      const type = lookupWord(s, pos, i);
      if (type !== T_NONE && type !== T_BAREWORD) {
        clear(t);
        assign(t, type, pos, i);
        return pos + i;
      }
    }
  }
  if (wlen < TOKEN_SIZE) {
    const type = lookupWord(s, pos, wlen);
    t.type = type === 0 ? T_BAREWORD : type;
  }
  return pos + wlen;
}

function parseTick(pos: number): number {
  // MySQL `identifier`: a function name stays a function, anything else is a word.
  const next = parseStringCore(pos, CH_TICK, 1);
  const t = cur;
  const type = t.len < TOKEN_SIZE ? lookupWord(s, t.pos, t.len) : 0;
  t.type = type === T_FUNCTION ? T_FUNCTION : T_BAREWORD;
  return next;
}

function parseVar(start: number): number {
  let pos = start + 1;
  if (pos < slen && s.charCodeAt(pos) === 0x40) pos += 1; // @@system variable
  if (pos < slen) {
    const c = s.charCodeAt(pos);
    if (c === CH_TICK) {
      const next = parseTick(pos);
      cur.type = T_VARIABLE;
      return next;
    }
    if (c === CH_SINGLE || c === CH_DOUBLE) {
      const next = parseStringCore(pos, c, 1);
      cur.type = T_VARIABLE;
      return next;
    }
  }
  const xlen = spanUntil(pos, VAR_END);
  assign(cur, T_VARIABLE, pos, xlen);
  return pos + xlen;
}

function parseNumber(start: number): number {
  let pos = start;
  if (s.charCodeAt(pos) === 0x30 && pos + 1 < slen) {
    const c1 = s.charCodeAt(pos + 1);
    const digits = c1 === 0x58 || c1 === 0x78 ? HEX_DIGITS : c1 === 0x42 || c1 === 0x62 ? BIN_DIGITS : undefined;
    if (digits) {
      const xlen = spanAccept(pos + 2, digits);
      if (xlen === 0) {
        assign(cur, T_BAREWORD, pos, 2);
        return pos + 2;
      }
      assign(cur, T_NUMBER, pos, 2 + xlen);
      return pos + 2 + xlen;
    }
  }
  while (pos < slen && isDigit(s.charCodeAt(pos))) pos++;
  if (pos < slen && s.charCodeAt(pos) === 0x2e) {
    pos++;
    while (pos < slen && isDigit(s.charCodeAt(pos))) pos++;
    if (pos - start === 1) {
      assignChar(cur, T_DOT, start);
      return pos;
    }
  }
  let haveE = false;
  let haveExp = false;
  if (pos < slen) {
    const c = s.charCodeAt(pos);
    if (c === 0x45 || c === 0x65) {
      haveE = true;
      pos++;
      if (pos < slen && (s.charCodeAt(pos) === 0x2b || s.charCodeAt(pos) === 0x2d)) pos++;
      while (pos < slen && isDigit(s.charCodeAt(pos))) {
        haveExp = true;
        pos++;
      }
    }
  }
  // Oracle's float/double suffix: "1.2f", "1d;", and "1fUNION" read as "1f UNION".
  if (pos < slen) {
    const c = s.charCodeAt(pos);
    if (c === 0x64 || c === 0x44 || c === 0x66 || c === 0x46) {
      if (pos + 1 === slen) pos++;
      else {
        const n = s.charCodeAt(pos + 1);
        if (isWhite(n) || n === 0x3b || n === 0x75 || n === 0x55) pos++;
      }
    }
  }
  // "1234.e" or "10.10E" without exponent digits is a word.
  assign(cur, haveE && !haveExp ? T_BAREWORD : T_NUMBER, start, pos - start);
  return pos;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function parseQstringCore(start: number, offset: number): number {
  // Oracle q'[...]' (and nq'...'): the char after the quote picks the closer.
  const pos = start + offset;
  if (pos >= slen) return parseWord(start);
  const c0 = s.charCodeAt(pos);
  if ((c0 !== 0x71 && c0 !== 0x51) || pos + 2 >= slen || s.charCodeAt(pos + 1) !== CH_SINGLE) return parseWord(start);
  let close = s.charCodeAt(pos + 2);
  if (close < 33 || close > 127) return parseWord(start); // C compares a signed char: bytes >= 0x80 are below 33
  if (close === 0x28) close = 0x29;
  else if (close === 0x5b) close = 0x5d;
  else if (close === 0x7b) close = 0x7d;
  else if (close === 0x3c) close = 0x3e;
  const end = findPair(pos + 3, slen - pos - 3, close, CH_SINGLE);
  const t = cur;
  if (end < 0) {
    assign(t, T_STRING, pos + 3, slen - pos - 3);
    t.strOpen = 0x71;
    t.strClose = 0;
    return slen;
  }
  assign(t, T_STRING, pos + 3, end - pos - 3);
  t.strOpen = 0x71;
  t.strClose = 0x71;
  return end + 2;
}

function parseEstring(pos: number): number {
  // E'...' (PostgreSQL escape string) and N'...' (national string).
  if (pos + 2 >= slen || s.charCodeAt(pos + 1) !== CH_SINGLE) return parseWord(pos);
  return parseStringCore(pos, CH_SINGLE, 2);
}

function parseNqstring(pos: number): number {
  if (pos + 2 < slen && s.charCodeAt(pos + 1) === CH_SINGLE) return parseEstring(pos);
  return parseQstringCore(pos, 1);
}

function parseUstring(pos: number): number {
  // U&'...' (unicode string).
  if (pos + 2 < slen && s.charCodeAt(pos + 1) === 0x26 && s.charCodeAt(pos + 2) === CH_SINGLE) {
    const next = parseStringCore(pos + 2, CH_SINGLE, 1);
    cur.strOpen = 0x75;
    if (cur.strClose === CH_SINGLE) cur.strClose = 0x75;
    return next;
  }
  return parseWord(pos);
}

/** b'0101' and x'ff': a number when the digits are closed by a quote, else a word. */
function parseDigitString(pos: number, digits: Uint8Array): number {
  if (pos + 2 >= slen || s.charCodeAt(pos + 1) !== CH_SINGLE) return parseWord(pos);
  const wlen = spanAccept(pos + 2, digits);
  if (pos + 2 + wlen >= slen || s.charCodeAt(pos + 2 + wlen) !== CH_SINGLE) return parseWord(pos);
  assign(cur, T_NUMBER, pos, wlen + 3);
  return pos + 2 + wlen + 1;
}

function parseBword(pos: number): number {
  // [SQL Server identifier]
  const end = s.indexOf(']', pos);
  if (end < 0) {
    assign(cur, T_BAREWORD, pos, slen - pos);
    return slen;
  }
  assign(cur, T_BAREWORD, pos, end - pos + 1);
  return end + 1;
}

function parseAt(pos: number): number {
  const c = s.charCodeAt(pos);
  switch (c > 255 ? P_WORD : DISPATCH[c]) {
    case P_WHITE:
      return pos + 1;
    case P_OPERATOR1:
      return parseOperator1(pos);
    case P_OPERATOR2:
      return parseOperator2(pos);
    case P_STRING:
      return parseStringCore(pos, c, 1);
    case P_HASH:
      return parseHash(pos);
    case P_MONEY:
      return parseMoney(pos);
    case P_CHAR:
      assignChar(cur, c, pos);
      return pos + 1;
    case P_DASH:
      return parseDash(pos);
    case P_NUMBER:
      return parseNumber(pos);
    case P_SLASH:
      return parseSlash(pos);
    case P_OTHER:
      assignChar(cur, T_UNKNOWN, pos);
      return pos + 1;
    case P_VAR:
      return parseVar(pos);
    case P_BSTRING:
      return parseDigitString(pos, BIN_DIGITS);
    case P_ESTRING:
      return parseEstring(pos);
    case P_NQSTRING:
      return parseNqstring(pos);
    case P_QSTRING:
      return parseQstringCore(pos, 0);
    case P_USTRING:
      return parseUstring(pos);
    case P_XSTRING:
      return parseDigitString(pos, HEX_DIGITS);
    case P_BWORD:
      return parseBword(pos);
    case P_BACKSLASH:
      return parseBackslash(pos);
    case P_TICK:
      return parseTick(pos);
    default:
      return parseWord(pos);
  }
}

/** Reads the next token into `cur`; false at the end of the input. */
function tokenize(): boolean {
  if (slen === 0) return false;
  clear(cur);
  // The quoted readings start inside a string: its first token runs to the first quote.
  if (at === 0 && flags & (F_QUOTE_SINGLE | F_QUOTE_DOUBLE)) {
    at = parseStringCore(0, flags & F_QUOTE_SINGLE ? CH_SINGLE : CH_DOUBLE, 0);
    statsTokens += 1;
    return true;
  }
  while (at < slen) {
    at = parseAt(at);
    if (cur.type !== T_NONE) {
      statsTokens += 1;
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------
// Folding.

function isUnaryOp(t: Token): boolean {
  if (t.type !== T_OPERATOR) return false;
  switch (t.len) {
    case 1: {
      const c = valAt(t, 0);
      return c === 0x2b || c === 0x2d || c === 0x21 || c === 0x7e;
    }
    case 2:
      return valAt(t, 0) === 0x21 && valAt(t, 1) === 0x21;
    case 3:
      return valIs(t, 'NOT');
    default:
      return false;
  }
}

function isArithmeticOp(t: Token): boolean {
  if (t.type !== T_OPERATOR || t.len !== 1) return false;
  const c = valAt(t, 0);
  return c === 0x2a || c === 0x2f || c === 0x2d || c === 0x2b || c === 0x25;
}

const MERGE_FIRST = new Uint8Array(128);
for (const t of [T_KEYWORD, T_BAREWORD, T_OPERATOR, T_UNION, T_FUNCTION, T_EXPRESSION, T_TSQL, T_SQLTYPE]) MERGE_FIRST[t] = 1;
const MERGE_SECOND = MERGE_FIRST.slice();
MERGE_SECOND[T_LOGIC_OPERATOR] = 1;

/** "UNION" "ALL" -> "UNION ALL" when the pair is a known phrase. */
function mergeWords(a: Token, b: Token): boolean {
  if (MERGE_FIRST[a.type] !== 1 || MERGE_SECOND[b.type] !== 1) return false;
  const len = a.len + b.len + 1;
  if (len >= TOKEN_SIZE) return false;
  // Both texts are whole here (len < 32); look the phrase up before building it.
  const type = lookupPhrase(a, b);
  if (type === 0) return false;
  const merged = a.src.slice(a.off, a.off + a.len) + ' ' + b.src.slice(b.off, b.off + b.len);
  a.type = type;
  a.len = len;
  a.src = merged;
  a.off = 0;
  return true;
}

/** Words that are column names unless a '(' follows. */
const FUNCTION_IF_CALLED = ['USER_ID', 'USER_NAME', 'DATABASE', 'PASSWORD', 'USER', 'CURRENT_USER', 'CURRENT_DATE', 'CURRENT_TIME', 'CURRENT_TIMESTAMP', 'LOCALTIME', 'LOCALTIMESTAMP'];

/** '_' in the token's text before any NUL (C's strchr on the 31-byte text). */
function hasUnderscore(t: Token): boolean {
  for (let i = 0; ; i++) {
    const c = valAt(t, i);
    if (c === 0) return false;
    if (c === 0x5f) return true;
  }
}

function isFunctionIfCalled(t: Token): boolean {
  for (const w of FUNCTION_IF_CALLED) if (valIs(t, w)) return true;
  return false;
}

function fold(): number {
  let pos = 0;
  let left = 0;
  let more = true;
  clear(lastComment);

  // Skip leading comments, '(', SQL types and unary operators.
  cur = tv[0]!;
  while (more) {
    more = tokenize();
    const t = cur.type;
    if (!(t === T_COMMENT || t === T_LEFTPARENS || t === T_SQLTYPE || isUnaryOp(cur))) break;
  }
  if (!more) return 0;
  pos += 1;

  for (;;) {
    // Five tokens of a few shapes ("1,(1)", "n)o(n") collapse to their first.
    if (pos >= MAX_TOKENS) {
      const a = tv[0]!.type;
      const b = tv[1]!.type;
      const c = tv[2]!.type;
      const d = tv[3]!.type;
      const e = tv[4]!.type;
      if (
        (a === T_NUMBER && (b === T_OPERATOR || b === T_COMMA) && c === T_LEFTPARENS && d === T_NUMBER && e === T_RIGHTPARENS) ||
        (a === T_BAREWORD && b === T_OPERATOR && c === T_LEFTPARENS && (d === T_BAREWORD || d === T_NUMBER) && e === T_RIGHTPARENS) ||
        (a === T_NUMBER && b === T_RIGHTPARENS && c === T_COMMA && d === T_LEFTPARENS && e === T_NUMBER) ||
        (a === T_BAREWORD && b === T_RIGHTPARENS && c === T_OPERATOR && d === T_LEFTPARENS && e === T_BAREWORD)
      ) {
        if (pos > MAX_TOKENS) {
          copy(tv[1]!, tv[MAX_TOKENS]!);
          pos = 2;
        } else {
          pos = 1;
        }
        left = 0;
      }
    }

    if (!more || left >= MAX_TOKENS) {
      left = pos;
      break;
    }

    // Get up to two tokens; comments are set aside, only the last one kept.
    while (more && pos <= MAX_TOKENS && pos - left < 2) {
      cur = tv[pos]!;
      more = tokenize();
      if (more) {
        if (cur.type === T_COMMENT) copy(lastComment, cur);
        else {
          lastComment.type = T_NONE;
          pos += 1;
        }
      }
    }
    if (pos - left < 2) {
      left = pos;
      continue;
    }

    const a = tv[left]!;
    const b = tv[left + 1]!;
    if (a.type === T_STRING && b.type === T_STRING) {
      // 'foo' 'bar' is one string in SQL.
      pos -= 1;
      continue;
    } else if (a.type === T_SEMICOLON && b.type === T_SEMICOLON) {
      pos -= 1;
      continue;
    } else if ((a.type === T_OPERATOR || a.type === T_LOGIC_OPERATOR) && (isUnaryOp(b) || b.type === T_SQLTYPE)) {
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_LEFTPARENS && isUnaryOp(b)) {
      pos -= 1;
      if (left > 0) left -= 1;
      continue;
    } else if (mergeWords(a, b)) {
      pos -= 1;
      if (left > 0) left -= 1;
      continue;
    } else if (a.type === T_SEMICOLON && b.type === T_FUNCTION && (valAt(b, 0) | 0x20) === 0x69 && (valAt(b, 1) | 0x20) === 0x66) {
      // After ';', IF... is Transact-SQL control flow, not the IF() function.
      b.type = T_TSQL;
      continue;
    } else if ((a.type === T_BAREWORD || a.type === T_VARIABLE) && b.type === T_LEFTPARENS && isFunctionIfCalled(a)) {
      a.type = T_FUNCTION;
      continue;
    } else if (a.type === T_KEYWORD && (valIs(a, 'IN') || valIs(a, 'NOT IN'))) {
      // "IN (" compares; a lone IN may still merge ("IN BOOLEAN MODE").
      a.type = b.type === T_LEFTPARENS ? T_OPERATOR : T_BAREWORD;
      continue;
    } else if (a.type === T_OPERATOR && (valIs(a, 'LIKE') || valIs(a, 'NOT LIKE'))) {
      if (b.type === T_LEFTPARENS) a.type = T_FUNCTION; // LIKE(...)
    } else if (
      a.type === T_SQLTYPE &&
      (b.type === T_BAREWORD || b.type === T_NUMBER || b.type === T_SQLTYPE || b.type === T_LEFTPARENS || b.type === T_FUNCTION || b.type === T_VARIABLE || b.type === T_STRING)
    ) {
      copy(a, b);
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_COLLATE && b.type === T_BAREWORD) {
      // Too many collation names to list: one with '_' is taken as a type.
      if (hasUnderscore(b)) {
        b.type = T_SQLTYPE;
        left = 0;
      }
    } else if (a.type === T_BACKSLASH) {
      // T-SQL reads "\%1" as "0 % 1" and "\1" as "1".
      if (isArithmeticOp(b)) {
        a.type = T_NUMBER;
      } else {
        copy(a, b);
        pos -= 1;
      }
      left = 0;
      continue;
    } else if (a.type === T_LEFTPARENS && b.type === T_LEFTPARENS) {
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_RIGHTPARENS && b.type === T_RIGHTPARENS) {
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_LEFTBRACE && b.type === T_BAREWORD) {
      // MySQL's "{ ``.``.id }" cannot be folded with three tokens of context: evil.
      if (b.len === 0) {
        b.type = T_EVIL;
        return left + 2;
      }
      // ODBC "{foo expr}": keep expr.
      left = 0;
      pos -= 2;
      continue;
    } else if (b.type === T_RIGHTBRACE) {
      pos -= 1;
      left = 0;
      continue;
    }

    // No pair rule applied: get a third token.
    while (more && pos <= MAX_TOKENS && pos - left < 3) {
      cur = tv[pos]!;
      more = tokenize();
      if (more) {
        if (cur.type === T_COMMENT) copy(lastComment, cur);
        else {
          lastComment.type = T_NONE;
          pos += 1;
        }
      }
    }
    if (pos - left < 3) {
      left = pos;
      continue;
    }

    const c = tv[left + 2]!;
    if (a.type === T_NUMBER && b.type === T_OPERATOR && c.type === T_NUMBER) {
      pos -= 2;
      left = 0;
      continue;
    } else if (a.type === T_OPERATOR && b.type !== T_LEFTPARENS && c.type === T_OPERATOR) {
      left = 0;
      pos -= 2;
      continue;
    } else if (a.type === T_LOGIC_OPERATOR && c.type === T_LOGIC_OPERATOR) {
      pos -= 2;
      left = 0;
      continue;
    } else if (a.type === T_VARIABLE && b.type === T_OPERATOR && (c.type === T_VARIABLE || c.type === T_NUMBER || c.type === T_BAREWORD)) {
      pos -= 2;
      left = 0;
      continue;
    } else if ((a.type === T_BAREWORD || a.type === T_NUMBER) && b.type === T_OPERATOR && (c.type === T_NUMBER || c.type === T_BAREWORD)) {
      pos -= 2;
      left = 0;
      continue;
    } else if (
      (a.type === T_BAREWORD || a.type === T_NUMBER || a.type === T_VARIABLE || a.type === T_STRING) &&
      b.type === T_OPERATOR &&
      b.len === 2 &&
      valAt(b, 0) === 0x3a &&
      valAt(b, 1) === 0x3a &&
      c.type === T_SQLTYPE
    ) {
      // PostgreSQL cast x::type
      pos -= 2;
      left = 0;
      continue;
    } else if (
      (a.type === T_BAREWORD || a.type === T_NUMBER || a.type === T_STRING || a.type === T_VARIABLE) &&
      b.type === T_COMMA &&
      (c.type === T_NUMBER || c.type === T_BAREWORD || c.type === T_STRING || c.type === T_VARIABLE)
    ) {
      pos -= 2;
      left = 0;
      continue;
    } else if ((a.type === T_EXPRESSION || a.type === T_GROUP || a.type === T_COMMA) && isUnaryOp(b) && c.type === T_LEFTPARENS) {
      // SELECT + (  /  LIMIT + (  : drop the unary operator
      copy(b, c);
      pos -= 1;
      left = 0;
      continue;
    } else if (
      (a.type === T_KEYWORD || a.type === T_EXPRESSION || a.type === T_GROUP) &&
      isUnaryOp(b) &&
      (c.type === T_NUMBER || c.type === T_BAREWORD || c.type === T_VARIABLE || c.type === T_STRING || c.type === T_FUNCTION)
    ) {
      // select - 1
      copy(b, c);
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_COMMA && isUnaryOp(b) && (c.type === T_NUMBER || c.type === T_BAREWORD || c.type === T_VARIABLE || c.type === T_STRING)) {
      // ", -1" -> ",1", and back up so "1,-1" folds to "1"
      copy(b, c);
      left = 0;
      pos -= 3;
      continue;
    } else if (a.type === T_COMMA && isUnaryOp(b) && c.type === T_FUNCTION) {
      copy(b, c);
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_BAREWORD && b.type === T_DOT && c.type === T_BAREWORD) {
      // database.table
      pos -= 2;
      left = 0;
      continue;
    } else if (a.type === T_EXPRESSION && b.type === T_DOT && c.type === T_BAREWORD) {
      // select . `foo` -> select `foo`
      copy(b, c);
      pos -= 1;
      left = 0;
      continue;
    } else if (a.type === T_FUNCTION && b.type === T_LEFTPARENS && c.type !== T_RIGHTPARENS) {
      // USER() takes no arguments: USER(foo) is not that function.
      if (valIs(a, 'USER')) a.type = T_BAREWORD;
    }

    left += 1;
  }

  // A trailing comment comes back when there is room for it.
  if (left < MAX_TOKENS && lastComment.type === T_COMMENT) {
    copy(tv[left]!, lastComment);
    left += 1;
  }
  // A sixth token may have been read only to decide the fifth.
  return left > MAX_TOKENS ? MAX_TOKENS : left;
}

// ---------------------------------------------------------------------------
// One reading, and the checks on its fingerprint.

/** The reading's fingerprint: token types, fpLen of them. */
const fpTypes = new Uint8Array(MAX_TOKENS + 1);
let fpLen = 0;

function readAs(readFlags: number): void {
  flags = readFlags;
  at = 0;
  statsTokens = 0;
  statsCommentDdx = 0;
  statsCommentHash = 0;
  for (const t of tv) clear(t);
  cur = tv[0]!;

  const tlen = fold();
  // PHP's unclosed empty backtick at the end acts as a comment.
  if (tlen > 2) {
    const last = tv[tlen - 1]!;
    if (last.type === T_BAREWORD && last.strOpen === CH_TICK && last.len === 0 && last.strClose === 0) last.type = T_COMMENT;
  }
  let evil = false;
  for (let i = 0; i < tlen; i++) {
    const type = tv[i]!.type;
    if (type === T_EVIL) evil = true;
    fpTypes[i] = type;
  }
  fpLen = tlen;
  if (evil) {
    // Not parseable the same way by every engine: the whole input is 'X'.
    fpTypes[0] = T_EVIL;
    fpLen = 1;
    const t0 = tv[0]!;
    t0.type = T_EVIL;
    t0.src = 'X';
    t0.off = 0;
    tv[1]!.type = T_NONE;
  }
}

function fingerprint(): string {
  let out = '';
  for (let i = 0; i < fpLen; i++) out += String.fromCharCode(fpTypes[i]!);
  return out;
}

function fpIs(a: number, b: number, c: number): boolean {
  return fpTypes[0] === a && fpTypes[1] === b && fpTypes[2] === c;
}

function reparseAsMysql(): boolean {
  return statsCommentDdx > 0 || statsCommentHash > 0;
}

function isSqliFingerprint(): boolean {
  if (fpLen < 1) return false;
  let key = 0;
  for (let i = 0; i < fpLen; i++) {
    let c = fpTypes[i]!;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    key = key * 128 + c;
  }
  return fingerprintListed(key) && notWhitelisted();
}

/** False-positive filters for short fingerprints. */
function notWhitelisted(): boolean {
  const tlen = fpLen;
  // SQL Server's audit log hides statements mentioning sp_password.
  if (tlen > 1 && fpTypes[tlen - 1] === T_COMMENT && s.includes('sp_password')) return true;

  const t0 = tv[0]!;
  const t1 = tv[1]!;
  switch (tlen) {
    case 2: {
      if (fpTypes[1] === T_UNION) {
        // "1 union" alone is ordinary text; folded or commented, it is not.
        return statsTokens !== 2;
      }
      if (valAt(t1, 0) === 0x23) return false; // '#' comments: too many false positives
      // "foo --" and "foo #" are text; only "foo /*" counts.
      if (t0.type === T_BAREWORD && t1.type === T_COMMENT && valAt(t1, 0) !== 0x2f) return false;
      if (t0.type === T_NUMBER && t1.type === T_COMMENT) {
        if (valAt(t1, 0) === 0x2f) return true;
        if (statsTokens > 2) return true; // folded: "1*1--"
        // "1234-ABCD--" (base64-like) is not SQLi, "1234 --" is: look at the
        // byte after the number, at the number's length, as the C code does.
        const ch = byteAt(t0.len);
        if (ch <= 32 || ch >= 0x80) return true;
        if (ch === 0x2f && byteAt(t0.len + 1) === 0x2a) return true;
        if (ch === 0x2d && byteAt(t0.len + 1) === 0x2d) return true;
        return false;
      }
      // "1-- foo": only a bare "--" at the very end counts.
      if (t1.len > 2 && valAt(t1, 0) === 0x2d) return false;
      break;
    }
    case 3: {
      if (fpIs(T_STRING, T_OPERATOR, T_STRING) || fpIs(T_STRING, T_LOGIC_OPERATOR, T_STRING)) {
        // ...foo' + 'bar...: both strings open out of the input's ends.
        const t2 = tv[2]!;
        return t0.strOpen === 0 && t2.strClose === 0 && t0.strClose === t2.strOpen;
      } else if (
        fpIs(T_STRING, T_LOGIC_OPERATOR, T_BAREWORD) ||
        fpIs(T_BAREWORD, T_LOGIC_OPERATOR, T_NUMBER) ||
        fpIs(T_NUMBER, T_LOGIC_OPERATOR, T_NUMBER) ||
        fpIs(T_NUMBER, T_LOGIC_OPERATOR, T_VARIABLE) ||
        fpIs(T_NUMBER, T_LOGIC_OPERATOR, T_STRING)
      ) {
        // 'sexy and 17' is text; 'sexy and 17<18' is not.
        if (statsTokens === 3) return false;
      } else if (t1.type === T_KEYWORD) {
        // Only INTO OUTFILE / INTO DUMPFILE make a keyword in the middle suspect.
        if (t1.len < 5 || !startsWithUpper(t1, 'INTO')) return false;
      }
      break;
    }
  }
  return true;
}

function startsWithUpper(t: Token, upper: string): boolean {
  for (let i = 0; i < upper.length; i++) {
    let c = valAt(t, i);
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (c !== upper.charCodeAt(i)) return false;
  }
  return true;
}

function isSqli(): boolean {
  if (slen === 0) return false;
  readAs(F_QUOTE_NONE | F_SQL_ANSI);
  if (isSqliFingerprint()) return true;
  if (reparseAsMysql()) {
    readAs(F_QUOTE_NONE | F_SQL_MYSQL);
    if (isSqliFingerprint()) return true;
  }
  if (s.includes("'")) {
    readAs(F_QUOTE_SINGLE | F_SQL_ANSI);
    if (isSqliFingerprint()) return true;
    if (reparseAsMysql()) {
      readAs(F_QUOTE_SINGLE | F_SQL_MYSQL);
      if (isSqliFingerprint()) return true;
    }
  }
  if (s.includes('"')) {
    readAs(F_QUOTE_DOUBLE | F_SQL_MYSQL);
    if (isSqliFingerprint()) return true;
  }
  return false;
}

/**
 * libinjection's SQLi test on a byte string (one char per byte, e.g.
 * `buf.toString('latin1')`). Chars above 0xFF are read like bytes >= 0x80.
 */
export function detectSQLi(input: string): SqliResult {
  s = input;
  slen = input.length;
  try {
    const hit = isSqli();
    return { isSqli: hit, fingerprint: hit ? fingerprint() : '' };
  } finally {
    // Do not keep the caller's string alive between calls.
    s = '';
    for (const t of tv) t.src = '';
    lastComment.src = '';
  }
}
