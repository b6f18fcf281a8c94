// HTTP/1.1 upstream adapter: a keep-alive connection pool per instance
// (src/upstreams/h1client.ts), bodies streamed both ways with backpressure,
// never buffered. WebSocket upgrades go through an undici Pool.
import type { Duplex } from 'node:stream';
import { Readable } from 'node:stream';
import { Pool, type Dispatcher } from 'undici';
import type { Cluster } from '../balancing/cluster.js';
import type { Instance } from '../balancing/instance.js';
import { closePoolsWhere, describeTlsError, tlsConnectOptions, tlsPoolKey, upstreamTlsFor } from '../balancing/tls.js';
import type { Exchange } from '../exchange/exchange.js';
import { H1Pool, UpstreamConnectionError, type H1Handler, type H1Request, type ResponseHeaders } from './h1client.js';
import { addGatewayResponseHeaders, applyHeaderOpsToList, connectionTokens, HOP_BY_HOP } from './headers.js';
import { AttemptTimeoutError, type AttemptOptions, type AttemptReport, type ResponseSink, type UpstreamAdapter } from './types.js';
import type { FailureKind } from '../exchange/outcome.js';
import { requestHasBody } from '../exchange/exchange.js';
import { bodyCut } from '../exchange/body.js';

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'MESHGATE_CONNECT_TIMEOUT',
  'MESHGATE_TLS_HANDSHAKE',
  // The instance left the service while the attempt was starting: nothing was sent, another instance may serve it.
  'MESHGATE_POOL_CLOSED',
]);

const closeQuietly = (p: { close(): Promise<unknown> }): void => void p.close().catch(() => undefined);

export function classifyError(err: unknown, headersSeen: boolean): FailureKind {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  if (e instanceof AttemptTimeoutError) return 'timeout';
  const code = e?.code ?? e?.cause?.code ?? '';
  if (code === 'MESHGATE_ABORTED' || e?.name === 'AbortError') return 'aborted';
  if (!headersSeen && CONNECT_CODES.has(code)) return 'connect-failure';
  // A TLS handshake that failed (HTTP/2 sessions report the handshake's own error): nothing reached the upstream.
  if (!headersSeen && (describeTlsError(e) !== undefined || describeTlsError(e?.cause) !== undefined)) return 'connect-failure';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code.startsWith('HPE_') || code === 'UND_ERR_INFO' || code === 'MESHGATE_BAD_RESPONSE' || code === 'MESHGATE_BAD_REQUEST') return 'protocol';
  return 'reset';
}

class AbortedError extends Error {
  readonly code = 'MESHGATE_ABORTED';
  constructor() {
    super('request aborted');
  }
}

/** Swallows an 'error' that has already been dealt with elsewhere. */
const ignoreError = (): void => undefined;

/**
 * The request body as the upstream client reads it. It attaches to the
 * client's request only when the upstream client starts reading (after the
 * upstream connection is up), so an attempt that fails to connect leaves the
 * body untouched for a retry, and destroying it never destroys the client's
 * socket.
 *
 * A client that goes away mid-body destroys this stream with an
 * AbortedError. That may happen while no consumer listens (before the
 * upstream client attached it, or after it let go of it): the stream keeps an
 * 'error' listener of its own for its whole life, so an abort never becomes an
 * unhandled 'error'. The attempt learns of the abort through the upstream
 * client's body listener or through the exchange's cancellation.
 */
class LazyBody extends Readable {
  started = false;
  private attached = false;
  constructor(
    private readonly src: Readable,
    private readonly ex: Exchange,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.on('error', ignoreError);
  }
  private readonly onData = (chunk: Buffer): void => {
    this.ex.bytesIn += chunk.length;
    if (!this.push(chunk)) this.src.pause();
  };
  private readonly onEnd = (): void => {
    // An HTTP/2 request ends its stream when the client resets it: that end is not the body's.
    if (bodyCut(this.src)) this.destroy(new AbortedError());
    else this.push(null);
  };
  private readonly onError = (err: Error): void => {
    this.destroy(err);
  };
  private readonly onAborted = (): void => {
    this.destroy(new AbortedError());
  };
  override _read(): void {
    this.started = true;
    if (!this.attached) {
      if (this.src.readableEnded) {
        this.push(null);
        return;
      }
      // Gone before the upstream asked for the body: no event would ever come.
      if (bodyCut(this.src)) {
        this.destroy(new AbortedError());
        return;
      }
      this.attached = true;
      this.src.on('data', this.onData);
      this.src.once('end', this.onEnd);
      this.src.once('error', this.onError);
      this.src.once('aborted', this.onAborted);
    }
    this.src.resume();
  }
  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.detach();
    cb(err);
  }
  detach(): void {
    if (!this.attached) return;
    this.src.off('data', this.onData);
    this.src.off('end', this.onEnd);
    this.src.off('error', this.onError);
    this.src.off('aborted', this.onAborted);
    this.attached = false;
  }
}

/**
 * The protocols an Upgrade header asks for, without h2c; undefined when none
 * is left. h2c is never forwarded: RFC 9113 3.1 deprecates the h2c upgrade,
 * and RFC 9110 7.8 lets a server ignore Upgrade, so such a request is served
 * as the plain HTTP/1.1 request it also is.
 */
export function upgradeProtocols(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  const list = (Array.isArray(v) ? v.join(',') : v)
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0 && t.toLowerCase() !== 'h2c');
  return list.length > 0 ? list.join(', ') : undefined;
}

/** An upstream response's end-to-end headers: hop-by-hop ones and those its Connection header names left out. */
function endToEndHeaders(h: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const conn = h.connection;
  const named = connectionTokens(Array.isArray(conn) ? conn.join(', ') : conn);
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in h) {
    if (HOP_BY_HOP.has(k) || named?.has(k)) continue;
    out[k] = h[k];
  }
  return out;
}

export function upstreamHostHeader(ex: Exchange, inst: Instance, cluster: Cluster): string {
  if (ex.upstreamHost !== undefined) return ex.upstreamHost;
  const policy = cluster.config.host;
  if (policy === 'keep') return ex.req.headers.host ?? (ex.req.headers[':authority'] as string | undefined) ?? inst.id;
  if (policy === 'upstream') return inst.id;
  return policy;
}

/** Request headers for upstream: client's headers minus hop-by-hop, plus forwarded headers. */
export function buildRequestHeaders(ex: Exchange, inst: Instance, cluster: Cluster): string[] {
  const trustForwarded = ex.trustForwarded;
  const raw = ex.req.rawHeaders;
  const extra = connectionTokens(ex.req.headers.connection);
  const out: string[] = [];
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  let teTrailers = false;
  let tracestate: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* ':' */) continue; // HTTP/2 pseudo-headers
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === 'te' && /\btrailers\b/i.test(raw[i + 1]!)) teTrailers = true;
      continue;
    }
    if (extra !== undefined && extra.has(lower)) continue;
    switch (lower) {
      case 'host':
      case 'expect':
      case 'x-request-id':
        continue;
      case 'traceparent':
      case 'tracestate':
        // With tracing on, the attempt's own span is the upstream's parent (tracestate goes with it).
        if (ex.traceparent !== undefined) {
          if (lower === 'tracestate') tracestate = raw[i + 1];
          continue;
        }
        break;
      case 'x-forwarded-for':
        if (trustForwarded) xff = xff ? `${xff}, ${raw[i + 1]}` : raw[i + 1];
        continue;
      case 'x-forwarded-proto':
        if (trustForwarded) xfProto = raw[i + 1];
        continue;
      case 'x-forwarded-host':
        if (trustForwarded) xfHost = raw[i + 1];
        continue;
    }
    out.push(name, raw[i + 1]!);
  }
  out.push('host', upstreamHostHeader(ex, inst, cluster));
  out.push('x-forwarded-for', xff ? `${xff}, ${ex.peerIp}` : ex.peerIp);
  out.push('x-forwarded-proto', xfProto ?? ex.scheme);
  if (ex.host) out.push('x-forwarded-host', xfHost ?? ex.host);
  out.push('x-request-id', ex.requestId);
  if (ex.traceparent !== undefined) {
    out.push('traceparent', ex.traceparent);
    if (tracestate !== undefined) out.push('tracestate', tracestate);
  }
  if (teTrailers) out.push('te', 'trailers');
  if (ex.requestHeaderOps.length) applyHeaderOpsToList(out, ex.requestHeaderOps);
  return out;
}

/**
 * One attempt: the request handler and its state in one object (one
 * allocation per attempt rather than a closure per callback). It reports the
 * response to the attempt's sink and never writes to the client itself.
 */
class HttpAttempt implements H1Handler {
  private readonly started = performance.now();
  req: H1Request | undefined;
  private headersSeen = false;
  /** The status is held back for a retry: the response is dropped. */
  private held = false;
  private done = false;
  private headersMs: number | undefined;
  private status: number | undefined;
  /**
   * The request went out on a connected socket: from here on, a failure may
   * leave the upstream having acted on it (never replay non-idempotent requests).
   */
  private sent = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onAbort = (): void => this.abortWith(new AbortedError());
  private onDrain: (() => void) | undefined;
  private readonly sink: ResponseSink;

  constructor(
    private readonly opts: AttemptOptions,
    private readonly resolve: (o: AttemptReport) => void,
    readonly body: LazyBody | null,
  ) {
    this.sink = opts.sink;
    this.timer = setTimeout(() => {
      if (!this.headersSeen) this.abortWith(new AttemptTimeoutError(opts.timeoutMs));
    }, opts.timeoutMs);
    opts.signal.addEventListener('abort', this.onAbort);
  }

  finish(report: Omit<AttemptReport, 'reachedUpstream'>): void {
    if (this.done) return;
    const o = report as AttemptReport;
    this.done = true;
    clearTimeout(this.timer);
    this.opts.signal.removeEventListener('abort', this.onAbort);
    const body = this.body;
    if (body && !body.started) body.detach();
    // Completes the caller's literal rather than copying it (no spread per request).
    o.reachedUpstream = this.headersSeen || this.sent || (body?.started ?? false);
    o.headersMs = this.headersMs;
    this.resolve(o);
  }

  private abortWith(err: Error): void {
    // A request still waiting for a connection is answered at once; one on a connection closes it.
    this.req?.abort(err);
  }

  onRequestSent(): void {
    this.sent = true;
  }

  onResponseStart(statusCode: number, headers: ResponseHeaders): void {
    this.headersSeen = true;
    this.status = statusCode;
    this.headersMs = performance.now() - this.started;
    // The client leaves hop-by-hop headers out; the object is this response's own.
    const r = this.sink.head(statusCode, headers);
    if (r === undefined) return;
    if (r === 'hold') this.held = true;
    this.abortWith(r === 'hold' ? new AbortedError() : r);
  }

  onResponseData(chunk: Buffer): void {
    // The attempt already ended (it failed while the client was still delivering this read).
    if (this.done) return;
    const r = this.sink.data(chunk);
    if (r === true) return;
    if (r === false) {
      const req = this.req!;
      req.pause();
      this.onDrain ??= () => req.resume();
      this.sink.onDrain(this.onDrain);
      return;
    }
    this.abortWith(r);
  }

  onResponseEnd(trailers: ResponseHeaders | undefined): void {
    // An attempt that failed inside onResponseData may still hear of the end of the read that carried it.
    if (this.done) return;
    const err = this.sink.end(trailers);
    // The request is already complete on the client's side: a head refused now fails the attempt here.
    if (err) this.finish({ status: this.status, failure: 'protocol', error: err });
    else this.finish({ status: this.status });
  }

  onResponseError(err: Error): void {
    if (this.held) {
      this.finish({ status: this.status });
      return;
    }
    this.sink.broken(err);
    this.finish({ status: this.status, failure: classifyError(err, this.headersSeen), error: err });
  }
}

export interface HttpAdapterOptions {
  keepAliveTimeoutMs?: number;
}

export class HttpAdapter implements UpstreamAdapter {
  readonly protocol = 'http';
  private readonly pools = new Map<string, H1Pool>();
  /** undici pools, for WebSocket upgrades only. */
  private readonly upgradePools = new Map<string, Pool>();

  constructor(private readonly opts: HttpAdapterOptions = {}) {}

  /** The instance's pool for these TLS settings (pools are keyed by instance and settings: a reload that changes them opens new connections). */
  pool(inst: Instance, cluster: Cluster): H1Pool {
    const tls = upstreamTlsFor(inst, cluster.config);
    const key = tlsPoolKey(inst.id, tls);
    let p = this.pools.get(key);
    if (!p) {
      p = new H1Pool(inst.host, inst.port, {
        connections: cluster.config.maxConnectionsPerInstance,
        keepAliveTimeoutMs: this.opts.keepAliveTimeoutMs ?? 30_000,
        connectTimeoutMs: cluster.config.connectTimeoutMs,
        tls,
      });
      closePoolsWhere(this.pools, (id, k) => id === inst.id && k !== key, closeQuietly);
      this.pools.set(key, p);
    }
    return p;
  }

  private upgradePool(inst: Instance, cluster: Cluster): Pool {
    const tls = upstreamTlsFor(inst, cluster.config);
    const key = tlsPoolKey(inst.id, tls);
    let p = this.upgradePools.get(key);
    if (!p) {
      p = new Pool(`${tls ? 'https' : 'http'}://${inst.id}`, {
        connections: cluster.config.maxConnectionsPerInstance,
        pipelining: 1,
        keepAliveTimeout: this.opts.keepAliveTimeoutMs ?? 30_000,
        keepAliveMaxTimeout: 600_000,
        connect: { timeout: cluster.config.connectTimeoutMs, ...(tls ? tlsConnectOptions(tls, inst.host, 'http/1.1') : {}) },
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      closePoolsWhere(this.upgradePools, (id, k) => id === inst.id && k !== key, closeQuietly);
      this.upgradePools.set(key, p);
    }
    return p;
  }

  attempt(ex: Exchange, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => {
      if (opts.signal.aborted) {
        resolve({ failure: 'aborted', reachedUpstream: false });
        return;
      }
      const a = new HttpAttempt(opts, resolve, requestHasBody(ex.req) ? new LazyBody(ex.body, ex) : null);
      try {
        a.req = this.pool(inst, cluster).request({ path: ex.path, method: ex.method, headers: buildRequestHeaders(ex, inst, cluster), body: a.body }, a);
      } catch (e) {
        a.finish({ failure: 'protocol', error: e as Error });
      }
    });
  }

  /**
   * An upgrade request (WebSocket): on 101 the two sockets are joined. Any
   * other answer (a 200, a 4xx...) is an ordinary response, passed to the
   * client with its status, headers and body on the client's socket, which
   * closes after it. opts.timeoutMs bounds the wait for the answer's head.
   */
  upgrade(ex: Exchange, socket: Duplex, head: Buffer, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => {
      const started = performance.now();
      const sink = opts.sink;
      let settled = false;
      let headersSeen = false;
      let status: number | undefined;
      let headersMs: number | undefined;
      let controller: Dispatcher.DispatchController | undefined;
      /** An abort asked for before undici handed over its controller. */
      let pendingAbort: Error | undefined;
      const abort = (err: Error): void => {
        if (controller) controller.abort(err);
        else pendingAbort ??= err;
      };
      /** The upstream switched protocols: the tunnel's own close ends everything from here on. */
      let upgraded = false;
      // The client left: stop waiting for the answer, or stop reading a declined upgrade's body.
      const onCancel = (): void => {
        if (!upgraded) abort(new AbortedError());
      };
      const settle = (o: AttemptReport): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal.removeEventListener('abort', onCancel);
        resolve(o);
      };
      const timer = setTimeout(() => {
        if (!headersSeen) abort(new AttemptTimeoutError(opts.timeoutMs));
      }, opts.timeoutMs);
      opts.signal.addEventListener('abort', onCancel);
      const headers = buildRequestHeaders(ex, inst, cluster);
      // The protocols asked for, h2c left out (the pipeline serves an h2c-only upgrade as a plain request).
      const upgradeTo = upgradeProtocols(ex.req.headers.upgrade) ?? 'websocket';
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart(c) {
          controller = c;
          if (pendingAbort) c.abort(pendingAbort);
        },
        onRequestUpgrade(_c, statusCode, resHeaders, upstream) {
          upgraded = true;
          headersSeen = true;
          clearTimeout(timer);
          headersMs = performance.now() - started;
          sink.tunnel(statusCode, resHeaders, socket, upstream, head);
          socket.once('close', () => settle({ status: statusCode, reachedUpstream: true, headersMs }));
        },
        // The upstream did not switch protocols: an ordinary response.
        onResponseStart(c, statusCode, resHeaders) {
          headersSeen = true;
          clearTimeout(timer);
          status = statusCode;
          headersMs = performance.now() - started;
          const r = sink.head(statusCode, endToEndHeaders(resHeaders));
          if (r !== undefined) c.abort(r === 'hold' ? new AbortedError() : r);
        },
        onResponseData(c, chunk) {
          const r = sink.data(chunk);
          if (r === true) return;
          if (r === false) {
            c.pause();
            sink.onDrain(() => c.resume());
          } else c.abort(r);
        },
        onResponseEnd() {
          const err = sink.end();
          settle({ status, failure: err ? 'protocol' : undefined, error: err, reachedUpstream: true, headersMs });
        },
        onResponseError(_c, err) {
          sink.broken(err);
          settle({ status, failure: classifyError(err, headersSeen), error: err, reachedUpstream: headersSeen, headersMs });
        },
      };
      try {
        this.upgradePool(inst, cluster).dispatch({ path: ex.path, method: ex.method, headers, upgrade: upgradeTo, body: null }, handler);
      } catch (e) {
        settle({ failure: 'protocol', error: e as Error, reachedUpstream: false });
      }
    });
  }

  prune(liveIds: ReadonlySet<string>): void {
    closePoolsWhere(this.pools, (id) => !liveIds.has(id), closeQuietly);
    closePoolsWhere(this.upgradePools, (id) => !liveIds.has(id), closeQuietly);
  }

  async close(): Promise<void> {
    const all = [...this.pools.values(), ...this.upgradePools.values()];
    this.pools.clear();
    this.upgradePools.clear();
    await Promise.allSettled(all.map((p) => p.close()));
  }
}
