// The CC limiter's semantics, on a controlled clock: a limit of N per period
// never admits more than N in any window of that period, an idle identity
// gets N back to back, an identity that sends all the time gets at least the
// stated share (N * B/(B+1)), blocks last blockSeconds and neither extend nor
// count, and the memory per rule stays bounded (LRU).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { LocalLimiter, LocalWindows, StoreLimiter, SUBWINDOWS, type RateSpec } from '../../../src/filters/cc/limiter.js';
import type { CounterStore } from '../../../src/store/types.js';

function clock(start: number) {
  const c = { now: start, fn: () => c.now };
  return c;
}

/** The largest number of admissions inside any window [t, t + period) (admissions sorted). */
function maxInWindow(times: number[], periodMs: number): number {
  let best = 0;
  let lo = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi]! - times[lo]! >= periodMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** A small deterministic PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('cc limiter: sliding window of sub-windows', () => {
  it('admits N back to back from an idle identity, then refuses', () => {
    const c = clock(1_000_000_123);
    const l = new LocalLimiter({ limits: [{ periodMs: 1000, limit: 5 }], blockMs: 0 }, { clock: c.fn });
    const got = Array.from({ length: 8 }, () => l.hit('a').allowed);
    assert.deepEqual(got, [true, true, true, true, true, false, false, false]);
    // Another identity is counted on its own.
    assert.equal(l.hit('b').allowed, true);
  });

  for (const [name, spec] of [
    ['5/min', { limits: [{ periodMs: 60_000, limit: 5 }], blockMs: 0 }],
    ['50/s', { limits: [{ periodMs: 1000, limit: 50 }], blockMs: 0 }],
    ['3/s and 20/min', { limits: [{ periodMs: 1000, limit: 3 }, { periodMs: 60_000, limit: 20 }], blockMs: 0 }],
  ] as Array<[string, RateSpec]>) {
    it(`${name}: never more than N in any window of the period, whatever the arrival pattern`, () => {
      for (const seed of [1, 2, 3, 4, 5]) {
        const r = rng(seed);
        const c = clock(1_700_000_000_000 + Math.floor(r() * 100_000));
        const l = new LocalLimiter(spec, { clock: c.fn });
        const admitted: number[] = [];
        const longest = Math.max(...spec.limits.map((x) => x.periodMs));
        const end = c.now + longest * 6;
        while (c.now < end) {
          // Bursts, pauses and steady trickles: attackers pick the boundary moments too.
          const pick = r();
          c.now += pick < 0.6 ? Math.floor(r() * 5) : pick < 0.9 ? Math.floor((r() * longest) / 20) : Math.floor(r() * longest);
          if (l.hit('x').allowed) admitted.push(c.now);
        }
        assert.ok(admitted.length > 0);
        for (const lim of spec.limits) {
          const most = maxInWindow(admitted, lim.periodMs);
          assert.ok(most <= lim.limit, `seed ${seed}: ${most} admitted within ${lim.periodMs} ms (limit ${lim.limit})`);
        }
      }
    });
  }

  it('the first period is not a double allowance: a flood starting just before a period boundary gets N, not 2N', () => {
    for (const offset of [999, 950, 900, 500, 1]) {
      const c = clock(1_700_000_000_000 + offset); // 1 ms .. 999 ms before a whole second
      const l = new LocalLimiter({ limits: [{ periodMs: 1000, limit: 10 }], blockMs: 0 }, { clock: c.fn });
      const start = c.now;
      let ok = 0;
      while (c.now < start + 1000) {
        if (l.hit('x').allowed) ok++;
        c.now += 1;
      }
      assert.equal(ok, 10, `offset ${offset}`);
    }
  });

  it('an identity sending all the time gets at least N * B/(B+1) per period (the stated approximation) and at most N', () => {
    const c = clock(1_700_000_000_000);
    const N = 100;
    const l = new LocalLimiter({ limits: [{ periodMs: 1000, limit: N }], blockMs: 0 }, { clock: c.fn });
    const periods = 60;
    const end = c.now + periods * 1000;
    let ok = 0;
    while (c.now < end) {
      if (l.hit('x').allowed) ok++;
      c.now += 1;
    }
    const perPeriod = ok / periods;
    assert.ok(perPeriod <= N, `${perPeriod}`);
    assert.ok(perPeriod >= (N * SUBWINDOWS) / (SUBWINDOWS + 1) - 1, `${perPeriod} per period`);
  });

  it('refused requests do not count: Retry-After is when the next request passes', () => {
    const c = clock(1_700_000_000_000);
    const l = new LocalLimiter({ limits: [{ periodMs: 1000, limit: 3 }], blockMs: 0 }, { clock: c.fn });
    for (let i = 0; i < 3; i++) assert.equal(l.hit('x').allowed, true);
    let d = l.hit('x');
    // Hammering while refused changes nothing.
    for (let i = 0; i < 1000; i++) d = l.hit('x');
    assert.equal(d.allowed, false);
    assert.equal(d.blocked, false);
    const at = c.now + d.retryAfterMs;
    c.now = at - 1;
    assert.equal(l.hit('x').allowed, false);
    c.now = at;
    assert.equal(l.hit('x').allowed, true);
    assert.ok(d.retryAfterMs <= 1000 + 1000 / SUBWINDOWS, `${d.retryAfterMs}`);
  });

  it('the request that breaks a limit starts the block; refusals during it neither extend it nor count; then back to normal', () => {
    const c = clock(1_700_000_000_000);
    const l = new LocalLimiter({ limits: [{ periodMs: 1000, limit: 2 }], blockMs: 10_000 }, { clock: c.fn });
    assert.equal(l.hit('x').allowed, true);
    assert.equal(l.hit('x').allowed, true);
    const breaking = l.hit('x');
    assert.deepEqual([breaking.allowed, breaking.blocked, breaking.blockStarted, breaking.retryAfterMs], [false, true, true, 10_000]);
    const blockedAt = c.now;
    // Slow requests (well under the limit) are refused too, and do not push the end further.
    for (let t = 1000; t < 10_000; t += 1000) {
      c.now = blockedAt + t;
      const d = l.hit('x');
      assert.equal(d.allowed, false, `at +${t}`);
      assert.equal(d.blocked, true);
      assert.equal(d.blockStarted, false);
      assert.equal(d.retryAfterMs, 10_000 - t);
    }
    c.now = blockedAt + 9_999;
    assert.equal(l.hit('x').allowed, false);
    c.now = blockedAt + 10_000;
    // The block is over and the refusals counted nothing: the full limit again.
    assert.deepEqual([l.hit('x').allowed, l.hit('x').allowed, l.hit('x').allowed], [true, true, false]);
  });

  it('check and charge: a cost charged after the fact can go over; then checks refuse until the window has room', () => {
    const c = clock(1_700_000_000_000);
    const l = new LocalLimiter({ limits: [{ periodMs: 60_000, limit: 1000 }], blockMs: 0 }, { clock: c.fn });
    assert.equal(l.check('k').allowed, true);
    assert.equal(l.charge('k', 900).allowed, true);
    assert.equal(l.check('k').remaining, 100);
    // The next call costs more than what is left: counted anyway, the limit is now broken.
    const over = l.charge('k', 300);
    assert.equal(over.allowed, false);
    assert.equal(l.check('k').allowed, false);
    const retry = l.check('k').retryAfterMs;
    assert.ok(retry > 0 && retry <= 66_000, `${retry}`);
    c.now += retry;
    assert.equal(l.check('k').allowed, true);
  });

  it('a charge that breaks a limit starts the block', () => {
    const c = clock(1_700_000_000_000);
    const l = new LocalLimiter({ limits: [{ periodMs: 60_000, limit: 100 }], blockMs: 30_000 }, { clock: c.fn });
    assert.equal(l.charge('k', 150).blockStarted, true);
    c.now += 29_000;
    assert.equal(l.check('k').blocked, true);
  });

  it('memory is bounded per rule: identities not seen while maxKeys/2 others arrived are forgotten, the others kept', () => {
    const c = clock(1_700_000_000_000);
    const w = new LocalWindows({ limits: [{ periodMs: 60_000, limit: 1 }], blockMs: 0 }, 1000, c.fn);
    assert.equal(w.run('keep', 'hit').allowed, true);
    for (let i = 0; i < 5000; i++) {
      w.run(`10.0.${i >> 8}.${i & 255}`, 'hit');
      assert.ok(w.size <= 1000, `${w.size} identities`);
      // "keep" keeps sending (refused) every 400 new identities: it stays and keeps its count.
      if (i % 400 === 0) assert.equal(w.run('keep', 'hit').allowed, false, `at ${i}`);
    }
    assert.ok(w.size >= 500);
    assert.equal(w.evictions, 5001 - w.size);
    assert.equal(w.run('keep', 'hit').allowed, false);
    // An identity pushed out by newer ones starts afresh.
    assert.equal(w.run('10.0.0.1', 'hit').allowed, true);
    // One seen recently is still counted.
    assert.equal(w.run('10.0.19.135', 'hit').allowed, false);
  });

  it('a stored identity does not keep alive the header line it was cut from', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const w = new LocalWindows({ limits: [{ periodMs: 60_000, limit: 1 }], blockMs: 0 }, 4000, clock(1_700_000_000_000).fn);
    const line = 'x'.repeat(16 * 1024);
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1000; i++) {
      // As a header value cut to MAX_KEY_PART is: a slice of a 16 KiB line of its own.
      const key = (String(i).padStart(6, '0') + line).slice(0, 256);
      assert.equal(w.run(key, 'hit').allowed, true);
    }
    gc();
    gc();
    const held = (process.memoryUsage().heapUsed - before) / 1000;
    assert.equal(w.size, 1000);
    // A view would keep the 16 KiB line; the key and its counts are under 1 KiB.
    assert.ok(held < 4096, `${held.toFixed(0)} bytes held per identity`);
  });
});

/** A store whose eval never answers, or fails, or is not connected: what a shared rule sees when Redis is away. */
function badStore(how: 'hang' | 'fail' | 'down'): CounterStore & { calls: number } {
  const s = {
    kind: 'redis' as const,
    prefix: 't:',
    calls: 0,
    incr: () => 0,
    get: () => 0,
    setFlag: () => undefined,
    hasFlag: () => false,
    close: async () => undefined,
    available: () => how !== 'down',
    lastError: how === 'down' ? 'WRONGPASS invalid username-password pair' : undefined,
    eval: () => {
      s.calls++;
      return how === 'hang' ? new Promise<unknown>(() => undefined) : Promise.reject(new Error('connection reset'));
    },
  };
  return s;
}

describe('cc limiter on a shared store that fails', () => {
  const spec: RateSpec = { limits: [{ periodMs: 60_000, limit: 100 }], blockMs: 0 };

  it('a store that does not answer: the check gives up after timeoutMs and counts locally with the fallback limit', async () => {
    const store = badStore('hang');
    const errors: string[] = [];
    const l = new StoreLimiter(store, 'r1', spec, { timeoutMs: 30, onStoreError: 'allow', fallback: { limits: [{ periodMs: 60_000, limit: 2 }], blockMs: 0 }, onError: (e) => errors.push(e.message) });
    const first = await l.hit('k');
    assert.equal(first.allowed, true);
    assert.match(errors[0] ?? '', /did not answer within 30 ms/);
    // The store is left alone for a while: the next checks do not wait on it (synchronous answers) nor call it.
    const second = l.hit('k');
    assert.ok(!(second instanceof Promise));
    assert.equal(second.allowed, true);
    const third = l.hit('k');
    assert.ok(!(third instanceof Promise));
    assert.equal(third.allowed, false, 'fallback limit 2');
    assert.equal(store.calls, 1);
  });

  it('fail-closed: a failing store refuses', async () => {
    const l = new StoreLimiter(badStore('fail'), 'r2', spec, { timeoutMs: 50, onStoreError: 'deny' });
    const d = await l.hit('k');
    assert.equal(d.allowed, false);
    assert.ok(d.retryAfterMs > 0);
  });

  it('a store that is not connected (down, or refusing the password) is not called: a counted failure, the fallback at once', () => {
    const store = badStore('down');
    const errors: string[] = [];
    const l = new StoreLimiter(store, 'r3', spec, { timeoutMs: 50, onStoreError: 'allow', onError: (e) => errors.push(e.message) });
    const d = l.hit('k');
    assert.ok(!(d instanceof Promise));
    assert.equal(d.allowed, true);
    assert.equal(store.calls, 0);
    assert.match(errors[0] ?? '', /not connected \(WRONGPASS/);
    // Said once per retry interval, not once per request.
    for (let i = 0; i < 50; i++) l.hit('k');
    assert.equal(errors.length, 1);
  });
});
