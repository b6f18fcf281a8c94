// The console in front of `meshgate start --workers 2`: the admin API runs in
// the primary, which has no request path of its own. Live figures come from
// the workers' summed metrics, instance state from each worker's live view,
// and an apply reaches every worker through the primary's reload.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { request } from 'undici';
import { ensureConsoleBuilt, launchBrowser } from '../../helpers/browser.js';
import { spawnConfig, spawnGateway, waitFor, type SpawnedGateway } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

async function api(url: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await request(url, body === undefined ? { reset: true } : { method: 'POST', reset: true, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.statusCode, body: await r.body.json() };
}

describe('console with --workers 2', () => {
  let good: TestUpstream;
  let bad: TestUpstream;
  let gw: SpawnedGateway | undefined;
  let browser: Browser;
  let dir: string;
  let file: string;
  let admin: string;
  let pub: string;

  before(async () => {
    await ensureConsoleBuilt();
    good = await startUpstream('good');
    bad = await startUpstream((_req, res) => {
      res.writeHead(500);
      res.end('broken');
    });
    dir = mkdtempSync(join(tmpdir(), 'meshgate-console-workers-'));
    const made = await spawnConfig(
      dir,
      `registries: [{ name: shop, type: static, endpoints: ["${good.address}", "${bad.address}"] }]
services:
  shop.static:
    outlierDetection: { consecutive5xx: 2, intervalMs: 200, baseEjectionMs: 60000, maxEjectionPercent: 50 }
routes:
  - { name: shop, match: { path: { prefix: /shop } }, backends: [{ service: shop.static }] }
`,
    );
    file = made.file;
    admin = `http://127.0.0.1:${made.adminPort}`;
    pub = `http://127.0.0.1:${made.port}`;
    gw = await spawnGateway(file, made.adminPort, 2);
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    await good?.close();
    await bad?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the workers, live traffic summed over them, and an instance a worker ejected', async () => {
    assert.equal((await api(`${admin}/api/overview`)).body.workers, 2);
    await api(`${admin}/api/stats`); // starts the sampler
    const since = Date.now();
    // Fresh connections, so both workers take requests (the kernel spreads accepted connections).
    const send = async (): Promise<void> => {
      for (let i = 0; i < 40; i++) await (await request(`${pub}/shop/x`, { reset: true })).body.text();
    };
    await send();
    const stats = await waitFor(async () => {
      const r = await api(`${admin}/api/stats?since=${since}`);
      return r.body.points.some((p: { rps: number }) => p.rps > 0) ? r.body : undefined;
    }, 5000);
    assert.ok(stats.points.some((p: { errorRate: number }) => p.errorRate > 0), 'the 500s count as errors');

    const page = await browser.newPage();
    await page.goto(`${admin}/#/services/shop.static`);
    const row = page.locator('tr', { hasText: bad.address });
    await row.locator('.pill', { hasText: /^ejected$/ }).waitFor({ timeout: 5000 });
    // The control plane's own view has no ejection: it came from a worker's live state.
    const own = (await api(`${admin}/api/services`)).body.find((s: { name: string }) => s.name === 'shop.static');
    assert.equal(own.endpoints.find((e: { port: number }) => e.port === bad.port).ejected, false);
    assert.equal(await page.locator('tr', { hasText: good.address }).locator('.pill', { hasText: /^ejected$/ }).count(), 0);
    await page.close();
  });

  it('an apply reaches every worker', async () => {
    const src = (await api(`${admin}/api/config/source`)).body;
    const text = src.text.replace('routes:\n', 'routes:\n  - { name: added, match: { path: { prefix: /added } }, backends: [{ service: shop.static }] }\n');
    const r = await api(`${admin}/api/config/apply`, { text, baseHash: src.hash });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(readFileSync(file, 'utf8'), text);
    // Every new connection, whichever worker takes it, has the new route: none answers 404 (no route).
    // (500s are the broken instance, which a worker that has not ejected it may still pick.)
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await request(`${pub}/added/y`, { reset: true });
      await res.body.text();
      codes.push(res.statusCode);
    }
    assert.deepEqual(codes.filter((c) => c !== 200 && c !== 500), []);
    assert.ok(codes.includes(200));
  });
});
