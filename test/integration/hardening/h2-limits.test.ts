// Per-listener caps: HTTP/2 concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS)
// and open connections (HTTP/1.1 and HTTP/2 together).
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput } from '../../../src/config/schema.js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { FRAME, headersFrame, PREFACE, RawH2, requestFields } from './h2-wire.js';
import { gatewayFor, startRecordingUpstream, type RecordingUpstream } from './h2-upstream.js';


function h2request(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':path': path, ...headers });
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.resume();
    req.on('end', () => resolve(status));
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/1.1 keep-alive connection by hand: the status of one request, and the socket left open. */
function h1open(port: number, path: string): Promise<{ socket: net.Socket; status: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nhost: gw.test\r\n\r\n`));
    let data = '';
    socket.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m && data.includes('\r\n\r\n')) resolve({ socket, status: Number(m[1]) });
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed before a response (${JSON.stringify(data)})`)));
  });
}

/** A connection the server closes at once: resolves with what it sent (nothing) once closed. */
function closedAtOnce(port: number, payload: string | Buffer): Promise<{ closedMs: number; received: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let received = 0;
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ closedMs: performance.now() - t0, received }));
    setTimeout(() => socket.destroy(), 3_000).unref();
  });
}


describe('listeners[].http2.maxConcurrentStreams', () => {
  let up: RecordingUpstream;
  before(async () => {
    up = await startRecordingUpstream();
  });
  after(async () => {
    await up?.close();
  });

  it('announces 100 by default and the configured value otherwise; a client never has more upstream at once', async () => {
    const def = await gatewayFor(up);
    const capped = await gatewayFor(up, { http2: { maxConcurrentStreams: 3 } });
    try {
      const s1 = http2.connect(def.url);
      await new Promise((r) => s1.once('remoteSettings', r));
      assert.equal(s1.remoteSettings.maxConcurrentStreams, 100);
      s1.close();

      const s = http2.connect(capped.url);
      await new Promise((r) => s.once('remoteSettings', r));
      assert.equal(s.remoteSettings.maxConcurrentStreams, 3);
      up.seen.length = 0;
      up.maxActive = 0;
      // node's client queues what the server's setting does not let it open.
      const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => h2request(s, `/slow/${i}`, { 'x-delay': '100' })));
      assert.deepEqual(statuses, Array(10).fill(200));
      assert.equal(up.seen.length, 10);
      assert.equal(up.maxActive, 3);
      s.close();
    } finally {
      await def.gw.stop();
      await capped.gw.stop();
    }
  });

  it('does not serve a stream a raw client opens over the limit (node:http2 ends that connection)', async () => {
    const capped = await gatewayFor(up, { http2: { maxConcurrentStreams: 3 } });
    try {
      up.seen.length = 0;
      up.maxActive = 0;
      const c = await RawH2.connect(capped.port);
      await c.until(() => c.frames.some((f) => f.type === FRAME.SETTINGS && f.flags & 1), 5_000, 'SETTINGS ACK');
      // Three requests held by the upstream, then a fourth.
      for (const id of [1, 3, 5]) c.write(headersFrame(id, [...requestFields(`/hold/${id}`), ['x-delay', '300']], true));
      await waitFor(() => up.seen.length === 3);
      c.write(headersFrame(7, requestFields('/fourth'), true));
      // nghttp2 treats it as a connection error: the streams of this connection are reset and it closes.
      const o = await c.outcome(7);
      assert.equal(o.status, undefined, 'the fourth stream got no response');
      await c.until(() => c.closed, 5_000, 'the connection to close');
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(up.seen.map((r) => r.url).sort(), ['/hold/1', '/hold/3', '/hold/5']);
      assert.equal(up.maxActive, 3);
      // Other clients are served.
      const s = http2.connect(capped.url);
      assert.equal(await h2request(s, '/after'), 200);
      s.close();
    } finally {
      await capped.gw.stop();
    }
  });
});

describe('listeners[].maxConnections', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let url: string;
  let port: number;
  before(async () => {
    up = await startRecordingUpstream();
    ({ gw, url, port } = await gatewayFor(up, { maxConnections: 2 }));
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('closes HTTP/1.1 and HTTP/2 connections over the cap at once, and accepts again when one goes', async () => {
    // One HTTP/1.1 and one HTTP/2 connection, both kept open.
    const a = await h1open(port, '/h1-a');
    assert.equal(a.status, 200);
    const b = http2.connect(url);
    b.on('error', () => undefined);
    assert.equal(await h2request(b, '/h2-b'), 200);
    const before = up.seen.length;

    // A third connection of either protocol is closed without an answer.
    const h1 = await closedAtOnce(port, 'GET /h1-c HTTP/1.1\r\nhost: gw.test\r\n\r\n');
    assert.equal(h1.received, 0);
    assert.ok(h1.closedMs < 1_000, `closed after ${h1.closedMs.toFixed(0)} ms`);
    const h2 = await closedAtOnce(port, PREFACE);
    assert.equal(h2.received, 0);
    const c = http2.connect(url);
    const failed = await new Promise<boolean>((resolve) => {
      c.on('error', () => resolve(true));
      c.on('close', () => resolve(true));
      c.request({ ':path': '/h2-c' }).on('error', () => undefined).on('response', () => resolve(false));
    });
    assert.equal(failed, true);
    assert.equal(up.seen.length, before, 'nothing over the cap reached the upstream');

    // The two open connections still work.
    assert.equal(await h2request(b, '/h2-b-again'), 200);
    a.socket.write('GET /h1-a-again HTTP/1.1\r\nhost: gw.test\r\n\r\n');
    await waitFor(() => up.seen.some((r) => r.url === '/h1-a-again'));

    // One goes away: a new connection is accepted.
    a.socket.destroy();
    await waitFor(async () => {
      const s = http2.connect(url);
      s.on('error', () => undefined);
      try {
        return (await h2request(s, '/h2-d')) === 200;
      } catch {
        return false;
      } finally {
        s.destroy();
      }
    });
    b.close();
  });

  it('applies the default cap (10000) when the setting is absent', async () => {
    const other = await gatewayFor(up);
    try {
      assert.equal(other.gw.listener('public')!.server.maxConnections, 10_000);
      // and it serves
      await new Promise<void>((resolve, reject) => {
        http.get(`${other.url}/default`, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode)))));
        }).on('error', reject);
      });
    } finally {
      await other.gw.stop();
    }
  });
});
