// Active health checks run by the gateway: unhealthy instances are skipped
// and shown as such in the admin API and metrics.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

describe('active health checks in the gateway', () => {
  let good: TestUpstream, sick: TestUpstream, gw: Gateway;
  let sickHealthy = false;

  before(async () => {
    good = await startUpstream((req, res) => res.end(req.url === '/health' ? 'ok' : 'good'));
    sick = await startUpstream((req, res) => {
      if (req.url === '/health') {
        res.statusCode = sickHealthy ? 200 : 500;
        return void res.end();
      }
      res.end('sick');
    });
    gw = await startGateway({
      registries: [{ name: 'svc', type: 'static', endpoints: [good.address, sick.address] }],
      services: { 'svc.static': { healthCheck: { type: 'http', path: '/health', intervalMs: 50, unhealthyThreshold: 2, healthyThreshold: 2, timeoutMs: 500 } } },
      routes: [{ name: 'all', backends: [{ service: 'svc.static' }] }],
    });
  });
  after(async () => {
    await gw.stop();
    await Promise.all([good.close(), sick.close()]);
  });

  it('skips an instance that fails its checks and shows it unhealthy', async () => {
    await waitFor(async () => {
      const s = ((await (await request(gw.adminUrl() + '/api/services')).body.json()) as any[]).find((x) => x.name === 'svc.static');
      return s.endpoints.find((e: any) => e.port === sick.port).healthy === false;
    }, 10_000);
    for (let i = 0; i < 20; i++) assert.equal(await (await request(gw.listenerUrl() + '/x')).body.text(), 'good');
    const metrics = await (await request(gw.adminUrl() + '/metrics')).body.text();
    assert.match(metrics, new RegExp(`meshgate_instance_healthy\\{service="svc.static",endpoint="127.0.0.1:${sick.port}"\\} 0`));
  });

  it('routes to it again once it passes healthyThreshold checks', async () => {
    sickHealthy = true;
    await waitFor(async () => {
      const seen = new Set<string>();
      for (let i = 0; i < 6; i++) seen.add(await (await request(gw.listenerUrl() + '/x')).body.text());
      return seen.has('sick');
    }, 10_000);
  });
});
