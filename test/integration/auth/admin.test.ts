// Admin API protection: named tokens with roles, Basic users with hashed
// passwords, /healthz and /readyz always open, openPaths, read-only mode,
// changes logged with the name of who made them, secrets redacted.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { request } from 'undici';
import { Gateway } from '../../../src/gateway.js';
import { hashPassword, parseStoredPassword, PasswordVerifier } from '../../../src/filters/auth/password.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startGateway } from '../../helpers/gateway.js';

const OPS = 'ops-token-0123456789abcdef';
const GRAFANA = 'grafana-token-0123456789';

async function admin(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const r = await request(`${base}${path}`, { method: method as 'GET', headers });
  return { status: r.statusCode, body: await r.body.text(), headers: r.headers };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

describe('admin API protection', () => {
  let gw: Gateway;
  let base: string;
  let dir: string;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshgate-admin-'));
    const yaml = `
listeners: [{ name: public, address: "127.0.0.1:0" }]
admin:
  address: "127.0.0.1:0"
  auth:
    tokens:
      - { name: ops, token: "${OPS}", role: admin }
      - { name: grafana, token: "${GRAFANA}", role: read }
    basic:
      - { name: carol, password: "${await hashPassword('carol-pass', { N: 1024 })}", role: admin }
    openPaths: [/metrics]
consumers:
  - { name: m, credentials: [{ type: key_auth, key: consumer-secret-key }] }
routes: [{ name: r, match: { path: { prefix: / } }, directResponse: { status: 200, body: ok } }]
`;
    writeFileSync(join(dir, 'meshgate.yaml'), yaml);
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    });
    gw = await Gateway.start({ config: yaml, configPath: join(dir, 'meshgate.yaml'), log: pino({ level: 'info' }, sink), accessLog: false });
    base = gw.adminUrl();
  });

  after(async () => {
    await gw?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('/healthz and /readyz answer without credentials (kubelet probes)', async () => {
    assert.equal((await admin(base, '/healthz')).status, 200);
    assert.equal((await admin(base, '/readyz')).status, 200);
  });

  it('everything else needs credentials: 401 with a challenge, and a wrong token is the same', async () => {
    for (const h of [{}, bearer('ops-token-0123456789abcdeX'), { authorization: 'Basic Y2Fyb2w6bm9wZQ==' }]) {
      const a = await admin(base, '/api/routes', h);
      assert.equal(a.status, 401, a.body);
      assert.match(String(a.headers['www-authenticate']), /Bearer realm="meshgate-admin"/);
    }
    assert.equal((await admin(base, '/api/reload', {}, 'POST')).status, 401);
  });

  it('openPaths are served to anyone for reading', async () => {
    assert.equal((await admin(base, '/metrics')).status, 200);
  });

  it('a read token reads but cannot reload', async () => {
    assert.equal((await admin(base, '/api/routes', bearer(GRAFANA))).status, 200);
    const a = await admin(base, '/api/reload', bearer(GRAFANA), 'POST');
    assert.equal(a.status, 403, a.body);
  });

  it('an admin token and an admin Basic user reload; the log names who did it', async () => {
    const a = await admin(base, '/api/reload', bearer(OPS), 'POST');
    assert.equal(a.status, 200, a.body);
    const b = await admin(base, '/api/reload', { authorization: `Basic ${Buffer.from('carol:carol-pass').toString('base64')}` }, 'POST');
    assert.equal(b.status, 200, b.body);
    const who = lines.filter((l) => l.msg === 'admin API: reload requested').map((l) => l.admin);
    assert.deepEqual(who, ['ops', 'carol']);
    assert.ok(!JSON.stringify(lines).includes(OPS) && !JSON.stringify(lines).includes('carol-pass'), 'no credential in the log');
  });

  it('/api/config shows no token, password hash or consumer key', async () => {
    const a = await admin(base, '/api/config', bearer(OPS));
    assert.equal(a.status, 200);
    for (const secret of [OPS, GRAFANA, 'consumer-secret-key', 'scrypt$']) assert.ok(!a.body.includes(secret), secret);
  });
});

describe('meshgate hash-password', () => {
  it('reads the password on stdin and prints a hash that verifies it (and only it)', async () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'hash-password'], { cwd: root, input: 's3cret pass\n', encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const line = r.stdout.trim();
    assert.ok(!line.includes('s3cret'));
    const v = new PasswordVerifier();
    assert.equal(await v.verify(parseStoredPassword(line), 's3cret pass'), true);
    assert.equal(await v.verify(parseStoredPassword(line), 's3cret pass\n'), false);
    const empty = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'hash-password'], { cwd: root, input: '', encoding: 'utf8' });
    assert.equal(empty.status, 2);
  });
});

describe('admin API read-only', () => {
  it('refuses changes whoever asks, with or without auth; reads still work', async () => {
    const open = await startGateway({ admin: { address: '127.0.0.1:0', readOnly: true } });
    const guarded = await startGateway({ admin: { address: '127.0.0.1:0', readOnly: true, auth: { tokens: [{ name: 'ops', token: OPS }] } } });
    try {
      assert.equal((await admin(open.adminUrl(), '/api/reload', {}, 'POST')).status, 403);
      assert.equal((await admin(open.adminUrl(), '/api/routes')).status, 200);
      assert.equal((await admin(guarded.adminUrl(), '/api/reload', bearer(OPS), 'POST')).status, 403);
      assert.equal((await admin(guarded.adminUrl(), '/api/reload', {}, 'POST')).status, 401);
    } finally {
      await open.stop();
      await guarded.stop();
    }
  });

  it('a Basic user whose password is in clear refuses the config, naming the key', async () => {
    await assert.rejects(startGateway({ admin: { address: '127.0.0.1:0', auth: { basic: [{ name: 'x', password: 'plain' }] } } }), (e: Error & { problems?: string[] }) => {
      assert.match([e.message, ...(e.problems ?? [])].join('\n'), /admin\.auth\.basic\.0\.password|admin\.auth\.basic\[0\]\.password/);
      return true;
    });
  });
});
