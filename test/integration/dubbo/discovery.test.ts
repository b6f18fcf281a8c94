// HTTP-to-Dubbo end to end: providers discovered in a real ZooKeeper
// (interface-level layout) and in the Nacos double, called over HTTP through
// the gateway — String and POJO arguments, a null result, a Java exception,
// and a provider that dies mid-call (an error within the timeout, no hang).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { orderService } from '../../doubles/dubbo/order-service.js';
import { DubboProviderDouble } from '../../doubles/dubbo/provider.js';
import { registerInNacos, registerInZookeeper, type Registration } from '../../doubles/dubbo/registry.js';
import { startNacosDouble, type NacosDouble } from '../../doubles/nacos/server.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startZookeeper, type ZookeeperServer } from '../../helpers/zookeeper.js';
import { dubboRoute } from './routes.js';


const ROUTE_TIMEOUT_MS = 15_000;

/** The same behaviour checks for any registry. */
function behaves(ctx: () => { base: string; provider: DubboProviderDouble }) {
  it('calls with a String argument', async () => {
    const res = await fetch(`${ctx().base}/by-item?item=lamp`);
    assert.equal(res.status, 200);
    assert.equal(await res.json(), 'found:lamp');
  });

  it('calls with a POJO argument', async () => {
    const res = await fetch(`${ctx().base}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'desk', quantity: 1 }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Record<string, unknown>;
    assert.equal(body.item, 'desk');
    assert.equal(body.status, 'CREATED');
    const call = ctx().provider.calls.at(-1)!;
    assert.deepEqual(call.args, [{ class: 'com.example.Order', item: 'desk', quantity: 1 }]);
  });

  it('answers a null result', async () => {
    const res = await fetch(`${ctx().base}/5`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'null');
  });

  it('answers a Java exception with 500', async () => {
    const res = await fetch(`${ctx().base}/3/fail`, { method: 'POST' });
    assert.equal(res.status, 500);
    assert.deepEqual({ ...((await res.json()) as object), requestId: undefined }, {
      exception: 'java.lang.IllegalStateException',
      message: 'order 3 cannot be processed',
      requestId: undefined,
    });
  });

  it('answers an error, not a hang, when the provider dies mid-call', async () => {
    const started = Date.now();
    const res = await fetch(`${ctx().base}/crash?s=x`, { signal: AbortSignal.timeout(ROUTE_TIMEOUT_MS + 10_000) });
    assert.equal(res.status, 502);
    assert.equal(res.headers.get('x-meshgate-flag'), 'UC');
    await res.text();
    assert.ok(Date.now() - started < ROUTE_TIMEOUT_MS, `answered in ${Date.now() - started} ms, before the ${ROUTE_TIMEOUT_MS} ms timeout`);
  });
}

async function ready(base: string): Promise<void> {
  await waitFor(async () => (await fetch(`${base}/by-item?item=probe`).then((r) => r.text().then(() => r.status))) === 200, 30_000, 100);
}

describe('HTTP-to-Dubbo with providers in ZooKeeper', { timeout: 120_000 }, () => {
  let zk: ZookeeperServer;
  let provider: DubboProviderDouble;
  let reg: Registration;
  let gw: Gateway;
  let base: string;

  before(async () => {
    zk = await startZookeeper();
    provider = await DubboProviderDouble.start({ services: [orderService()] });
    reg = await registerInZookeeper(zk.connectString, provider, orderService());
    gw = await startGateway({
      registries: [{ name: 'zk', type: 'zookeeper', servers: [zk.connectString], paths: ['/dubbo'] }],
      routes: [dubboRoute('orders', '/orders', 'providers:com.example.OrderService:1.0.0:.zookeeper', { timeoutMs: ROUTE_TIMEOUT_MS })],
    });
    base = `${gw.listenerUrl('public')}/orders`;
    await ready(base);
  });

  after(async () => {
    await gw?.stop();
    await reg?.close();
    await provider?.stop();
    await zk?.destroy();
  });

  it('discovers the provider from its ephemeral node, with protocol dubbo', () => {
    const cluster = gw.clusters.get('providers:com.example.OrderService:1.0.0:.zookeeper');
    assert.deepEqual(
      cluster.instances.map((i) => [i.id, i.metadata.protocol]),
      [[provider.address, 'dubbo']],
    );
  });

  behaves(() => ({ base, provider }));
});

describe('HTTP-to-Dubbo with providers in Nacos', { timeout: 120_000 }, () => {
  let nacos: NacosDouble;
  let provider: DubboProviderDouble;
  let reg: Registration;
  let gw: Gateway;
  let base: string;
  const service = 'providers:com.example.OrderService:1.0.0:.DEFAULT-GROUP.public.nacos';

  before(async () => {
    nacos = await startNacosDouble();
    provider = await DubboProviderDouble.start({ services: [orderService()] });
    reg = await registerInNacos(nacos.address, provider, orderService());
    gw = await startGateway({
      registries: [{ name: 'nacos', type: 'nacos', servers: [nacos.address], serviceListIntervalMs: 200, pollIntervalMs: 1_000 }],
      routes: [dubboRoute('orders', '/orders', service, { timeoutMs: ROUTE_TIMEOUT_MS })],
    });
    base = `${gw.listenerUrl('public')}/orders`;
    await ready(base);
  });

  after(async () => {
    await gw?.stop();
    await reg?.close();
    await provider?.stop();
    await nacos?.stop();
  });

  it('discovers the provider with its URL parameters as metadata', () => {
    const inst = gw.clusters.get(service).instances;
    assert.equal(inst.length, 1);
    assert.equal(inst[0]!.id, provider.address);
    assert.equal(inst[0]!.metadata.protocol, 'dubbo');
    assert.equal(inst[0]!.metadata.interface, 'com.example.OrderService');
    assert.equal(inst[0]!.metadata.version, '1.0.0');
  });

  behaves(() => ({ base, provider }));
});
