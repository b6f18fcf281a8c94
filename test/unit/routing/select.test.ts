// Subsets and subset fallback.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Instance } from '../../../src/balancing/instance.js';
import type { CompiledBackend } from '../../../src/routing/canary.js';
import { pickInstance } from '../../../src/routing/select.js';
import { cluster, ep, exchange } from './fixtures.js';

function backend(c: ReturnType<typeof cluster>, subset?: Record<string, string>, subsetFallback: 'all' | 'none' = 'all'): CompiledBackend {
  return { service: c.name, weight: 1, subset, subsetFallback, cluster: c };
}

function picks(b: CompiledBackend, n = 100, exclude: ReadonlySet<Instance> = new Set()): Set<string | undefined> {
  const out = new Set<string | undefined>();
  for (let i = 0; i < n; i++) out.add(pickInstance(b, exchange(), exclude)?.id);
  return out;
}

describe('subsets', () => {
  const svc = () =>
    cluster('users', [
      ep('10.0.0.1:80', { version: 'v1' }),
      ep('10.0.0.2:80', { version: 'v1' }),
      ep('10.0.0.3:80', { version: 'v2', zone: 'a' }),
      ep('10.0.0.4:80', { version: 'v2', zone: 'b' }),
    ]);

  it('picks only instances whose metadata matches every subset key', () => {
    const c = svc();
    assert.deepEqual([...picks(backend(c, { version: 'v2' }))].sort(), ['10.0.0.3:80', '10.0.0.4:80']);
    assert.deepEqual([...picks(backend(c, { version: 'v2', zone: 'b' }))], ['10.0.0.4:80']);
  });

  it('without a subset, every instance', () => {
    assert.equal(picks(backend(svc())).size, 4);
  });

  it('empty subset falls back to all instances by default', () => {
    assert.equal(picks(backend(svc(), { version: 'v3' })).size, 4);
  });

  it('empty subset with subsetFallback none: no instance (503)', () => {
    assert.deepEqual([...picks(backend(svc(), { version: 'v3' }, 'none'))], [undefined]);
  });

  it('a subset whose instances are all unavailable counts as empty', () => {
    const c = svc();
    for (const i of c.instances) if (i.metadata.version === 'v2') i.checkHealthy = false;
    assert.deepEqual([...picks(backend(c, { version: 'v2' }))].sort(), ['10.0.0.1:80', '10.0.0.2:80']);
    assert.deepEqual([...picks(backend(c, { version: 'v2' }, 'none'))], [undefined]);
  });

  it('a retry stays in the subset: tried instances do not spill into other instances', () => {
    const c = svc();
    const b = backend(c, { version: 'v2', zone: 'a' });
    const only = c.instance('10.0.0.3:80')!;
    assert.equal(pickInstance(b, exchange(), new Set([only])), undefined);
  });

  it('a retry goes to another subset instance when one exists', () => {
    const c = svc();
    const b = backend(c, { version: 'v2' });
    const first = c.instance('10.0.0.3:80')!;
    for (let i = 0; i < 20; i++) assert.equal(pickInstance(b, exchange(), new Set([first]))?.id, '10.0.0.4:80');
  });

  it('subset membership follows endpoint updates', () => {
    const c = svc();
    const b = backend(c, { version: 'v3' }, 'none');
    assert.equal(pickInstance(b, exchange(), new Set()), undefined);
    c.setEndpoints([...c.instances.map((i) => ep(i.id, i.metadata)), ep('10.0.0.5:80', { version: 'v3' })]);
    assert.equal(pickInstance(b, exchange(), new Set())?.id, '10.0.0.5:80');
  });
});
