import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileRx, translatePcre } from '../../../../src/filters/waf/regex.js';
import { CRS_RULES_DIR } from '../../../helpers/waf-data.js';
import { UnsupportedFeature } from '../../../../src/filters/waf/types.js';

// The CRS copy the repository ships (vendor/crs).
function crsRulesDir(): string {
  assert.ok(existsSync(CRS_RULES_DIR), `CRS rules not found in ${CRS_RULES_DIR}`);
  return CRS_RULES_DIR;
}

/** Every `@rx` operand of the CRS request rules, with the rule id (chained rules have none). */
function crsRequestPatterns(): Array<{ file: string; id: string; pattern: string }> {
  const dir = crsRulesDir();
  const out: Array<{ file: string; id: string; pattern: string }> = [];
  for (const file of readdirSync(dir).filter((f) => /^REQUEST-9\d\d-.*\.conf$/.test(f)).sort()) {
    const text = readFileSync(join(dir, file), 'latin1').replace(/\\\r?\n/g, '');
    for (const line of text.split('\n')) {
      const m = /^\s*SecRule\s+\S+\s+"((?:[^"\\]|\\.)*)"(.*)$/.exec(line);
      if (!m) continue;
      const op = /^!?@rx\s(.*)$/s.exec(m[1]);
      if (!op) continue;
      out.push({ file, id: /id:(\d+)/.exec(m[2])?.[1] ?? '(chained)', pattern: op[1].replace(/\\"/g, '"') });
    }
  }
  return out;
}

const bytes = (...b: number[]) => String.fromCharCode(...b);

describe('CRS @rx patterns', () => {
  it('all request-rule patterns compile to linear-time RegExps', () => {
    const patterns = crsRequestPatterns();
    assert.ok(patterns.length >= 260, `found ${patterns.length} patterns`);
    const failed: string[] = [];
    for (const p of patterns) {
      try {
        const rx = compileRx(p.pattern);
        rx.test('x');
        rx.exec('x');
      } catch (e) {
        failed.push(`${p.file} ${p.id}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(failed, []);
  });

  it('CRS patterns still detect what they are written for', () => {
    const byId = new Map(crsRequestPatterns().map((p) => [p.id, p.pattern]));
    const check = (id: string, input: string, expected: boolean) => {
      const pattern = byId.get(id);
      assert.ok(pattern, `rule ${id}`);
      assert.equal(compileRx(pattern).test(input), expected, `${id} on ${JSON.stringify(input)}`);
    };
    check('941110', '<SCRIPT>alert(1)</script>', true); // (?i)<script[^>]*>[\s\S]*?
    check('941110', 'scripted text', false);
    check('942160', 'SLEEP(5)', true); // (?i:sleep\s*?\(.*?\)|...)
    check('933180', '$' + bytes(0xe9) + 'x()', true); // [\x7f-\x{ff}] in a PHP variable name
    check('920100', 'GET /index.html HTTP/1.1', true); // valid request line
    check('920100', 'GET /index.html HTTP/1.1\n', true); // `$` before a final newline
    check('920100', 'GET index', false);
    check('932300', '\r\nMAIL FROM:<' + 'a'.repeat(64) + '@x>', true); // .{1,64} unrolled
    check('932300', '\r\nMAIL FROM:<' + 'a'.repeat(65) + '@x>', false);
  });
});

describe('PCRE semantics on byte strings', () => {
  const m = (pattern: string, input: string) => compileRx(pattern).test(input);

  it('(?i) at the start, mid-pattern and scoped to a group', () => {
    assert.equal(m('^(?i)up', 'UP'), true);
    assert.equal(m('^a(?i)b', 'aB'), true);
    assert.equal(m('^a(?i)b', 'AB'), false);
    assert.equal(m('^(?i:a)b$', 'Ab'), true);
    assert.equal(m('^(?i:a)b$', 'AB'), false);
    // A flag set in one alternative carries into the next ones of its group.
    assert.equal(m('^(a(?i)b|c)$', 'C'), true);
    assert.equal(m('^(?:(?i)a)b$', 'AB'), false);
    assert.equal(m('^(?i)a(?-i)b$', 'Ab'), true);
    assert.equal(m('^(?i)a(?-i)b$', 'AB'), false);
  });

  it('(?i) folds ASCII letters only, and classes too', () => {
    assert.equal(m('(?i)\\xe0', bytes(0xc0)), false);
    assert.equal(m('(?i)\\xe0', bytes(0xe0)), true);
    assert.equal(m('(?i)^[a-c]+$', 'AbC'), true);
    assert.equal(m('(?i)^[^a-c]$', 'B'), false);
    assert.equal(m('(?i)^[[:upper:]]$', 'q'), true);
  });

  it('$ and \\Z match before a final newline, \\z only at the end', () => {
    assert.equal(m('abc$', 'abc\n'), true);
    assert.equal(m('abc$', 'abc\n\n'), false);
    assert.equal(m('abc\\Z', 'abc\n'), true);
    assert.equal(m('abc\\z', 'abc\n'), false);
    assert.equal(m('\\Aabc', 'xabc'), false);
    assert.deepEqual(compileRx('(b)c$').exec('abc\n'), ['bc', 'b']);
    assert.deepEqual(compileRx('(bc$)').exec('abc\n'), ['bc', 'bc']);
  });

  it('. excludes only \\n; (?s) makes it match \\n', () => {
    assert.equal(m('^a.b$', 'a\rb'), true);
    assert.equal(m('^a.b$', 'a\nb'), false);
    assert.equal(m('(?s)^a.b$', 'a\nb'), true);
    assert.equal(m('^a.b$', 'a' + bytes(0xff) + 'b'), true);
  });

  it('\\s is [\\t\\n\\v\\f\\r ] and never NBSP; \\w \\d \\b are ASCII', () => {
    assert.equal(m('^\\s$', '\x0b'), true);
    assert.equal(m('^\\s$', bytes(0xa0)), false);
    assert.equal(m('^\\S$', bytes(0xa0)), true);
    assert.equal(m('^\\w$', bytes(0xe9)), false);
    assert.equal(m('\\bselect\\b', bytes(0xe9) + 'select'), true);
  });

  it('escapes: \\x{hh}, \\xhh, octal, \\Q..\\E, POSIX classes, {,n} literal', () => {
    assert.equal(m('^\\x{41}\\x42\\101$', 'ABA'), true);
    assert.equal(m('^[\\x7f-\\x{ff}]+$', bytes(0x7f, 0xc3, 0xff)), true);
    assert.equal(m('^\\Q.*+\\E$', '.*+'), true);
    assert.equal(m('^\\Q.*+\\E$', 'ab'), false);
    assert.equal(m('^[[:alpha:][:digit:]]+$', 'ab12'), true);
    assert.equal(m('^[[:^digit:]]$', '5'), false);
    assert.equal(m('^a{,2}$', 'a{,2}'), true);
    assert.equal(m('^[\\w-.]+$', 'a-b.c'), true);
    assert.equal(m('^[]a]+$', ']a'), true);
  });

  it('large bounded repeats keep their bounds', () => {
    assert.equal(m('^a{1,255}$', 'a'.repeat(255)), true);
    assert.equal(m('^a{1,255}$', 'a'.repeat(256)), false);
    assert.equal(m('^(?:ab){20,30}$', 'ab'.repeat(19)), false);
    assert.equal(m('^(?:ab){20,30}$', 'ab'.repeat(20)), true);
    assert.equal(m('^x{17,}$', 'x'.repeat(16)), false);
    assert.equal(m('^x{17,}$', 'x'.repeat(40)), true);
    assert.deepEqual(compileRx('a{2,40}?').exec('aaaa'), ['aa']);
    assert.deepEqual(compileRx('a{2,40}').exec('aaaa'), ['aaaa']);
  });

  it('exec returns the matched text and the groups, "" for a group that did not take part', () => {
    assert.deepEqual(compileRx('(\\d+)-(\\d+)').exec('id 10-20'), ['10-20', '10', '20']);
    assert.deepEqual(compileRx('(a)|(b)').exec('b'), ['b', '', 'b']);
    assert.deepEqual(compileRx('(?<n>x)(y)').exec('xy'), ['xy', 'x', 'y']);
    assert.equal(compileRx('abc').exec('xyz'), undefined);
  });

  it('refuses what cannot run in linear time, or is not PCRE without UTF', () => {
    for (const p of ['(a)\\1', 'a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b', '(?>a+)b', 'a++', '\\x{100}', '(?m)^a', 'a**']) {
      assert.throws(() => compileRx(p), UnsupportedFeature, p);
    }
  });

  it('translates to classes without the JS i flag', () => {
    const tr = translatePcre('(?i)ab');
    assert.equal(tr.testSource, '[Aa][Bb]');
  });
});

describe('linear time on hostile input', () => {
  // Median of three runs, in ms.
  function timeTest(test: (s: string) => boolean, input: string): number {
    const runs: number[] = [];
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      test(input);
      runs.push(performance.now() - t0);
    }
    return runs.sort((a, b) => a - b)[1];
  }

  it('(a+)+$ stays linear: 50,000 chars well under 1 s, 10x the input < 30x the time', () => {
    const rx = compileRx('(a+)+$');
    // A backtracking engine needs ~1 s here already; checked first so a
    // regression fails fast instead of running for hours.
    assert.ok(timeTest((s) => rx.test(s), 'a'.repeat(28) + 'b') < 200, 'probe of 28 chars');
    const small = timeTest((s) => rx.test(s), 'a'.repeat(50_000) + 'b');
    const large = timeTest((s) => rx.test(s), 'a'.repeat(500_000) + 'b');
    assert.ok(small < 1000, `50,000 chars took ${small.toFixed(1)} ms`);
    assert.ok(large < 30 * Math.max(small, 5), `500,000 chars took ${large.toFixed(1)} ms vs ${small.toFixed(1)} ms`);
  });

  it('CRS 932235 on repeated CRLF (cubic under backtracking) stays linear', () => {
    const pattern = crsRequestPatterns().find((p) => p.id === '932235')?.pattern;
    assert.ok(pattern);
    const rx = compileRx(pattern);
    const hostile = (reps: number) => '\r\n'.repeat(reps) + '\0';
    // Backtracking takes ~0.2 s at 100 repetitions and ~2 s at 200.
    assert.ok(timeTest((s) => rx.test(s), hostile(200)) < 500, 'probe of 200 CRLF');
    const small = timeTest((s) => rx.test(s), hostile(1000));
    const large = timeTest((s) => rx.test(s), hostile(10_000));
    assert.ok(small < 1000, `1,000 CRLF took ${small.toFixed(1)} ms`);
    assert.ok(large < 30 * Math.max(small, 5), `10,000 CRLF took ${large.toFixed(1)} ms vs ${small.toFixed(1)} ms`);
  });

  it('exec (captures) is bounded too', () => {
    // The first branch backtracks exponentially before the second matches.
    const rx = compileRx('^(?:(a+)+b|(a))');
    const t0 = performance.now();
    assert.deepEqual(rx.exec('a'.repeat(20_000)), ['a', '', 'a']);
    // Same with a `$` inside a group and a final newline to leave out.
    const withEnd = compileRx('^(?:(a+)+b|(a+)$)');
    assert.deepEqual(withEnd.exec('a'.repeat(20_000) + '\n'), ['a'.repeat(20_000), '', 'a'.repeat(20_000)]);
    assert.ok(performance.now() - t0 < 2000);
  });
});
