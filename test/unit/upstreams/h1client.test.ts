// The upstream HTTP/1.1 client: framing, keep-alive, backpressure, and strict
// refusal of responses that could desynchronise a kept-alive connection.
import assert from 'node:assert/strict';
import http from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { H1Pool, type H1Handler, type H1Request, type ResponseHeaders } from '../../../src/upstreams/h1client.js';

interface Result {
  status?: number;
  headers?: ResponseHeaders;
  body: Buffer;
  trailers?: ResponseHeaders;
  error?: Error & { code?: string };
  sent: boolean;
}

/** Runs one request to completion (or failure). */
function run(pool: H1Pool, method: string, path: string, headers: string[] = [], body: Readable | null = null, hooks: Partial<H1Handler> = {}): { done: Promise<Result>; req: H1Request } {
  const chunks: Buffer[] = [];
  const out: Result = { body: Buffer.alloc(0), sent: false };
  let resolve!: (r: Result) => void;
  const done = new Promise<Result>((r) => (resolve = r));
  const req = pool.request(
    { method, path, headers, body },
    {
      onRequestSent() {
        out.sent = true;
        hooks.onRequestSent?.();
      },
      onResponseStart(status, h) {
        out.status = status;
        out.headers = h;
        hooks.onResponseStart?.(status, h);
      },
      onResponseData(c) {
        chunks.push(Buffer.from(c));
        hooks.onResponseData?.(c);
      },
      onResponseEnd(t) {
        out.trailers = t;
        out.body = Buffer.concat(chunks);
        resolve(out);
      },
      onResponseError(e) {
        out.error = e;
        out.body = Buffer.concat(chunks);
        resolve(out);
      },
    },
  );
  return { done, req };
}

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers) await c();
});

async function httpServer(handler: http.RequestListener): Promise<{ port: number; server: http.Server; sockets: Set<Socket> }> {
  const server = http.createServer(handler);
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as AddressInfo).port, server, sockets };
}

/** A server that answers every request head with the given raw bytes (for malformed answers). */
async function rawServer(answer: (n: number) => string | Buffer, opts: { closeAfter?: boolean } = {}): Promise<{ port: number; connections: () => number; server: Server }> {
  let conns = 0;
  let n = 0;
  const server = createServer((s) => {
    conns++;
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      while (buf.includes('\r\n\r\n')) {
        buf = buf.slice(buf.indexOf('\r\n\r\n') + 4);
        s.write(answer(n++));
        if (opts.closeAfter) s.end();
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, connections: () => conns, server };
}

const pool = (port: number, o: Partial<{ connections: number; keepAliveTimeoutMs: number; connectTimeoutMs: number }> = {}): H1Pool => {
  const p = new H1Pool('127.0.0.1', port, { connections: 8, keepAliveTimeoutMs: 30_000, connectTimeoutMs: 2_000, ...o });
  closers.push(() => p.close());
  return p;
};

describe('upstream HTTP/1.1 client', () => {
  it('reuses one keep-alive connection for sequential requests, and sends the head as given', async () => {
    const seen: Array<{ url?: string; headers: http.IncomingHttpHeaders; socket: Socket }> = [];
    const { port } = await httpServer((req, res) => {
      seen.push({ url: req.url, headers: req.headers, socket: req.socket });
      res.end(`hi ${req.url}`);
    });
    const p = pool(port);
    for (const path of ['/a', '/b?x=1', '/c']) {
      const r = await run(p, 'GET', path, ['host', 'example.test', 'x-one', 'a', 'x-one', 'b']).done;
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `hi ${path}`);
    }
    assert.equal(seen.length, 3);
    assert.equal(seen[0]!.headers.host, 'example.test');
    assert.equal(seen[0]!.headers['x-one'], 'a, b');
    assert.equal(seen[0]!.socket, seen[2]!.socket, 'the same upstream connection served all three');
    assert.equal(p.size, 1);
  });

  it('decodes chunked responses and passes their trailers; repeated headers become arrays', async () => {
    const { port } = await httpServer((_req, res) => {
      res.writeHead(200, [
        ['set-cookie', 'a=1'],
        ['set-cookie', 'b=2'],
        ['trailer', 'x-digest'],
      ] as unknown as http.OutgoingHttpHeaders);
      res.write('hello ');
      setTimeout(() => {
        res.write('world');
        res.addTrailers({ 'x-digest': 'abc' });
        res.end();
      }, 20);
    });
    const r = await run(pool(port), 'GET', '/').done;
    assert.equal(r.body.toString(), 'hello world');
    assert.deepEqual(r.headers!['set-cookie'], ['a=1', 'b=2']);
    assert.equal(r.headers!['transfer-encoding'], undefined, 'hop-by-hop headers are left out');
    assert.equal(r.headers!.trailer, undefined);
    assert.deepEqual({ ...r.trailers }, { 'x-digest': 'abc' });
  });

  it('reads no body for HEAD, 204 and 304, and keeps the connection for the next request', async () => {
    const { port } = await httpServer((req, res) => {
      if (req.url === '/204') res.writeHead(204).end();
      else if (req.url === '/304') res.writeHead(304, { etag: '"x"' }).end();
      else res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
    });
    const p = pool(port, { connections: 1 });
    const head = await run(p, 'HEAD', '/').done;
    assert.equal(head.status, 200);
    assert.equal(head.headers!['content-length'], '5');
    assert.equal(head.body.length, 0);
    assert.equal((await run(p, 'GET', '/204').done).status, 204);
    assert.equal((await run(p, 'GET', '/304').done).status, 304);
    const get = await run(p, 'GET', '/').done;
    assert.equal(get.body.toString(), 'hello');
    assert.equal(p.size, 1);
  });

  it('skips 1xx heads (100, 103) and delivers the final answer', async () => {
    const { port } = await rawServer(() => 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok');
    const r = await run(pool(port), 'GET', '/').done;
    assert.equal(r.status, 201);
    assert.equal(r.body.toString(), 'ok');
    assert.equal(r.headers!.link, undefined);
  });

  it('leaves hop-by-hop headers and those Connection names out, and takes odd names as plain headers', async () => {
    const { port } = await rawServer(
      () => 'HTTP/1.1 200 OK\r\nconnection: x-private\r\nx-private: secret\r\nkeep-alive: timeout=30\r\nproxy-authenticate: Basic\r\nconstructor: c\r\n__proto__: p\r\nx-public: ok\r\ncontent-length: 0\r\n\r\n',
    );
    const r = await run(pool(port), 'GET', '/').done;
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.headers!).sort(), ['constructor', 'content-length', 'x-public']);
    assert.equal(r.headers!.constructor, 'c');
    assert.equal(Object.getPrototypeOf(r.headers), Object.prototype);
  });

  it('reads a body without length until the upstream closes, and does not reuse that connection', async () => {
    const { port, connections } = await rawServer((n) => `HTTP/1.1 200 OK\r\n\r\nuntil close ${n}`, { closeAfter: true });
    const p = pool(port);
    const a = await run(p, 'GET', '/').done;
    const b = await run(p, 'GET', '/').done;
    assert.equal(a.body.toString(), 'until close 0');
    assert.equal(b.body.toString(), 'until close 1');
    assert.equal(connections(), 2);
  });

  it('closes after Connection: close and after an HTTP/1.0 answer', async () => {
    const { port, connections } = await rawServer((n) => (n % 2 ? 'HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb' : 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 1\r\n\r\na'));
    const p = pool(port);
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'a');
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'b');
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'a');
    assert.equal(connections(), 3);
  });

  for (const [what, answer] of [
    ['content-length and transfer-encoding together', 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
    ['two different content-lengths', 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd'],
    ['a content-length that is not a number', 'HTTP/1.1 200 OK\r\ncontent-length: 3x\r\n\r\nabc'],
    ['a folded header line', 'HTTP/1.1 200 OK\r\nx-a: 1\r\n  folded\r\ncontent-length: 0\r\n\r\n'],
    ['a bare LF inside the head', 'HTTP/1.1 200 OK\r\nx-a: 1\nx-b: 2\r\ncontent-length: 0\r\n\r\n'],
    ['a space before the colon', 'HTTP/1.1 200 OK\r\nx-a : 1\r\ncontent-length: 0\r\n\r\n'],
    ['a malformed status line', 'HTTP/1.1 2000 OK\r\ncontent-length: 0\r\n\r\n'],
    ['an unknown transfer coding', 'HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n'],
    ['an unasked 101', 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n'],
  ] as const) {
    it(`refuses a response with ${what} and closes the connection`, async () => {
      const { port } = await rawServer(() => answer);
      const p = pool(port);
      const r = await run(p, 'GET', '/').done;
      assert.equal(r.error?.code, 'MESHGATE_BAD_RESPONSE', `got ${r.error?.message ?? `status ${r.status}`}`);
      await new Promise((res) => setTimeout(res, 20));
      assert.equal(p.size, 0, 'the connection was closed');
    });
  }

  it('a caller that gives up inside onResponseData hears nothing more: no more data, no end (chunked and sized bodies)', async () => {
    for (const answer of [
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc',
    ]) {
      const up = await rawServer(() => answer);
      const p = pool(up.port);
      const events: string[] = [];
      let r!: H1Request;
      const { done, req } = run(p, 'GET', '/', [], null, {
        onResponseData(c) {
          events.push(`data ${c.toString()}`);
          r.abort(new Error('caller gave up'));
        },
      });
      r = req;
      const out = await done;
      await new Promise((res) => setTimeout(res, 50));
      assert.equal(out.error?.message, 'caller gave up');
      // One data callback, then the error: nothing after it, and no end (the test's run() would record trailers).
      assert.deepEqual(events, [answer.includes('chunked') ? 'data a' : 'data abc']);
      assert.equal(out.trailers, undefined);
    }
  });

  it('refuses a head over 64 KiB', async () => {
    const { port } = await rawServer(() => `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70 * 1024)}\r\ncontent-length: 0\r\n\r\n`);
    const r = await run(pool(port), 'GET', '/').done;
    assert.equal(r.error?.code, 'MESHGATE_BAD_RESPONSE');
  });

  it('does not reuse a connection on which the upstream sent more than one answer', async () => {
    const { port, connections } = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\naHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nb');
    const p = pool(port);
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'a');
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'a', 'the smuggled second answer never reaches the next request');
    assert.equal(connections(), 2);
  });

  it('refuses request heads that would break framing before anything is sent', () => {
    const p = pool(1);
    assert.throws(() => p.request({ method: 'GET', path: '/a b', headers: [], body: null }, {} as H1Handler), /invalid request target/);
    assert.throws(() => p.request({ method: 'GET', path: '/', headers: ['x-a', 'v\r\nx-injected: 1'], body: null }, {} as H1Handler), /invalid request header/);
    assert.throws(() => p.request({ method: 'G ET', path: '/', headers: [], body: null }, {} as H1Handler), /invalid method/);
    assert.equal(p.size, 0);
  });

  it('streams a request body with content-length as is, and one without as chunked', async () => {
    const got: Array<{ te?: string; cl?: string; body: string }> = [];
    const { port } = await httpServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        got.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'], body });
        res.end('ok');
      });
    });
    const p = pool(port, { connections: 1 });
    await run(p, 'POST', '/', ['content-length', '6'], Readable.from([Buffer.from('abc'), Buffer.from('def')])).done;
    const src = new PassThrough();
    const chunked = run(p, 'POST', '/', [], src);
    src.write('gh');
    setTimeout(() => src.end('ij'), 20);
    await chunked.done;
    await run(p, 'POST', '/', []).done;
    assert.deepEqual(got[0], { te: undefined, cl: '6', body: 'abcdef' });
    assert.deepEqual(got[1], { te: 'chunked', cl: undefined, body: 'ghij' });
    assert.deepEqual(got[2], { te: undefined, cl: '0', body: '' }, 'a POST without a body says content-length: 0');
  });

  it('an upload cut off by the upstream fails the request and stops the body; an aborted upload too', async () => {
    const { port } = await httpServer((req) => {
      // The first upload is cut off after 3 bytes; the second is never answered.
      let received = 0;
      req.on('data', (d: Buffer) => {
        received += d.length;
        if (req.headers['content-length'] === '100' && received >= 3) req.socket.destroy();
      });
    });
    const p = pool(port);
    const src = new PassThrough();
    const cut = run(p, 'POST', '/', ['content-length', '100'], src);
    src.write('abc');
    const r = await cut.done;
    assert.ok(r.error, 'the request failed');
    assert.equal(r.sent, true);
    assert.ok(src.destroyed, 'the body was stopped');

    const src2 = new PassThrough();
    const aborted = run(p, 'POST', '/', [], src2);
    src2.write('x');
    await new Promise((res) => setTimeout(res, 30));
    aborted.req.abort(new Error('client left'));
    assert.equal((await aborted.done).error?.message, 'client left');
    assert.ok(src2.destroyed);
  });

  it('waits for a free connection beyond the limit and serves waiting requests in order', async () => {
    const order: string[] = [];
    let inflight = 0;
    let most = 0;
    const { port } = await httpServer((req, res) => {
      order.push(req.url!);
      most = Math.max(most, ++inflight);
      setTimeout(() => {
        inflight--;
        res.end(req.url);
      }, 30);
    });
    const p = pool(port, { connections: 2 });
    const rs = ['/1', '/2', '/3', '/4', '/5'].map((path) => run(p, 'GET', path).done);
    const out = await Promise.all(rs);
    assert.deepEqual(
      out.map((r) => r.body.toString()),
      ['/1', '/2', '/3', '/4', '/5'],
    );
    assert.deepEqual(order.slice(0, 2).sort(), ['/1', '/2'], 'the first two went out at once');
    assert.deepEqual(order.slice(2).sort(), ['/3', '/4', '/5']);
    assert.equal(most, 2, 'never more than 2 at once');
    assert.equal(p.size, 2);
  });

  it('fails with a connect error the adapter can retry, before anything was sent', async () => {
    const closed = await rawServer(() => '');
    const port = (closed.server.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.server.close(() => r()));
    const r = await run(pool(port), 'GET', '/').done;
    assert.equal(r.error?.code, 'ECONNREFUSED');
    assert.equal(r.sent, false);
  });

  it('fails a request whose connection closes mid-response, and the next request gets a new connection', async () => {
    let n = 0;
    const { port } = await httpServer((req, res) => {
      if (n++ === 0) {
        res.writeHead(200, { 'content-length': '10' });
        res.write('abc');
        setTimeout(() => req.socket.destroy(), 20);
      } else res.end('fine');
    });
    const p = pool(port);
    const r = await run(p, 'GET', '/').done;
    assert.equal(r.error?.code, 'MESHGATE_CONNECTION_CLOSED');
    assert.equal(r.body.toString(), 'abc');
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'fine');
  });

  it('abort closes the connection of a request in flight and answers a waiting one at once', async () => {
    const { port, sockets } = await httpServer(() => undefined); // never answers
    const p = pool(port, { connections: 1 });
    const a = run(p, 'GET', '/slow');
    const b = run(p, 'GET', '/queued');
    await new Promise((r) => setTimeout(r, 50));
    b.req.abort(new Error('gave up'));
    assert.equal((await b.done).error?.message, 'gave up');
    a.req.abort(new Error('client left'));
    assert.equal((await a.done).error?.message, 'client left');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sockets.size, 0, 'the upstream saw the connection close');
  });

  it('pauses reading when the caller is full: the upstream is held back, nothing is lost', async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    const { port } = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': String(total) });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    let received = 0;
    let req!: H1Request;
    const started = run(pool(port), 'GET', '/', [], null, {
      onResponseData(c) {
        received += c.length;
        if (received >= 1024 * 1024 && received - c.length < 1024 * 1024) req.pause();
      },
    });
    req = started.req;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(written < total, `the upstream was held back (wrote ${written} of ${total})`);
    const receivedWhilePaused = received;
    assert.ok(receivedWhilePaused < 3 * 1024 * 1024, `reading stopped (${receivedWhilePaused} bytes)`);
    req.resume();
    const r = await started.done;
    assert.equal(r.body.length, total);
  });

  it('closes idle connections after the upstream’s Keep-Alive timeout less a margin', async () => {
    const { port, sockets } = await httpServer((_req, res) => res.end('x'));
    const p = pool(port, { keepAliveTimeoutMs: 30_000 });
    // node:http announces `Keep-Alive: timeout=5`: the client keeps the connection 3 s at most.
    await run(p, 'GET', '/').done;
    assert.equal(sockets.size, 1);
    await new Promise((r) => setTimeout(r, 4_500));
    assert.equal(sockets.size, 0, 'closed by the client before the upstream’s 5 s');
    assert.equal((await run(p, 'GET', '/').done).body.toString(), 'x');
  });
});
