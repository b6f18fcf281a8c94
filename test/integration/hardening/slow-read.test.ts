// Slow read: clients that stop reading what the gateway sends them. Without
// a send timeout such a connection stays open for as long as the client
// likes (measured before listeners[].sendTimeoutMs: still open after 20 s
// with keepAliveTimeoutMs 1 s, HTTP/1.1 and HTTP/2 alike), holding the
// kernel's send buffer and what the gateway queued behind it, and a client
// can do it to every connection the listener allows. Here each must be
// closed about sendTimeoutMs after its output stopped moving, while a client
// that reads slowly but steadily keeps its connection to the end.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { serverSocketOf } from '../../helpers/raw-http.js';
import { waitUntil } from '../../helpers/wait.js';
import { makeTestCerts, type TestCerts } from '../../helpers/tls-certs.js';
import { CODE, FRAME, frame, PREFACE, RawH2 } from './h2-wire.js';
import { h2status } from './h2-upstream.js';

const SEND_TIMEOUT_MS = 2_000;
const BIG = 'x'.repeat(256 * 1024);
/** HPACK: :method GET, :scheme http, :path /big (literal, indexed name), :authority "a". */
const GET_BIG = Buffer.from([0x82, 0x86, 0x44, 0x04, ...Buffer.from('/big'), 0x41, 0x01, 0x61]);

/**
 * Pauses a connected client socket and returns when the gateway's end of it
 * closed (-1: not yet). A paused socket does not see its connection close (it
 * reads nothing, the reset included), so the gateway's end is watched; this
 * process hosts the gateway.
 */
async function pauseAndWatch(port: number, s: net.Socket): Promise<() => number> {
  s.pause();
  s.on('error', () => undefined);
  const clientPort = s.localPort!;
  await waitUntil('the gateway to accept the connection', () => serverSocketOf(port, clientPort) !== undefined, 2_000);
  let closedAt = -1;
  serverSocketOf(port, clientPort)!.once('close', () => (closedAt = performance.now()));
  return () => closedAt;
}

async function connect(port: number): Promise<{ s: net.Socket; closedAt: () => number }> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return { s, closedAt: await pauseAndWatch(port, s) };
}

/** Waits for the gateway's end to close: the connection must be gone 15 s after its client stopped reading. */
async function closedWithin15s(t: { diagnostic(m: string): void }, closedAt: () => number, t0: number): Promise<void> {
  await waitUntil('the gateway to close a connection whose client stopped reading', () => closedAt() >= 0, 15_000);
  t.diagnostic(`closed ${(closedAt() - t0).toFixed(0)} ms after the requests`);
}

/** DATA bytes received on a stream. */
function dataOn(c: RawH2, id: number): number {
  let n = 0;
  for (const f of c.frames) if (f.type === FRAME.DATA && f.streamId === id) n += f.payload.length;
  return n;
}

function ended(c: RawH2, id: number): boolean {
  return c.frames.some((f) => f.streamId === id && (f.type === FRAME.DATA || f.type === FRAME.HEADERS) && (f.flags & 0x1) !== 0);
}

// HTTP/2 is written through the listener's frame tap by default, straight to the socket without it: both are run.
for (const tap of [true, false]) {
  describe(`slow read (sendTimeoutMs ${SEND_TIMEOUT_MS}, http2.rejectMalformedFields ${tap})`, () => {
    let gw: Gateway;
    let port: number;
    before(async () => {
      gw = await startGateway({
        listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http', sendTimeoutMs: SEND_TIMEOUT_MS, http2: { rejectMalformedFields: tap } }],
        routes: [{ name: 'all', directResponse: { status: 200, body: BIG } }],
      });
      port = Number(new URL(gw.listenerUrl('public')).port);
    });
    after(async () => {
      await gw?.stop();
    });

    it('HTTP/1.1: pipelined requests for a 256 KiB answer, never read: the connection is closed', async (t) => {
      const { s, closedAt } = await connect(port);
      // More answers than the kernel buffers on both sides hold (several MB on loopback).
      for (let i = 0; i < 64; i++) s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      await closedWithin15s(t, closedAt, performance.now());
      s.destroy();
    });

    it('HTTP/2: a large window granted, then never read: the connection is closed', async (t) => {
      const { s, closedAt } = await connect(port);
      // SETTINGS_INITIAL_WINDOW_SIZE 2^31-1 and a connection window as large: flow control never holds the answers back.
      const settings = Buffer.from([0, 4, 0x7f, 0xff, 0xff, 0xff]);
      const update = Buffer.alloc(4);
      update.writeUInt32BE(0x7fffffff - 65_535);
      const requests: Buffer[] = [];
      for (let id = 1; id < 2 * 64; id += 2) requests.push(frame(FRAME.HEADERS, 0x5 /* END_STREAM | END_HEADERS */, id, GET_BIG));
      s.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, settings), frame(FRAME.WINDOW_UPDATE, 0, 0, update), ...requests]));
      await closedWithin15s(t, closedAt, performance.now());
      s.destroy();
      assert.equal(await h2status(gw.listenerUrl('public'), '/after'), 200);
    });

    it('HTTP/2: a stream whose window the client never opens past 64 KiB is reset with CANCEL; the connection stays', async (t) => {
      const c = await RawH2.connect(port);
      try {
        c.write(frame(FRAME.HEADERS, 0x5, 1, GET_BIG));
        await c.until(() => dataOn(c, 1) >= 65_535, 5_000, 'the first window of the answer');
        const full = performance.now();
        const rst = await c.until(() => c.rstCode(1) !== undefined && c.frames.find((f) => f.type === FRAME.RST_STREAM && f.streamId === 1), 5_000, 'RST_STREAM');
        const waited = rst.at - full;
        t.diagnostic(`RST_STREAM ${c.rstCode(1)} ${waited.toFixed(0)} ms after the window ran out`);
        assert.equal(c.rstCode(1), CODE.CANCEL);
        assert.ok(waited >= SEND_TIMEOUT_MS - 100 && waited < SEND_TIMEOUT_MS + 1_500, `reset ${waited.toFixed(0)} ms after the window ran out`);
        assert.equal(c.closed, false);
        assert.equal(c.goaway(), undefined);
      } finally {
        c.close();
      }
    });

    it('HTTP/2: a client that opens the window slowly but steadily (16 KiB every 200 ms, the answer takes longer than the send timeout) gets the whole answer', async (t) => {
      const c = await RawH2.connect(port);
      try {
        c.write(frame(FRAME.HEADERS, 0x5, 1, GET_BIG));
        const t0 = performance.now();
        const inc = Buffer.alloc(4);
        inc.writeUInt32BE(16 * 1024);
        while (!c.closed && c.rstCode(1) === undefined && !ended(c, 1) && performance.now() - t0 < 20_000) {
          await new Promise((r) => setTimeout(r, 200));
          c.write(frame(FRAME.WINDOW_UPDATE, 0, 0, inc), frame(FRAME.WINDOW_UPDATE, 0, 1, inc));
        }
        t.diagnostic(`${dataOn(c, 1)} bytes in ${(performance.now() - t0).toFixed(0)} ms`);
        assert.equal(c.rstCode(1), undefined);
        assert.ok(ended(c, 1), 'the answer ended');
        assert.equal(dataOn(c, 1), BIG.length);
        assert.ok(performance.now() - t0 > SEND_TIMEOUT_MS, 'the answer took longer than the send timeout');
      } finally {
        c.close();
      }
    });

    it('a client that reads slowly but steadily (64 KiB every 25 ms) gets every byte of 64 answers', async (t) => {
      const { s, closedAt } = await connect(port);
      for (let i = 0; i < 64; i++) s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n');
      let got = 0;
      let gotAtClose = -1;
      const t0 = performance.now();
      // 64 answers of 256 KiB at about 2.6 MB/s: three times the send timeout. The kernel wakes a
      // writer once a third of its send buffer (up to 4 MB here) is free, so progress comes in steps.
      while (got < 64 * BIG.length && performance.now() - t0 < 30_000) {
        await new Promise((r) => setTimeout(r, 25));
        let chunk: Buffer | null;
        let took = 0;
        while (took < 64 * 1024 && (chunk = s.read(Math.min(64 * 1024 - took, s.readableLength || 1)) as Buffer | null) !== null) took += chunk.length;
        got += took;
        if (closedAt() >= 0 && gotAtClose < 0) gotAtClose = got;
      }
      t.diagnostic(`read ${(got / 1024).toFixed(0)} KiB in ${(performance.now() - t0).toFixed(0)} ms; gateway side closed: ${closedAt() >= 0 ? `${(closedAt() - t0).toFixed(0)} ms, ${gotAtClose} bytes read by then` : 'no'}`);
      assert.equal(closedAt(), -1, 'a reading client was cut off');
      assert.ok(got >= 64 * BIG.length, `read ${got} bytes`);
      s.destroy();
    });
  });
}

describe(`slow read over TLS (sendTimeoutMs ${SEND_TIMEOUT_MS})`, () => {
  let certs: TestCerts;
  let gw: Gateway;
  let port: number;
  before(async () => {
    certs = makeTestCerts();
    gw = await startGateway({
      listeners: [{ name: 'secure', address: '127.0.0.1:0', protocol: 'https', sendTimeoutMs: SEND_TIMEOUT_MS, tls: { certificates: [{ hosts: ['localhost'], cert: certs.server.cert, key: certs.server.key }] } }],
      routes: [{ name: 'all', directResponse: { status: 200, body: BIG } }],
    });
    port = Number(new URL(gw.listenerUrl('secure')).port);
  });
  after(async () => {
    await gw?.stop();
    certs?.cleanup();
  });

  it('HTTP/1.1 over TLS: pipelined requests, never read: the connection is closed', async (t) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: certs.ca.certPem, ALPNProtocols: ['http/1.1'] });
    await new Promise((resolve, reject) => {
      s.once('secureConnect', resolve);
      s.once('error', reject);
    });
    const closedAt = await pauseAndWatch(port, s);
    for (let i = 0; i < 64; i++) s.write('GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await closedWithin15s(t, closedAt, performance.now());
    s.destroy();
  });
});
