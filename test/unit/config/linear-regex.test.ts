// Regexes from the config are matched against client data: with V8's
// fallback to its linear engine turned on (src/config/linear-regex.ts, set
// when the config and routing modules load), a catastrophic pattern costs
// milliseconds instead of hanging the event loop.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { validateConfig } from '../../../src/config/load.js';
import { compilePathMatch, compileStringMatch } from '../../../src/routing/match.js';
import { compileCanary, routeToCanary } from '../../../src/routing/canary.js';
import { createRewrite } from '../../../src/filters/rewrite.js';
import type { Cluster } from '../../../src/balancing/cluster.js';
import type { Exchange } from '../../../src/exchange/exchange.js';

/** Median of three runs, in ms. */
function timed(f: () => unknown): number {
  const runs: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    f();
    runs.push(performance.now() - t0);
  }
  return runs.sort((a, b) => a - b)[1]!;
}

const hostile = '/' + 'a'.repeat(50_000) + '!';

describe('config regexes run in linear time on hostile input', () => {
  it('a route path regex ^/(a+)+$ from the config, against /aaa...a! (50,000 a)', () => {
    const cfg = validateConfig({ routes: [{ name: 'r', match: { path: { regex: '^/(a+)+$' } }, backends: [{ service: 's' }] }] });
    const path = cfg.routes[0]!.match.path!;
    const m = compilePathMatch(path);
    assert.equal(m.kind, 'regex');
    assert.equal(m.test('/aaa'), true);
    assert.equal(m.test('/aa!'), false);
    let result: boolean | undefined;
    const ms = timed(() => (result = m.test(hostile)));
    assert.equal(result, false);
    assert.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
    // Ten times the input: about ten times the time (linear), far from a backtracking engine's 2^n.
    const ms10 = timed(() => m.test('/' + 'a'.repeat(500_000) + '!'));
    assert.ok(ms10 < 30 * Math.max(ms, 5), `500,000 chars took ${ms10.toFixed(1)} ms vs ${ms.toFixed(1)} ms`);
  });

  it('without the flags the same pattern is exponential (a child process, 22 chars)', () => {
    // The contrast that shows the flags matter: plain backtracking doubles its
    // time with each char (26 chars: seconds).
    const code = `const re = new RegExp('^(?:^/(a+)+$)$'); const t0 = performance.now(); re.test('/' + 'a'.repeat(22) + '!'); console.log(performance.now() - t0);`;
    const child = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(child.status, 0, child.stderr);
    const childMs = Number(child.stdout.trim());
    const m = compilePathMatch({ regex: '^/(a+)+$' });
    const ours = timed(() => m.test('/' + 'a'.repeat(22) + '!'));
    assert.ok(childMs > 20 * Math.max(ours, 1), `plain V8 took ${childMs.toFixed(1)} ms on 22 chars, ours ${ours.toFixed(2)} ms`);
  });

  it('header and query regexes (a 16 KiB header value, the default head limit)', () => {
    const m = compileStringMatch({ regex: '(\\w+\\s?)+' });
    const value = 'a '.repeat(8_000) + '!';
    let result: boolean | undefined;
    const ms = timed(() => (result = m(value)));
    assert.equal(result, false);
    assert.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
  });

  it('canary byHeaderPattern', () => {
    const c = compileCanary({ byHeader: 'x-canary', byHeaderPattern: '^(a|aa)+$', weightTotal: 100, backends: [{ service: 's', weight: 1, subsetFallback: 'all' }] }, () => ({}) as Cluster);
    const ex = (v: string) => ({ header: (name: string) => (name === 'x-canary' ? v : undefined) }) as Pick<Exchange, 'header'>;
    assert.equal(routeToCanary(c, ex('aaa'), () => 0.99), true);
    let result: boolean | undefined;
    const ms = timed(() => (result = routeToCanary(c, ex('a'.repeat(16_000) + '!'), () => 0.99)));
    assert.equal(result, false);
    assert.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
  });

  it('rewrite path regex', () => {
    const f = createRewrite({ type: 'rewrite', path: { regex: '^/(a|a?)+$', substitution: '/x' } }, undefined);
    const ex = { queryString: '', matchPath: '/aaa', path: '/aaa' } as unknown as Exchange;
    f.onRequest!(ex);
    assert.equal(ex.path, '/x');
    const long = { queryString: '', matchPath: hostile, path: hostile } as unknown as Exchange;
    const ms = timed(() => f.onRequest!(long));
    assert.equal(long.path, hostile);
    assert.ok(ms < 500, `took ${ms.toFixed(1)} ms`);
  });
});
