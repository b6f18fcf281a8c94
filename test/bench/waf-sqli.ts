// @detectSQLi cost per call.
//
//   npx tsx test/bench/waf-sqli.ts
//
// ns per detectSQLi() call over the libinjection corpus lines (URL-decoded:
// the sqli-* lists, false_positives.txt, the xss-* lists), over short
// ordinary form values, and over one 4 KiB benign text; after a warm-up,
// the best of five rounds.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeCorpusLine as urlDecode, LIBINJECTION_DIR } from '../helpers/waf-data.js';
import { detectSQLi } from '../../src/filters/waf/libinjection/sqli.js';
import { report } from './lib/report.js';

const CORPUS_DIR = LIBINJECTION_DIR;

function lines(match: (name: string) => boolean): string[] {
  return readdirSync(CORPUS_DIR!)
    .filter((f) => f.endsWith('.txt') && match(f))
    .flatMap((f) => readFileSync(join(CORPUS_DIR!, f), 'latin1').split('\n'))
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(urlDecode);
}

const FORM_VALUES = ['john.doe@example.com', '12345', 'Hello world', 'en-US', '2024-05-01', 'true', 'Main St. 5', "O'Reilly", 'search terms here', 'a1b2c3d4e5'];
const text = 'The quick brown fox jumps over the lazy dog; select your size, then order by phone (or online). ';
const LONG = [text.repeat(Math.ceil(4096 / text.length)).slice(0, 4096)];

/** Best of 5 rounds of at least 200 ms each: the machine is shared, the best round is the least disturbed. */
function bench(name: string, inputs: string[]): void {
  let sink = 0;
  for (let r = 0; r < 20; r++) for (const s of inputs) sink += detectSQLi(s).isSqli ? 1 : 0;
  let best = Infinity;
  for (let round = 0; round < 5; round++) {
    let calls = 0;
    const t0 = process.hrtime.bigint();
    let elapsed = 0n;
    while (elapsed < 200_000_000n) {
      for (const s of inputs) sink += detectSQLi(s).isSqli ? 1 : 0;
      calls += inputs.length;
      elapsed = process.hrtime.bigint() - t0;
    }
    best = Math.min(best, Number(elapsed) / calls);
  }
  const bytes = inputs.reduce((n, s) => n + s.length, 0) / inputs.length;
  const flagged = inputs.filter((s) => detectSQLi(s).isSqli).length;
  console.log(
    `${name.padEnd(22)} ${String(inputs.length).padStart(5)} inputs, mean ${bytes.toFixed(0).padStart(4)} B, ${String(flagged).padStart(4)} flagged: ${best.toFixed(0).padStart(6)} ns/call`,
  );
  report({ bench: 'waf-sqli', metric: `ns per detectSQLi call, ${name}`, value: best, unit: 'ns' });
  if (sink < 0) console.log(sink);
}

bench('sqli-*.txt', lines((f) => f.startsWith('sqli-')));
bench('false_positives.txt', lines((f) => f === 'false_positives.txt'));
bench('xss-*.txt', lines((f) => f.startsWith('xss-')));
bench('all corpus lines', lines(() => true));
bench('short form values', FORM_VALUES);
bench('4 KiB text', LONG);
