// A config generation is a transaction, with 1 worker and with 2.
// Refused: a listener moved to a port something else holds, a new https
// listener whose certificate file is missing. The old listeners keep serving
// under load, /api/reload answers the error, and /api/config, /readyz, the
// reloads metric and the log say what serves. Once the port is free the same
// move applies.
// Applied under a steady keep-alive load: listener settings (same address)
// apply in place, so the listening socket and every open connection stay; 20
// reloads changing keepAliveTimeoutMs fail no request and cut no SSE stream,
// and the serving processes' file descriptors come back to where they were;
// 20 reloads moving a static service between two instances answer every
// request (no 503 in between).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { waitFor } from '../../helpers/gateway.js';
import { accepts, connect, exchange, freePort, occupy, openSse, sleep, startLoad, startSseUpstream, startTarget, type Target } from './harness.js';

const RELOADS = 20;
const RATE = 300;
const STREAMS = 40;

for (const workers of [1, 2] as const) {
  describe(`reload transactions, ${workers} worker${workers > 1 ? 's' : ''}`, () => {
    let upstream: Awaited<ReturnType<typeof startSseUpstream>>;
    let other: Awaited<ReturnType<typeof startSseUpstream>>;
    let target: Target;
    /** Where the listener is now (the move test changes it). */
    let port: number;
    let portA: number;
    let portB: number;
    let adminPort: number;

    const config = (
      o: { port?: number; extraListener?: string; keepAliveTimeoutMs?: number; trustForwarded?: boolean; endpoints?: string[] } = {},
    ): string => `
listeners:
  - name: public
    address: "127.0.0.1:${o.port ?? port}"
    keepAliveTimeoutMs: ${o.keepAliveTimeoutMs ?? 5000}
    trustForwarded: ${o.trustForwarded ?? false}
${o.extraListener ?? ''}
admin: { address: "127.0.0.1:${adminPort}" }
log: { level: info, access: false }
registries: [{ name: up, type: static, endpoints: ${JSON.stringify(o.endpoints ?? [upstream.address])} }]
routes:
  - { name: all, match: { path: { prefix: / } }, backends: [{ service: up.static }] }
`;

    before(async () => {
      upstream = await startSseUpstream(100, 'a');
      other = await startSseUpstream(100, 'b');
      [portA, portB, adminPort] = [await freePort(), await freePort(), await freePort()];
      port = portA;
      target = await startTarget(workers, config());
    });
    after(async () => {
      upstream?.release();
      await target?.stop();
      await upstream?.close();
      await other?.close();
    });

    it('moving the listener to a busy port is refused naming it; the old port serves every request under load', async () => {
      const blocker = await occupy(portB);
      try {
        const before = (await target.get('/api/config')).body;
        const [applied, rejected] = [await target.reloads('applied'), await target.reloads('rejected')];
        const started = Date.now();
        const load = startLoad(`http://127.0.0.1:${portA}/x`, { rate: RATE });
        await sleep(200);
        const logFrom = target.logs().length;
        const r = await target.reload(config({ port: portB }));
        await sleep(400);
        const result = await load.stop();

        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.ok, false);
        assert.match(r.body.error, new RegExp(`listeners\\[0\\]: cannot listen on 127\\.0\\.0\\.1:${portB} \\(listener "public"\\): address in use`));
        assert.deepEqual(result.failures, [], `failed requests: ${result.failures.length} of ${result.sent}`);
        const ms = Date.now() - started;
        assert.ok(result.ok > (RATE * ms) / 1000 / 2, `only ${result.ok} requests in ${ms} ms`);
        assert.equal(await accepts(portA), true);

        const now = (await target.get('/api/config')).body;
        assert.equal(now.version, before.version, '/api/config shows the version that serves');
        assert.equal(now.config.listeners[0].address, `127.0.0.1:${portA}`);
        assert.equal(now.lastReload.ok, false);
        assert.match(now.lastReload.error, new RegExp(`127\\.0\\.0\\.1:${portB}`));
        assert.equal((await target.get('/readyz')).status, 200, 'the old config serves, so the gateway is ready');
        assert.equal(await target.reloads('rejected'), rejected + 1);
        assert.equal(await target.reloads('applied'), applied);
        const logged = target.logs().slice(logFrom);
        const rejectedLine = logged.split('\n').find((l) => l.includes('config rejected: the running config keeps serving'));
        assert.match(rejectedLine ?? '', new RegExp(`127\\.0\\.0\\.1:${portB}`), 'the log says why, naming the address');
        assert.doesNotMatch(logged, /config applied/);
      } finally {
        await blocker.close();
      }
    });

    it('a new https listener whose certificate file is missing is refused; nothing listens on its address', async () => {
      const portC = await freePort();
      const version = (await target.get('/api/config')).body.version;
      const r = await target.reload(
        config({
          extraListener: `  - { name: secure, address: "127.0.0.1:${portC}", protocol: https, tls: { certificates: [{ hosts: [a.test], cert: /nonexistent/a.crt, key: /nonexistent/a.key }] } }`,
        }),
      );
      assert.equal(r.status, 400);
      assert.match(r.body.error, /listeners\[1\]\.tls\.certificates\[0\]: ENOENT/);
      assert.equal(await accepts(portC), false);
      assert.equal((await target.get('/api/config')).body.version, version);
      const res = await request(`http://127.0.0.1:${portA}/after`);
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    });

    it('once the port is free the same move applies: the new address serves and the old one stops', async () => {
      const before = (await target.get('/api/config')).body.version;
      const applied = await target.reloads('applied');
      const r = await target.reload(config({ port: portB }));
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.ok, true);
      const res = await request(`http://127.0.0.1:${portB}/moved`);
      assert.equal(res.statusCode, 200);
      await res.body.dump();
      await waitFor(async () => !(await accepts(portA)), 5_000);
      const now = (await target.get('/api/config')).body;
      assert.ok(now.version > before);
      assert.equal(now.config.listeners[0].address, `127.0.0.1:${portB}`);
      assert.equal(await target.reloads('applied'), applied + 1);
      port = portB;
    });

    it(`${RELOADS} reloads of keepAliveTimeoutMs at ${RATE} req/s: zero failed requests, zero SSE streams cut, fds back to baseline`, async () => {
      const url = `http://127.0.0.1:${port}/load`;
      // Warm up the same way without reloads (client pool, SSE streams, the gateway's upstream
      // pool), then take the baseline once the clients are gone.
      const warmStreams = await Promise.all(Array.from({ length: STREAMS }, () => openSse(`http://127.0.0.1:${port}/sse`)));
      const warmLoad = startLoad(url, { rate: RATE });
      await sleep(300);
      const warm = await warmLoad.stop();
      upstream.release();
      await Promise.all(warmStreams.map((s) => s.done));
      assert.deepEqual(warm.failures, []);
      await sleep(200);
      const baseline = await target.fds();
      const pidsBefore = await target.pids();

      const streams = await Promise.all(Array.from({ length: STREAMS }, () => openSse(`http://127.0.0.1:${port}/sse`)));
      const load = startLoad(url, { rate: RATE });
      await sleep(100);
      const eventsBefore = streams.map((s) => s.events());
      const t0 = Date.now();
      for (let i = 0; i < RELOADS; i++) {
        const r = await target.reload(config({ keepAliveTimeoutMs: i % 2 ? 5000 : 6000 }));
        assert.equal(r.status, 200, JSON.stringify(r.body));
        await sleep(20);
      }
      const reloadMs = Date.now() - t0;
      await sleep(150);
      const result = await load.stop();
      // Every stream kept receiving events through the reloads, then ends cleanly when the upstream ends it.
      streams.forEach((s, i) => assert.ok(s.events() > eventsBefore[i]! + 5, `stream ${i} stalled at ${s.events()} events`));
      upstream.release();
      const ends = await Promise.all(streams.map((s) => s.done));
      const cut = ends.filter((e) => !e.clean);

      assert.deepEqual(result.failures, [], `failed requests: ${result.failures.length} of ${result.sent}`);
      assert.ok(result.ok > (RATE * reloadMs) / 1000 / 2, `only ${result.ok} requests in ${reloadMs} ms`);
      assert.equal(cut.length, 0, `SSE streams cut: ${JSON.stringify(cut.slice(0, 3))}`);
      assert.deepEqual(await target.pids(), pidsBefore, 'the same worker processes serve');

      let last = 0;
      await waitFor(async () => (last = await target.fds()) <= baseline, 5_000, 100).catch(() => undefined);
      assert.ok(last <= baseline, `fds: baseline ${baseline}, after ${last}`);
      console.log(`# ${workers} worker(s): ${result.ok}/${result.sent} ok over ${RELOADS} reloads in ${reloadMs} ms; ${STREAMS} SSE streams, ${cut.length} cut; fds ${baseline} -> ${last}`);
    });

    it('an open connection stays open and its next request gets trustForwarded; a new connection gets the new keep-alive', async () => {
      const old = await connect(port);
      try {
        const first = await exchange(old, '/echo', { 'x-forwarded-for': '203.0.113.9' });
        assert.equal(first.status, 200);
        assert.equal(first.headers['keep-alive'], 'timeout=5');
        assert.doesNotMatch(JSON.parse(first.body).headers['x-forwarded-for'], /203\.0\.113\.9/);

        const r = await target.reload(config({ keepAliveTimeoutMs: 9000, trustForwarded: true }));
        assert.equal(r.status, 200, JSON.stringify(r.body));

        const again = await exchange(old, '/echo', { 'x-forwarded-for': '203.0.113.9' });
        assert.equal(again.status, 200);
        assert.match(JSON.parse(again.body).headers['x-forwarded-for'], /^203\.0\.113\.9, /, 'trustForwarded applies to the open connection');
        assert.equal(again.headers['keep-alive'], 'timeout=5', 'the open connection keeps the keep-alive it announced');

        const fresh = await connect(port);
        try {
          const n = await exchange(fresh, '/echo');
          assert.equal(n.headers['keep-alive'], 'timeout=9');
        } finally {
          fresh.destroy();
        }
      } finally {
        old.destroy();
        await target.reload(config());
      }
    });

    it(`${RELOADS} reloads moving a static service between two instances at ${RATE} req/s: every request answered, none 503`, async () => {
      const seen: Record<string, number> = {};
      const load = startLoad(`http://127.0.0.1:${port}/moving`, {
        rate: RATE,
        check: (body) => {
          const instance = JSON.parse(body).instance as string;
          seen[instance] = (seen[instance] ?? 0) + 1;
          return undefined;
        },
      });
      await sleep(100);
      const t0 = Date.now();
      for (let i = 0; i < RELOADS; i++) {
        const r = await target.reload(config({ endpoints: [i % 2 ? upstream.address : other.address] }));
        assert.equal(r.status, 200, JSON.stringify(r.body));
        await sleep(20);
      }
      const reloadMs = Date.now() - t0;
      await sleep(100);
      const result = await load.stop();
      assert.deepEqual(result.failures, [], `failed requests: ${result.failures.length} of ${result.sent} (${JSON.stringify(result.statuses)})`);
      assert.equal(result.statuses['503'] ?? 0, 0);
      assert.ok((seen.a ?? 0) > 20 && (seen.b ?? 0) > 20, `both instances served: ${JSON.stringify(seen)}`);
      console.log(`# ${workers} worker(s): ${result.ok}/${result.sent} ok over ${RELOADS} endpoint reloads in ${reloadMs} ms (a ${seen.a}, b ${seen.b})`);
      await target.reload(config());
    });
  });
}
