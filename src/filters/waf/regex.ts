// CRS `@rx` patterns (PCRE syntax, no UTF mode) translated to JS RegExp and
// to RE2, matching byte strings (one char per byte) the way PCRE does, at a
// bounded cost per byte whatever the input.
//
// Linear-time strategy, decided by measurement (Node 20.20 / V8 11.3, 2 shared
// cores; 266 CRS v4.28 request-rule patterns after translation):
//
//   * Plain RegExp (irregexp, backtracking): `(a+)+$` takes 0.4 s at 24 chars
//     and 2 s at 26. CRS 932235 (PL1) on "\r\n" repeated is cubic: 50 -> 48 ms,
//     100 -> 189 ms, 200 -> 1.8 s; 932125/932230/932236/932239/932250/932370/
//     932380 and others behave the same. No bound at all.
//   * V8's linear engine alone (flag `l`): no backreferences, lookarounds, `i`
//     or `d` flag, and no bounded repeat with a replication factor above 16
//     (`x{1,255}`). Ordinary input: ~20,000 ns per test, 15-30x slower.
//   * V8's fallback (--enable-experimental-regexp-engine-on-excessive-
//     backtracks): irregexp as usual; after 50,000 backtracks in one exec the
//     exec is re-run on the linear engine. Ordinary input: same speed as plain
//     RegExp (600-1,500 ns per test here, within noise of plain). `(a+)+$`:
//     50,000 chars 60-90 ms, 500,000 chars 0.6-1 s. 932235 on CRLF x1,000 59 ms,
//     x10,000 0.8 s, x100,000 10 s: linear, but 20-35 us per byte per rule
//     for the biggest 932xxx patterns (18 such rules on 64 KB: 22 s in all).
//   * `re2` (npm 1.27.1): builds from source here (3.5 min), runs on Node 20,
//     hostile cases in ms (18 rules on 64 KB: 15 ms), but ordinary input is
//     3-6x slower than irregexp (JS string -> UTF-8 per call) and it is a
//     native addon.
//
//   * V8 with the fallback is not bounded either: a greedy loop over a class
//     backs off without counting backtracks, so one unanchored loop is
//     quadratic however the limit is set (`(\d+)-(\d+)` on 64 KiB of
//     digits: 4.6 s), and the fallback's linear engine is slow on big
//     patterns. Through the WAF (test/tmp-redos.ts, a form POST with one
//     value of repeated CRLF): 1 KiB 0.2 s, 8 KiB 1.1-2.3 s, 64 KiB 13-18 s.
//     1,000 values of 64 bytes of CRLF: 8.4 s; of 256 bytes: 13.8 s.
//   * re2-wasm 1.0.2 (RE2 compiled to WebAssembly, no native build): linear
//     (64 KiB of CRLF: 0.3-3 ms per pattern, 60 ms through all 68 that are
//     super-linear on V8; 64 KiB of random base64: 1.1 s through all 266,
//     V8 8.3 s), but
//     1,750 ns per call on ordinary 19-char values whatever the pattern,
//     where V8 takes 50 ns on average (20 ns for most patterns, ~1,000 ns for
//     the biggest 932xxx ones); its build compiles slowly (1-500 ms per CRS
//     pattern, 3-5 s for all 266) and has a fixed 16 MiB heap that aborts
//     when exhausted (all 266 patterns' programs do not fit in one).
//     Semantics: RE2 agrees with the V8 translation on every request pattern
//     (match, [0] and groups) over ~12,000 strings (CRS's ftw tests,
//     libinjection's lists, hostile runs).
//
// Chosen: both, by input length. Each pattern is translated twice (V8 as
// above; RE2: counted repeats kept, classes as ranges within \x00-\xff so
// that UTF-8 code points stand for bytes). V8 runs inputs of up to
// `v8MaxLength` chars and RE2 the longer ones. When the pattern is compiled,
// V8 is timed on runs of one char or a pair of chars (a fixed list plus one
// char of each class of bytes the pattern's sets tell apart, and their pairs:
// 50-860 strings) at 256, 64, 32, 16 and 8 chars; v8MaxLength is the longest
// of these at which every run stays within about twice what an RE2 call
// costs at that length (PROBE_BUDGET_US), or 0. So a value costs at most
// about two RE2 calls whatever its content, and short values (most of them)
// keep V8's speed. CRS v4.28's 266 request patterns: 198 get 256, 44 get 64,
// 6 get 32, 7 get 16, 8 get 8 and 3 (932235, 932236, 932239) get 0; the
// probing costs ~0.3 s of CPU at load. RE2 programs are compiled at first
// use (or by warmUpRe2) and spread over several instances of the module.
// Measured after (same machine): 64 KiB of CRLF through the WAF 40-60 ms
// (1 KiB 1 ms, 8 KiB 11 ms), 1,000 values of 8-256 bytes of CRLF, spaces,
// `${` or quotes 20-170 ms; ordinary traffic through the WAF (CPU per
// request, in-process): GET with a 4-field query +9-13 %, POST of a 2 KiB
// JSON order +70-80 % (600 RE2 calls on values longer than the 932xxx
// rules' v8MaxLength).
//
// The V8 regexes still run with the fallback (src/config/linear-regex.ts),
// and every V8 translation stays inside the linear engine's subset
// (case-insensitivity expanded into classes by hand, large bounded repeats
// unrolled, no `d` flag), checked with the `l` flag at compile time; a
// pattern that cannot be made linear is refused with UnsupportedFeature. If
// RE2 refuses a pattern (none of CRS's) or cannot take an input (over
// RE2_MAX_INPUT), V8 runs it.

// PCRE semantics reproduced: `.` excludes only \n; `\s` is [\t\n\v\f\r ]
// (never \xa0); `\w`, `\d`, `\b` ASCII; `(?i)` folds ASCII letters only (JS `i`
// would also fold latin1 letters such as \xe0/\xc0); `$` and `\Z` match at
// the end or before a final \n; `\A`, `\z`; inline flags i, s, x, U scoped
// to their group; `\x{hh}`, `\Q..\E`, POSIX classes; `{,n}` is literal.

import { createRequire } from 'node:module';
import { BACKTRACKS_BEFORE_FALLBACK, ensureLinearRegexEngine } from '../../config/linear-regex.js';
import { UnsupportedFeature } from './types.js';

export { BACKTRACKS_BEFORE_FALLBACK, ensureLinearRegexEngine };

// Before any RegExp below is created: V8 fixes a regex's backtrack limit when
// it compiles it.
ensureLinearRegexEngine();

// ---------------------------------------------------------------------------
// Byte sets

type ByteSet = Uint8Array; // 256 entries, 0 or 1

function newSet(): ByteSet {
  return new Uint8Array(256);
}
function setRange(s: ByteSet, lo: number, hi: number): void {
  for (let c = lo; c <= hi; c++) s[c] = 1;
}
function setOf(...chars: number[]): ByteSet {
  const s = newSet();
  for (const c of chars) s[c] = 1;
  return s;
}
function unionInto(dst: ByteSet, src: ByteSet): void {
  for (let c = 0; c < 256; c++) if (src[c]) dst[c] = 1;
}
function negate(s: ByteSet): ByteSet {
  const r = newSet();
  for (let c = 0; c < 256; c++) r[c] = s[c] ? 0 : 1;
  return r;
}
function foldAscii(s: ByteSet): ByteSet {
  const r = Uint8Array.from(s);
  for (let c = 0x41; c <= 0x5a; c++) {
    if (s[c] || s[c + 32]) r[c] = r[c + 32] = 1;
  }
  return r;
}

const DIGIT = (() => { const s = newSet(); setRange(s, 0x30, 0x39); return s; })();
const WORD = (() => {
  const s = newSet();
  setRange(s, 0x30, 0x39); setRange(s, 0x41, 0x5a); setRange(s, 0x61, 0x7a); s[0x5f] = 1;
  return s;
})();
// PCRE: space, \t \n \v \f \r. Never \xa0 in the C locale.
const SPACE = setOf(0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20);
const HSPACE = setOf(0x09, 0x20, 0xa0);
const VSPACE = setOf(0x0a, 0x0b, 0x0c, 0x0d, 0x85);

const POSIX: Record<string, ByteSet> = (() => {
  const mk = (f: (c: number) => boolean): ByteSet => {
    const s = newSet();
    for (let c = 0; c < 256; c++) if (f(c)) s[c] = 1;
    return s;
  };
  const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
  const isUpper = (c: number) => c >= 0x41 && c <= 0x5a;
  const isLower = (c: number) => c >= 0x61 && c <= 0x7a;
  const isAlpha = (c: number) => isUpper(c) || isLower(c);
  const isGraph = (c: number) => c >= 0x21 && c <= 0x7e;
  return {
    alnum: mk((c) => isAlpha(c) || isDigit(c)),
    alpha: mk(isAlpha),
    ascii: mk((c) => c < 0x80),
    blank: mk((c) => c === 0x20 || c === 0x09),
    cntrl: mk((c) => c < 0x20 || c === 0x7f),
    digit: mk(isDigit),
    graph: mk(isGraph),
    lower: mk(isLower),
    print: mk((c) => c >= 0x20 && c <= 0x7e),
    punct: mk((c) => isGraph(c) && !isAlpha(c) && !isDigit(c)),
    space: SPACE,
    upper: mk(isUpper),
    word: WORD,
    xdigit: mk((c) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)),
  };
})();

// ---------------------------------------------------------------------------
// AST

type Node =
  | { t: 'set'; set: ByteSet }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; alts: Node[] }
  | { t: 'group'; cap: number; body: Node } // cap: 1-based PCRE group number
  | { t: 'rep'; body: Node; min: number; max: number; lazy: boolean }
  | { t: 'bos' } // ^ \A
  | { t: 'eos' } // \z
  | { t: 'eol' } // $ \Z: end, or before a final \n
  | { t: 'wb'; neg: boolean };

interface Flags {
  i: boolean;
  s: boolean;
  x: boolean;
  m: boolean;
  U: boolean;
}

const HEX = /^[0-9a-fA-F]$/;

class Parser {
  private pos = 0;
  groups = 0;

  constructor(private readonly src: string) {}

  private fail(msg: string): never {
    throw new UnsupportedFeature('@rx', `${msg} at offset ${this.pos} in ${JSON.stringify(this.src.slice(0, 120))}`);
  }

  parse(): Node {
    const flags: Flags = { i: false, s: false, x: false, m: false, U: false };
    if (this.src.startsWith('(*')) this.fail('PCRE start-of-pattern verbs are not supported');
    const n = this.parseAlt(flags);
    if (this.pos < this.src.length) this.fail('unbalanced )');
    return n;
  }

  // Alternation inside one group; inline flag changes persist across later
  // alternatives of the same group, as in PCRE.
  private parseAlt(flags: Flags): Node {
    const alts: Node[] = [];
    let items: Node[] = [];
    const src = this.src;
    while (this.pos < src.length) {
      const ch = src[this.pos];
      if (ch === ')') break;
      if (ch === '|') {
        this.pos++;
        alts.push(seq(items));
        items = [];
        continue;
      }
      if (flags.x && (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v')) {
        this.pos++;
        continue;
      }
      if (flags.x && ch === '#') {
        while (this.pos < src.length && src[this.pos] !== '\n') this.pos++;
        continue;
      }
      const atom = this.parseAtom(flags);
      if (atom === null) continue; // flag setting or comment
      items.push(this.parseQuantifier(atom, flags));
    }
    alts.push(seq(items));
    return alts.length === 1 ? alts[0] : { t: 'alt', alts };
  }

  private parseQuantifier(atom: Node, flags: Flags): Node {
    const src = this.src;
    if (flags.x) {
      while (this.pos < src.length && /[ \t\n\r\f\v]/.test(src[this.pos])) this.pos++;
    }
    const q = this.readQuantifier();
    if (!q) return atom;
    let lazy = flags.U;
    if (src[this.pos] === '?') { lazy = !lazy; this.pos++; }
    else if (src[this.pos] === '+') this.fail('possessive quantifiers are not supported');
    // PCRE rejects `a**` and `a{2}{3}`.
    const save = this.pos;
    if (this.readQuantifier()) { this.pos = save; this.fail('nothing to repeat'); }
    // A repeated assertion is the assertion once, or nothing.
    if (isAssertion(atom)) return q.min === 0 ? seq([]) : atom;
    return { t: 'rep', body: atom, min: q.min, max: q.max, lazy };
  }

  // Reads `*`, `+`, `?` or a valid `{n}`, `{n,}`, `{n,m}`; anything else
  // (including `{,m}`) is not a quantifier and is left for the atom parser.
  private readQuantifier(): { min: number; max: number } | null {
    const src = this.src;
    const ch = src[this.pos];
    if (ch === '*') { this.pos++; return { min: 0, max: Infinity }; }
    if (ch === '+') { this.pos++; return { min: 1, max: Infinity }; }
    if (ch === '?') { this.pos++; return { min: 0, max: 1 }; }
    if (ch !== '{') return null;
    const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(src.slice(this.pos, this.pos + 24));
    if (!m) return null;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (max < min) this.fail('numbers out of order in {} quantifier');
    if (min > 65535 || (max !== Infinity && max > 65535)) this.fail('number too big in {} quantifier');
    this.pos += m[0].length;
    return { min, max };
  }

  private parseAtom(flags: Flags): Node | null {
    const src = this.src;
    const ch = src[this.pos];
    switch (ch) {
      case '(':
        return this.parseGroup(flags);
      case '[':
        return this.parseClass(flags);
      case '.':
        this.pos++;
        return { t: 'set', set: flags.s ? negate(newSet()) : negate(setOf(0x0a)) };
      case '^':
        this.pos++;
        if (flags.m) this.fail('multiline ^ is not supported');
        return { t: 'bos' };
      case '$':
        this.pos++;
        if (flags.m) this.fail('multiline $ is not supported');
        return { t: 'eol' };
      case '\\':
        return this.parseEscape(flags);
      case '*':
      case '+':
      case '?':
        return this.fail('nothing to repeat');
      default: {
        this.pos++;
        if (ch === '{' && /^\{\d+(,\d*)?\}/.test(src.slice(this.pos - 1, this.pos + 23))) this.fail('nothing to repeat');
        return lit(ch.charCodeAt(0), flags);
      }
    }
  }

  private parseGroup(flags: Flags): Node | null {
    const src = this.src;
    this.pos++; // (
    if (src[this.pos] === '*') this.fail('backtracking control verbs are not supported');
    if (src[this.pos] !== '?') return this.groupBody(flags, ++this.groups);
    this.pos++; // ?
    const c = src[this.pos];
    if (c === ':') { this.pos++; return this.groupBody(flags, 0); }
    if (c === '#') {
      const end = src.indexOf(')', this.pos);
      if (end < 0) this.fail('missing ) after comment');
      this.pos = end + 1;
      return null;
    }
    if (c === '=' || c === '!') this.fail('lookahead cannot run in linear time');
    if (c === '<' && (src[this.pos + 1] === '=' || src[this.pos + 1] === '!')) this.fail('lookbehind cannot run in linear time');
    if (c === '>') this.fail('atomic groups are not supported');
    if (c === '|') this.fail('branch reset groups are not supported');
    if (c === '(') this.fail('conditional groups are not supported');
    if (c === 'R' || c === '&' || /[0-9+-]/.test(c) && /^[+-]?\d+\)/.test(src.slice(this.pos, this.pos + 80))) this.fail('recursion is not supported');
    if (c === 'P' && (src[this.pos + 1] === '=' || src[this.pos + 1] === '>')) this.fail('named backreferences are not supported');
    const named = /^(?:P?<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)')/.exec(src.slice(this.pos, this.pos + 80));
    if (named) {
      this.pos += named[0].length;
      return this.groupBody(flags, ++this.groups);
    }
    // Inline flags: (?imsxU-imsxU) or (?imsxU-imsxU:...) or (?^...)
    const m = /^(\^?)([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(src.slice(this.pos, this.pos + 80));
    if (!m) this.fail('unrecognised group syntax');
    const target: Flags = m[4] === ':' ? { ...flags } : flags;
    if (m[1]) { target.i = target.s = target.x = target.m = target.U = false; }
    const apply = (letters: string, on: boolean) => {
      for (const f of letters) {
        if (f === 'i' || f === 's' || f === 'x' || f === 'm' || f === 'U') target[f] = on;
        else if (f === 'J' || f === 'n') this.fail(`inline flag ${f} is not supported`);
        else this.fail(`unknown inline flag ${f}`);
      }
    };
    apply(m[2], true);
    if (m[3] !== undefined) apply(m[3], false);
    this.pos += m[0].length;
    if (m[4] === ')') return null; // applies to the rest of the enclosing group
    return this.groupBody(target, 0, true);
  }

  private groupBody(flags: Flags, cap: number, flagsAlreadyCopied = false): Node {
    // Flag changes inside a group end with it.
    const inner: Flags = flagsAlreadyCopied ? flags : { ...flags };
    const body = this.parseAlt(inner);
    if (this.src[this.pos] !== ')') this.fail('missing )');
    this.pos++;
    return cap ? { t: 'group', cap, body } : body;
  }

  // Reads one escape after `\`; returns a byte or a set, for use inside and
  // outside classes. `inClass` changes \b (backspace) and rejects assertions.
  private escapeValue(inClass: boolean): number | ByteSet | 'assert' {
    const src = this.src;
    const c = src[this.pos];
    if (c === undefined) this.fail('\\ at end of pattern');
    this.pos++;
    switch (c) {
      case 'd': return DIGIT;
      case 'D': return negate(DIGIT);
      case 'w': return WORD;
      case 'W': return negate(WORD);
      case 's': return SPACE;
      case 'S': return negate(SPACE);
      case 'h': return HSPACE;
      case 'H': return negate(HSPACE);
      case 'v': return VSPACE;
      case 'V': return negate(VSPACE);
      case 'N': if (inClass) this.fail('\\N in a class'); return negate(setOf(0x0a));
      case 'C': if (inClass) this.fail('\\C in a class'); return negate(newSet());
      case 'n': return 0x0a;
      case 'r': return 0x0d;
      case 't': return 0x09;
      case 'f': return 0x0c;
      case 'e': return 0x1b;
      case 'a': return 0x07;
      case 'b': if (inClass) return 0x08; this.pos--; return 'assert';
      case 'c': {
        const x = src[this.pos++];
        if (x === undefined) this.fail('\\c at end of pattern');
        return x.toUpperCase().charCodeAt(0) ^ 0x40;
      }
      case 'x': {
        if (src[this.pos] === '{') {
          const end = src.indexOf('}', this.pos);
          const hex = end < 0 ? '' : src.slice(this.pos + 1, end);
          if (!/^[0-9a-fA-F]+$/.test(hex)) this.fail('malformed \\x{...}');
          const v = parseInt(hex, 16);
          if (v > 0xff) this.fail('character value in \\x{} too large without UTF mode');
          this.pos = end + 1;
          return v;
        }
        let hex = '';
        while (hex.length < 2 && HEX.test(src[this.pos] ?? '')) hex += src[this.pos++];
        return hex ? parseInt(hex, 16) : 0;
      }
      case 'o': {
        const m = /^\{([0-7]+)\}/.exec(src.slice(this.pos, this.pos + 80));
        if (!m) this.fail('malformed \\o{...}');
        const v = parseInt(m[1], 8);
        if (v > 0xff) this.fail('octal value too large without UTF mode');
        this.pos += m[0].length;
        return v;
      }
      case '0': {
        let oct = '0';
        while (oct.length < 3 && /[0-7]/.test(src[this.pos] ?? '')) oct += src[this.pos++];
        return parseInt(oct, 8) & 0xff;
      }
      default:
        break;
    }
    if (c >= '1' && c <= '9') {
      // A backreference unless it can only be octal (PCRE's rule).
      const m = /^\d*/.exec(src.slice(this.pos, this.pos + 80))!;
      const num = Number(c + m[0]);
      if (inClass || (num >= 10 && num > this.groups)) {
        this.pos--;
        const oct = /^[0-7]{1,3}/.exec(src.slice(this.pos, this.pos + 80));
        if (!oct) {
          // \8 or \9 with no such group: the digit itself.
          this.pos++;
          return c.charCodeAt(0);
        }
        this.pos += oct[0].length;
        return parseInt(oct[0], 8) & 0xff;
      }
      this.fail('backreferences cannot run in linear time');
    }
    if (/[A-Za-z]/.test(c)) {
      if (!inClass && 'AzZBbGK'.includes(c)) { this.pos--; return 'assert'; }
      if ('gk'.includes(c)) this.fail('backreferences cannot run in linear time');
      if (c === 'R') { if (inClass) this.fail('\\R in a class'); this.pos--; return 'assert'; }
      this.fail(`unsupported escape \\${c}`);
    }
    return c.charCodeAt(0); // escaped punctuation is literal
  }

  private parseEscape(flags: Flags): Node | null {
    const src = this.src;
    this.pos++; // backslash
    const c = src[this.pos];
    if (c === 'Q') {
      this.pos++;
      let end = src.indexOf('\\E', this.pos);
      if (end < 0) end = src.length;
      const text = src.slice(this.pos, end);
      this.pos = Math.min(src.length, end + 2);
      return seq([...text].map((t) => lit(t.charCodeAt(0), flags)));
    }
    if (c === 'E') { this.pos++; return null; }
    const v = this.escapeValue(false);
    if (v === 'assert') {
      const a = src[this.pos++];
      switch (a) {
        case 'b': return { t: 'wb', neg: false };
        case 'B': return { t: 'wb', neg: true };
        case 'A': return { t: 'bos' };
        case 'z': return { t: 'eos' };
        case 'Z': return { t: 'eol' };
        case 'R': return { t: 'alt', alts: [seq([{ t: 'set', set: setOf(0x0d) }, { t: 'set', set: setOf(0x0a) }]), { t: 'set', set: VSPACE }] };
        default: this.fail(`\\${a} is not supported`);
      }
    }
    if (typeof v === 'number') return lit(v, flags);
    return { t: 'set', set: flags.i ? foldAscii(v) : v };
  }

  private parseClass(flags: Flags): Node {
    const src = this.src;
    this.pos++; // [
    let neg = false;
    if (src[this.pos] === '^') { neg = true; this.pos++; }
    const set = newSet();
    let first = true;
    for (;;) {
      if (this.pos >= src.length) this.fail('missing terminating ] for character class');
      let ch = src[this.pos];
      if (ch === ']' && !first) { this.pos++; break; }
      first = false;
      if (ch === '[' && /^\[:\^?[a-z]+:\]/.test(src.slice(this.pos, this.pos + 80))) {
        const m = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(this.pos, this.pos + 80))!;
        const cls = POSIX[m[2]];
        if (!cls) this.fail(`unknown POSIX class ${m[2]}`);
        unionInto(set, m[1] ? negate(cls) : cls);
        this.pos += m[0].length;
        continue;
      }
      if (ch === '[' && /^\[[.=]/.test(src.slice(this.pos, this.pos + 80))) this.fail('POSIX collating elements are not supported');
      if (ch === '\\' && src[this.pos + 1] === 'Q') {
        this.pos += 2;
        let end = src.indexOf('\\E', this.pos);
        if (end < 0) end = src.length;
        for (const t of src.slice(this.pos, end)) set[t.charCodeAt(0)] = 1;
        this.pos = Math.min(src.length, end + 2);
        continue;
      }
      if (ch === '\\' && src[this.pos + 1] === 'E') { this.pos += 2; continue; }
      let v: number | ByteSet;
      if (ch === '\\') {
        this.pos++;
        const e = this.escapeValue(true);
        if (e === 'assert') this.fail('assertion inside a class');
        v = e;
      } else {
        this.pos++;
        v = ch.charCodeAt(0);
      }
      if (typeof v !== 'number') {
        unionInto(set, v);
        continue;
      }
      // Range?
      ch = src[this.pos];
      if (ch === '-' && src[this.pos + 1] !== undefined && src[this.pos + 1] !== ']') {
        const save = this.pos;
        this.pos++;
        let hi: number | ByteSet | 'assert';
        const hc = src[this.pos];
        if (hc === '[' && /^\[:\^?[a-z]+:\]/.test(src.slice(this.pos, this.pos + 80))) {
          // `a-[:digit:]`: the hyphen is literal.
          this.pos = save;
          set[v] = 1;
          continue;
        }
        if (hc === '\\') {
          this.pos++;
          hi = this.escapeValue(true);
          if (hi === 'assert') this.fail('assertion inside a class');
        } else {
          this.pos++;
          hi = hc.charCodeAt(0);
        }
        if (typeof hi !== 'number') {
          // `a-\d`: hyphen literal.
          set[v] = 1;
          set[0x2d] = 1;
          unionInto(set, hi);
          continue;
        }
        if (hi < v) this.fail('range out of order in character class');
        setRange(set, v, hi);
        continue;
      }
      set[v] = 1;
    }
    const folded = flags.i ? foldAscii(set) : set;
    return { t: 'set', set: neg ? negate(folded) : folded };
  }
}

// Literal sets are shared (one per byte and case mode) so their emitted form
// is computed once; sets are never mutated after parsing.
const litCache: Array<Node | undefined> = [];
function lit(c: number, flags: Flags): Node {
  const key = flags.i ? c + 256 : c;
  let n = litCache[key];
  if (!n) {
    const s = setOf(c);
    n = litCache[key] = { t: 'set', set: flags.i ? foldAscii(s) : s };
  }
  return n;
}

function seq(items: Node[]): Node {
  return items.length === 1 ? items[0] : { t: 'seq', items };
}

function isAssertion(n: Node): boolean {
  return n.t === 'bos' || n.t === 'eos' || n.t === 'eol' || n.t === 'wb';
}

// ---------------------------------------------------------------------------
// Emission

function hex2(c: number): string {
  return '\\x' + c.toString(16).padStart(2, '0');
}

function charOut(c: number): string {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f) {
    return String.fromCharCode(c);
  }
  return hex2(c);
}

function rangesOf(s: ByteSet): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let c = 0;
  while (c < 256) {
    if (!s[c]) { c++; continue; }
    const lo = c;
    while (c < 256 && s[c]) c++;
    out.push([lo, c - 1]);
  }
  return out;
}

function classBody(ranges: Array<[number, number]>): string {
  let out = '';
  for (const [lo, hi] of ranges) {
    if (lo === hi) out += charOut(lo);
    else if (hi === lo + 1) out += charOut(lo) + charOut(hi);
    else out += charOut(lo) + '-' + charOut(hi);
  }
  return out;
}

const emitted = new WeakMap<ByteSet, string>();
const emittedRe2 = new WeakMap<ByteSet, string>();
function emitSet(s: ByteSet, re2: boolean): string {
  const cache = re2 ? emittedRe2 : emitted;
  let out = cache.get(s);
  if (out === undefined) {
    out = re2 ? emitSetRe2(s) : emitSetUncached(s);
    cache.set(s, out);
  }
  return out;
}

// RE2 matches UTF-8 (the input's chars are code points <= 0xff): a class is
// written as its ranges within \x00-\xff, never negated (a negated class
// would cover U+0100-U+10FFFF too and compile to a much larger program).
// RE2 has no `[^]` nor `[]`.
function emitSetRe2(s: ByteSet): string {
  let count = 0;
  for (let c = 0; c < 256; c++) count += s[c];
  if (count === 0) return '[^\\x00-\\x{10ffff}]';
  if (count === 1) return charOut(s.indexOf(1));
  return '[' + classBody(rangesOf(s)) + ']';
}

function emitSetUncached(s: ByteSet): string {
  let count = 0;
  for (let c = 0; c < 256; c++) count += s[c];
  if (count === 0) return '[]';
  if (count === 1) return charOut(s.indexOf(1));
  if (count === 256) return '[^]';
  const pos = rangesOf(s);
  const neg = rangesOf(negate(s));
  // A negated class also matches chars above \xff; byte strings have none.
  if (count > 128 || neg.length < pos.length) return '[^' + classBody(neg) + ']';
  return '[' + classBody(pos) + ']';
}

/** Largest product of nested bounded repeats V8's linear engine accepts. */
const MAX_REPLICATION = 16;
/** RE2's limit on a counted repeat (it expands them itself). */
const RE2_MAX_REPLICATION = 1000;

interface EmitState {
  /** Emit RE2 syntax (no `[^]`/`[]`; counted repeats up to 1000 kept). */
  re2: boolean;
  withCaptures: boolean;
  groupCount: number; // JS groups emitted so far
  capMap: Map<number, number[]>; // PCRE group -> its JS groups (one per unrolled copy)
  markers: number[]; // JS groups that mark a `$` which consumed a final \n
  /** For each marker, the PCRE groups around it (their text then ends with that \n). */
  markerEnclosers: Map<number, number[]>;
  openCaps: number[];
}

function repFactor(min: number, max: number): number {
  return max === Infinity ? min + 1 : max;
}

function emit(n: Node, st: EmitState, factor: number, inUnroll: boolean): string {
  switch (n.t) {
    case 'set':
      return emitSet(n.set, st.re2);
    case 'seq':
      return n.items.map((i) => emitAtomInSeq(i, st, factor, inUnroll)).join('');
    case 'alt':
      return n.alts.map((a) => emit(a, st, factor, inUnroll)).join('|');
    case 'group': {
      if (!st.withCaptures) return '(?:' + emit(n.body, st, factor, inUnroll) + ')';
      // Each unrolled copy gets its own JS group; exec reports the last one
      // that took part, which is PCRE's "last iteration" value.
      const idx = ++st.groupCount;
      const list = st.capMap.get(n.cap);
      if (list) list.push(idx);
      else st.capMap.set(n.cap, [idx]);
      st.openCaps.push(n.cap);
      const body = emit(n.body, st, factor, inUnroll);
      st.openCaps.pop();
      return '(' + body + ')';
    }
    case 'rep': {
      const f = repFactor(n.min, n.max);
      const lazy = n.lazy ? '?' : '';
      if (n.min === 0 && n.max === Infinity) return emitAtom(n.body, st, factor, inUnroll) + '*' + lazy;
      if (n.min === 1 && n.max === Infinity) return emitAtom(n.body, st, factor * 2, inUnroll) + '+' + lazy;
      if (n.min === 0 && n.max === 1) return emitAtom(n.body, st, factor, inUnroll) + '?' + lazy;
      if (factor * f <= (st.re2 ? RE2_MAX_REPLICATION : MAX_REPLICATION)) {
        const q = n.max === Infinity ? `{${n.min},}` : n.min === n.max ? `{${n.min}}` : `{${n.min},${n.max}}`;
        return emitAtom(n.body, st, factor * f, inUnroll) + q + lazy;
      }
      // Unroll: min copies, then either `x*` or nested optionals
      // (x(x(x)?)?)? which keep the greedy/lazy order of x{0,k}.
      let out = '';
      for (let k = 0; k < n.min; k++) out += emitAtom(n.body, st, factor, true);
      if (n.max === Infinity) return out + emitAtom(n.body, st, factor, true) + '*' + lazy;
      let tail = '';
      for (let k = n.max - n.min; k > 0; k--) {
        tail = '(?:' + emit(n.body, st, factor, true) + tail + ')?' + lazy;
      }
      return out + tail;
    }
    case 'bos':
      return '^';
    case 'eos':
      return '$';
    case 'eol':
      if (!st.withCaptures) return '(?:\\n?$)';
      st.markers.push(++st.groupCount);
      st.markerEnclosers.set(st.groupCount, [...st.openCaps]);
      return '(\\n)?$';
    case 'wb':
      return n.neg ? '\\B' : '\\b';
  }
}

function emitAtomInSeq(n: Node, st: EmitState, factor: number, inUnroll: boolean): string {
  return n.t === 'alt' ? '(?:' + emit(n, st, factor, inUnroll) + ')' : emit(n, st, factor, inUnroll);
}

function emitAtom(n: Node, st: EmitState, factor: number, inUnroll: boolean): string {
  if (n.t === 'set' || n.t === 'group') return emit(n, st, factor, inUnroll);
  if (n.t === 'seq' && n.items.length === 0) return '(?:)';
  return '(?:' + emit(n, st, factor, inUnroll) + ')';
}

// ---------------------------------------------------------------------------
// Public API

export interface Translation {
  /** Source for matching only: no capture groups. */
  testSource: string;
  /** Source with captures and the `$` markers. */
  execSource: string;
  /** Number of capture groups in the PCRE pattern. */
  groups: number;
  capMap: ReadonlyMap<number, readonly number[]>;
  markers: readonly number[];
  markerEnclosers: ReadonlyMap<number, readonly number[]>;
  /** The same for RE2 (counted repeats kept, so other group numbers). */
  re2: ExecTranslation;
}

export interface ExecTranslation {
  testSource: string;
  execSource: string;
  capMap: ReadonlyMap<number, readonly number[]>;
  markers: readonly number[];
  markerEnclosers: ReadonlyMap<number, readonly number[]>;
}

function emitForms(ast: Node, re2: boolean): ExecTranslation {
  const testSt: EmitState = { re2, withCaptures: false, groupCount: 0, capMap: new Map(), markers: [], markerEnclosers: new Map(), openCaps: [] };
  const testSource = emit(ast, testSt, 1, false);
  const execSt: EmitState = { re2, withCaptures: true, groupCount: 0, capMap: new Map(), markers: [], markerEnclosers: new Map(), openCaps: [] };
  const execSource = emit(ast, execSt, 1, false);
  return { testSource, execSource, capMap: execSt.capMap, markers: execSt.markers, markerEnclosers: execSt.markerEnclosers };
}

/** Translates a PCRE pattern; throws UnsupportedFeature for what it cannot express. */
export function translatePcre(pattern: string): Translation {
  const p = new Parser(pattern);
  const ast = p.parse();
  const v8 = emitForms(ast, false);
  return { ...v8, groups: p.groups, re2: emitForms(ast, true) };
}

/**
 * The V8 test source of `pattern` for strings with no byte of `excluded`
 * (256 entries, 1 = excluded): every class loses those bytes. On a string
 * without them it matches exactly where the pattern does (a match only ever
 * reads the string's own bytes through the classes; assertions are
 * unchanged), so its literal factors hold for such strings even when the
 * full pattern has none (CRS's junk-tolerant command patterns).
 */
export function translateWithout(pattern: string, excluded: Uint8Array): string {
  const ast = new Parser(pattern).parse();
  const sets = new Map<ByteSet, ByteSet>();
  const restrict = (n: Node): Node => {
    switch (n.t) {
      case 'set': {
        let r = sets.get(n.set);
        if (r === undefined) {
          r = newSet();
          for (let c = 0; c < 256; c++) r[c] = n.set[c]! & (excluded[c]! ^ 1);
          sets.set(n.set, r);
        }
        return { t: 'set', set: r };
      }
      case 'seq':
        return { t: 'seq', items: n.items.map(restrict) };
      case 'alt':
        return { t: 'alt', alts: n.alts.map(restrict) };
      case 'group':
        return { t: 'group', cap: n.cap, body: restrict(n.body) };
      case 'rep':
        return { ...n, body: restrict(n.body) };
      default:
        return n;
    }
  };
  return emitForms(restrict(ast), false).testSource;
}

export interface CompiledRx {
  test(input: string): boolean;
  /** [0] the matched text, [1..] the PCRE groups ('' when a group did not take part). */
  exec(input: string): string[] | undefined;
}

function linearCheck(source: string, pattern: string): void {
  try {
    new RegExp(source, 'l');
  } catch (e) {
    throw new UnsupportedFeature('@rx', `pattern cannot run in linear time (${(e as Error).message.slice(0, 200)}): ${JSON.stringify(pattern.slice(0, 120))}`);
  }
}

// ---------------------------------------------------------------------------
// RE2 (re2-wasm): Google's RE2 compiled to WebAssembly, linear in the input.
//
// The package's build has a fixed 16 MiB heap (no memory growth; about
// 5 MiB of it is the wasm stack and data) and aborts on an allocation it
// cannot satisfy, which leaves that instance unusable. So programs are
// spread over several instances of the module (each a fresh evaluation of
// its glue code with its own heap), a new instance is started once the
// current one's heap passes RE2_FILL_MARK, and an instance that aborts (heap
// exhausted by DFA caches or a huge input) is dropped: its programs are
// compiled again, lazily, in a fresh instance and the call is retried once.
// If RE2 still cannot answer, the caller falls back to V8.

interface WasmMatch {
  match: string;
  index: number;
  groups: ArrayLike<string | null | undefined>;
}

interface WasmRe2 {
  ok(): boolean;
  error(): string;
  match(input: string, start: number, captures: boolean): WasmMatch;
  delete(): void;
}

interface Re2Module {
  WrappedRE2: new (pattern: string, ignoreCase: boolean, multiline: boolean, dotAll: boolean) => WasmRe2;
  _malloc(size: number): number;
  _free(ptr: number): void;
}

/**
 * A new instance is started once the current one's heap top passes this (of
 * 16 MiB): the rest is for DFA caches and the input, which is copied in as
 * UTF-8 (up to 2 bytes a char), twice.
 */
const RE2_FILL_MARK = 8 * 1024 * 1024;
/** Longer inputs are not given to RE2 (the WAF's default bodyLimit is 128 KiB). */
export const RE2_MAX_INPUT = 1024 * 1024;

const requireCjs = createRequire(import.meta.url);
let gluePath: string | undefined;

class Re2Instance {
  dead = false;
  constructor(readonly mod: Re2Module) {}

  heapTop(): number {
    const p = this.mod._malloc(16);
    this.mod._free(p);
    return p;
  }
}

let currentInstance: Re2Instance | undefined;
/** Instances started and instances lost to an abort so far (for diagnostics and tests). */
const re2Counts = { instances: 0, aborts: 0 };

function re2Instance(): Re2Instance {
  if (currentInstance && !currentInstance.dead) return currentInstance;
  gluePath ??= requireCjs.resolve('re2-wasm/build/wasm/re2.js');
  // The glue keeps its heap in module scope: a fresh evaluation is a fresh
  // heap. It takes its settings from a global `Module` if there is one: its
  // messages (an abort's, RE2's own logging) are dropped; aborts are counted.
  const g = globalThis as { Module?: unknown };
  const saved = g.Module;
  g.Module = { print: () => {}, printErr: () => {} };
  let mod: Re2Module;
  try {
    delete requireCjs.cache[gluePath];
    mod = requireCjs(gluePath) as Re2Module;
  } finally {
    delete requireCjs.cache[gluePath];
    if (saved === undefined) delete g.Module;
    else g.Module = saved;
  }
  re2Counts.instances++;
  currentInstance = new Re2Instance(mod);
  return currentInstance;
}

// A program's wasm memory is freed when its Re2Program is collected
// (patterns with macros are compiled per value).
const re2Finalizer = new FinalizationRegistry<{ inst: Re2Instance; prog: WasmRe2 }>(({ inst, prog }) => {
  if (inst.dead) return;
  try {
    prog.delete();
  } catch {
    inst.dead = true;
  }
});

/** One RE2 program, compiled on first use (the wasm build compiles slowly: 1-500 ms). */
class Re2Program {
  private inst: Re2Instance | undefined;
  private prog: WasmRe2 | undefined;
  /** Set when RE2 refused the pattern. */
  error: string | undefined;

  constructor(readonly source: string) {}

  /** Compiles the program now if it is not (for warming up); false if RE2 refused it. */
  compile(): boolean {
    try {
      return this.compiled() !== undefined;
    } catch {
      this.dropInstance();
      return false;
    }
  }

  private compiled(): WasmRe2 | undefined {
    if (this.prog && !this.inst!.dead) return this.prog;
    if (this.prog) re2Finalizer.unregister(this);
    this.prog = undefined;
    if (this.error !== undefined) return undefined;
    const inst = re2Instance();
    let prog: WasmRe2;
    try {
      prog = new inst.mod.WrappedRE2(this.source, false, false, false);
    } catch (e) {
      inst.dead = true;
      re2Counts.aborts++;
      throw e;
    }
    if (!prog.ok()) {
      this.error = prog.error();
      prog.delete();
      return undefined;
    }
    if (inst.heapTop() > RE2_FILL_MARK) currentInstance = undefined;
    this.inst = inst;
    this.prog = prog;
    re2Finalizer.register(this, { inst, prog }, this);
    return prog;
  }

  private dropInstance(): void {
    // An abort (heap exhausted) or trap: the instance is unusable.
    if (this.inst && !this.inst.dead) {
      this.inst.dead = true;
      re2Counts.aborts++;
    }
    if (currentInstance?.dead) currentInstance = undefined;
    if (this.prog) re2Finalizer.unregister(this);
    this.prog = undefined;
  }

  /**
   * The leftmost-first match (index < 0: none), or undefined when RE2 cannot
   * answer (pattern refused, input too large, instance failures).
   */
  match(input: string, captures: boolean): WasmMatch | undefined {
    if (input.length > RE2_MAX_INPUT) return undefined;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const prog = this.compiled();
        if (!prog) return undefined;
        return prog.match(input, 0, captures);
      } catch {
        this.dropInstance();
      }
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Which engine runs an input
//
// V8 (irregexp) runs inputs up to `v8MaxLength` chars, RE2 the longer ones.
// The limit is found when the pattern is compiled, by timing V8 on inputs
// that make backtracking engines super-linear: runs of one char or of a
// pair of chars, taken from a fixed list and from the pattern's own
// classes, at PROBE_LENGTHS. A pattern gets the longest probe length at
// which every probe stayed within that length's budget (about twice what RE2
// costs at that length), or 0 (RE2 only).

const PROBE_LENGTHS = [256, 64, 32, 16, 8] as const;
/**
 * µs per test() allowed at each probe length: about twice what an RE2 call
 * costs at that length (1.7-2.5 µs + 13 ns per char, measured), so that no
 * input up to v8MaxLength costs more than a few RE2 calls.
 */
const PROBE_BUDGET_US: Record<(typeof PROBE_LENGTHS)[number], number> = { 256: 11.5, 64: 6.5, 32: 5.8, 16: 5.4, 8: 5.2 };

const PROBE_GENERIC = [
  '\r\n', '\n', ' ', '\t', 'a', 'A', '0', ';', '/', '\\', "'", '"', '<', '%', '&', '=', '(', ',', '.', '-', '$', '|', '`',
  '\0', '\xff', 'a ', 'a;', 'a/', '${', '$(', 'a=', '\r\n ', '/a', '%0a', '-a', ' -', '#', '{', '*', '?', '+', '@', '!',
  ':', '[', '^', '~', '_',
];

/**
 * Probe strings for a pattern: the fixed list, then one char of each class
 * of bytes the pattern cannot tell apart (letters and digits folded into
 * `a`, `A`, `0`), alone and in ordered pairs.
 */
function probeFamilies(ast: Node): string[] {
  const sets: ByteSet[] = [];
  const seen = new Set<ByteSet>();
  const walk = (n: Node): void => {
    switch (n.t) {
      case 'set':
        if (!seen.has(n.set)) { seen.add(n.set); sets.push(n.set); }
        return;
      case 'seq': n.items.forEach(walk); return;
      case 'alt': n.alts.forEach(walk); return;
      case 'group':
      case 'rep': walk(n.body); return;
      default: return;
    }
  };
  walk(ast);
  const reps: string[] = [];
  const bySignature = new Set<string>();
  for (let c = 0; c < 256; c++) {
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (alnum && c !== 0x30 && c !== 0x41 && c !== 0x61) continue;
    let sig = '';
    for (const s of sets) sig += s[c] ? '1' : '0';
    if (bySignature.has(sig)) continue;
    bySignature.add(sig);
    reps.push(String.fromCharCode(c));
  }
  const out = new Set(PROBE_GENERIC);
  for (const a of reps) out.add(a);
  for (const a of reps) for (const b of reps) if (a !== b) out.add(a + b);
  return [...out];
}

function probeInput(family: string, length: number): string {
  // A final char no family uses, so that nothing matches at the very end.
  return family.repeat(Math.ceil(length / family.length)).slice(0, length) + '\x01';
}

function timeTestUs(re: RegExp, input: string, runs: number): number {
  let best = Infinity;
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    re.test(input);
    const dt = performance.now() - t0;
    if (dt < best) best = dt;
  }
  return best * 1000;
}

/** Longest probe length at which V8 stays within budget on every probe (0: none). */
function v8MaxLength(re: RegExp, families: readonly string[]): number {
  // Warm up: V8 interprets a regex's first executions, then compiles it.
  for (let k = 0; k < 3; k++) re.test(probeInput('a;', 16));
  for (const length of PROBE_LENGTHS) {
    const budget = PROBE_BUDGET_US[length];
    let ok = true;
    for (const f of families) {
      const input = probeInput(f, length);
      // One run each; a run over budget is measured again (the machine may
      // just have been busy) before it counts.
      if (timeTestUs(re, input, 1) > budget && timeTestUs(re, input, 3) > budget) {
        ok = false;
        break;
      }
    }
    if (ok) return length;
  }
  return 0;
}

/** Programs by source, shared by the patterns that translate alike. */
const re2Programs = new Map<string, Re2Program>();

function re2Program(source: string): Re2Program {
  let p = re2Programs.get(source);
  if (p === undefined) {
    if (re2Programs.size >= CACHE_LIMIT) re2Programs.clear();
    p = new Re2Program(source);
    re2Programs.set(source, p);
  }
  return p;
}

export type RxEngine = 'auto' | 'v8' | 're2';

/** How a compiled pattern picks its engine (for tests and diagnostics). */
export interface RxRouting {
  /** Inputs up to this many chars run on V8, longer ones on RE2. */
  v8MaxLength: number;
  /** Set when RE2 refused the pattern: every input then runs on V8. */
  re2Error: string | undefined;
}

class Rx implements CompiledRx {
  private readonly testRe: RegExp;
  private readonly execRe: RegExp;
  private readonly re2Test: Re2Program;
  private re2Exec: Re2Program | undefined;
  private v8Max: number;

  constructor(private readonly tr: Translation, pattern: string, ast: Node, engine: RxEngine) {
    // Both forms are checked here so a rule fails at load, never at match.
    // No `d` flag: it keeps V8 from falling back to the linear engine.
    linearCheck(tr.testSource, pattern);
    linearCheck(tr.execSource, pattern);
    this.testRe = new RegExp(tr.testSource);
    this.execRe = new RegExp(tr.execSource);
    this.re2Test = re2Program(tr.re2.testSource);
    this.v8Max = engine === 'v8' ? Infinity : engine === 're2' ? -1 : v8MaxLength(this.testRe, probeFamilies(ast));
  }

  warmUp(): void {
    if (this.v8Max !== Infinity && !this.re2Test.compile()) this.re2Unavailable();
  }

  get routing(): RxRouting {
    return { v8MaxLength: this.v8Max, re2Error: this.re2Test.error ?? this.re2Exec?.error };
  }

  /** RE2 refused the pattern: V8 from now on. */
  private re2Unavailable(): void {
    if (this.re2Test.error !== undefined || this.re2Exec?.error !== undefined) this.v8Max = Infinity;
  }

  test(input: string): boolean {
    if (input.length <= this.v8Max) return this.testRe.test(input);
    const m = this.re2Test.match(input, false);
    if (m === undefined) {
      this.re2Unavailable();
      return this.testRe.test(input);
    }
    return m.index >= 0;
  }

  exec(input: string): string[] | undefined {
    if (input.length <= this.v8Max) return this.execV8(input);
    // Matching is cheaper without captures, and most values do not match.
    const t = this.re2Test.match(input, false);
    if (t === undefined) {
      this.re2Unavailable();
      return this.execV8(input);
    }
    if (t.index < 0) return undefined;
    this.re2Exec ??= re2Program(this.tr.re2.execSource);
    const m = this.re2Exec.match(input, true);
    if (m === undefined || m.index < 0) {
      this.re2Unavailable();
      return this.execV8(input);
    }
    const groups = m.groups;
    return this.assemble(this.tr.re2, m.match, (k) => groups[k - 1] ?? undefined);
  }

  private execV8(input: string): string[] | undefined {
    // Matching is cheaper without captures, and most values do not match.
    if (!this.testRe.test(input)) return undefined;
    const m = this.execRe.exec(input);
    if (!m) return undefined;
    return this.assemble(this.tr, m[0], (k) => m[k]);
  }

  private assemble(tr: ExecTranslation, whole: string, group: (k: number) => string | undefined): string[] {
    const out: string[] = [whole];
    for (let g = 1; g <= this.tr.groups; g++) {
      let v: string | undefined;
      for (const k of tr.capMap.get(g) ?? []) {
        const x = group(k);
        if (x !== undefined) v = x;
      }
      out.push(v ?? '');
    }
    // A `$` that consumed the final \n: PCRE's `$` is zero-width, so neither
    // the match nor the groups around that `$` contain it.
    for (const k of tr.markers) {
      if (group(k) === undefined) continue;
      out[0] = out[0].slice(0, -1);
      for (const g of tr.markerEnclosers.get(k) ?? []) {
        if (out[g].endsWith('\n')) out[g] = out[g].slice(0, -1);
      }
      break; // only one `$` can consume the last char
    }
    return out;
  }
}

const cache = new Map<string, CompiledRx>();
const CACHE_LIMIT = 4096;

function newRx(pattern: string, engine: RxEngine): Rx {
  const p = new Parser(pattern);
  const ast = p.parse();
  const tr: Translation = { ...emitForms(ast, false), groups: p.groups, re2: emitForms(ast, true) };
  return new Rx(tr, pattern, ast, engine);
}

/**
 * Compiles a CRS/PCRE `@rx` pattern for byte strings. Throws
 * UnsupportedFeature when the pattern uses something that cannot run in
 * linear time (backreferences, lookarounds, atomic groups, ...).
 */
export function compileRx(pattern: string): CompiledRx {
  const hit = cache.get(pattern);
  if (hit) return hit;
  const rx = newRx(pattern, 'auto');
  // Patterns with macros are compiled per value: bound the cache.
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(pattern, rx);
  return rx;
}

/**
 * compileRx with the engine forced (not cached): 'v8' runs every input on
 * V8, 're2' every input on RE2 (V8 only where RE2 cannot answer). For tests
 * and measurements.
 */
export function compileRxWith(pattern: string, engine: RxEngine): CompiledRx {
  return newRx(pattern, engine);
}

/** How a pattern compiled by compileRx/compileRxWith picks its engine. */
export function rxRouting(rx: CompiledRx): RxRouting | undefined {
  return rx instanceof Rx ? rx.routing : undefined;
}

/**
 * Compiles the pattern's RE2 program now rather than at its first input
 * longer than v8MaxLength (the wasm build takes 1-500 ms per CRS pattern;
 * for rules with a small v8MaxLength ordinary traffic needs it soon).
 */
export function warmUpRe2(rx: CompiledRx): void {
  if (rx instanceof Rx) rx.warmUp();
}

/** RE2 wasm instances started, and lost to an abort, so far in this process. */
export function re2Stats(): { instances: number; aborts: number } {
  return { ...re2Counts };
}
