import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { ClusterManager } from '../../../src/balancing/clusters.js';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import type { Endpoint } from '../../../src/discovery/types.js';

const ep = (port: number, extra: Partial<Endpoint> = {}): Endpoint => ({ host: '10.0.0.1', port, weight: 1, healthy: true, metadata: {}, ...extra });
const log = pino({ level: 'silent' });

describe('EndpointTable', () => {
  it('emits a change only when the instance list really changed', () => {
    const t = new EndpointTable(log);
    const sink = t.sinkFor('r', 'static', log);
    const changes: string[] = [];
    t.on('change', (s: string) => changes.push(s));
    sink.set('svc', [ep(1), ep(2)]);
    sink.set('svc', [ep(2), ep(1)]); // same set, other order
    assert.deepEqual(changes, ['svc']);
    sink.set('svc', [ep(2), ep(1, { weight: 5 })]);
    sink.set('svc', [ep(2), ep(1, { weight: 5, metadata: { v: '2' } })]);
    assert.equal(changes.length, 3);
    assert.equal(t.get('svc')!.version, 3);
  });

  it('a push that changes one instance of ten keeps the other nine endpoint objects and their balancer instances', () => {
    const t = new EndpointTable(log);
    const clusters = new ClusterManager(t);
    const sink = t.sinkFor('r', 'nacos', log);
    const ten = (changed: Partial<Endpoint>): Endpoint[] => Array.from({ length: 10 }, (_, i) => ep(8000 + i, i === 3 ? changed : { metadata: { zone: 'a' } }));
    sink.set('svc', ten({ metadata: { zone: 'a' } }));
    const cluster = clusters.get('svc');
    const before = t.get('svc')!.endpoints;
    const instances = cluster.instances;
    sink.set('svc', ten({ metadata: { zone: 'b' } }));
    const after = t.get('svc')!.endpoints;
    assert.equal(t.get('svc')!.version, 2);
    assert.notEqual(after[3], before[3]);
    assert.deepEqual(after[3]!.metadata, { zone: 'b' });
    for (let i = 0; i < 10; i++) if (i !== 3) assert.equal(after[i], before[i], `endpoint ${i} is the same object`);
    for (let i = 0; i < 10; i++) assert.equal(cluster.instances[i], instances[i], `instance ${i} kept`);
    assert.deepEqual(cluster.instances[3]!.metadata, { zone: 'b' });
    // The same ten again, reordered: no change at all.
    sink.set('svc', ten({ metadata: { zone: 'b' } }).reverse());
    assert.equal(t.get('svc')!.version, 2);
  });

  it('keeps the last known endpoints while the registry is down; a valid empty answer empties', () => {
    const t = new EndpointTable(log);
    const sink = t.sinkFor('r', 'static', log);
    sink.set('svc', [ep(1)]);
    sink.status(false, 'connection refused');
    assert.equal(t.get('svc')!.endpoints.length, 1);
    assert.equal(t.registryStates()[0]!.up, false);
    assert.equal(t.registryStates()[0]!.lastError, 'connection refused');
    sink.status(true);
    sink.set('svc', []);
    assert.equal(t.get('svc')!.endpoints.length, 0);
  });

  it('drops malformed endpoints and duplicates instead of failing the service', () => {
    const t = new EndpointTable(log);
    const sink = t.sinkFor('r', 'static', log);
    sink.set('svc', [ep(1), ep(1), { host: '', port: 1 } as Endpoint, { host: 'x', port: 70000 } as Endpoint, ep(2, { weight: Number.NaN })]);
    assert.deepEqual(
      t.get('svc')!.endpoints.map((e) => [e.port, e.weight]),
      [
        [1, 1],
        [2, 1],
      ],
    );
    sink.set('svc', 'garbage' as unknown as Endpoint[]);
    assert.equal(t.get('svc')!.endpoints.length, 2);
  });

  it('replaceAll removes services the registry no longer has; a name owned by another registry is not taken over', () => {
    const t = new EndpointTable(log);
    const a = t.sinkFor('a', 'static', log);
    const b = t.sinkFor('b', 'static', log);
    a.replaceAll(new Map([['x', [ep(1)]], ['y', [ep(2)]]]));
    b.set('x', [ep(9)]);
    assert.equal(t.get('x')!.registry, 'a');
    a.replaceAll(new Map([['y', [ep(2)]]]));
    assert.equal(t.get('x'), undefined);
    assert.deepEqual(a.services(), ['y']);
  });

  it('readiness waits for every registry to sync', () => {
    const t = new EndpointTable(log);
    const a = t.sinkFor('a', 'static', log);
    t.sinkFor('b', 'static', log).synced();
    assert.equal(t.allSynced(), false);
    a.synced();
    assert.equal(t.allSynced(), true);
  });
});
