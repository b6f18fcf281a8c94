// `meshgate start --workers 2` with flow_control counters shared through a
// real Redis: the limit holds once for both worker processes together.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { spawnConfig, spawnGateway, type SpawnedGateway } from '../../helpers/gateway.js';
import { startRedis, type RedisServer } from '../../helpers/redis.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

describe('two worker processes sharing flow counters through Redis', () => {
  let redis: RedisServer;
  let upstream: TestUpstream;
  let dir: string;
  let gw: SpawnedGateway | undefined;
  let port: number;

  before(async () => {
    redis = await startRedis();
    upstream = await startUpstream('u');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-'));
    const { file, port: p, adminPort } = await spawnConfig(
      dir,
      `store: { type: redis, redis: { url: "${redis.url}", prefix: "workers-test:" } }
registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
routes:
  - name: limited
    match: { path: { prefix: / } }
    backends: [{ service: up.static }]
    filters:
      - { type: flow_control, shared: true, rules: [{ count: 10, intervalSec: 10 }] }
`,
    );
    port = p;
    gw = await spawnGateway(file, adminPort);
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    await redis?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('admits count requests in a window across both workers', async () => {
    // Land the burst inside one 10 s window.
    const left = 10_000 - (Date.now() % 10_000);
    if (left < 6_000) await new Promise((r) => setTimeout(r, left + 10));
    const statuses = await Promise.all(
      Array.from({ length: 30 }, async () => {
        // A new connection per request, so the kernel can hand requests to either worker.
        const r = await request(`http://127.0.0.1:${port}/x`, { reset: true });
        await r.body.text();
        return r.statusCode;
      }),
    );
    assert.equal(statuses.filter((s) => s === 200).length, 10, `statuses: ${statuses}`);
    assert.equal(statuses.filter((s) => s === 429).length, 20);
  });
});
