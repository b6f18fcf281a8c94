// HTTP-to-Dubbo through the gateway against provider doubles listed in a
// static registry: arguments, results, exceptions, provider statuses,
// timeouts, a provider dying mid-call, load balancing, retries and breakers.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput } from '../../../src/config/schema.js';
import type { Gateway } from '../../../src/gateway.js';
import { orderService, ORDER_SERVICE } from '../../doubles/dubbo/order-service.js';
import { DubboProviderDouble } from '../../doubles/dubbo/provider.js';
import { startGateway, testConfig } from '../../helpers/gateway.js';
import { dubboRoute } from './routes.js';

const Long = 'java.lang.Long';

async function json(res: Response): Promise<unknown> {
  const text = await res.text();
  return JSON.parse(text);
}

describe('HTTP-to-Dubbo (static registry)', () => {
  let a: DubboProviderDouble;
  let b: DubboProviderDouble;
  let gw: Gateway;
  let base: string;

  before(async () => {
    a = await DubboProviderDouble.start({ services: [orderService()] });
    b = await DubboProviderDouble.start({ services: [orderService()], exceptionStyle: 'plain', responseAttachments: false });
    const config: Partial<ConfigInput> = {
      registries: [
        { name: 'orders', type: 'static', endpoints: [a.address, b.address] },
        { name: 'one', type: 'static', endpoints: [a.address] },
        // The same provider exporting dubbo and tri: only the dubbo port takes Dubbo 2 calls.
        { name: 'mixed', type: 'static', endpoints: [`${a.address} protocol=dubbo`, `127.0.0.1:1 protocol=tri`] },
        { name: 'grey', type: 'static', endpoints: [`${a.address} tag=gray`, b.address] },
      ],
      services: {
        'orders.static': { retries: { attempts: 1, on: ['connect-failure', 'refused-stream'] } },
      },
      routes: [
        dubboRoute('orders', '/orders', 'orders.static', { timeoutMs: 20_000 }),
        dubboRoute('slow', '/slow', 'one.static', { timeoutMs: 1_500 }),
        dubboRoute('wrong-group', '/grouped', 'one.static', { group: 'no-such-group' }),
        dubboRoute('mixed', '/mixed', 'mixed.static'),
        { ...dubboRoute('grey', '/grey', 'grey.static'), grey: {} },
        { ...dubboRoute('authed', '/authed', 'one.static'), filters: [{ type: 'key_auth' }] },
      ],
      consumers: [{ name: 'mobile', credentials: [{ type: 'key_auth', key: 'mobile-key-123456' }] }],
    };
    gw = await startGateway(config);
    base = gw.listenerUrl('public');
  });

  after(async () => {
    await gw?.stop();
    await a?.stop();
    await b?.stop();
  });

  const lastCall = () => [...a.calls, ...b.calls].sort((x, y) => x.id - y.id).at(-1)!;
  const allCalls = () => [...a.calls, ...b.calls];

  it('calls a method with a String argument and answers its JSON result', async () => {
    const res = await fetch(`${base}/orders/by-item?item=book`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(await json(res), 'found:book');
    const call = allCalls().find((c) => c.method === 'findByItem')!;
    assert.equal(call.generic, true);
    assert.deepEqual(call.types, ['java.lang.String']);
    assert.deepEqual(call.args, ['book']);
    assert.equal(call.attachments.version, '1.0.0');
    assert.equal(call.attachments.generic, 'true');
    assert.equal(call.attachments.interface, ORDER_SERVICE);
  });

  it('passes a Long path parameter and the x-tenant header as an attachment', async () => {
    const res = await fetch(`${base}/orders/42`, { headers: { 'x-tenant': 'acme', 'x-other': 'no' } });
    assert.equal(res.status, 200);
    assert.deepEqual(await json(res), { class: 'com.example.Order', id: 42, item: 'item-42', quantity: 2, tenant: 'acme' });
    const call = allCalls().find((c) => c.method === 'getOrder')!;
    assert.deepEqual(call.types, [Long]);
    assert.equal(call.attachments['x-tenant'], 'acme');
    assert.equal(call.attachments['x-other'], undefined, 'only listed headers are attached');
  });

  it('sends a POJO body as a map with its class', async () => {
    const res = await fetch(`${base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: 'pen', quantity: 3 }) });
    assert.equal(res.status, 200);
    const body = (await json(res)) as Record<string, unknown>;
    assert.equal(body.status, 'CREATED');
    assert.equal(body.item, 'pen');
    assert.equal(typeof body.id, 'number');
    const call = lastCall();
    assert.equal(call.method, 'createOrder');
    assert.deepEqual(call.types, ['com.example.Order']);
    assert.deepEqual(call.args, [{ class: 'com.example.Order', item: 'pen', quantity: 3 }]);
  });

  it('answers a null result as JSON null', async () => {
    const res = await fetch(`${base}/orders/7`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'null');
    const none = await fetch(`${base}/orders/0`);
    assert.equal(none.status, 200);
    assert.equal(await none.text(), 'null');
  });

  it('answers a Java exception with 500 and its class and message, from either exception style', async () => {
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${base}/orders/9/fail`, { method: 'POST' });
      assert.equal(res.status, 500);
      const body = (await json(res)) as Record<string, unknown>;
      assert.equal(body.exception, 'java.lang.IllegalStateException');
      assert.equal(body.message, 'order 9 cannot be processed');
      assert.equal(res.headers.get('x-meshgate-dubbo-exception'), 'java.lang.IllegalStateException');
    }
    // Provider a answers GenericException with attachments, b the plain exception without: both were asked.
    assert.ok(a.calls.some((c) => c.method === 'failOrder'));
    assert.ok(b.calls.some((c) => c.method === 'failOrder'));
  });

  it('refuses a bad parameter with 400 naming it, without calling a provider', async () => {
    const before = allCalls().length;
    const res = await fetch(`${base}/orders/abc`);
    assert.equal(res.status, 400);
    const body = (await json(res)) as { error: string };
    assert.match(body.error, /parameter "id" \(path, java\.lang\.Long\)/);
    const bad = await fetch(`${base}/orders`, { method: 'POST', body: '{not json' });
    assert.equal(bad.status, 400);
    assert.match(((await json(bad)) as { error: string }).error, /not valid JSON/);
    assert.equal(allCalls().length, before);
  });

  it('answers 404 for a path with no method mapping and 405 for a wrong verb', async () => {
    const res = await fetch(`${base}/orders/1/items`);
    assert.equal(res.status, 404);
    await res.text();
    const verb = await fetch(`${base}/orders/1`, { method: 'PUT' });
    assert.equal(verb.status, 405);
    assert.equal(verb.headers.get('allow'), 'GET, DELETE');
    await verb.text();
  });

  it('maps provider statuses: service error 70 -> 500, service not found 60 -> 503', async () => {
    const missing = await fetch(`${base}/orders/missing`);
    assert.equal(missing.status, 500);
    assert.equal(missing.headers.get('x-meshgate-dubbo-status'), '70');
    assert.match(((await json(missing)) as { error: string }).error, /NoSuchMethodException/);
    const grouped = await fetch(`${base}/grouped/1`);
    assert.equal(grouped.status, 503);
    const body = (await json(grouped)) as { error: string; dubboStatus: number };
    assert.equal(body.dubboStatus, 60);
    assert.match(body.error, /Not found exported service: no-such-group\/com\.example\.OrderService/);
  });

  it('times out a call that never answers with 504', async () => {
    const started = Date.now();
    const res = await fetch(`${base}/slow/hang?s=x`);
    assert.equal(res.status, 504);
    assert.equal(res.headers.get('x-meshgate-flag'), 'UT');
    await res.text();
    assert.ok(Date.now() - started < 10_000);
    // The connection is still good for the next call.
    const ok = await fetch(`${base}/slow/by-item?item=a`);
    assert.equal(ok.status, 200);
    await ok.text();
  });

  it('sends calls only to instances that speak dubbo when a registry lists several protocols', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${base}/mixed/by-item?item=m${i}`);
      assert.equal(res.status, 200);
      await res.text();
    }
  });

  it('routes a grey-tagged request to the tagged provider and passes the tag as dubbo.tag', async () => {
    for (let i = 0; i < 4; i++) {
      const tagged = await fetch(`${base}/grey/whoami`, { headers: { 'x-mse-tag': 'gray' } });
      assert.match((await json(tagged)) as string, new RegExp(`^${a.address} `));
      assert.equal(a.calls.at(-1)!.attachments['dubbo.tag'], 'gray');
      const plain = await fetch(`${base}/grey/whoami`);
      assert.match((await json(plain)) as string, new RegExp(`^${b.address} `), 'untagged requests stay off the grey provider');
    }
  });

  it('identity headers reach a provider only as the gateway set them: a client-sent x-mse-consumer never becomes an attachment', async () => {
    const forged = { 'x-mse-consumer': 'admin', 'x-tenant': 't9' };
    const authed = await fetch(`${base}/authed/whoami`, { headers: { ...forged, 'x-api-key': 'mobile-key-123456' } });
    assert.equal(authed.status, 200);
    await authed.text();
    assert.equal(a.calls.at(-1)!.attachments['x-mse-consumer'], 'mobile', 'the authenticated consumer, not the forged one');
    assert.equal(a.calls.at(-1)!.attachments['x-api-key'], 'mobile-key-123456');
    const open = await fetch(`${base}/orders/whoami`, { headers: forged });
    assert.equal(open.status, 200);
    await open.text();
    const call = lastCall();
    assert.equal(call.attachments['x-mse-consumer'], undefined, 'stripped on a route without auth too');
    assert.equal(call.attachments['x-tenant'], 't9');
  });

  it('balances calls over both providers', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${base}/orders/whoami`, { headers: { 'x-tenant': 't1' } });
      assert.equal(res.status, 200);
      const who = (await json(res)) as string;
      assert.match(who, / tenant=t1$/, 'headersAttach "*" passes every header');
      seen.add(who.split(' ')[0]!);
    }
    assert.deepEqual([...seen].sort(), [a.address, b.address].sort());
  });

  it('fails a call whose provider dies mid-call promptly, then retries new calls on the live provider', async () => {
    // The crash call lands on whichever provider round robin picks; call until one died.
    const started = Date.now();
    const res = await fetch(`${base}/orders/crash?s=x`);
    assert.equal(res.status, 502, 'an error, not a hang (the route timeout is 20 s)');
    assert.equal(res.headers.get('x-meshgate-flag'), 'UC');
    await res.text();
    assert.ok(Date.now() - started < 10_000);
    const dead = a.connections === 0 && b.connections > 0 ? a : b.connections === 0 && a.connections > 0 ? b : undefined;
    assert.ok(dead, 'one provider is gone');
    // Every later call succeeds: connect failures to the dead one are retried on the other.
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${base}/orders/by-item?item=i${i}`);
      assert.equal(r.status, 200, `call ${i}`);
      await r.text();
    }
  });
});

describe('HTTP-to-Dubbo circuit breaker', () => {
  let p: DubboProviderDouble;
  let gw: Gateway;

  before(async () => {
    p = await DubboProviderDouble.start({ services: [orderService()] });
    gw = await startGateway({
      registries: [{ name: 'cb', type: 'static', endpoints: [p.address] }],
      services: {
        'cb.static': { circuitBreakers: [{ strategy: 'error_count', threshold: 2, minRequests: 3, statIntervalMs: 60_000, openMs: 60_000 }] },
      },
      routes: [dubboRoute('cb', '/cb', 'cb.static')],
    });
  });

  after(async () => {
    await gw?.stop();
    await p?.stop();
  });

  // error_count trips when errors exceed the threshold (3 errors > 2).
  it('opens after repeated Java exceptions and answers 503 without calling the provider', async () => {
    const base = gw.listenerUrl('public');
    for (let i = 0; i < 3; i++) {
      const r = await fetch(`${base}/cb/1/fail`);
      assert.equal(r.status, 500);
      await r.text();
    }
    const calls = p.calls.length;
    const open = await fetch(`${base}/cb/by-item?item=x`);
    assert.equal(open.status, 503);
    assert.equal(open.headers.get('x-meshgate-flag'), 'UO');
    await open.text();
    assert.equal(p.calls.length, calls, 'the provider was not called');
  });
});

describe('HTTP-to-Dubbo config and reload', () => {
  let p: DubboProviderDouble;
  let gw: Gateway;

  before(async () => {
    p = await DubboProviderDouble.start({ services: [orderService()] });
  });

  after(async () => {
    await gw?.stop();
    await p?.stop();
  });

  const config = (routes: ReturnType<typeof dubboRoute>[]): Partial<ConfigInput> => ({
    registries: [{ name: 'r', type: 'static', endpoints: [p.address] }],
    routes,
  });

  it('refuses a mapping whose PATH parameter the path does not capture, naming the key', async () => {
    const bad = dubboRoute('bad', '/bad', 'r.static');
    bad.dubbo!.methods[0]!.httpPath = '/bad/{orderId}';
    await assert.rejects(startGateway(config([bad])), /routes\[0\]\.dubbo: methods\[0\]\.params\[0\]\.paramKey: httpPath \/bad\/\{orderId\} has no \{id\}/);
  });

  it('applies a reloaded mapping and keeps the provider connection', async () => {
    gw = await startGateway(config([dubboRoute('orders', '/orders', 'r.static')]));
    const base = gw.listenerUrl('public');
    assert.equal((await fetch(`${base}/orders/by-item?item=a`).then((r) => r.json())) as string, 'found:a');
    assert.equal((await fetch(`${base}/v2/orders/by-item?item=b`)).status, 404);
    const result = await gw.reload(testConfig(config([dubboRoute('orders', '/orders', 'r.static'), dubboRoute('orders-v2', '/v2/orders', 'r.static')])) as never);
    assert.ok(result.ok, result.error);
    assert.equal((await fetch(`${base}/v2/orders/by-item?item=b`).then((r) => r.json())) as string, 'found:b');
    assert.equal(p.connections, 1, 'the reload reused the connection to the provider');
  });
});
