// Listeners: HTTP/1.1 and h2c on one port; https with a certificate per host
// (SNI, wildcard, default) and ALPN h2 / http/1.1; gRPC over TLS; graceful
// close; HTTP/2 upstreams (protocol http2) with trailers.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Gateway } from '../../../src/gateway.js';
import { makeCerts, type TestCerts } from '../../fixtures/tls/certs.js';
import { startGateway } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';
import { CLIENT_OPTIONS, EchoClient, startEchoServer, unary, type EchoClientT, type EchoServer } from '../grpc/helpers.js';

interface H2Result {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers?: http2.IncomingHttpHeaders;
}

function h2request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    if (body !== undefined) s.end(body);
    let data = '';
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    s.setEncoding('utf8');
    s.on('response', (h) => (head = h));
    s.on('data', (d: string) => (data += d));
    s.on('trailers', (t) => (trailers = t));
    s.on('end', () => resolve({ status: Number(head[':status']), headers: head, body: data, trailers }));
    s.on('error', reject);
  });
}

function h1request(url: string, opts: https.RequestOptions & tls.ConnectionOptions = {}, body?: string): Promise<{ status: number; body: string; alpn?: string | false | null }> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.request(url, { agent: false, ...opts }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, alpn: (res.socket as tls.TLSSocket).alpnProtocol }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('http listener: HTTP/1.1 and h2c on one port', () => {
  let up: TestUpstream;
  let gw: Gateway;
  before(async () => {
    up = await startUpstream((req, res) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        const delay = Number(req.headers['x-delay'] ?? 0);
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ url: req.url, method: req.method, bytes: n, proto: req.headers['x-forwarded-proto'], host: req.headers.host }));
        }, delay);
      });
    });
    gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
    });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('serves HTTP/1.1 and prior-knowledge HTTP/2 on the same port, both proxied to an HTTP/1.1 upstream', async () => {
    const url = gw.listenerUrl('public');
    const r1 = await h1request(`${url}/one?x=1`, { method: 'POST' }, 'hello');
    assert.equal(r1.status, 200);
    assert.deepEqual(JSON.parse(r1.body), { url: '/one?x=1', method: 'POST', bytes: 5, proto: 'http', host: new URL(url).host });

    const session = http2.connect(url);
    try {
      const get = await h2request(session, { ':path': '/two?y=2' });
      assert.equal(get.status, 200);
      assert.equal(JSON.parse(get.body).url, '/two?y=2');
      const post = await h2request(session, { ':method': 'POST', ':path': '/three' }, 'x'.repeat(100_000));
      assert.equal(post.status, 200);
      assert.equal(JSON.parse(post.body).bytes, 100_000);
      // The :authority of an HTTP/2 request becomes the Host the upstream sees.
      assert.equal(JSON.parse(post.body).host, new URL(url).host);
    } finally {
      session.close();
    }
  });

  it('answers a connection that sends an unknown method with 501, and one split mid-preface as HTTP/2', async () => {
    const { port } = new URL(gw.listenerUrl('public'));
    const garbage = await new Promise<string>((resolve) => {
      const s = net.connect(Number(port), '127.0.0.1', () => s.write('PRX nonsense\r\n\r\n'));
      let d = '';
      s.on('data', (c) => (d += c));
      s.on('close', () => resolve(d));
      s.on('error', () => resolve(d));
    });
    // `PRX` is a token but no method: 501 (RFC 9110 9.1), as for any method the server does not know.
    assert.match(garbage, /^HTTP\/1\.1 501 /);

    // The preface arriving in two TCP segments still selects HTTP/2.
    const session = http2.connect(gw.listenerUrl('public'), {
      createConnection: () => {
        const sock = net.connect(Number(port), '127.0.0.1');
        const write = sock.write.bind(sock) as (chunk: Buffer, ...rest: unknown[]) => boolean;
        let first = true;
        (sock as unknown as { write: typeof write }).write = (chunk: Buffer, ...rest: unknown[]) => {
          if (first && Buffer.isBuffer(chunk) && chunk.length > 10) {
            first = false;
            write(chunk.subarray(0, 10));
            return write(chunk.subarray(10), ...rest);
          }
          return write(chunk, ...rest);
        };
        return sock;
      },
    });
    try {
      const r = await h2request(session, { ':path': '/split' });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).url, '/split');
    } finally {
      session.close();
    }
  });

  it('close() lets HTTP/2 and HTTP/1.1 requests in flight finish and refuses new connections', async () => {
    const other = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
    });
    const url = other.listenerUrl('public');
    const session = http2.connect(url);
    session.on('error', () => undefined);
    await new Promise<void>((r) => session.once('connect', () => r()));
    const h2 = h2request(session, { ':path': '/slow-h2', 'x-delay': '400' });
    const h1 = h1request(`${url}/slow-h1`, { headers: { 'x-delay': '400' } });
    await new Promise((r) => setTimeout(r, 100));
    const closing = other.listener('public')!.close(10_000);
    const [a, b] = await Promise.all([h2, h1]);
    assert.equal(a.status, 200);
    assert.equal(JSON.parse(a.body).url, '/slow-h2');
    assert.equal(b.status, 200);
    await closing;
    await assert.rejects(h1request(`${url}/after`));
    session.destroy();
    await other.stop();
  });
});

describe('HTTP/2 request bodies and retries', () => {
  let ok: TestUpstream;
  let busy: TestUpstream;
  let gw: Gateway;
  before(async () => {
    const answer = (status: number) => (req: http.IncomingMessage, res: http.ServerResponse) => {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ bytes: n }));
      });
    };
    ok = await startUpstream(answer(200));
    busy = await startUpstream(answer(503));
    gw = await startGateway({
      registries: [{ name: 'pair', type: 'static', endpoints: [ok.address, busy.address] }],
      services: { 'pair.static': { retries: { attempts: 2, on: [503] } } },
      routes: [{ name: 'all', backends: [{ service: 'pair.static' }] }],
    });
  });
  after(async () => {
    await gw?.stop();
    await ok?.close();
    await busy?.close();
  });

  it('a body sent over HTTP/2 (no content-length) is never lost to a retry', async () => {
    const session = http2.connect(gw.listenerUrl('public'));
    try {
      for (let i = 0; i < 6; i++) {
        const r = await h2request(session, { ':method': 'PUT', ':path': `/put${i}` }, 'z'.repeat(5_000));
        // Either the instance that took the body answered, or the request was retried with
        // the body intact; never a retry that reaches an instance with an empty body.
        assert.equal(JSON.parse(r.body).bytes, 5_000, `attempt ${i}: status ${r.status} body ${r.body}`);
      }
    } finally {
      session.close();
    }
  });
});

describe('https listener: certificates per host (SNI) and ALPN', () => {
  let certs: TestCerts;
  let up: TestUpstream;
  let echo: EchoServer;
  let gw: Gateway;
  let port: number;

  before(async () => {
    certs = makeCerts({
      main: ['default.example.test'],
      api: ['api.example.test'],
      wild: ['*.wild.example.test'],
    });
    up = await startUpstream('tls-up');
    echo = await startEchoServer('tls-echo');
    gw = await startGateway({
      listeners: [
        {
          name: 'secure',
          address: '127.0.0.1:0',
          protocol: 'https',
          tls: {
            certificates: [
              { hosts: ['default.example.test'], ...certs.leaves.main! },
              { hosts: ['api.example.test'], ...certs.leaves.api! },
              { hosts: ['*.wild.example.test'], ...certs.leaves.wild! },
            ],
          },
        },
      ],
      registries: [
        { name: 'up', type: 'static', endpoints: [up.address] },
        { name: 'echo', type: 'static', endpoints: [echo.address] },
      ],
      services: { 'echo.static': { protocol: 'grpc' } },
      routes: [
        { name: 'grpc', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'echo.static' }] },
        { name: 'all', backends: [{ service: 'up.static' }] },
      ],
    });
    port = Number(new URL(gw.listenerUrl('secure')).port);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    await echo?.close();
    certs?.cleanup();
  });

  /** The certificate names the server presents for a server name. */
  function presented(servername: string | undefined): Promise<string> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
        const san = s.getPeerCertificate().subjectaltname;
        s.end();
        resolve(san ?? '');
      });
      s.on('error', reject);
    });
  }

  it('picks the certificate by SNI: exact host, one-label wildcard, else the first certificate', async () => {
    assert.equal(await presented('api.example.test'), 'DNS:api.example.test');
    assert.equal(await presented('API.Example.Test'), 'DNS:api.example.test');
    assert.equal(await presented('a.wild.example.test'), 'DNS:*.wild.example.test');
    assert.equal(await presented('a.b.wild.example.test'), 'DNS:default.example.test');
    assert.equal(await presented('other.test'), 'DNS:default.example.test');
    assert.equal(await presented(undefined), 'DNS:default.example.test');
  });

  it('negotiates h2 by ALPN and proxies; the certificate verifies against the CA for the name asked', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { ca: certs.ca, servername: 'api.example.test' });
    try {
      const r = await h2request(session, { ':path': '/over-h2', ':authority': 'api.example.test' });
      assert.equal(r.status, 200);
      const body = JSON.parse(r.body);
      assert.equal(body.instance, 'tls-up');
      assert.equal(body.headers['x-forwarded-proto'], 'https');
      assert.equal((session.socket as tls.TLSSocket).alpnProtocol, 'h2');
    } finally {
      session.close();
    }
  });

  it('serves HTTP/1.1 over TLS (ALPN http/1.1, and clients without ALPN)', async () => {
    const viaAlpn = await h1request(`https://127.0.0.1:${port}/over-h1`, { ca: certs.ca, servername: 'x.wild.example.test', ALPNProtocols: ['http/1.1'] });
    assert.equal(viaAlpn.status, 200);
    assert.equal(viaAlpn.alpn, 'http/1.1');
    assert.equal(JSON.parse(viaAlpn.body).headers['x-forwarded-proto'], 'https');
    const noAlpn = await h1request(`https://127.0.0.1:${port}/no-alpn`, { ca: certs.ca, servername: 'api.example.test' });
    assert.equal(noAlpn.status, 200);
    assert.equal(JSON.parse(noAlpn.body).url, '/no-alpn');
  });

  it('refuses a certificate that does not match its key, naming the listener', async () => {
    await assert.rejects(
      startGateway({
        listeners: [
          {
            name: 'broken',
            address: '127.0.0.1:0',
            protocol: 'https',
            tls: { certificates: [{ hosts: ['api.example.test'], cert: certs.leaves.api!.cert, key: certs.leaves.main!.key }] },
          },
        ],
      }),
      /listeners\.broken\.tls\.certificates\[0\]/,
    );
  });

  it('a reload with a bad certificate is refused, naming it, and the listener keeps serving', async () => {
    const cfg = structuredClone(gw.config);
    cfg.listeners[0]!.tls!.certificates[1] = { hosts: ['api.example.test'], cert: certs.leaves.api!.cert, key: certs.leaves.main!.key };
    const r = await gw.reload(cfg);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /listeners\[0\]\.tls\.certificates\[1\]: bad certificate or key/);
    assert.equal(await presented('api.example.test'), 'DNS:api.example.test');
    const still = await h1request(`https://127.0.0.1:${port}/after-bad-reload`, { ca: certs.ca, servername: 'api.example.test' });
    assert.equal(still.status, 200);
  });

  it('carries gRPC over TLS to a plaintext gRPC upstream', async () => {
    const client = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(certs.ca)), {
      ...CLIENT_OPTIONS,
      'grpc.ssl_target_name_override': 'api.example.test',
      'grpc.default_authority': 'api.example.test',
    }) as EchoClientT;
    try {
      const r = await unary(client, { msg: 'secure' });
      assert.equal(r.err, undefined);
      assert.equal(r.res.msg, 'secure');
      assert.equal(r.status!.metadata.get('x-trailer')[0], 'from-tls-echo');
    } finally {
      client.close();
    }
  });
});

describe('HTTP/2 upstreams (protocol http2)', () => {
  let h2up: http2.Http2Server;
  let gw: Gateway;
  const sessions = new Set<http2.ServerHttp2Session>();
  before(async () => {
    h2up = http2.createServer();
    h2up.on('session', (s) => sessions.add(s));
    h2up.on('stream', (stream, headers) => {
      let n = 0;
      stream.on('data', (c: Buffer) => (n += c.length));
      stream.on('end', () => {
        stream.respond({ ':status': 201, 'content-type': 'application/json', 'x-up': 'h2' }, { waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ 'x-checksum': `bytes=${n}` }));
        stream.end(JSON.stringify({ path: headers[':path'], authority: headers[':authority'], bytes: n, xfp: headers['x-forwarded-proto'] }));
      });
    });
    await new Promise<void>((r) => h2up.listen(0, '127.0.0.1', () => r()));
    const addr = `127.0.0.1:${(h2up.address() as net.AddressInfo).port}`;
    gw = await startGateway({
      registries: [{ name: 'h2', type: 'static', endpoints: [addr] }],
      services: { 'h2.static': { protocol: 'http2' } },
      routes: [{ name: 'all', backends: [{ service: 'h2.static' }] }],
    });
  });
  after(async () => {
    await gw?.stop();
    for (const s of sessions) s.destroy();
    h2up?.close();
  });

  it('proxies HTTP/2 and HTTP/1.1 clients over one upstream session, trailers included', async () => {
    const url = gw.listenerUrl('public');
    const session = http2.connect(url);
    try {
      const rs = await Promise.all([1, 2, 3].map((i) => h2request(session, { ':method': 'POST', ':path': `/p${i}` }, 'y'.repeat(i * 1000))));
      rs.forEach((r, k) => {
        assert.equal(r.status, 201);
        assert.equal(r.headers['x-up'], 'h2');
        assert.equal(JSON.parse(r.body).bytes, (k + 1) * 1000);
        assert.equal(r.trailers?.['x-checksum'], `bytes=${(k + 1) * 1000}`);
      });
    } finally {
      session.close();
    }
    const r1 = await h1request(`${url}/from-h1`, { method: 'POST' }, 'abc');
    assert.equal(r1.status, 201);
    assert.equal(JSON.parse(r1.body).path, '/from-h1');
    assert.equal(JSON.parse(r1.body).xfp, 'http');
    assert.equal(sessions.size, 1, 'all requests shared one upstream session');
  });
});
