// Upgrade requests the upstream does not switch: an upstream that answers an
// `Upgrade: websocket` request with 200 or 403 instead of 101 gives an
// ordinary response, which the client gets (status, headers, body) within the
// route timeout; an upstream that never answers gets the client a 504 UT
// within the route timeout. `Upgrade: h2c` is not forwarded: the request is
// served as the plain HTTP/1.1 request it also is (RFC 9113 3.1 deprecates the
// h2c upgrade; RFC 9110 7.8 lets a server ignore Upgrade). A real WebSocket
// upgrade still works.
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';

const ROUTE_TIMEOUT_MS = 800;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
  upgraded: boolean;
}

/** An upgrade request through node:http's client (a strict parser): the response, or 'upgraded' on a 101. */
function upgradeRequest(base: string, path: string, upgrade: string, extra: Record<string, string> = {}): Promise<Answer> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, {
      agent: false,
      headers: { connection: 'Upgrade', upgrade, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', ...extra },
    });
    req.setTimeout(10_000, () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.on('upgrade', (res, socket: Socket) => {
      socket.destroy();
      resolve({ status: res.statusCode!, headers: res.headers, body: '', ms: Date.now() - started, upgraded: true });
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, ms: Date.now() - started, upgraded: false }));
      res.on('error', reject);
    });
    req.end();
  });
}

describe('upgrades the upstream declines', () => {
  let gw: Gateway;
  let up: http.Server;
  let wss: WebSocketServer;
  /** Upgrade request headers the upstream saw, by path. */
  const seen = new Map<string, http.IncomingHttpHeaders>();
  const hanging = new Set<Socket>();

  before(async () => {
    up = http.createServer((req, res) => {
      seen.set(req.url!, req.headers);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-plain': 'yes' });
      res.end(`plain ${req.url}`);
    });
    wss = new WebSocketServer({ noServer: true });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
    up.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
      seen.set(req.url!, req.headers);
      socket.on('error', () => undefined);
      switch (req.url) {
        case '/ws':
          wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
          return;
        case '/decline-200': {
          const body = 'no upgrade here, plain content';
          socket.end(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: declined\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
          return;
        }
        case '/decline-403':
          // Chunked, so the gateway re-frames a body of unknown length.
          socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"no"\r\n7\r\n:"ws"}\n\r\n0\r\n\r\n');
          return;
        case '/decline-426':
          socket.end('HTTP/1.1 426 Upgrade Required\r\nupgrade: foo/2\r\nconnection: upgrade, close\r\ncontent-length: 3\r\n\r\nold');
          return;
        case '/decline-big': {
          // Larger than the socket buffers: the body streams with backpressure.
          const body = Buffer.alloc(4 * 1024 * 1024, 0x61);
          socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
          socket.end(body);
          return;
        }
        case '/hang':
          hanging.add(socket);
          return;
        default:
          socket.destroy();
      }
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const port = (up.address() as AddressInfo).port;
    gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [`127.0.0.1:${port}`] }],
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, backends: [{ service: 'up.static' }], timeoutMs: ROUTE_TIMEOUT_MS }],
    });
  });

  after(async () => {
    for (const s of hanging) s.destroy();
    await gw?.stop();
    wss.close();
    up.closeAllConnections();
    await new Promise<void>((r) => up.close(() => r()));
  });

  it('an upstream 200 to Upgrade: websocket reaches the client as a 200 with its headers and body', async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/decline-200', 'websocket');
    assert.equal(a.upgraded, false);
    assert.equal(a.status, 200);
    assert.equal(a.headers['x-upstream'], 'declined');
    assert.equal(a.headers['content-type'], 'text/plain');
    assert.equal(a.body, 'no upgrade here, plain content');
    assert.ok(a.headers['x-request-id'], 'the gateway adds x-request-id');
    assert.ok(a.ms < ROUTE_TIMEOUT_MS, `answered in ${a.ms} ms`);
  });

  it('an upstream 403 (chunked body) reaches the client as a 403 with its body', async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/decline-403', 'websocket');
    assert.equal(a.upgraded, false);
    assert.equal(a.status, 403);
    assert.equal(a.headers['content-type'], 'application/json');
    assert.equal(a.body, '{"no":"ws"}\n');
    assert.ok(a.ms < ROUTE_TIMEOUT_MS, `answered in ${a.ms} ms`);
  });

  it("an upstream 426 keeps its status and body; the upstream's connection-level headers stay behind", async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/decline-426', 'websocket');
    assert.equal(a.upgraded, false);
    assert.equal(a.status, 426);
    assert.equal(a.body, 'old');
    assert.equal(a.headers.upgrade, undefined, 'the upstream Upgrade header is hop-by-hop');
  });

  it('a declined upgrade with a 4 MiB body: all of it reaches the client', async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/decline-big', 'websocket');
    assert.equal(a.status, 200);
    assert.equal(a.body.length, 4 * 1024 * 1024);
    assert.match(a.body, /^a+$/);
  });

  it('an upstream that never answers: 504 UT within the route timeout', async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/hang', 'websocket');
    assert.equal(a.upgraded, false);
    assert.equal(a.status, 504);
    assert.equal(a.headers['x-meshgate-flag'], 'UT');
    assert.ok(a.ms >= ROUTE_TIMEOUT_MS - 50 && a.ms < ROUTE_TIMEOUT_MS + 700, `answered after ${a.ms} ms (route timeout ${ROUTE_TIMEOUT_MS} ms)`);
  });

  it('a real WebSocket upgrade still works both ways', async () => {
    const ws = new WebSocket(`${gw.listenerUrl().replace('http', 'ws')}/ws`);
    await once(ws, 'open');
    ws.send('ping');
    const [msg] = (await once(ws, 'message')) as [Buffer];
    assert.equal(msg.toString(), 'echo:ping');
    ws.close();
    await once(ws, 'close');
    assert.equal(seen.get('/ws')?.upgrade, 'websocket');
  });

  it('Upgrade: h2c is not forwarded: the request is served as plain HTTP/1.1', async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/h2c-try', 'h2c', { connection: 'Upgrade, HTTP2-Settings', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' });
    assert.equal(a.upgraded, false, 'no 101');
    assert.equal(a.status, 200);
    assert.equal(a.body, 'plain /h2c-try');
    assert.equal(a.headers['x-plain'], 'yes');
    const h = seen.get('/h2c-try');
    assert.ok(h, 'the upstream got the request as a plain request');
    assert.equal(h.upgrade, undefined, 'no Upgrade header upstream');
    assert.equal(h['http2-settings'], undefined, 'no HTTP2-Settings header upstream');
    assert.doesNotMatch(String(h.connection ?? ''), /upgrade/i);
  });

  it('Upgrade: h2c without HTTP2-Settings in Connection: still plain, the settings header still dropped', async () => {
    const a = await upgradeRequest(gw.listenerUrl(), '/h2c-odd', 'h2c', { connection: 'Upgrade', 'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA' });
    assert.equal(a.upgraded, false);
    assert.equal(a.status, 200);
    const h = seen.get('/h2c-odd');
    assert.ok(h);
    assert.equal(h.upgrade, undefined);
    assert.equal(h['http2-settings'], undefined);
  });

  it('the gateway keeps serving plain requests after all of the above', async () => {
    const r = await fetch(`${gw.listenerUrl()}/plain`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'plain /plain');
  });
});
