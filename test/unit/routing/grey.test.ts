// Full-link grey: tag lanes, fallback, tag setting (Higress traffic-tag).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GreySchema, type GreyConfig } from '../../../src/config/schema.js';
import { applyGrey, compileGrey, matchTagRule } from '../../../src/routing/grey.js';
import type { CompiledBackend } from '../../../src/routing/canary.js';
import { pickInstance } from '../../../src/routing/select.js';
import { seeded } from '../balancing/fixtures.js';
import { cluster, ep, exchange } from './fixtures.js';

const grey = (c: Partial<GreyConfig> = {}) => compileGrey(GreySchema.parse(c));

function svc() {
  return cluster('orders', [
    ep('10.0.0.1:80'),
    ep('10.0.0.2:80', { version: 'v1' }),
    ep('10.0.0.3:80', { 'x-mse-tag': 'gray' }),
    ep('10.0.0.4:80', { tag: 'blue' }),
    ep('10.0.0.5:80', { tag: 'gray', version: 'v1' }),
  ]);
}

function backend(c: ReturnType<typeof svc>, subset?: Record<string, string>): CompiledBackend {
  return { service: c.name, weight: 1, subset, subsetFallback: 'all', cluster: c };
}

function lane(b: CompiledBackend, g: ReturnType<typeof grey>, headers: Record<string, string> = {}, n = 200): string[] {
  const out = new Set<string>();
  for (let i = 0; i < n; i++) {
    const ex = exchange({ headers });
    applyGrey(g, ex);
    out.add(pickInstance(b, ex, new Set())?.id ?? 'none');
  }
  return [...out].sort();
}

describe('grey lanes', () => {
  it('a tagged request goes only to instances with that tag (metadata key = header name, or "tag")', () => {
    assert.deepEqual(lane(backend(svc()), grey(), { 'x-mse-tag': 'gray' }), ['10.0.0.3:80', '10.0.0.5:80']);
    assert.deepEqual(lane(backend(svc()), grey(), { 'x-mse-tag': 'blue' }), ['10.0.0.4:80']);
  });

  it('an untagged request goes only to untagged instances', () => {
    assert.deepEqual(lane(backend(svc()), grey()), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('a tag no instance carries falls back to untagged instances', () => {
    assert.deepEqual(lane(backend(svc()), grey(), { 'x-mse-tag': 'green' }), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('a tag whose instances are all down falls back to untagged instances', () => {
    const c = svc();
    c.instance('10.0.0.4:80')!.checkHealthy = false;
    assert.deepEqual(lane(backend(c), grey(), { 'x-mse-tag': 'blue' }), ['10.0.0.1:80', '10.0.0.2:80']);
  });

  it('with no untagged instance left, any instance rather than none', () => {
    const c = svc();
    c.instance('10.0.0.1:80')!.checkHealthy = false;
    c.instance('10.0.0.2:80')!.checkHealthy = false;
    assert.deepEqual(lane(backend(c), grey()), ['10.0.0.3:80', '10.0.0.4:80', '10.0.0.5:80']);
  });

  it('lanes apply within the backend subset', () => {
    const b = backend(svc(), { version: 'v1' });
    assert.deepEqual(lane(b, grey(), { 'x-mse-tag': 'gray' }), ['10.0.0.5:80']);
    assert.deepEqual(lane(b, grey()), ['10.0.0.2:80']);
  });

  it('custom header and metadata key', () => {
    const c = cluster('s', [ep('10.0.0.1:80'), ep('10.0.0.2:80', { lane: 'canary' }), ep('10.0.0.3:80', { 'x-lane': 'canary' })]);
    const g = grey({ header: 'X-Lane', metadataKey: 'lane' });
    assert.deepEqual(lane(backend(c as never), g, { 'x-lane': 'canary' }), ['10.0.0.2:80']);
    // 10.0.0.3 carries its tag under another key: it is untagged for this config
    assert.deepEqual(lane(backend(c as never), g), ['10.0.0.1:80', '10.0.0.3:80']);
  });

  it('without a grey config on the route, tags are ignored', () => {
    const b = backend(svc());
    const out = new Set<string>();
    for (let i = 0; i < 200; i++) out.add(pickInstance(b, exchange({ headers: { 'x-mse-tag': 'gray' } }), new Set())!.id);
    assert.equal(out.size, 5);
  });

  it('a retry stays in the lane', () => {
    const c = svc();
    const ex = exchange({ headers: { 'x-mse-tag': 'blue' } });
    applyGrey(grey(), ex);
    assert.equal(pickInstance(backend(c), ex, new Set([c.instance('10.0.0.4:80')!])), undefined);
  });

  it('new instances join their lane when endpoints change', () => {
    const c = svc();
    const g = grey();
    assert.deepEqual(lane(backend(c), g, { 'x-mse-tag': 'green' }), ['10.0.0.1:80', '10.0.0.2:80']);
    c.setEndpoints([...c.instances.map((i) => ep(i.id, i.metadata)), ep('10.0.0.6:80', { tag: 'green' })]);
    assert.deepEqual(lane(backend(c), g, { 'x-mse-tag': 'green' }), ['10.0.0.6:80']);
  });
});

describe('setting the tag (traffic-tag)', () => {
  const g = grey({
    setTag: [
      { tag: 'gray', header: { 'X-User': { prefix: 'beta-' } } },
      { tag: 'blue', query: { lane: { exact: 'blue' } }, cookie: { team: { exact: 'qa' } } },
      { tag: 'vip', header: { 'x-uid': { present: true } }, percentage: 50 },
    ],
  });

  it('first matching rule sets the tag and the header sent upstream', () => {
    const ex = exchange({ headers: { 'x-user': 'beta-7' } });
    applyGrey(g, ex);
    assert.equal(ex.tag, 'gray');
    assert.deepEqual(ex.requestHeaderOps, [{ set: { 'x-mse-tag': 'gray' } }]);
  });

  it('all conditions of a rule must match (query and cookie)', () => {
    const both = exchange({ url: '/x?lane=blue', headers: { cookie: 'team=qa' } });
    applyGrey(g, both);
    assert.equal(both.tag, 'blue');
    const one = exchange({ url: '/x?lane=blue' });
    applyGrey(g, one);
    assert.equal(one.tag, undefined);
    assert.equal(one.requestHeaderOps.length, 0);
  });

  it('a tag header already on the request wins and is passed on unchanged', () => {
    const ex = exchange({ headers: { 'x-user': 'beta-7', 'x-mse-tag': 'blue' } });
    applyGrey(g, ex);
    assert.equal(ex.tag, 'blue');
    assert.equal(ex.requestHeaderOps.length, 0);
  });

  it('percentage with conditions is sticky per value and close to the share', () => {
    let tagged = 0;
    for (let u = 0; u < 4000; u++) {
      const first = matchTagRule(g, exchange({ headers: { 'x-uid': `u${u}` } }))?.tag;
      for (let r = 0; r < 3; r++) assert.equal(matchTagRule(g, exchange({ headers: { 'x-uid': `u${u}` } }))?.tag, first);
      if (first === 'vip') tagged++;
    }
    assert.ok(Math.abs(tagged / 4000 - 0.5) < 0.05, `vip share ${tagged / 4000}`);
  });

  it('percentage-only rules split traffic in disjoint bands (30% / 20% / rest untagged)', () => {
    const w = grey({ setTag: [{ tag: 'a', percentage: 30 }, { tag: 'b', percentage: 20 }] });
    const rnd = seeded(3);
    const count: Record<string, number> = {};
    for (let i = 0; i < 20_000; i++) {
      const t = matchTagRule(w, exchange(), rnd)?.tag ?? '-';
      count[t] = (count[t] ?? 0) + 1;
    }
    assert.ok(Math.abs(count.a! / 20_000 - 0.3) <= 0.02, JSON.stringify(count));
    assert.ok(Math.abs(count.b! / 20_000 - 0.2) <= 0.02, JSON.stringify(count));
    assert.ok(Math.abs(count['-']! / 20_000 - 0.5) <= 0.02, JSON.stringify(count));
  });

  it('rejects percentages adding up to more than 100, and bad regexes, naming the key', () => {
    assert.throws(() => grey({ setTag: [{ tag: 'a', percentage: 60 }, { tag: 'b', percentage: 50 }] }), /setTag\[1\]\.percentage/);
    assert.throws(() => grey({ setTag: [{ tag: 'a', header: { h: { regex: '(' } } }] }), /setTag\[0\]\.header\.h/);
  });

  it('tagged by a rule, the request takes its lane', () => {
    const ex = exchange({ headers: { 'x-user': 'beta-1' } });
    applyGrey(g, ex);
    const c = svc();
    const got = new Set<string>();
    for (let i = 0; i < 50; i++) got.add(pickInstance(backend(c), ex, new Set())!.id);
    assert.deepEqual([...got].sort(), ['10.0.0.3:80', '10.0.0.5:80']);
  });
});
