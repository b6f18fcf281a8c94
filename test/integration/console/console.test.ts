// The web console in a real browser (Debian's Chromium) against a real
// gateway: every page shows the running gateway's data; a route added in the
// editor serves traffic; a bad draft shows `meshgate validate`'s own problem
// lines and is refused; ejections and open breakers show within 2 s of the
// API; the read role changes nothing; a file changed behind the console's back
// is a conflict that overwrites nothing.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { Gateway } from '../../../src/gateway.js';
import { hashPassword } from '../../../src/filters/auth/password.js';
import { ensureConsoleBuilt, launchBrowser } from '../../helpers/browser.js';
import { quietLog } from '../../helpers/gateway.js';
import { freePort, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const shots = join(root, 'test-results', 'console');
const ADMIN_TOKEN = 'ops-token-0123456789abcdef';
const READ_TOKEN = 'viewer-token-0123456789ab';
const BULK = 250;

function configText(p: { listen: number; admin: number; shop: TestUpstream[]; pay: TestUpstream; carol: string }): string {
  return `# console test gateway
listeners:
  - { name: public, address: "127.0.0.1:${p.listen}", protocol: http }

admin:
  address: "127.0.0.1:${p.admin}"
  auth:
    tokens:
      - { name: ops, token: "${ADMIN_TOKEN}", role: admin }
      - { name: viewer, token: "${READ_TOKEN}", role: read }
    basic:
      - { name: carol, password: "${p.carol}", role: read }

registries:
  - name: shop
    type: static
    endpoints:
${p.shop.map((u, i) => `      - "${u.address} zone=z${i}"`).join('\n')}
  - name: pay
    type: static
    endpoints: ["${p.pay.address}"]
  # Hundreds of services for the search and paging (not routed, never contacted).
${Array.from({ length: BULK }, (_, i) => `  - { name: x-bulk-${String(i).padStart(3, '0')}, type: static, endpoints: ["127.0.0.1:9 zone=bulk"] }`).join('\n')}

services:
  shop.static:
    timeoutMs: 2000
    connectTimeoutMs: 500
    outlierDetection: { consecutive5xx: 3, consecutiveConnectFailure: 2, intervalMs: 500, baseEjectionMs: 60000, maxEjectionPercent: 50 }
  pay.static:
    circuitBreakers:
      - { strategy: error_count, threshold: 3, minRequests: 3, statIntervalMs: 20000, openMs: 60000 }

routes:
  - name: shop
    match: { path: { prefix: /shop } }
    backends: [{ service: shop.static }]
  - name: pay
    match: { path: { prefix: /pay } }
    backends: [{ service: pay.static }]
  - name: ghost
    match: { path: { prefix: /ghost } }
    backends: [{ service: ghost.static }]
`;
}

describe('web console in a real browser', () => {
  let dir: string;
  let file: string;
  let gw: Gateway;
  let admin: string;
  let publicUrl: string;
  let browser: Browser;
  const shop: TestUpstream[] = [];
  let pay: TestUpstream;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];
  /** Every /api/services URL the console asked for. */
  const servicesAsks: string[] = [];

  const api = async <T>(path: string, token = ADMIN_TOKEN): Promise<T> => {
    const r = await fetch(`${admin}${path}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, `${path}: HTTP ${r.status}`);
    return (await r.json()) as T;
  };

  /** A page at the admin address; with a token it starts signed in (the token in sessionStorage, as the login form leaves it). */
  async function open(hash: string, token?: string): Promise<Page> {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    contexts.push(ctx);
    if (token) await ctx.addInitScript((t: string) => sessionStorage.setItem('meshgate.credential', JSON.stringify({ kind: 'token', token: t })), token);
    // Offline: the console loads nothing from anywhere but the gateway's admin address.
    await ctx.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${admin}/api/services`)) servicesAsks.push(url);
      if (url.startsWith(`${admin}/`) || url.startsWith('data:')) return route.continue();
      problems.push(`request outside the admin address: ${url}`);
      return route.abort();
    });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`native dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(`${admin}/${hash}`);
    return page;
  }

  const shot = (page: Page, name: string): Promise<Buffer> => page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });

  before(async () => {
    await ensureConsoleBuilt();
    mkdirSync(shots, { recursive: true });
    dir = mkdtempSync(join(tmpdir(), 'meshgate-console-'));
    file = join(dir, 'meshgate.yaml');
    for (let i = 0; i < 3; i++) shop.push(await startUpstream(`shop-${i}`));
    pay = await startUpstream((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('pay is broken');
    });
    const [listen, adminPort] = [await freePort(), await freePort()];
    const text = configText({ listen, admin: adminPort, shop, pay, carol: await hashPassword('carol-pass', { N: 1024 }) });
    writeFileSync(file, text);
    gw = await Gateway.start({ config: text, configPath: file, log: quietLog, accessLog: false });
    admin = gw.adminUrl();
    publicUrl = gw.listenerUrl('public');
    browser = await launchBrowser();
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await gw?.stop(100);
    for (const u of [...shop, pay]) await u?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows every page with the running gateway data (screenshots in test-results/console/)', async () => {
    const page = await open('#/overview', ADMIN_TOKEN);
    // First page: every service with its health and every route by name; live charts.
    const svc = page.getByTestId('overview-services');
    for (const name of ['shop.static', 'pay.static', 'ghost.static']) await svc.getByRole('link', { name, exact: true }).waitFor();
    const routes = page.getByTestId('overview-routes');
    for (const name of ['shop', 'pay', 'ghost']) await routes.getByRole('link', { name, exact: true }).waitFor();
    await svc.locator('tr', { hasText: 'shop.static' }).getByText('3/3').waitFor();
    await svc.locator('tr', { hasText: 'ghost.static' }).getByText('no instances').waitFor();
    await page.locator('.chart canvas').nth(2).waitFor();
    assert.equal(await page.locator('.chart').count(), 3);
    await page.getByTestId('who').getByText('role admin').waitFor();
    await page.getByTestId('registry-strip').getByText(`${BULK + 2} registries: ${BULK + 2} up`).waitFor();
    // Traffic shows in the live charts (the sampler runs while the console is open).
    for (let i = 0; i < 20; i++) await fetch(`${publicUrl}/shop/x`).then((r) => r.arrayBuffer());
    await page.locator('.tile').first().locator('.tile-value').filter({ hasNotText: /^(—|0)$/ }).waitFor({ timeout: 5000 });
    await shot(page, 'overview');

    await page.goto(`${admin}/#/services`);
    const table = page.getByTestId('services-table');
    for (const u of shop) await table.getByText(u.address).waitFor();
    await table.getByText(pay.address).waitFor();
    const search = page.getByPlaceholder('Search services, addresses, metadata');
    const rows = table.locator('tr[data-service]');
    // The gateway filters and pages: a row count is read once the answer for the new filter is in.
    const rowsBecome = async (n: number, what: string): Promise<void> => {
      for (let i = 0; i < 100 && (await rows.count()) !== n; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(await rows.count(), n, what);
    };
    // Hundreds of services: the first 200 rows, then more on request.
    assert.equal(await rows.count(), 200);
    await page.getByRole('button', { name: `Show ${BULK + 3 - 200} more of ${BULK + 3 - 200}` }).click();
    await table.locator('tr[data-service="shop.static"]').waitFor();
    await rowsBecome(BULK + 3, 'every service after "show more"');
    await search.fill('pay');
    await table.locator('tr[data-service="pay.static"]').waitFor();
    await rowsBecome(1, 'search hides other services');
    await search.fill('bulk-12');
    await table.locator('tr[data-service="x-bulk-129.static"]').waitFor();
    await rowsBecome(10, 'search by part of a name');
    await search.fill(shop[1]!.address);
    await table.locator('tr[data-service="shop.static"]').waitFor();
    await rowsBecome(1, 'search by instance address');
    await search.fill('');
    await page.getByLabel('show', { exact: true }).selectOption('problems');
    await table.locator('tr[data-service="ghost.static"]').waitFor();
    await table.locator('tr[data-service="shop.static"]').waitFor({ state: 'detached' });
    await page.getByLabel('show', { exact: true }).selectOption('all');
    await shot(page, 'services');

    await page.goto(`${admin}/#/services/shop.static`);
    const inst = page.getByTestId('instances-table');
    for (const u of shop) await inst.locator(`tr[data-instance="${u.address}"]`).getByText('up', { exact: true }).waitFor();
    await inst.getByText('zone: z1').waitFor();
    await shot(page, 'service-detail');

    await page.goto(`${admin}/#/routes`);
    const rt = page.getByTestId('routes-table');
    await rt.locator('tr[data-route="shop"]').getByText('3/3 healthy').waitFor();
    // A route whose service has no instances stands out.
    await rt.locator('tr[data-route="ghost"].row-bad').getByText('no instances').waitFor();
    assert.equal(await rt.locator('tr[data-route="shop"].row-bad').count(), 0);
    await shot(page, 'routes');
    // Only routes with a backend without a usable instance: the gateway names the services with problems.
    await page.getByLabel('only routes with a backend without healthy instances').check();
    await rt.locator('tr[data-route="shop"]').waitFor({ state: 'detached' });
    await rt.locator('tr[data-route="ghost"]').waitFor();
    assert.equal(await rt.locator('tr[data-route]').count(), 1);
    await page.getByLabel('only routes with a backend without healthy instances').uncheck();
    await rt.locator('tr[data-route="shop"]').waitFor();
    // Every poll of the overview, services and routes pages asked the gateway for a page, never for every service.
    assert.ok(servicesAsks.length > 5);
    assert.deepEqual(servicesAsks.filter((u) => !new URL(u).searchParams.has('limit')), []);

    await page.goto(`${admin}/#/registries`);
    const regs = page.getByTestId('registries-table');
    await regs.locator('tr[data-registry="shop"]').getByText('up', { exact: true }).waitFor();
    await regs.locator('tr[data-registry="pay"]').getByText('static').waitFor();
    await shot(page, 'registries');

    await page.goto(`${admin}/#/resilience`);
    await page.getByTestId('resilience-breakers').locator('tr[data-breaker="pay.static"]').getByText('closed').waitFor();
    await shot(page, 'resilience');

    await page.goto(`${admin}/#/config`);
    await page.getByTestId('config-path').getByText(file).waitFor();
    assert.equal(await page.getByTestId('editor').inputValue(), readFileSync(file, 'utf8'));
    await page.getByTestId('validation').getByText(`ok (3 routes, ${BULK + 2} registries`).waitFor();
    await shot(page, 'config');
    assert.deepEqual(problems, []);
  });

  it('a route added in the editor serves traffic and is written to the file; roll back restores the file before it', async () => {
    const page = await open('#/config', ADMIN_TOKEN);
    const editor = page.getByTestId('editor');
    await editor.waitFor();
    const before = readFileSync(file, 'utf8');
    assert.equal(await editor.inputValue(), before);
    const draft = `${before}  - name: added
    match: { path: { prefix: /added } }
    backends: [{ service: shop.static }]
`;
    await editor.fill(draft);
    await page.getByTestId('validation').getByText(`ok (4 routes, ${BULK + 2} registries`).waitFor();
    await page.getByTestId('diff').getByText('+  - name: added').waitFor();
    const versionBefore = (await api<{ version: number }>('/api/config')).version;
    await page.getByTestId('apply').click();
    await page.getByTestId('apply-result').getByText(/^Applied: version \d+ serves/).waitFor();
    assert.equal(readFileSync(file, 'utf8'), draft);
    assert.ok((await api<{ version: number }>('/api/config')).version > versionBefore);
    const r = await fetch(`${publicUrl}/added/thing`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('x-instance') ?? '', /^shop-\d$/);
    // The editor now holds the file as applied.
    assert.equal(await editor.inputValue(), draft);
    await page.goto(`${admin}/#/routes`);
    await page.getByTestId('routes-table').locator('tr[data-route="added"]').getByText('/added*').waitFor();

    // Roll back: the previous file text is written and serves again.
    await page.goto(`${admin}/#/config`);
    await page.getByTestId('rollback').click();
    await page.getByTestId('rollback-confirm').click();
    await page.getByTestId('apply-result').getByText(/^Rolled back: version \d+ serves/).waitFor();
    assert.equal(readFileSync(file, 'utf8'), before);
    assert.equal(await editor.inputValue(), before);
    assert.equal((await fetch(`${publicUrl}/added/thing`)).status, 404);
    assert.deepEqual(problems, []);
  });

  it('a bad draft shows the problem lines `meshgate validate` prints, and apply is refused', async () => {
    const page = await open('#/config', ADMIN_TOKEN);
    const editor = page.getByTestId('editor');
    await editor.waitFor();
    const onDisk = readFileSync(file, 'utf8');
    const version = (await api<{ version: number }>('/api/config')).version;
    const bad = onDisk.replace('backends: [{ service: pay.static }]', 'backends: [{ service: pay.static, weight: -1 }]');
    assert.notEqual(bad, onDisk);
    // The real CLI on the same text, run while the browser works.
    const draftFile = join(dir, 'draft.yaml');
    writeFileSync(draftFile, bad);
    const cliRun = new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'validate', draftFile], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('close', (status) => resolve({ status, stderr }));
    });
    await editor.fill(bad);
    // The answer for this draft (not an earlier one still on screen).
    await page.locator('[data-testid="validation"][data-checked="invalid"]').waitFor();
    const inPage = await page.getByTestId('problems').locator('li').allInnerTexts();

    const cli = await cliRun;
    assert.equal(cli.status, 1, cli.stderr);
    const fromCli = cli.stderr
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.slice(2));
    assert.ok(fromCli.length > 0, cli.stderr);
    assert.deepEqual(inPage, fromCli);
    assert.ok(inPage.some((l) => l.startsWith('routes[1].backends[0].weight:')), inPage.join('\n'));

    // Apply is disabled, and a forced apply from the page is refused: nothing written, nothing changed.
    assert.equal(await page.getByTestId('apply').isDisabled(), true);
    const forced = await page.evaluate(async (text: string) => {
      const cred = JSON.parse(sessionStorage.getItem('meshgate.credential') ?? 'null') as { token: string };
      const src = await fetch('/api/config/source', { headers: { authorization: `Bearer ${cred.token}`, 'x-meshgate-console': '1' } }).then((r) => r.json() as Promise<{ hash: string }>);
      const r = await fetch('/api/config/apply', {
        method: 'POST',
        headers: { authorization: `Bearer ${cred.token}`, 'x-meshgate-console': '1', 'content-type': 'application/json' },
        body: JSON.stringify({ text, baseHash: src.hash }),
      });
      return { status: r.status, body: (await r.json()) as { ok: boolean; problems?: string[] } };
    }, bad);
    assert.equal(forced.status, 400);
    assert.equal(forced.body.ok, false);
    assert.deepEqual(forced.body.problems, fromCli);
    assert.equal(readFileSync(file, 'utf8'), onDisk);
    assert.equal((await api<{ version: number }>('/api/config')).version, version);
    await shot(page, 'config-invalid');
    assert.deepEqual(problems, []);
  });

  it('a file changed on disk behind the console is a conflict: shown, nothing overwritten, the draft kept', async () => {
    const page = await open('#/config', ADMIN_TOKEN);
    const editor = page.getByTestId('editor');
    await editor.waitFor();
    const base = readFileSync(file, 'utf8');
    const mine = base.replace('# console test gateway', '# console test gateway\n# my edit in the console');
    await editor.fill(mine);
    await page.locator('[data-testid="validation"][data-checked="valid"]').waitFor();
    const theirs = `${base}# someone else's edit\n`;
    writeFileSync(file, theirs);
    await page.getByTestId('apply').click();
    const conflict = page.getByTestId('conflict');
    await conflict.getByText(/^Conflict: the config file changed on disk/).waitFor();
    assert.equal(readFileSync(file, 'utf8'), theirs, 'the other edit is kept');
    // The draft stays visible and copyable.
    assert.equal(await page.getByTestId('saved-draft').inputValue(), mine);
    assert.equal(await editor.inputValue(), mine);
    await shot(page, 'config-conflict');
    await page.getByTestId('load-current').click();
    assert.equal(await editor.inputValue(), theirs);
    assert.equal(await page.getByTestId('saved-draft').inputValue(), mine);
    assert.ok(await page.getByTestId('saved-draft').isVisible(), 'the earlier draft stays on screen');
    assert.equal(readFileSync(file, 'utf8'), theirs);
    assert.deepEqual(problems, []);
  });

  it('access control: 401 shows the login form, the read role changes nothing, the admin token can apply', async () => {
    const challenges: string[] = [];
    const page = await open('#/config');
    page.on('response', (r) => {
      if (r.status() === 401) challenges.push(r.headers()['www-authenticate'] ?? '');
    });
    const form = page.getByTestId('login-form');
    await form.waitFor();
    // A reload shows the form again, with no native credentials dialog: the API challenges the console with Bearer only.
    await page.reload();
    await form.waitFor();
    assert.ok(challenges.length > 0);
    for (const c of challenges) assert.doesNotMatch(c, /basic/i);
    await shot(page, 'login');

    // A wrong token is refused in the form.
    await form.getByLabel('Admin token').fill('not-a-valid-token-at-all');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await form.getByRole('alert').getByText(/Not signed in/).waitFor();

    // The read role: sees everything, can change nothing.
    await form.getByLabel('Admin token').fill(READ_TOKEN);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('who').getByText('role read').waitFor();
    const editor = page.getByTestId('editor');
    await editor.waitFor();
    assert.equal(await editor.getAttribute('readonly'), '');
    assert.equal(await page.getByTestId('apply').isDisabled(), true);
    assert.equal(await page.getByTestId('rollback').isDisabled(), true);
    await page.getByTestId('readonly-reason').getByText(/read role/).waitFor();
    await shot(page, 'config-read-role');
    const onDisk = readFileSync(file, 'utf8');
    const forced = await page.evaluate(async (text: string) => {
      const cred = JSON.parse(sessionStorage.getItem('meshgate.credential') ?? 'null') as { token: string };
      const r = await fetch('/api/config/apply', {
        method: 'POST',
        headers: { authorization: `Bearer ${cred.token}`, 'x-meshgate-console': '1', 'content-type': 'application/json' },
        body: JSON.stringify({ text: `${text}# read role was here\n`, baseHash: 'whatever' }),
      });
      return r.status;
    }, onDisk);
    assert.equal(forced, 403);
    assert.equal(readFileSync(file, 'utf8'), onDisk);
    await page.goto(`${admin}/#/services`);
    await page.getByTestId('services-table').getByText(shop[0]!.address).waitFor();

    // User and password (a Basic user with the read role).
    await page.getByRole('button', { name: 'Sign out' }).click();
    await form.getByRole('tab', { name: 'User and password' }).click();
    await form.getByLabel('User').fill('carol');
    await form.getByLabel('Password').fill('carol-pass');
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('who').getByText('carol').waitFor();
    await page.getByTestId('who').getByText('role read').waitFor();

    // The admin token can apply.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await form.getByLabel('Admin token').fill(ADMIN_TOKEN);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('who').getByText('role admin').waitFor();
    await page.goto(`${admin}/#/config`);
    await editor.waitFor();
    const text = readFileSync(file, 'utf8');
    assert.equal(await editor.inputValue(), text);
    const draft = `${text}# applied by the admin token\n`;
    await editor.fill(draft);
    await page.locator('[data-testid="validation"][data-checked="valid"]').waitFor();
    await page.getByTestId('apply').click();
    await page.getByTestId('apply-result').getByText(/^Applied: version \d+ serves/).waitFor();
    assert.equal(readFileSync(file, 'utf8'), draft);
    assert.deepEqual(problems, []);
  });

  it('an ejected instance and an open breaker show within 2 s of the API saying so', async () => {
    const services = await open('#/services/shop.static', ADMIN_TOKEN);
    const resilience = await open('#/resilience', ADMIN_TOKEN);
    const victim = shop[2]!;
    const row = services.getByTestId('instances-table').locator(`tr[data-instance="${victim.address}"]`);
    await row.getByText('up', { exact: true }).waitFor();
    const breakerRow = resilience.getByTestId('resilience-breakers').locator('tr[data-breaker="pay.static"]');
    await breakerRow.getByText('closed').waitFor();

    type Svc = { name: string; endpoints: Array<{ host: string; port: number; ejected?: boolean }>; breakers?: { breakers: Array<{ state: string }> } };
    await victim.close();
    let ejectedAt = 0;
    for (let i = 0; i < 200 && !ejectedAt; i++) {
      await fetch(`${publicUrl}/shop/x`).then((r) => r.arrayBuffer());
      const list = await api<Svc[]>('/api/services');
      if (list.find((s) => s.name === 'shop.static')?.endpoints.find((e) => e.port === victim.port)?.ejected) ejectedAt = Date.now();
    }
    assert.ok(ejectedAt, 'the gateway ejected the killed instance');
    await row.locator('.pill', { hasText: /^ejected$/ }).waitFor({ timeout: Math.max(1, ejectedAt + 2000 - Date.now()) });

    let openAt = 0;
    for (let i = 0; i < 50 && !openAt; i++) {
      await fetch(`${publicUrl}/pay/x`).then((r) => r.arrayBuffer());
      const list = await api<Svc[]>('/api/services');
      if (list.find((s) => s.name === 'pay.static')?.breakers?.breakers[0]?.state === 'open') openAt = Date.now();
    }
    assert.ok(openAt, 'the breaker opened');
    await breakerRow.locator('.pill', { hasText: /^open$/ }).waitFor({ timeout: Math.max(1, openAt + 2000 - Date.now()) });
    await shot(services, 'service-ejected');
    await shot(resilience, 'resilience-open');
    assert.deepEqual(problems, []);
  });
});
