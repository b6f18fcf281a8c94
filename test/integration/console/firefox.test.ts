// The console in Firefox (Debian's firefox-esr, over WebDriver BiDi): every
// page renders the running gateway's data without a script error, the charts
// draw, and the editor holds the file. The full behaviour is tested in
// Chromium (console.test.ts); this checks the page itself works in the other
// engine.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { Gateway } from '../../../src/gateway.js';
import { ensureConsoleBuilt, launchFirefox } from '../../helpers/browser.js';
import { quietLog } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

const shots = join(fileURLToPath(new URL('../../..', import.meta.url)), 'test-results', 'console');

describe('console in Firefox', () => {
  let up: TestUpstream;
  let gw: Gateway;
  let browser: Browser;
  let dir: string;
  let file: string;
  let admin: string;

  before(async () => {
    await ensureConsoleBuilt();
    mkdirSync(shots, { recursive: true });
    up = await startUpstream('shop');
    dir = mkdtempSync(join(tmpdir(), 'meshgate-console-ff-'));
    file = join(dir, 'meshgate.yaml');
    const text = `listeners: [{ name: public, address: "127.0.0.1:0", protocol: http }]
admin: { address: "127.0.0.1:0" }
log: { level: warn, access: false }
registries:
  - { name: shop, type: static, endpoints: ["${up.address}"] }
services:
  shop.static:
    circuitBreakers: [{ strategy: error_ratio, threshold: 0.5, minRequests: 5, statIntervalMs: 10000, openMs: 5000 }]
routes:
  - { name: shop, match: { path: { prefix: /shop } }, backends: [{ service: shop.static }] }
  - { name: ghost, match: { path: { prefix: /ghost } }, backends: [{ service: ghost.static }] }
`;
    writeFileSync(file, text);
    gw = await Gateway.start({ config: text, configPath: file, log: quietLog, accessLog: false });
    admin = gw.adminUrl();
    browser = await launchFirefox();
  });

  after(async () => {
    await browser?.close();
    await gw?.stop(100);
    await up?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Waits until the page's text holds every one of `texts`. */
  const shows = (page: Page, texts: string[]): Promise<unknown> =>
    page.waitForFunction((want: string[]) => want.every((t) => document.body.innerText.includes(t)), { timeout: 15_000 }, texts);

  it('renders every page with the gateway data and no script error', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.setViewport({ width: 1280, height: 800 });

    await page.goto(`${admin}/#/overview`);
    await shows(page, ['shop.static', 'ghost.static', 'no instances', 'Requests per second']);
    await page.waitForFunction(() => document.querySelectorAll('.chart canvas').length === 3, { timeout: 15_000 });
    await page.screenshot({ path: join(shots, 'firefox-overview.png') });

    await page.goto(`${admin}/#/services/shop.static`);
    await shows(page, [up.address, 'healthy']);

    await page.goto(`${admin}/#/routes`);
    await shows(page, ['shop', 'ghost', 'no instances']);

    await page.goto(`${admin}/#/registries`);
    await shows(page, ['shop', 'static', 'up']);

    await page.goto(`${admin}/#/resilience`);
    await shows(page, ['shop.static', 'closed']);

    await page.goto(`${admin}/#/config`);
    await shows(page, [file]);
    await page.waitForFunction((want: string) => (document.querySelector('[data-testid="editor"]') as HTMLTextAreaElement | null)?.value === want, { timeout: 15_000 }, readFileSync(file, 'utf8'));
    await shows(page, ['ok (2 routes, 1 registries']);
    await page.screenshot({ path: join(shots, 'firefox-config.png') });

    assert.deepEqual(errors, []);
    await page.close();
  });
});
