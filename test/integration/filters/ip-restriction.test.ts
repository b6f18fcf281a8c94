// ip_restriction through a real gateway, and the real client IP behind trusted
// proxies (security.md 4): X-Forwarded-For names the client only when the peer
// is a trusted proxy; any other peer is judged by its own address.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import WebSocket from 'ws';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { freePort, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const r = await request(`${base}${path}`, { headers });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

/** The X-Forwarded-For the upstream saw (the echo upstream answers its request headers). */
const upstreamXff = (a: Answer): unknown => (JSON.parse(a.body) as { headers: Record<string, unknown> }).headers['x-forwarded-for'];

function assertRefused(a: Answer, requestId?: string): void {
  assert.equal(a.status, 403, a.body);
  assert.equal(a.headers['x-meshgate-flag'], 'IP');
  const body = JSON.parse(a.body) as { error: string; flag: string; requestId: string };
  assert.equal(body.flag, 'IP');
  assert.equal(body.error, 'blocked by IP restriction');
  assert.ok(body.requestId, 'the body names the request id');
  assert.equal(a.headers['x-request-id'], body.requestId);
  if (requestId) assert.equal(body.requestId, requestId);
}

describe('ip_restriction', () => {
  let up: TestUpstream;
  let gw: Gateway;
  let global: Gateway;
  const log: string[] = [];
  let direct: string;
  let lb: string;
  let lbForward: string;

  before(async () => {
    up = await startUpstream();
    const service = [{ service: 'up.static' }];
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
    gw = await startGateway(
      {
        listeners: [
          // a client connects directly: its X-Forwarded-For is never believed
          { name: 'direct', address: `127.0.0.1:${p1}`, protocol: 'http' },
          // behind a proxy on 127.0.0.1: X-Forwarded-For names the client
          { name: 'lb', address: `127.0.0.1:${p2}`, protocol: 'http', trustedProxies: ['127.0.0.1/32'] },
          { name: 'lb-forward', address: `127.0.0.1:${p3}`, protocol: 'http', trustedProxies: ['127.0.0.0/8'], trustForwarded: true },
        ],
        registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
        routes: [
          { name: 'deny-self', match: { path: { prefix: '/deny-self' } }, backends: service, filters: [{ type: 'ip_restriction', deny: ['127.0.0.1/32'] }] },
          { name: 'deny-mapped', match: { path: { prefix: '/deny-mapped' } }, backends: service, filters: [{ type: 'ip_restriction', deny: ['::ffff:127.0.0.1'] }] },
          { name: 'deny-doc', match: { path: { prefix: '/deny-doc' } }, backends: service, filters: [{ type: 'ip_restriction', deny: ['203.0.113.0/24'] }] },
          { name: 'allow-doc', match: { path: { prefix: '/allow-doc' } }, backends: service, filters: [{ type: 'ip_restriction', allow: ['203.0.113.0/24'] }] },
          { name: 'open', match: { path: { prefix: '/' } }, backends: service },
        ],
      },
      { accessLog: { write: (line: string) => void log.push(line) } },
    );
    direct = gw.listenerUrl('direct');
    lb = gw.listenerUrl('lb');
    lbForward = gw.listenerUrl('lb-forward');
    global = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      filters: [{ type: 'ip_restriction', deny: ['127.0.0.1/32'] }],
      routes: [{ name: 'open', match: { path: { prefix: '/open' } }, backends: service }],
    });
  });

  after(async () => {
    await gw?.stop();
    await global?.stop();
    await up?.close();
  });

  it('a global deny of 127.0.0.1/32 refuses every request, routed or not, with 403 flag IP and the request id', async () => {
    const base = global.listenerUrl('public');
    assertRefused(await get(base, '/open', { 'x-request-id': 'ip-test-1' }), 'ip-test-1');
    assertRefused(await get(base, '/no-such-route'));
    assert.equal(up.seen.filter((s) => s.url.startsWith('/open')).length, 0, 'nothing reached the upstream');
  });

  it('a route deny of 127.0.0.1/32 refuses the local client on that route only', async () => {
    assertRefused(await get(direct, '/deny-self/x'));
    assert.equal((await get(direct, '/other')).status, 200);
  });

  it('a deny of ::ffff:127.0.0.1 is a deny of 127.0.0.1', async () => {
    assertRefused(await get(direct, '/deny-mapped'));
  });

  it('an untrusted peer sending a spoofed X-Forwarded-For is judged by its own address', async () => {
    const spoof = { 'x-forwarded-for': '203.0.113.9' };
    assert.equal((await get(direct, '/deny-doc', spoof)).status, 200, 'the deny of 203.0.113.0/24 does not apply to 127.0.0.1');
    assertRefused(await get(direct, '/allow-doc', spoof));
    assertRefused(await get(direct, '/deny-self', { 'x-forwarded-for': '198.51.100.1' }));
    const a = await get(direct, '/open', spoof);
    assert.equal(upstreamXff(a), '127.0.0.1', 'trustForwarded off: the client header is not passed on');
  });

  it('behind a trusted proxy, the client is the first untrusted address from the right of X-Forwarded-For', async () => {
    const xff = { 'x-forwarded-for': '203.0.113.9, 127.0.0.1' };
    assertRefused(await get(lb, '/deny-doc', xff));
    assert.equal((await get(lb, '/allow-doc', xff)).status, 200);
    assert.equal((await get(lb, '/deny-self', xff)).status, 200, 'the client is no longer 127.0.0.1');
    // A client-supplied entry left of the real client changes nothing.
    assertRefused(await get(lb, '/deny-doc', { 'x-forwarded-for': '198.51.100.1, 203.0.113.9, 127.0.0.1' }));
    // No X-Forwarded-For: the peer is the client.
    assertRefused(await get(lb, '/deny-self'));
    assertRefused(await get(lb, '/allow-doc'));
  });

  it('the access log names the real client', async () => {
    log.length = 0;
    await get(lb, '/open/logged', { 'x-forwarded-for': '198.51.100.23', 'x-request-id': 'ip-log-1' });
    await get(direct, '/open/logged', { 'x-forwarded-for': '198.51.100.23', 'x-request-id': 'ip-log-2' });
    const lines = await waitFor(() => {
      const parsed = log.flatMap((chunk) => chunk.split('\n').filter(Boolean)).map((l) => JSON.parse(l) as { requestId: string; client: string });
      const a = parsed.find((l) => l.requestId === 'ip-log-1');
      const b = parsed.find((l) => l.requestId === 'ip-log-2');
      return a && b ? { a, b } : undefined;
    });
    assert.ok(lines);
    assert.equal(lines.a.client, '198.51.100.23');
    assert.equal(lines.b.client, '127.0.0.1');
  });

  it('X-Forwarded-For upstream is what trustForwarded made it before: the client header when trusted, then the peer', async () => {
    const xff = { 'x-forwarded-for': '203.0.113.9, 127.0.0.1' };
    assert.equal(upstreamXff(await get(lb, '/open', xff)), '127.0.0.1');
    assert.equal(upstreamXff(await get(lbForward, '/open', xff)), '203.0.113.9, 127.0.0.1, 127.0.0.1');
    assertRefused(await get(lbForward, '/deny-doc', xff));
  });

  it('a WebSocket upgrade is judged by the same client IP', async () => {
    const ws = new WebSocket(`${lb.replace('http', 'ws')}/deny-doc`, { headers: { 'x-forwarded-for': '203.0.113.9' } });
    const status = await new Promise<number>((resolve, reject) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.once('open', () => reject(new Error('upgrade was accepted')));
      ws.once('error', reject);
    });
    ws.terminate();
    assert.equal(status, 403);
  });

  it('a gRPC request gets PERMISSION_DENIED', async () => {
    const client = http2.connect(direct);
    try {
      const stream = client.request({ ':method': 'POST', ':path': '/deny-self/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
      stream.end();
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      stream.resume();
      assert.equal(headers[':status'], 200);
      assert.equal(headers['grpc-status'], '7');
      assert.equal(headers['x-meshgate-flag'], 'IP');
    } finally {
      client.close();
    }
  });
});
