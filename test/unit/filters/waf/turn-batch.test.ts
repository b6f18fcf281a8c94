// atTurnEnd (src/filters/waf/turn-batch.ts): the WAF's inspections of one
// event-loop turn run together once the turn's I/O callbacks are done, in the
// order the requests came, each settling its own promise.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { atTurnEnd } from '../../../../src/filters/waf/turn-batch.js';

describe('atTurnEnd', () => {
  it('runs the work of one turn after that turn, back to back and in order, before what the turn scheduled next', async () => {
    const ran: string[] = [];
    const a = atTurnEnd(() => (ran.push('a'), 1));
    // Scheduled after the first job: a batch is one setImmediate callback, so this runs after all three.
    const later = new Promise<void>((r) => setImmediate(() => (ran.push('next immediate'), r())));
    const b = atTurnEnd(() => (ran.push('b'), 2));
    const c = atTurnEnd(() => (ran.push('c'), Promise.resolve(3)));
    ran.push('sync');
    assert.deepEqual(await Promise.all([a, b, c]), [1, 2, 3]);
    await later;
    assert.deepEqual(ran, ['sync', 'a', 'b', 'c', 'next immediate']);
  });

  it('a job that throws rejects only its own promise; the jobs after it still run', async () => {
    const ran: string[] = [];
    const a = atTurnEnd(() => {
      ran.push('a');
      throw new Error('boom');
    });
    const b = atTurnEnd(() => (ran.push('b'), 'ok'));
    await assert.rejects(a, /boom/);
    assert.equal(await b, 'ok');
    assert.deepEqual(ran, ['a', 'b']);
  });

  it('work queued from a job runs in the next batch, and later turns start their own', async () => {
    const ran: string[] = [];
    let inner: Promise<string> | undefined;
    await atTurnEnd(() => {
      ran.push('outer');
      inner = atTurnEnd(() => (ran.push('inner'), 'inner'));
      ran.push('outer done');
    });
    assert.equal(await inner, 'inner');
    assert.equal(await atTurnEnd(() => 'again'), 'again');
    assert.deepEqual(ran, ['outer', 'outer done', 'inner']);
  });
});
