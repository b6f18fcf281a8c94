// RedisStore against a real redis-server, and flow_control counters shared
// through it: how limits add up across workers (per worker with the memory
// store, once for all through Redis), and falling back to local limits when
// Redis goes away.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Redis } from 'ioredis';
import { FlowControlFilterSchema } from '../../../src/resilience/flow/filter.js';
import type { FilterInstance } from '../../../src/filters/types.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { createFlowControl } from '../../../src/resilience/flow/filter.js';
import { Exchange } from '../../../src/exchange/exchange.js';
import { MemoryStore } from '../../../src/store/memory.js';
import { RedisStore } from '../../../src/store/redis.js';
import type { CounterStore } from '../../../src/store/types.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';

const log = pino({ level: 'silent' });
const metrics = new Metrics({ processMetrics: false });
const exchange = (user = 'u1'): Exchange =>
  new Exchange({ url: '/', method: 'GET', headers: { 'x-user': user } } as never, {} as never, 'rid', '10.0.0.1', 'h', 'http');

/** Wait until at least `ms` remain in the running window of `windowMs`, so a burst of requests lands in one window. */
async function roomInWindow(windowMs: number, ms: number): Promise<void> {
  const left = windowMs - (Date.now() % windowMs);
  if (left < ms) await new Promise((r) => setTimeout(r, left + 5));
}

async function admitted(f: FilterInstance, n: number, user?: string): Promise<number> {
  let ok = 0;
  for (let i = 0; i < n; i++) if (!(await f.onRequest!(exchange(user)))) ok++;
  return ok;
}

describe('RedisStore', () => {
  let redis: RedisServer;
  const stores: CounterStore[] = [];
  const filters: FilterInstance[] = [];
  const store = (prefix = 'meshgate:'): RedisStore => {
    const s = new RedisStore({ url: redis.url, prefix });
    stores.push(s);
    return s;
  };

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const f of filters) f.close?.();
    for (const s of stores) await s.close();
    await redis?.destroy();
  });

  it('incr is atomic across clients and the window key expires', async () => {
    const a = store();
    const b = store();
    await roomInWindow(10_000, 3_000);
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).incr('atomic', 10_000)));
    assert.equal(Math.max(...results), 200);
    assert.equal(new Set(results).size, 200, 'every increment saw a distinct count');
    assert.equal(await a.get('atomic', 10_000), 200);
    const raw = new Redis(redis.url);
    try {
      const keys = await raw.keys('meshgate:c:atomic:*');
      assert.equal(keys.length, 1);
      const ttl = await raw.pttl(keys[0]!);
      assert.ok(ttl > 0 && ttl <= 11_000, `window key expires (pttl ${ttl})`);
    } finally {
      raw.disconnect();
    }
  });

  it('flags expire', async () => {
    const s = store();
    await s.setFlag('blocked:1.2.3.4', 150);
    assert.equal(await s.hasFlag('blocked:1.2.3.4'), true);
    assert.equal(await s.hasFlag('blocked:5.6.7.8'), false);
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(await s.hasFlag('blocked:1.2.3.4'), false);
  });

  it('with several workers, memory-store limits add up per worker; shared Redis counters hold the limit once', async () => {
    const cfg = FlowControlFilterSchema.parse({ type: 'flow_control', shared: true, rules: [{ count: 10, intervalSec: 10, key: { header: 'x-user' } }] });
    const local = FlowControlFilterSchema.parse({ ...cfg, shared: false });
    // Two workers, each with its own memory store and its own filter instance.
    const m1 = new MemoryStore();
    const m2 = new MemoryStore();
    stores.push(m1, m2);
    const w1 = createFlowControl(local, { store: m1, log, metrics });
    const w2 = createFlowControl(local, { store: m2, log, metrics });
    // Two workers sharing Redis (each its own connection).
    const r1 = createFlowControl(cfg, { store: store('mg-workers:'), log, metrics });
    const r2 = createFlowControl(cfg, { store: store('mg-workers:'), log, metrics });
    filters.push(w1, w2, r1, r2);

    await roomInWindow(10_000, 4_000);
    const perWorker = (await admitted(w1, 15, 'alice')) + (await admitted(w2, 15, 'alice'));
    assert.equal(perWorker, 20, 'memory store: each of the 2 workers admits count');

    let shared = 0;
    for (let i = 0; i < 15; i++) {
      shared += (await admitted(r1, 1, 'alice')) + (await admitted(r2, 1, 'alice'));
    }
    assert.equal(shared, 10, 'redis: count for all workers together');
    assert.equal(await admitted(r1, 3, 'bob'), 3, 'other keys have their own shared counter');
  });

  it('falls back to the local limit when Redis is unavailable, without hanging requests', async () => {
    const cfg = FlowControlFilterSchema.parse({ type: 'flow_control', shared: true, rules: [{ count: 5, intervalSec: 10 }] });
    const s = new RedisStore({ url: redis.url, prefix: 'mg-outage:' }, { commandTimeoutMs: 200 });
    stores.push(s);
    await s.ready();
    const f = createFlowControl(cfg, { store: s, log, metrics });
    filters.push(f);
    await redis.stop();
    try {
      const t0 = performance.now();
      const n = await admitted(f, 12);
      const took = performance.now() - t0;
      assert.equal(n, 5, 'the local bucket (count 5) decides while Redis is down');
      assert.ok(took < 12 * 400, `requests fail over quickly (${took.toFixed(0)} ms for 12)`);
      const d = (f.describe!() as { shared: { state: string } }).shared;
      assert.equal(d.state, 'open', 'the store breaker opened');
    } finally {
      await redis.start();
    }
  });
});
