// End to end: HTTP through the gateway to services found in Consul and in
// Eureka (doubles), including services that appear after start, removal,
// registry outages (last known endpoints keep serving) and /api/registries.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import type { Gateway } from '../../../src/gateway.js';
import { ConsulDouble } from '../../doubles/consul/server.js';
import { EurekaDouble } from '../../doubles/eureka/server.js';

let consul: ConsulDouble;
let eureka: EurekaDouble;
let gw: Gateway;
const ups: TestUpstream[] = [];

async function get(path: string): Promise<{ status: number; instance: string | null }> {
  const res = await fetch(`${gw.listenerUrl('public')}${path}`);
  await res.arrayBuffer();
  return { status: res.status, instance: res.headers.get('x-instance') };
}

async function registries(): Promise<Array<{ name: string; up: boolean; synced: boolean; lastError?: string; details?: Record<string, unknown> }>> {
  return (await (await fetch(`${gw.adminUrl()}/api/registries`)).json()) as never;
}

before(async () => {
  for (const name of ['consul-web', 'consul-late', 'eureka-users', 'eureka-late']) ups.push(await startUpstream(name));
  consul = new ConsulDouble();
  await consul.start();
  eureka = new EurekaDouble();
  await eureka.start();
  consul.register({ ID: 'web-1', Name: 'web', Port: ups[0]!.port, Address: '127.0.0.1' });
  eureka.register({ app: 'USER-SERVICE', instanceId: 'u1', ipAddr: '127.0.0.1', port: ups[2]!.port });
  gw = await startGateway({
    registries: [
      { name: 'consul', type: 'consul', servers: [consul.address], datacenter: 'dc1', waitSec: 30 },
      { name: 'eureka', type: 'eureka', servers: [eureka.url], fetchIntervalMs: 200 },
    ],
    routes: [
      { name: 'c', match: { path: { prefix: '/consul/web' } }, backends: [{ service: 'web.dc1.consul' }] },
      { name: 'cl', match: { path: { prefix: '/consul/late' } }, backends: [{ service: 'late.dc1.consul' }] },
      { name: 'e', match: { path: { prefix: '/eureka/users' } }, backends: [{ service: 'user-service.eureka' }] },
      { name: 'el', match: { path: { prefix: '/eureka/late' } }, backends: [{ service: 'late-app.eureka' }] },
    ],
  } as never);
});

after(async () => {
  await gw?.stop();
  await consul?.stop();
  await eureka?.stop();
  for (const u of ups) await u.close();
});

test('routes to a Consul service and to a Eureka service', async () => {
  await waitFor(async () => (await get('/consul/web')).instance === 'consul-web');
  await waitFor(async () => (await get('/eureka/users')).instance === 'eureka-users');
  const regs = await registries();
  for (const name of ['consul', 'eureka']) {
    const r = regs.find((x) => x.name === name)!;
    assert.equal(r.up, true);
    assert.equal(r.synced, true);
    assert.ok(r.details, `${name} describes itself in /api/registries`);
  }
  const metrics = await (await fetch(`${gw.adminUrl()}/metrics`)).text();
  assert.match(metrics, /meshgate_registry_up\{registry="consul"\} 1/);
  assert.match(metrics, /meshgate_registry_up\{registry="eureka"\} 1/);
});

test('services registered after start become routable without a restart', async () => {
  assert.notEqual((await get('/consul/late')).status, 200);
  assert.notEqual((await get('/eureka/late')).status, 200);
  consul.register({ ID: 'late-1', Name: 'late', Port: ups[1]!.port, Address: '127.0.0.1' });
  eureka.register({ app: 'late-app', instanceId: 'l1', ipAddr: '127.0.0.1', port: ups[3]!.port });
  await waitFor(async () => (await get('/consul/late')).instance === 'consul-late');
  await waitFor(async () => (await get('/eureka/late')).instance === 'eureka-late');
});

test('registry outages: down in /api/registries and metrics, traffic keeps flowing to the last known instances', async () => {
  await consul.outage();
  await eureka.outage();
  try {
    await waitFor(async () => (await registries()).every((r) => !r.up));
    const metrics = await (await fetch(`${gw.adminUrl()}/metrics`)).text();
    assert.match(metrics, /meshgate_registry_up\{registry="consul"\} 0/);
    assert.equal((await get('/consul/web')).instance, 'consul-web');
    assert.equal((await get('/eureka/users')).instance, 'eureka-users');
  } finally {
    await consul.recover();
    await eureka.recover();
  }
  await waitFor(async () => (await registries()).every((r) => r.up), 20_000);
});

test('removed instances stop receiving traffic', async () => {
  consul.deregister('late-1');
  eureka.deregister('late-app', 'l1');
  await waitFor(async () => (await get('/consul/late')).status === 503);
  await waitFor(async () => (await get('/eureka/late')).status === 503);
});
