// Upstream TLS: services with a `tls:` block (or instances with metadata
// secure=true) are reached over TLS. HTTPS/1.1 for protocol http, h2 over TLS
// for http2 and grpc, WebSocket upgrades and active health checks over TLS;
// verification on by default (CA, name, dates), its failures a 502 UF whose
// access log line says which check failed; mTLS client certificates; session
// resumption; missing files as config errors naming the key; reload.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { request } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import { stringify } from 'yaml';
import pino from 'pino';
import { Gateway } from '../../../src/gateway.js';
import type { AccessLogSink } from '../../../src/observability/logger.js';
import { startGateway, testConfig, waitFor } from '../../helpers/gateway.js';
import { makeTestCerts, type TestCerts } from '../../helpers/tls-certs.js';
import { freePort } from '../../helpers/upstream.js';
import { CLIENT_OPTIONS, EchoClient, EchoService, unary, type EchoClientT } from '../grpc/helpers.js';

let certs: TestCerts;

interface TlsUpstream {
  server: https.Server | http2.Http2SecureServer | http.Server;
  port: number;
  address: string;
  /** Requests the handler was called for. */
  served: number;
  /** TLS handshakes completed: full and resumed. */
  full: number;
  reused: number;
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;

async function listen(u: TlsUpstream, server: TlsUpstream['server']): Promise<TlsUpstream> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  u.port = (server.address() as AddressInfo).port;
  u.address = `127.0.0.1:${u.port}`;
  const sockets = new Set<{ destroy(): void }>();
  server.on('connection', (s: { destroy(): void; once(e: string, f: () => void): void }) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  u.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  return u;
}

/** An HTTPS/1.1 upstream (node:https) with the given TLS options over the default server certificate. */
async function httpsUpstream(opts: https.ServerOptions, handler: Handler): Promise<TlsUpstream> {
  const u = { served: 0, full: 0, reused: 0 } as TlsUpstream;
  const server = https.createServer({ key: certs.server.keyPem, cert: certs.server.certPem, ALPNProtocols: ['http/1.1'], ...opts }, (req, res) => {
    u.served++;
    handler(req, res);
  });
  server.on('secureConnection', (s: TLSSocket) => (s.isSessionReused() ? u.reused++ : u.full++));
  server.on('tlsClientError', () => undefined);
  server.keepAliveTimeout = 30_000;
  u.server = server;
  return listen(u, server);
}

/** An h2-only TLS upstream (node:http2 createSecureServer, no HTTP/1.1 fallback). */
async function h2Upstream(handler: Handler): Promise<TlsUpstream> {
  const u = { served: 0, full: 0, reused: 0 } as TlsUpstream;
  const server = http2.createSecureServer({ key: certs.server.keyPem, cert: certs.server.certPem, allowHTTP1: false }, (req, res) => {
    u.served++;
    handler(req, res);
  });
  server.on('secureConnection', (s: TLSSocket) => (s.isSessionReused() ? u.reused++ : u.full++));
  server.on('tlsClientError', () => undefined);
  u.server = server;
  return listen(u, server);
}

/** A plain HTTP upstream: an instance that does not speak TLS. */
async function plainUpstream(): Promise<TlsUpstream> {
  const u = { served: 0, full: 0, reused: 0 } as TlsUpstream;
  const server = http.createServer((_req, res) => {
    u.served++;
    res.end('plain');
  });
  server.on('clientError', (_e, s) => s.destroy());
  u.server = server;
  return listen(u, server);
}

/** What the upstream saw of the connection: TLS or not, ALPN, SNI, client certificate CN. */
function describeConn(req: http.IncomingMessage | http2.Http2ServerRequest): Record<string, unknown> {
  const s = req.socket as TLSSocket;
  const peer = s.encrypted && typeof s.getPeerCertificate === 'function' ? s.getPeerCertificate() : undefined;
  return {
    encrypted: !!s.encrypted,
    alpn: s.alpnProtocol ?? null,
    servername: (s as TLSSocket & { servername?: string | false }).servername ?? null,
    httpVersion: req.httpVersion,
    clientCN: peer && peer.subject ? peer.subject.CN : null,
    url: req.url,
  };
}

const describeHandler: Handler = (req, res) => {
  const body = JSON.stringify(describeConn(req));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(body);
};

/** Config for one service "up.static" with `svc` settings, routed at /. */
function oneService(endpoint: string, svc: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    registries: [{ name: 'up', type: 'static', endpoints: [endpoint] }],
    services: { 'up.static': { timeoutMs: 5_000, connectTimeoutMs: 2_000, ...svc } },
    routes: [{ name: 'r', match: { path: { prefix: '/' } }, backends: [{ service: 'up.static' }] }],
    ...extra,
  };
}

/** A gateway capturing its access log lines. */
async function gatewayWithLog(config: Record<string, unknown>): Promise<{ gw: Gateway; lines: string[] }> {
  const lines: string[] = [];
  const sink = { write: (l: string) => void lines.push(l) } as AccessLogSink;
  const gw = await startGateway({ log: { level: 'silent', access: true }, ...config } as never, { accessLog: sink });
  return { gw, lines };
}

async function getJson(url: string): Promise<{ status: number; headers: Record<string, unknown>; body: any; text: string }> {
  const r = await request(url, { reset: true });
  const text = await r.body.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: r.statusCode, headers: r.headers, body, text };
}

/** The access log line of the request to `path`, parsed. */
async function logLine(lines: string[], path: string): Promise<Record<string, unknown>> {
  const l = await waitFor(() => lines.find((x) => x.includes(`"path":"${path}"`)), 3_000);
  return JSON.parse(l!) as Record<string, unknown>;
}

before(() => {
  certs = makeTestCerts();
});

after(() => {
  certs?.cleanup();
});

describe('upstream TLS: protocols', () => {
  it('protocol http + tls: HTTPS/1.1 with ALPN http/1.1, SNI from tls.sni, name verified', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({}, describeHandler);
    const gw = await startGateway(oneService(up.address, { protocol: 'http', tls: { sni: 'localhost', ca: certs.ca.cert } }) as never);
    try {
      const r = await getJson(`${gw.listenerUrl()}/hello`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.encrypted, true);
      assert.equal(r.body.alpn, 'http/1.1');
      assert.equal(r.body.servername, 'localhost');
      assert.equal(r.body.httpVersion, '1.1');
      assert.equal(r.body.url, '/hello');
    } finally {
      await gw.stop();
      await up.close();
    }
  });

  it('without tls.sni an IP instance is verified against the certificate IP SAN (no SNI sent)', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({}, describeHandler);
    const gw = await startGateway(oneService(up.address, { tls: { ca: certs.ca.cert } }) as never);
    try {
      const r = await getJson(`${gw.listenerUrl()}/ip`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.encrypted, true);
      // RFC 6066: SNI carries DNS names only
      assert.ok(r.body.servername === null || r.body.servername === false || r.body.servername === '', `SNI sent for an IP: ${r.body.servername}`);
    } finally {
      await gw.stop();
      await up.close();
    }
  });

  it('protocol http2 + tls: HTTP/2 over TLS with ALPN h2', { timeout: 10_000 }, async () => {
    const up = await h2Upstream(describeHandler);
    const gw = await startGateway(oneService(up.address, { protocol: 'http2', tls: { sni: 'localhost', ca: certs.ca.cert } }) as never);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await getJson(`${gw.listenerUrl()}/h2/${i}`);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.body.encrypted, true);
        assert.equal(r.body.alpn, 'h2');
        assert.equal(r.body.httpVersion, '2.0');
        assert.equal(r.body.url, `/h2/${i}`);
      }
      assert.equal(up.served, 3);
    } finally {
      await gw.stop();
      await up.close();
    }
  });

  it('WebSocket upgrades on an http service go over TLS', { timeout: 10_000 }, async () => {
    const server = https.createServer({ key: certs.server.keyPem, cert: certs.server.certPem });
    const wss = new WebSocketServer({ server });
    let encrypted: boolean | undefined;
    wss.on('connection', (sock, req) => {
      encrypted = !!(req.socket as TLSSocket).encrypted;
      sock.send('hello over tls');
      sock.on('message', (m) => sock.send(`echo:${m.toString()}`));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const gw = await startGateway(oneService(`127.0.0.1:${port}`, { protocol: 'http', tls: { sni: 'localhost', ca: certs.ca.cert } }) as never);
    const ws = new WebSocket(`${gw.listenerUrl().replace('http', 'ws')}/ws`);
    try {
      const msgs: string[] = [];
      ws.on('message', (m) => msgs.push(m.toString()));
      const opened = once(ws, 'open');
      const failed = once(ws, 'unexpected-response').then(([, res]) => {
        throw new Error(`upgrade refused: ${(res as http.IncomingMessage).statusCode} ${(res as http.IncomingMessage).headers['x-meshgate-flag'] ?? ''}`);
      });
      await Promise.race([opened, failed]);
      ws.send('ping');
      await waitFor(() => msgs.length >= 2, 5_000);
      assert.deepEqual(msgs, ['hello over tls', 'echo:ping']);
      assert.equal(encrypted, true);
    } finally {
      ws.terminate();
      await gw.stop();
      wss.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('active http health checks probe over TLS', { timeout: 10_000 }, async () => {
    let probes = 0;
    const up = await httpsUpstream({}, (req, res) => {
      if (req.url === '/health') {
        if ((req.socket as TLSSocket).encrypted) probes++;
        res.end('healthy');
        return;
      }
      describeHandler(req, res);
    });
    const gw = await startGateway(
      oneService(up.address, {
        tls: { sni: 'localhost', ca: certs.ca.cert },
        healthCheck: { type: 'http', path: '/health', intervalMs: 200, timeoutMs: 1_000, unhealthyThreshold: 1, healthyThreshold: 1 },
      }) as never,
    );
    try {
      await waitFor(() => probes >= 3, 5_000);
      const r = await getJson(`${gw.listenerUrl()}/after-probes`);
      assert.equal(r.status, 200, `the instance is still healthy: ${r.text}`);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('upstream TLS: verification failures are 502 UF with the reason in the access log', () => {
  const cases: Array<{ name: string; start: () => Promise<TlsUpstream>; tls: () => Record<string, unknown>; reason: RegExp }> = [
    {
      name: 'unknown CA',
      start: () => httpsUpstream({ key: certs.otherServer.keyPem, cert: certs.otherServer.certPem }, describeHandler),
      tls: () => ({ sni: 'localhost', ca: certs.ca.cert }),
      reason: /UNABLE_TO_VERIFY|SELF_SIGNED|unable to (get|verify)/i,
    },
    {
      name: 'wrong name',
      start: () => httpsUpstream({ key: certs.wrongName.keyPem, cert: certs.wrongName.certPem }, describeHandler),
      tls: () => ({ sni: 'localhost', ca: certs.ca.cert }),
      reason: /ALTNAME|does not match|hostname/i,
    },
    {
      name: 'wrong name (no IP SAN, no sni: the instance IP is checked)',
      start: () => httpsUpstream({ key: certs.wrongName.keyPem, cert: certs.wrongName.certPem }, describeHandler),
      tls: () => ({ ca: certs.ca.cert }),
      reason: /ALTNAME|does not match|hostname|IP/i,
    },
    {
      name: 'expired',
      start: () => httpsUpstream({ key: certs.expired.keyPem, cert: certs.expired.certPem }, describeHandler),
      tls: () => ({ sni: 'localhost', ca: certs.ca.cert }),
      reason: /CERT_HAS_EXPIRED|expired/i,
    },
    {
      name: 'client certificate required but not given',
      start: () => httpsUpstream({ requestCert: true, rejectUnauthorized: true, ca: certs.ca.certPem }, describeHandler),
      tls: () => ({ sni: 'localhost', ca: certs.ca.cert }),
      reason: /certificate.?required|CERTIFICATE_REQUIRED|handshake failure|bad certificate/i,
    },
    {
      name: 'the instance does not speak TLS',
      start: () => plainUpstream(),
      tls: () => ({ sni: 'localhost', ca: certs.ca.cert }),
      reason: /./,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: 502, x-meshgate-flag UF, upstreamError "tls: ..."`, { timeout: 10_000 }, async () => {
      const up = await c.start();
      const { gw, lines } = await gatewayWithLog(oneService(up.address, { tls: c.tls() }));
      try {
        const path = `/fail-${c.name.replace(/\W+/g, '-')}`;
        const r = await getJson(`${gw.listenerUrl()}${path}`);
        assert.equal(r.status, 502, r.text);
        assert.equal(r.headers['x-meshgate-flag'], 'UF');
        const line = await logLine(lines, path);
        assert.equal(line.flag, 'UF', JSON.stringify(line));
        assert.equal(typeof line.upstreamError, 'string', `no upstreamError: ${JSON.stringify(line)}`);
        const detail = line.upstreamError as string;
        assert.match(detail, /^tls:/, detail);
        assert.match(detail, c.reason, detail);
        // nothing was sent over an unverified (or plain) connection
        assert.equal(up.served, 0, 'the upstream answered a request');
      } finally {
        await gw.stop();
        await up.close();
      }
    });
  }

  it('a failed handshake is retried on another instance like a connect failure, counted by reason, and logged once per instance', { timeout: 10_000 }, async () => {
    const bad = await httpsUpstream({ key: certs.expired.keyPem, cert: certs.expired.certPem }, describeHandler);
    const good = await httpsUpstream({}, describeHandler);
    const cfg = oneService(bad.address, { tls: { sni: 'localhost', ca: certs.ca.cert }, retries: { attempts: 1, on: ['connect-failure'] } });
    (cfg.registries as Array<{ endpoints: string[] }>)[0]!.endpoints = [bad.address, good.address];
    const logged: string[] = [];
    const log = pino({ level: 'warn' }, { write: (l: string) => void logged.push(l) });
    const gw = await Gateway.start({ config: testConfig(cfg as never), log, accessLog: false });
    try {
      for (let i = 0; i < 10; i++) {
        const r = await getJson(`${gw.listenerUrl()}/retry-${i}`);
        assert.equal(r.status, 200, r.text);
      }
      assert.equal(bad.served, 0);
      assert.equal(good.served, 10);
      const metrics = await (await request(`${gw.adminUrl()}/metrics`)).body.text();
      const m = /meshgate_upstream_tls_failures_total\{service="up.static",reason="CERT_HAS_EXPIRED"\} (\d+)/.exec(metrics);
      assert.ok(m, metrics.split('\n').filter((l) => l.includes('tls')).join('\n'));
      assert.ok(Number(m[1]) >= 1);
      // Every other request tried the bad instance first; the warning names it once.
      const warnings = logged.filter((l) => l.includes('upstream TLS handshake'));
      assert.equal(warnings.length, 1, warnings.join(''));
      assert.match(warnings[0]!, new RegExp(`${bad.address}.*CERT_HAS_EXPIRED`));
    } finally {
      await gw.stop();
      await good.close();
      await bad.close();
    }
  });

  it('verify: false connects to a server the CA check would refuse', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({ key: certs.otherServer.keyPem, cert: certs.otherServer.certPem }, describeHandler);
    const gw = await startGateway(oneService(up.address, { tls: { sni: 'localhost', ca: certs.ca.cert, verify: false } }) as never);
    try {
      const r = await getJson(`${gw.listenerUrl()}/noverify`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.encrypted, true);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('upstream TLS: instances with metadata secure=true', () => {
  it('are reached over TLS without a tls: block, verified with the system CAs (a private CA is refused)', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({}, describeHandler);
    const { gw, lines } = await gatewayWithLog(oneService(`${up.address} secure=true`, {}));
    try {
      const r = await getJson(`${gw.listenerUrl()}/secure-meta`);
      // Plain HTTP to a TLS port would be a reset/protocol error, not a verification failure.
      assert.equal(r.status, 502, r.text);
      assert.equal(r.headers['x-meshgate-flag'], 'UF');
      const line = await logLine(lines, '/secure-meta');
      assert.match(String(line.upstreamError), /^tls:.*(UNABLE_TO_VERIFY|SELF_SIGNED|unable to (get|verify))/i, JSON.stringify(line));
      assert.equal(up.served, 0);
    } finally {
      await gw.stop();
      await up.close();
    }
  });

  it('succeed when the system CAs include the CA (NODE_EXTRA_CA_CERTS, meshgate start)', { timeout: 30_000 }, async () => {
    const up = await httpsUpstream({}, describeHandler);
    const port = await freePort();
    const adminPort = await freePort();
    const f = join(certs.dir, 'secure-meta.yaml');
    writeFileSync(
      f,
      stringify({
        listeners: [{ name: 'public', address: `127.0.0.1:${port}` }],
        admin: { address: `127.0.0.1:${adminPort}` },
        log: { level: 'warn', access: false },
        ...oneService(`${up.address} secure=true`, {}),
      }),
    );
    let output = '';
    const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--config', f], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.ca.cert },
    });
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    try {
      await waitFor(async () => {
        if (proc.exitCode !== null) throw new Error(`meshgate exited ${proc.exitCode}: ${output}`);
        const r = await request(`http://127.0.0.1:${adminPort}/readyz`, { reset: true }).catch(() => undefined);
        if (!r) return false;
        await r.body.dump();
        return r.statusCode === 200;
      }, 20_000, 100);
      const r = await getJson(`http://127.0.0.1:${port}/secure-meta-ok`);
      assert.equal(r.status, 200, `${r.text}\n${output}`);
      assert.equal(r.body.encrypted, true);
    } finally {
      if (proc.exitCode === null) {
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        await exited;
        clearTimeout(t);
      }
      await up.close();
    }
  });
});

describe('upstream TLS: mTLS and sessions', () => {
  it('mTLS: the upstream requiring a client certificate accepts the gateway and sees its subject', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({ requestCert: true, rejectUnauthorized: true, ca: certs.ca.certPem }, describeHandler);
    const gw = await startGateway(oneService(up.address, { tls: { sni: 'localhost', ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } }) as never);
    try {
      const r = await getJson(`${gw.listenerUrl()}/mtls`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.clientCN, 'meshgate-client');
    } finally {
      await gw.stop();
      await up.close();
    }
  });

  it('TLS sessions are resumed: a new connection per request makes few full handshakes', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({}, (req, res) => {
      res.writeHead(200, { connection: 'close', 'content-type': 'text/plain' });
      res.end(`ok ${(req.socket as TLSSocket).isSessionReused()}`);
    });
    const gw = await startGateway(oneService(up.address, { tls: { sni: 'localhost', ca: certs.ca.cert } }) as never);
    try {
      const n = 30;
      for (let i = 0; i < n; i++) {
        const r = await getJson(`${gw.listenerUrl()}/s/${i}`);
        assert.equal(r.status, 200, r.text);
      }
      await waitFor(() => up.full + up.reused >= n, 3_000);
      const total = up.full + up.reused;
      assert.ok(total >= n, `handshakes ${total}: connection: close should force a connection per request`);
      assert.ok(up.reused / total > 0.8, `full ${up.full}, resumed ${up.reused} of ${total}`);
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('upstream TLS: config', () => {
  const KEY = /services(\.up\.static|\["up\.static"\])\.tls\.ca/;

  it('a missing ca file: Gateway.start rejects naming services.up.static.tls.ca', { timeout: 10_000 }, async () => {
    const missing = join(certs.dir, 'nonexistent', 'ca.pem');
    await assert.rejects(
      async () => {
        const gw = await startGateway(oneService('127.0.0.1:9', { tls: { sni: 'localhost', ca: missing } }) as never);
        await gw.stop();
      },
      (e: Error) => {
        assert.match(e.message, KEY);
        return true;
      },
    );
  });

  it('meshgate validate: exit 1 with the key named on stderr', { timeout: 20_000 }, () => {
    const f = join(certs.dir, 'missing-ca.yaml');
    writeFileSync(f, stringify(oneService('127.0.0.1:9', { tls: { sni: 'localhost', ca: join(certs.dir, 'nonexistent', 'ca.pem') } })));
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'validate', f], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, KEY);
    // the same with files that exist is valid
    const g = join(certs.dir, 'good-ca.yaml');
    writeFileSync(g, stringify(oneService('127.0.0.1:9', { tls: { sni: 'localhost', ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } })));
    const good = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'validate', g], { encoding: 'utf8', timeout: 15_000 });
    assert.equal(good.status, 0, good.stderr);
  });

  it('reload: a new client certificate is used for new connections', { timeout: 10_000 }, async () => {
    const up = await httpsUpstream({ requestCert: true, rejectUnauthorized: true, ca: certs.ca.certPem }, (req, res) => {
      const body = JSON.stringify(describeConn(req));
      res.writeHead(200, { connection: 'close', 'content-type': 'application/json' });
      res.end(body);
    });
    const cfg = (client: { cert: string; key: string }): Record<string, unknown> => oneService(up.address, { tls: { sni: 'localhost', ca: certs.ca.cert, cert: client.cert, key: client.key } });
    const gw = await startGateway(cfg(certs.client) as never);
    try {
      const before = await getJson(`${gw.listenerUrl()}/before`);
      assert.equal(before.status, 200, before.text);
      assert.equal(before.body.clientCN, 'meshgate-client');
      // the same listener (address 127.0.0.1:0 as at start): it keeps its port
      const res = await gw.reload(testConfig(cfg(certs.client2) as never) as never);
      assert.equal(res.ok, true, JSON.stringify(res));
      for (let i = 0; i < 3; i++) {
        const r = await getJson(`${gw.listenerUrl()}/after/${i}`);
        assert.equal(r.status, 200, r.text);
        // a session resumed from the old certificate would still show the old subject
        assert.equal(r.body.clientCN, 'meshgate-client-2');
      }
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('upstream TLS: gRPC', () => {
  let server: grpc.Server;
  let port: number;
  let calls = 0;

  before(async () => {
    server = new grpc.Server();
    server.addService(EchoService, {
      unary(call: grpc.ServerUnaryCall<{ msg?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) {
        calls++;
        cb(null, { msg: call.request.msg, server: 'tls-echo' });
      },
      serverStream(call: grpc.ServerWritableStream<{ count: number }, unknown>) {
        for (let i = 0; i < call.request.count; i++) call.write({ i });
        call.end();
      },
      clientStream(_call: grpc.ServerReadableStream<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) {
        cb({ code: grpc.status.UNIMPLEMENTED, details: 'not here' });
      },
      bidi(call: grpc.ServerDuplexStream<{ msg: string }, unknown>) {
        call.on('data', (m: { msg: string }) => call.write({ echo: m.msg }));
        call.on('end', () => call.end());
      },
    });
    const creds = grpc.ServerCredentials.createSsl(Buffer.from(certs.ca.certPem), [{ private_key: Buffer.from(certs.server.keyPem), cert_chain: Buffer.from(certs.server.certPem) }], false);
    port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  });

  after(() => {
    server?.forceShutdown();
  });

  it('protocol grpc + tls: a plaintext grpc-js client calls a TLS grpc-js server through the gateway', { timeout: 10_000 }, async () => {
    const gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [`127.0.0.1:${port}`] }],
      services: { 'up.static': { protocol: 'grpc', timeoutMs: 5_000, tls: { sni: 'localhost', ca: certs.ca.cert } } },
      routes: [{ name: 'echo', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'up.static' }] }],
    } as never);
    const client = new EchoClient(gw.listenerUrl('public').replace(/^https?:\/\//, ''), grpc.credentials.createInsecure(), CLIENT_OPTIONS) as EchoClientT;
    try {
      const before = calls;
      const r = await unary(client, { msg: 'over tls' }, new grpc.Metadata(), { deadline: Date.now() + 5_000 });
      assert.equal(r.err, undefined, r.err?.message);
      assert.equal(r.res.msg, 'over tls');
      assert.equal(r.res.server, 'tls-echo');
      assert.equal(r.status!.code, grpc.status.OK);
      assert.equal(calls, before + 1);
      // a stream too
      const got: number[] = [];
      await new Promise<void>((resolve, reject) => {
        const s = client.serverStream({ count: 5 }, new grpc.Metadata(), { deadline: Date.now() + 5_000 });
        s.on('data', (m: { i: number }) => got.push(m.i));
        s.on('error', reject);
        s.on('end', () => resolve());
      });
      assert.deepEqual(got, [0, 1, 2, 3, 4]);
    } finally {
      client.close();
      await gw.stop();
    }
  });
});
