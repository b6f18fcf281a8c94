// Canary, subsets, grey lanes, balancers, outlier detection and health checks
// end to end through the gateway.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { HealthChecker } from '../../../src/balancing/health-check.js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

async function call(gw: Gateway, path: string, headers: Record<string, string> = {}) {
  const res = await request(gw.listenerUrl('public') + path, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, instance: res.headers['x-instance'] as string | undefined };
}

async function tally(gw: Gateway, path: string, n: number, headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await call(gw, path, headers);
    const k = r.instance ?? String(r.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

describe('traffic control through the gateway', () => {
  const ups: Record<string, TestUpstream> = {};
  const health = { v1b: 200 };
  let fail = false;
  let gw: Gateway;

  before(async () => {
    for (const name of ['v1a', 'v1b', 'v2', 'gray', 'canary', 'h1', 'h2', 'h3', 'o1', 'o2']) {
      ups[name] = await startUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
        if (req.url === '/health') {
          res.writeHead(name === 'v1b' ? health.v1b : 200);
          return res.end();
        }
        const status = name === 'o1' && fail ? 500 : 200;
        res.writeHead(status, { 'x-instance': name, 'x-seen-tag': String(req.headers['x-mse-tag'] ?? '') });
        res.end(name);
      });
    }
    const a = (n: string, meta = '') => `${ups[n]!.address}${meta}`;
    gw = await startGateway({
      registries: [
        { name: 'users', type: 'static', endpoints: [a('v1a', ' version=v1'), a('v1b', ' version=v1'), a('v2', ' version=v2'), a('gray', ' version=v1 x-mse-tag=gray')] },
        { name: 'users-canary', type: 'static', endpoints: [a('canary')] },
        { name: 'hash', type: 'static', endpoints: [a('h1'), a('h2'), a('h3')] },
        { name: 'outlier', type: 'static', endpoints: [a('o1'), a('o2')] },
        { name: 'sticky', type: 'static', endpoints: [a('h1'), a('h2'), a('h3')] },
      ],
      services: {
        'sticky.static': { loadBalancer: { type: 'sticky', cookie: 'mg-session', ttlSec: 3600 } },
        'hash.static': { loadBalancer: { type: 'consistent_hash', key: { header: 'x-user' } } },
        'outlier.static': { outlierDetection: { consecutive5xx: 3, baseEjectionMs: 400, maxEjectionPercent: 50, intervalMs: 60_000 } },
        'users.static': { healthCheck: { type: 'http', path: '/health', intervalMs: 50, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 } },
      },
      routes: [
        {
          name: 'canary',
          match: { path: { prefix: '/canary' } },
          backends: [{ service: 'users.static', subset: { version: 'v1' } }],
          canary: { byHeader: 'x-canary', byCookie: 'canary', weight: 30, backends: [{ service: 'users-canary.static' }] },
          grey: {},
        },
        { name: 'v2', match: { path: { prefix: '/v2' } }, backends: [{ service: 'users.static', subset: { version: 'v2' } }] },
        { name: 'v3-none', match: { path: { prefix: '/v3none' } }, backends: [{ service: 'users.static', subset: { version: 'v3' }, subsetFallback: 'none' }] },
        { name: 'v3-all', match: { path: { prefix: '/v3all' } }, backends: [{ service: 'users.static', subset: { version: 'v3' } }] },
        {
          name: 'grey',
          match: { path: { prefix: '/grey' } },
          backends: [{ service: 'users.static', subset: { version: 'v1' } }],
          grey: { setTag: [{ tag: 'gray', query: { lane: { exact: 'gray' } } }] },
        },
        { name: 'hash', match: { path: { prefix: '/hash' } }, backends: [{ service: 'hash.static' }] },
        { name: 'sticky', match: { path: { prefix: '/sticky' } }, backends: [{ service: 'sticky.static' }] },
        { name: 'outlier', match: { path: { prefix: '/outlier' } }, backends: [{ service: 'outlier.static' }] },
      ],
    });
  });

  after(async () => {
    await gw?.stop();
    await Promise.all(Object.values(ups).map((u) => u.close()));
  });

  it('canary by header: always / never', async () => {
    assert.deepEqual(await tally(gw, '/canary', 20, { 'x-canary': 'always' }), { canary: 20 });
    const never = await tally(gw, '/canary', 20, { 'x-canary': 'never', cookie: 'canary=always' });
    assert.equal(never.canary, undefined);
  });

  it('canary by cookie', async () => {
    assert.deepEqual(await tally(gw, '/canary', 20, { cookie: 'canary=always' }), { canary: 20 });
    const never = await tally(gw, '/canary', 40, { cookie: 'canary=never' });
    assert.equal(never.canary, undefined);
  });

  it('canary weight 30 sends about 30% to the canary', async () => {
    const t = await tally(gw, '/canary', 600);
    const share = (t.canary ?? 0) / 600;
    assert.ok(Math.abs(share - 0.3) < 0.07, `canary share ${share}`);
  });

  it('subsets select by metadata; an empty subset falls back to all, or 503 with fallback none', async () => {
    assert.deepEqual(await tally(gw, '/v2', 10), { v2: 10 });
    const none = await call(gw, '/v3none');
    assert.equal(none.status, 503);
    assert.equal(none.headers['x-meshgate-flag'], 'UH');
    const all = await tally(gw, '/v3all', 40);
    assert.ok(Object.keys(all).length >= 3, JSON.stringify(all));
  });

  it('grey: the tag header picks tagged instances and is passed upstream', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await call(gw, '/grey', { 'x-mse-tag': 'gray' });
      assert.equal(r.instance, 'gray');
      assert.equal(r.headers['x-seen-tag'], 'gray');
    }
  });

  it('grey: untagged requests never reach the tagged instance; unknown tags fall back to untagged', async () => {
    const t = await tally(gw, '/grey', 30);
    assert.equal(t.gray, undefined);
    assert.deepEqual(Object.keys(t).sort(), ['v1a', 'v1b']);
    const u = await tally(gw, '/grey', 30, { 'x-mse-tag': 'blue' });
    assert.equal(u.gray, undefined);
  });

  it('grey: a route rule sets the tag, and the upstream sees it', async () => {
    const r = await call(gw, '/grey?lane=gray');
    assert.equal(r.instance, 'gray');
    assert.equal(r.headers['x-seen-tag'], 'gray');
  });

  it('consistent hash: the same key keeps its instance', async () => {
    for (const user of ['alice', 'bob', 'carol', 'dave']) {
      const t = await tally(gw, '/hash', 10, { 'x-user': user });
      assert.equal(Object.keys(t).length, 1, `${user}: ${JSON.stringify(t)}`);
    }
  });

  it('sticky sessions: the cookie set on the first answer keeps the client on one instance', async () => {
    const first = await call(gw, '/sticky');
    const setCookie = String(first.headers['set-cookie']);
    assert.match(setCookie, /^mg-session=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=3600$/);
    const cookie = setCookie.split(';')[0]!;
    const t = await tally(gw, '/sticky', 15, { cookie });
    assert.deepEqual(t, { [first.instance!]: 15 });
    // without the cookie, round robin spreads
    assert.ok(Object.keys(await tally(gw, '/sticky', 6)).length >= 2);
  });

  it('outlier detection ejects a failing instance, shows it in /api/services and metrics, and lets it back', async () => {
    fail = true;
    // Round robin over o1/o2: o1 fails three times within six requests.
    await tally(gw, '/outlier', 6);
    const services = (await (await request(gw.adminUrl() + '/api/services')).body.json()) as any;
    const list = Array.isArray(services) ? services : services.services;
    const svc = list.find((s: any) => s.name === 'outlier.static');
    const o1 = svc.endpoints.find((e: any) => e.port === ups.o1!.port);
    assert.equal(o1.ejected, true);
    const metrics = await (await request(gw.adminUrl() + '/metrics')).body.text();
    assert.match(metrics, new RegExp(`meshgate_outlier_ejected\\{service="outlier.static",endpoint="${ups.o1!.address}"\\} 1`));
    assert.deepEqual(await tally(gw, '/outlier', 10), { o2: 10 });
    fail = false;
    await waitFor(async () => (await tally(gw, '/outlier', 4)).o1 !== undefined, 5000);
  });

  it('health checks: an unhealthy instance is skipped and comes back', async () => {
    const checker = new HealthChecker(gw.clusters, { metrics: gw.metrics, syncIntervalMs: 50 });
    checker.start();
    try {
      health.v1b = 503;
      await waitFor(() => !gw.clusters.get('users.static').instances.find((i) => i.port === ups.v1b!.port)!.checkHealthy, 5000);
      const t = await tally(gw, '/grey', 20);
      assert.deepEqual(t, { v1a: 20 });
      const metrics = await (await request(gw.adminUrl() + '/metrics')).body.text();
      assert.match(metrics, new RegExp(`meshgate_instance_healthy\\{service="users.static",endpoint="${ups.v1b!.address}"\\} 0`));
      health.v1b = 200;
      await waitFor(async () => (await tally(gw, '/grey', 6)).v1b !== undefined, 5000);
    } finally {
      checker.stop();
    }
  });
});
