// /api/services filtered and paged by the gateway (what the console asks for):
// search by name, address and metadata, registry, routed and problem filters,
// exact names, offset and limit, with the counts in x-total-count and
// x-service-count; without any of those keys the whole list as before.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

const BULK = 30;

async function page(gw: Gateway, query: string): Promise<{ status: number; names: string[]; matched: number; total: number; body: any }> {
  const r = await request(`${gw.adminUrl()}/api/services?${query}`);
  const body = (await r.body.json()) as any;
  return {
    status: r.statusCode,
    body,
    names: Array.isArray(body) ? body.map((s: any) => s.name) : [],
    matched: Number(r.headers['x-total-count']),
    total: Number(r.headers['x-service-count']),
  };
}

describe('/api/services pages', () => {
  let up: TestUpstream;
  let gw: Gateway;
  const bulk = Array.from({ length: BULK }, (_, i) => `bulk-${String(i).padStart(2, '0')}.static`);

  before(async () => {
    up = await startUpstream('up');
    gw = await startGateway(`
listeners: [{ name: public, address: "127.0.0.1:0", protocol: http }]
admin: { address: "127.0.0.1:0" }
registries:
  - { name: shop, type: static, endpoints: ["${up.address} zone=east", "127.0.0.1:9 zone=west"] }
  - { name: pay, type: static, endpoints: ["${up.address}"] }
${bulk.map((n, i) => `  - { name: ${n.replace('.static', '')}, type: static, endpoints: ["127.0.0.${i + 10}:8080 tier=bulk"] }`).join('\n')}
services:
  shop.static:
    healthCheck: { type: http, path: /, intervalMs: 100, timeoutMs: 200, unhealthyThreshold: 1, healthyThreshold: 1 }
routes:
  - { name: shop, match: { path: { prefix: /shop } }, backends: [{ service: shop.static }] }
  - { name: pay, match: { path: { prefix: /pay } }, backends: [{ service: pay.static }] }
  - { name: ghost, match: { path: { prefix: /ghost } }, backends: [{ service: ghost.static }] }
`);
  });

  after(async () => {
    await gw.stop();
    await up.close();
  });

  it('without paging keys: the whole list, as before', async () => {
    const r = await page(gw, '');
    assert.equal(r.status, 200);
    assert.equal(r.names.length, BULK + 3);
    assert.ok(Number.isNaN(r.matched), 'no count headers on the whole list');
  });

  it('offset and limit page the sorted list; the counts are of matches and of every service', async () => {
    const all = (await page(gw, '')).names;
    const r = await page(gw, 'offset=5&limit=10');
    assert.deepEqual(r.names, all.slice(5, 15));
    assert.equal(r.matched, BULK + 3);
    assert.equal(r.total, BULK + 3);
    const tail = await page(gw, `offset=${BULK}&limit=10`);
    assert.deepEqual(tail.names, all.slice(BULK));
    assert.equal((await page(gw, 'limit=0')).names.length, 0);
  });

  it('q matches names, host:port and metadata key=value, case-insensitively', async () => {
    assert.deepEqual((await page(gw, 'q=BULK-0')).names, bulk.slice(0, 10));
    assert.deepEqual((await page(gw, 'q=127.0.0.12:8080')).names, ['bulk-02.static']);
    // Parts are looked at one by one: a search cannot match across an address and a metadata entry.
    assert.deepEqual((await page(gw, `q=${encodeURIComponent('127.0.0.1:9\0zone=west')}`)).names, []);
    const west = await page(gw, 'q=zone%3Dwest');
    assert.deepEqual(west.names, ['shop.static']);
    assert.equal(west.matched, 1);
    assert.equal(west.total, BULK + 3);
  });

  it('registry, routed and names filters; (none) for services only routes name', async () => {
    assert.deepEqual((await page(gw, 'registry=pay')).names, ['pay.static']);
    assert.deepEqual((await page(gw, 'registry=(none)')).names, ['ghost.static']);
    assert.deepEqual((await page(gw, 'show=routed')).names, ['ghost.static', 'pay.static', 'shop.static']);
    assert.deepEqual((await page(gw, `names=${encodeURIComponent('pay.static,nope.static,bulk-07.static')}`)).names, ['bulk-07.static', 'pay.static']);
  });

  it('show=problems: a service with no instance or an instance that cannot be used', async () => {
    // shop's second instance (port 9) fails its health check; ghost has no instances; pay is well.
    await waitFor(async () => (await page(gw, 'show=problems')).names.includes('shop.static'), 10_000);
    const r = await page(gw, 'show=problems');
    assert.ok(r.names.includes('ghost.static'));
    assert.ok(!r.names.includes('pay.static'));
    const shop = r.body.find((s: any) => s.name === 'shop.static');
    assert.equal(shop.endpoints.filter((e: any) => !e.healthy).length, 1, 'the page carries the instance state that put it there');
  });

  it('pages and searches follow the registry: a service that appears, moves or goes is seen by the next read', async () => {
    // The sorted names and each endpoint list's search text are kept between reads; they must not outlive a change.
    const sink = gw.table.sinkFor('late', 'static', gw.log);
    const ep = (host: string, zone: string) => ({ host, port: 80, weight: 1, healthy: true, metadata: { zone } });
    assert.deepEqual((await page(gw, 'q=192.0.2.7')).names, []);
    sink.set('aaa-late.static', [ep('192.0.2.7', 'north')]);
    const first = await page(gw, 'limit=1');
    assert.deepEqual(first.names, ['aaa-late.static'], 'a new service takes its place in the sorted list');
    assert.equal(first.total, BULK + 4);
    assert.deepEqual((await page(gw, 'q=192.0.2.7')).names, ['aaa-late.static']);
    assert.deepEqual((await page(gw, 'q=zone%3Dnorth')).names, ['aaa-late.static']);
    sink.set('aaa-late.static', [ep('192.0.2.8', 'south')]);
    assert.deepEqual((await page(gw, 'q=192.0.2.7')).names, [], 'the old address is not found any more');
    assert.deepEqual((await page(gw, 'q=192.0.2.8')).names, ['aaa-late.static']);
    assert.deepEqual((await page(gw, 'q=zone%3Dsouth')).names, ['aaa-late.static']);
    sink.remove('aaa-late.static');
    const gone = await page(gw, 'limit=1');
    assert.notDeepEqual(gone.names, ['aaa-late.static']);
    assert.equal(gone.total, BULK + 3);
    assert.deepEqual((await page(gw, 'q=192.0.2.8')).names, []);
  });

  it('a bad key is a 400 naming it, and the whole list still serves', async () => {
    for (const [q, key] of [
      ['limit=-1', 'limit'],
      ['limit=10001', 'limit'],
      ['offset=x', 'offset'],
      ['show=broken', 'show'],
    ]) {
      const r = await page(gw, q!);
      assert.equal(r.status, 400, q);
      assert.match(r.body.error, new RegExp(key!));
    }
    assert.equal((await page(gw, '')).status, 200);
  });
});
