// @detectSQLi against the reference libinjection (test/oracle): every line of
// the libinjection corpus (as written and URL-decoded) plus seeded generated
// inputs must get the same verdict and the same fingerprint.
//
// SQLI_MUTATIONS and SQLI_SEED override the generated set's size and seed.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { detectSQLi } from '../../../../src/filters/waf/libinjection/sqli.js';
import { SQL_WORDS } from '../../../../src/filters/waf/libinjection/sqli-data.js';
import { decodeCorpusLine as urlDecode, LIBINJECTION_DIR } from '../../../helpers/waf-data.js';
import { libinjectionOracle, oracleUnavailable } from '../../../oracle/libinjection.js';

const MUTATIONS = Number(process.env.SQLI_MUTATIONS ?? 50_000);
const SEED = Number(process.env.SQLI_SEED ?? 0x5eed_0942);

const CORPUS_DIR = LIBINJECTION_DIR;

interface CorpusFile {
  name: string;
  /** Samples: lines that are neither blank nor '#' comments, URL-decoded. */
  samples: string[];
  /** Every line as written. */
  raw: string[];
}

function loadCorpus(dir: string): CorpusFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.txt'))
    .sort()
    .map((name) => {
      const raw = readFileSync(join(dir, name), 'latin1').replace(/\n$/, '').split('\n');
      return { name, raw, samples: raw.filter((l) => l !== '' && !l.startsWith('#')).map(urlDecode) };
    });
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces the generator assembles: every kind of token the tokenizer knows,
// the words the folding and false-positive rules name, and odd bytes.
const FRAGMENTS = [
  // quotes and strings
  "'", '"', '`', "''", '""', "\\'", '\\"', "'a'", '"a"', "q'[a]'", "Q'(x)'", "q'<", "nq'{a}'", "N'a'", "n'", "E'a\\'b'", "e'",
  "U&'x'", "u&'", '$$a$$', '$$', '$tag$x$tag$', '$a$', '$', '$.', '$1,000.00', "x'ff'", "X'1g'", "b'01'", "B'2'", '[col]', '[', ']',
  // comments
  '/*', '*/', '/**/', '/*!', '/*!50000', '/* /* */', '/*/', '**/', '--', '-- ', '--\n', '---', '#', '#\n', '\n',
  // numbers
  '1', '0', '12345', '0x1F', '0x', '0X', '0b01', '0b', '1e5', '1e', '1.e', '1.5E+3', '.5', '.', '1.2f', '1d', '1f', '1fUNION', '\\N',
  '\\', '\\1', '\\%1',
  // operators and punctuation
  '=', '<>', '<=>', '<=', '!=', '!', '!!', '||', '&&', '|', '&', '::', ':=', ':', '~', '~*', '+', '-', '*', '/', '%', '^', '<', '>',
  '<@', '@>', '?', ',', ';', ';;', '(', ')', '((', '))', '{', '}', '{``', '.',
  // variables
  '@', '@@', '@x', '@@version', "@'x'", '@"x"', '@`x`', '@@`v`',
  // words the rules name
  'sp_password', 'into outfile', 'INTO', 'IF', 'if(', 'user', 'USER(', 'user_id', 'database(', 'password', 'current_user',
  'localtime', 'IN', 'NOT IN', 'in (', 'LIKE', 'not like', 'LIKE(', 'COLLATE', 'utf8_bin', 'latin1', 'SELECT', 'select.1', 'select`x`',
  'UNION', 'union all', 'ALL', 'OR', 'AND', 'XOR', 'NOT', 'a', 'foo', 'x.y', 'db.tbl', 'sleep', 'benchmark', 'char', 'concat',
  'varchar', 'int', 'waitfor delay', 'exec', 'drop table', 'order by', 'group by', 'having', 'limit', 'from', 'where',
  'sexy and 17', 'admin', "O'Reilly",
  // white space as the tokenizer sees it
  ' ', ' ', ' ', '\t', '\r', '\v', '\f', '\xa0', '\0', '\x7f', '\x80', '\xff',
];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function randomCase(rnd: () => number, w: string): string {
  let out = '';
  for (const c of w) out += rnd() < 0.5 ? c.toLowerCase() : c.toUpperCase();
  return out;
}

function randomByte(rnd: () => number): string {
  // Mostly printable ASCII, but NUL, controls, 0xA0 and high bytes too.
  const r = rnd();
  if (r < 0.6) return String.fromCharCode(32 + Math.floor(rnd() * 95));
  if (r < 0.7) return pick(rnd, ['\0', '\xa0', '\x80', '\xff', '\t', '\n']);
  return String.fromCharCode(Math.floor(rnd() * 256));
}

function fragment(rnd: () => number): string {
  const r = rnd();
  if (r < 0.3) return randomCase(rnd, pick(rnd, SQL_WORDS)[0]);
  if (r < 0.9) return pick(rnd, FRAGMENTS);
  return randomByte(rnd);
}

function soup(rnd: () => number): string {
  const n = 1 + Math.floor(rnd() * 12);
  const sep = rnd() < 0.5 ? ' ' : '';
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(fragment(rnd));
  return parts.join(sep);
}

function edit(rnd: () => number, base: string): string {
  let s = base;
  const edits = 1 + Math.floor(rnd() * 4);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rnd() * (s.length + 1));
    const r = rnd();
    if (r < 0.4) s = s.slice(0, at) + fragment(rnd) + s.slice(at);
    else if (r < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 4));
    else s = s.slice(0, at) + randomByte(rnd) + s.slice(at + 1);
  }
  return s;
}

/** Seeded inputs: splices and edits of corpus samples, token soups, random bytes. */
function generate(samples: readonly string[], count: number, seed: number): string[] {
  const rnd = mulberry32(seed);
  const out: string[] = [];
  while (out.length < count) {
    const r = rnd();
    let s: string;
    if (r < 0.25) {
      const a = pick(rnd, samples);
      const b = pick(rnd, samples);
      s = a.slice(0, Math.floor(rnd() * (a.length + 1))) + b.slice(Math.floor(rnd() * (b.length + 1)));
    } else if (r < 0.5) {
      s = edit(rnd, pick(rnd, samples));
    } else if (r < 0.8) {
      s = soup(rnd);
    } else if (r < 0.9) {
      s = pick(rnd, FRAGMENTS) + soup(rnd) + pick(rnd, ['--', '#', '/*', "'", '"', '`', '']);
    } else {
      const n = 1 + Math.floor(rnd() * 30);
      s = '';
      for (let i = 0; i < n; i++) s += randomByte(rnd);
    }
    out.push(s);
  }
  return out;
}

interface Disagreement {
  input: string;
  oracle: string;
  port: string;
}

function show(r: { isSqli: boolean; fingerprint: string }): string {
  return `${r.isSqli ? 'sqli' : 'not sqli'} fp=${JSON.stringify(r.fingerprint)}`;
}

/** Runs both over the inputs; returns the oracle's answers and where the two differ. */
function compare(inputs: readonly string[]): { oracle: { isSqli: boolean }[]; diffs: Disagreement[] } {
  const oracle = libinjectionOracle(inputs);
  const diffs: Disagreement[] = [];
  inputs.forEach((input, i) => {
    const o = oracle[i]!;
    const p = detectSQLi(input);
    if (o.isSqli !== p.isSqli || o.fingerprint !== p.fingerprint) diffs.push({ input, oracle: show(o), port: show(p) });
  });
  return { oracle, diffs };
}

function report(diffs: Disagreement[]): string {
  return diffs
    .slice(0, 20)
    .map((d) => `  ${JSON.stringify(d.input)}: oracle ${d.oracle}, port ${d.port}`)
    .join('\n');
}

const skipReason = oracleUnavailable() ?? (CORPUS_DIR ? undefined : 'libinjection corpus (shared/waf-corpus/libinjection) not found');

describe('@detectSQLi agrees with libinjection', { skip: skipReason ? `cannot compare: ${skipReason}` : false }, () => {
  const corpus = CORPUS_DIR ? loadCorpus(CORPUS_DIR) : [];

  it('on every corpus line, as written and URL-decoded, and reports each list\'s detection share', (t) => {
    let total = 0;
    const diffs: Disagreement[] = [];
    for (const file of corpus) {
      const raw = compare(file.raw);
      const decoded = compare(file.samples);
      total += file.raw.length + file.samples.length;
      diffs.push(...raw.diffs, ...decoded.diffs);
      const portHits = file.samples.filter((s) => detectSQLi(s).isSqli).length;
      const oracleHits = decoded.oracle.filter((o) => o.isSqli).length;
      const pct = (n: number): string => ((100 * n) / file.samples.length).toFixed(1);
      t.diagnostic(`${file.name}: ${file.samples.length} samples, oracle flags ${oracleHits} (${pct(oracleHits)} %), port flags ${portHits} (${pct(portHits)} %)`);
    }
    t.diagnostic(`corpus: ${total} inputs, ${diffs.length} disagreements`);
    assert.ok(total > 4000, `corpus too small: ${total}`);
    assert.equal(diffs.length, 0, `${diffs.length} of ${total} corpus inputs disagree:\n${report(diffs)}`);
  });

  it(`on ${MUTATIONS} generated inputs (seed ${SEED})`, (t) => {
    const samples = corpus.flatMap((f) => f.samples);
    const inputs = generate(samples, MUTATIONS, SEED);
    const { oracle, diffs } = compare(inputs);
    const hits = oracle.filter((o) => o.isSqli).length;
    t.diagnostic(`generated: ${inputs.length} inputs, oracle flags ${hits}, ${diffs.length} disagreements`);
    // A generator that never reaches a verdict of either kind tests little.
    assert.ok(hits > MUTATIONS / 10 && hits < MUTATIONS - MUTATIONS / 10, `generated set is one-sided: ${hits} of ${MUTATIONS} flagged`);
    assert.equal(diffs.length, 0, `${diffs.length} of ${inputs.length} generated inputs disagree:\n${report(diffs)}`);
  });
});

// Fixed answers (taken from the reference library) that hold without the oracle.
describe('@detectSQLi verdicts', () => {
  const cases: [string, boolean, string][] = [
    // attacks
    ["1' or '1'='1", true, 's&sos'],
    ['1 union select', true, '1UE'],
    ["admin'--", true, 'sc'],
    ['1; DROP TABLE users', true, '1;Tnn'],
    ["x' UNION ALL SELECT NULL--", true, 'sUEvc'],
    ['1 AND SLEEP(5)', true, '1&f(1'],
    ["1' OR 1=1#", true, 's&1c'],
    ['a#\n union select 1', true, 'nUE1'],
    ['/*!50000union*/ select', true, 'X'],
    // short shapes the false-positive checks let through
    ['sexy and 17<18', true, 'n&1'],
    ['foo /* x */', true, 'nc'],
    ['1234 --', true, '1c'],
    // ordinary text, and short shapes they hold back
    ['hello world', false, ''],
    ["O'Reilly", false, ''],
    ['john.doe@example.com', false, ''],
    ['SELECT * FROM users', false, ''],
    ['1 union', false, ''],
    ['sexy and 17', false, ''],
    ['foo --', false, ''],
    ["' sp_password --", false, ''],
    // NUL, 0xA0 and high bytes
    ['1 OR 1=1\0--', true, '1&1c'],
    ['1\0 or 1=1', true, '1&1'],
    ['1 -- \0', true, '1c'],
    ["1' or 1=1 \xa0--", true, 's&1c'],
    ['\x80 or 1=1', true, 'n&1'],
  ];
  for (const [input, isSqli, fingerprint] of cases) {
    it(`${JSON.stringify(input)} -> ${isSqli ? fingerprint : 'not SQLi'}`, () => {
      assert.deepEqual(detectSQLi(input), { isSqli, fingerprint });
    });
  }

  it('reads a char above 0xFF (not a byte string) like a byte >= 0x80, without throwing', () => {
    for (const [input] of cases) {
      for (const wide of ['\u0100', '\u20ac', '\uffff']) {
        const bytes = input + ' \x80' + "q'\x80'" + '\x80--';
        assert.deepEqual(detectSQLi(bytes.replaceAll('\x80', wide)), detectSQLi(bytes), JSON.stringify(bytes));
      }
    }
  });
});
