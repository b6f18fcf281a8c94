// The gateway's own answers carry no body where HTTP allows none: to a HEAD
// request (400, 404, 502, 503, 504, a direct response...), and with the
// statuses 204 and 304, which also carry no Content-Length (RFC 9110 8.6) that
// could not match. Over HTTP/1.1 a body there would be read as the start of the
// next response on the connection; the checks read the raw bytes. HTTP/2 HEAD
// answers are checked for DATA too.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { connect, type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { REFUSED_PORT } from '../../helpers/upstream.js';

interface Parsed {
  status: number;
  headers: Record<string, string>;
  /** Bytes after the first response's head: the next response, or nothing. */
  after: string;
}

/** Sends `first` and then a plain GET on one connection; returns the first response's head and what followed it. */
async function rawThenNext(port: number, first: string, nextPath = '/ok'): Promise<Parsed> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  s.write(`${first}GET ${nextPath} HTTP/1.1\r\nhost: t\r\n\r\n`);
  // Until the connection closes, or the second response is complete (its body is "ok").
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3000);
    const check = (): void => {
      if (/\r\n\r\nok$/.test(got.slice(got.indexOf('\r\n\r\n') + 4))) {
        clearTimeout(t);
        resolve();
      }
    };
    s.on('data', check);
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
  s.destroy();
  const end = got.indexOf('\r\n\r\n');
  assert.ok(end > 0, `a response head came: ${JSON.stringify(got.slice(0, 200))}`);
  const lines = got.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, after: got.slice(end + 4) };
}

/** Nothing but (possibly) the next response follows the head. */
function noBodyAfter(p: Parsed): void {
  assert.ok(p.after === '' || p.after.startsWith('HTTP/1.1 '), `no body after the head, got ${JSON.stringify(p.after.slice(0, 80))}`);
}

describe('gateway answers without a body: HEAD, 204, 304', () => {
  let gw: Gateway;
  let up: http.Server;
  let port: number;

  before(async () => {
    up = http.createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      res.writeHead(200, { 'content-length': '2' });
      res.end('ok');
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const dead = REFUSED_PORT;
    gw = await startGateway({
      registries: [
        { name: 'up', type: 'static', endpoints: [`127.0.0.1:${(up.address() as AddressInfo).port}`] },
        { name: 'dead', type: 'static', endpoints: [`127.0.0.1:${dead}`] },
        { name: 'none', type: 'static', endpoints: [] },
      ],
      routes: [
        { name: 'ok', match: { path: { exact: '/ok' } }, backends: [{ service: 'up.static' }] },
        { name: 'hang', match: { path: { exact: '/hang' } }, backends: [{ service: 'up.static' }], timeoutMs: 200 },
        { name: 'dead', match: { path: { exact: '/dead' } }, backends: [{ service: 'dead.static' }] },
        { name: 'none', match: { path: { exact: '/none' } }, backends: [{ service: 'none.static' }] },
        { name: 'd200', match: { path: { exact: '/d200' } }, directResponse: { status: 200, body: 'direct body' } },
        { name: 'd204', match: { path: { exact: '/d204' } }, directResponse: { status: 204, body: 'must not be sent' } },
        { name: 'd304', match: { path: { exact: '/d304' } }, directResponse: { status: 304, body: 'must not be sent' } },
        { name: 'd403', match: { path: { exact: '/d403' } }, directResponse: { status: 403, body: 'forbidden here' } },
        { name: 'd101', match: { path: { exact: '/d101' } }, directResponse: { status: 101, body: 'cannot be' } },
      ],
    });
    port = Number(new URL(gw.listenerUrl()).port);
  });

  after(async () => {
    await gw?.stop();
    up.closeAllConnections();
    await new Promise<void>((r) => up.close(() => r()));
  });

  for (const [what, path, status, flag] of [
    ['404 NR (no route)', '/nowhere', 404, 'NR'],
    ['503 UH (no instance)', '/none', 503, 'UH'],
    ['502 UF (upstream refuses connections)', '/dead', 502, 'UF'],
    ['504 UT (upstream never answers)', '/hang', 504, 'UT'],
  ] as const) {
    it(`HEAD gets a ${what} without a body`, async () => {
      const p = await rawThenNext(port, `HEAD ${path} HTTP/1.1\r\nhost: t\r\n\r\n`);
      assert.equal(p.status, status);
      assert.equal(p.headers['x-meshgate-flag'], flag);
      noBodyAfter(p);
      // The same answer to GET has its JSON body: HEAD differs only there.
      const g = await rawThenNext(port, `GET ${path} HTTP/1.1\r\nhost: t\r\n\r\n`);
      assert.equal(g.status, status);
      assert.match(g.after, /^\{"error"/);
    });
  }

  it('HEAD with a request target that is not a path: 400 BR without a body', async () => {
    const p = await rawThenNext(port, 'HEAD * HTTP/1.1\r\nhost: t\r\n\r\n');
    assert.equal(p.status, 400);
    noBodyAfter(p);
  });

  it('HEAD to direct responses (200, 403): headers, no body', async () => {
    for (const [path, status, length] of [
      ['/d200', 200, '11'],
      ['/d403', 403, '14'],
    ] as const) {
      const p = await rawThenNext(port, `HEAD ${path} HTTP/1.1\r\nhost: t\r\n\r\n`);
      assert.equal(p.status, status);
      assert.equal(p.headers['content-length'], length, 'HEAD keeps the length a GET would get');
      noBodyAfter(p);
    }
  });

  it('direct 204 and 304 to GET: no body and no Content-Length', async () => {
    for (const [path, status] of [
      ['/d204', 204],
      ['/d304', 304],
    ] as const) {
      const p = await rawThenNext(port, `GET ${path} HTTP/1.1\r\nhost: t\r\n\r\n`);
      assert.equal(p.status, status);
      assert.equal(p.headers['content-length'], undefined, `${status} carries no content-length`);
      assert.equal(p.headers['transfer-encoding'], undefined, `${status} carries no transfer-encoding`);
      noBodyAfter(p);
      assert.match(p.after, /^HTTP\/1\.1 200 /, 'the next response on the connection is read cleanly');
    }
  });

  it('a direct response configured with a 1xx status: a 500 (no 1xx can end an exchange), and the gateway keeps serving', async () => {
    const g = await rawThenNext(port, 'GET /d101 HTTP/1.1\r\nhost: t\r\n\r\n');
    assert.equal(g.status, 500);
    assert.match(g.after, /not a final status/);
    const h = await rawThenNext(port, 'HEAD /d101 HTTP/1.1\r\nhost: t\r\n\r\n');
    assert.equal(h.status, 500);
    noBodyAfter(h);
    const r = await fetch(`${gw.listenerUrl()}/ok`);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  });

  it('a HEAD the HTTP/1.1 server refuses (malformed header line): 400 without a body', async () => {
    const p = await rawThenNext(port, 'HEAD /ok HTTP/1.1\r\nhost: t\r\nbad header line\r\n\r\n');
    assert.equal(p.status, 400);
    assert.equal(p.headers['x-meshgate-flag'], 'BR');
    assert.equal(p.after, '', 'no body, and the connection closed');
  });

  it('OPTIONS * gets a 204 without Content-Length or body', async () => {
    const p = await rawThenNext(port, 'OPTIONS * HTTP/1.1\r\nhost: t\r\n\r\n');
    assert.equal(p.status, 204);
    assert.equal(p.headers['content-length'], undefined);
    noBodyAfter(p);
  });

  it('h2c: HEAD answers (404, 503, direct 200) end with the HEADERS frame, no DATA', async () => {
    const session = http2.connect(gw.listenerUrl());
    session.on('error', () => undefined);
    try {
      for (const [path, status] of [
        ['/nowhere', 404],
        ['/none', 503],
        ['/d200', 200],
      ] as const) {
        const r = await new Promise<{ status: number; bytes: number; error?: string }>((resolve) => {
          const req = session.request({ ':method': 'HEAD', ':path': path });
          let st = 0;
          let bytes = 0;
          req.on('response', (h) => (st = Number(h[':status'])));
          req.on('data', (c: Buffer) => (bytes += c.length));
          req.on('error', (e) => resolve({ status: st, bytes, error: (e as NodeJS.ErrnoException).code }));
          req.on('close', () => resolve({ status: st, bytes }));
          req.end();
        });
        assert.equal(r.error, undefined, `no stream error for HEAD ${path}`);
        assert.equal(r.status, status);
        assert.equal(r.bytes, 0, `no DATA for HEAD ${path}`);
      }
    } finally {
      session.close();
    }
  });
});
