// The admin API the web console uses: live stats, the config editor (source,
// validate, diff, apply with conflict detection, refused drafts, rollback),
// the roles, the origin check, and the file watch skipping the console's own
// writes. The browser side is test/integration/console/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { textHash } from '../../../src/config/load.js';
import type { Gateway } from '../../../src/gateway.js';
import { pointBetween, quantileMs, sumTotals, type Totals } from '../../../src/admin/stats.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

const ADMIN = 'admin-token-0123456789';
const READER = 'read-token-0123456789';

async function call(url: string, opts: { method?: string; token?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers };
  if (opts.body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
  const r = await request(url, { method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'), headers, body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) });
  const text = await r.body.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: r.statusCode, headers: r.headers, body };
}

function config(upstream: string, routes: string, extra = ''): string {
  return `listeners:
  - { name: public, address: "127.0.0.1:0", protocol: http }
admin:
  address: "127.0.0.1:0"
  auth:
    tokens:
      - { name: ops, token: "${ADMIN}", role: admin }
      - { name: viewer, token: "${READER}", role: read }
registries:
  - name: app   # the demo service
    type: static
    endpoints: ["${upstream}"]
routes:
${routes}${extra}`;
}

const ROUTE_A = `  - { name: a, match: { path: { prefix: /a } }, backends: [{ service: app.static }] }\n`;
const ROUTE_B = `  - { name: b, match: { path: { prefix: /b } }, backends: [{ service: app.static }] }\n`;

describe('console admin API', () => {
  let up: TestUpstream;
  let gw: Gateway;
  let file: string;
  let admin: string;
  let pub: string;

  before(async () => {
    up = await startUpstream('app');
    file = join(mkdtempSync(join(tmpdir(), 'meshgate-console-api-')), 'meshgate.yaml');
    writeFileSync(file, config(up.address, ROUTE_A));
    gw = await startGateway(readFileSync(file, 'utf8'), { configPath: file });
    admin = gw.adminUrl();
    pub = gw.listenerUrl();
  });
  after(async () => {
    await gw?.stop(0);
    await up?.close();
  });

  it('says who is asking and which role they have', async () => {
    assert.equal((await call(`${admin}/api/whoami`)).status, 401);
    const noDialog = await call(`${admin}/api/whoami`, { headers: { 'x-meshgate-console': '1' } });
    assert.equal(noDialog.status, 401);
    assert.doesNotMatch(String(noDialog.headers['www-authenticate']), /Basic/);
    assert.deepEqual((await call(`${admin}/api/whoami`, { token: READER })).body, { name: 'viewer', role: 'read', readOnly: false, authEnabled: true });
    assert.equal((await call(`${admin}/api/whoami`, { token: ADMIN })).body.role, 'admin');
  });

  it('gives the file as on disk with its hash; the read role sees secrets masked', async () => {
    const own = await call(`${admin}/api/config/source`, { token: ADMIN });
    assert.equal(own.status, 200);
    assert.equal(own.body.text, readFileSync(file, 'utf8'));
    assert.equal(own.body.hash, textHash(own.body.text));
    assert.equal(own.body.fileMatchesRunning, true);
    assert.equal(own.body.writable, true);
    assert.match(own.body.text, /# the demo service/, 'comments are kept');
    const read = await call(`${admin}/api/config/source`, { token: READER });
    assert.doesNotMatch(read.body.text, new RegExp(ADMIN));
    assert.doesNotMatch(read.body.text, new RegExp(READER));
    assert.match(read.body.text, /token: "\*\*\*"/);
    assert.match(read.body.text, /\{ name: viewer, token: "\*\*\*", role: read \}/, 'names and roles stay readable');
    assert.match(read.body.text, /# the demo service/);
  });

  it('checks a draft exactly as `meshgate validate` does', async () => {
    const bad = config(up.address, ROUTE_A.replace('app.static }', 'app.static, weight: -1 }'));
    const r = await call(`${admin}/api/config/validate`, { token: READER, body: { text: bad } });
    assert.equal(r.status, 200);
    assert.equal(r.body.ok, false);
    const draft = join(mkdtempSync(join(tmpdir(), 'meshgate-draft-')), 'draft.yaml');
    writeFileSync(draft, bad);
    const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'validate', draft], { encoding: 'utf8' });
    assert.equal(cli.status, 1);
    const printed = cli.stderr.split('\n').slice(1).map((l) => l.trim()).filter(Boolean);
    assert.deepEqual(r.body.problems, printed);
    assert.match(r.body.problems[0], /^routes\[0\]\.backends\[0\]\.weight: /);
    const good = await call(`${admin}/api/config/validate`, { token: READER, body: { text: config(up.address, ROUTE_A + ROUTE_B) } });
    assert.deepEqual(good.body, { ok: true, warnings: [], summary: '2 routes, 1 registries' });
  });

  it('diffs the draft against the file', async () => {
    const r = await call(`${admin}/api/config/diff`, { token: READER, body: { text: config(up.address, ROUTE_A + ROUTE_B) } });
    assert.equal(r.body.changed, true);
    assert.match(r.body.diff, /^\+ {2}- \{ name: b,/m);
    assert.match(r.body.diff, /^@@ /m);
    assert.equal((await call(`${admin}/api/config/diff`, { token: READER, body: { text: readFileSync(file, 'utf8') } })).body.changed, false);
  });

  it('refuses writes from the read role, from another origin, and without a JSON body', async () => {
    const base = textHash(readFileSync(file, 'utf8'));
    const text = config(up.address, ROUTE_A + ROUTE_B);
    assert.equal((await call(`${admin}/api/config/apply`, { token: READER, body: { text, baseHash: base } })).status, 403);
    const foreign = await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text, baseHash: base }, headers: { origin: 'http://evil.example' } });
    assert.equal(foreign.status, 403);
    const form = await call(`${admin}/api/config/apply`, { token: ADMIN, body: `text=x`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 400);
    assert.equal(textHash(readFileSync(file, 'utf8')), base, 'nothing was written');
  });

  it('a client that vanishes mid-body or sends too much leaves the file alone and the admin API answering', async () => {
    const base = textHash(readFileSync(file, 'utf8'));
    const { port } = new URL(admin);
    // Declares 1,000 bytes, sends 20, closes.
    await new Promise<void>((resolve) => {
      const sock = connect(Number(port), '127.0.0.1', () => {
        sock.write(`POST /api/config/apply HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"text":"routes: []`);
        setTimeout(() => sock.destroy(), 50);
      });
      sock.on('close', () => resolve());
      sock.on('error', () => undefined);
    });
    const big = await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text: 'x'.repeat(5 * 1024 * 1024), baseHash: base } });
    assert.equal(big.status, 400);
    assert.match(big.body.error, /larger than/);
    assert.equal(textHash(readFileSync(file, 'utf8')), base, 'nothing was written');
    assert.equal((await call(`${admin}/api/whoami`, { token: ADMIN })).status, 200);
  });

  it('applies a draft: the file holds it and the new route serves; the file watch does not apply it twice', async () => {
    const before = await call(`${admin}/api/config/source`, { token: ADMIN });
    const text = config(up.address, ROUTE_A + ROUTE_B);
    assert.equal((await request(`${pub}/b`)).statusCode, 404);
    const r = await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text, baseHash: before.body.hash } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.version, before.body.runningVersion + 1, 'checking drafts takes no version numbers');
    assert.equal(r.body.version, gw.state.version);
    assert.equal(readFileSync(file, 'utf8'), text);
    const res = await request(`${pub}/b/x`);
    assert.equal(res.statusCode, 200);
    assert.equal(((await res.body.json()) as { instance: string }).instance, 'app');
    const again = await gw.reload(undefined, { ifFileChanged: true });
    assert.equal(again.unchanged, true);
    assert.equal(gw.state.version, r.body.version);
    const src = await call(`${admin}/api/config/source`, { token: ADMIN });
    assert.equal(src.body.history.at(-1).by, 'ops');
    assert.equal(src.body.fileMatchesRunning, true);
    assert.equal(src.body.canRollback, true);
  });

  it('answers 409 with the file text when the file changed since the draft began, and writes nothing', async () => {
    const start = await call(`${admin}/api/config/source`, { token: ADMIN });
    const theirs = start.body.text + '# an edit made in the file meanwhile\n';
    writeFileSync(file, theirs);
    const r = await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text: config(up.address, ROUTE_A), baseHash: start.body.hash } });
    assert.equal(r.status, 409);
    assert.equal(r.body.current.text, theirs);
    assert.equal(readFileSync(file, 'utf8'), theirs);
    assert.equal((await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text: config(up.address, ROUTE_A) } })).status, 400, 'baseHash is required');
  });

  it('a draft the reload refuses leaves the file and the running config as they were', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const taken = (blocker.address() as { port: number }).port;
    try {
      const start = await call(`${admin}/api/config/source`, { token: ADMIN });
      const version = gw.state.version;
      const text = start.body.text.replace('address: "127.0.0.1:0", protocol: http', `address: "127.0.0.1:${taken}", protocol: http`);
      assert.notEqual(text, start.body.text);
      const r = await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text, baseHash: start.body.hash } });
      assert.equal(r.status, 400);
      assert.match(r.body.problems.join('\n'), /EADDRINUSE|in use/);
      assert.equal(readFileSync(file, 'utf8'), start.body.text);
      assert.equal(gw.state.version, version);
      assert.equal((await request(`${pub}/b/x`)).statusCode, 200);
    } finally {
      blocker.close();
    }
  });

  it('rolls back to the version before the one serving', async () => {
    const start = await call(`${admin}/api/config/source`, { token: ADMIN });
    const r = await call(`${admin}/api/config/rollback`, { token: ADMIN, body: { baseHash: start.body.hash } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.doesNotMatch(readFileSync(file, 'utf8'), /name: b,/);
    assert.equal((await request(`${pub}/b/x`)).statusCode, 404);
    assert.match(gw.history.at(-1)!.by, /^ops \(rollback to version \d+\)$/);
  });

  it('says when the file cannot be written, and writes nothing', { skip: process.getuid?.() === 0 ? 'root writes read-only files' : false }, async () => {
    chmodSync(file, 0o444);
    try {
      const start = await call(`${admin}/api/config/source`, { token: ADMIN });
      assert.equal(start.body.writable, false);
      const r = await call(`${admin}/api/config/apply`, { token: ADMIN, body: { text: start.body.text, baseHash: start.body.hash } });
      assert.equal(r.status, 503);
    } finally {
      chmodSync(file, 0o644);
    }
  });

  it('reports live requests per second, flags and latency quantiles', async () => {
    await call(`${admin}/api/stats`, { token: READER }); // starts the sampler
    const t0 = Date.now();
    const end = Date.now() + 2500;
    while (Date.now() < end) {
      await (await request(`${pub}/a/x`)).body.text();
      await (await request(`${pub}/nowhere`)).body.text();
    }
    const s = await waitFor(async () => {
      const r = await call(`${admin}/api/stats?since=${t0}`, { token: READER });
      return r.body.points.some((p: any) => p.rps > 0) ? r.body : undefined;
    }, 5000);
    assert.equal(s.intervalMs, 1000);
    const busy = s.points.filter((p: any) => p.rps > 0);
    const p = busy.at(-1);
    assert.ok(p.byFlag.NR > 0, 'the 404s carry flag NR');
    assert.ok(p.errorRate > 0.3 && p.errorRate < 0.7, `half the requests were NR: ${p.errorRate}`);
    assert.ok(p.p50 !== null && p.p50 > 0 && p.p99 >= p.p50);
  });
});

describe('console admin API without a config file', () => {
  it('shows the running config as not editable and refuses apply with 503', async () => {
    const gw = await startGateway({ routes: [] });
    try {
      const admin = gw.adminUrl();
      const src = await call(`${admin}/api/config/source`);
      assert.equal(src.body.path, null);
      assert.equal(src.body.writable, false);
      assert.match(src.body.notWritable, /without a config file/);
      const r = await call(`${admin}/api/config/apply`, { body: { text: 'routes: []\n', baseHash: 'x' } });
      assert.equal(r.status, 503);
      assert.match(r.body.error, /without a config file/);
    } finally {
      await gw.stop(0);
    }
  });
});

describe('stats arithmetic', () => {
  const totals = (requests: number, cumulative: number[], count: number): Totals => ({ requests, errors: 0, byFlag: {}, bounds: [0.001, 0.01, 0.1], cumulative, count });

  it('interpolates quantiles inside buckets as histogram_quantile does', () => {
    const prev = totals(0, [0, 0, 0], 0);
    // 100 observations: 50 under 1 ms, 40 in (1, 10] ms, 10 in (10, 100] ms.
    const cur = totals(100, [50, 90, 100], 100);
    assert.equal(quantileMs(prev, cur, 0.5), 1);
    assert.ok(Math.abs(quantileMs(prev, cur, 0.7)! - 5.5) < 1e-9); // 20 of 40 into (1,10]
    assert.ok(Math.abs(quantileMs(prev, cur, 0.99)! - 91) < 1e-9); // 9 of 10 into (10,100]
    assert.equal(quantileMs(cur, cur, 0.5), null, 'no requests: no quantile');
    const p = pointBetween(prev, cur, 2, 123);
    assert.equal(p.rps, 50);
  });

  it("sums the workers' totals (a --workers primary's live figures)", () => {
    const w1: Totals = { requests: 7, errors: 0, byFlag: {}, bounds: [0.001, 0.01], cumulative: [4, 6], count: 7 };
    const w2: Totals = { requests: 5, errors: 5, byFlag: { UH: 3, NR: 2 }, bounds: [0.001, 0.01], cumulative: [1, 4], count: 5 };
    const t = sumTotals([w1, w2]);
    assert.equal(t.requests, 12);
    assert.equal(t.errors, 5);
    assert.deepEqual(t.byFlag, { UH: 3, NR: 2 });
    assert.deepEqual(t.bounds, [0.001, 0.01]);
    assert.deepEqual(t.cumulative, [5, 10]);
    assert.equal(t.count, 12);
    assert.deepEqual(sumTotals([]), { requests: 0, errors: 0, byFlag: {}, bounds: [], cumulative: [], count: 0 });
  });
});
