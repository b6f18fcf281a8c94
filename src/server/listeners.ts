// Downstream listeners.
//   http:  HTTP/1.1 and h2c (prior knowledge) on one port. A plain TCP server
//          reads the first bytes of each connection: the HTTP/2 connection
//          preface goes to an HTTP/2 server, anything else to the HTTP/1.1 server.
//   https: TLS with a certificate per host (SNI, wildcard hosts), ALPN h2 and
//          http/1.1, handed to the same two servers after the handshake.
// The HTTP/1.1 server is meshgate's own (h1server.ts); HTTP/2 is node:http2.
// Both feed the same Pipeline (HTTP/2 through its stream API: h2-exchange.ts).
// HTTP/2 connections are watched by h2-guard.ts: malformed fields, rapid reset.
// Lifecycle: one listening socket per address, whatever the protocol (a TLS
// server that does not listen takes https connections from it). A reload that
// keeps the address keeps the socket and its connections (prepare, then apply
// in place); see listener-set.ts.
import { readFileSync } from 'node:fs';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { parseHostPort } from '../discovery/types.js';
import { H2Request, H2Response, takesTrailers } from './h2-exchange.js';
import { FrameTap, SessionGuard } from './h2-guard.js';
import { H1Server } from './h1server.js';
import { clientTrust, type ClientTrust, type Pipeline } from './pipeline.js';
import { SendWatch, StreamSendWatch, sweepEveryMs } from './send-watch.js';

export interface RunningListener {
  /** The current settings' name (a reload may rename a listener that keeps its address). */
  readonly name: string;
  /** The settings it serves with now; prepare() may change them in place. */
  readonly config: ListenerConfig;
  /** The listening socket's server: one per address, whatever the protocol (http or https). */
  readonly server: net.Server;
  address(): AddressInfo;
  /**
   * Check what `next` (same address) needs, certificates included, and return
   * the function that applies it in place, keeping the socket: new connections
   * get every new setting; connections already open keep their socket, the
   * keep-alive timeout they announced and their protocol, and their next
   * requests get trustForwarded, trustedProxies and the HTTP/1.1 limits the server reads per
   * request (header and body timeouts). Throws naming `where`, having changed nothing.
   */
  prepare(next: ListenerConfig, where: string): () => void;
  /** Hand connections to the protocol servers (a listener started with `hold` queues them until then). */
  serve(): void;
  /** Stop accepting; let requests in flight finish (up to graceMs), then close what is left. */
  close(graceMs?: number): Promise<void>;
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** A connection that sends nothing recognisable within this time (or the listener's keep-alive timeout, if shorter) is dropped. */
const SNIFF_TIMEOUT_MS = 30_000;

type Scheme = 'http' | 'https';

/** What the protocol servers call: the pipeline, with the listener's current trustForwarded and trustedProxies. */
type RequestSink = Pick<Pipeline, 'handle' | 'handleUpgrade' | 'refused'>;

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

/** A stream waiting for its dispatch turn. */
interface QueuedStream {
  stream: http2.ServerHttp2Stream;
  headers: http2.IncomingHttpHeaders;
  rawHeaders: string[];
  /** The connection as accepted (net or TLS): the peer's address. */
  socket: net.Socket;
}

interface ProtocolServers {
  h1: H1Server;
  h2: http2.Http2Server;
  /** The guards of the open HTTP/2 sessions: the sessions, and their streams for the send timeout. */
  guards: Set<SessionGuard>;
  /** Give the HTTP/2 server a connection: h2c with the bytes the sniffer read, or TLS that chose h2. */
  acceptH2(socket: net.Socket, buffered?: Buffer): void;
}

/** A request whose stream the client already reset (in the same read as its HEADERS) is never dispatched. */
function dispatchH2(pipeline: RequestSink, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[], socket: net.Socket, scheme: Scheme, trust: ClientTrust): void {
  if (stream.closed || stream.destroyed) return;
  const res = new H2Response(stream, takesTrailers(headers));
  const method = headers[':method'];
  // What node:http2's compat layer answered itself: CONNECT (not enabled) and expectations other than 100-continue.
  const expect = headers.expect;
  if (method === 'CONNECT' || (expect !== undefined && expect.toLowerCase() !== '100-continue')) {
    const status = method === 'CONNECT' ? 405 : 417;
    res.writeHead(status, { 'content-length': '0' });
    res.end();
    pipeline.refused(status, method === 'CONNECT' ? 'CONNECT is not supported' : `unsupported expectation: ${expect}`, socket.remoteAddress);
    return;
  }
  pipeline.handle(new H2Request(stream, headers, rawHeaders, socket), res, scheme, trust);
}

function protocolServers(config: ListenerConfig, pipeline: RequestSink, scheme: Scheme): ProtocolServers {
  const trust = clientTrust(config);
  const h1 = new H1Server({
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    headersTimeoutMs: config.headersTimeoutMs,
    bodyTimeoutMs: config.bodyTimeoutMs,
    maxHeaderBytes: config.maxHeaderBytes,
    // Expect: 100-continue is answered by the pipeline once the request is routed and admitted.
    onRequest: (req, res) => pipeline.handle(req, res, scheme, trust),
    onUpgrade: (req, socket, head) => pipeline.handleUpgrade(req, socket, head, scheme, trust),
    onRefused: (status, reason, socket) => pipeline.refused(status, reason, socket.remoteAddress),
  });

  const limits = config.http2;
  const h2 = http2.createServer({
    maxSessionMemory: limits.maxSessionMemoryMb,
    settings: {
      maxHeaderListSize: config.maxHeaderBytes,
      maxConcurrentStreams: limits.maxConcurrentStreams,
      // Larger stream windows than the 64 KiB default: throughput for streams,
      // memory stays bounded by the window.
      initialWindowSize: 1 << 20,
    },
  });
  const guards = new Set<SessionGuard>();
  // The guard of the connection being handed over: node:http2 announces its session synchronously.
  let handing: SessionGuard | undefined;
  // One event-loop turn later: the rest of the read (a RST_STREAM right behind the HEADERS) is processed first.
  // The requests of a turn wait in one queue behind one setImmediate, not one each.
  let queued: QueuedStream[] = [];
  const runQueued = (): void => {
    const q = queued;
    queued = [];
    for (const e of q) dispatchH2(pipeline, e.stream, e.headers, e.rawHeaders, e.socket, scheme, trust);
  };
  h2.on('session', (session: http2.ServerHttp2Session) => {
    const guard = handing;
    handing = undefined;
    session.on('error', () => undefined);
    // Every connection comes through acceptH2, which names its guard.
    if (!guard) return void session.destroy();
    guards.add(guard);
    const release = (): void => {
      guards.delete(guard);
      guard.release();
    };
    session.once('close', release);
    guard.attach(session);
    // Idle sessions are closed gracefully (GOAWAY) after keepAliveTimeoutMs without an open stream.
    guard.idleAfter(config.keepAliveTimeoutMs);
    guard.socket.once('close', release);
    const socket = guard.socket;
    // Requests are served on the stream API (h2-exchange.ts), not node:http2's compat layer.
    // Streams reset in the read that opened them come here already closed, without a session.
    session.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      // A stream's error (a reset, a write after the client left) must never go unheard.
      stream.on('error', ignore);
      guard.onStream(stream);
      if (stream.closed || stream.destroyed) return;
      if (queued.length === 0) setImmediate(runQueued);
      queued.push({ stream, headers, rawHeaders, socket });
    });
  });
  h2.on('sessionError', () => undefined);
  const acceptH2 = (socket: net.Socket, buffered?: Buffer): void => {
    const guard = new SessionGuard(limits, socket, limits.rejectMalformedFields);
    handing = guard;
    if (limits.rejectMalformedFields) h2.emit('connection', new FrameTap(socket, buffered, guard.onMalformed));
    else {
      // The HTTP/2 session reads bytes already buffered on the socket itself.
      if (buffered) socket.unshift(buffered);
      h2.emit('connection', socket);
    }
    handing = undefined;
  };
  return { h1, h2, guards, acceptH2 };
}

/** Hand a fresh plain-TCP connection to h2 or h1 by its first bytes. */
function sniff(socket: net.Socket, servers: ProtocolServers, idleMs: number): void {
  let buf: Buffer | undefined;
  // A connection that says nothing is an idle one: it gets no longer than an idle keep-alive connection.
  const timer = setTimeout(() => socket.destroy(), Math.min(idleMs, SNIFF_TIMEOUT_MS));
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
    if (h2) servers.acceptH2(socket, buf);
    else servers.h1.connection(socket, buf);
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

/** An address as a socket sees it, for "is this the same socket": lower-case host, port. */
export function listenKey(address: string): string {
  const { host, port } = parseHostPort(address);
  return `${host.toLowerCase()}:${port}`;
}

const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this host',
};

/**
 * The protocol side of a listener for one set of settings. A connection stays
 * with the front that accepted it; a settings change makes a new front for new
 * connections and keeps the old one until its connections are gone.
 */
interface Front {
  readonly config: ListenerConfig;
  readonly servers: ProtocolServers;
  readonly tls: tls.Server | undefined;
  readonly certs: CertificateStore | undefined;
  /** Raw sockets this front accepted that are still open. */
  readonly sockets: Set<net.Socket>;
}

function makeFront(config: ListenerConfig, pipeline: RequestSink, where: string, previous: Front | undefined): Front {
  if (config.protocol !== 'https') return { config, servers: protocolServers(config, pipeline, 'http'), tls: undefined, certs: undefined, sockets: new Set() };
  if (!config.tls) throw new Error(`${where}.tls: an https listener needs tls.certificates`);
  // Certificates are read again only when their settings changed.
  const certs =
    previous?.certs && JSON.stringify(previous.config.tls) === JSON.stringify(config.tls)
      ? previous.certs
      : new CertificateStore(config.tls.certificates, `${where}.tls.certificates`);
  const servers = protocolServers(config, pipeline, 'https');
  // Not listening: the listener's socket hands it connections.
  const tlsServer = tls.createServer({
    key: certs.fallback.key,
    cert: certs.fallback.cert,
    ALPNProtocols: ['h2', 'http/1.1'],
    SNICallback: (servername, cb) => cb(null, certs.lookup(servername)),
    // Leave the handshake's 120 s default alone; idle connections are timed out by the protocol servers.
  });
  // Sessions resume across a settings change.
  if (previous?.tls) tlsServer.setTicketKeys(previous.tls.getTicketKeys());
  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol === 'h2') servers.acceptH2(socket);
    else servers.h1.connection(socket);
  });
  tlsServer.on('tlsClientError', (_err, socket) => socket.destroy());
  return { config, servers, tls: tlsServer, certs, sockets: new Set() };
}

/** Per-request HTTP/1.1 limits an open connection takes from newer settings (not its announced keep-alive). */
function carryRequestLimits(from: H1Server, to: H1Server): void {
  const target = to.opts as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(from.opts)) if (typeof v === 'number' && k !== 'keepAliveTimeoutMs' && k in target) target[k] = v;
}

/** The pipeline as protocol servers see it: trustForwarded and trustedProxies come from the listener's current settings at each request. */
function settingsAware(pipeline: Pipeline, settings: () => ListenerConfig): RequestSink {
  let compiledFor: ListenerConfig | undefined;
  let trust: ClientTrust | undefined;
  const current = (): ClientTrust => {
    const s = settings();
    if (s !== compiledFor || trust === undefined) {
      trust = clientTrust(s);
      compiledFor = s;
    }
    return trust;
  };
  return {
    handle: (req, res, scheme) => pipeline.handle(req, res, scheme, current()),
    handleUpgrade: (req, socket, head, scheme) => pipeline.handleUpgrade(req, socket, head, scheme, current()),
    refused: (status, reason, client) => pipeline.refused(status, reason, client),
  };
}

const sameExceptName = (a: ListenerConfig, b: ListenerConfig): boolean => JSON.stringify({ ...a, name: '' }) === JSON.stringify({ ...b, name: '' });
const ignore = (): void => undefined;

/**
 * Bind a listener. With `hold`, connections accepted before serve() wait
 * (unread) so that a listener bound while a new config is prepared serves only
 * once that config does. Throws naming `where` (certificates, or the address
 * and why it cannot be bound).
 */
export async function startListener(config: ListenerConfig, pipeline: Pipeline, opts: { hold?: boolean; where?: string } = {}): Promise<RunningListener> {
  const where = opts.where ?? `listeners.${config.name}`;
  let settings = config;
  const view = settingsAware(pipeline, () => settings);
  let front = makeFront(config, view, where, undefined);
  const fronts = new Set<Front>([front]);
  let held: net.Socket[] | undefined = opts.hold ? [] : undefined;

  // Connections whose client stopped reading: closed after sendTimeoutMs (send-watch.ts).
  const sends = new SendWatch();
  const streamSends = new StreamSendWatch();
  let sweepTimer: NodeJS.Timeout | undefined;
  const armSweep = (): void => {
    sweepTimer = setTimeout(sweep, sweepEveryMs(settings.sendTimeoutMs));
    sweepTimer.unref();
  };
  const sweep = (): void => {
    const now = performance.now();
    const limit = settings.sendTimeoutMs;
    for (const f of fronts) {
      sends.sweep(f.sockets, limit, now);
      for (const g of f.servers.guards) streamSends.sweep(g, limit, now);
    }
    armSweep();
  };
  armSweep();

  const retireIdleFronts = (): void => {
    for (const f of fronts) if (f !== front && f.sockets.size === 0) fronts.delete(f);
  };
  const dispatch = (socket: net.Socket): void => {
    const f = front;
    f.sockets.add(socket);
    socket.once('close', () => {
      f.sockets.delete(socket);
      if (f !== front && f.sockets.size === 0) fronts.delete(f);
    });
    if (f.tls) f.tls.emit('connection', socket);
    else sniff(socket, f.servers, settings.keepAliveTimeoutMs);
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    if (!held) return dispatch(socket);
    socket.on('error', ignore);
    held.push(socket);
  });
  // net.Server closes a connection over the cap as soon as it is accepted; read at each accept, so new settings apply at once.
  Object.defineProperty(server, 'maxConnections', { get: () => settings.maxConnections, set: ignore, configurable: true });
  try {
    await listen(server, config.address);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    clearTimeout(sweepTimer);
    const why = err.code && BIND_ERRORS[err.code] ? `${BIND_ERRORS[err.code]} (${err.code})` : err.message;
    throw new Error(`${where}: cannot listen on ${config.address} (listener "${config.name}"): ${why}`);
  }
  return {
    get name() {
      return settings.name;
    },
    get config() {
      return settings;
    },
    server,
    address: () => server.address() as AddressInfo,
    prepare(next, at) {
      if (listenKey(next.address) !== listenKey(settings.address)) throw new Error(`${at}.address: ${next.address} is not the address of listener "${settings.name}"`);
      if (sameExceptName(next, settings)) return () => void (settings = next);
      const fresh = makeFront(next, view, at, front);
      return () => {
        for (const f of fronts) carryRequestLimits(fresh.servers.h1, f.servers.h1);
        fronts.add(fresh);
        front = fresh;
        settings = next;
        retireIdleFronts();
      };
    },
    serve() {
      const queue = held ?? [];
      held = undefined;
      for (const s of queue) {
        s.off('error', ignore);
        if (!s.destroyed) dispatch(s);
      }
    },
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        for (const s of held ?? []) s.destroy();
        if (held) held = [];
        let timer: NodeJS.Timeout | undefined;
        // Stop accepting; the callback fires once every connection is gone.
        server.close(() => {
          clearTimeout(timer);
          clearTimeout(sweepTimer);
          resolve();
        });
        for (const f of fronts) {
          // HTTP/1.1: close idle keep-alive connections now, busy ones after their response.
          f.servers.h1.close();
          // HTTP/2: GOAWAY; the session closes after its streams in flight finish.
          for (const g of f.servers.guards) g.session?.close();
        }
        timer = setTimeout(() => {
          for (const f of fronts) {
            f.servers.h1.closeAllConnections();
            for (const g of f.servers.guards) g.session?.destroy();
            // Connections still being sniffed or in a TLS handshake, and upgraded ones.
            for (const s of f.sockets) s.destroy();
          }
          clearTimeout(sweepTimer);
          resolve();
        }, graceMs);
        timer.unref();
      }),
  };
}
