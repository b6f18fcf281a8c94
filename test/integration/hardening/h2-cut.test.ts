// HTTP/2 clients that vanish at any byte: the bytes a real node:http2 client
// sends for a GET and a POST with a body (preface, SETTINGS, HEADERS, DATA,
// WINDOW_UPDATE, ...) are recorded once, then replayed to the gateway cut
// after every byte offset, by FIN and (at sampled offsets) by RST. After each
// cut the gateway must answer a normal HTTP/2 request, no error may escape to
// the process, and at the end no client connection may be left open.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startCountingUpstream, type CountingUpstream } from '../../helpers/counting-upstream.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { serverSocketsOn, trackEscapes } from '../../helpers/raw-http.js';

const escapes = trackEscapes();
after(() => escapes.dispose());

/** What a node:http2 client writes for one request, recorded through a relay to the gateway. */
async function record(port: number, method: string, body: Buffer | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const relay = net.createServer((c) => {
    const up = net.connect(port, '127.0.0.1');
    c.on('data', (d: Buffer) => {
      chunks.push(d);
      up.write(d);
    });
    up.pipe(c);
    c.on('error', () => undefined);
    up.on('error', () => undefined);
    c.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
  const rport = (relay.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${rport}`);
  client.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    const req = client.request({ ':method': method, ':path': '/cut', ...(body ? { 'content-length': String(body.length) } : {}) });
    req.on('response', () => undefined);
    req.resume();
    req.on('end', () => resolve());
    req.on('error', reject);
    req.end(body);
  });
  client.close();
  await new Promise<void>((r) => relay.close(() => r()));
  return Buffer.concat(chunks);
}

function h2get(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(`http://127.0.0.1:${port}`);
    client.on('error', reject);
    const req = client.request({ ':path': '/after' });
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => {
        client.close();
        resolve(Number(h[':status']));
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Send the first `k` bytes, then FIN (or RST), and wait until the gateway closed its side or 300 ms passed. */
function cut(port: number, bytes: Buffer, k: number, rst: boolean): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(bytes.subarray(0, k), () => {
        if (rst) s.resetAndDestroy();
        else s.end();
      });
    });
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    const t = setTimeout(() => {
      s.destroy();
      resolve();
    }, 300);
    s.on('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

describe('HTTP/2 clients that vanish at every byte', () => {
  let up: CountingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    up = await startCountingUpstream();
    gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, backends: [{ service: 'up.static' }] }],
    } as never);
    port = Number(new URL(gw.listenerUrl()).port);
  });
  after(async () => {
    await gw.stop();
    await up.close();
  });

  for (const [name, method, body] of [
    ['GET', 'GET', undefined],
    ['POST with a 2 KiB body', 'POST', Buffer.alloc(2048, 120)],
  ] as const) {
    it(`${name}: cut after every byte by FIN, every 7th by RST; the gateway keeps serving`, async () => {
      const bytes = await record(port, method, body);
      assert.ok(bytes.length > 24, 'recorded the preface and frames');
      const mark = escapes.errors.length;
      let cuts = 0;
      for (let k = 0; k < bytes.length; k += k < 200 ? 1 : 16) {
        await cut(port, bytes, k, false);
        cuts++;
        if (k % 7 === 0) {
          await cut(port, bytes, k, true);
          cuts++;
        }
        if (k % 25 === 0) assert.equal(await h2get(port), 200, `served after a cut at ${k}`);
      }
      assert.equal(await h2get(port), 200);
      assert.deepEqual(escapes.since(mark), [], 'no error escaped to the process');
      await waitFor(() => serverSocketsOn(port) === 0, 5000);
      console.log(`MEASURE: h2 ${name}: ${cuts} cuts over ${bytes.length} bytes; client sockets left ${serverSocketsOn(port)}; upstream requests in progress ${up.inProgress}`);
      await waitFor(() => up.inProgress === 0, 5000);
    });
  }
});
