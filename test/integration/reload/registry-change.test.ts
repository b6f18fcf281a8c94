// A reload that changes a registry's settings hands its services to the new
// watcher without a gap: they keep their endpoints until it reports, even when
// it cannot reach its resolver (as when an unchanged registry goes down).
// Services the new watcher no longer reports go once it has listed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { waitFor } from '../../helpers/gateway.js';
import { startDns, type TestDns } from '../../helpers/dns-server.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { freePort, startTarget, type Target } from './harness.js';

describe('a changed registry takes over its services without a gap', () => {
  let upstream: TestUpstream;
  let dns: TestDns;
  let target: Target;
  let port: number;
  let adminPort: number;

  const config = (o: { intervalMs: number; domain?: string }): string => `
listeners: [{ name: public, address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${adminPort}" }
log: { level: info, access: false }
registries:
  - { name: names, type: dns, domain: "${o.domain ?? 'svc.test'}:${upstream.port}", resolvers: ["${dns.address}"], intervalMs: ${o.intervalMs} }
routes:
  - { name: all, match: { path: { prefix: / } }, backends: [{ service: names.dns }] }
`;
  const status = async (): Promise<number> => {
    const r = await request(`http://127.0.0.1:${port}/x`, { reset: true });
    await r.body.dump();
    return r.statusCode;
  };

  before(async () => {
    upstream = await startUpstream('u');
    dns = await startDns();
    dns.records.set('svc.test', ['127.0.0.1']);
    [port, adminPort] = [await freePort(), await freePort()];
    target = await startTarget(1, config({ intervalMs: 200 }));
    await waitFor(async () => (await status()) === 200, 10_000);
  });
  after(async () => {
    await target?.stop();
    await upstream?.close();
    await dns?.close();
  });

  it('its resolver silent, the changed registry keeps serving the last known endpoints', async () => {
    dns.silent = true;
    const r = await target.reload(config({ intervalMs: 300 }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (let i = 0; i < 10; i++) {
      assert.equal(await status(), 200, `request ${i} after the reload`);
      await new Promise((res) => setTimeout(res, 50));
    }
    assert.equal((await target.get('/readyz')).status, 200);
    await waitFor(async () => (await target.get('/api/registries')).body.find((x: { name: string }) => x.name === 'names')?.up === false, 5_000);
    assert.equal(await status(), 200);
  });

  it('once the new watcher answers, what it does not report goes (a valid empty answer empties the service)', async () => {
    dns.silent = false;
    const r = await target.reload(config({ intervalMs: 200, domain: 'gone.test' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor(async () => (await status()) === 503, 5_000);
  });
});
