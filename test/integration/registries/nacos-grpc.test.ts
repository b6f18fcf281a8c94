// The Nacos registry over the gRPC protocol (protocol: grpc) against the Nacos
// gRPC double: discovery, push (acked), new and removed services, outages and
// restarts, failover, empty services, auth, and a request routed by a Gateway.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { EndpointTable } from '../../../src/discovery/endpoint-table.js';
import { NacosRegistrySchema } from '../../../src/config/schema.js';
import createNacos from '../../../registries/nacos/index.js';
import { NacosGrpcDouble, startNacosGrpcDouble, type NacosGrpcDoubleOptions } from '../../doubles/nacos-grpc/server.js';
import { waitUntil } from '../../helpers/wait.js';
import { startGateway, waitFor as waitForAsync } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import type { Gateway } from '../../../src/gateway.js';

const waitFor = (what: string, cond: () => boolean, timeoutMs = 10000): Promise<void> => waitUntil(what, cond, timeoutMs);

function hosts(table: EndpointTable, service: string): string | undefined {
  return table
    .endpointsOf(service)
    ?.map((e) => `${e.host}:${e.port}`)
    .sort()
    .join(',');
}

const SVC = (name: string, group = 'DEFAULT-GROUP', ns = 'public') => `${name}.${group}.${ns}.nacos`;

describe('nacos registry over gRPC (Nacos gRPC double)', () => {
  const logs: string[] = [];
  const log = pino({ level: 'warn' }, { write: (s: string) => void logs.push(s) });
  const running: Array<{ stop(): unknown }> = [];
  const doubles: NacosGrpcDouble[] = [];

  after(async () => {
    for (const r of running) await r.stop();
    for (const d of doubles) await d.close();
  });

  async function double(opts: NacosGrpcDoubleOptions = {}): Promise<NacosGrpcDouble> {
    const d = await startNacosGrpcDouble(opts);
    doubles.push(d);
    return d;
  }

  async function setup(servers: string[], config: Record<string, unknown> = {}) {
    const table = new EndpointTable(log);
    const cfg = NacosRegistrySchema.parse({
      name: 'nacos',
      type: 'nacos',
      protocol: 'grpc',
      servers,
      serviceListIntervalMs: 200,
      grpcHealthIntervalMs: 300,
      ...config,
    });
    const watcher = createNacos(cfg, table.sinkFor('nacos', 'nacos', log));
    running.push(watcher);
    await watcher.start();
    return { table, watcher, state: () => table.registryStates()[0]! };
  }

  test('discovery with weights, metadata, health, clusters; pushes acked; new, changed, removed', async () => {
    const nacos = await double();
    nacos.register('user_service', { ip: '10.0.0.1', port: 8080, weight: 2.5, metadata: { version: 'v1' } });
    nacos.register('user_service', { ip: '10.0.0.2', port: 8080, healthy: false });
    nacos.register('user_service', { ip: '10.0.0.3', port: 8080, enabled: false });
    nacos.register('user_service', { ip: '10.0.0.9', port: 8080, clusterName: 'other' });
    nacos.register('pay', { ip: '10.0.2.1', port: 80 }, 'PAY_GROUP');
    nacos.register('hidden', { ip: '10.0.3.1', port: 80 }, 'OTHER_GROUP');
    const { table, state } = await setup([nacos.httpAddress], { groups: ['DEFAULT_GROUP', 'PAY_GROUP'] });
    const svc = SVC('user_service');
    await waitFor('synced', () => table.allSynced() && hosts(table, svc) !== undefined);
    assert.equal(hosts(table, svc), '10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080', 'cluster "other" filtered out');
    const eps = table.endpointsOf(svc)!;
    const e1 = eps.find((e) => e.host === '10.0.0.1')!;
    assert.equal(e1.weight, 2.5);
    assert.equal(e1.metadata.version, 'v1');
    assert.equal(e1.healthy, true);
    assert.equal(eps.find((e) => e.host === '10.0.0.2')!.healthy, false);
    assert.equal(eps.find((e) => e.host === '10.0.0.3')!.weight, 0, 'disabled: weight 0');
    await waitFor('pay', () => hosts(table, SVC('pay', 'PAY-GROUP')) === '10.0.2.1:80');
    assert.equal(table.get(SVC('hidden', 'OTHER-GROUP')), undefined);
    assert.equal(state().up, true);

    // what the client sent, checked against Nacos' request classes
    const setupReq = nacos.seen.find((s) => s.type === 'ConnectionSetupRequest')!;
    assert.equal(typeof setupReq.body.clientVersion, 'string');
    assert.ok(setupReq.body.labels && setupReq.body.abilityTable);
    const sub = nacos.seen.find((s) => s.type === 'SubscribeServiceRequest')!;
    assert.deepEqual(
      { ...sub.body, requestId: undefined },
      { headers: {}, requestId: undefined, module: 'naming', namespace: 'public', serviceName: sub.body.serviceName, groupName: sub.body.groupName, clusters: 'DEFAULT', subscribe: true },
    );
    const listReq = nacos.seen.find((s) => s.type === 'ServiceListRequest')!;
    assert.equal(listReq.body.pageNo, 1);
    assert.equal(typeof listReq.body.pageSize, 'number');

    // changes by push, acked
    nacos.register('user_service', { ip: '10.0.0.4', port: 8080 });
    await waitFor('added by push', () => hosts(table, svc)?.includes('10.0.0.4:8080') === true);
    nacos.deregister('user_service', '10.0.0.1', 8080);
    await waitFor('removed by push', () => hosts(table, svc)?.includes('10.0.0.1') === false);
    await waitFor('pushes acked', () => nacos.stats.pushesSent >= 2 && nacos.pendingPushes.size === 0);
    assert.equal(nacos.stats.pushAcks, nacos.stats.pushesSent);

    // a brand-new service, routable without restart
    nacos.register('orders', { ip: '10.0.1.1', port: 9000 });
    await waitFor('new service', () => hosts(table, SVC('orders')) === '10.0.1.1:9000');
    // removed from Nacos: gone
    nacos.deregister('orders', '10.0.1.1', 9000);
    nacos.deleteService('orders');
    await waitFor('service removed', () => table.get(SVC('orders')) === undefined);
    // The unsubscribe follows the removal (it is sent after the table is updated).
    await waitFor('unsubscribed', () => nacos.stats.unsubscribes >= 1);

    // Nacos probes idle clients; answered on the stream
    nacos.detectClients();
    await waitFor('client detection answered', () => nacos.stats.clientDetections === 1);
  });

  test('empty lists: applied only when Nacos says the service has no instances', async () => {
    const nacos = await double();
    nacos.createService('empty');
    nacos.register('one', { ip: '10.1.0.1', port: 80 });
    const { table } = await setup([nacos.httpAddress]);
    await waitFor('synced', () => table.allSynced() && hosts(table, SVC('one')) === '10.1.0.1:80');
    await waitFor('empty service known and empty', () => table.endpointsOf(SVC('empty'))?.length === 0);
    nacos.deregister('one', '10.1.0.1', 80);
    await waitFor('last instance gone -> empty', () => table.endpointsOf(SVC('one'))?.length === 0);
    nacos.register('one', { ip: '10.1.0.1', port: 80 });
    await waitFor('back', () => hosts(table, SVC('one')) === '10.1.0.1:80');
    // malformed pushes (no host list, no readable host) change nothing, and are still acked
    const acks = nacos.stats.pushAcks;
    nacos.pushRaw('one', { name: 'one', groupName: 'DEFAULT_GROUP', clusters: 'DEFAULT', lastRefTime: Date.now() + 60_000 });
    nacos.pushRaw('one', { name: 'one', groupName: 'DEFAULT_GROUP', clusters: 'DEFAULT', hosts: [{ ip: '' }], lastRefTime: Date.now() + 60_000 });
    await waitFor('garbage acked', () => nacos.stats.pushAcks === acks + 2);
    assert.equal(hosts(table, SVC('one')), '10.1.0.1:80', 'kept');
    // an older ServiceInfo never overwrites a newer one
    nacos.pushRaw('one', { name: 'one', groupName: 'DEFAULT_GROUP', clusters: 'DEFAULT', hosts: [], lastRefTime: 1 });
    await waitFor('old acked', () => nacos.stats.pushAcks === acks + 3);
    assert.equal(hosts(table, SVC('one')), '10.1.0.1:80', 'old answer ignored');
  });

  test('a listing cut half way adds and removes nothing; the next whole one does', async () => {
    const nacos = await double();
    // 600 services: two pages of 500.
    for (let i = 0; i < 600; i++) nacos.register(`s${String(i).padStart(3, '0')}`, { ip: '10.2.0.1', port: 1000 + i });
    const { table } = await setup([nacos.httpAddress]);
    await waitFor('all 600 known', () => table.allSynced() && [...table.serviceNames()].length === 600, 20_000);
    nacos.failListPage = 2;
    const lists = nacos.stats.serviceLists;
    nacos.deleteService('s000');
    nacos.register('s999', { ip: '10.2.0.2', port: 80 });
    // Page 1 (which no longer names s000) came, page 2 failed: two more listings, each cut.
    await waitFor('listings tried', () => nacos.stats.serviceLists >= lists + 4);
    assert.equal(hosts(table, SVC('s000')), '10.2.0.1:1000', 'kept: the listing was not whole');
    assert.equal(table.endpointsOf(SVC('s999')), undefined, 'not added from a cut listing');
    nacos.failListPage = undefined;
    await waitFor('removed and added once a listing is whole', () => table.endpointsOf(SVC('s000')) === undefined && hosts(table, SVC('s999')) === '10.2.0.2:80');
    assert.equal([...table.serviceNames()].length, 600);
  });

  test('push storm: 200 changes in a burst end at the right state, every push acked', async () => {
    const nacos = await double();
    nacos.register('storm', { ip: '10.2.0.0', port: 1 });
    const { table } = await setup([nacos.httpAddress]);
    await waitFor('subscribed', () => nacos.subscribers('storm') === 1 && hosts(table, SVC('storm')) === '10.2.0.0:1');
    const before = nacos.stats.pushesSent;
    for (let i = 1; i <= 200; i++) {
      nacos.register('storm', { ip: `10.2.${i >> 8}.${i & 255}`, port: 1 });
      if (i % 2 === 0) nacos.deregister('storm', `10.2.${(i - 1) >> 8}.${(i - 1) & 255}`, 1);
    }
    // final: 10.2.0.0 and the even ones
    const expected = ['10.2.0.0:1', ...Array.from({ length: 100 }, (_, k) => 2 * (k + 1)).map((i) => `10.2.${i >> 8}.${i & 255}:1`)].sort().join(',');
    await waitFor('final state', () => hosts(table, SVC('storm')) === expected);
    assert.equal(nacos.stats.pushesSent - before, 300);
    await waitFor('every push acked', () => nacos.pendingPushes.size === 0 && nacos.stats.pushAcks === nacos.stats.pushesSent);
  });

  test('server restart: endpoints kept while down, re-subscribed after, changes made meanwhile seen', async () => {
    const nacos = await double();
    nacos.register('svc', { ip: '10.3.0.1', port: 80 });
    nacos.register('svc', { ip: '10.3.0.2', port: 80 });
    const { table, state, watcher } = await setup([nacos.httpAddress]);
    await waitFor('synced', () => hosts(table, SVC('svc')) === '10.3.0.1:80,10.3.0.2:80');
    await nacos.stop();
    await waitFor('down', () => state().up === false, 5000);
    assert.equal(hosts(table, SVC('svc')), '10.3.0.1:80,10.3.0.2:80', 'last known kept');
    // changes while the server is down
    nacos.deregister('svc', '10.3.0.1', 80);
    nacos.register('svc', { ip: '10.3.0.3', port: 80 });
    nacos.register('late', { ip: '10.3.1.1', port: 80 });
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(hosts(table, SVC('svc')), '10.3.0.1:80,10.3.0.2:80', 'still kept');
    const subsBefore = nacos.stats.subscribes;
    await nacos.start();
    await waitFor('up again', () => state().up === true);
    await waitFor('changes made while down seen', () => hosts(table, SVC('svc')) === '10.3.0.2:80,10.3.0.3:80');
    await waitFor('new service after restart', () => hosts(table, SVC('late')) === '10.3.1.1:80');
    assert.ok(nacos.stats.subscribes > subsBefore, 're-subscribed');
    assert.equal(nacos.subscribers('svc'), 1);
    // push works on the new connection
    nacos.register('svc', { ip: '10.3.0.4', port: 80 });
    await waitFor('push after reconnect', () => hosts(table, SVC('svc'))?.includes('10.3.0.4:80') === true);

    // the server asks the client to reconnect (ConnectResetRequest): it does, and subscribes again
    const connects = (watcher.describe!() as { connects: number }).connects;
    nacos.resetClients();
    await waitFor('reconnected after reset', () => (watcher.describe!() as { connects: number }).connects === connects + 1 && nacos.subscribers('svc') === 1);
    nacos.deregister('svc', '10.3.0.2', 80);
    await waitFor('push after reset', () => hosts(table, SVC('svc')) === '10.3.0.3:80,10.3.0.4:80');
  });

  test('a 2.x server without ability negotiation, slow to register the connection: 301 answers retried', async () => {
    const nacos = await double({ noAbilityNegotiation: true, setupDelayMs: 400 });
    nacos.register('old', { ip: '10.7.0.1', port: 80 });
    const { table, state } = await setup([nacos.httpAddress]);
    await waitFor('discovered', () => hosts(table, SVC('old')) === '10.7.0.1:80' && state().up);
    assert.ok(nacos.stats.unregisteredRefusals > 0, 'requests before registration were refused, then retried');
  });

  test('failover to a second server', async () => {
    const a = await double();
    const b = await double();
    for (const d of [a, b]) d.register('fo', { ip: '10.4.0.1', port: 80 });
    const { table, state, watcher } = await setup([a.httpAddress, b.httpAddress]);
    await waitFor('synced', () => hosts(table, SVC('fo')) === '10.4.0.1:80');
    assert.equal(a.connections(), 1);
    await a.stop();
    b.register('fo', { ip: '10.4.0.2', port: 80 });
    await waitFor('moved to b', () => b.subscribers('fo') === 1 && hosts(table, SVC('fo')) === '10.4.0.1:80,10.4.0.2:80');
    assert.equal(state().up, true);
    assert.equal((watcher.describe!() as { grpcServer: string }).grpcServer, b.address);
    b.deregister('fo', '10.4.0.1', 80);
    await waitFor('push from b', () => hosts(table, SVC('fo')) === '10.4.0.2:80');
  });

  test('auth: login over HTTP, token in every request; refused without', async () => {
    // 3.x-style: only the v3 login path answers; a short tokenTtl forces refreshes
    const nacos = await double({ requireToken: 'tok-1', login: { username: 'nacos', password: 'pw', token: 'tok-1', tokenTtl: 1 }, loginPath: '/nacos/v3/auth/user/login' });
    nacos.register('secure', { ip: '10.5.0.1', port: 80 });
    const offset = nacos.port - nacos.httpPort;
    const { table } = await setup([`127.0.0.1:${nacos.httpPort}`], { username: 'nacos', password: 'pw', grpcPortOffset: offset });
    await waitFor('discovered with a token', () => hosts(table, SVC('secure')) === '10.5.0.1:80');
    assert.equal(nacos.stats.refusedAuth, 0);
    await waitFor('token refreshed before tokenTtl', () => nacos.stats.logins >= 2, 5000);
    assert.ok(nacos.seen.filter((s) => s.type === 'SubscribeServiceRequest').every((s) => s.headers.accessToken === 'tok-1'));

    const bad = await setup([`127.0.0.1:${nacos.httpPort}`], { accessToken: 'wrong', grpcPortOffset: offset });
    await waitFor('refused', () => nacos.stats.refusedAuth > 0 && bad.state().up === false);
    assert.equal(bad.table.get(SVC('secure')), undefined);
  });

  test('protocol auto picks gRPC when it answers, HTTP when not', async () => {
    const nacos = await double();
    nacos.register('auto', { ip: '10.6.0.1', port: 80 });
    const { table, watcher } = await setup([nacos.httpAddress], { protocol: 'auto' });
    await waitFor('auto -> grpc', () => hosts(table, SVC('auto')) === '10.6.0.1:80');
    assert.equal((watcher.describe!() as { connected: boolean }).connected, true);
    const none = await setup(['127.0.0.1:1'], { protocol: 'auto', grpcPortOffset: 0 });
    assert.equal((none.watcher.describe!() as { protocol: string; observingClient?: unknown }).observingClient !== undefined, true, 'fell back to the HTTP watcher');
  });

  describe('through a Gateway', () => {
    let gw: Gateway | undefined;
    let up: TestUpstream | undefined;
    after(async () => {
      await gw?.stop();
      await up?.close();
    });

    test('a request routed to an instance discovered over gRPC', async () => {
      const nacos = await double();
      up = await startUpstream('nacos-grpc-backend');
      nacos.register('web', { ip: '127.0.0.1', port: up.port });
      gw = await startGateway({
        registries: [{ name: 'nacos', type: 'nacos', protocol: 'grpc', servers: [nacos.httpAddress], serviceListIntervalMs: 200 }],
        routes: [{ name: 'w', match: { path: { prefix: '/web' } }, backends: [{ service: 'web.DEFAULT-GROUP.public.nacos' }] }],
      } as never);
      const res = await waitForAsync(async () => {
        const r = await fetch(`${gw!.listenerUrl('public')}/web`);
        await r.arrayBuffer();
        return r.status === 200 ? r : undefined;
      });
      assert.equal(res!.headers.get('x-instance'), 'nacos-grpc-backend');
    });
  });
});
