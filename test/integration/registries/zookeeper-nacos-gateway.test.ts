// End to end: HTTP through the gateway to services discovered in a real
// ZooKeeper and in the Nacos double: routing, services that appear later,
// instance changes, and a 30 s outage of both registries under steady load
// with zero failed requests, after which changes made meanwhile are picked up.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import zookeeper from 'node-zookeeper-client';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { startZookeeper, type ZookeeperServer } from '../../helpers/zookeeper.js';
import type { Gateway } from '../../../src/gateway.js';
import { NacosDouble, startNacosDouble } from '../../doubles/nacos/server.js';

let zk: ZookeeperServer;
let writer: zookeeper.Client;
let nacos: NacosDouble;
let gw: Gateway;
const ups = new Map<string, TestUpstream>();

function connectWriter(connectString: string): Promise<zookeeper.Client> {
  const c = zookeeper.createClient(connectString, { sessionTimeout: 30000, spinDelay: 200 });
  return new Promise((resolve) => {
    c.once('connected', () => resolve(c));
    c.connect();
  });
}

function zkCall<T>(fn: (cb: (err: unknown, r?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, r) => (err ? reject(err) : resolve(r as T))));
}

async function zkInstance(service: string, id: string, port: number): Promise<void> {
  const data = Buffer.from(JSON.stringify({ name: service, id, address: '127.0.0.1', port, sslPort: null, payload: { metadata: { instance_status: 'UP' } }, serviceType: 'DYNAMIC' }));
  await zkCall((cb) => writer.mkdirp(`/services/${service}`, cb));
  await zkCall((cb) => writer.create(`/services/${service}/${id}`, data, zookeeper.CreateMode.PERSISTENT, cb));
}

async function get(path: string): Promise<{ status: number; instance: string | null }> {
  const res = await fetch(`${gw.listenerUrl('public')}${path}`);
  await res.arrayBuffer();
  return { status: res.status, instance: res.headers.get('x-instance') };
}

async function registries(): Promise<Array<{ name: string; up: boolean; synced: boolean; details?: Record<string, unknown> }>> {
  return (await (await fetch(`${gw.adminUrl()}/api/registries`)).json()) as never;
}

before(async () => {
  for (const name of ['zk-web-1', 'zk-web-2', 'zk-late', 'nacos-users-1', 'nacos-users-2', 'nacos-late']) ups.set(name, await startUpstream(name));
  zk = await startZookeeper();
  writer = await connectWriter(zk.connectString);
  nacos = await startNacosDouble({ cacheMillis: 10_000 });
  await zkInstance('web', 'w1', ups.get('zk-web-1')!.port);
  nacos.register('user_service', { ip: '127.0.0.1', port: ups.get('nacos-users-1')!.port });
  gw = await startGateway({
    registries: [
      { name: 'zk', type: 'zookeeper', servers: [zk.connectString], spinDelayMs: 200 },
      { name: 'nacos', type: 'nacos', servers: [nacos.address], serviceListIntervalMs: 300, pollIntervalMs: 1000 },
    ],
    routes: [
      { name: 'zw', match: { path: { prefix: '/zk/web' } }, backends: [{ service: 'web.zookeeper' }] },
      { name: 'zl', match: { path: { prefix: '/zk/late' } }, backends: [{ service: 'late.zookeeper' }] },
      { name: 'nu', match: { path: { prefix: '/nacos/users' } }, backends: [{ service: 'user_service.DEFAULT-GROUP.public.nacos' }] },
      { name: 'nl', match: { path: { prefix: '/nacos/late' } }, backends: [{ service: 'late.DEFAULT-GROUP.public.nacos' }] },
    ],
  } as never);
});

after(async () => {
  await gw?.stop();
  writer?.close();
  await zk?.destroy();
  await nacos?.stop();
  for (const u of ups.values()) await u.close();
});

test('routes to a ZooKeeper service and to a Nacos service; both registries up in /api/registries and metrics', async () => {
  await waitFor(async () => (await get('/zk/web')).instance === 'zk-web-1');
  await waitFor(async () => (await get('/nacos/users')).instance === 'nacos-users-1');
  const regs = await registries();
  for (const name of ['zk', 'nacos']) {
    const r = regs.find((x) => x.name === name)!;
    assert.equal(r.up, true, `${name} up`);
    assert.equal(r.synced, true, `${name} synced`);
  }
  const metrics = await (await fetch(`${gw.adminUrl()}/metrics`)).text();
  assert.match(metrics, /meshgate_registry_up\{registry="zk"\} 1/);
  assert.match(metrics, /meshgate_registry_up\{registry="nacos"\} 1/);
});

test('services registered after start become routable without a restart; instance changes reroute traffic', async () => {
  assert.notEqual((await get('/zk/late')).status, 200);
  assert.notEqual((await get('/nacos/late')).status, 200);
  await zkInstance('late', 'l1', ups.get('zk-late')!.port);
  nacos.register('late', { ip: '127.0.0.1', port: ups.get('nacos-late')!.port });
  await waitFor(async () => (await get('/zk/late')).instance === 'zk-late');
  await waitFor(async () => (await get('/nacos/late')).instance === 'nacos-late');

  // a second instance appears: both get traffic
  await zkInstance('web', 'w2', ups.get('zk-web-2')!.port);
  nacos.register('user_service', { ip: '127.0.0.1', port: ups.get('nacos-users-2')!.port });
  await waitFor(async () => (await get('/zk/web')).instance === 'zk-web-2');
  await waitFor(async () => (await get('/nacos/users')).instance === 'nacos-users-2');

  // an instance leaves: it gets no more traffic
  await zkCall((cb) => writer.remove('/services/late/l1', cb));
  nacos.deregister('late', '127.0.0.1', ups.get('nacos-late')!.port);
  await waitFor(async () => (await get('/zk/late')).status === 503);
  await waitFor(async () => (await get('/nacos/late')).status === 503);
});

test('both registries down for 30 s under steady load: zero failed requests; changes made meanwhile are picked up', async () => {
  const counts = { ok: 0, failed: 0 };
  const failures: string[] = [];
  let running = true;
  const worker = async (path: string) => {
    while (running) {
      try {
        const r = await get(path);
        if (r.status === 200) counts.ok++;
        else {
          counts.failed++;
          failures.push(`${path} ${r.status}`);
        }
      } catch (err) {
        counts.failed++;
        failures.push(`${path} ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const load = [worker('/zk/web'), worker('/zk/web'), worker('/nacos/users'), worker('/nacos/users')];
  try {
    await new Promise((r) => setTimeout(r, 500));
    writer.close();
    await zk.stop();
    await nacos.stop();
    await waitFor(async () => (await registries()).filter((r) => r.name === 'zk' || r.name === 'nacos').every((r) => !r.up), 15_000);
    const metrics = await (await fetch(`${gw.adminUrl()}/metrics`)).text();
    assert.match(metrics, /meshgate_registry_up\{registry="zk"\} 0/);
    assert.match(metrics, /meshgate_registry_up\{registry="nacos"\} 0/);
    // Nacos changes made while the gateway cannot see them
    nacos.deregister('user_service', '127.0.0.1', ups.get('nacos-users-1')!.port);
    await new Promise((r) => setTimeout(r, 30_000));
    const duringOutage = { ...counts };
    assert.equal(duringOutage.failed, 0, `failed requests during the outage: ${failures.slice(0, 5).join('; ')}`);
    assert.ok(duringOutage.ok > 100, `steady load ran (${duringOutage.ok} requests)`);

    await zk.restart();
    await nacos.start();
    writer = await connectWriter(zk.connectString);
    // a ZooKeeper change made as soon as it is back
    await zkCall((cb) => writer.remove('/services/web/w1', cb));
    await waitFor(async () => (await registries()).filter((r) => r.name === 'zk' || r.name === 'nacos').every((r) => r.up), 30_000);
    // after the changes are seen, only the remaining instances get traffic
    await waitFor(async () => {
      const seen = new Set<string | null>();
      for (let i = 0; i < 6; i++) seen.add((await get('/zk/web')).instance);
      return seen.size === 1 && seen.has('zk-web-2');
    }, 30_000);
    await waitFor(async () => {
      const seen = new Set<string | null>();
      for (let i = 0; i < 6; i++) seen.add((await get('/nacos/users')).instance);
      return seen.size === 1 && seen.has('nacos-users-2');
    }, 30_000);
  } finally {
    running = false;
    await Promise.all(load);
  }
  assert.equal(counts.failed, 0, `failed requests: ${failures.slice(0, 5).join('; ')}`);
});
