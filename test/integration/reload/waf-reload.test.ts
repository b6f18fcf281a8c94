// Reloads while the WAF inspects under load. Inspections are queued to the
// end of the event loop's turn (src/filters/waf/turn-batch.ts), so a reload can
// land between a request's read and its inspection. 20 reloads alternate two
// WAF configs (a different inbound threshold and exclusion: a new rule set
// and new filter instances each time) under a steady load of benign requests
// and attacks: every benign request is answered 200 by the upstream, every
// attack 403 with flag WAF, and none fails.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { freePort, sleep, startLoad, startSseUpstream, startTarget, type Target } from './harness.js';

const RELOADS = 20;

describe('reloads while the WAF inspects under load', () => {
  let upstream: Awaited<ReturnType<typeof startSseUpstream>>;
  let target: Target;
  let port: number;
  let adminPort: number;

  const config = (alt: boolean): string => `
listeners: [{ name: public, address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${adminPort}" }
log: { level: warn, access: false }
registries: [{ name: up, type: static, endpoints: ["${upstream.address}"] }]
filters:
  - { type: waf, mode: block, paranoia: 1, inboundThreshold: ${alt ? 6 : 5}, exclusions: [{ ids: [${alt ? 920350 : 920280}] }] }
routes:
  - { name: all, match: { path: { prefix: / } }, backends: [{ service: up.static }] }
`;

  before(async () => {
    upstream = await startSseUpstream(100, 'a');
    [port, adminPort] = [await freePort(), await freePort()];
    target = await startTarget(1, config(false));
  });
  after(async () => {
    upstream?.release();
    await target?.stop();
    await upstream?.close();
  });

  it('every benign request passes and every attack is blocked through 20 reloads', async () => {
    const benign = startLoad(`http://127.0.0.1:${port}/api/items?page=2&q=blue+running+shoes`, { rate: 300, check: (b) => (JSON.parse(b).instance === 'a' ? undefined : `not the upstream: ${b.slice(0, 80)}`) });
    const attacks = startLoad(`http://127.0.0.1:${port}/api/items?q=1%27%20union%20select%20password%20from%20users--`, { rate: 100 });
    await sleep(100);
    for (let i = 0; i < RELOADS; i++) {
      const r = await target.reload(config(i % 2 === 0));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      await sleep(30);
    }
    await sleep(100);
    const [ok, bad] = [await benign.stop(), await attacks.stop()];
    assert.deepEqual(ok.failures, [], `benign requests not answered 200: ${ok.failures.length} of ${ok.sent}`);
    assert.ok(ok.ok > 100, `only ${ok.ok} benign requests`);
    // startLoad counts anything but 200 as a failure: here each one must be the WAF's 403.
    assert.equal(bad.ok, 0, `${bad.ok} attacks passed`);
    assert.ok(bad.sent > 30, `only ${bad.sent} attacks sent`);
    assert.deepEqual([...new Set(bad.failures)], ['403 WAF'], `attack answers: ${JSON.stringify(bad.statuses)}`);
    assert.equal(await target.reloads('applied'), RELOADS);
    console.log(`# ${ok.ok}/${ok.sent} benign answered 200, ${bad.failures.length}/${bad.sent} attacks 403 WAF, over ${RELOADS} reloads`);
  });
});
