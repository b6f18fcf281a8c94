// The key pool's state machine: rotation, taken out after failures, probed
// back in (with back-off while probes fail), the last resort when all are out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyPool } from '../../../src/upstreams/ai/keys.js';
import { failureMatches } from '../../../src/upstreams/ai/handler.js';

const opts = { failureThreshold: 2, cooldownMs: 20, maxCooldownMs: 80 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('KeyPool', () => {
  it('rotates round robin and skips excluded keys', () => {
    const p = new KeyPool(['a', 'b', 'c'], opts, undefined);
    assert.deepEqual([p.pick(), p.pick(), p.pick(), p.pick()], ['a', 'b', 'c', 'a']);
    assert.equal(p.pick(new Set(['b', 'c'])), 'a');
    assert.equal(p.pick(new Set(['a', 'b', 'c'])), undefined);
  });

  it('takes a key out after failureThreshold failures in a row; a success in between resets the count', () => {
    const p = new KeyPool(['a', 'b'], opts, undefined);
    p.failure('a');
    p.success('a');
    p.failure('a');
    assert.deepEqual(p.available(), ['a', 'b']);
    p.failure('a');
    assert.deepEqual(p.available(), ['b']);
    for (let i = 0; i < 4; i++) assert.equal(p.pick(), 'b');
    p.close();
  });

  it('when every key is out, uses the one out longest rather than none', async () => {
    const p = new KeyPool(['a', 'b'], { ...opts, failureThreshold: 1 }, undefined);
    p.failure('b');
    await sleep(2);
    p.failure('a');
    assert.deepEqual(p.available(), []);
    assert.equal(p.pick(), 'b');
    p.close();
  });

  it('probes a key that is out and restores it when the probe passes; backs off while it fails', async () => {
    const probes: number[] = [];
    let ok = false;
    const changes: Array<[string, boolean]> = [];
    const p = new KeyPool(['a', 'b'], { ...opts, failureThreshold: 1 }, async () => {
      probes.push(Date.now());
      return ok;
    }, (k, out) => changes.push([k, out]));
    p.failure('a');
    await sleep(300);
    assert.ok(probes.length >= 2, 'probed again after a failed probe');
    // 20 ms, then 40, then 80 (the cap): timers only run late, so each gap is at least its wait.
    assert.ok(probes[1]! - probes[0]! >= 39, `second wait ${probes[1]! - probes[0]!} ms`);
    assert.deepEqual(p.available(), ['b']);
    ok = true;
    await sleep(300);
    assert.deepEqual(p.available(), ['a', 'b']);
    assert.deepEqual(changes, [['a', true], ['a', false]]);
    p.close();
  });

  it('a pool that replaces another (reload) keeps its keys out, and leaves the old one alone', () => {
    const old = new KeyPool(['a', 'b', 'c'], { ...opts, failureThreshold: 1 }, undefined);
    old.failure('b');
    const next = new KeyPool(['b', 'c', 'd'], { ...opts, failureThreshold: 1 }, undefined);
    next.adopt(old);
    assert.deepEqual(next.available(), ['c', 'd']);
    assert.deepEqual(old.available(), ['a', 'c']);
    old.close();
    next.close();
  });

  it('a provider without keys is one key that sends no auth', () => {
    const p = new KeyPool([], opts, undefined);
    assert.equal(p.size, 1);
    assert.equal(p.pick(), '');
  });
});

describe('failure classes', () => {
  it('matches statuses, classes, timeout and error', () => {
    assert.equal(failureMatches(['429', '5xx'], { kind: 'status', status: 503 }), true);
    assert.equal(failureMatches(['429', '5xx'], { kind: 'status', status: 429 }), true);
    assert.equal(failureMatches(['429', '5xx'], { kind: 'status', status: 400 }), false);
    assert.equal(failureMatches(['4xx'], { kind: 'status', status: 401 }), true);
    assert.equal(failureMatches(['timeout'], { kind: 'timeout' }), true);
    assert.equal(failureMatches(['5xx'], { kind: 'error' }), false);
  });
});
