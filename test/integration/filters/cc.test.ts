// CC protection through a real gateway: refusals on the wire (429, flag CC,
// Retry-After), refused requests never reaching the upstream, blocks that end,
// spoofed X-Forwarded-For not minting identities, and a memory-store limit
// holding for the whole gateway with `--workers 2`.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { spawnConfig, spawnGateway, startGateway, waitFor, type SpawnedGateway } from '../../helpers/gateway.js';
import { freePort, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

async function get(base: string, path: string, headers: Record<string, string> = {}, fresh = false): Promise<Answer> {
  const r = await request(`${base}${path}`, { headers, reset: fresh });
  await r.body.text();
  return { status: r.statusCode, headers: r.headers };
}

describe('cc filter in a gateway', () => {
  let upstream: TestUpstream;
  let gw: Gateway;
  let base: string;
  let proxied: string;

  before(async () => {
    upstream = await startUpstream('u');
    const p2 = await freePort();
    gw = await startGateway({
      listeners: [
        { name: 'public', address: '127.0.0.1:0', protocol: 'http' },
        { name: 'behind-lb', address: `127.0.0.1:${p2}`, protocol: 'http', trustForwarded: true, trustedProxies: ['127.0.0.0/8'] },
      ],
      registries: [{ name: 'up', type: 'static', endpoints: [upstream.address] }],
      routes: [
        { name: 'limited', match: { path: { prefix: '/limited' } }, backends: [{ service: 'up.static' }], filters: [{ type: 'cc', rules: [{ key: 'ip', qpm: 5 }] }] },
        { name: 'blocking', match: { path: { prefix: '/blocking' } }, backends: [{ service: 'up.static' }], filters: [{ type: 'cc', headers: true, rules: [{ key: 'ip', qps: 3, blockSeconds: 2 }] }] },
        { name: 'by-key', match: { path: { prefix: '/by-key' } }, backends: [{ service: 'up.static' }], filters: [{ type: 'cc', rules: [{ key: { header: 'x-api-key' }, values: ['*'], qpm: 2 }] }] },
      ],
    } as never);
    base = gw.listenerUrl('public');
    proxied = gw.listenerUrl('behind-lb');
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  it('refuses past the limit with 429, x-meshgate-flag CC and Retry-After; refused requests never reach the upstream', async () => {
    const before = upstream.seen.filter((s) => s.url.startsWith('/limited')).length;
    const answers: Answer[] = [];
    for (let i = 0; i < 9; i++) answers.push(await get(base, `/limited/${i}`));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200, 200, 429, 429, 429, 429],
    );
    const refused = answers[5]!;
    assert.equal(refused.headers['x-meshgate-flag'], 'CC');
    const retry = Number(refused.headers['retry-after']);
    assert.ok(retry >= 1 && retry <= 66, `retry-after ${retry}`);
    assert.equal(upstream.seen.filter((s) => s.url.startsWith('/limited')).length - before, 5);
  });

  it('a spoofed X-Forwarded-For does not make new identities on a listener that does not trust it', async () => {
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await get(base, '/by-key', { 'x-api-key': 'same', 'x-forwarded-for': `203.0.113.${i}` })).status);
    assert.deepEqual(statuses, [200, 200, 429, 429, 429, 429]);
  });

  it('behind a trusted proxy each forwarded client is its own identity', async () => {
    const s = async (ip: string) => (await get(proxied, '/limited/p', { 'x-forwarded-for': ip })).status;
    for (let i = 0; i < 5; i++) assert.equal(await s('198.51.100.7'), 200);
    assert.equal(await s('198.51.100.7'), 429);
    assert.equal(await s('198.51.100.8'), 200);
  });

  it('a block lasts blockSeconds, refuses even slow requests, then the client is served again', async () => {
    const a: Answer[] = [];
    for (let i = 0; i < 4; i++) a.push(await get(base, '/blocking'));
    assert.deepEqual(
      a.map((x) => x.status),
      [200, 200, 200, 429],
    );
    assert.equal(a[0]!.headers['x-ratelimit-limit'], '3');
    assert.equal(a[0]!.headers['x-ratelimit-remaining'], '2');
    assert.equal(a[3]!.headers['retry-after'], '2');
    const blockedAt = Date.now();
    // A second later, well under 3/s: still refused.
    await new Promise((r) => setTimeout(r, 1100));
    const slow = await get(base, '/blocking');
    assert.equal(slow.status, 429);
    assert.equal(slow.headers['retry-after'], '1');
    await waitFor(async () => (await get(base, '/blocking')).status === 200, 5000, 100);
    assert.ok(Date.now() - blockedAt >= 2000, 'not before the block ends');
  });
});

describe('cc and flow_control with --workers 2 and the memory store: one limit for the whole gateway', () => {
  let upstream: TestUpstream;
  let dir: string;
  let gw: SpawnedGateway | undefined;
  let port: number;

  before(async () => {
    upstream = await startUpstream('u');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-cc-workers-'));
    const { file, port: p, adminPort } = await spawnConfig(
      dir,
      `registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
routes:
  - name: flow
    match: { path: { prefix: /flow } }
    backends: [{ service: up.static }]
    filters:
      - { type: flow_control, rules: [{ count: 10, intervalSec: 60 }] }
  - name: limited
    match: { path: { prefix: / } }
    backends: [{ service: up.static }]
    filters:
      - { type: cc, rules: [{ key: ip, qpm: 10 }] }
`,
    );
    port = p;
    gw = await spawnGateway(file, adminPort);
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('admits the limit once across both workers (new connection per request)', async () => {
    const statuses = await Promise.all(Array.from({ length: 40 }, async () => (await get(`http://127.0.0.1:${port}`, '/x', {}, true)).status));
    assert.equal(statuses.filter((s) => s === 200).length, 10, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 429).length, 30);
  });

  it('flow_control: a rate rule admits its count once across both workers', async () => {
    const statuses = await Promise.all(Array.from({ length: 40 }, async () => (await get(`http://127.0.0.1:${port}`, '/flow/x', {}, true)).status));
    assert.equal(statuses.filter((s) => s === 200).length, 10, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 429).length, 30);
  });
});
