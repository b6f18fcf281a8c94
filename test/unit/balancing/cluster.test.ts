// Cluster.setEndpoints: what a registry change does to a service's instances.
// Instances whose host:port stays keep their live state (in-flight counts,
// ejections, health verdicts) and take the new weight and metadata; the others
// go; a host:port that comes back starts fresh; the balancer picks from the
// new list only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PickContext } from '../../../src/balancing/types.js';
import { cluster, ep } from '../routing/fixtures.js';

const ctx = {} as PickContext;

function picks(c: ReturnType<typeof cluster>, n: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const inst = c.view().lb.pick(ctx);
    assert.ok(inst, 'an instance is picked');
    out.set(inst.id, (out.get(inst.id) ?? 0) + 1);
  }
  return out;
}

describe('Cluster.setEndpoints', () => {
  it('keeps the Instance of a host:port that stays, with its state, and takes its new weight and metadata', () => {
    const c = cluster('svc', [ep('10.0.0.1:80', { v: '1' }), ep('10.0.0.2:80')]);
    const a = c.instance('10.0.0.1:80')!;
    a.active = 3;
    a.ejectedUntil = Date.now() + 60_000;
    c.setEndpoints([ep('10.0.0.2:80'), ep('10.0.0.1:80', { v: '2' }, 5)]);
    assert.equal(c.instance('10.0.0.1:80'), a, 'the same object');
    assert.equal(a.active, 3);
    assert.equal(a.available(Date.now()), false, 'still ejected');
    assert.equal(a.weight, 5);
    assert.deepEqual(a.metadata, { v: '2' });
    assert.deepEqual(c.instances.map((i) => i.id), ['10.0.0.2:80', '10.0.0.1:80'], 'in the order the registry gave');
  });

  it('drops a host:port that left, and one that comes back is a fresh Instance', () => {
    const c = cluster('svc', [ep('10.0.0.1:80'), ep('10.0.0.2:80'), ep('10.0.0.3:80')]);
    const b = c.instance('10.0.0.2:80')!;
    b.ejectedUntil = Date.now() + 60_000;
    c.setEndpoints([ep('10.0.0.1:80'), ep('10.0.0.3:80')]);
    assert.equal(c.instance('10.0.0.2:80'), undefined);
    assert.deepEqual(c.instances.map((i) => i.id), ['10.0.0.1:80', '10.0.0.3:80']);
    c.setEndpoints([ep('10.0.0.1:80'), ep('10.0.0.2:80'), ep('10.0.0.3:80')]);
    const back = c.instance('10.0.0.2:80')!;
    assert.notEqual(back, b);
    assert.equal(back.available(Date.now()), true, 'no ejection carried over');
    c.setEndpoints([]);
    assert.equal(c.instances.length, 0);
    assert.equal(c.instance('10.0.0.1:80'), undefined);
    assert.equal(c.view().lb.pick(ctx), undefined);
  });

  it('round robin picks from the new list only, by weight, across many changes', () => {
    const c = cluster('svc', [ep('10.0.0.1:80'), ep('10.0.0.2:80')]);
    for (let k = 0; k < 50; k++) {
      // One instance leaves and another comes, as a registry under churn reports it.
      c.setEndpoints([ep('10.0.0.1:80', {}, 3), ep(`10.0.1.${k % 7}:80`)]);
      const got = picks(c, 8);
      assert.deepEqual([...got.keys()].sort(), ['10.0.0.1:80', `10.0.1.${k % 7}:80`].sort());
      assert.equal(got.get('10.0.0.1:80'), 6, 'weights 3:1 over 8 picks');
    }
    const fractional = cluster('svc', [ep('10.0.0.1:80', {}, 0.5), ep('10.0.0.2:80', {}, 1.5)]);
    assert.deepEqual(picks(fractional, 8), new Map([['10.0.0.2:80', 6], ['10.0.0.1:80', 2]]));
  });
});
