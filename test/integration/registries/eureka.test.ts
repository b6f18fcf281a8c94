// The Eureka watcher against the Eureka double, through a real EndpointTable,
// plus a service registering itself with the real eureka-js-client.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { createRequire } from 'node:module';
import pino from 'pino';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import { EurekaRegistrySchema } from '../../../src/config/schema.js';
import type { RegistryWatcher } from '../../../src/discovery/types.js';
import createEureka from '../../../registries/eureka/index.js';
import { EurekaDouble, type EurekaDoubleOptions, type EurekaGarbage } from '../../doubles/eureka/server.js';
import { waitUntil } from '../../helpers/wait.js';

interface EurekaJsClient {
  start(cb: (err?: Error) => void): void;
  stop(cb: (err?: Error) => void): void;
}
const require = createRequire(import.meta.url);
const { Eureka } = require('eureka-js-client') as { Eureka: new (config: unknown) => EurekaJsClient };

const log = pino({ level: 'silent' });
const cleanups: (() => unknown)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const waitFor = (what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> => waitUntil(what, cond, timeoutMs);

const INTERVAL = 100;

async function setup(opts: { double?: EurekaDoubleOptions; url?: (d: EurekaDouble) => string; before?: (d: EurekaDouble) => void; fetchIntervalMs?: number } = {}) {
  const eureka = new EurekaDouble(opts.double);
  await eureka.start();
  opts.before?.(eureka);
  const table = new EndpointTable(log);
  const config = EurekaRegistrySchema.parse({ name: 'eureka', type: 'eureka', servers: [opts.url ? opts.url(eureka) : eureka.url], fetchIntervalMs: opts.fetchIntervalMs ?? INTERVAL });
  const watcher: RegistryWatcher = createEureka(config, table.sinkFor('eureka', 'eureka', log));
  await watcher.start();
  cleanups.push(() => eureka.stop(), () => watcher.stop());
  return {
    eureka,
    table,
    watcher,
    addrs: (svc = 'user-service.eureka') => (table.endpointsOf(svc) ?? []).map((e) => `${e.host}:${e.port}`).sort(),
    state: () => table.registryStates().find((r) => r.name === 'eureka')!,
    stats: () => watcher.describe!() as { fullFetches: number; deltaFetches: number; hashcodeMismatches: number; lastError?: string },
  };
}

function seed(d: EurekaDouble): void {
  d.register({ app: 'USER-SERVICE', instanceId: 'u1', ipAddr: '10.0.0.1', port: 8080, metadata: { weight: '3', zone: 'a' } });
  d.register({ app: 'USER-SERVICE', instanceId: 'u2', ipAddr: '10.0.0.2', port: 8080 });
}

test('first fetch: <app>.eureka with UP instances only, weight from metadata; JSON asked for; synced', async () => {
  const s = await setup({
    before: (d) => {
      seed(d);
      d.register({ app: 'USER-SERVICE', instanceId: 'u3', ipAddr: '10.0.0.3', port: 8080, status: 'STARTING' });
      d.register({ app: 'billing', instanceId: 'b1', ipAddr: '10.0.1.1', port: 9000, status: 'DOWN' });
    },
  });
  await waitFor('synced', () => s.state().synced);
  assert.equal(s.state().up, true);
  assert.deepEqual(s.table.services().map((e) => e.name), ['billing.eureka', 'user-service.eureka']);
  assert.deepEqual(s.addrs(), ['10.0.0.1:8080', '10.0.0.2:8080']);
  assert.deepEqual(s.addrs('billing.eureka'), [], 'an app whose instances are all DOWN has nothing to route to');
  const u1 = s.table.endpointsOf('user-service.eureka')!.find((e) => e.host === '10.0.0.1')!;
  assert.equal(u1.weight, 3);
  assert.equal(u1.metadata.zone, 'a');
  assert.ok(s.eureka.requests.every((r) => r.headers.accept === 'application/json'));
});

test('Netflix prefix (/eureka/v2) and basic auth in the server URL', async () => {
  const s = await setup({ double: { prefix: '/eureka/v2', auth: { user: 'admin', password: 's3cr:t' } }, before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  assert.ok(s.eureka.requests.every((r) => r.path.startsWith('/eureka/v2/apps')));

  const noAuth = await setup({ double: { auth: { user: 'admin', password: 'pw' } }, url: (d) => `http://127.0.0.1:${d.listenPort}/eureka`, before: seed });
  await waitFor('registry down with 401', () => /401/.test(noAuth.state().lastError ?? ''));
  assert.equal(noAuth.table.services().length, 0);
});

test('instances and apps that appear later become routable through deltas; removed ones go away', async () => {
  const s = await setup({ before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  s.eureka.register({ app: 'USER-SERVICE', instanceId: 'u4', ipAddr: '10.0.0.4', port: 8080 });
  await waitFor('new instance', () => s.addrs().includes('10.0.0.4:8080'));
  s.eureka.register({ app: 'orders', instanceId: 'o1', ipAddr: '10.0.2.1', port: 7000 });
  await waitFor('new app', () => s.addrs('orders.eureka').length === 1);
  s.eureka.deregister('USER-SERVICE', 'u1');
  await waitFor('instance gone', () => !s.addrs().includes('10.0.0.1:8080'));
  s.eureka.deregister('orders', 'o1');
  await waitFor('app gone', () => s.table.get('orders.eureka') === undefined);
  const st = s.stats();
  assert.equal(st.fullFetches, 1, 'everything after the first fetch came through deltas');
  assert.ok(st.deltaFetches >= 4);
  assert.equal(st.hashcodeMismatches, 0);
});

test('status changes: DOWN and an OUT_OF_SERVICE override take an instance out; clearing the override puts it back', async () => {
  const s = await setup({ before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  s.eureka.setStatus('USER-SERVICE', 'u2', 'DOWN');
  await waitFor('u2 out', () => s.addrs().length === 1);
  s.eureka.setStatus('USER-SERVICE', 'u2', 'UP');
  await waitFor('u2 back', () => s.addrs().length === 2);
  s.eureka.override('USER-SERVICE', 'u1', 'OUT_OF_SERVICE');
  await waitFor('u1 out', () => !s.addrs().includes('10.0.0.1:8080'));
  s.eureka.removeOverride('USER-SERVICE', 'u1');
  await waitFor('u1 back', () => s.addrs().includes('10.0.0.1:8080'));
  // An instance still reporting UP while an override is recorded (e.g. mid-replication) does not route.
  s.eureka.patch('USER-SERVICE', 'u2', { status: 'UP', overriddenStatus: 'OUT_OF_SERVICE' });
  await waitFor('u2 out by overriddenStatus', () => s.addrs().length === 1 && s.addrs()[0] === '10.0.0.1:8080');
});

test('weights change with metadata', async () => {
  const s = await setup({ before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  s.eureka.setMetadata('USER-SERVICE', 'u2', { weight: '10' });
  await waitFor('weight applied', () => s.table.endpointsOf('user-service.eureka')!.find((e) => e.host === '10.0.0.2')!.weight === 10);
});

test('a delta whose hashcode does not match the local copy triggers a full fetch that brings the missed change', async () => {
  const s = await setup({ before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  // A change the delta never carries (a lost replication event); apps__hashcode still counts it.
  s.eureka.register({ app: 'hidden', instanceId: 'h1', ipAddr: '10.0.3.1', port: 6000 }, { silent: true });
  await waitFor('missed change recovered', () => s.addrs('hidden.eureka').length === 1);
  assert.ok(s.stats().hashcodeMismatches >= 1);
  assert.ok(s.stats().fullFetches >= 2);

  // A server that keeps sending a wrong hashcode: every delta is dropped for a full fetch, data stays right.
  s.eureka.corruptDeltaHashcode = true;
  const before = s.stats().fullFetches;
  s.eureka.deregister('USER-SERVICE', 'u2');
  await waitFor('change via full fetch', () => s.addrs().length === 1);
  await waitFor('more full fetches', () => s.stats().fullFetches >= before + 2);
  assert.equal(s.state().up, true, 'a mismatch is not an outage');
});

test('deltas disabled on the server (403): full fetches every interval still propagate changes', async () => {
  const s = await setup({ before: seed });
  s.eureka.deltaDisabled = true;
  await waitFor('listed', () => s.addrs().length === 2);
  s.eureka.register({ app: 'USER-SERVICE', instanceId: 'u5', ipAddr: '10.0.0.5', port: 8080 });
  await waitFor('new instance', () => s.addrs().includes('10.0.0.5:8080'));
  assert.equal(s.state().up, true);
});

test('outage: endpoints kept, registry down; changes made meanwhile arrive after recovery', async () => {
  const s = await setup({ before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  await s.eureka.outage();
  await waitFor('registry down', () => !s.state().up);
  assert.match(s.state().lastError ?? '', /ECONNREFUSED|ECONNRESET|other side closed|socket/i);
  assert.deepEqual(s.addrs(), ['10.0.0.1:8080', '10.0.0.2:8080']);
  s.eureka.deregister('USER-SERVICE', 'u1');
  s.eureka.register({ app: 'late', instanceId: 'l1', ipAddr: '10.0.4.1', port: 5000 });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.addrs().length, 2, 'still the last known list');
  await s.eureka.recover();
  await waitFor('registry up', () => s.state().up, 20_000);
  await waitFor('changes applied', () => s.addrs().length === 1 && s.addrs('late.eureka').length === 1, 20_000);
});

test('HTTP errors keep the endpoints and show down', async () => {
  const s = await setup({ before: seed });
  await waitFor('listed', () => s.addrs().length === 2);
  s.eureka.failWith(503);
  await waitFor('registry down', () => /503/.test(s.state().lastError ?? ''));
  assert.equal(s.addrs().length, 2);
  s.eureka.failWith(undefined);
  await waitFor('registry up', () => s.state().up, 20_000);
});

for (const mode of ['invalid-json', 'wrong-shape', 'xml'] as EurekaGarbage[]) {
  test(`garbage answer (${mode}): endpoints kept, registry down, back afterwards`, async () => {
    const s = await setup({ before: seed });
    await waitFor('listed', () => s.addrs().length === 2);
    s.eureka.garbage(mode);
    await waitFor('registry down', () => !s.state().up);
    assert.deepEqual(s.addrs(), ['10.0.0.1:8080', '10.0.0.2:8080']);
    s.eureka.garbage(undefined);
    s.eureka.register({ app: 'USER-SERVICE', instanceId: 'u6', ipAddr: '10.0.0.6', port: 8080 });
    await waitFor('registry up with the change', () => s.state().up && s.addrs().includes('10.0.0.6:8080'), 20_000);
  });
}

function selfRegistering(d: EurekaDouble, heartbeatMs: number): EurekaJsClient {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  return new Eureka({
    logger: quiet,
    cwd: os.tmpdir(),
    instance: {
      app: 'selfreg',
      instanceId: 'selfreg-1',
      hostName: 'localhost',
      ipAddr: '127.0.0.1',
      port: { $: 4321, '@enabled': true },
      vipAddress: 'selfreg',
      metadata: { weight: '4', version: 'v7' },
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
    },
    eureka: {
      host: '127.0.0.1',
      port: d.listenPort,
      servicePath: `${d.prefix}/apps/`,
      heartbeatInterval: heartbeatMs,
      fetchRegistry: false,
      maxRetries: 0,
    },
  });
}

test('a service registering itself with eureka-js-client becomes routable; heartbeat 404 re-registers; stop removes it', async () => {
  const s = await setup();
  await waitFor('synced', () => s.state().synced);
  const client = selfRegistering(s.eureka, 100);
  await new Promise<void>((resolve, reject) => client.start((err) => (err ? reject(err) : resolve())));
  let stopped = false;
  cleanups.push(() => (stopped ? undefined : new Promise<void>((r) => client.stop(() => r()))));
  await waitFor('self-registered routable', () => s.addrs('selfreg.eureka').length === 1);
  const [ep] = s.table.endpointsOf('selfreg.eureka')!;
  assert.equal(`${ep!.host}:${ep!.port}`, '127.0.0.1:4321');
  assert.equal(ep!.weight, 4);
  assert.equal(ep!.metadata.version, 'v7');
  await waitFor('heartbeats', () => s.eureka.requests.filter((r) => r.method === 'PUT' && r.path === '/eureka/apps/selfreg/selfreg-1').length >= 2);

  // The server forgets it (e.g. evicted): the next heartbeat gets 404 and the client registers again.
  s.eureka.deregister('selfreg', 'selfreg-1');
  await waitFor('re-registered', () => s.eureka.instances('selfreg').length === 1);
  await waitFor('routable again', () => s.addrs('selfreg.eureka').length === 1);

  await new Promise<void>((resolve) => client.stop(() => resolve()));
  stopped = true;
  await waitFor('gone after deregistration', () => s.table.get('selfreg.eureka') === undefined);
});
