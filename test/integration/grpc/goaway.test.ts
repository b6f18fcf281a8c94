// Upstream HTTP/2 sessions come and go: after a GOAWAY (graceful shutdown,
// max connection age) new requests go to a new session, and streams the
// upstream refused are retried when the service allows it.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';

describe('upstream GOAWAY', () => {
  let up: http2.Http2Server;
  let gw: Gateway;
  let sessions = 0;
  const live = new Set<http2.ServerHttp2Session>();
  before(async () => {
    up = http2.createServer();
    up.on('session', (s) => {
      sessions++;
      live.add(s);
      s.once('close', () => live.delete(s));
      let streams = 0;
      s.on('stream', (stream) => {
        streams++;
        stream.respond({ ':status': 200 });
        stream.end(`session ${sessions}`);
        // Every session serves 8 streams, then shuts down gracefully (GOAWAY).
        if (streams === 8) s.close();
      });
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    gw = await startGateway({
      registries: [{ name: 'h2', type: 'static', endpoints: [`127.0.0.1:${(up.address() as AddressInfo).port}`] }],
      services: { 'h2.static': { protocol: 'http2', retries: { attempts: 3, on: ['refused-stream'], budgetPercent: 100 } } },
      routes: [{ name: 'all', backends: [{ service: 'h2.static' }] }],
    });
  });
  after(async () => {
    await gw?.stop();
    for (const s of live) s.destroy();
    up?.close();
  });

  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      http
        .get(`${gw.listenerUrl('public')}${path}`, { agent: false }, (res) => {
          let body = '';
          res.on('data', (d) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });

  it('sequential requests move to a new session after each GOAWAY', async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await get(`/seq${i}`);
      assert.equal(r.status, 200, `request ${i}: ${r.body}`);
      bodies.push(r.body);
    }
    assert.ok(new Set(bodies).size >= 2, `20 requests over sessions: ${[...new Set(bodies)].join(', ')}`);
  });

  it('concurrent requests all succeed across GOAWAYs (refused streams are retried)', async () => {
    const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => get(`/par${i}`)));
    for (const r of rs) assert.equal(r.status, 200, r.body);
    assert.ok(new Set(rs.map((r) => r.body)).size >= 2, 'the burst spanned a GOAWAY');
  });
});
