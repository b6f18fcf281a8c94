// ingress-nginx canary semantics, case by case.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Cluster } from '../../../src/balancing/cluster.js';
import { CanarySchema, type CanaryConfig } from '../../../src/config/schema.js';
import { BackendSet, compileBackends, compileCanary, routeToCanary } from '../../../src/routing/canary.js';
import { seeded } from '../balancing/fixtures.js';
import { cluster, ep, exchange } from './fixtures.js';

const svc = cluster('canary-svc', [ep('10.0.0.9:80')]);
const clusterOf = (_: string): Cluster => svc;

function canary(c: Partial<CanaryConfig>): ReturnType<typeof compileCanary> {
  return compileCanary(CanarySchema.parse({ backends: [{ service: 'v2' }], ...c }), clusterOf);
}

function decide(c: ReturnType<typeof compileCanary>, headers: Record<string, string> = {}, random?: () => number): boolean {
  return routeToCanary(c, exchange({ headers }), random);
}

/** A random source that would always pick the canary (r = 1) or never (r = total). */
const always = (): number => 0;
const never = (): number => 0.999999;

describe('canary by header alone', () => {
  const c = canary({ byHeader: 'X-Canary' });
  it('"always" routes to the canary', () => assert.equal(decide(c, { 'x-canary': 'always' }), true));
  it('"never" routes to the main backends', () => assert.equal(decide(c, { 'x-canary': 'never' }), false));
  it('any other value falls through (no cookie, no weight: main)', () => assert.equal(decide(c, { 'x-canary': 'yes' }), false));
  it('absent header falls through', () => assert.equal(decide(c, {}), false));
  it('header name is case-insensitive', () => assert.equal(decide(canary({ byHeader: 'x-CANARY' }), { 'X-Canary': 'always' }), true));
  it('values are case-sensitive ("Always" is not "always")', () => assert.equal(decide(c, { 'x-canary': 'Always' }), false));

  const withWeight = canary({ byHeader: 'x-canary', weight: 100 });
  it('"never" wins over weight 100', () => assert.equal(decide(withWeight, { 'x-canary': 'never' }), false));
  it('another value falls through to weight 100', () => assert.equal(decide(withWeight, { 'x-canary': 'maybe' }), true));
  const withCookie = canary({ byHeader: 'x-canary', byCookie: 'cn' });
  it('"never" header wins over an "always" cookie', () => assert.equal(decide(withCookie, { 'x-canary': 'never', cookie: 'cn=always' }), false));
  it('"always" header wins over a "never" cookie', () => assert.equal(decide(withCookie, { 'x-canary': 'always', cookie: 'cn=never' }), true));
});

describe('canary by header value', () => {
  const c = canary({ byHeader: 'x-env', byHeaderValue: 'beta', byCookie: 'cn', weight: 0 });
  it('exact value routes to the canary', () => assert.equal(decide(c, { 'x-env': 'beta' }), true));
  it('no partial match', () => assert.equal(decide(c, { 'x-env': 'beta2' }), false));
  it('"always" is just another value here (falls through)', () => assert.equal(decide(c, { 'x-env': 'always' }), false));
  it('"never" does not force main: falls through to the cookie', () => assert.equal(decide(c, { 'x-env': 'never', cookie: 'cn=always' }), true));
  it('a mismatch falls through to the cookie', () => assert.equal(decide(c, { 'x-env': 'prod', cookie: 'cn=always' }), true));
  it('a mismatch falls through to the weight', () => {
    const w = canary({ byHeader: 'x-env', byHeaderValue: 'beta', weight: 100 });
    assert.equal(decide(w, { 'x-env': 'prod' }), true);
  });
  it('an empty byHeaderValue is ignored (always/never apply)', () => {
    const e = canary({ byHeader: 'x-env', byHeaderValue: '' });
    assert.equal(decide(e, { 'x-env': 'always' }), true);
    assert.equal(decide(e, { 'x-env': '' }), false);
  });
});

describe('canary by header pattern', () => {
  const c = canary({ byHeader: 'x-user', byHeaderPattern: '^beta-', byCookie: 'cn' });
  it('a regex match routes to the canary', () => assert.equal(decide(c, { 'x-user': 'beta-42' }), true));
  it('unanchored: a partial match counts', () => assert.equal(decide(canary({ byHeader: 'x-user', byHeaderPattern: 'vip' }), { 'x-user': 'gold-vip-7' }), true));
  it('no match falls through to the cookie', () => {
    assert.equal(decide(c, { 'x-user': 'alpha', cookie: 'cn=always' }), true);
    assert.equal(decide(c, { 'x-user': 'alpha' }), false);
  });
  it('"never" does not force main when a pattern is set', () => assert.equal(decide(c, { 'x-user': 'never', cookie: 'cn=always' }), true));
  it('is ignored when a value is also set', () => {
    const both = canary({ byHeader: 'x-user', byHeaderValue: 'exact', byHeaderPattern: '.*' });
    assert.equal(decide(both, { 'x-user': 'anything' }), false);
    assert.equal(decide(both, { 'x-user': 'exact' }), true);
  });
});

describe('canary by cookie', () => {
  const c = canary({ byCookie: 'canary', weight: 100 });
  it('"always" routes to the canary', () => assert.equal(decide(canary({ byCookie: 'canary' }), { cookie: 'a=1; canary=always' }), true));
  it('"never" routes to main even with weight 100', () => assert.equal(decide(c, { cookie: 'canary=never' }), false));
  it('other values fall through to weight', () => assert.equal(decide(c, { cookie: 'canary=yes' }), true));
  it('other values without weight go to main', () => assert.equal(decide(canary({ byCookie: 'canary' }), { cookie: 'canary=yes' }), false));
  it('cookie is checked only after the header fell through', () => {
    const hc = canary({ byHeader: 'x-c', byCookie: 'canary' });
    assert.equal(decide(hc, { 'x-c': 'other', cookie: 'canary=always' }), true);
  });
});

describe('canary by weight', () => {
  it('weight 0 never, weight 100 always', () => {
    assert.equal(decide(canary({ weight: 0 }), {}, always), false);
    assert.equal(decide(canary({ weight: 100 }), {}, never), true);
  });
  it('random(1..100) <= weight', () => {
    const c = canary({ weight: 30 });
    assert.equal(decide(c, {}, () => 0.29), true); // r = 30
    assert.equal(decide(c, {}, () => 0.30), false); // r = 31
  });
  it('weightTotal > 100 is the denominator', () => {
    const c = canary({ weight: 1, weightTotal: 1000 });
    assert.equal(decide(c, {}, () => 0.0009), true); // r = 1
    assert.equal(decide(c, {}, () => 0.001), false); // r = 2
  });
  it('weightTotal <= 100 means 100', () => {
    const c = canary({ weight: 10, weightTotal: 50 });
    assert.equal(decide(c, {}, () => 0.099), true); // r = 10
    assert.equal(decide(c, {}, () => 0.1), false); // r = 11
  });
  it('weight 10 sends 10% of 20,000 requests to the canary (+-2%)', () => {
    const c = canary({ weight: 10 });
    let n = 0;
    for (let i = 0; i < 20_000; i++) if (decide(c, {})) n++;
    assert.ok(Math.abs(n / 20_000 - 0.1) <= 0.02, `canary share ${n / 20_000}`);
  });
  it('weight 25 of 1000 sends 2.5% (+-1%)', () => {
    const c = canary({ weight: 25, weightTotal: 1000 });
    const rnd = seeded(7);
    let n = 0;
    for (let i = 0; i < 20_000; i++) if (decide(c, {}, rnd)) n++;
    assert.ok(Math.abs(n / 20_000 - 0.025) <= 0.01, `canary share ${n / 20_000}`);
  });
  it('no stickiness: the same client is split per request', () => {
    const c = canary({ weight: 50 });
    const seen = new Set<boolean>();
    for (let i = 0; i < 200; i++) seen.add(decide(c, { cookie: 'sid=1' }));
    assert.equal(seen.size, 2);
  });
});

describe('no canary rule matches', () => {
  it('goes to main', () => {
    const c = canary({ byHeader: 'x-c', byCookie: 'cc' });
    assert.equal(decide(c, { 'x-other': 'always', cookie: 'other=always' }), false);
  });
  it('a canary with no rule at all never routes', () => {
    assert.equal(decide(canary({}), {}, always), false);
  });
});

describe('weighted backends', () => {
  it('90/10 within 2% over 20,000 picks', () => {
    const set = compileBackends(
      [
        { service: 'a', weight: 90, subset: undefined, subsetFallback: 'all' },
        { service: 'b', weight: 10, subset: undefined, subsetFallback: 'all' },
      ],
      clusterOf,
    );
    let a = 0;
    for (let i = 0; i < 20_000; i++) if (set.pick()!.service === 'a') a++;
    assert.ok(Math.abs(a / 20_000 - 0.9) <= 0.02, `share of a ${a / 20_000}`);
  });
  it('zero-weight backends are never picked; all zero gives none', () => {
    const set = new BackendSet([
      { service: 'a', weight: 0, subset: undefined, subsetFallback: 'all', cluster: svc },
      { service: 'b', weight: 1, subset: undefined, subsetFallback: 'all', cluster: svc },
    ]);
    for (let i = 0; i < 100; i++) assert.equal(set.pick()!.service, 'b');
    assert.equal(new BackendSet([{ service: 'a', weight: 0, subset: undefined, subsetFallback: 'all', cluster: svc }]).pick(), undefined);
  });
});

describe('canary cookie lookup', () => {
  it('reads one cookie as Exchange.cookie() does', async () => {
    const { cookieValue } = await import('../../../src/routing/canary.js');
    const cases = [
      'canary=always',
      'a=1; canary=never; b=2',
      'xcanary=always; canary=x',
      'canaryx=always',
      ' canary = "always" ',
      'canary=alw%61ys',
      'canary=%E0%A4%A',
      'a=1;canary=always',
      'canary=first; canary=second',
      'a=1; b',
      '',
    ];
    for (const header of cases) {
      const ex = exchange({ headers: header ? { cookie: header } : {} });
      assert.equal(cookieValue(ex.header('cookie'), 'canary'), ex.cookie('canary'), header);
    }
  });
});
