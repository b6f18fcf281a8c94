// flow_control: Sentinel FlowRule / GatewayFlowRule behaviour, driven with a fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import pino from 'pino';
import { FlowControlFilterSchema } from '../../../src/resilience/flow/filter.js';
import type { FilterContext, FilterInstance, Rejection } from '../../../src/filters/types.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { createFlowControl } from '../../../src/resilience/flow/filter.js';
import { Exchange } from '../../../src/exchange/exchange.js';
import { MemoryStore } from '../../../src/store/memory.js';

const log = pino({ level: 'silent' });
const store = new MemoryStore();
const ctx: FilterContext = { store, log, metrics: new Metrics({ processMetrics: false }) };

function exchange(opts: { url?: string; headers?: Record<string, string>; ip?: string; host?: string } = {}): Exchange {
  const req = { url: opts.url ?? '/', method: 'GET', headers: opts.headers ?? {} };
  return new Exchange(req as never, {} as never, 'rid', opts.ip ?? '10.0.0.1', opts.host ?? 'example.test', 'http');
}

class FakeClock {
  t = 1_700_000_000_000;
  now = (): number => this.t;
}

function filter(rules: unknown[], clock = new FakeClock(), extra: Record<string, unknown> = {}) {
  const cfg = FlowControlFilterSchema.parse({ type: 'flow_control', rules, ...extra });
  const f = createFlowControl(cfg, ctx, { clock: clock.now });
  return { f, clock };
}

/** Run onRequest synchronously; fail if the filter wants to wait. */
function sync(f: FilterInstance, ex = exchange()): Rejection | undefined {
  const r = f.onRequest!(ex);
  assert.ok(!(r instanceof Promise), 'expected a synchronous decision');
  return r ?? undefined;
}

function countPassed(f: FilterInstance, n: number, mk: () => Exchange = () => exchange()): number {
  let passed = 0;
  for (let i = 0; i < n; i++) if (!sync(f, mk())) passed++;
  return passed;
}

describe('qps + reject (gateway token bucket)', () => {
  it('admits count + burst at once, then refills count per intervalSec', () => {
    const { f, clock } = filter([{ metric: 'qps', count: 10, burst: 5 }]);
    assert.equal(countPassed(f, 40), 15);
    clock.t += 1000;
    assert.equal(countPassed(f, 40), 0, 'no refill until more than intervalSec passed');
    clock.t += 1;
    assert.equal(countPassed(f, 40), 10);
  });

  it('intervalSec: count tokens per interval', () => {
    const { f, clock } = filter([{ count: 2, intervalSec: 2 }]);
    assert.equal(countPassed(f, 10), 2);
    clock.t += 1500;
    assert.equal(countPassed(f, 10), 0);
    clock.t += 600;
    assert.equal(countPassed(f, 10), 2);
  });

  it('rejects with 429, flag RL and Retry-After', () => {
    const { f } = filter([{ count: 1 }]);
    assert.equal(sync(f), undefined);
    const ex = exchange();
    const r = sync(f, ex);
    assert.ok(r);
    assert.equal(r.status, 429);
    assert.equal(r.flag, 'RL');
    assert.equal(r.headers?.['retry-after'], '1');
    assert.equal(ex.vars.rejectedBy, 'flow_control');
  });

  it('count 0 rejects everything', () => {
    const { f } = filter([{ count: 0 }]);
    assert.equal(countPassed(f, 5), 0);
  });
});

describe('keys', () => {
  it('keyed rules isolate keys; requests without the key are not limited by the rule', () => {
    const { f } = filter([{ count: 3, key: { header: 'X-User-Id' } }]);
    const as = (user?: string) => () => exchange({ headers: user ? { 'x-user-id': user } : {} });
    assert.equal(countPassed(f, 10, as('alice')), 3);
    assert.equal(countPassed(f, 10, as('bob')), 3, 'bob has his own bucket');
    assert.equal(countPassed(f, 10, as()), 10, 'no header: rule does not apply');
  });

  it('a key kept for a rule does not keep alive the header line it was cut from', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const { f } = filter([{ count: 5, key: { header: 'X-User-Id' } }]);
    const line = 'u'.repeat(16 * 1024);
    gc();
    const before = process.memoryUsage().heapUsed;
    // Each value is 16 KiB (cut to 256 chars for the key), as a hostile client can send it.
    assert.equal(countPassed(f, 1000, (() => { let i = 0; return () => exchange({ headers: { 'x-user-id': String(i++).padStart(6, '0') + line } }); })()), 1000);
    gc();
    gc();
    const held = (process.memoryUsage().heapUsed - before) / 1000;
    assert.ok(held < 4096, `${held.toFixed(0)} bytes held per key`);
  });

  it('match limits only matching values (prefix / regex / contains / exact)', () => {
    const cases: Array<[unknown, string, string]> = [
      [{ prefix: 'vip-' }, 'vip-1', 'std-1'],
      [{ regex: 'bot-[0-9]+' }, 'bot-42', 'bot-42x'],
      [{ contains: 'crawl' }, 'mycrawler', 'browser'],
      [{ exact: 'x' }, 'x', 'xy'],
    ];
    for (const [match, hit, miss] of cases) {
      const { f } = filter([{ count: 1, key: { query: 'u' }, match }]);
      assert.equal(countPassed(f, 5, () => exchange({ url: `/?u=${hit}` })), 1, `${JSON.stringify(match)} limits ${hit}`);
      assert.equal(countPassed(f, 5, () => exchange({ url: `/?u=${miss}` })), 5, `${JSON.stringify(match)} leaves ${miss} alone`);
    }
  });

  it('keys by client ip, host and cookie', () => {
    const ip = filter([{ count: 1, key: { ip: true } }]).f;
    assert.equal(countPassed(ip, 3, () => exchange({ ip: '10.0.0.1' })), 1);
    assert.equal(countPassed(ip, 3, () => exchange({ ip: '10.0.0.2' })), 1);
    const host = filter([{ count: 1, key: { host: true } }]).f;
    assert.equal(countPassed(host, 3, () => exchange({ host: 'a.test' })), 1);
    assert.equal(countPassed(host, 3, () => exchange({ host: 'b.test' })), 1);
    const cookie = filter([{ count: 1, key: { cookie: 'sid' } }]).f;
    assert.equal(countPassed(cookie, 3, () => exchange({ headers: { cookie: 'sid=1; x=2' } })), 1);
    assert.equal(countPassed(cookie, 3, () => exchange({ headers: { cookie: 'sid=2' } })), 1);
  });

  it('match without a key is a config error', () => {
    assert.throws(() => filter([{ count: 1, match: { exact: 'a' } }]), /rules\[0\]\.match/);
  });
});

describe('concurrency', () => {
  it('rejects past count in flight and frees a slot when an exchange ends', () => {
    const { f } = filter([{ metric: 'concurrency', count: 2 }]);
    const a = exchange();
    const b = exchange();
    assert.equal(sync(f, a), undefined);
    assert.equal(sync(f, b), undefined);
    assert.equal(sync(f)?.flag, 'RL');
    f.onDone!(a);
    f.onDone!(a); // a second onDone must not free another slot
    assert.equal(sync(f), undefined);
    assert.equal(sync(f)?.flag, 'RL');
  });

  it('onDone of an exchange this filter never admitted frees nothing', () => {
    const { f } = filter([{ metric: 'concurrency', count: 1 }]);
    assert.equal(sync(f), undefined);
    f.onDone!(exchange());
    assert.equal(sync(f)?.flag, 'RL');
  });

  it('a request rejected by a later rule gives its concurrency slot back', () => {
    const { f } = filter([
      { metric: 'concurrency', count: 1 },
      { metric: 'qps', count: 0, key: { header: 'x-blocked' } },
    ]);
    assert.equal(sync(f, exchange({ headers: { 'x-blocked': '1' } }))?.flag, 'RL');
    assert.equal(sync(f), undefined, 'the slot was released');
  });

  it('keyed concurrency isolates keys', () => {
    const { f } = filter([{ metric: 'concurrency', count: 1, key: { header: 'x-t' } }]);
    const t = (v: string) => exchange({ headers: { 'x-t': v } });
    const a = t('a');
    assert.equal(sync(f, a), undefined);
    assert.equal(sync(f, t('a'))?.flag, 'RL');
    assert.equal(sync(f, t('b')), undefined);
    f.onDone!(a);
    assert.equal(sync(f, t('a')), undefined);
  });

  it('concurrency rules only reject', () => {
    assert.throws(() => filter([{ metric: 'concurrency', count: 1, behavior: 'queue' }]), /rules\[0\]\.behavior/);
  });
});

describe('warm_up (Sentinel WarmUpController)', () => {
  it('admits count/coldFactor when cold and rises to count under sustained load', () => {
    const clock = new FakeClock();
    clock.t = 1_700_000_000_000; // second boundary
    const { f } = filter([{ count: 30, behavior: 'warm_up', coldFactor: 3, warmUpSec: 10 }], clock);
    const perSecond: number[] = [];
    for (let s = 0; s < 40; s++) {
      perSecond.push(countPassed(f, 100));
      clock.t += 1000;
    }
    assert.equal(perSecond[0], 10, 'cold: count / coldFactor');
    for (let i = 1; i < perSecond.length; i++) assert.ok(perSecond[i]! >= perSecond[i - 1]!, `never falls while warming: ${perSecond}`);
    assert.ok(perSecond[5]! < 30, `still warming after 5 s: ${perSecond}`);
    assert.equal(perSecond[39], 30, `warm: count (${perSecond})`);
  });

  it('cools down again after idling', () => {
    const clock = new FakeClock();
    const { f } = filter([{ count: 30, behavior: 'warm_up', coldFactor: 3, warmUpSec: 5 }], clock);
    for (let s = 0; s < 30; s++) {
      countPassed(f, 100);
      clock.t += 1000;
    }
    assert.equal(countPassed(f, 100), 30);
    clock.t += 60_000;
    assert.equal(countPassed(f, 100), 10, 'cold again after a minute idle');
  });
});

describe('queue (uniform rate limiter)', () => {
  it('spaces requests 1000/count ms apart and rejects what would wait maxQueueingMs or more', async () => {
    const { f } = filter([{ count: 10, behavior: 'queue', maxQueueingMs: 500 }]);
    const waits: Array<number | 'queued' | 'rejected'> = [];
    const timers: Promise<unknown>[] = [];
    for (let i = 0; i < 7; i++) {
      const r = f.onRequest!(exchange());
      if (r instanceof Promise) {
        waits.push('queued');
        timers.push(r);
      } else waits.push(r ? 'rejected' : 0);
    }
    // 0 ms, then 100, 200, 300, 400 ms queued; 500 ms is not < maxQueueingMs.
    assert.deepEqual(waits, [0, 'queued', 'queued', 'queued', 'queued', 'rejected', 'rejected']);
    await Promise.all(timers);
  });

  it('queued requests leave about 1000/count ms apart (real timers)', async () => {
    const cfg = FlowControlFilterSchema.parse({ type: 'flow_control', rules: [{ count: 20, behavior: 'queue', maxQueueingMs: 2000 }] });
    const f = createFlowControl(cfg, ctx);
    const t0 = performance.now();
    const times = await Promise.all(
      Array.from({ length: 6 }, async () => {
        const r = await f.onRequest!(exchange());
        assert.equal(r, undefined);
        return performance.now() - t0;
      }),
    );
    times.sort((a, b) => a - b);
    // The i-th request is scheduled i x 50 ms after the first; timers may fire late
    // on a busy machine (then the next gap is shorter), never early.
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! - times[0]! >= i * 50 - 5, `leaves on a 50 ms grid: ${times.map((t) => t.toFixed(0))}`);
    assert.ok(times[5]! >= 225, `last leaves ~250 ms after the first: ${times[5]}`);
  });
});

describe('reloads', () => {
  it('the same rules at the same place keep their state; changed rules start afresh', () => {
    const clock = new FakeClock();
    const cfg = FlowControlFilterSchema.parse({ type: 'flow_control', rules: [{ count: 2 }] });
    const a = createFlowControl(cfg, ctx, { clock: clock.now });
    assert.equal(countPassed(a, 5), 2);
    const b = createFlowControl(FlowControlFilterSchema.parse({ type: 'flow_control', rules: [{ count: 2 }] }), { ...ctx, previous: a });
    assert.equal(b, a);
    assert.equal(countPassed(b, 5), 0, 'bucket still empty');
    const c = createFlowControl(FlowControlFilterSchema.parse({ type: 'flow_control', rules: [{ count: 3 }] }), { ...ctx, previous: a }, { clock: clock.now });
    assert.notEqual(c, a);
    assert.equal(countPassed(c, 5), 3);
  });
});
