import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Maglev, RingHash, hashKeyFn } from '../../../src/balancing/consistent-hash.js';
import { createLoadBalancer } from '../../../src/balancing/index.js';
import type { Instance } from '../../../src/balancing/instance.js';
import { LeastRequest } from '../../../src/balancing/least-request.js';
import { SmoothRoundRobin, WeightedRandom } from '../../../src/balancing/simple.js';
import { StickyCookie } from '../../../src/balancing/sticky.js';
import { ctx, inst, instances, seeded, tally } from './fixtures.js';

const N = 20_000;

function share(t: Map<string, number>, id: string): number {
  return (t.get(id) ?? 0) / N;
}

function assertShare(t: Map<string, number>, id: string, want: number, tol = 0.02): void {
  const got = share(t, id);
  assert.ok(Math.abs(got - want) <= tol, `${id}: share ${got.toFixed(4)}, want ${want} +-${tol}`);
}

describe('smooth weighted round robin', () => {
  it('5:1 gives A A B A A A, repeating', () => {
    const a = inst('10.0.0.1:80', 5);
    const b = inst('10.0.0.2:80', 1);
    const lb = new SmoothRoundRobin([a, b]);
    const seq = Array.from({ length: 12 }, () => (lb.pick(ctx()) === a ? 'A' : 'B')).join('');
    assert.equal(seq, 'AABAAAAABAAA');
  });

  it('splits 90/10 within 2% over 20,000 picks', () => {
    const a = inst('10.0.0.1:80', 90);
    const b = inst('10.0.0.2:80', 10);
    const lb = new SmoothRoundRobin([a, b]);
    const t = tally(N, () => lb.pick(ctx()));
    assertShare(t, a.id, 0.9);
    assertShare(t, b.id, 0.1);
  });

  it('skips unavailable and excluded instances', () => {
    const [a, b, c] = instances(3);
    const lb = new SmoothRoundRobin([a!, b!, c!]);
    b!.checkHealthy = false;
    c!.ejectedUntil = Date.now() + 60_000;
    const t = tally(100, () => lb.pick(ctx()));
    assert.deepEqual([...t.keys()], [a!.id]);
    assert.equal(lb.pick(ctx(), new Set([a!])), undefined);
  });
});

describe('weighted random', () => {
  it('splits 90/10 within 2% over 20,000 picks', () => {
    const a = inst('10.0.0.1:80', 90);
    const b = inst('10.0.0.2:80', 10);
    const t = tally(N, () => new WeightedRandom([a, b]).pick(ctx()));
    assertShare(t, a.id, 0.9);
    assertShare(t, b.id, 0.1);
  });

  it('never picks a registry-unhealthy or zero-weight instance', () => {
    const a = inst('10.0.0.1:80', 1);
    const b = inst('10.0.0.2:80', 1);
    const z = inst('10.0.0.3:80', 0);
    b.registryHealthy = false;
    const t = tally(1000, () => new WeightedRandom([a, b, z]).pick(ctx()));
    assert.deepEqual([...t.keys()], [a.id]);
  });
});

describe('least_request', () => {
  it('idle instances with weights 90/10 split 90/10 within 2%', () => {
    const a = inst('10.0.0.1:80', 90);
    const b = inst('10.0.0.2:80', 10);
    const lb = createLoadBalancer([a, b], { type: 'least_request', choices: 2 });
    const t = tally(N, () => lb.pick(ctx()));
    assertShare(t, a.id, 0.9);
    assertShare(t, b.id, 0.1);
  });

  it('equal weights: two choices avoid the busy instance', () => {
    const [a, b, c] = instances(3);
    a!.active = 10;
    const lb = new LeastRequest([a!, b!, c!], 2, seeded(1));
    const t = tally(N, () => lb.pick(ctx()));
    // a is chosen only if both distinct choices are a: impossible.
    assert.equal(t.get(a!.id) ?? 0, 0);
    assertShare(t, b!.id, 0.5);
    assertShare(t, c!.id, 0.5);
  });

  it('equal weights, all idle: spreads evenly', () => {
    const list = instances(4);
    const lb = new LeastRequest(list, 2, seeded(2));
    const t = tally(N, () => lb.pick(ctx()));
    for (const i of list) assertShare(t, i.id, 0.25);
  });

  it('weighted: effective weight is weight / (active + 1)', () => {
    const a = inst('10.0.0.1:80', 2);
    const b = inst('10.0.0.2:80', 1);
    a.active = 3; // 2/4 = 0.5 against b's 1/1
    const lb = new LeastRequest([a, b]);
    const t = tally(N, () => lb.pick(ctx()));
    assertShare(t, a.id, 1 / 3);
    assertShare(t, b.id, 2 / 3);
  });

  it('honours exclude (a retry goes elsewhere)', () => {
    const [a, b] = instances(2);
    const lb = new LeastRequest([a!, b!]);
    for (let i = 0; i < 50; i++) assert.equal(lb.pick(ctx(), new Set([a!])), b);
  });
});

for (const algorithm of ['ring', 'maglev'] as const) {
  describe(`consistent_hash (${algorithm})`, () => {
    const build = (list: Instance[], key = { header: 'x-user' } as const) =>
      createLoadBalancer(list, { type: 'consistent_hash', algorithm, key, ringSize: 1024 });

    it('the same key always goes to the same instance', () => {
      const lb = build(instances(5));
      for (let k = 0; k < 200; k++) {
        const c = ctx({ headers: { 'x-user': `user-${k}` } });
        const first = lb.pick(c);
        for (let r = 0; r < 5; r++) assert.equal(lb.pick(c), first);
      }
    });

    it('keys split by weight 90/10 within 2%', () => {
      const a = inst('10.0.0.1:80', 90);
      const b = inst('10.0.0.2:80', 10);
      const lb = build([a, b]);
      let i = 0;
      const t = tally(N, () => lb.pick(ctx({ headers: { 'x-user': `u${i++}` } })));
      assertShare(t, a.id, 0.9);
      assertShare(t, b.id, 0.1);
    });

    for (const n of [3, 10, 30]) {
      it(`adding one instance to ${n} moves at most 1/(N+1) + 5% of keys`, () => {
        const list = instances(n + 1);
        const before = build(list.slice(0, n));
        const after = build(list);
        let moved = 0;
        for (let k = 0; k < N; k++) {
          const c = ctx({ headers: { 'x-user': `key-${k}` } });
          if (before.pick(c) !== after.pick(c)) moved++;
        }
        const bound = 1 / (n + 1) + 0.05;
        assert.ok(moved / N <= bound, `moved ${(moved / N).toFixed(4)} > ${bound.toFixed(4)}`);
        // and the new instance does get its share
        assert.ok(moved / N >= 1 / (n + 1) / 2, `new instance got only ${(moved / N).toFixed(4)}`);
      });
    }

    it('an unavailable instance moves only its own keys, and they come back', () => {
      const list = instances(6);
      const lb = build(list);
      const keys = Array.from({ length: 2000 }, (_, k) => ctx({ headers: { 'x-user': `k${k}` } }));
      const home = keys.map((c) => lb.pick(c));
      list[2]!.ejectedUntil = Date.now() + 60_000;
      keys.forEach((c, k) => {
        const p = lb.pick(c)!;
        assert.notEqual(p, list[2]);
        if (home[k] !== list[2]) assert.equal(p, home[k]);
      });
      list[2]!.ejectedUntil = 0;
      keys.forEach((c, k) => assert.equal(lb.pick(c), home[k]));
    });

    it('excluded instance: the retry goes to another one', () => {
      const list = instances(4);
      const lb = build(list);
      for (let k = 0; k < 100; k++) {
        const c = ctx({ headers: { 'x-user': `k${k}` } });
        const first = lb.pick(c)!;
        const second = lb.pick(c, new Set([first]));
        assert.ok(second && second !== first);
      }
      assert.equal(lb.pick(ctx({ headers: { 'x-user': 'a' } }), new Set(list)), undefined);
    });

    it('a request without the key still gets an instance', () => {
      const lb = build(instances(3));
      assert.ok(lb.pick(ctx()));
    });
  });
}

describe('consistent_hash key sources', () => {
  const list = instances(8);
  const pairs = [
    [{ header: 'X-Session' }, (v: string) => ctx({ headers: { 'x-session': v } })],
    [{ cookie: 'sid' }, (v: string) => ctx({ cookies: { sid: v } })],
    [{ query: 'uid' }, (v: string) => ctx({ query: { uid: v } })],
    [{ sourceIp: true }, (v: string) => ctx({ ip: v })],
  ] as const;
  for (const [key, make] of pairs) {
    it(`hashes on ${Object.keys(key)[0]}`, () => {
      const fn = hashKeyFn(key);
      assert.equal(fn(make('abc')), 'abc');
      const lb = new RingHash(list, fn);
      const seen = new Set<Instance | undefined>();
      for (let k = 0; k < 200; k++) {
        const p = lb.pick(make(`v${k}`));
        assert.equal(lb.pick(make(`v${k}`)), p);
        seen.add(p);
      }
      assert.ok(seen.size >= 6, 'keys spread over the instances');
    });
  }

  it('ring has at least 1024 weight-proportional entries; maglev table is 65537', () => {
    const a = inst('10.0.0.1:80', 3);
    const b = inst('10.0.0.2:80', 1);
    const ring = new RingHash([a, b], hashKeyFn({ sourceIp: true }), 1024);
    assert.ok(ring.hashes.length >= 1024);
    const mg = new Maglev([a, b], hashKeyFn({ sourceIp: true }));
    assert.equal(mg.table.length, 65537);
    const countA = mg.table.filter((x) => x === 0).length;
    assert.ok(Math.abs(countA / 65537 - 0.75) < 0.01, `maglev share of a: ${countA / 65537}`);
  });
});

describe('sticky sessions', () => {
  it('sets a cookie on the first pick and keeps the instance while it is available', () => {
    const list = instances(4);
    const lb = createLoadBalancer(list, { type: 'sticky', cookie: 'mg', ttlSec: 600, fallback: 'round_robin' });
    const c1 = ctx();
    const first = lb.pick(c1)!;
    assert.equal(c1.cookies.length, 1);
    const m = /^mg=([^;]+); Path=\/; HttpOnly; SameSite=Lax; Max-Age=600$/.exec(c1.cookies[0]!);
    assert.ok(m, c1.cookies[0]);
    assert.ok(!c1.cookies[0]!.includes(first.host), 'cookie does not reveal the address');
    for (let i = 0; i < 50; i++) {
      const c = ctx({ cookies: { mg: m[1]! } });
      assert.equal(lb.pick(c), first);
      assert.equal(c.cookies.length, 0, 'no new cookie while the session holds');
    }
    first.checkHealthy = false;
    const c2 = ctx({ cookies: { mg: m[1]! } });
    const other = lb.pick(c2)!;
    assert.notEqual(other, first);
    assert.equal(c2.cookies.length, 1, 'a new cookie names the new instance');
  });

  it('an unknown cookie value is ignored', () => {
    const list = instances(2);
    const lb = new StickyCookie(list, 's', undefined, new SmoothRoundRobin(list));
    const c = ctx({ cookies: { s: 'forged' } });
    assert.ok(lb.pick(c));
    assert.equal(c.cookies.length, 1);
    assert.ok(!c.cookies[0]!.includes('Max-Age'));
  });

  it('first picks follow the fallback balancer', () => {
    const a = inst('10.0.0.1:80', 5);
    const b = inst('10.0.0.2:80', 1);
    const lb = createLoadBalancer([a, b], { type: 'sticky', cookie: 'mg', fallback: 'round_robin' });
    const seq = Array.from({ length: 6 }, () => (lb.pick(ctx()) === a ? 'A' : 'B')).join('');
    assert.equal(seq, 'AABAAA');
  });
});
