// Operators (`@rx`, `@pm`, `@detectSQLi`, ...) compiled once per rule and run
// on byte strings. Semantics follow ModSecurity v3; negation (`!@op`) and
// macro expansion happen in the engine before and after these.

import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { AhoCorasick } from './aho-corasick.js';
import { detectSQLi } from './libinjection/sqli.js';
import { detectXSS } from './libinjection/xss.js';
import { rxClauses, rxFactors, rxPlain, type PlainPrefilter } from './prefilter.js';
import { compileRx } from './regex.js';
import { UnsupportedFeature, type CompiledOperator, type OperatorContext } from './types.js';

/**
 * An operator with a literal prefilter (`@rx`, `@pm`). `factors` (lower-case
 * byte strings, see prefilter.ts): every match contains one of them, ASCII
 * case-insensitively, so a value with none cannot match; the engine uses
 * them to skip `match`. `match` itself never relies on them.
 */
export interface PrefilteredOperator extends CompiledOperator {
  factors?: readonly string[];
  /** Set by the engine: the factor set's id in the process-wide index. */
  factorSetId?: number;
  /**
   * Character clauses (`@rx`, see prefilter.ts rxClauses): every match
   * contains a byte of each (ASCII case-folded); a value missing one cannot match.
   */
  clauses?: readonly Uint32Array[];
  /**
   * The prefilter for plain values (no byte of prefilter.ts PLAIN_EXCLUDED),
   * stronger than the one above for patterns that allow shell junk between
   * letters; the engine sets its `factorSetIds`.
   */
  plain?: PlainPrefilter & { factorSetIds?: number[] };
  /** Set by the engine on static operators: where a string's slots remember this operator's answer. */
  memoId?: number;
}

const NO_MATCH: CompiledOperator = { match: () => undefined };

/**
 * Compiles `@name arg`. `name` is case-insensitive, with or without `@`.
 * Throws UnsupportedFeature for an operator this engine does not run, or an
 * argument it cannot use (bad byte range, unreadable data file, ...).
 */
export function compileOperator(name: string, arg: string, ctx: OperatorContext): CompiledOperator {
  return uniform(compileKind(name, arg, ctx));
}

/**
 * The operator with every field the engine reads present, in one order: the
 * engine's hot paths (testValue, apply, the prefilter checks) read them on
 * every operator, and objects of a dozen shapes made those reads megamorphic
 * (V8's slowest property access). The engine's own fields (memoId,
 * factorSetId, plain.factorSetIds) start undefined and are set in place.
 */
function uniform(op: PrefilteredOperator): PrefilteredOperator {
  const plain = op.plain === undefined ? undefined : { never: op.plain.never, factorSets: op.plain.factorSets, clauses: op.plain.clauses, factorSetIds: undefined };
  return { match: op.match, test: op.test, factors: op.factors, factorSetId: undefined, clauses: op.clauses, plain, memoId: undefined };
}

function compileKind(name: string, arg: string, ctx: OperatorContext): PrefilteredOperator {
  const op = name.replace(/^@/, '').toLowerCase();
  switch (op) {
    case 'rx': {
      const rx = compileRx(arg);
      const op: PrefilteredOperator = { match: (input) => rx.exec(input), test: (input) => rx.test(input) };
      const factors = rxFactors(arg);
      if (factors !== undefined) op.factors = factors;
      const clauses = rxClauses(arg);
      if (clauses !== undefined) op.clauses = clauses;
      const plain = rxPlain(arg);
      if (plain !== undefined) op.plain = plain;
      return op;
    }
    case 'pm':
      return phraseMatcher(splitPhrases(arg).map(parsePmContent));
    case 'pmf':
    case 'pmfromfile':
      return phraseMatcher(readListFiles('@pmFromFile', arg, ctx));
    case 'streq':
      return { match: (input) => (input === arg ? [input] : undefined) };
    case 'beginswith':
      return { match: (input) => (input.startsWith(arg) ? [arg] : undefined) };
    case 'endswith':
      return { match: (input) => (input.endsWith(arg) ? [arg] : undefined) };
    case 'contains':
    case 'strmatch':
      return { match: (input) => (input.includes(arg) ? [arg] : undefined) };
    case 'containsword':
      return { match: (input) => (containsWord(input, arg) ? [arg] : undefined) };
    case 'within':
      return { match: (input) => (arg.includes(input) ? [input] : undefined) };
    case 'eq':
    case 'ge':
    case 'gt':
    case 'le':
    case 'lt':
      return numericOperator(op, arg);
    case 'validatebyterange': {
      const allowed = parseByteRanges(arg);
      return { match: (input) => (hasByteOutside(input, allowed) ? [input] : undefined) };
    }
    case 'validateurlencoding':
      return { match: (input) => (invalidUrlEncoding(input) ? [input] : undefined) };
    case 'validateutf8encoding':
      return { match: (input) => (invalidUtf8(input) ? [input] : undefined) };
    case 'ipmatch':
      return ipMatcher(parseIpList('@ipMatch', arg.split(/[\s,]+/)));
    case 'ipmatchf':
    case 'ipmatchfromfile':
      return ipMatcher(parseIpList('@ipMatchFromFile', readListFiles('@ipMatchFromFile', arg, ctx)));
    case 'unconditionalmatch':
      return { match: (input) => [input] };
    case 'nomatch':
      return NO_MATCH;
    case 'detectsqli':
      return {
        match: (input) => {
          const r = detectSQLi(input);
          // ModSecurity puts the libinjection fingerprint in TX.0.
          return r.isSqli ? [r.fingerprint] : undefined;
        },
      };
    case 'detectxss':
      return { match: (input) => (detectXSS(input) ? [input] : undefined) };
    default:
      throw new UnsupportedFeature(`@${name.replace(/^@/, '')}`, 'operator not supported');
  }
}

// --- phrase lists -------------------------------------------------------------------

function splitPhrases(arg: string): string[] {
  return arg.split(/[ \t\n\r\f\v]+/).filter((p) => p !== '');
}

// `|41 42|`-style hex bytes inside a phrase (Snort content syntax).
function parsePmContent(phrase: string): string {
  if (!/\|[0-9a-fA-F]+\|/.test(phrase)) return phrase;
  return phrase.replace(/\|([0-9a-fA-F]+)\|/g, (whole, hex: string) => {
    if (hex.length % 2) return whole;
    let out = '';
    for (let i = 0; i < hex.length; i += 2) out += String.fromCharCode(parseInt(hex.slice(i, i + 2), 16));
    return out;
  });
}

/** Lines of the named files (one entry a line); blank lines and `#` comments skipped. */
function readListFiles(op: string, arg: string, ctx: OperatorContext): string[] {
  const entries: string[] = [];
  const files = splitPhrases(arg);
  if (files.length === 0) throw new UnsupportedFeature(op, 'no file named');
  for (const f of files) {
    if (/^https?:\/\//i.test(f)) throw new UnsupportedFeature(op, `remote lists are not supported: ${f}`);
    const path = isAbsolute(f) ? f : resolve(ctx.dataDir, f);
    let text: string;
    try {
      text = readFileSync(path, 'latin1');
    } catch (e) {
      throw new UnsupportedFeature(op, `cannot read ${path}: ${(e as Error).message}`);
    }
    for (let line of text.split('\n')) {
      if (line.endsWith('\r')) line = line.slice(0, -1);
      const lead = line.trimStart();
      if (lead === '' || lead.startsWith('#')) continue;
      entries.push(line);
    }
  }
  return entries;
}

/** Phrase lists longer than this are not put in the engine's prefilter index. */
const MAX_PM_FACTORS = 2048;

function phraseMatcher(phrases: string[]): CompiledOperator {
  const ac = new AhoCorasick(phrases);
  const op: PrefilteredOperator = {
    match: (input) => {
      const m = ac.findFirst(input);
      return m ? [m.phrase] : undefined;
    },
  };
  // A phrase list is its own factor set: no phrase in the value, no match (both fold ASCII only).
  const factors = phrases.filter((p) => p !== '');
  if (factors.length > 0 && factors.length <= MAX_PM_FACTORS && factors.every((p) => !/[^\x00-\xff]/.test(p))) {
    op.factors = [...new Set(factors.map(lowerAscii))];
  }
  return op;
}

function lowerAscii(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

// --- strings ------------------------------------------------------------------------

// containsWord: the phrase bounded by the string edges or by chars that are
// not ASCII letters (ModSecurity counts digits and `_` as boundaries).
function containsWord(input: string, word: string): boolean {
  if (word === '') return true;
  if (input === '') return false;
  const boundary = (pos: number) => {
    if (pos < 0 || pos >= input.length) return true;
    const c = input.charCodeAt(pos) | 0x20;
    return !(c >= 0x61 && c <= 0x7a);
  };
  for (let pos = input.indexOf(word); pos >= 0; pos = input.indexOf(word, pos + 1)) {
    if (boundary(pos - 1) && boundary(pos + word.length)) return true;
  }
  return false;
}

// --- numbers ------------------------------------------------------------------------

/**
 * std::stoi as ModSecurity uses it: leading whitespace, a sign, the leading
 * digits; no digits or a value outside 32-bit int gives 0.
 */
export function toInt(s: string): number {
  // By hand (no RegExp, no allocation): numeric operators run on every request, mostly on TX scores.
  const n = s.length;
  let i = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && (c < 0x09 || c > 0x0d)) break;
  }
  let neg = false;
  if (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x2d || c === 0x2b) {
      neg = c === 0x2d;
      i++;
    }
  }
  const start = i;
  let v = 0;
  for (; i < n; i++) {
    const d = s.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) break;
    // Past 2^31 the value is out of range whatever follows; keep reading digits only.
    if (v <= 2147483648) v = v * 10 + d;
  }
  if (i === start) return 0;
  const r = neg ? -v : v;
  return r > 2147483647 || r < -2147483648 ? 0 : r;
}

function numericOperator(op: 'eq' | 'ge' | 'gt' | 'le' | 'lt', arg: string): CompiledOperator {
  const p = toInt(arg);
  switch (op) {
    case 'eq':
      return { match: (input) => (toInt(input) === p ? [input] : undefined) };
    case 'ge':
      return { match: (input) => (toInt(input) >= p ? [input] : undefined) };
    case 'gt':
      return { match: (input) => (toInt(input) > p ? [input] : undefined) };
    case 'le':
      return { match: (input) => (toInt(input) <= p ? [input] : undefined) };
    default:
      return { match: (input) => (toInt(input) < p ? [input] : undefined) };
  }
}

// --- byte validation ------------------------------------------------------------------

/** `9,10,13,32-126` to a table of allowed bytes. */
export function parseByteRanges(arg: string): Uint8Array {
  const allowed = new Uint8Array(256);
  for (const raw of arg.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(item);
    if (!m) throw new UnsupportedFeature('@validateByteRange', `invalid range ${JSON.stringify(item)}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 255 || hi > 255 || hi < lo) throw new UnsupportedFeature('@validateByteRange', `invalid range ${JSON.stringify(item)}`);
    allowed.fill(1, lo, hi + 1);
  }
  return allowed;
}

function hasByteOutside(input: string, allowed: Uint8Array): boolean {
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (c > 0xff || !allowed[c]) return true;
  }
  return false;
}

function isHexCode(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** A `%` not followed by two hex digits (empty input is valid). */
function invalidUrlEncoding(input: string): boolean {
  for (let i = input.indexOf('%'); i >= 0; i = input.indexOf('%', i)) {
    if (i + 2 >= input.length) return true;
    if (!isHexCode(input.charCodeAt(i + 1)) || !isHexCode(input.charCodeAt(i + 2))) return true;
    i += 3;
  }
  return false;
}

/** Not well-formed UTF-8: truncated, bad continuation, overlong, surrogate, above U+10FFFF. */
function invalidUtf8(input: string): boolean {
  const n = input.length;
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c < 0x80) { i++; continue; }
    let len: number;
    let cp: number;
    if ((c & 0xe0) === 0xc0) { len = 2; cp = c & 0x1f; }
    else if ((c & 0xf0) === 0xe0) { len = 3; cp = c & 0x0f; }
    else if ((c & 0xf8) === 0xf0) { len = 4; cp = c & 0x07; }
    else return true;
    if (i + len > n) return true;
    for (let k = 1; k < len; k++) {
      const b = input.charCodeAt(i + k);
      if ((b & 0xc0) !== 0x80) return true;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < (len === 2 ? 0x80 : len === 3 ? 0x800 : 0x10000)) return true;
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return true;
    i += len;
  }
  return false;
}

// --- IP addresses --------------------------------------------------------------------

interface Net {
  v6: boolean;
  addr: bigint;
  prefix: number;
}

function ipv4ToBig(s: string): bigint {
  let v = 0n;
  for (const part of s.split('.')) v = (v << 8n) | BigInt(Number(part));
  return v;
}

function ipv6ToBig(s: string): bigint {
  let text = s;
  let tail: bigint | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    // Embedded IPv4 in the last 32 bits.
    tail = ipv4ToBig(text.slice(lastColon + 1));
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const r = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(parseInt(g, 16));
  if (tail !== undefined) v = (v & ~0xffffffffn) | tail;
  return v;
}

/** Parses `1.2.3.4`, `10.0.0.0/8`, `::1`, `2001:db8::/32`. */
export function parseNet(entry: string): Net | undefined {
  const [ip, bits, extra] = entry.trim().split('/');
  if (extra !== undefined) return undefined;
  const v4 = isIPv4(ip);
  if (!v4 && !isIPv6(ip)) return undefined;
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (bits !== undefined) {
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
    prefix = Number(bits);
  }
  const addr = v4 ? ipv4ToBig(ip) : ipv6ToBig(ip);
  const shift = BigInt(max - prefix);
  return { v6: !v4, addr: (addr >> shift) << shift, prefix };
}

function parseIpList(op: string, entries: string[]): Net[] {
  const nets: Net[] = [];
  for (const e of entries) {
    if (e.trim() === '') continue;
    const net = parseNet(e);
    if (!net) throw new UnsupportedFeature(op, `invalid address ${JSON.stringify(e)}`);
    nets.push(net);
  }
  return nets;
}

function inNet(net: Net, addr: bigint): boolean {
  const shift = BigInt((net.v6 ? 128 : 32) - net.prefix);
  return (addr >> shift) << shift === net.addr;
}

function ipMatcher(nets: Net[]): CompiledOperator {
  const v4 = nets.filter((n) => !n.v6);
  const v6 = nets.filter((n) => n.v6);
  // The last address and its answer: REMOTE_ADDR is read by a few rules per
  // request and repeats across requests, and parsing it goes through BigInt.
  let lastInput: string | undefined;
  let lastHit = false;
  const hit = (input: string): boolean => {
    if (input !== lastInput) {
      lastHit = matches(input);
      lastInput = input;
    }
    return lastHit;
  };
  const matches = (input: string): boolean => {
    const ip = input.trim().replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
    if (isIPv4(ip)) {
      const a = ipv4ToBig(ip);
      return v4.some((n) => inNet(n, a));
    }
    if (!isIPv6(ip)) return false;
    const a = ipv6ToBig(ip);
    if (v6.some((n) => inNet(n, a))) return true;
    // An IPv4-mapped address (::ffff:a.b.c.d, as dual-stack sockets
    // report IPv4 peers) also matches the IPv4 entries.
    return a >> 32n === 0xffffn && v4.some((n) => inNet(n, a & 0xffffffffn));
  };
  return { match: (input) => (hit(input) ? [input] : undefined) };
}
