// Where an upstream HTTP/2 request ends: with its HEADERS frame when the
// client's request has no body, after the body when it has one, whatever the
// method. node:http2 guesses this from the method when not told (GET, HEAD and
// DELETE end with their headers), and the adapter leaves the guess to it where
// the guess is right; a wrong guess shows here as a request the upstream never
// sees end (a 504) or a body that never arrives.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';

function send(port: number, method: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = http.request({ host: '127.0.0.1', port, method, path: '/echo', headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP/2 upstream: where a request ends', () => {
  let gw: Gateway;
  let up: http2.Http2Server;
  let port: number;

  before(async () => {
    // Answers once the request has ended: its method, whether HEADERS carried END_STREAM, and the body.
    up = http2.createServer();
    up.on('stream', (stream, headers) => {
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (body += d));
      stream.on('end', () => {
        const text = `${headers[':method']} ${stream.endAfterHeaders ? 'headers-only' : 'with-data'} [${body}]`;
        if (headers[':method'] === 'HEAD') return void stream.respond({ ':status': 200, 'x-seen': text }, { endStream: true });
        stream.respond({ ':status': 200, 'x-seen': text });
        stream.end(text);
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    gw = await startGateway({
      registries: [{ name: 'h2', type: 'static', endpoints: [`127.0.0.1:${(up.address() as AddressInfo).port}`] }],
      services: { 'h2.static': { protocol: 'http2', timeoutMs: 3_000 } },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, backends: [{ service: 'h2.static' }] }],
    });
    port = Number(new URL(gw.listenerUrl()).port);
  });

  after(async () => {
    await gw?.stop();
    await new Promise<void>((r) => up.close(() => r()));
  });

  const cases: Array<{ method: string; body?: string; seen: string }> = [
    { method: 'GET', seen: 'GET headers-only []' },
    { method: 'DELETE', seen: 'DELETE headers-only []' },
    { method: 'OPTIONS', seen: 'OPTIONS headers-only []' },
    // A body-less POST (content-length: 0) must end with its headers too: node:http2 would wait for a body.
    { method: 'POST', body: '', seen: 'POST headers-only []' },
    { method: 'PUT', body: '', seen: 'PUT headers-only []' },
    // Bodies where node:http2 would end the request at once.
    { method: 'GET', body: 'abcd', seen: 'GET with-data [abcd]' },
    { method: 'DELETE', body: 'why', seen: 'DELETE with-data [why]' },
    { method: 'POST', body: 'payload', seen: 'POST with-data [payload]' },
    { method: 'PATCH', body: 'p', seen: 'PATCH with-data [p]' },
  ];
  for (const c of cases) {
    it(`${c.method} ${c.body === undefined ? 'without a body' : `with a ${c.body.length}-byte body`}: ${c.seen}`, async () => {
      const r = await send(port, c.method, c.body);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text, c.seen);
    });
  }

  it('HEAD ends with its headers', async () => {
    const status = await new Promise<{ status: number; seen: string | undefined }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'HEAD', path: '/echo', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, seen: res.headers['x-seen'] as string | undefined }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(status, { status: 200, seen: 'HEAD headers-only []' });
  });
});
