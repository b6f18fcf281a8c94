// Routing by service name end to end: matching, precedence, weights, failure flags.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import net from 'node:net';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { REFUSED_PORT, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

async function get(gw: Gateway, path: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await request(gw.listenerUrl('public') + path, { method, headers });
  const text = await res.body.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

describe('routing by service name', () => {
  let a: TestUpstream, b: TestUpstream, c: TestUpstream, slow: TestUpstream;
  let gw: Gateway;
  let deadPort: number;
  let blackhole: net.Server;
  let blackholePort: number;

  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    c = await startUpstream('c');
    slow = await startUpstream((_req, res) => setTimeout(() => res.end('late'), 3000));
    deadPort = REFUSED_PORT;
    blackhole = net.createServer(() => undefined); // accepts, never answers
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', () => r()));
    blackholePort = (blackhole.address() as net.AddressInfo).port;
    gw = await startGateway({
      registries: [
        { name: 'ab', type: 'static', endpoints: [`${a.address} weight=1`, `${b.address} weight=3`] },
        { name: 'c', type: 'static', endpoints: [c.address] },
        { name: 'dead', type: 'static', endpoints: [`127.0.0.1:${deadPort}`] },
        { name: 'empty', type: 'static', endpoints: [] },
        { name: 'slow', type: 'static', endpoints: [slow.address] },
        { name: 'bh', type: 'static', endpoints: [`127.0.0.1:${blackholePort}`] },
      ],
      services: { 'slow.static': { timeoutMs: 300 } },
      routes: [
        { name: 'catch-all', match: { path: { prefix: '/' } }, backends: [{ service: 'c.static' }] },
        { name: 'users', match: { path: { prefix: '/users' } }, backends: [{ service: 'ab.static' }] },
        { name: 'users-exact', match: { path: { exact: '/users/me' } }, backends: [{ service: 'c.static' }] },
        { name: 'users-deep', match: { path: { prefix: '/users/admin' } }, backends: [{ service: 'c.static' }] },
        { name: 'regex', match: { path: { regex: '/items/[0-9]+' } }, backends: [{ service: 'c.static' }] },
        { name: 'host-wild', match: { hosts: ['*.example.org'], path: { prefix: '/' } }, backends: [{ service: 'ab.static' }] },
        { name: 'host-exact', match: { hosts: ['api.example.org'], path: { prefix: '/' } }, backends: [{ service: 'c.static' }] },
        { name: 'post-only', match: { path: { prefix: '/write' }, methods: ['POST'] }, backends: [{ service: 'ab.static' }] },
        { name: 'hdr', match: { path: { prefix: '/hdr' }, headers: { 'x-env': { exact: 'prod' } } }, backends: [{ service: 'ab.static' }] },
        { name: 'query', match: { path: { prefix: '/q' }, query: { debug: { present: true } } }, backends: [{ service: 'ab.static' }] },
        { name: 'split', match: { path: { prefix: '/split' } }, backends: [{ service: 'ab.static', weight: 90 }, { service: 'c.static', weight: 10 }] },
        { name: 'dead', match: { path: { prefix: '/dead' } }, backends: [{ service: 'dead.static' }] },
        { name: 'empty', match: { path: { prefix: '/empty' } }, backends: [{ service: 'empty.static' }] },
        { name: 'unknown', match: { path: { prefix: '/unknown' } }, backends: [{ service: 'nope.static' }] },
        { name: 'slow', match: { path: { prefix: '/slow' } }, backends: [{ service: 'slow.static' }] },
        { name: 'blackhole', match: { path: { prefix: '/blackhole' } }, timeoutMs: 300, backends: [{ service: 'bh.static' }] },
        { name: 'only-get', match: { hosts: ['strict.test'], path: { prefix: '/' }, methods: ['GET'] }, backends: [{ service: 'c.static' }] },
      ],
    });
  });

  after(async () => {
    await gw.stop();
    await Promise.all([a.close(), b.close(), c.close(), slow.close()]);
    blackhole.close();
  });

  it('precedence: exact before prefix, longer prefix first, regex after prefixes, then order', async () => {
    assert.equal((await get(gw, '/users/me')).json.instance, 'c');
    assert.equal((await get(gw, '/users/admin/x')).json.instance, 'c');
    assert.match((await get(gw, '/users/42')).json.instance, /^[ab]$/);
    // prefix /users does not match /usersx (segment-aware)
    assert.equal((await get(gw, '/usersx')).json.instance, 'c');
    assert.equal((await get(gw, '/items/17')).json.instance, 'c');
    // dot segments are resolved before matching and forwarding
    const dots = await get(gw, '/users/../items/5');
    assert.equal(dots.json.instance, 'c');
    assert.equal(dots.json.url, '/items/5');
    const r = await get(gw, '/items/x');
    assert.equal(r.json.instance, 'c'); // falls to catch-all
  });

  it('host: exact host before wildcard before any host', async () => {
    assert.equal((await get(gw, '/', { host: 'api.example.org' })).json.instance, 'c');
    assert.match((await get(gw, '/', { host: 'www.example.org:8080' })).json.instance, /^[ab]$/);
    assert.equal((await get(gw, '/', { host: 'example.org' })).json.instance, 'c');
  });

  it('methods, headers and query conditions', async () => {
    assert.match((await get(gw, '/write', {}, 'POST')).json.instance, /^[ab]$/);
    assert.equal((await get(gw, '/write')).json.instance, 'c');
    assert.match((await get(gw, '/hdr', { 'x-env': 'prod' })).json.instance, /^[ab]$/);
    assert.equal((await get(gw, '/hdr', { 'x-env': 'dev' })).json.instance, 'c');
    assert.match((await get(gw, '/q?debug')).json.instance, /^[ab]$/);
    assert.equal((await get(gw, '/q?other=1')).json.instance, 'c');
  });

  it('no route: 404 with flag NR as JSON and header', async () => {
    const r = await get(gw, '/', { host: 'strict.test' }, 'DELETE');
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-meshgate-flag'], 'NR');
    assert.equal(r.json.flag, 'NR');
    assert.ok(r.json.requestId);
    assert.ok(r.json.error);
  });

  it('instance weights: smooth weighted round robin gives exactly 1:3', async () => {
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 400; i++) counts[(await get(gw, '/users/1')).json.instance]++;
    assert.equal(counts.a, 100);
    assert.equal(counts.b, 300);
  });

  it('weighted backends across services: 90/10 within 3%', async () => {
    let toC = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) if ((await get(gw, '/split')).json.instance === 'c') toC++;
    assert.ok(Math.abs(toC / n - 0.1) < 0.03, `c got ${toC}/${n}`);
  });

  it('failures have names: UH (no endpoints / unknown service), UF (connect), UT (timeout)', async () => {
    for (const p of ['/empty', '/unknown']) {
      const r = await get(gw, p);
      assert.equal(r.status, 503);
      assert.equal(r.json.flag, 'UH');
      assert.equal(r.headers['x-meshgate-flag'], 'UH');
    }
    const uf = await get(gw, '/dead');
    assert.equal(uf.status, 502);
    assert.equal(uf.json.flag, 'UF');
    const ut = await get(gw, '/slow');
    assert.equal(ut.status, 504);
    assert.equal(ut.json.flag, 'UT');
    const bh = await get(gw, '/blackhole');
    assert.equal(bh.status, 504);
    assert.equal(bh.json.flag, 'UT');
  });

  it('request ids: generated, or kept from the client', async () => {
    const r = await get(gw, '/users/1', { 'x-request-id': 'abc-123' });
    assert.equal(r.json.headers['x-request-id'], 'abc-123');
    assert.equal(r.headers['x-request-id'], 'abc-123');
    const r2 = await get(gw, '/users/1');
    assert.match(String(r2.json.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });
});
