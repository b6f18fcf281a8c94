// HTTP/2 rapid reset (CVE-2023-44487): a client that opens streams and resets
// them gets GOAWAY ENHANCE_YOUR_CALM and its connection closed once it is over
// the listener's reset budget, and streams reset before their request was
// dispatched never reach an upstream. Measured numbers are printed as test
// diagnostics (`npm test -- h2-rapid-reset`).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput } from '../../../src/config/schema.js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { CODE, FRAME, headersFrame, RawH2, requestFields, rstFrame } from './h2-wire.js';
import { gatewayFor, h2status, startRecordingUpstream, type RecordingUpstream } from './h2-upstream.js';


/** Connect and wait for the server's SETTINGS, so that timings start on an open session. */
async function open(port: number): Promise<RawH2> {
  const c = await RawH2.connect(port);
  await c.until(() => c.frames.some((f) => f.type === FRAME.SETTINGS), 5_000, 'server SETTINGS');
  return c;
}


/** N pairs of HEADERS (a GET with END_STREAM) and RST_STREAM(CANCEL), in one write. */
function burst(n: number): Buffer {
  const frames: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const id = 1 + 2 * i;
    frames.push(headersFrame(id, requestFields(`/r/${i}`), true), rstFrame(id, CODE.CANCEL));
  }
  return Buffer.concat(frames);
}

describe('HTTP/2 rapid reset', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    up = await startRecordingUpstream();
    ({ gw, port } = await gatewayFor(up));
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  for (const n of [1_000, 5_000]) {
    it(`${n.toLocaleString('en')} HEADERS + RST_STREAM pairs on one h2c connection: GOAWAY ENHANCE_YOUR_CALM within a second, none reach the upstream`, async (t) => {
      up.seen.length = 0;
      const c = await open(port);
      const t0 = performance.now();
      c.write(burst(n));
      const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY');
      await c.until(() => c.closed, 5_000, 'the connection to close');
      const ms = g.at - t0;
      // Anything dispatched before the GOAWAY has had time to reach the upstream.
      await new Promise((r) => setTimeout(r, 200));
      t.diagnostic(`${n} pairs: GOAWAY code ${g.code} after ${ms.toFixed(0)} ms (last stream ${g.lastStreamId}), connection closed after ${(c.closedAt - t0).toFixed(0)} ms, upstream requests ${up.seen.length}`);
      assert.equal(g.code, CODE.ENHANCE_YOUR_CALM);
      assert.ok(ms < 1_000, `GOAWAY after ${ms.toFixed(0)} ms`);
      assert.ok(up.seen.length <= 100, `${up.seen.length} requests reached the upstream`);
      // Other clients are served.
      assert.equal(await h2status(gw.listenerUrl('public'), '/after-burst'), 200);
    });
  }

  it('the same pairs, one per write: GOAWAY within a second, at most 100 reach the upstream', async (t) => {
    up.seen.length = 0;
    const c = await open(port);
    const t0 = performance.now();
    let sent = 0;
    for (let i = 0; i < 1_000 && !c.closed && !c.goaway(); i++) {
      const id = 1 + 2 * i;
      c.write(headersFrame(id, requestFields(`/one/${i}`), true));
      await new Promise((r) => setImmediate(r));
      c.write(rstFrame(id, CODE.CANCEL));
      sent++;
    }
    const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY');
    await new Promise((r) => setTimeout(r, 200));
    t.diagnostic(`paced pairs: ${sent} sent, GOAWAY code ${g.code} after ${(g.at - t0).toFixed(0)} ms, upstream requests ${up.seen.length}`);
    assert.equal(g.code, CODE.ENHANCE_YOUR_CALM);
    assert.ok(g.at - t0 < 1_000);
    assert.ok(up.seen.length <= 100, `${up.seen.length} requests reached the upstream`);
  });

  it('requests reset after they reached the upstream: GOAWAY once over the budget (100, refilled at 10 a second)', async (t) => {
    up.seen.length = 0;
    const c = await open(port);
    const t0 = performance.now();
    let resets = 0;
    for (let i = 0; i < 300 && !c.goaway() && !c.closed; i++) {
      const id = 1 + 2 * i;
      c.write(headersFrame(id, requestFields(`/hang/${i}`), true));
      await waitFor(() => up.seen.length === i + 1 || c.goaway() || c.closed, 5_000, 1);
      c.write(rstFrame(id, CODE.CANCEL));
      resets++;
    }
    const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY');
    t.diagnostic(`slow resets: GOAWAY code ${g.code} after ${resets} resets, ${(g.at - t0).toFixed(0)} ms, upstream requests ${up.seen.length}`);
    assert.equal(g.code, CODE.ENHANCE_YOUR_CALM);
    // 100 at once, plus what the window gave back while the test ran (100 per 10 s), plus the one that
    // tripped it, plus one the client may have sent before the GOAWAY reached it.
    const allowance = 100 + Math.ceil((g.at - t0) / 100) + 2;
    assert.ok(resets >= 101 && resets <= allowance, `${resets} resets before GOAWAY (allowance ${allowance})`);
    assert.ok(up.seen.length <= resets, `${up.seen.length} requests reached the upstream`);
    // The upstream requests of the reset streams were given up, not left hanging.
    await waitFor(() => up.active === 0);
  });

  it('streams reset in the read that opened them never reach the upstream, under the budget too', async () => {
    up.seen.length = 0;
    const c = await open(port);
    for (let i = 0; i < 50; i++) {
      const id = 1 + 2 * i;
      // A POST whose body is still to come, reset at once.
      c.write(Buffer.concat([headersFrame(id, requestFields(`/early/${i}`, 'POST'), false), rstFrame(id, CODE.CANCEL)]));
    }
    c.write(headersFrame(101, requestFields('/after-resets'), true));
    assert.deepEqual(await c.outcome(101), { status: 200 });
    assert.equal(c.goaway(), undefined);
    assert.deepEqual(
      up.seen.map((r) => r.url),
      ['/after-resets'],
    );
    c.close();
  });

  it('a client that cancels a share of its requests keeps its connection', async () => {
    up.seen.length = 0;
    const session = http2.connect(gw.listenerUrl('public'));
    session.on('error', () => undefined);
    try {
      let ok = 0;
      for (let round = 0; round < 150; round++) {
        // Two complete requests, then one cancelled while the upstream holds it.
        for (let k = 0; k < 2; k++) {
          const status = await new Promise<number>((resolve, reject) => {
            const req = session.request({ ':path': `/ok/${round}/${k}` });
            req.on('response', (h) => resolve(Number(h[':status'])));
            req.resume();
            req.on('error', reject);
          });
          if (status === 200) ok++;
        }
        const req = session.request({ ':path': `/slow/${round}`, 'x-delay': '1000' });
        req.on('error', () => undefined);
        const n = up.seen.length;
        await waitFor(() => up.seen.length > n, 5_000, 1);
        req.close(http2.constants.NGHTTP2_CANCEL);
      }
      assert.equal(ok, 300);
      assert.equal(session.closed || session.destroyed, false);
      const last = await new Promise<number>((resolve) => {
        const req = session.request({ ':path': '/last' });
        req.on('response', (h) => resolve(Number(h[':status'])));
        req.resume();
      });
      assert.equal(last, 200);
    } finally {
      session.close();
    }
  });
});

describe('HTTP/2 reset budget settings', () => {
  let up: RecordingUpstream;
  before(async () => {
    up = await startRecordingUpstream();
  });
  after(async () => {
    await up?.close();
  });

  it('listeners[].http2.maxResetStreams: 10 resets pass, the 11th gets GOAWAY', async () => {
    const { gw, port } = await gatewayFor(up, { http2: { maxResetStreams: 10, resetWindowMs: 60_000 } });
    try {
      const c = await open(port);
      let resets = 0;
      for (let i = 0; i < 30 && !c.goaway(); i++) {
        const id = 1 + 2 * i;
        c.write(headersFrame(id, requestFields(`/r/${i}`), true), rstFrame(id));
        resets++;
        // Give the server the time to answer with a GOAWAY before the next pair.
        await new Promise((r) => setTimeout(r, 20));
      }
      const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY');
      assert.equal(g.code, CODE.ENHANCE_YOUR_CALM);
      assert.equal(resets, 11);
    } finally {
      await gw.stop();
    }
  });

  it('without the frame tap (rejectMalformedFields: false) the budget and the early-reset rule hold as well', async () => {
    up.seen.length = 0;
    const { gw, port } = await gatewayFor(up, { http2: { rejectMalformedFields: false } });
    try {
      const early = await open(port);
      for (let i = 0; i < 50; i++) early.write(Buffer.concat([headersFrame(1 + 2 * i, requestFields(`/early/${i}`, 'POST'), false), rstFrame(1 + 2 * i)]));
      early.write(headersFrame(101, requestFields('/after-resets'), true));
      assert.deepEqual(await early.outcome(101), { status: 200 });
      assert.deepEqual(
        up.seen.map((r) => r.url),
        ['/after-resets'],
      );
      early.close();

      up.seen.length = 0;
      const c = await open(port);
      const t0 = performance.now();
      c.write(burst(1_000));
      const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY');
      assert.equal(g.code, CODE.ENHANCE_YOUR_CALM);
      assert.ok(g.at - t0 < 1_000);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(up.seen.length <= 100, `${up.seen.length} requests reached the upstream`);
    } finally {
      await gw.stop();
    }
  });
});
