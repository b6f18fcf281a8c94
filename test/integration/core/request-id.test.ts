// Which answers carry x-request-id (config requestId.response): by default
// HTTP/1.1 responses do and proxied HTTP/2 responses do not (a unique value on
// every response defeats HPACK); gateway-made answers always do.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

/** One h2c request (prior knowledge); resolves with the response headers. */
async function h2Get(url: string, path: string): Promise<http2.IncomingHttpHeaders> {
  const session = http2.connect(url);
  try {
    return await new Promise((resolve, reject) => {
      const s = session.request({ ':path': path });
      s.on('response', (h) => {
        s.resume();
        s.on('end', () => resolve(h));
      });
      s.on('error', reject);
    });
  } finally {
    session.close();
  }
}

function config(up: TestUpstream, response?: 'auto' | 'always' | 'errors') {
  return {
    registries: [{ name: 'up', type: 'static' as const, endpoints: [up.address] }],
    routes: [{ name: 'r', match: { path: { prefix: '/api' } }, backends: [{ service: 'up.static' }] }],
    ...(response ? { requestId: { response } } : {}),
  };
}

describe('x-request-id on responses', () => {
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream('u');
  });
  after(async () => {
    await up.close();
  });

  for (const [mode, h1, h2] of [
    [undefined, true, false],
    ['always', true, true],
    ['errors', false, false],
  ] as const) {
    it(`requestId.response ${mode ?? 'auto (default)'}: HTTP/1.1 ${h1 ? 'yes' : 'no'}, HTTP/2 ${h2 ? 'yes' : 'no'}; gateway errors always`, async () => {
      const gw: Gateway = await startGateway(config(up, mode));
      try {
        const a = await request(`${gw.listenerUrl()}/api/x`);
        await a.body.text();
        assert.equal(a.statusCode, 200);
        assert.equal(a.headers['x-request-id'] !== undefined, h1, JSON.stringify(a.headers));
        const b = await h2Get(gw.listenerUrl(), '/api/x');
        assert.equal(b[':status'], 200);
        assert.equal(b['x-request-id'] !== undefined, h2, JSON.stringify(b));
        // No route: the gateway's own 404 names the request either way.
        const c = await request(`${gw.listenerUrl()}/nowhere`);
        const body = JSON.parse(await c.body.text()) as { requestId: string };
        assert.equal(c.statusCode, 404);
        assert.equal(c.headers['x-request-id'], body.requestId);
        const d = await h2Get(gw.listenerUrl(), '/nowhere');
        assert.equal(d[':status'], 404);
        assert.ok(d['x-request-id'], 'HTTP/2 error answers carry it');
      } finally {
        await gw.stop();
      }
    });
  }
});
