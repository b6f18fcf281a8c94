// Circuit breakers, flow control and system protection end to end through the gateway.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { describeResilience } from '../../../src/resilience/index.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

async function call(gw: Gateway, path: string, headers: Record<string, string> = {}) {
  const res = await request(gw.listenerUrl('public') + path, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

async function admin(gw: Gateway, path: string): Promise<string> {
  const res = await request(gw.adminUrl() + path);
  return res.body.text();
}

describe('resilience through the gateway', () => {
  const ups: TestUpstream[] = [];
  let gw: Gateway;
  let flaky: TestUpstream;
  let healthy = false;
  let slow: TestUpstream;
  let bad: TestUpstream;
  let good: TestUpstream;
  const releaseSlow: Array<() => void> = [];

  const baseConfig = (extra: { bRules?: unknown[] } = {}) => ({
    registries: [
      { name: 'flaky', type: 'static' as const, endpoints: [flaky.address] },
      { name: 'fb', type: 'static' as const, endpoints: [flaky.address] },
      { name: 'b', type: 'static' as const, endpoints: [flaky.address] },
      { name: 'slow', type: 'static' as const, endpoints: [slow.address] },
      { name: 'pair', type: 'static' as const, endpoints: [bad.address, good.address] },
    ],
    services: {
      'flaky.static': { circuitBreakers: [{ strategy: 'error_count' as const, threshold: 2, minRequests: 1, statIntervalMs: 60_000, openMs: 400 }] },
      'fb.static': {
        circuitBreakers: [
          { strategy: 'error_count' as const, threshold: 0, minRequests: 1, statIntervalMs: 60_000, openMs: 60_000, fallback: { response: { status: 200, body: 'served from fallback' } } },
        ],
      },
      'pair.static': { circuitBreakers: [{ strategy: 'error_count' as const, threshold: 1, minRequests: 1, statIntervalMs: 60_000, openMs: 60_000, scope: 'instance' as const }] },
      'b.static': { circuitBreakers: (extra.bRules ?? [{ strategy: 'error_ratio', threshold: 0.5 }]) as never },
    },
    routes: [
      { name: 'flaky', match: { path: { prefix: '/flaky' } }, backends: [{ service: 'flaky.static' }] },
      { name: 'fb', match: { path: { prefix: '/fb' } }, backends: [{ service: 'fb.static' }] },
      { name: 'pair', match: { path: { prefix: '/pair' } }, backends: [{ service: 'pair.static' }] },
      { name: 'b', match: { path: { prefix: '/b' } }, backends: [{ service: 'b.static' }] },
      {
        name: 'limited',
        match: { path: { prefix: '/limited' } },
        backends: [{ service: 'b.static' }],
        filters: [{ type: 'flow_control' as const, rules: [{ count: 1, intervalSec: 60, key: { header: 'x-user' }, match: { prefix: 'free-' } }, { count: 3, intervalSec: 60 }] }],
      },
      {
        name: 'conc',
        match: { path: { prefix: '/conc' } },
        backends: [{ service: 'slow.static' }],
        filters: [{ type: 'flow_control' as const, rules: [{ metric: 'concurrency' as const, count: 1 }] }],
      },
      {
        name: 'shed',
        match: { path: { prefix: '/shed' } },
        backends: [{ service: 'slow.static' }],
        filters: [{ type: 'system_protection' as const, maxConcurrency: 1 }],
      },
    ],
  });

  before(async () => {
    flaky = await startUpstream((req: http.IncomingMessage, res: http.ServerResponse) => {
      req.resume();
      res.writeHead(healthy ? 200 : 500, { 'content-type': 'text/plain' });
      res.end(healthy ? 'ok' : 'boom');
    });
    slow = await startUpstream((req, res) => {
      req.resume();
      releaseSlow.push(() => res.end('slow done'));
    });
    bad = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(502).end('bad instance');
    });
    good = await startUpstream('good');
    ups.push(flaky, slow, bad, good);
    gw = await startGateway(baseConfig());
  });

  after(async () => {
    for (const r of releaseSlow) r();
    await gw?.stop();
    for (const u of ups) await u.close();
  });

  it('opens after errors > threshold (503 UO), probes after openMs and closes on a good probe', async () => {
    healthy = false;
    for (let i = 0; i < 3; i++) assert.equal((await call(gw, '/flaky')).status, 500);
    const open = await call(gw, '/flaky');
    assert.equal(open.status, 503);
    assert.equal(open.headers['x-meshgate-flag'], 'UO');
    const seenWhileOpen = flaky.seen.length;
    assert.equal((await call(gw, '/flaky')).status, 503);
    assert.equal(flaky.seen.length, seenWhileOpen, 'an open breaker does not reach the upstream');

    const services = JSON.parse(await admin(gw, '/api/services')) as Array<{ name: string; breakers?: { breakers: Array<{ state: string }> } }>;
    assert.equal(services.find((s) => s.name === 'flaky.static')?.breakers?.breakers[0]?.state, 'open');
    const metrics = await admin(gw, '/metrics');
    assert.match(metrics, /meshgate_circuit_state\{service="flaky.static",scope="service"\} 1/);
    assert.match(metrics, /meshgate_rejections_total\{reason="UO",route="flaky",filter="circuit_breaker"\} [1-9]/);

    healthy = true;
    await new Promise((r) => setTimeout(r, 450));
    const probe = await call(gw, '/flaky');
    assert.equal(probe.status, 200, 'the probe reaches the recovered upstream');
    assert.equal((await call(gw, '/flaky')).status, 200, 'closed again');
  });

  it('scope instance: an instance with an open breaker is skipped, the others keep serving', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await call(gw, '/pair')).status);
    // Round robin sends the bad instance two requests before its breaker opens (errors > 1).
    assert.equal(statuses.filter((s) => s === 502).length, 2, `statuses: ${statuses}`);
    assert.deepEqual(statuses.slice(-6), [200, 200, 200, 200, 200, 200]);
    assert.equal(bad.seen.length, 2, 'no request reached the bad instance after its breaker opened');
    const svc = (JSON.parse(await admin(gw, '/api/services')) as Array<{ name: string; breakers?: { instances: Record<string, Array<{ state: string }>> } }>).find(
      (s) => s.name === 'pair.static',
    )!;
    assert.equal(svc.breakers!.instances[bad.address]![0]!.state, 'open');
    assert.equal(svc.breakers!.instances[good.address]![0]!.state, 'closed');
    assert.match(await admin(gw, '/metrics'), new RegExp(`meshgate_circuit_state\\{service="pair.static",scope="${bad.address}"\\} 1`));
  });

  it('answers with the configured fallback while open', async () => {
    healthy = false;
    assert.equal((await call(gw, '/fb')).status, 500);
    const r = await call(gw, '/fb');
    assert.equal(r.status, 200);
    assert.equal(r.text, 'served from fallback');
    assert.equal(r.headers['x-meshgate-flag'], 'UO');
    healthy = true;
  });

  it('flow control: 429 RL with Retry-After; keyed rule limits matching keys only', async () => {
    healthy = true;
    const r1 = await call(gw, '/limited', { 'x-user': 'free-1' });
    assert.equal(r1.status, 200);
    const r2 = await call(gw, '/limited', { 'x-user': 'free-1' });
    assert.equal(r2.status, 429, 'free-1 is over its own limit of 1');
    assert.equal(r2.headers['x-meshgate-flag'], 'RL');
    assert.ok(Number(r2.headers['retry-after']) >= 1);
    assert.equal((await call(gw, '/limited', { 'x-user': 'paid-1' })).status, 200, 'paid-1 does not match the keyed rule');
    assert.equal((await call(gw, '/limited', { 'x-user': 'paid-1' })).status, 200);
    assert.equal((await call(gw, '/limited', { 'x-user': 'paid-1' })).status, 429, 'route-wide count of 3 reached');
    const metrics = await admin(gw, '/metrics');
    assert.match(metrics, /meshgate_rejections_total\{reason="RL",route="limited",filter="flow_control"\} 2/);
    const view = describeResilience(gw.clusters.all(), gw.state.globalFilters, gw.state.router.routes) as { filters: Array<{ route: string; state: { rules: Array<{ rejected: number }> } }> };
    const limited = view.filters.find((f) => f.route === 'limited')!;
    assert.deepEqual(
      limited.state.rules.map((r) => r.rejected),
      [1, 1],
    );
  });

  it('concurrency rules release their slot when the exchange ends', async () => {
    const first = call(gw, '/conc');
    await waitFor(() => releaseSlow.length >= 1);
    const second = await call(gw, '/conc');
    assert.equal(second.status, 429);
    releaseSlow.shift()!();
    assert.equal((await first).status, 200);
    const third = call(gw, '/conc');
    await waitFor(() => releaseSlow.length >= 1);
    releaseSlow.shift()!();
    assert.equal((await third).status, 200, 'slot freed after the first request ended');
  });

  it('system_protection sheds with 503 SP past maxConcurrency', async () => {
    const first = call(gw, '/shed');
    await waitFor(() => releaseSlow.length >= 1);
    const shed = await call(gw, '/shed');
    assert.equal(shed.status, 503);
    assert.equal(shed.headers['x-meshgate-flag'], 'SP');
    releaseSlow.shift()!();
    assert.equal((await first).status, 200);
  });

  it('a reload that changes one service keeps the open breakers of the others', async () => {
    healthy = false;
    for (let i = 0; i < 3; i++) await call(gw, '/flaky');
    assert.equal((await call(gw, '/flaky')).headers['x-meshgate-flag'], 'UO');
    const flakyBreakers = gw.clusters.get('flaky.static').breakers;
    const res = await gw.reload(
      (await import('../../helpers/gateway.js')).testConfig(baseConfig({ bRules: [{ strategy: 'error_count', threshold: 10 }] })) as never,
    );
    assert.ok(res.ok, res.error);
    assert.equal(gw.clusters.get('flaky.static').breakers, flakyBreakers, 'same breaker set');
    assert.equal((await call(gw, '/flaky')).headers['x-meshgate-flag'], 'UO', 'still open after the reload');
    const b = gw.clusters.get('b.static').breakers!.describe() as { breakers: Array<{ strategy: string }> };
    assert.equal(b.breakers[0]!.strategy, 'error_count', 'b got its new rule');
    healthy = true;
  });

  it('rejects a config with an invalid breaker rule and keeps serving', async () => {
    const res = await gw.reload(
      (await import('../../helpers/gateway.js')).testConfig(baseConfig({ bRules: [{ strategy: 'slow_ratio', threshold: 0.5 }] })) as never,
    );
    assert.equal(res.ok, false);
    assert.match(res.error ?? '', /circuitBreakers\[0\]\.maxRtMs/);
  });
});
