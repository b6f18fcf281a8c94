// A registry that cannot be reached from the start is said, with the reason,
// in the log and in /api/registries within seconds, not only when a session
// timeout runs out; the gateway serves its other routes meanwhile.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { Gateway } from '../../../src/gateway.js';
import { testConfig, waitFor } from '../../helpers/gateway.js';
import { freePort, startUpstream } from '../../helpers/upstream.js';

test('ZooKeeper unreachable at start: reported down with the reason within seconds, logged once', async () => {
  const closed = await freePort();
  const up = await startUpstream('static');
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
  const gw = await Gateway.start({
    config: testConfig({
      registries: [
        { name: 'zk', type: 'zookeeper', servers: [`127.0.0.1:${closed}`] },
        { name: 'local', type: 'static', endpoints: [up.address] },
      ],
      routes: [{ name: 'local', match: { path: { prefix: '/' } }, backends: [{ service: 'local.static' }] }],
    }),
    log,
  });
  try {
    const t0 = Date.now();
    const zk = await waitFor(async () => {
      const regs = (await (await fetch(`${gw.adminUrl()}/api/registries`)).json()) as Array<{ name: string; up: boolean; lastError?: string }>;
      const r = regs.find((x) => x.name === 'zk');
      return r?.lastError ? r : undefined;
    }, 8_000, 100);
    assert.ok(Date.now() - t0 < 6_000, `reported after ${Date.now() - t0} ms`);
    assert.equal(zk!.up, false);
    assert.match(zk!.lastError!, new RegExp(`not connected to ZooKeeper \\(127\\.0\\.0\\.1:${closed}\\) after 3 s`));
    const warned = lines.filter((l) => l.includes('"level":40') && l.includes('not connected to ZooKeeper'));
    assert.equal(warned.length, 1, lines.join(''));
    // The rest of the gateway serves meanwhile.
    assert.equal((await fetch(`${gw.listenerUrl('public')}/x`)).status, 200);
  } finally {
    await gw.stop();
    await up.close();
  }
});
