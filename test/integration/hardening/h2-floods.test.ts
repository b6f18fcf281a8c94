// HTTP/2 control-frame floods (CVE-2019-9512 ping flood, CVE-2019-9515
// settings flood, CVE-2019-9518 empty frames, CVE-2024-27316-style
// CONTINUATION flood) from a client that never reads what the gateway
// answers. nghttp2 (inside node:http2) ends such connections; the question
// here is whether it still does through the listener's frame tap
// (rejectMalformedFields, the default), which hands node:http2 a stream of
// its own instead of the socket: what nghttp2 thinks it has sent, the tap has
// only buffered. Each flood must end its connection within two seconds and
// leave the gateway serving; the same with the tap off. An idle connection
// that floods nothing, held open as long, is the control.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { FLAG, FRAME, frame, PREFACE } from './h2-wire.js';
import { h2status } from './h2-upstream.js';

/** HPACK: :method GET, :scheme https, :path / (static table), :authority "a" (literal, indexed name). */
const GET_BLOCK = Buffer.from([0x82, 0x87, 0x84, 0x41, 0x01, 0x61]);
const POST_BLOCK = Buffer.from([0x83, 0x87, 0x84, 0x41, 0x01, 0x61]);

interface Flood {
  name: string;
  /** Sent once after the preface. */
  opening?: Buffer;
  /** Sent over and over. */
  frame?: Buffer;
}

const FLOODS: Flood[] = [
  { name: 'PING frames', frame: frame(FRAME.PING, 0, 0, Buffer.alloc(8)) },
  { name: 'SETTINGS frames', frame: frame(FRAME.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100])) },
  { name: 'empty CONTINUATION frames after a HEADERS without END_HEADERS', opening: frame(FRAME.HEADERS, 0, 1, GET_BLOCK), frame: frame(FRAME.CONTINUATION, 0, 1) },
  { name: 'empty DATA frames on an open POST', opening: frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, POST_BLOCK), frame: frame(FRAME.DATA, 0, 1) },
];

const FLOOD_MS = 2_000;

/** Connects, never reads, sends the flood for up to FLOOD_MS; when the connection closed (ms after the flood began), or -1. */
async function flood(port: number, f: Flood): Promise<number> {
  const s = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.pause();
  let closedAt = -1;
  const t0 = performance.now();
  s.on('error', () => undefined);
  s.on('close', () => (closedAt = performance.now() - t0));
  s.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0), f.opening ?? Buffer.alloc(0)]));
  const batch = f.frame ? Buffer.concat(Array.from({ length: 1000 }, () => f.frame!)) : undefined;
  while (closedAt < 0 && performance.now() - t0 < FLOOD_MS) {
    if (batch === undefined || !s.write(batch)) await new Promise((r) => setTimeout(r, 20));
    else await new Promise((r) => setImmediate(r));
  }
  s.destroy();
  return closedAt;
}

for (const tap of [true, false]) {
  describe(`HTTP/2 floods from a client that never reads (rejectMalformedFields: ${tap})`, () => {
    let gw: Gateway;
    let port: number;
    before(async () => {
      gw = await startGateway({
        listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http', http2: { rejectMalformedFields: tap } }],
        routes: [{ name: 'all', directResponse: { status: 200, body: 'ok' } }],
      });
      port = Number(new URL(gw.listenerUrl('public')).port);
    });
    after(async () => {
      await gw?.stop();
    });

    for (const f of FLOODS) {
      it(`${f.name}: the connection is closed, the gateway keeps serving`, async (t) => {
        const closedAt = await flood(port, f);
        t.diagnostic(`closed ${closedAt.toFixed(0)} ms after the flood began`);
        assert.ok(closedAt >= 0, `still open after ${FLOOD_MS} ms of ${f.name}`);
        assert.equal(await h2status(gw.listenerUrl('public'), '/after'), 200);
      });
    }

    it('control: a connection that sends nothing more stays open as long', async () => {
      assert.equal(await flood(port, { name: 'nothing' }), -1);
    });
  });
}
