// `meshgate start --workers 2`: the admin listens before the workers are
// forked, so whoever sees the listener answer can reach the admin at once
// (the quick start's `curl :8001/...` right after `:8080` answered), and its
// /readyz says 503 until every worker has started (until then the start can
// still fail).
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { spawnConfig, spawnGateway, waitFor, type SpawnedGateway } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

/** The status of a GET, or the error code when nothing answered. */
async function get(url: string): Promise<number | string> {
  try {
    const r = await request(url);
    await r.body.text();
    return r.statusCode;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
}

describe('meshgate start --workers 2: the admin before the listeners', () => {
  let upstream: TestUpstream;
  let dir: string;
  let gw: SpawnedGateway | undefined;

  before(async () => {
    upstream = await startUpstream('u');
    dir = await mkdtemp(join(tmpdir(), 'meshgate-workers-admin-first-'));
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('answers on the admin port as soon as the listener answers, and says not ready until the workers have started', async () => {
    const { file, port, adminPort } = await spawnConfig(
      dir,
      `registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
routes: [{ name: api, match: { path: { prefix: / } }, backends: [{ service: up.static }] }]
`,
    );
    gw = await spawnGateway(file, adminPort, 2, { waitReady: false });
    // Every admin answer before the first worker serves, and the first listener answer.
    const readyz: (number | string)[] = [];
    let adminAfterListener: number | string = 'not asked';
    await waitFor(
      async () => {
        if (gw!.child.exitCode !== null) throw new Error(`gateway exited: ${gw!.stderr()}`);
        const listener = await get(`http://127.0.0.1:${port}/`);
        if (listener === 200) {
          adminAfterListener = await get(`http://127.0.0.1:${adminPort}/healthz`);
          return true;
        }
        readyz.push(await get(`http://127.0.0.1:${adminPort}/readyz`));
        return false;
      },
      60_000,
      5,
    );
    assert.equal(adminAfterListener, 200, 'the admin answered right after the listener did');
    // Before a worker served, an admin that answered said 503.
    assert.ok(!readyz.includes(200), `readyz before the listener served: ${[...new Set(readyz)].join(', ')}`);
    assert.ok(readyz.includes(503), `the admin answered before the workers served: ${[...new Set(readyz)].join(', ')}`);
    await waitFor(async () => (await get(`http://127.0.0.1:${adminPort}/readyz`)) === 200, 30_000, 50);
  });
});
