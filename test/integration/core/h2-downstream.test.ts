// HTTP/2 clients on the stream API (server/h2-exchange.ts): what goes on the
// wire for a response, trailers by what the client takes (and which fields
// they may carry), the answers the listener gives itself (CONNECT, unknown
// expectations), and the peer address.
// Frames are read with the raw client of the hardening tests, so "one HEADERS
// frame" and "no empty DATA frame after the body" are seen, not assumed.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { FRAME, FLAG, RawH2, headersFrame, requestFields } from '../hardening/h2-wire.js';

function h2request(url: string, headers: http2.OutgoingHttpHeaders): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string; trailers: http2.IncomingHttpHeaders | undefined }> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(url);
    client.on('error', reject);
    const req = client.request(headers);
    let status = 0;
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    let body = '';
    req.on('response', (h) => {
      status = Number(h[':status']);
      head = h;
    });
    req.on('trailers', (t) => (trailers = t));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      client.close();
      resolve({ status, headers: head, body, trailers });
    });
    req.on('error', (e) => {
      client.close();
      reject(e);
    });
    req.end();
  });
}

describe('HTTP/2 downstream on the stream API', () => {
  let gw: Gateway;
  let h1: http.Server;
  let h2: http2.Http2Server;
  let url: string;
  let port: number;
  let lastForwardedFor: string | undefined;

  before(async () => {
    h1 = http.createServer((req, res) => {
      lastForwardedFor = req.headers['x-forwarded-for'] as string | undefined;
      if (req.url === '/hop-trailers') {
        // An HTTP/1.1 upstream whose trailers carry a connection-specific field beside an ordinary one.
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'proxy-connection, x-ok' });
        res.write('hi');
        res.addTrailers({ 'proxy-connection': 'keep-alive', 'x-ok': '1' });
        return res.end();
      }
      if (req.url === '/empty') {
        res.writeHead(200, { 'content-length': '0' });
        return res.end();
      }
      res.writeHead(200, { 'content-length': '5', 'content-type': 'text/plain' });
      res.end('hello');
    });
    await new Promise<void>((r) => h1.listen(0, '127.0.0.1', () => r()));
    // An HTTP/2 upstream that sends trailers after a sized body, or after a streamed one.
    h2 = http2.createServer();
    h2.on('stream', (stream, headers) => {
      const sized = headers[':path'] === '/t/sized';
      stream.respond({ ':status': 200, ...(sized ? { 'content-length': '4' } : {}) }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end('body');
    });
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', () => r()));
    gw = await startGateway({
      registries: [
        { name: 'h1', type: 'static', endpoints: [`127.0.0.1:${(h1.address() as AddressInfo).port}`] },
        { name: 'h2', type: 'static', endpoints: [`127.0.0.1:${(h2.address() as AddressInfo).port}`] },
      ],
      services: { 'h2.static': { protocol: 'http2' } },
      routes: [
        { name: 't', match: { path: { prefix: '/t/' } }, backends: [{ service: 'h2.static' }] },
        { name: 'h1', match: { path: { prefix: '/' } }, backends: [{ service: 'h1.static' }] },
      ],
    });
    url = gw.listenerUrl();
    port = Number(new URL(url).port);
  });

  after(async () => {
    await gw?.stop();
    h1.closeAllConnections();
    await new Promise<void>((r) => h1.close(() => r()));
    await new Promise<void>((r) => h2.close(() => r()));
  });

  /** The frames the gateway sent on stream 1 of a fresh connection for one request. */
  async function framesFor(fields: Array<[string, string]>): Promise<Array<{ type: number; flags: number; length: number }>> {
    const c = await RawH2.connect(port);
    try {
      c.write(headersFrame(1, fields, true));
      await c.outcome(1);
      // Anything the server might still send on the stream (an empty DATA frame a turn later).
      await new Promise((r) => setTimeout(r, 100));
      return c.frames.filter((f) => f.streamId === 1).map((f) => ({ type: f.type, flags: f.flags, length: f.payload.length }));
    } finally {
      c.close();
    }
  }

  it('a sized response ends with its last DATA frame: no empty frame after the body', async () => {
    const frames = await framesFor(requestFields('/sized'));
    assert.deepEqual(
      frames.map((f) => [f.type, f.flags & FLAG.END_STREAM, f.length > 0 || f.type === FRAME.HEADERS]),
      [
        [FRAME.HEADERS, 0, true],
        [FRAME.DATA, FLAG.END_STREAM, true],
      ],
      `frames on the stream: ${JSON.stringify(frames)}`,
    );
  });

  it('a response without a body is one HEADERS frame that ends the stream', async () => {
    const frames = await framesFor(requestFields('/empty'));
    assert.deepEqual(
      frames.map((f) => [f.type, f.flags & FLAG.END_STREAM]),
      [[FRAME.HEADERS, FLAG.END_STREAM]],
      `frames on the stream: ${JSON.stringify(frames)}`,
    );
  });

  it('a client that sends te: trailers gets the upstream trailers of a sized response', async () => {
    const r = await h2request(url, { ':path': '/t/sized', te: 'trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'body');
    assert.equal(r.trailers?.['x-checksum'], 'abc');
  });

  it('a streamed response (no content-length) keeps its trailers for any client', async () => {
    const r = await h2request(url, { ':path': '/t/streamed' });
    assert.equal(r.body, 'body');
    assert.equal(r.trailers?.['x-checksum'], 'abc');
  });

  it('a sized response to a client that did not ask for trailers ends without them', async () => {
    const r = await h2request(url, { ':path': '/t/sized' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'body');
    assert.equal(r.trailers, undefined);
  });

  it('a connection-specific field in upstream trailers is left out; the others arrive and the gateway lives', async () => {
    const r = await h2request(url, { ':path': '/hop-trailers', te: 'trailers' });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'hi');
    assert.equal(r.trailers?.['x-ok'], '1');
    assert.equal(r.trailers?.['proxy-connection'], undefined);
    const again = await h2request(url, { ':path': '/sized' });
    assert.equal(again.status, 200, 'the gateway still serves');
  });

  it('CONNECT gets 405 and an unknown expectation 417, without reaching a route', async () => {
    const c = await RawH2.connect(port);
    try {
      c.write(headersFrame(1, [[':method', 'CONNECT'], [':authority', 'example.com:443']], true));
      c.write(headersFrame(3, [...requestFields('/sized'), ['expect', 'something-else']], true));
      c.write(headersFrame(5, requestFields('/sized'), true));
      const [a, b, ok] = await Promise.all([c.outcome(1), c.outcome(3), c.outcome(5)]);
      assert.equal(a.status, 0, 'a status outside the static table (405)');
      assert.equal(b.status, 0, 'a status outside the static table (417)');
      assert.equal(ok.status, 200, 'the connection still serves');
    } finally {
      c.close();
    }
    const r = await h2request(url, { ':method': 'POST', ':path': '/sized', expect: 'something-else' });
    assert.equal(r.status, 417);
  });

  it('the upstream sees the HTTP/2 client address in X-Forwarded-For', async () => {
    lastForwardedFor = undefined;
    const r = await h2request(url, { ':path': '/sized' });
    assert.equal(r.status, 200);
    assert.equal(lastForwardedFor, '127.0.0.1');
  });
});
