// The Consul watcher against the Consul double, through a real EndpointTable:
// what the gateway would route to, and what /api/registries would show.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import pino from 'pino';
import Consul from 'consul';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import { ConsulRegistrySchema } from '../../../src/config/schema.js';
import type { RegistryWatcher } from '../../../src/discovery/types.js';
import createConsul from '../../../registries/consul/index.js';
import { ConsulDouble, type GarbageMode } from '../../doubles/consul/server.js';
import { waitUntil } from '../../helpers/wait.js';

const log = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const waitFor = (what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> => waitUntil(what, cond, timeoutMs);

interface Setup {
  consul: ConsulDouble;
  table: EndpointTable;
  watcher: RegistryWatcher;
  addrs: (svc?: string) => string[];
  state: () => ReturnType<EndpointTable['registryStates']>[number];
}

async function setup(opts: { double?: ConstructorParameters<typeof ConsulDouble>[0]; config?: Record<string, unknown>; before?: (c: ConsulDouble) => void } = {}): Promise<Setup> {
  const consul = new ConsulDouble(opts.double);
  const address = await consul.start();
  opts.before?.(consul);
  const table = new EndpointTable(log);
  const config = ConsulRegistrySchema.parse({ name: 'consul', type: 'consul', servers: [address], waitSec: 30, ...opts.config });
  const watcher = createConsul(config, table.sinkFor('consul', 'consul', log));
  await watcher.start();
  cleanups.push(() => consul.stop(), () => watcher.stop());
  const dc = (config.datacenter as string) ?? 'dc1';
  return {
    consul,
    table,
    watcher,
    addrs: (svc: string = `web.${dc}.consul`) =>
      (table.endpointsOf(svc) ?? []).map((e) => `${e.host}:${e.port}`).sort(),
    state: () => table.registryStates().find((r) => r.name === 'consul')!,
  };
}

function seedWeb(c: ConsulDouble): void {
  c.register({ ID: 'web-1', Name: 'web', Port: 9001, Address: '10.0.0.1', Tags: ['http'] });
  c.register({ ID: 'web-2', Name: 'web', Port: 9002, Address: '10.0.0.2', Tags: ['http'] });
}

test('first listing: every service under <service>.<dc>.consul with weights, metadata and the node-address fallback; synced', async () => {
  const s = await setup({
    before: (c) => {
      c.register({ ID: 'web-1', Name: 'web', Port: 9001, Address: '10.0.0.1', Tags: ['http', 'version=v2'], Meta: { protocol: 'http' }, Weights: { Passing: 5, Warning: 1 } });
      c.register({ ID: 'api-1', Name: 'api', Port: 7000, Node: 'node2', NodeAddress: '10.0.0.77' });
    },
  });
  await waitFor('synced', () => s.state().synced);
  assert.equal(s.state().up, true);
  assert.deepEqual(s.table.services().map((e) => e.name), ['api.dc1.consul', 'web.dc1.consul']);
  const [web] = s.table.endpointsOf('web.dc1.consul')!;
  assert.equal(web!.weight, 5);
  assert.equal(web!.metadata.protocol, 'http');
  assert.equal(web!.metadata.version, 'v2');
  // Service.Address empty: the node's address is where the instance listens.
  assert.deepEqual(s.addrs('api.dc1.consul'), ['10.0.0.77:7000']);
  // The built-in consul service (server RPC) is not offered as a route target.
  assert.equal(s.table.get('consul.dc1.consul'), undefined);
});

test('services and instances that appear later become routable; removed ones go away', async () => {
  const s = await setup({ before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);

  s.consul.register({ ID: 'web-3', Name: 'web', Port: 9003, Address: '10.0.0.3' });
  await waitFor('new instance', () => s.addrs().includes('10.0.0.3:9003'));

  s.consul.register({ ID: 'orders-1', Name: 'orders', Port: 8100, Address: '10.0.1.1' });
  await waitFor('new service', () => s.addrs('orders.dc1.consul').length === 1);

  s.consul.deregister('web-1');
  await waitFor('instance gone', () => !s.addrs().includes('10.0.0.1:9001'));
  assert.deepEqual(s.addrs(), ['10.0.0.2:9002', '10.0.0.3:9003']);

  s.consul.deregister('orders-1');
  await waitFor('service gone', () => s.table.get('orders.dc1.consul') === undefined);
});

test('a failing health check takes the instance out; all failing leaves the service with no endpoints', async () => {
  const s = await setup({ before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  s.consul.setCheck('web-1', 'critical');
  await waitFor('web-1 out', () => s.addrs().length === 1);
  assert.deepEqual(s.addrs(), ['10.0.0.2:9002']);
  s.consul.setCheck('web-2', 'warning'); // ?passing excludes warning too
  await waitFor('all out', () => s.addrs().length === 0);
  assert.ok(s.table.get('web.dc1.consul'), 'the service still exists, with no routable instance');
  s.consul.setCheck('web-1', 'passing');
  await waitFor('web-1 back', () => s.addrs().length === 1);
});

test('an index change without a data change changes nothing', async () => {
  const s = await setup({ before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  const version = s.table.get('web.dc1.consul')!.version;
  let changes = 0;
  s.table.on('change', () => changes++);
  s.consul.touch('web');
  const target = String(s.consul.index);
  await waitFor('watcher saw the new index', () => s.watcher.describe!().catalogIndex === target);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(changes, 0);
  assert.equal(s.table.get('web.dc1.consul')!.version, version);
});

test('outage: endpoints are kept, the registry shows down, and changes made meanwhile arrive after recovery', async () => {
  const s = await setup({ before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  await s.consul.outage();
  await waitFor('registry down', () => !s.state().up);
  assert.match(s.state().lastError ?? '', /ECONNREFUSED|ECONNRESET|socket hang up|aborted/i);
  assert.deepEqual(s.addrs(), ['10.0.0.1:9001', '10.0.0.2:9002'], 'last known endpoints kept');
  s.consul.deregister('web-2');
  s.consul.register({ ID: 'late-1', Name: 'late', Port: 8200, Address: '10.0.2.1' });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.addrs().length, 2, 'still the last known list while down');
  await s.consul.recover();
  await waitFor('registry up', () => s.state().up, 20_000);
  await waitFor('changes applied', () => s.addrs().length === 1 && s.addrs('late.dc1.consul').length === 1, 20_000);
});

test('HTTP errors (500 No cluster leader) keep the endpoints and show down', async () => {
  const s = await setup({ before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  s.consul.failWith(500, 'No cluster leader');
  await waitFor('registry down', () => !s.state().up);
  assert.match(s.state().lastError ?? '', /500/);
  assert.equal(s.addrs().length, 2);
  s.consul.failWith(undefined);
  await waitFor('registry up', () => s.state().up, 20_000);
});

for (const mode of ['invalid-json', 'wrong-shape', 'html', 'no-index', 'bad-request', 'zero-index'] as GarbageMode[]) {
  test(`garbage answer (${mode}): endpoints kept, registry down, and the watch comes back afterwards`, async () => {
    const s = await setup({ before: seedWeb });
    await waitFor('web listed', () => s.addrs().length === 2);
    s.consul.garbage(mode);
    // The client looks at a payload only when the index moved: make it move.
    s.consul.touch('web');
    await waitFor('registry down', () => !s.state().up);
    assert.deepEqual(s.addrs(), ['10.0.0.1:9001', '10.0.0.2:9002']);
    s.consul.garbage(undefined);
    await waitFor('registry up', () => s.state().up, 20_000);
    // The watch was restarted (a 400 or a missing X-Consul-Index ends the client's watch for good).
    s.consul.register({ ID: 'web-9', Name: 'web', Port: 9009, Address: '10.0.0.9' });
    await waitFor('change after recovery', () => s.addrs().includes('10.0.0.9:9009'), 20_000);
  });
}

test('the index going backwards (snapshot restore) resets the watch instead of blocking until the index catches up', async () => {
  const s = await setup({ before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  // Push the index well above where it will restart.
  for (let i = 0; i < 20; i++) s.consul.touch('web');
  await waitFor('watcher at the high index', () => s.watcher.describe!().catalogIndex === String(s.consul.index));
  s.consul.resetIndex(3);
  s.consul.register({ ID: 'web-3', Name: 'web', Port: 9003, Address: '10.0.0.3' });
  // waitSec is 30: seeing this quickly means the watch did not sit on the old, higher index.
  await waitFor('change after the reset', () => s.addrs().includes('10.0.0.3:9003'), 5_000);
  s.consul.register({ ID: 'reborn-1', Name: 'reborn', Port: 8300, Address: '10.0.3.1' });
  await waitFor('new service after the reset', () => s.addrs('reborn.dc1.consul').length === 1, 5_000);
});

test('tag filter: only services and instances carrying every configured tag; tags sent to Consul', async () => {
  const s = await setup({
    config: { tags: ['http'] },
    before: (c) => {
      seedWeb(c);
      c.register({ ID: 'web-legacy', Name: 'web', Port: 9100, Address: '10.0.0.100', Tags: ['tcp'] });
      c.register({ ID: 'db-1', Name: 'db', Port: 5432, Address: '10.0.5.1', Tags: ['tcp'] });
    },
  });
  await waitFor('synced', () => s.state().synced);
  assert.deepEqual(s.table.services().map((e) => e.name), ['web.dc1.consul']);
  assert.deepEqual(s.addrs(), ['10.0.0.1:9001', '10.0.0.2:9002']);
  const healthQueries = s.consul.requests.filter((r) => r.path === '/v1/health/service/web');
  assert.ok(healthQueries.length > 0 && healthQueries.every((r) => r.query.getAll('tag').includes('http')));
  // The service loses its tag: it leaves the gateway.
  s.consul.register({ ID: 'web-1', Name: 'web', Port: 9001, Address: '10.0.0.1', Tags: [] });
  s.consul.register({ ID: 'web-2', Name: 'web', Port: 9002, Address: '10.0.0.2', Tags: [] });
  await waitFor('untagged service removed', () => s.table.get('web.dc1.consul') === undefined);
});

test('ACL token: sent as X-Consul-Token on every query; a wrong token shows the registry down with the 403', async () => {
  const s = await setup({ double: { token: 's3cret' }, config: { token: 's3cret' }, before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  const reads = s.consul.requests.filter((r) => r.method === 'GET');
  assert.ok(reads.length >= 2 && reads.every((r) => r.headers['x-consul-token'] === 's3cret'));

  const bad = await setup({ double: { token: 's3cret' }, config: { token: 'wrong' }, before: seedWeb });
  await waitFor('registry down', () => /403/.test(bad.state().lastError ?? ''));
  assert.equal(bad.table.services().length, 0);
  assert.equal(bad.state().synced, false);
});

test('datacenter: queries carry dc, names carry the datacenter', async () => {
  const s = await setup({ double: { datacenter: 'eu-west' }, config: { datacenter: 'eu-west' }, before: seedWeb });
  await waitFor('web listed', () => s.addrs().length === 2);
  assert.ok(s.table.get('web.eu-west.consul'));
  assert.ok(s.consul.requests.every((r) => r.query.get('dc') === 'eu-west'));
  // A datacenter Consul does not know is an error, not an empty registry.
  const other = await setup({ double: { datacenter: 'eu-west' }, config: { datacenter: 'us-east' }, before: seedWeb });
  await waitFor('registry down', () => /No path to datacenter/.test(other.state().lastError ?? ''));
});

test('a service registering itself through the consul npm client becomes routable, and goes away on deregistration', async () => {
  const s = await setup();
  await waitFor('synced', () => s.state().synced);
  const [host, port] = s.consul.address.split(':');
  const client = new Consul({ host, port: Number(port) });
  cleanups.push(() => client.destroy());
  await client.agent.service.register({ name: 'self', id: 'self-1', address: '127.0.0.1', port: 4567, tags: ['version=v3'], meta: { team: 'a' } });
  await waitFor('self routable', () => s.addrs('self.dc1.consul').length === 1);
  assert.equal(s.table.endpointsOf('self.dc1.consul')![0]!.metadata.version, 'v3');
  assert.equal(s.table.endpointsOf('self.dc1.consul')![0]!.metadata.team, 'a');
  await client.agent.service.deregister('self-1');
  await waitFor('self gone', () => s.table.get('self.dc1.consul') === undefined);
});

test('several servers: an unreachable first server is skipped', async () => {
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', () => r()));
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r()));
  const consul = new ConsulDouble();
  const address = await consul.start();
  seedWeb(consul);
  const table = new EndpointTable(log);
  const watcher = createConsul(
    ConsulRegistrySchema.parse({ name: 'consul', type: 'consul', servers: [`127.0.0.1:${deadPort}`, address] }),
    table.sinkFor('consul', 'consul', log),
  );
  await watcher.start();
  cleanups.push(() => consul.stop(), () => watcher.stop());
  await waitFor('web listed via the second server', () => (table.endpointsOf('web.dc1.consul') ?? []).length === 2);
  assert.equal(watcher.describe!().server, address);
});
