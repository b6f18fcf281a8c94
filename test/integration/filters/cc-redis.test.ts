// CC limits shared by a fleet through the real Redis: two gateway processes
// admit the limit once between them; Redis killed mid-test gives each rule's
// stated behaviour (fail-open to a local limit, or fail-closed) at once, and
// sharing resumes when Redis returns; a wrong password stops the gateway at
// start with the reason instead of slowing every request.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { LocalLimiter, StoreLimiter, type RateOp, type RateSpec } from '../../../src/filters/cc/limiter.js';
import { RedisStore } from '../../../src/store/redis.js';
import { spawnConfig, spawnGateway, startGateway, waitFor, type SpawnedGateway } from '../../helpers/gateway.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { seeded } from '../../helpers/random.js';

interface Proc {
  gw: SpawnedGateway;
  port: number;
  admin: number;
}

async function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; flag: unknown; ms: number }> {
  const t0 = performance.now();
  const r = await request(`http://127.0.0.1:${port}${path}`, { headers });
  await r.body.text();
  return { status: r.statusCode, flag: r.headers['x-meshgate-flag'], ms: performance.now() - t0 };
}

describe('cc shared through Redis by two gateway processes', () => {
  let redis: RedisServer;
  let upstream: TestUpstream;
  let dir: string;
  const procs: Proc[] = [];

  const startProc = async (): Promise<Proc> => {
    const { file, port, adminPort } = await spawnConfig(
      dir,
      `store: { type: redis, redis: { url: "${redis.url}", prefix: "cc-test:" } }
registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
routes:
  - name: open
    match: { path: { prefix: /open } }
    backends: [{ service: up.static }]
    filters:
      - type: cc
        storeTimeoutMs: 2000
        rules: [{ name: per-client, key: { header: x-client }, qpm: 20, shared: true, onStoreError: allow, fallback: { qpm: 3 } }]
  - name: closed
    match: { path: { prefix: /closed } }
    backends: [{ service: up.static }]
    filters:
      - { type: cc, rules: [{ key: { header: x-client }, qpm: 1000, shared: true, onStoreError: deny }] }
`,
    );
    const gw = await spawnGateway(file, adminPort, 1);
    const p: Proc = { gw, port, admin: adminPort };
    procs.push(p);
    return p;
  };

  before(async () => {
    redis = await startRedis();
    upstream = await startUpstream('u');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-cc-redis-'));
    await Promise.all([startProc(), startProc()]);
  });

  after(async () => {
    for (const p of procs) await p.gw.stop();
    await upstream?.close();
    await redis?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Sends n requests for one identity, alternating between the two gateways, concurrently. */
  const burst = async (path: string, client: string, n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => get(procs[i % 2]!.port, path, { 'x-client': client })));

  it('the two gateways together admit the limit once', async () => {
    // Each gateway's first check loads the script into Redis; a cold start on a busy machine is not what this measures.
    for (const p of procs) await get(p.port, '/open', { 'x-client': 'warm-up' });
    const answers = await burst('/open', 'fleet-1', 60);
    assert.equal(answers.filter((a) => a.status === 200).length, 20);
    assert.ok(answers.filter((a) => a.status === 429).every((a) => a.flag === 'CC'));
    // Each gateway served some of them (it is the pair that is limited, not each).
    const perGw = [0, 1].map((g) => answers.filter((a, i) => i % 2 === g && a.status === 200).length);
    assert.ok(perGw[0]! > 0 && perGw[1]! > 0, `${perGw}`);
  });

  it('Redis killed: fail-open rules count locally with their fallback limit, fail-closed rules refuse, both at once; sharing resumes when Redis returns', async () => {
    await redis.stop();
    // Open: each gateway on its own, with the fallback (3/min) per gateway.
    const open = [];
    for (let i = 0; i < 8; i++) open.push(await get(procs[0]!.port, '/open', { 'x-client': 'outage' }));
    assert.deepEqual(
      open.map((a) => a.status),
      [200, 200, 200, 429, 429, 429, 429, 429],
    );
    const closed = await get(procs[1]!.port, '/closed', { 'x-client': 'outage' });
    assert.equal(closed.status, 429);
    assert.equal(closed.flag, 'CC');
    // At once: well under the store timeout (2 s here, so a busy test machine does not trip it), never a wait on Redis
    // per request. (A Redis that hangs instead of closing is cut at the timeout: test/unit/filters/cc-limiter.test.ts.)
    const slowest = Math.max(...open.map((a) => a.ms), closed.ms);
    assert.ok(slowest < 1000, `slowest answer ${slowest.toFixed(0)} ms`);

    // The failures are counted where operators look.
    const m = await request(`http://127.0.0.1:${procs[0]!.admin}/metrics`);
    const text = await m.body.text();
    const errors = /meshgate_cc_store_errors_total\{[^}]*rule="per-client"[^}]*\} (\d+)/.exec(text);
    assert.ok(errors && Number(errors[1]) > 0, 'meshgate_cc_store_errors_total counts the failures');

    await redis.start();
    // Back: the fail-closed rule serves again once both gateways reconnected ...
    await waitFor(async () => (await get(procs[0]!.port, '/closed', { 'x-client': `probe-${Date.now()}` })).status === 200, 20_000, 200);
    await waitFor(async () => (await get(procs[1]!.port, '/closed', { 'x-client': `probe-${Date.now()}` })).status === 200, 20_000, 200);
    // ... and the shared count holds across both again.
    const answers = await burst('/open', 'after-outage', 60);
    assert.equal(answers.filter((a) => a.status === 200).length, 20);
  });
});

describe('cc with a wrong Redis password', () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedis();
    const admin = new Redis(redis.url);
    await admin.config('SET', 'requirepass', 'right-secret');
    admin.disconnect();
  });
  after(async () => {
    await redis?.destroy();
  });

  it('is an error at start naming the setting, not a slow path on every request', async () => {
    const url = redis.url.replace('redis://', 'redis://:wrong-secret@');
    const t0 = Date.now();
    await assert.rejects(
      startGateway({
        store: { type: 'redis', redis: { url } },
        routes: [{ name: 'r', directResponse: { status: 200 }, filters: [{ type: 'cc', rules: [{ key: 'ip', qps: 10, shared: true }] }] }],
      } as never),
      /store\.redis\.url: Redis refused the credentials: WRONGPASS/,
    );
    assert.ok(Date.now() - t0 < 5000);
  });
});

describe('the Redis limiter script', () => {
  let redis: RedisServer;
  let store: RedisStore;
  before(async () => {
    redis = await startRedis();
    store = new RedisStore({ url: redis.url, prefix: 'lua:' });
    await store.ready();
  });
  after(async () => {
    await store?.close();
    await redis?.destroy();
  });

  it('decides as the local limiter does, op by op (same limits, same sequence)', async () => {
    const spec: RateSpec = { limits: [{ periodMs: 3_600_000, limit: 40 }, { periodMs: 86_400_000, limit: 55 }], blockMs: 0 };
    const shared = new StoreLimiter(store, 'equiv', spec, { timeoutMs: 2000, onStoreError: 'deny' });
    const local = new LocalLimiter(spec);
    const rnd = seeded(11);
    const ops: Array<[RateOp, number]> = [];
    for (let i = 0; i < 120; i++) {
      const k = rnd(35);
      ops.push(k % 5 === 0 ? ['check', 0] : k % 7 === 0 ? ['charge', rnd(4)] : ['hit', 1 + rnd(2)]);
    }
    for (const [i, [op, cost]] of ops.entries()) {
      const a = await (op === 'hit' ? shared.hit('id', cost) : op === 'check' ? shared.check('id') : shared.charge('id', cost));
      const b = op === 'hit' ? local.hit('id', cost) : op === 'check' ? local.check('id') : local.charge('id', cost);
      assert.deepEqual([a.allowed, a.blocked, a.limit, a.remaining, a.broken], [b.allowed, b.blocked, b.limit, b.remaining, b.broken], `op ${i}: ${op} ${cost}`);
    }
    assert.equal((shared.describe() as { storeFailures: number }).storeFailures, 0);
  });

  it('blocks: the breaking check starts it, refusals during it neither extend it nor count', async () => {
    const spec: RateSpec = { limits: [{ periodMs: 1000, limit: 3 }], blockMs: 1500 };
    const l = new StoreLimiter(store, 'block', spec, { timeoutMs: 2000, onStoreError: 'deny' });
    const first = [];
    for (let i = 0; i < 3; i++) first.push((await l.hit('b')).allowed);
    assert.deepEqual(first, [true, true, true]);
    const breaking = await l.hit('b');
    assert.deepEqual([breaking.allowed, breaking.blockStarted, breaking.retryAfterMs], [false, true, 1500]);
    await new Promise((r) => setTimeout(r, 500));
    const during = await l.hit('b');
    assert.equal(during.blocked, true);
    assert.equal(during.blockStarted, false);
    assert.ok(during.retryAfterMs <= 1000 && during.retryAfterMs > 700, `${during.retryAfterMs}`);
    await new Promise((r) => setTimeout(r, during.retryAfterMs + 20));
    const back = [];
    for (let i = 0; i < 4; i++) back.push((await l.hit('b')).allowed);
    assert.deepEqual(back, [true, true, true, false]);
  });

  it('one key per rule and identity, hash-tagged by rule (Redis Cluster slot), with an expiry', async () => {
    const l = new StoreLimiter(store, 'tagged', { limits: [{ periodMs: 60_000, limit: 5 }], blockMs: 0 }, { timeoutMs: 2000, onStoreError: 'deny' });
    await l.hit('203.0.113.5');
    const c = new Redis(redis.url);
    try {
      const keys = await c.keys('lua:cc:{tagged}:*');
      assert.deepEqual(keys, ['lua:cc:{tagged}:203.0.113.5']);
      const ttl = await c.pttl(keys[0]!);
      assert.ok(ttl > 60_000 && ttl <= 60_000 + 6_000 + 1_000, `${ttl}`);
    } finally {
      c.disconnect();
    }
  });
});
