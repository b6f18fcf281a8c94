// Downstream listeners.
//   http:  HTTP/1.1 and h2c (prior knowledge) on one port. A plain TCP server
//          reads the first bytes of each connection: the HTTP/2 connection
//          preface goes to an HTTP/2 server, anything else to the HTTP/1.1 server.
//   https: TLS with a certificate per host (SNI, wildcard hosts), ALPN h2 and
//          http/1.1, handed to the same two servers after the handshake.
// The HTTP/1.1 server is meshgate's own (h1server.ts); HTTP/2 is node:http2.
// Both feed the same Pipeline (HTTP/2 through the compat API).
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { parseHostPort } from '../discovery/types.js';
import { H1Server } from './h1server.js';
import type { Pipeline } from './pipeline.js';

export interface RunningListener {
  readonly name: string;
  readonly config: ListenerConfig;
  /** The accepting server (net.Server for http, tls.Server for https). */
  readonly server: net.Server;
  address(): AddressInfo;
  /** Stop accepting; let requests in flight finish (up to graceMs), then close idle connections. */
  close(graceMs?: number): Promise<void>;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** A connection that sends nothing recognisable within this time is dropped. */
const SNIFF_TIMEOUT_MS = 30_000;

type Scheme = 'http' | 'https';

// ---------- TLS: certificates per host ----------

interface CertEntry {
  hosts: string[];
  context: tls.SecureContext;
  key: string;
  cert: string;
}

/**
 * SNI lookup: exact host first, then a wildcard "*.example.com" covering one
 * label (a.example.com, not a.b.example.com), then the first certificate.
 */
export class CertificateStore {
  private readonly exact = new Map<string, tls.SecureContext>();
  private readonly wildcard = new Map<string, tls.SecureContext>();
  readonly fallback: CertEntry;

  constructor(certs: ReadonlyArray<{ hosts: string[]; cert: string; key: string }>, where = 'tls.certificates') {
    const entries: CertEntry[] = certs.map((c, i) => {
      let cert: string;
      let key: string;
      try {
        cert = readFileSync(c.cert, 'utf8');
        key = readFileSync(c.key, 'utf8');
      } catch (e) {
        throw new Error(`${where}[${i}]: ${(e as Error).message}`);
      }
      let context: tls.SecureContext;
      try {
        context = tls.createSecureContext({ cert, key });
      } catch (e) {
        throw new Error(`${where}[${i}]: bad certificate or key: ${(e as Error).message}`);
      }
      return { hosts: c.hosts, context, cert, key };
    });
    if (!entries.length) throw new Error(`${where}: at least one certificate is required`);
    for (const e of entries) {
      for (const h of e.hosts) {
        const host = h.toLowerCase();
        if (host.startsWith('*.')) {
          if (!this.wildcard.has(host.slice(2))) this.wildcard.set(host.slice(2), e.context);
        } else if (!this.exact.has(host)) this.exact.set(host, e.context);
      }
    }
    this.fallback = entries[0]!;
  }

  /** The context for a server name, undefined = the default (first) certificate. */
  lookup(servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const hit = this.exact.get(name);
    if (hit) return hit;
    const dot = name.indexOf('.');
    if (dot > 0) return this.wildcard.get(name.slice(dot + 1));
    return undefined;
  }
}

// ---------- the two protocol servers ----------

interface ProtocolServers {
  h1: H1Server;
  h2: http2.Http2Server;
  sessions: Set<http2.ServerHttp2Session>;
}

function protocolServers(config: ListenerConfig, pipeline: Pipeline, scheme: Scheme): ProtocolServers {
  const trust = config.trustForwarded;
  const h1 = new H1Server({
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    // Expect: 100-continue is answered by the pipeline once the request is routed and admitted.
    onRequest: (req, res) => pipeline.handle(req, res, scheme, trust),
    onUpgrade: (req, socket, head) => pipeline.handleUpgrade(req, socket, head, scheme, trust),
    onRefused: (status, reason, socket) => pipeline.refused(status, reason, socket.remoteAddress),
  });

  const h2 = http2.createServer({
    maxSessionMemory: 64,
    settings: {
      maxHeaderListSize: config.maxHeaderBytes,
      // Larger stream windows than the 64 KiB default: throughput for streams,
      // memory stays bounded by the window.
      initialWindowSize: 1 << 20,
    },
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => undefined);
    // Idle sessions are closed gracefully (GOAWAY; streams in flight finish).
    session.setTimeout(config.keepAliveTimeoutMs, () => session.close());
  });
  h2.on('request', (req, res) => pipeline.handle(req, res, scheme, trust));
  h2.on('checkContinue', (req, res) => pipeline.handle(req, res, scheme, trust));
  h2.on('sessionError', () => undefined);
  return { h1, h2, sessions };
}

/** Hand a fresh plain-TCP connection to h2 or h1 by its first bytes. */
function sniff(socket: net.Socket, servers: ProtocolServers): void {
  let buf: Buffer | undefined;
  const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS);
  const cleanup = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', onClose);
  };
  const onError = (): void => {
    cleanup();
    socket.destroy();
  };
  const onClose = (): void => cleanup();
  const onData = (chunk: Buffer): void => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    const n = Math.min(buf.length, PREFACE.length);
    const h2 = buf.compare(PREFACE, 0, n, 0, n) === 0;
    if (h2 && buf.length < PREFACE.length) return; // a prefix of the preface: need more
    cleanup();
    socket.pause();
    if (h2) {
      // The HTTP/2 session reads bytes already buffered on the socket itself.
      socket.unshift(buf);
      servers.h2.emit('connection', socket);
    } else servers.h1.connection(socket, buf);
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', onClose);
}

function listen(server: net.Server, address: string): Promise<void> {
  const { host, port } = parseHostPort(address);
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: false }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export async function startListener(config: ListenerConfig, pipeline: Pipeline): Promise<RunningListener> {
  let server: net.Server;
  let servers: ProtocolServers;
  if (config.protocol === 'https') {
    if (!config.tls) throw new Error(`listeners.${config.name}.tls: an https listener needs tls.certificates`);
    const certs = new CertificateStore(config.tls.certificates, `listeners.${config.name}.tls.certificates`);
    servers = protocolServers(config, pipeline, 'https');
    const tlsServer = tls.createServer({
      key: certs.fallback.key,
      cert: certs.fallback.cert,
      ALPNProtocols: ['h2', 'http/1.1'],
      SNICallback: (servername, cb) => cb(null, certs.lookup(servername)),
      // Leave the handshake's 120 s default alone; idle connections are timed out by the protocol servers.
    });
    tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
      if (socket.alpnProtocol === 'h2') servers.h2.emit('connection', socket);
      else servers.h1.connection(socket);
    });
    tlsServer.on('tlsClientError', (_err, socket) => socket.destroy());
    server = tlsServer;
  } else {
    servers = protocolServers(config, pipeline, 'http');
    server = net.createServer({ noDelay: true }, (socket) => sniff(socket, servers));
  }
  await listen(server, config.address);
  const { h1, sessions } = servers;
  return {
    name: config.name,
    config,
    server,
    address: () => server.address() as AddressInfo,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        let pending = 2;
        let timer: NodeJS.Timeout | undefined;
        const one = (): void => {
          if (--pending === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
        // Stop accepting; the callback fires once every connection is gone.
        server.close(() => one());
        // HTTP/1.1: close idle keep-alive connections now, busy ones after their response.
        h1.close();
        // HTTP/2: GOAWAY; the session closes after its streams in flight finish.
        for (const s of sessions) s.close();
        one();
        timer = setTimeout(() => {
          h1.closeAllConnections();
          for (const s of sessions) s.destroy();
          resolve();
        }, graceMs);
        timer.unref();
      }),
  };
}
