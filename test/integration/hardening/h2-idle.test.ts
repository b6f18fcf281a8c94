// Idle HTTP/2 sessions and sessions that clients abandon.
//
// A session with no open stream for keepAliveTimeoutMs gets GOAWAY(NO_ERROR)
// and its connection closes; a session with a stream under way is left alone
// until the stream ends. And a session whose client vanished must not stay
// in memory afterwards: node:http2's own session timer keeps a destroyed
// session reachable until it fires, so a gateway that used it held every
// abandoned session for the whole idle period (measured: 2,995 of 3,000
// vanished clients' sessions in a heap snapshot 8 s later). Here the heap is
// counted by a V8 heap snapshot, which only holds what is still reachable.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import type { Gateway } from '../../../src/gateway.js';
import { waitFor } from '../../helpers/gateway.js';
import { serverSocketsOn } from '../../helpers/raw-http.js';
import { CODE, dataFrame, FRAME, headersFrame, RawH2, requestFields } from './h2-wire.js';
import { gatewayFor, h2status, startRecordingUpstream, type RecordingUpstream } from './h2-upstream.js';

/** Objects in this process's heap (after the full GC a snapshot makes) whose constructor is `name`. */
function liveObjects(name: string): number {
  const file = path.join(os.tmpdir(), `meshgate-h2-idle-${process.pid}-${Date.now()}.heapsnapshot`);
  v8.writeHeapSnapshot(file);
  try {
    const snap = JSON.parse(readFileSync(file, 'utf8')) as {
      snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
      nodes: number[];
      strings: string[];
    };
    const fields = snap.snapshot.meta.node_fields;
    const width = fields.length;
    const typeAt = fields.indexOf('type');
    const nameAt = fields.indexOf('name');
    const objectType = snap.snapshot.meta.node_types[0].indexOf('object');
    let n = 0;
    for (let i = 0; i < snap.nodes.length; i += width) {
      if (snap.nodes[i + typeAt] === objectType && snap.strings[snap.nodes[i + nameAt]!] === name) n++;
    }
    return n;
  } finally {
    rmSync(file, { force: true });
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('HTTP/2 idle sessions', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let port: number;
  const idleMs = 400;
  before(async () => {
    up = await startRecordingUpstream();
    ({ gw, port } = await gatewayFor(up, { keepAliveTimeoutMs: idleMs }));
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('a session with no stream gets GOAWAY(NO_ERROR) after keepAliveTimeoutMs and its connection closes', async () => {
    const c = await RawH2.connect(port);
    const t0 = performance.now();
    const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY');
    assert.equal(g.code, CODE.NO_ERROR);
    const waited = g.at - t0;
    assert.ok(waited >= idleMs - 50 && waited < idleMs + 1_500, `GOAWAY after ${waited.toFixed(0)} ms, keepAliveTimeoutMs ${idleMs}`);
    await c.until(() => c.closed, 5_000, 'the connection to close');
  });

  it('a stream under way keeps its session open past the idle time; the timer starts again when the stream ends', async () => {
    const c = await RawH2.connect(port);
    // A POST whose body stays open for 3 idle periods.
    c.write(headersFrame(1, [...requestFields('/slow-body', 'POST'), ['content-type', 'text/plain']], false));
    c.write(dataFrame(1, 'part one, ', false));
    await sleep(idleMs * 3);
    assert.equal(c.goaway(), undefined, 'no GOAWAY while the request is under way');
    assert.equal(c.closed, false);
    c.write(dataFrame(1, 'part two', true));
    await c.until(() => c.frames.some((f) => f.type === FRAME.DATA && f.streamId === 1 && f.flags & 0x1), 5_000, 'the response');
    const ended = performance.now();
    assert.equal(c.status(1), 200);
    const g = await c.until(() => c.goaway(), 5_000, 'GOAWAY after the stream');
    assert.equal(g.code, CODE.NO_ERROR);
    assert.equal(g.lastStreamId, 1);
    const waited = g.at - ended;
    assert.ok(waited >= idleMs - 50, `GOAWAY ${waited.toFixed(0)} ms after the stream ended, keepAliveTimeoutMs ${idleMs}`);
    await c.until(() => c.closed, 5_000, 'the connection to close');
    const seen = up.seen.find((r) => r.url === '/slow-body');
    assert.equal(seen?.bytes, 'part one, part two'.length);
  });
});

describe('HTTP/2 sessions of clients that vanish', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    up = await startRecordingUpstream();
    // The default keepAliveTimeoutMs (65 s): longer than this test runs.
    ({ gw, port } = await gatewayFor(up));
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  /** A node:http2 client that starts a POST, then vanishes: its socket ends (FIN) or is reset (RST). */
  function vanish(i: number): Promise<void> {
    return new Promise((resolve) => {
      const client = http2.connect(`http://127.0.0.1:${port}`);
      client.on('error', () => undefined);
      const req = client.request({ ':method': 'POST', ':path': `/vanish/${i}` });
      req.on('error', () => undefined);
      req.write('x'.repeat(100 + (i % 7) * 500));
      setTimeout(() => {
        const socket = client.socket as unknown as net.Socket | undefined;
        if (i % 2 === 0) socket?.resetAndDestroy?.();
        client.destroy();
        resolve();
      }, i % 5);
    });
  }

  it('300 clients that vanish mid-request leave no session behind (heap snapshot)', async (t) => {
    const before = liveObjects('ServerHttp2Session');
    for (let i = 0; i < 300; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => vanish(i + k)));
    // Let the gateway see every close.
    await waitFor(() => serverSocketsOn(port) === 0, 5_000);
    await sleep(200);
    const left = liveObjects('ServerHttp2Session');
    t.diagnostic(`ServerHttp2Session objects: ${before} before, ${left} after 300 vanished clients`);
    assert.ok(left - before <= 5, `${left - before} sessions of vanished clients are still in memory`);
    // And the gateway still serves HTTP/2.
    assert.equal(await h2status(gw.listenerUrl('public'), '/after'), 200);
  });
});
