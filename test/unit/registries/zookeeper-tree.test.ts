// The ZooKeeper tree model on its own, read through an in-memory session:
// Dubbo and Curator entries become services, watches re-read what changed,
// reads of a replaced session are ignored.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zookeeper from 'node-zookeeper-client';
import pino from 'pino';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import type { TreeSession } from '../../../registries/zookeeper/tree.js';
import { ZookeeperTree } from '../../../registries/zookeeper/tree.js';

type Watcher = (event: zookeeper.Event) => void;

/** What the client rejects a read of a missing node with. */
class NoNode extends Error {
  getCode(): number {
    return zookeeper.Exception.NO_NODE;
  }
}

/** An in-memory ZooKeeper tree behind the session interface the tree model reads through. */
class FakeSession implements TreeSession {
  stopped = false;
  gen = 1;
  errors: string[] = [];
  readonly nodes = new Map<string, Buffer | undefined>();
  /** path -> watchers armed by the last read (they fire once) */
  private readonly armed = new Map<string, Set<Watcher>>();
  private readonly stable = new Map<string, Watcher>();

  put(path: string, data?: string): void {
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const p = `/${parts.slice(0, i).join('/')}`;
      if (!this.nodes.has(p)) this.nodes.set(p, undefined);
    }
    this.nodes.set(path, data === undefined ? undefined : Buffer.from(data));
  }

  remove(path: string): void {
    for (const p of [...this.nodes.keys()]) if (p === path || p.startsWith(`${path}/`)) this.nodes.delete(p);
  }

  /** Fire (and disarm) the watches on these paths, as ZooKeeper does after a change. */
  fire(...paths: string[]): void {
    for (const path of paths) {
      const ws = this.armed.get(path);
      this.armed.delete(path);
      for (const w of ws ?? []) w({} as zookeeper.Event);
    }
  }

  private children(path: string): string[] {
    const prefix = path === '/' ? '/' : `${path}/`;
    const out = new Set<string>();
    for (const p of this.nodes.keys()) if (p.startsWith(prefix)) out.add(p.slice(prefix.length).split('/')[0]!);
    return [...out];
  }

  private arm(path: string, w: Watcher): void {
    let s = this.armed.get(path);
    if (!s) this.armed.set(path, (s = new Set()));
    s.add(w);
  }

  private read<T>(gen: number, path: string, w: Watcher, answer: () => T): Promise<T> {
    if (!this.isCurrent(gen)) return Promise.reject(new Error('stale session'));
    this.arm(path, w);
    if (!this.nodes.has(path)) return Promise.reject(new NoNode(`no node ${path}`));
    return Promise.resolve(answer());
  }

  isCurrent(gen: number): boolean {
    return gen === this.gen && !this.stopped;
  }

  getChildren(gen: number, path: string, w: Watcher): Promise<string[]> {
    return this.read(gen, path, w, () => this.children(path));
  }

  getData(gen: number, path: string, w: Watcher): Promise<Buffer | undefined> {
    return this.read(gen, path, w, () => this.nodes.get(path));
  }

  exists(gen: number, path: string, w: Watcher): Promise<boolean> {
    if (!this.isCurrent(gen)) return Promise.reject(new Error('stale session'));
    this.arm(path, w);
    return Promise.resolve(this.nodes.has(path));
  }

  watcher(gen: number, key: string, fire: () => void): Watcher {
    let w = this.stable.get(`${gen} ${key}`);
    if (!w) {
      w = () => {
        if (this.isCurrent(gen)) fire();
      };
      this.stable.set(`${gen} ${key}`, w);
    }
    return w;
  }

  noteError(text: string): void {
    this.errors.push(text);
  }
}

const log = pino({ level: 'silent' });
const dubboNode = (iface: string, host: string, extra = '') =>
  encodeURIComponent(`dubbo://${host}:20880/${iface}?interface=${iface}&side=provider&version=1.0${extra}`);
const curator = (host: string, port: number, status = 'UP') => JSON.stringify({ name: 'orders', id: host, address: host, port, payload: { metadata: { instance_status: status } } });
const settle = () => new Promise((r) => setTimeout(r, 10));
const hosts = (table: EndpointTable, service: string) => table.endpointsOf(service)?.map((e) => e.host).sort();

function setup() {
  const zk = new FakeSession();
  const table = new EndpointTable(log);
  const sink = table.sinkFor('zk', 'zookeeper', log);
  const tree = new ZookeeperTree('zk', ['/dubbo/', '/services', '/dubbo'], sink, zk);
  return { zk, table, tree };
}

test('a full listing reports Dubbo interfaces and Curator services; reserved Dubbo nodes are skipped', async () => {
  const { zk, table, tree } = setup();
  zk.put(`/dubbo/com.a.Svc/providers/${dubboNode('com.a.Svc', '10.0.0.1')}`);
  zk.put(`/dubbo/com.a.Svc/providers/${dubboNode('com.a.Svc', '10.0.0.2')}`);
  zk.put('/dubbo/com.a.Svc/consumers');
  zk.put('/dubbo/metadata/x', '{}');
  zk.put('/services/orders/i1', curator('10.1.0.1', 8080));
  zk.put('/services/orders/i2', curator('10.1.0.2', 8080, 'OUT_OF_SERVICE'));
  assert.deepEqual(tree.paths, ['/dubbo', '/services']);
  await tree.resync(1);
  assert.equal(tree.resyncCount, 1);
  assert.deepEqual(hosts(table, 'providers:com.a.Svc:1.0:.zookeeper'), ['10.0.0.1', '10.0.0.2']);
  assert.deepEqual(hosts(table, 'orders.zookeeper'), ['10.1.0.1']);
  assert.deepEqual(table.services().map((s) => s.name).sort(), ['orders.zookeeper', 'providers:com.a.Svc:1.0:.zookeeper']);
  assert.ok(table.registryStates().find((r) => r.name === 'zk')?.synced);
  assert.equal(tree.watchedEntries, 2);
});

test('watches re-read what changed: providers, instances, new and removed entries', async () => {
  const { zk, table, tree } = setup();
  zk.put(`/dubbo/com.a.Svc/providers/${dubboNode('com.a.Svc', '10.0.0.1')}`);
  zk.put('/services/orders/i1', curator('10.1.0.1', 8080));
  await tree.resync(1);

  // a provider leaves: the service stays, empty (the last provider of a version left)
  zk.remove(`/dubbo/com.a.Svc/providers/${dubboNode('com.a.Svc', '10.0.0.1')}`);
  zk.put('/dubbo/com.a.Svc/providers');
  zk.fire('/dubbo/com.a.Svc/providers');
  await settle();
  assert.deepEqual(hosts(table, 'providers:com.a.Svc:1.0:.zookeeper'), []);

  // an instance's data changes: it goes out of service
  zk.put('/services/orders/i1', curator('10.1.0.1', 8080, 'DOWN'));
  zk.fire('/services/orders/i1');
  await settle();
  assert.deepEqual(hosts(table, 'orders.zookeeper'), []);

  // a new Curator service appears under the root; a whole entry goes away
  zk.put('/services/billing/b1', JSON.stringify({ name: 'billing', id: 'b1', address: '10.2.0.1', port: 9000 }));
  zk.remove('/services/orders');
  zk.fire('/services');
  await settle();
  assert.deepEqual(hosts(table, 'billing.zookeeper'), ['10.2.0.1']);
  assert.equal(table.endpointsOf('orders.zookeeper'), undefined);
});

test('a garbage node is skipped and never empties a service; reads of a replaced session change nothing', async () => {
  const { zk, table, tree } = setup();
  zk.put('/services/orders/i1', curator('10.1.0.1', 8080));
  await tree.resync(1);
  zk.put('/services/orders/i1', 'not json');
  zk.fire('/services/orders/i1');
  await settle();
  assert.deepEqual(hosts(table, 'orders.zookeeper'), ['10.1.0.1'], 'an unreadable update keeps what the node said before');

  zk.gen = 2; // the session was replaced: watches of session 1 are dead, its reads fail
  zk.put('/services/orders/i2', curator('10.1.0.2', 8080));
  zk.fire('/services/orders');
  await settle();
  assert.deepEqual(hosts(table, 'orders.zookeeper'), ['10.1.0.1']);
  await tree.resync(1);
  assert.equal(tree.resyncCount, 1, 'a listing through a replaced session does not count');
  assert.deepEqual(zk.errors, [], 'errors of a replaced session are not recorded');

  await tree.resync(2);
  assert.deepEqual(hosts(table, 'orders.zookeeper'), ['10.1.0.1', '10.1.0.2']);
});
