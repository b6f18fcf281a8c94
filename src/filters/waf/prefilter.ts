// Literal prefilter for `@rx`: from a translated pattern, a set of literal
// factors such that every match of the pattern contains one of them (ASCII
// case-folded). A value containing none of a rule's factors cannot match, so
// the regex need not run; most benign values contain none.
//
// The analysis works on the JS source regex.ts emits (translatePcre's
// testSource: sets as `x`, `\xhh`, `[...]`, `[^...]`; `(?:...)`; `|`;
// quantifiers; `^ $ \b \B`). Anything else it does not recognise makes it
// give up (no prefilter), never guess.
//
// Soundness: for each node it computes either the exact (folded) set of
// strings the node can match, when that set is small, or a set of factors
// one of which every match contains. Concatenation crosses exact sets;
// alternation unions; a repeat with min >= 1 keeps its body's factors; an
// optional part or a large class knows nothing. Truncating a factor to a
// prefix keeps it a substring of the match.
//
// At run time FactorIndex puts the factors of many patterns into one
// Aho-Corasick automaton (a DFA over byte classes): one scan of a value says
// which patterns may match it.

import { translatePcre, translateWithout } from './regex.js';

/** Most strings an exact set may hold. */
const EXACT_LIMIT = 64;
/** A class with more members (after folding) is not enumerated. */
const SET_LIMIT = 8;
/** Most factors kept for one pattern. */
const FACTOR_LIMIT = 2048;
/** Factors are cut to this many bytes (a prefix of a factor is a factor). */
const FACTOR_MAX_LEN = 12;

function fold(c: number): number {
  return c >= 0x41 && c <= 0x5a ? c + 32 : c;
}

// ---------------------------------------------------------------------------
// Parsing the emitted JS source

type PNode =
  | { t: 'set'; chars: number[] | null; bits?: Uint32Array } // folded members, null when too many; bits: all folded members (not for negated classes)
  | { t: 'seq'; items: PNode[] }
  | { t: 'alt'; alts: PNode[] }
  | { t: 'rep'; body: PNode; min: number; max: number }
  | { t: 'empty' };

class GiveUp extends Error {}

class SourceParser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): PNode {
    const n = this.alt();
    if (this.pos !== this.src.length) throw new GiveUp('trailing');
    return n;
  }

  private alt(): PNode {
    const alts: PNode[] = [this.seq()];
    while (this.src[this.pos] === '|') {
      this.pos++;
      alts.push(this.seq());
    }
    return alts.length === 1 ? alts[0]! : { t: 'alt', alts };
  }

  private seq(): PNode {
    const items: PNode[] = [];
    const src = this.src;
    while (this.pos < src.length && src[this.pos] !== '|' && src[this.pos] !== ')') {
      const atom = this.atom();
      items.push(this.quant(atom));
    }
    return items.length === 1 ? items[0]! : { t: 'seq', items };
  }

  private quant(atom: PNode): PNode {
    const src = this.src;
    let min: number;
    let max: number;
    const c = src[this.pos];
    if (c === '*') { min = 0; max = Infinity; this.pos++; }
    else if (c === '+') { min = 1; max = Infinity; this.pos++; }
    else if (c === '?') { min = 0; max = 1; this.pos++; }
    else if (c === '{') {
      const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(src.slice(this.pos, this.pos + 24));
      if (!m) throw new GiveUp('brace');
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
      this.pos += m[0].length;
    } else return atom;
    if (src[this.pos] === '?') this.pos++; // lazy: same language
    if (src[this.pos] === '*' || src[this.pos] === '+' || src[this.pos] === '{') throw new GiveUp('double quantifier');
    return { t: 'rep', body: atom, min, max };
  }

  private atom(): PNode {
    const src = this.src;
    const c = src[this.pos]!;
    if (c === '(') {
      if (src.startsWith('(?:', this.pos)) this.pos += 3;
      else if (src[this.pos + 1] === '?') throw new GiveUp('group kind');
      else this.pos++;
      const body = this.alt();
      if (src[this.pos] !== ')') throw new GiveUp('missing )');
      this.pos++;
      return body;
    }
    if (c === '[') return this.cls();
    if (c === '^' || c === '$') {
      this.pos++;
      return { t: 'empty' };
    }
    if (c === '.') throw new GiveUp('dot'); // regex.ts never emits it
    if (c === '\\') {
      const e = src[this.pos + 1];
      if (e === 'b' || e === 'B') {
        this.pos += 2;
        return { t: 'empty' };
      }
      return single(fold(this.escape()));
    }
    if (/[A-Za-z0-9_]/.test(c)) {
      this.pos++;
      return single(fold(c.charCodeAt(0)));
    }
    throw new GiveUp(`unexpected ${c}`);
  }

  /** `\xhh` or `\n` (the only escapes emitted for bytes). */
  private escape(): number {
    const src = this.src;
    const e = src[this.pos + 1];
    if (e === 'x') {
      const h = src.slice(this.pos + 2, this.pos + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new GiveUp('bad \\x');
      this.pos += 4;
      return parseInt(h, 16);
    }
    if (e === 'n') { this.pos += 2; return 0x0a; }
    throw new GiveUp(`escape \\${e}`);
  }

  private classChar(): number {
    const src = this.src;
    const c = src[this.pos]!;
    if (c === '\\') return this.escape();
    if (/[A-Za-z0-9_]/.test(c)) {
      this.pos++;
      return c.charCodeAt(0);
    }
    throw new GiveUp(`class char ${c}`);
  }

  private cls(): PNode {
    const src = this.src;
    this.pos++; // [
    let neg = false;
    if (src[this.pos] === '^') { neg = true; this.pos++; }
    const members = new Uint8Array(256);
    while (src[this.pos] !== ']') {
      if (this.pos >= src.length) throw new GiveUp('unterminated class');
      const lo = this.classChar();
      let hi = lo;
      if (src[this.pos] === '-' && src[this.pos + 1] !== ']') {
        this.pos++;
        hi = this.classChar();
      }
      for (let x = lo; x <= hi; x++) members[x] = 1;
    }
    this.pos++; // ]
    // A negated class also matches chars above 0xff: never enumerable.
    if (neg) return { t: 'set', chars: null };
    const folded = new Set<number>();
    const bits = new Uint32Array(8);
    for (let x = 0; x < 256; x++) {
      if (members[x] === 1) {
        const f = fold(x);
        folded.add(f);
        bits[f >>> 5]! |= 1 << (f & 31);
      }
    }
    return { t: 'set', chars: folded.size > SET_LIMIT ? null : [...folded], bits };
  }
}

/** The parse of an emitted source, or undefined when it has something the analysis does not know. */
function parseSource(source: string): PNode | undefined {
  try {
    return new SourceParser(source).parse();
  } catch (e) {
    if (e instanceof GiveUp) return undefined;
    throw e;
  }
}

function single(c: number): PNode {
  const bits = new Uint32Array(8);
  bits[c >>> 5]! |= 1 << (c & 31);
  return { t: 'set', chars: [c], bits };
}

// ---------------------------------------------------------------------------
// Factor analysis

interface Info {
  /** Every string the node can match (folded), when few. */
  exact: Set<string> | null;
  /** Every match contains one of these (non-empty); null: unknown. */
  factors: Set<string> | null;
}

const UNKNOWN: Info = { exact: null, factors: null };
/** Matches no string at all (a class emptied by translateWithout, and whatever requires one). */
const NOTHING: Info = { exact: new Set(), factors: new Set() };

function isNothing(i: Info): boolean {
  return i.exact === null ? i.factors !== null && i.factors.size === 0 : i.exact.size === 0;
}

function asFactors(i: Info): Set<string> | null {
  if (i.exact !== null) {
    for (const s of i.exact) if (s === '') return i.factors;
    return i.exact;
  }
  return i.factors;
}

/** Lower is better: about the chance that a random byte string of a short length contains one. */
function cost(f: Set<string>): number {
  let c = 0;
  for (const s of f) c += Math.pow(1 / 8, Math.min(s.length, 6));
  return c;
}

function better(a: Set<string> | null, b: Set<string> | null): Set<string> | null {
  if (a === null) return b;
  if (b === null) return a;
  return cost(b) < cost(a) ? b : a;
}

function cross(a: Set<string>, b: Set<string>): Set<string> {
  const out = new Set<string>();
  for (const x of a) for (const y of b) out.add(x + y);
  return out;
}

function analyze(n: PNode): Info {
  switch (n.t) {
    case 'empty':
      return { exact: new Set(['']), factors: null };
    case 'set':
      if (n.chars === null) return UNKNOWN;
      if (n.chars.length === 0) return NOTHING;
      return { exact: new Set(n.chars.map((c) => String.fromCharCode(c))), factors: null };
    case 'alt': {
      const infos = n.alts.map(analyze).filter((i) => !isNothing(i));
      if (infos.length === 0) return NOTHING;
      if (infos.every((i) => i.exact !== null)) {
        const u = new Set<string>();
        for (const i of infos) for (const s of i.exact!) u.add(s);
        if (u.size <= EXACT_LIMIT) return { exact: u, factors: null };
      }
      const u = new Set<string>();
      for (const i of infos) {
        const f = asFactors(i);
        if (f === null) return UNKNOWN;
        for (const s of f) u.add(s);
        if (u.size > FACTOR_LIMIT) return UNKNOWN;
      }
      return { exact: null, factors: u };
    }
    case 'rep': {
      const b = analyze(n.body);
      // A body that matches nothing: `x*` matches only the empty string, `x+` nothing.
      if (isNothing(b)) return n.min === 0 ? { exact: new Set(['']), factors: null } : NOTHING;
      if (b.exact !== null && n.max !== Infinity && n.max <= 4) {
        // Small bounded repeat: enumerate.
        const all = new Set<string>();
        let pow = new Set(['']);
        let ok = true;
        for (let k = 0; k <= n.max; k++) {
          if (k >= n.min) for (const s of pow) all.add(s);
          if (k === n.max) break;
          if (pow.size * b.exact.size > EXACT_LIMIT) { ok = false; break; }
          pow = cross(pow, b.exact);
        }
        if (ok && all.size <= EXACT_LIMIT) return { exact: all, factors: null };
      }
      if (n.min === 0) return UNKNOWN;
      return { exact: null, factors: asFactors(b) };
    }
    case 'seq': {
      const r = seqParts(n.items);
      if (r === null) return NOTHING;
      if (r.exact !== null) return r.exact;
      let best: Set<string> | null = null;
      for (const c of r.candidates) best = better(best, c);
      return { exact: null, factors: best };
    }
  }
}

/**
 * A sequence's parts: its exact set (when the whole is exact and small), or
 * every factor set one of its parts requires (each holds for every match of
 * the sequence on its own).
 */
function seqParts(items: readonly PNode[]): { exact: Info | null; candidates: Set<string>[] } | null {
  let cur: Set<string> | null = new Set(['']);
  let allExact = true;
  const candidates: Set<string>[] = [];
  const flush = (): void => {
    if (cur === null) return;
    const f = asFactors({ exact: cur, factors: null });
    if (f !== null) candidates.push(f);
  };
  for (const item of items) {
    const i = analyze(item);
    if (isNothing(i)) return null;
    if (i.exact !== null && cur !== null && cur.size * i.exact.size <= EXACT_LIMIT) {
      cur = cross(cur, i.exact);
      continue;
    }
    allExact = false;
    flush();
    const f = asFactors(i);
    if (f !== null) candidates.push(f);
    cur = i.exact;
  }
  if (allExact && cur !== null) return { exact: { exact: cur, factors: null }, candidates: [] };
  flush();
  return { exact: null, candidates };
}

/** A factor set worth a lookup: no single letter or digit (those are in nearly every value). */
function worthLooking(f: readonly string[]): boolean {
  return !f.some((s) => s.length === 1 && /[a-z0-9]/.test(s));
}

/** Most factor sets a plain prefilter requires together. */
const PLAIN_SETS = 2;

/**
 * The cheapest factor sets worth a lookup (no single letter or digit) that
 * every match requires, at most PLAIN_SETS: each of the top-level sequence's
 * parts is required on its own, so a value must hit all of them; otherwise
 * the pattern's own set, if it is worth it.
 */
function usableFactorSets(ast: PNode, i: Info): string[][] {
  const found: [number, string[]][] = [];
  const r = ast.t === 'seq' ? seqParts(ast.items) : null;
  const candidates = r !== null && r.exact === null ? r.candidates : [asFactors(i)];
  const seen = new Set<string>();
  for (const c of candidates) {
    const f = finish(c);
    if (f === undefined || !worthLooking(f)) continue;
    const key = f.join('\u0100');
    if (seen.has(key)) continue;
    seen.add(key);
    found.push([cost(new Set(f)), f]);
  }
  found.sort((a, b) => a[0] - b[0]);
  return found.slice(0, PLAIN_SETS).map((x) => x[1]);
}

function finish(f: Set<string> | null): string[] | undefined {
  if (f === null || f.size === 0 || f.size > FACTOR_LIMIT) return undefined;
  const out = new Set<string>();
  for (const s of f) {
    if (s === '') return undefined;
    out.add(s.length > FACTOR_MAX_LEN ? s.slice(0, FACTOR_MAX_LEN) : s);
  }
  // A factor containing another is redundant (the shorter one is found whenever it is).
  const list = [...out].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const s of list) if (!kept.some((k) => s.includes(k))) kept.push(s);
  return kept;
}

/**
 * Factors of a JS source as regex.ts emits it (case-folded: lower-case ASCII).
 * Undefined when there is no usable set (the regex must always run).
 */
export function factorsOfSource(source: string): string[] | undefined {
  const ast = parseSource(source);
  if (ast === undefined) return undefined;
  const i = analyze(ast);
  if (i.exact !== null && i.exact.size === 0) return undefined; // matches nothing: leave it to the regex
  const f = finish(asFactors(i));
  return f !== undefined && worthLooking(f) ? f : undefined;
}

// ---------------------------------------------------------------------------
// Character clauses
//
// A second, weaker necessary condition for patterns with no usable literal
// (CRS's junk-tolerant command patterns spell `b["')\[\\]*...u...s...` so
// no literal longer than one byte is required): clauses, each a set of
// (folded) bytes, such that every match contains a byte of every clause.
// Order is ignored, so a value's byte-presence bitmap (256 bits) answers it.
//
// Soundness: a set node requires one of its members; a sequence requires
// what each item requires (the union of their clauses); an alternative
// a|b requires, for every clause A of a and B of b, A ∪ B (from
// (∧A) ∨ (∧B) ⇒ ∧(A ∨ B)); a repeat with min >= 1 requires what its body
// does; anything that may match empty (anchors, optional parts) or a class
// that is negated requires nothing. Dropping clauses only weakens the
// condition, so keeping the few most selective is sound.

/** Clauses kept per node. */
const CLAUSE_LIMIT = 8;
/** Clauses tested at run time (the most selective). */
const CLAUSES_KEPT = 6;
/** A clause more likely than this to be in a value is not worth testing. */
const CLAUSE_USEFUL = 0.6;

/** Rough chance that a short benign value contains the byte (folded). */
const BYTE_WEIGHT: Float64Array = (() => {
  const w = new Float64Array(256).fill(0.01);
  const letters = 'etaoinshrdlcumwfgypbvkjxqz';
  for (let i = 0; i < letters.length; i++) w[letters.charCodeAt(i)] = 0.5 * Math.pow(0.86, i);
  for (let c = 0x30; c <= 0x39; c++) w[c] = 0.1;
  w[0x20] = 0.3;
  for (const c of '-_.,/:@') w[c.charCodeAt(0)] = 0.1;
  return w;
})();

function clauseWeight(b: Uint32Array): number {
  let s = 0;
  for (let c = 0; c < 256; c++) if ((b[c >>> 5]! >>> (c & 31)) & 1) s += BYTE_WEIGHT[c]!;
  return s;
}

function bestClauses(list: Uint32Array[]): Uint32Array[] {
  const seen = new Set<string>();
  const scored: [number, Uint32Array][] = [];
  for (const c of list) {
    const k = c.join(',');
    if (seen.has(k)) continue;
    seen.add(k);
    scored.push([clauseWeight(c), c]);
  }
  scored.sort((a, b) => a[0] - b[0]);
  return scored.slice(0, CLAUSE_LIMIT).map((x) => x[1]);
}

function clausesOf(n: PNode): Uint32Array[] {
  switch (n.t) {
    case 'empty':
      return [];
    case 'set':
      // An empty class matches nothing; leave that to the regex.
      if (n.bits === undefined || n.bits.every((x) => x === 0)) return [];
      return [n.bits];
    case 'rep':
      return n.min >= 1 ? clausesOf(n.body) : [];
    case 'seq': {
      const all: Uint32Array[] = [];
      for (const it of n.items) for (const c of clausesOf(it)) all.push(c);
      return bestClauses(all);
    }
    case 'alt': {
      let acc: Uint32Array[] | undefined;
      for (const a of n.alts) {
        const b = clausesOf(a);
        if (b.length === 0) return [];
        if (acc === undefined) {
          acc = b;
          continue;
        }
        const out: Uint32Array[] = [];
        for (const x of acc) {
          for (const y of b) {
            const u = new Uint32Array(8);
            for (let k = 0; k < 8; k++) u[k] = x[k]! | y[k]!;
            out.push(u);
          }
        }
        acc = bestClauses(out);
      }
      return acc ?? [];
    }
  }
}

/**
 * Character clauses of a JS source as regex.ts emits it: every match contains,
 * for each clause, at least one byte of it (ASCII case-folded). Only clauses
 * selective enough to be worth a test; undefined when none is.
 */
export function clausesOfSource(source: string): Uint32Array[] | undefined {
  const ast = parseSource(source);
  if (ast === undefined) return undefined;
  const kept = clausesOf(ast)
    .filter((c) => clauseWeight(c) < CLAUSE_USEFUL)
    .slice(0, CLAUSES_KEPT);
  return kept.length === 0 ? undefined : kept;
}

/**
 * An analysis of a CRS/PCRE pattern's translated source, remembered per
 * pattern (at most 4,096, then forgotten together): undefined when the pattern
 * does not translate or the analysis finds nothing.
 */
function perPattern<T>(
  analyse: (source: string) => T | undefined,
  translate: (pattern: string) => string = (p) => translatePcre(p).testSource,
): (pattern: string) => T | undefined {
  const cache = new Map<string, T | null>();
  return (pattern) => {
    let f = cache.get(pattern);
    if (f === undefined) {
      try {
        f = analyse(translate(pattern)) ?? null;
      } catch {
        f = null;
      }
      if (cache.size >= 4096) cache.clear();
      cache.set(pattern, f);
    }
    return f ?? undefined;
  };
}

// ---------------------------------------------------------------------------
// Plain values
//
// Most benign values have none of the bytes CRS's patterns use as separators,
// quotes and shell syntax. CRS's command-injection patterns allow those bytes
// between the letters of a command (`w'g'e't`), so the full pattern has no
// literal longer than a letter and its prefilter cannot skip it; but on a
// value without them, the pattern matches exactly where its restriction to
// the other bytes does (regex.ts translateWithout), and that restriction
// spells the commands out: its factors and clauses are a prefilter for such
// values. The engine uses it when a value's byte-presence bitmap has none of
// PLAIN_EXCLUDED.

/** Bytes whose presence makes a value not plain: control bytes (but \t \n \r), `"$&'()*;<>[\]^`{|}~` and DEL. */
export const PLAIN_EXCLUDED: Uint8Array = (() => {
  const s = new Uint8Array(256);
  for (let c = 0; c < 0x20; c++) if (c !== 0x09 && c !== 0x0a && c !== 0x0d) s[c] = 1;
  for (const ch of '"$&\'()*;<>[\\]^`{|}~') s[ch.charCodeAt(0)] = 1;
  s[0x7f] = 1;
  return s;
})();

/** PLAIN_EXCLUDED as 8 words of 32 bits (the layout of bytePresence); folding changes nothing (no letters). */
export const PLAIN_MASK: Uint32Array = (() => {
  const m = new Uint32Array(8);
  for (let c = 0; c < 256; c++) if (PLAIN_EXCLUDED[c] === 1) m[c >>> 5]! |= 1 << (c & 31);
  return m;
})();

/** Whether a presence bitmap (see bytePresence) has no byte of PLAIN_EXCLUDED. */
export function isPlainPresence(p: Int32Array, at: number): boolean {
  const m = PLAIN_MASK;
  return ((p[at]! & m[0]!) | (p[at + 1]! & m[1]!) | (p[at + 2]! & m[2]!) | (p[at + 3]! & m[3]!) |
    (p[at + 4]! & m[4]!) | (p[at + 5]! & m[5]!) | (p[at + 6]! & m[6]!) | (p[at + 7]! & m[7]!)) === 0;
}

/** The prefilter of a pattern for plain values: `never` (no plain value matches), or factor sets (a value must hit each) and/or clauses. */
export interface PlainPrefilter {
  never: boolean;
  factorSets?: string[][];
  clauses?: Uint32Array[];
}

/** The plain prefilter of a restricted source (translateWithout), or undefined when it knows nothing. */
export function plainOfSource(source: string): PlainPrefilter | undefined {
  const ast = parseSource(source);
  if (ast === undefined) return undefined;
  const i = analyze(ast);
  const f = asFactors(i);
  if (f !== null && f.size === 0) return { never: true };
  const out: PlainPrefilter = { never: false };
  const sets = usableFactorSets(ast, i);
  if (sets.length !== 0) out.factorSets = sets;
  const clauses = clausesOfSource(source);
  if (clauses !== undefined) out.clauses = clauses;
  return out.factorSets === undefined && out.clauses === undefined ? undefined : out;
}

/** The plain prefilter of a CRS/PCRE `@rx` pattern, or undefined (see plainOfSource). */
export const rxPlain: (pattern: string) => PlainPrefilter | undefined = perPattern(plainOfSource, (p) => translateWithout(p, PLAIN_EXCLUDED));

/** Character clauses of a CRS/PCRE `@rx` pattern, or undefined (see clausesOfSource). */
export const rxClauses: (pattern: string) => Uint32Array[] | undefined = perPattern(clausesOfSource);

/**
 * Which bytes `value` contains, ASCII case-folded, as 8 words at `out[at..at+8)`.
 * Returns false when the value has a char above 0xff (clauses cannot judge it).
 */
export function bytePresence(value: string, out: Int32Array, at: number): boolean {
  let w0 = 0, w1 = 0, w2 = 0, w3 = 0, w4 = 0, w5 = 0, w6 = 0, w7 = 0;
  for (let i = 0; i < value.length; i++) {
    let c = value.charCodeAt(i);
    if (c > 0xff) return false;
    if (c >= 0x41 && c <= 0x5a) c += 32;
    const b = 1 << (c & 31);
    switch (c >>> 5) {
      case 0: w0 |= b; break;
      case 1: w1 |= b; break;
      case 2: w2 |= b; break;
      case 3: w3 |= b; break;
      case 4: w4 |= b; break;
      case 5: w5 |= b; break;
      case 6: w6 |= b; break;
      default: w7 |= b;
    }
  }
  out[at] = w0; out[at + 1] = w1; out[at + 2] = w2; out[at + 3] = w3;
  out[at + 4] = w4; out[at + 5] = w5; out[at + 6] = w6; out[at + 7] = w7;
  return true;
}

/** Whether a presence bitmap (see bytePresence) meets every clause. */
export function meetsClauses(clauses: readonly Uint32Array[], p: Int32Array, at: number): boolean {
  for (let i = 0; i < clauses.length; i++) {
    const c = clauses[i]!;
    if (
      ((p[at]! & c[0]!) | (p[at + 1]! & c[1]!) | (p[at + 2]! & c[2]!) | (p[at + 3]! & c[3]!) |
        (p[at + 4]! & c[4]!) | (p[at + 5]! & c[5]!) | (p[at + 6]! & c[6]!) | (p[at + 7]! & c[7]!)) === 0
    ) return false;
  }
  return true;
}

/** Test helper: does `value` meet the clauses? (True for a value no clause can judge.) */
export function valueMeetsClauses(value: string, clauses: readonly Uint32Array[]): boolean {
  const p = new Int32Array(8);
  if (!bytePresence(value, p, 0)) return true;
  return meetsClauses(clauses, p, 0);
}

/** Factors of a CRS/PCRE `@rx` pattern, or undefined (see factorsOfSource). */
export const rxFactors: (pattern: string) => string[] | undefined = perPattern(factorsOfSource);

/** Case-folded substring test: does `value` contain one of `factors` (lower-case)? */
export function containsFactor(value: string, factors: readonly string[]): boolean {
  const v = lowerAsciiAll(value);
  for (const f of factors) if (v.includes(f)) return true;
  return false;
}

function lowerAsciiAll(s: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      out += s.slice(from, i) + String.fromCharCode(c + 32);
      from = i + 1;
    }
  }
  return from === 0 ? s : out + s.slice(from);
}

// ---------------------------------------------------------------------------
// Many factor sets in one automaton

/**
 * One Aho-Corasick DFA over the factor sets of many patterns: scanIds(value)
 * lists the sets the value contains a factor of, or of a factor's first
 * MAX_FACTOR_CHARS chars (see FactorIndex).
 */
const NO_IDS: readonly number[] = Object.freeze([]);

/**
 * Factors are matched by their first this many chars. A value that contains
 * a factor contains its prefix, so a set the value hits is still hit: the
 * prefilter stays sound and only lets a little more through (CRS at
 * paranoia 1: 35,786 states, a 7.6 MB table, with whole factors; 18,058
 * states, 3.1 MB, with 8 chars), and a smaller table stays in the caches.
 */
export const MAX_FACTOR_CHARS = 8;

export class FactorIndex {
  readonly size: number;
  private readonly classOf = new Uint16Array(256);
  private readonly nClasses: number;
  private readonly delta: Uint16Array | Int32Array;
  /** outputs of state s: outIds[outStart[s] .. outStart[s+1]) (set ids). */
  private readonly outStart: Int32Array;
  private readonly outIds: Int32Array;
  /** Number of states of the DFA. */
  readonly states: number;
  /** Set in a `delta` entry whose target state has outputs (the state is the entry without it). */
  private readonly outBit: number;
  /** scanIds' marks of the sets seen so far (all 0 between calls). */
  private readonly seen: Uint8Array;
  /** scanIds' marks of the output states reached so far (all 0 between calls). */
  private readonly stateSeen: Uint8Array;
  /** scanIds' list of the output states reached, in order (grown when a value reaches more). */
  private reached = new Int32Array(64);

  constructor(sets: readonly (readonly string[])[]) {
    this.size = sets.length;
    this.seen = new Uint8Array(sets.length);
    // Byte classes: each byte used in a factor is its own class (folded), the rest share class 0.
    let nc = 1;
    const classOfFolded = new Int32Array(256).fill(-1);
    for (const set of sets) {
      for (const f of set) {
        for (let i = 0; i < f.length; i++) {
          const c = f.charCodeAt(i);
          if (c > 0xff) throw new Error('factor outside bytes');
          if (c >= 0x41 && c <= 0x5a) throw new Error('factors must be lower-case');
          if (i < MAX_FACTOR_CHARS && classOfFolded[c] < 0) classOfFolded[c] = nc++;
        }
      }
    }
    for (let c = 0; c < 256; c++) {
      const k = classOfFolded[fold(c)]!;
      this.classOf[c] = k < 0 ? 0 : k;
    }
    this.nClasses = nc;
    // Trie.
    const next: Map<number, number>[] = [new Map()];
    const out: number[][] = [[]];
    sets.forEach((set, id) => {
      for (const whole of set) {
        const f = whole.length > MAX_FACTOR_CHARS ? whole.slice(0, MAX_FACTOR_CHARS) : whole;
        let s = 0;
        for (let i = 0; i < f.length; i++) {
          const k = this.classOf[f.charCodeAt(i)]!;
          let t = next[s]!.get(k);
          if (t === undefined) {
            t = next.length;
            next.push(new Map());
            out.push([]);
            next[s]!.set(k, t);
          }
          s = t;
        }
        if (!out[s]!.includes(id)) out[s]!.push(id);
      }
    });
    const n = next.length;
    // A transition into a state with outputs carries the OUT bit (see scanIds): one array read per char.
    const narrow = n <= 0x8000;
    const delta = narrow ? new Uint16Array(n * nc) : new Int32Array(n * nc);
    this.outBit = narrow ? 0x8000 : 0x40000000;
    const failOf = new Int32Array(n);
    // BFS: complete the DFA and merge outputs along fail links.
    const queue: number[] = [];
    for (let k = 0; k < nc; k++) {
      const t = next[0]!.get(k);
      if (t !== undefined) {
        delta[k] = t;
        failOf[t] = 0;
        queue.push(t);
      }
    }
    for (let qi = 0; qi < queue.length; qi++) {
      const s = queue[qi]!;
      const f = failOf[s]!;
      for (const id of out[f]!) if (!out[s]!.includes(id)) out[s]!.push(id);
      for (let k = 0; k < nc; k++) {
        const t = next[s]!.get(k);
        if (t !== undefined) {
          delta[s * nc + k] = t;
          failOf[t] = delta[f * nc + k]!;
          queue.push(t);
        } else {
          delta[s * nc + k] = delta[f * nc + k]!;
        }
      }
    }
    this.delta = delta;
    const outStart = new Int32Array(n + 1);
    let total = 0;
    for (let s = 0; s < n; s++) {
      outStart[s] = total;
      total += out[s]!.length;
    }
    outStart[n] = total;
    const outIds = new Int32Array(total);
    const hasOut = new Uint8Array(n);
    for (let s = 0; s < n; s++) {
      outIds.set(out[s]!, outStart[s]!);
      if (out[s]!.length > 0) hasOut[s] = 1;
    }
    for (let i = 0; i < delta.length; i++) if (hasOut[delta[i]!] === 1) delta[i] = delta[i]! | this.outBit;
    this.outStart = outStart;
    this.outIds = outIds;
    this.states = n;
    this.stateSeen = new Uint8Array(n);
  }

  /** Bytes of the transition table. */
  get tableBytes(): number {
    return this.delta.byteLength;
  }

  /**
   * The ids of the sets `value` contains a factor of, each once (a shared
   * empty list when none, the usual case). Text reaches an output state at
   * about a quarter of its chars, mostly the same few states again, and a
   * state's output lists several sets (a 1.3 KB note: 326 times, 1,145 set
   * entries): the scan notes each output state once and lists their sets after it.
   */
  scanIds(value: string): readonly number[] {
    const classOf = this.classOf;
    const delta = this.delta;
    const nc = this.nClasses;
    const outBit = this.outBit;
    const mask = outBit - 1;
    const stateSeen = this.stateSeen;
    let reached = this.reached;
    let r = 0;
    let s = 0;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      s = delta[s * nc + (c > 0xff ? 0 : classOf[c]!)]!;
      if (s >= outBit) {
        s &= mask;
        if (stateSeen[s] === 0) {
          stateSeen[s] = 1;
          if (r === reached.length) {
            const grown = new Int32Array(r * 2);
            grown.set(reached);
            reached = this.reached = grown;
          }
          reached[r++] = s;
        }
      }
    }
    if (r === 0) return NO_IDS;
    const seen = this.seen;
    const outStart = this.outStart;
    const outIds = this.outIds;
    const ids: number[] = [];
    for (let k = 0; k < r; k++) {
      const st = reached[k]!;
      stateSeen[st] = 0;
      const end = outStart[st + 1]!;
      for (let j = outStart[st]!; j < end; j++) {
        const id = outIds[j]!;
        if (seen[id] === 1) continue;
        seen[id] = 1;
        ids.push(id);
      }
    }
    for (let k = 0; k < ids.length; k++) seen[ids[k]!] = 0;
    return ids;
  }
}

// ---------------------------------------------------------------------------
// Process-wide registry: one id per distinct factor set, one index over all

const setIds = new Map<string, number>();
const allSets: (readonly string[])[] = [];
let index: FactorIndex | undefined;

/** A stable id for a factor set (the same set always gets the same id). */
export function factorSetId(factors: readonly string[]): number {
  const key = factors.join('\u0100');
  let id = setIds.get(key);
  if (id === undefined) {
    id = allSets.length;
    allSets.push(factors);
    setIds.set(key, id);
    index = undefined;
  }
  return id;
}

/** The index over every factor set registered so far (rebuilt after new registrations). */
export function factorIndex(): FactorIndex {
  if (index === undefined) index = new FactorIndex(allSets);
  return index;
}
