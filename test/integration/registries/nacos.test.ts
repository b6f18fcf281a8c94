// The Nacos registry against the Nacos double, with the real `nacos` npm client
// both inside the gateway and on the providers' side (register + beats).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { NacosNamingClient } from 'nacos';
import { request } from 'undici';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import { NacosRegistrySchema } from '../../../src/config/schema.js';
import createNacos from '../../../registries/nacos/index.js';
import { NacosDouble, startNacosDouble } from '../../doubles/nacos/server.js';
import { waitUntil } from '../../helpers/wait.js';

const waitFor = (what: string, cond: () => boolean, timeoutMs = 20000): Promise<void> => waitUntil(what, cond, timeoutMs);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} } as unknown as typeof console;

function hosts(table: EndpointTable, service: string): string[] | undefined {
  return table.endpointsOf(service)?.map((e) => `${e.host}:${e.port}`).sort();
}

describe('nacos registry (Nacos double + real npm client)', () => {
  const logs: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void logs.push(s) });
  const running: Array<{ stop(): unknown }> = [];
  const doubles: NacosDouble[] = [];

  after(async () => {
    for (const r of running) await r.stop();
    for (const d of doubles) await d.stop();
  });

  async function setup(opts: { double?: ConstructorParameters<typeof NacosDouble>[0]; config?: Record<string, unknown> } = {}) {
    const nacos = await startNacosDouble({ cacheMillis: 60_000, ...opts.double });
    doubles.push(nacos);
    const table = new EndpointTable(log);
    const config = NacosRegistrySchema.parse({
      name: 'nacos',
      type: 'nacos',
      servers: [nacos.address],
      serviceListIntervalMs: 300,
      // long: changes in these tests arrive by push unless a test says otherwise
      pollIntervalMs: 60_000,
      ...opts.config,
    });
    const watcher = createNacos(config, table.sinkFor('nacos', 'nacos', log));
    running.push(watcher);
    await watcher.start();
    return { nacos, table, watcher, state: () => table.registryStates()[0]! };
  }

  test('services that appear later become visible; instance changes arrive by push; removal and "all gone"', async () => {
    const { nacos, table } = await setup();
    nacos.register('user_service', { ip: '10.0.0.1', port: 8080, weight: 2.5, metadata: { version: 'v1' } });
    await waitFor('synced with first service', () => table.allSynced() && hosts(table, 'user_service.DEFAULT-GROUP.public.nacos')?.length === 1);
    const svc = 'user_service.DEFAULT-GROUP.public.nacos';
    const e = table.endpointsOf(svc)![0]!;
    assert.equal(e.weight, 2.5);
    assert.equal(e.metadata.version, 'v1');
    await waitFor('subscribed for push', () => nacos.pushSubscribers() >= 1);

    // a real provider registers through the npm client (register + beats)
    const provider = new NacosNamingClient({ logger: quiet, serverList: nacos.address, namespace: 'public' });
    await provider.ready();
    try {
      await provider.registerInstance('user_service', { ip: '10.0.0.2', port: 8080, weight: 1, healthy: true, enabled: true, instanceId: '' } as never);
      await waitFor('second instance by push', () => hosts(table, svc)?.length === 2, 15000);
      assert.ok(nacos.stats.pushAcks >= 1, 'the client acknowledged pushes');

      // disabled in Nacos: still listed, weight 0, so not routed
      await request(`http://${nacos.address}/nacos/v1/ns/instance?serviceName=user_service&ip=10.0.0.1&port=8080&enabled=false`, { method: 'PUT' }).then((r) => r.body.text());
      await waitFor('disabled -> weight 0', () => table.endpointsOf(svc)!.find((x) => x.host === '10.0.0.1')?.weight === 0, 15000);

      // deregistered
      await provider.deregisterInstance('user_service', { ip: '10.0.0.2', port: 8080 } as never);
      await waitFor('deregistered by push', () => hosts(table, svc)?.join() === '10.0.0.1:8080', 15000);

      // last instance gone: the service is empty, by push (the npm client alone would ignore this)
      nacos.deregister('user_service', '10.0.0.1', 8080);
      await waitFor('all instances gone -> empty', () => table.endpointsOf(svc)?.length === 0, 15000);

      // same instance comes back: routable again
      nacos.register('user_service', { ip: '10.0.0.1', port: 8080 });
      await waitFor('back', () => hosts(table, svc)?.join() === '10.0.0.1:8080', 15000);
    } finally {
      await (provider as unknown as { close(): Promise<void> }).close();
    }

    // a brand-new service: routable without restart
    nacos.register('orders', { ip: '10.0.1.1', port: 9000 });
    await waitFor('new service', () => hosts(table, 'orders.DEFAULT-GROUP.public.nacos')?.join() === '10.0.1.1:9000', 15000);

    // a service deleted from Nacos goes away
    nacos.deregister('orders', '10.0.1.1', 9000);
    nacos.deleteService('orders');
    await waitFor('service removed', () => table.get('orders.DEFAULT-GROUP.public.nacos') === undefined, 15000);
  });

  test('a service listing cut half way adds and removes nothing; the next whole one does', async () => {
    const { nacos, table } = await setup();
    // 600 services: two pages of 500.
    for (let i = 0; i < 600; i++) nacos.register(`s${String(i).padStart(3, '0')}`, { ip: '10.2.0.1', port: 1000 + i });
    await waitFor('all 600 known', () => table.allSynced() && [...table.serviceNames()].length === 600, 30_000);
    nacos.failListPage = 2;
    const pages = nacos.listPages;
    nacos.deleteService('s000');
    nacos.register('s999', { ip: '10.2.0.2', port: 80 });
    // Page 1 (which no longer names s000) came, page 2 failed: two more listings, each cut.
    await waitFor('listings tried', () => nacos.listPages >= pages + 4, 10_000);
    // (Its instances went with it, by push; the service itself stays until a whole listing leaves it out.)
    assert.ok(table.get('s000.DEFAULT-GROUP.public.nacos'), 'kept: the listing was not whole');
    assert.equal(table.endpointsOf('s999.DEFAULT-GROUP.public.nacos'), undefined, 'not added from a cut listing');
    nacos.failListPage = undefined;
    await waitFor('removed and added once a listing is whole', () => table.get('s000.DEFAULT-GROUP.public.nacos') === undefined && hosts(table, 's999.DEFAULT-GROUP.public.nacos')?.join() === '10.2.0.2:80', 10_000);
    assert.equal([...table.serviceNames()].length, 600);
  });

  test('groups list, clusters filter, Dubbo providers keep their metadata', async () => {
    const { nacos, table } = await setup({ config: { groups: ['DEFAULT_GROUP', 'PAY_GROUP'], clusters: ['DEFAULT', 'hz'] } });
    nacos.register('pay', { ip: '10.0.2.1', port: 80, clusterName: 'hz' }, 'PAY_GROUP');
    nacos.register('pay', { ip: '10.0.2.2', port: 80, clusterName: 'bj' }, 'PAY_GROUP');
    nacos.register('pay', { ip: '10.0.2.3', port: 80 }, 'OTHER_GROUP');
    nacos.register('providers:com.foo.DemoService:1.0.0:', {
      ip: '10.0.3.1',
      port: 20880,
      metadata: { application: 'demo', methods: 'sayHello', side: 'provider', dubbo: '2.0.2', 'release': '3.2.0' },
    });
    await waitFor('pay in PAY_GROUP', () => hosts(table, 'pay.PAY-GROUP.public.nacos')?.join() === '10.0.2.1:80');
    assert.equal(table.get('pay.OTHER-GROUP.public.nacos'), undefined, 'groups not configured are not watched');
    const dubbo = 'providers:com.foo.DemoService:1.0.0:.DEFAULT-GROUP.public.nacos';
    await waitFor('dubbo provider', () => hosts(table, dubbo)?.length === 1);
    const md = table.endpointsOf(dubbo)![0]!.metadata;
    assert.equal(md.protocol, 'dubbo');
    assert.equal(md.interface, 'com.foo.DemoService');
    assert.equal(md.version, '1.0.0');
    assert.equal(md.methods, 'sayHello');
    assert.equal(md.release, '3.2.0');
  });

  test('with push off, polling picks changes up', async () => {
    const { nacos, table } = await setup({ config: { pollIntervalMs: 300 } });
    nacos.pushEnabled = false;
    nacos.register('polled', { ip: '10.0.4.1', port: 80 });
    await waitFor('listed', () => hosts(table, 'polled.DEFAULT-GROUP.public.nacos')?.length === 1);
    nacos.register('polled', { ip: '10.0.4.2', port: 80 });
    await waitFor('added by poll', () => hosts(table, 'polled.DEFAULT-GROUP.public.nacos')?.length === 2, 15000);
    nacos.deregister('polled', '10.0.4.1', 80);
    nacos.deregister('polled', '10.0.4.2', 80);
    await waitFor('emptied by poll', () => table.endpointsOf('polled.DEFAULT-GROUP.public.nacos')?.length === 0, 15000);
    assert.equal(nacos.stats.pushesSent, 0);
  });

  test('instances that stop beating turn unhealthy, then disappear', async () => {
    const { nacos, table } = await setup({ double: { unhealthyAfterMs: 800, deleteAfterMs: 1600, clientBeatInterval: 200 } });
    const provider = new NacosNamingClient({ logger: quiet, serverList: nacos.address, namespace: 'public' });
    await provider.ready();
    await provider.registerInstance('beating', { ip: '10.0.5.1', port: 80 } as never);
    const svc = 'beating.DEFAULT-GROUP.public.nacos';
    await waitFor('registered', () => table.endpointsOf(svc)?.[0]?.healthy === true);
    await waitFor('beats arrive', () => nacos.stats.beats >= 2, 15000);
    assert.equal(table.endpointsOf(svc)?.[0]?.healthy, true, 'a beating instance stays healthy');
    // the provider dies without deregistering
    await (provider as unknown as { close(): Promise<void> }).close();
    await waitFor('expired instance removed', () => table.endpointsOf(svc)?.length === 0, 15000);
  });

  test('auth: username/password logs in and uses the accessToken; a wrong password shows the registry down', async () => {
    const auth = { username: 'nacos', password: 's3cret' };
    const { nacos, table } = await setup({ double: { auth }, config: auth });
    nacos.register('secured', { ip: '10.0.6.1', port: 80 });
    await waitFor('visible with auth', () => hosts(table, 'secured.DEFAULT-GROUP.public.nacos')?.length === 1);
    assert.ok(nacos.stats.logins >= 1);
    const naming = nacos.requestLog.filter((r) => r.path.startsWith('/nacos/v1/ns/'));
    assert.ok(naming.length > 0 && naming.every((r) => typeof r.params.accessToken === 'string'), 'every naming call carries the token');
    assert.ok(naming.every((r) => r.params.password === undefined), 'the password is not sent on naming calls');

    // a token configured directly
    const login = await request(`http://${nacos.address}/nacos/v1/auth/login`, { method: 'POST', body: 'username=nacos&password=s3cret', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const token = ((await login.body.json()) as { accessToken: string }).accessToken;
    const table2 = new EndpointTable(log);
    const w2 = createNacos(NacosRegistrySchema.parse({ name: 'n2', type: 'nacos', servers: [nacos.address], accessToken: token, serviceListIntervalMs: 300 }), table2.sinkFor('n2', 'nacos', log));
    running.push(w2);
    await w2.start();
    await waitFor('visible with static token', () => hosts(table2, 'secured.DEFAULT-GROUP.public.nacos')?.length === 1);

    const table3 = new EndpointTable(log);
    const w3 = createNacos(NacosRegistrySchema.parse({ name: 'n3', type: 'nacos', servers: [nacos.address], username: 'nacos', password: 'wrong', serviceListIntervalMs: 300 }), table3.sinkFor('n3', 'nacos', log));
    running.push(w3);
    await w3.start();
    await waitFor('wrong password reported', () => !!table3.registryStates()[0]!.lastError);
    assert.equal(table3.registryStates()[0]!.up, false);
    assert.equal(table3.services().length, 0);
  });

  test('Nacos down: endpoints kept and registry down; back: changes made meanwhile are picked up', async () => {
    const { nacos, table, state } = await setup({ config: { pollIntervalMs: 300 } });
    nacos.register('steady', { ip: '10.0.7.1', port: 80 });
    nacos.register('steady', { ip: '10.0.7.2', port: 80 });
    const svc = 'steady.DEFAULT-GROUP.public.nacos';
    await waitFor('listed', () => hosts(table, svc)?.length === 2);
    await nacos.stop();
    await waitFor('registry down', () => !state().up, 10000);
    await sleep(1000);
    assert.deepEqual(hosts(table, svc), ['10.0.7.1:80', '10.0.7.2:80'], 'last known endpoints kept');
    // changes while the gateway cannot see them
    nacos.deregister('steady', '10.0.7.1', 80);
    nacos.register('newcomer', { ip: '10.0.8.1', port: 80 });
    await nacos.start();
    await waitFor('registry up', () => state().up, 10000);
    await waitFor('removal picked up', () => hosts(table, svc)?.join() === '10.0.7.2:80', 10000);
    await waitFor('new service picked up', () => hosts(table, 'newcomer.DEFAULT-GROUP.public.nacos')?.length === 1, 10000);
  });

  test('garbage answers and pushes: logged, services kept, nothing crashes, recovery', async () => {
    const { nacos, table, state } = await setup({ config: { pollIntervalMs: 300 } });
    nacos.register('kept', { ip: '10.0.9.1', port: 80 });
    const svc = 'kept.DEFAULT-GROUP.public.nacos';
    await waitFor('listed', () => hosts(table, svc)?.length === 1);
    await waitFor('subscribed for push', () => nacos.pushSubscribers() >= 1);
    logs.length = 0;
    for (const mode of ['garbage', 'wrong-shape', 'error500'] as const) {
      nacos.fault = mode;
      await sleep(900); // a few list rounds and polls
      assert.deepEqual(hosts(table, svc), ['10.0.9.1:80'], `service kept under ${mode}`);
      assert.equal(state().up, false, `registry shown down under ${mode}`);
    }
    assert.ok(logs.some((l) => l.includes('unreadable')), 'bad answers are logged');
    // garbage UDP pushes (plain and gzip-looking)
    nacos.pushRaw(Buffer.from('not json at all'));
    nacos.pushRaw(Buffer.from([0x1f, 0x8b, 0x00, 0x01]));
    nacos.pushRaw(Buffer.from(JSON.stringify({ type: 'dom', data: JSON.stringify({ name: 'DEFAULT_GROUP@@kept', clusters: 'DEFAULT', hosts: 'nope' }), lastRefTime: Date.now() + 1e6 })));
    await sleep(300);
    assert.deepEqual(hosts(table, svc), ['10.0.9.1:80']);
    nacos.fault = 'none';
    nacos.register('kept', { ip: '10.0.9.2', port: 80 });
    await waitFor('recovered', () => state().up && hosts(table, svc)?.length === 2, 10000);
  });
});
