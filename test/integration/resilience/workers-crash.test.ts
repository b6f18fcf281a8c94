// `meshgate start --workers 2`: a worker killed while the primary is sending
// it a reload. The write to the dead worker fails (EPIPE); the primary must
// live on, restart the worker and keep serving.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { adminReady, spawnConfig, spawnGateway, waitFor, type SpawnedGateway } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

/** The primary's worker processes (Linux: its children). */
function workersOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('a worker killed during reloads', () => {
  let upstream: TestUpstream;
  let dir: string;
  let gw: SpawnedGateway | undefined;
  let port: number;
  let adminPort: number;

  before(async () => {
    upstream = await startUpstream('u');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-crash-'));
    let file: string;
    ({ file, port, adminPort } = await spawnConfig(
      dir,
      `registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
routes: [{ name: api, match: { path: { prefix: / } }, backends: [{ service: up.static }] }]
`,
    ));
    gw = await spawnGateway(file, adminPort);
    await waitFor(() => workersOf(gw!.child.pid!).length === 2, 60_000, 200);
  });

  after(async () => {
    await gw?.stop();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the primary lives through 15 worker deaths in the middle of reloads, restarts the workers and serves', async () => {
    const { child } = gw!;
    const primary = child.pid!;
    let kills = 0;
    const deadline = Date.now() + 90_000;
    while (kills < 15 && Date.now() < deadline) {
      const [w] = workersOf(primary);
      if (w === undefined) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // Reloads on their way to the worker as it dies: the primary's writes to it fail.
      for (let i = 0; i < 3; i++) process.kill(primary, 'SIGHUP');
      process.kill(w, 'SIGKILL');
      kills++;
      for (let i = 0; i < 3; i++) process.kill(primary, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(child.exitCode, null, `the primary exited after ${kills} worker deaths: ${gw!.stderr().slice(-600)}`);
    }
    assert.ok(kills >= 15, `${kills} workers killed`);
    await waitFor(async () => (await adminReady(adminPort)) && workersOf(primary).length === 2, 30_000, 200);
    for (let i = 0; i < 10; i++) {
      const r = await request(`http://127.0.0.1:${port}/x`);
      await r.body.text();
      assert.equal(r.statusCode, 200);
    }
    assert.equal(child.exitCode, null);
    assert.doesNotMatch(gw!.stderr(), /EPIPE/);
  });
});
