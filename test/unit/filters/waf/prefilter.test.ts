import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AhoCorasick } from '../../../../src/filters/waf/aho-corasick.js';
import { bytePresence, clausesOfSource, containsFactor, FactorIndex, factorsOfSource, MAX_FACTOR_CHARS, meetsClauses, rxClauses, rxFactors, valueMeetsClauses } from '../../../../src/filters/waf/prefilter.js';
import { translatePcre } from '../../../../src/filters/waf/regex.js';
import { parseSecLang, type SecRuleNode } from '../../../../src/filters/waf/seclang/parse.js';
import { CRS_RULES_DIR, CRS_TESTS_ROOT, LIBINJECTION_DIR } from '../../../helpers/waf-data.js';
import { seeded } from '../../../helpers/random.js';

/** Every static `@rx` operand of the CRS request rules (chained rules included). */
function crsPatterns(): { id: string; pattern: string }[] {
  const out: { id: string; pattern: string }[] = [];
  for (const f of readdirSync(CRS_RULES_DIR).filter((x) => /^REQUEST-.*\.conf$/.test(x)).sort()) {
    for (const n of parseSecLang(readFileSync(join(CRS_RULES_DIR, f), 'latin1'), f).nodes) {
      if (n.type !== 'rule' && n.type !== 'action') continue;
      const id = n.actions.find((a) => a.name === 'id')?.value ?? '?';
      for (let r: SecRuleNode | undefined = n.type === 'rule' ? n : n.chain; r; r = r.chain) {
        if (r.operator.name.toLowerCase() === 'rx' && !r.operator.arg.includes('%{')) out.push({ id, pattern: r.operator.arg });
      }
    }
  }
  return out;
}

function pctDecode(s: string): string {
  return s.replace(/\+/g, ' ').replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** Attack and benign strings: CRS regression payloads (raw and decoded) and libinjection's lists, as byte strings. */
function corpus(): string[] {
  const out = new Set<string>();
  const add = (s: unknown): void => {
    if (typeof s !== 'string' || s === '' || s.length > 4096) return;
    const bytes = Buffer.from(s, 'utf8').toString('latin1');
    for (const v of [bytes, pctDecode(bytes), pctDecode(pctDecode(bytes))]) {
      out.add(v);
      out.add(v.toLowerCase());
    }
  };
  const root = join(CRS_TESTS_ROOT, 'tests/regression/tests');
  for (const dir of readdirSync(root).filter((d) => d.startsWith('REQUEST-'))) {
    for (const f of readdirSync(join(root, dir)).filter((x) => x.endsWith('.yaml'))) {
      const doc = (parseYaml(readFileSync(join(root, dir, f), 'utf8')) ?? {}) as { tests?: { stages?: { input?: Record<string, unknown> }[] }[] };
      for (const t of doc.tests ?? []) {
        for (const st of t.stages ?? []) {
          const i = st.input ?? {};
          add(i.uri);
          add(i.data);
          for (const v of Object.values((i.headers as Record<string, unknown> | undefined) ?? {})) add(v);
          if (typeof i.encoded_request === 'string') add(Buffer.from(i.encoded_request, 'base64').toString('latin1'));
        }
      }
    }
  }
  for (const f of readdirSync(LIBINJECTION_DIR).filter((x) => x.endsWith('.txt'))) {
    for (const line of readFileSync(join(LIBINJECTION_DIR, f), 'latin1').split('\n')) if (!line.startsWith('#')) add(line.replace(/\r$/, ''));
  }
  return [...out];
}

test('factors of hand-written patterns', () => {
  const f = (p: string): string[] | undefined => rxFactors(p)?.slice().sort();
  assert.deepEqual(f('(?i)<script[^>]*>'), ['<script']);
  assert.deepEqual(f('(?:URLENCODED|MULTIPART|XML|JSON)'), ['json', 'multipart', 'urlencoded', 'xml']);
  assert.deepEqual(f('(?i)%uff[0-9a-f]{2}'), ['%uff']);
  assert.deepEqual(f('ab?c'), ['abc', 'ac']);
  // Nothing required: an optional part, a bare class, a pattern matching the empty string.
  assert.equal(f('^\\d+$'), undefined);
  assert.equal(f('x*'), undefined);
  assert.equal(f('^$'), undefined);
  // A single letter is in nearly every value: no prefilter.
  assert.equal(f('a|<'), undefined);
  // What the parser does not know, it gives up on.
  assert.equal(factorsOfSource('(?=x)'), undefined);
  assert.equal(factorsOfSource('a\\dz'), undefined);
});

test('containsFactor and FactorIndex agree, ASCII case-insensitively', () => {
  const sets = [['<script', 'on'], ['%uff'], ['\xac\xed'], ['union', 'select']];
  const idx = new FactorIndex(sets);
  const samples = ['<SCRIPT>', 'x%UFF12', 'UnIoN all', 'abc', '\xac\xed\x00', 'ON', '\u0130on', ''];
  for (const s of samples) {
    const hits = idx.scanIds(s);
    assert.equal(new Set(hits).size, hits.length, 'each set once');
    sets.forEach((set, i) => assert.equal(hits.includes(i), containsFactor(s, set), `${JSON.stringify(s)} set ${i}`));
  }
});

test('FactorIndex matches a long factor by its first MAX_FACTOR_CHARS chars: never a miss, in both table widths', () => {
  const prefixes = (set: readonly string[]): string[] => set.map((f) => f.slice(0, MAX_FACTOR_CHARS));
  const small = [['processbuilder'], ['java.lang.runtime', 'getruntime'], ['union']];
  const idx = new FactorIndex(small);
  assert.deepEqual(idx.scanIds('new ProcessBuilder(cmd)'), [0]);
  // Its first 8 chars are enough for a hit (the regex behind it then decides); 7 are not.
  assert.deepEqual(idx.scanIds('processb'), [0]);
  assert.deepEqual(idx.scanIds('process'), []);
  assert.deepEqual([...idx.scanIds('x.getRuntime().exec; UNION')].sort(), [1, 2]);
  // Enough random factors for more than 32,768 states: the 32-bit table.
  const rnd = seeded(11);
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789<>/%\\'.split('');
  const word = (n: number): string => Array.from({ length: n }, () => alphabet[rnd(alphabet.length)]).join('');
  const sets = Array.from({ length: 1000 }, () => Array.from({ length: 8 }, () => word(3 + rnd(12))));
  const big = new FactorIndex(sets);
  assert.ok(big.states > 0x8000, `${big.states} states`);
  for (const ix of [idx, big]) {
    const ss = ix === idx ? small : sets;
    for (let k = 0; k < 300; k++) {
      // Values built from pieces of factors, so that some contain them.
      let v = word(rnd(6));
      for (let j = 0; j < 4; j++) {
        const f = ss[rnd(ss.length)]![0]!;
        v += f.slice(0, 4 + rnd(f.length)).toUpperCase() + word(rnd(3));
      }
      const hits = ix.scanIds(v);
      ss.forEach((set, i) => {
        assert.equal(hits.includes(i), containsFactor(v, prefixes(set)), `${JSON.stringify(v)} set ${i}`);
        if (containsFactor(v, set)) assert.ok(hits.includes(i), `${JSON.stringify(v)} holds a factor of set ${i}`);
      });
    }
  }
});

test('the prefilter never rules out a value a CRS @rx pattern matches', (t) => {
  const patterns = crsPatterns();
  assert.ok(patterns.length > 200, `only ${patterns.length} patterns`);
  const strings = corpus();
  assert.ok(strings.length > 10_000, `only ${strings.length} strings`);
  let withFactors = 0;
  let matches = 0;
  const failures: string[] = [];
  for (const { id, pattern } of patterns) {
    const factors = rxFactors(pattern);
    if (factors === undefined) continue;
    withFactors++;
    // The V8 form of the translation: same language as what @rx runs.
    const re = new RegExp(translatePcre(pattern).testSource);
    for (const s of strings) {
      const m = re.exec(s);
      if (m === null) continue;
      matches++;
      // Stronger than needed: the factor lies inside the matched text itself.
      if (!containsFactor(m[0], factors) && failures.length < 10) failures.push(`${id}: ${JSON.stringify(m[0].slice(0, 80))} has none of ${JSON.stringify(factors.slice(0, 8))}`);
    }
  }
  t.diagnostic(`${withFactors} of ${patterns.length} patterns have factors; ${strings.length} strings; ${matches} matches checked`);
  assert.deepEqual(failures, []);
  assert.ok(withFactors > 200, `only ${withFactors} patterns have factors`);
  assert.ok(matches > 10_000, `only ${matches} matches checked`);
});

test('phrase matcher: the byte-class DFA finds what the trie walk finds', () => {
  const lists: string[][] = [['he', 'she', 'his', 'hers', 'HIS', 'a', 'ab', 'bab', 'bc', 'bca', 'c', 'caa', '|41|x', '\xe9t\xe9']];
  for (const f of readdirSync(CRS_RULES_DIR).filter((x) => x.endsWith('.data')).sort()) {
    lists.push(readFileSync(join(CRS_RULES_DIR, f), 'latin1').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')));
  }
  const rnd = seeded(7);
  for (const l of lists) {
    const dense = new AhoCorasick(l);
    const walk = new AhoCorasick(l);
    (walk as unknown as { delta: undefined }).delta = undefined;
    const alphabet = [...new Set(l.join(''))].join('') + 'XYZ\xe9/.\u0100';
    for (let i = 0; i < 2000; i++) {
      let s = '';
      const len = rnd(40);
      for (let j = 0; j < len; j++) s += rnd(10) < 3 ? l[rnd(l.length)]!.slice(0, 1 + rnd(6)) : alphabet[rnd(alphabet.length)];
      if (rnd(2) === 0) s = s.toUpperCase();
      assert.deepEqual(dense.findFirst(s), walk.findFirst(s), JSON.stringify(s));
    }
  }
});

/** A clause as the string of its (folded) bytes, sorted. */
function clauseText(c: Uint32Array): string {
  let s = '';
  for (let x = 0; x < 256; x++) if ((c[x >>> 5]! >>> (x & 31)) & 1) s += String.fromCharCode(x);
  return s;
}

test('character clauses of hand-written patterns', () => {
  const f = (p: string): string[] | undefined => rxClauses(p)?.map(clauseText).sort();
  // Every match has a `;` or a `|`, and an `x` (case-folded).
  assert.deepEqual(f('(?:;|\\|)\\s*x'), [';|', 'x']);
  assert.deepEqual(f('(?i)[;&]+(?:ab|c)'), ['&;', 'ac', 'bc']);
  // Optional or empty-matching parts require nothing.
  assert.equal(f('(?:;|^)x?'), undefined);
  assert.equal(f('[^a]'), undefined);
  assert.equal(clausesOfSource('(?=x)'), undefined);
  // Presence is case-folded; a char above 0xff cannot be judged.
  const cl = rxClauses('(?:;|\\|)\\s*x')!;
  assert.equal(valueMeetsClauses('a;X', cl), true);
  assert.equal(valueMeetsClauses('a;b', cl), false);
  assert.equal(valueMeetsClauses('plain value', cl), false);
  assert.equal(valueMeetsClauses('\u0100', cl), true);
  const p = new Int32Array(16);
  assert.equal(bytePresence('|x', p, 8), true);
  assert.equal(meetsClauses(cl, p, 8), true);
  assert.equal(bytePresence('\u2028', p, 0), false);
});

test('the character clauses never rule out a value a CRS @rx pattern matches', (t) => {
  const patterns = crsPatterns();
  const strings = corpus();
  let withClauses = 0;
  let matches = 0;
  const failures: string[] = [];
  for (const { id, pattern } of patterns) {
    const clauses = rxClauses(pattern);
    if (clauses === undefined) continue;
    withClauses++;
    const re = new RegExp(translatePcre(pattern).testSource);
    for (const s of strings) {
      const m = re.exec(s);
      if (m === null) continue;
      matches++;
      // Stronger than needed: the matched text itself meets every clause.
      if ((!valueMeetsClauses(m[0], clauses) || !valueMeetsClauses(s, clauses)) && failures.length < 10) {
        failures.push(`${id}: ${JSON.stringify(m[0].slice(0, 80))} misses one of ${JSON.stringify(clauses.map(clauseText))}`);
      }
    }
  }
  t.diagnostic(`${withClauses} of ${patterns.length} patterns have clauses; ${strings.length} strings; ${matches} matches checked`);
  assert.deepEqual(failures, []);
  assert.ok(withClauses > 150, `only ${withClauses} patterns have clauses`);
  assert.ok(matches > 10_000, `only ${matches} matches checked`);
});

test('FactorIndex lists every set once however many output states a value reaches, and forgets them between calls', () => {
  // 300 sets of one two-letter factor each: a value holding all of them reaches 300 output states (the scan's first buffer holds 64).
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const factors: string[] = [];
  for (let i = 0; factors.length < 300; i++) factors.push(letters[i % 26]! + letters[Math.floor(i / 26)]!);
  const idx = new FactorIndex(factors.map((f) => [f]));
  const all = factors.join('|');
  for (let round = 0; round < 2; round++) {
    const hits = idx.scanIds(all);
    assert.equal(hits.length, 300, `round ${round}`);
    assert.deepEqual([...hits].sort((a, b) => a - b), factors.map((_, i) => i));
    // Reaching the same states again in one value lists nothing twice.
    assert.equal(idx.scanIds(all + all).length, 300);
    // A value with a few of them, after one with all: only those.
    assert.deepEqual([...idx.scanIds(`|${factors[5]}|${factors[299]}|`)].sort((a, b) => a - b), [5, 299]);
  }
  assert.deepEqual(idx.scanIds('|||'), []);
});
