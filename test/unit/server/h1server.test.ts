// The downstream HTTP/1.1 server: framing, keep-alive, pipelining, limits,
// timeouts, and strict refusal of requests that a server behind the gateway
// could read differently (request smuggling).
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { H1Server, type H1Request, type H1Response, type H1ServerOptions } from '../../../src/server/h1server.js';

interface Seen {
  method: string;
  url: string;
  headers: Record<string, unknown>;
  body: string;
}

type Handler = (req: H1Request, res: H1Response, seen: Seen) => void;

/** An echo handler: answers with what it read, as JSON. */
const echo: Handler = (req, res, seen) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    seen.body = Buffer.concat(chunks).toString();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(JSON.stringify(seen)) });
    res.end(JSON.stringify(seen));
  });
};

interface Started {
  port: number;
  h1: H1Server;
  seen: Seen[];
  upgrades: Array<{ req: H1Request; socket: Socket; head: Buffer }>;
}

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of closers) await c();
});

async function start(handler: Handler = echo, opts: Partial<H1ServerOptions> = {}): Promise<Started> {
  const seen: Seen[] = [];
  const upgrades: Started['upgrades'] = [];
  const h1 = new H1Server({
    keepAliveTimeoutMs: 5000,
    headersTimeoutMs: 5000,
    bodyTimeoutMs: 5000,
    maxHeaderBytes: 4096,
    onRequest: (req, res) => {
      const s: Seen = { method: req.method, url: req.url, headers: { ...req.headers }, body: '' };
      seen.push(s);
      handler(req, res, s);
    },
    onUpgrade: (req, socket, head) => upgrades.push({ req, socket, head }),
    ...opts,
  });
  const server: Server = createServer({ noDelay: true }, (s) => h1.connection(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    h1.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, h1, seen, upgrades };
}

/** Sends raw bytes; collects what comes back until the server closes or `idleMs` pass quietly. */
function raw(port: number, data: string | Buffer | Array<string | Buffer>, idleMs = 300): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text, closed });
    };
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => done(false), idleMs);
    };
    sock.on('data', (d) => {
      text += d.toString('latin1');
      arm();
    });
    sock.on('close', () => done(true));
    sock.on('error', () => undefined);
    for (const d of Array.isArray(data) ? data : [data]) sock.write(d);
    arm();
  });
}

/** Splits a stream of responses (content-length framed) into status, headers and body. */
function responses(text: string, headAt = -1): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const out = [];
  let rest = text;
  while (rest.length) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const lines = rest.slice(0, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const l of lines.slice(1)) headers[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
    const status = Number(lines[0]!.split(' ')[1]);
    rest = rest.slice(end + 4);
    let body = '';
    if (status === 100 || out.length === headAt) {
      out.push({ status, headers, body });
      continue;
    }
    if (headers['content-length'] !== undefined) {
      body = rest.slice(0, Number(headers['content-length']));
      rest = rest.slice(body.length);
    } else if (headers['transfer-encoding'] === 'chunked') {
      for (;;) {
        const nl = rest.indexOf('\r\n');
        const size = parseInt(rest.slice(0, nl), 16);
        rest = rest.slice(nl + 2);
        if (size === 0) {
          const t = rest.indexOf('\r\n\r\n');
          const trailer = rest.slice(0, t);
          if (trailer) for (const l of trailer.split('\r\n')) headers[`trailer:${l.slice(0, l.indexOf(':')).toLowerCase()}`] = l.slice(l.indexOf(':') + 1).trim();
          rest = rest.slice(t + 4);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else {
      body = rest;
      rest = '';
    }
    out.push({ status, headers, body });
  }
  return out;
}

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;

describe('HTTP/1.1 server', () => {
  it('keeps a connection alive across requests and says for how long', async () => {
    const s = await start();
    const { text, closed } = await raw(s.port, [GET('/one'), GET('/two')]);
    const rs = responses(text);
    assert.equal(closed, false);
    assert.deepEqual(
      rs.map((r) => JSON.parse(r.body).url),
      ['/one', '/two'],
    );
    assert.equal(rs[0]!.headers['keep-alive'], 'timeout=5');
    assert.equal(rs[0]!.headers.connection, undefined);
    assert.match(rs[0]!.headers.date!, /GMT$/);
  });

  it('answers pipelined requests in order even when a later one is quicker', async () => {
    const s = await start((req, res) => {
      const delay = req.url === '/slow' ? 150 : 0;
      req.resume();
      setTimeout(() => res.end(req.url), delay);
    });
    const { text } = await raw(s.port, GET('/slow') + GET('/fast') + GET('/third'));
    assert.deepEqual(
      responses(text).map((r) => r.body),
      ['/slow', '/fast', '/third'],
    );
  });

  it('reads content-length and chunked bodies, then the request after them', async () => {
    const s = await start();
    const chunked = 'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n';
    const sized = 'POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc';
    // Split across writes at awkward places.
    const all = chunked + sized + GET('/after');
    const parts = [all.slice(0, 60), all.slice(60, 71), all.slice(71, 140), all.slice(140)];
    const { text } = await raw(s.port, parts);
    const bodies = responses(text).map((r) => JSON.parse(r.body) as Seen);
    assert.deepEqual(
      bodies.map((b) => [b.url, b.body]),
      [
        ['/c', 'hello world'],
        ['/s', 'abc'],
        ['/after', ''],
      ],
    );
  });

  it('merges repeated request headers as node:http does', async () => {
    const s = await start();
    const { text } = await raw(s.port, GET('/', 'Cookie: a=1\r\nCookie: b=2\r\nX-A: 1\r\nX-A: 2\r\nUser-Agent: first\r\nUser-Agent: second\r\n'));
    const seen = JSON.parse(responses(text)[0]!.body) as Seen;
    assert.equal(seen.headers.cookie, 'a=1; b=2');
    assert.equal(seen.headers['x-a'], '1, 2');
    assert.equal(seen.headers['user-agent'], 'first');
  });

  it('ignores empty lines before a request line', async () => {
    const s = await start();
    const { text } = await raw(s.port, `\r\n\r\n${GET('/x')}`);
    assert.equal(responses(text)[0]!.status, 200);
  });

  const refused: Array<[string, string, number]> = [
    ['content-length with transfer-encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['two content-lengths', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx', 400],
    ['a signed content-length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx', 400],
    ['a content-length list', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\nx', 400],
    ['a coding before chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501],
    ['chunked not last', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n', 400],
    ['transfer-encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost: a\r\nX-A : 1\r\n\r\n', 400],
    ['a folded header', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n', 400],
    ['a bare LF inside the head', 'GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n', 400],
    ['a NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\u00002\r\n\r\n', 400],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400],
    ['two Hosts', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['a space in the target', 'GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['a method that is not a token', 'G(T / HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['another HTTP version', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
    ['a malformed version', 'GET / HTTP/1.1x\r\nHost: a\r\n\r\n', 400],
    ['an Expect other than 100-continue', 'GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n', 417],
    ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 405],
    ['a head over the limit', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`, 431],
    ['a head over the limit that never ends', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(5000)}`, 431],
    ['a chunk size that is not hex', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400],
    ['a chunk longer than its size', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n', 400],
    ['a chunk size beyond 12 hex digits', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000\r\n', 400],
  ];
  for (const [what, bytes, status] of refused) {
    it(`refuses ${what} with ${status} and closes`, async () => {
      const s = await start();
      // Anything after the refused request must never be read as a request.
      const { text, closed } = await raw(s.port, bytes + GET('/smuggled'));
      assert.match(text, new RegExp(`^HTTP/1.1 ${status} `));
      assert.match(text, /x-meshgate-flag: BR/);
      assert.equal(closed, true);
      assert.equal(
        s.seen.some((x) => x.url === '/smuggled'),
        false,
      );
    });
  }

  it('a request smuggled behind content-length and transfer-encoding never reaches the handler', async () => {
    const s = await start();
    const attack = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n';
    const { text } = await raw(s.port, attack);
    assert.match(text, /^HTTP\/1.1 400 /);
    assert.deepEqual(s.seen, []);
  });

  it('HTTP/1.0: closes after the answer unless asked to keep alive; unsized bodies end with the close', async () => {
    const s = await start((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part1 ');
      res.end('part2');
    });
    const plain = await raw(s.port, 'GET / HTTP/1.0\r\n\r\n');
    assert.equal(plain.closed, true);
    assert.match(plain.text, /connection: close\r\n/);
    assert.doesNotMatch(plain.text, /transfer-encoding/);
    assert.ok(plain.text.endsWith('\r\n\r\npart1 part2'));
    const s2 = await start();
    const kept = await raw(s2.port, 'GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(kept.closed, false);
    assert.match(kept.text, /connection: keep-alive\r\nkeep-alive: timeout=5\r\n/);
  });

  it('Connection: close from the client closes after the answer', async () => {
    const s = await start();
    const { text, closed } = await raw(s.port, GET('/', 'Connection: close\r\n') + GET('/never'));
    assert.equal(closed, true);
    assert.equal(responses(text).length, 1);
    assert.match(text, /connection: close/);
    assert.equal(
      s.seen.some((x) => x.url === '/never'),
      false,
    );
  });

  it('unsized answers are chunked, with trailers; HEAD answers carry no body', async () => {
    const s = await start((req, res) => {
      req.resume();
      res.writeHead(200, { 'x-kind': 'stream' });
      res.write('ab');
      res.write('');
      res.write('cde');
      res.addTrailers({ 'x-sum': '5' });
      res.end();
    });
    const { text } = await raw(s.port, GET('/') + 'HEAD / HTTP/1.1\r\nHost: a\r\n\r\n' + GET('/'));
    const [a, head, b] = responses(text, 1);
    assert.equal(a!.headers['transfer-encoding'], 'chunked');
    assert.equal(a!.body, 'abcde');
    assert.equal(a!.headers['trailer:x-sum'], '5');
    assert.equal(head!.status, 200);
    assert.equal(head!.headers['transfer-encoding'], undefined);
    // The answer after HEAD parses cleanly: no body bytes were sent for HEAD.
    assert.equal(b!.body, 'abcde');
  });

  it('a handler answer that lies about content-length closes the connection', async () => {
    const s = await start((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-length': '10' });
      res.end('short');
    });
    const { closed } = await raw(s.port, GET('/'));
    assert.equal(closed, true);
  });

  it('refuses response header values with CR or LF', async () => {
    let thrown: Error | undefined;
    const s = await start((req, res) => {
      req.resume();
      try {
        res.writeHead(200, { 'x-bad': 'a\r\nset-cookie: evil=1' });
      } catch (e) {
        thrown = e as Error;
      }
      if (!res.headersSent) res.writeHead(500, {});
      res.end();
    });
    const { text } = await raw(s.port, GET('/'));
    assert.ok(thrown);
    assert.match(text, /^HTTP\/1.1 500 /);
    assert.doesNotMatch(text, /evil/);
  });

  it('Expect: 100-continue: 100 once admitted; an answer without it closes the connection', async () => {
    const s = await start((req, res, seen) => {
      if (req.url === '/admit') {
        res.writeContinue();
        echo(req, res, seen);
      } else {
        res.writeHead(403, { 'content-length': '0' });
        res.end();
      }
    });
    const sock = connect(s.port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => (text += d.toString()));
    sock.write('POST /admit HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    await waitUntil(() => text.includes('100 Continue'));
    assert.doesNotMatch(text, /200 OK/);
    sock.write('hi');
    await waitUntil(() => text.includes('"body":"hi"'));
    sock.destroy();
    const denied = await raw(s.port, 'POST /deny HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    assert.match(denied.text, /^HTTP\/1.1 403 /);
    assert.match(denied.text, /connection: close/);
    assert.equal(denied.closed, true);
  });

  it('a client that goes away: the request is aborted and the response closes unfinished', async () => {
    let res: H1Response | undefined;
    let aborted = false;
    const s = await start((req, r) => {
      res = r;
      req.on('aborted', () => (aborted = true));
      req.on('error', () => undefined);
    });
    const sock = connect(s.port, '127.0.0.1');
    sock.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\npartial');
    await waitUntil(() => res !== undefined);
    const closed = new Promise<boolean>((r) => res!.once('close', () => r(res!.writableFinished)));
    sock.destroy();
    assert.equal(await closed, false);
    assert.equal(aborted, true);
  });

  it('an answer sent before the body was read: the rest is dropped and the connection carries on', async () => {
    const s = await start((req, res) => {
      if (req.url === '/early') res.end('early');
      else echo(req, res, { method: req.method, url: req.url, headers: {}, body: '' });
    });
    const body = 'x'.repeat(200_000);
    const { text, closed } = await raw(s.port, [`POST /early HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`, body, GET('/next')], 500);
    const rs = responses(text);
    assert.equal(closed, false);
    assert.equal(rs[0]!.body, 'early');
    assert.equal(JSON.parse(rs[1]!.body).url, '/next');
  });

  it('an answer sent before a large body: connection: close, the client reads the answer even late, the rest is not read to its end', async () => {
    for (const framing of ['length', 'chunked'] as const) {
      const s = await start((req, res) => res.end('early'));
      const sock = connect(s.port, '127.0.0.1');
      sock.on('error', () => undefined);
      let text = '';
      sock.on('data', (d: Buffer) => (text += d.toString('latin1')));
      // A client busy sending reads its answer late: a connection reset before then would lose the answer.
      sock.pause();
      setTimeout(() => sock.resume(), 300);
      const closed = new Promise<number>((r) => sock.once('close', () => r(Date.now())));
      const head = framing === 'length' ? 'Content-Length: 10737418240' : 'Transfer-Encoding: chunked';
      sock.write(`POST /upload HTTP/1.1\r\nHost: a\r\n${head}\r\n\r\n`);
      // The client goes on sending as fast as the server reads: 10 GiB would take far longer than the wait below.
      const chunk = framing === 'length' ? Buffer.alloc(256 * 1024, 0x61) : Buffer.from(`40000\r\n${'a'.repeat(0x40000)}\r\n`);
      let sent = 0;
      const pump = (): void => {
        while (!sock.destroyed && sock.write(chunk)) sent += chunk.length;
        if (!sock.destroyed) sock.once('drain', pump);
      };
      pump();
      const started = Date.now();
      const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 8000))]);
      sock.destroy();
      assert.ok(at > 0, `${framing}: the connection is closed (the rest of the body is not read to its end)`);
      assert.ok(at - started < 5000, `${framing}: closed ${at - started} ms after the answer`);
      const rs = responses(text);
      assert.equal(rs[0]?.body, 'early', framing);
      assert.equal(rs[0]?.headers.connection, 'close', framing);
      assert.ok(sent > 1024 * 1024, `${framing}: the client was still sending (${sent} bytes)`);
    }
  });

  it('an upload the handler does not read stays in the kernel, not in memory', async () => {
    let req: H1Request | undefined;
    const s = await start((r) => (req = r));
    const total = 16 * 1024 * 1024;
    const sock = connect(s.port, '127.0.0.1');
    sock.on('error', () => undefined);
    sock.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let i = 0; i < total / chunk.length; i++) sock.write(chunk);
    await waitUntil(() => req !== undefined);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(req!.readableLength <= 256 * 1024, `buffered ${req!.readableLength}`);
    let got = 0;
    req!.on('data', (c: Buffer) => (got += c.length));
    await waitUntil(() => req!.complete, 10_000);
    assert.equal(got, total);
    sock.destroy();
  });

  it('hands an upgrade over with the bytes read after its head', async () => {
    const s = await start();
    const sock = connect(s.port, '127.0.0.1');
    sock.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nEARLY');
    await waitUntil(() => s.upgrades.length === 1);
    const up = s.upgrades[0]!;
    assert.equal(up.req.url, '/ws');
    assert.equal(up.head.toString(), 'EARLY');
    // The socket is the new owner's: bytes written now reach it.
    // Handed over paused: nothing is read until the new owner reads.
    let more = '';
    up.socket.on('data', (d: Buffer) => (more += d.toString()));
    up.socket.resume();
    sock.write('LATER');
    await waitUntil(() => more === 'LATER');
    assert.deepEqual(s.seen, []);
    sock.destroy();
  });

  it('a body that stops arriving gets 408 after bodyTimeoutMs, and the handler sees the request aborted', async () => {
    let aborted = false;
    const s = await start((req) => req.on('aborted', () => (aborted = true)).resume(), { bodyTimeoutMs: 300 });
    const t0 = Date.now();
    const { text, closed } = await raw(s.port, 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabcde', 3000);
    assert.match(text, /^HTTP\/1.1 408 /);
    assert.equal(closed, true);
    assert.equal(aborted, true);
    assert.ok(Date.now() - t0 >= 300, 'not before the timeout');
  });

  it('a body the handler does not read is not timed out (the gateway paused, not the client)', async () => {
    let req: H1Request | undefined;
    const s = await start((r) => (req = r), { bodyTimeoutMs: 200 });
    const sock = connect(s.port, '127.0.0.1');
    let text = '';
    sock.on('data', (d) => (text += d.toString()));
    sock.on('error', () => undefined);
    // More than the body stream buffers before it pauses the socket.
    sock.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${1 << 20}\r\n\r\n`);
    sock.write(Buffer.alloc(1 << 20, 97));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(text, '', 'no 408 while the gateway is the one not reading');
    const got: Buffer[] = [];
    req!.on('data', (c: Buffer) => got.push(c));
    await new Promise<void>((r) => req!.on('end', () => r()));
    assert.equal(Buffer.concat(got).length, 1 << 20);
    sock.destroy();
  });

  it('a refused HEAD request gets its status and headers without a body', async () => {
    const s = await start();
    const { text, closed } = await raw(s.port, 'HEAD / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    assert.match(text, /^HTTP\/1.1 400 /);
    assert.match(text, /content-length: \d+\r\n/);
    assert.ok(text.endsWith('\r\n\r\n'), `no body after the head: ${JSON.stringify(text)}`);
    assert.equal(closed, true);
  });

  it('a head that takes too long gets 408', async () => {
    const s = await start(echo, { headersTimeoutMs: 200 });
    const { text, closed } = await raw(s.port, 'GET / HTTP/1.1\r\nHost: a\r\n', 3000);
    assert.match(text, /^HTTP\/1.1 408 /);
    assert.equal(closed, true);
  });

  it('empty lines alone do not hold a connection past the head timeout', async () => {
    const s = await start(echo, { headersTimeoutMs: 200, keepAliveTimeoutMs: 60_000 });
    const sock = connect(s.port, '127.0.0.1');
    let text = '';
    let closed = false;
    sock.on('data', (d) => (text += d.toString()));
    sock.on('close', () => (closed = true));
    sock.on('error', () => undefined);
    const drip = setInterval(() => sock.writable && sock.write('\r\n'), 50);
    try {
      await waitUntil(() => closed, 4000);
    } finally {
      clearInterval(drip);
    }
    assert.match(text, /^HTTP\/1.1 408 /);
  });

  it('an idle keep-alive connection closes after the timeout, not before', async () => {
    const s = await start(echo, { keepAliveTimeoutMs: 1000 });
    const sock = connect(s.port, '127.0.0.1');
    let closedAt = 0;
    const t0 = Date.now();
    sock.on('close', () => (closedAt = Date.now()));
    sock.resume();
    sock.write(GET('/'));
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(closedAt, 0);
    await waitUntil(() => closedAt > 0, 3000);
    assert.ok(closedAt - t0 >= 1000);
  });

  it('close(): idle connections close at once, a busy one after its answer, which says so', async () => {
    let release: (() => void) | undefined;
    const s = await start((req, res) => {
      req.resume();
      release = () => res.end('done');
    });
    const idle = connect(s.port, '127.0.0.1');
    let idleClosed = false;
    idle.on('close', () => (idleClosed = true));
    await new Promise((r) => idle.once('connect', r));
    const busy = raw(s.port, GET('/'), 2000);
    await waitUntil(() => release !== undefined);
    s.h1.close();
    await waitUntil(() => idleClosed);
    release!();
    const { text, closed } = await busy;
    assert.match(text, /connection: close/);
    assert.match(text, /done$/);
    assert.equal(closed, true);
  });
});

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
