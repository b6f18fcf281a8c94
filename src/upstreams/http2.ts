// HTTP/2 upstream adapter (protocol `http2`, and the transport of `grpc`):
// one node:http2 client session per instance, multiplexing every request to
// it, replaced when the upstream sends GOAWAY or the connection closes.
// Bodies stream both ways under HTTP/2 flow control: a slow reader pauses the
// other side's stream, which stops WINDOW_UPDATEs, so memory stays bounded by
// the flow-control windows whatever the size of the stream.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { addAbortSignal, type Readable } from 'node:stream';
import type { Cluster } from '../balancing/cluster.js';
import type { Instance } from '../balancing/instance.js';
import { closePoolsWhere, tlsConnectOptions, tlsPoolKey, upstreamTlsFor, type UpstreamTls } from '../balancing/tls.js';
import { requestHasBody, type Exchange } from '../exchange/exchange.js';
import { formatGrpcTimeout, GrpcStatus, isGrpcRequest, isGrpcWebRequest, parseGrpcTimeout, repairGrpcStatus } from '../exchange/grpc-status.js';
import { HOP_BY_HOP } from './headers.js';
import { buildRequestHeaders } from './http.js';
import { bodyCut } from '../exchange/body.js';
import { AttemptTimeoutError, type AttemptOptions, type AttemptReport, type ResponseHead, type UpstreamAdapter } from './types.js';
import type { FailureKind } from '../exchange/outcome.js';

const {
  NGHTTP2_CANCEL,
  NGHTTP2_NO_ERROR,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_FLAG_END_STREAM,
} = http2.constants;

/** Per-stream receive window towards upstreams (the default 64 KiB throttles large streams). */
const STREAM_WINDOW = 1 << 20;
/** Connection receive window: several streams can be in full flight at once. */
const SESSION_WINDOW = 16 << 20;

const CONNECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL', 'ETIMEDOUT', 'ECONNRESET']);

class ConnectTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(ms: number) {
    super(`connect timeout after ${ms} ms`);
  }
}

/** One client session to one instance. */
export interface SessionEntry {
  readonly session: ClientHttp2Session;
  /** Its key in the pool (instance and TLS settings). */
  readonly key: string;
  /** The TCP connection is up and the preface was sent. */
  connected: boolean;
}

export interface Http2PoolOptions {
  /** Close a session with no activity for this long (ms). */
  idleTimeoutMs?: number;
}

const closeSession = (e: SessionEntry): void => e.session.close();

/** Sessions by instance id. A session that got GOAWAY, errored or closed is dropped; the next request opens a new one. */
export class Http2SessionPool {
  private readonly sessions = new Map<string, SessionEntry>();

  constructor(private readonly opts: Http2PoolOptions = {}) {}

  /** The instance's session for these TLS settings (absent: h2c), opened when there is none. */
  get(inst: Instance, connectTimeoutMs: number, tls?: UpstreamTls): SessionEntry {
    const key = tlsPoolKey(inst.id, tls);
    const cur = this.sessions.get(key);
    if (cur && !cur.session.closed && !cur.session.destroyed) return cur;
    return this.open(inst, key, connectTimeoutMs, tls);
  }

  /** Forget the instance's session so the next request connects anew (after GOAWAY). */
  drop(_inst: Instance, entry: SessionEntry): void {
    if (this.sessions.get(entry.key) === entry) this.sessions.delete(entry.key);
  }

  private open(inst: Instance, key: string, connectTimeoutMs: number, tls: UpstreamTls | undefined): SessionEntry {
    const session = http2.connect(`${tls ? 'https' : 'http'}://${inst.id}`, {
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW },
      maxSessionMemory: 64,
      ...(tls ? tlsConnectOptions(tls, inst.host, 'h2') : {}),
    });
    const entry: SessionEntry = { session, key, connected: false };
    // Sessions made under other TLS settings (before a reload) finish their streams and close.
    closePoolsWhere(this.sessions, (id, k) => id === inst.id && k !== key, closeSession);
    this.sessions.set(key, entry);
    // Every request waiting for the connection holds a 'connect' listener.
    session.setMaxListeners(0);
    const timer = setTimeout(() => {
      if (!entry.connected) session.destroy(new ConnectTimeoutError(connectTimeoutMs));
    }, connectTimeoutMs);
    session.once('connect', () => {
      entry.connected = true;
      clearTimeout(timer);
      try {
        session.setLocalWindowSize(SESSION_WINDOW);
      } catch {
        /* session already closing */
      }
    });
    const forget = (): void => {
      clearTimeout(timer);
      this.drop(inst, entry);
    };
    // Streams in flight finish on the old session; new ones go to a new session.
    session.once('goaway', forget);
    session.once('close', forget);
    session.on('error', forget);
    session.on('frameError', () => undefined);
    if (this.opts.idleTimeoutMs) {
      session.setTimeout(this.opts.idleTimeoutMs, () => {
        forget();
        session.close();
      });
    }
    return entry;
  }

  prune(liveIds: ReadonlySet<string>): void {
    closePoolsWhere(this.sessions, (id) => !liveIds.has(id), closeSession);
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      all.map(
        (e) =>
          new Promise<void>((resolve) => {
            if (e.session.destroyed) return resolve();
            const t = setTimeout(() => {
              e.session.destroy();
              resolve();
            }, 2_000);
            e.session.close(() => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

/** Does the downstream request carry a body? (HTTP/2: the HEADERS frame did not end the stream.) */
/** The headers of a trailers-only gRPC answer that ends a call whose deadline passed. */
function deadlineExceeded(): ResponseHead {
  return { 'content-type': 'application/grpc', 'grpc-status': String(GrpcStatus.DEADLINE_EXCEEDED), 'grpc-message': 'Deadline Exceeded', 'x-meshgate-flag': 'UT' };
}

/** Response headers for downstream: no pseudo-headers, no hop-by-hop headers. */
function downstreamHeaders(h: IncomingHttpHeaders): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const k in h) {
    if (k.charCodeAt(0) === 58 /* ':' */ || HOP_BY_HOP.has(k)) continue;
    out[k] = h[k];
  }
  return out;
}

/** Already aborted: destroys a stream it is added to with an AbortError (node:http2 resets such a stream with CANCEL). */
const CANCELLED = AbortSignal.abort();

/**
 * RST_STREAM(CANCEL) and nothing before it. ClientHttp2Stream.close(code) on a
 * stream whose request body is still open first ends that body (a DATA frame
 * with END_STREAM) and then sends RST_STREAM: an upstream that acts on
 * END_STREAM would take a body the client cut short for a complete one.
 * Destroying the stream with an AbortError sends the reset alone.
 */
function resetOnly(stream: ClientHttp2Stream): void {
  addAbortSignal(CANCELLED, stream);
}

export interface Http2AdapterOptions {
  /** Close idle upstream sessions after this long (default 5 minutes). */
  idleTimeoutMs?: number;
}

export class Http2Adapter implements UpstreamAdapter {
  readonly protocol: string = 'http2';
  /** gRPC semantics for gRPC requests: deadlines (grpc-timeout) enforced and passed on, trailers. */
  readonly grpc: boolean = false;
  readonly pool: Http2SessionPool;

  constructor(protected readonly opts: Http2AdapterOptions = {}) {
    this.pool = new Http2SessionPool({ idleTimeoutMs: opts.idleTimeoutMs ?? 300_000 });
  }

  /** Request headers for the upstream stream, with :authority from the host policy. */
  requestHeaders(ex: Exchange, inst: Instance, cluster: Cluster, grpc: boolean, grpcTimeoutMs: number | undefined): OutgoingHttpHeaders {
    const list = buildRequestHeaders(ex, inst, cluster);
    const h: OutgoingHttpHeaders = { ':method': ex.method, ':scheme': 'http', ':path': ex.path, ':authority': inst.id };
    for (let i = 0; i < list.length; i += 2) {
      const k = list[i]!.toLowerCase();
      const v = list[i + 1]!;
      if (k === 'host') {
        h[':authority'] = v;
        continue;
      }
      const cur = h[k];
      if (cur === undefined) h[k] = v;
      else if (Array.isArray(cur)) cur.push(v);
      else h[k] = [String(cur), v];
    }
    if (grpc) h.te = 'trailers';
    // The deadline passed on is what is left of the client's, after the time spent here.
    if (grpcTimeoutMs !== undefined) h['grpc-timeout'] = formatGrpcTimeout(grpcTimeoutMs);
    return h;
  }

  attempt(ex: Exchange, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => new H2Attempt(this, ex, inst, cluster, opts, resolve).start());
  }

  prune(liveIds: ReadonlySet<string>): void {
    this.pool.prune(liveIds);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The attempt an upstream stream belongs to; cleared when the attempt ends. */
const ATTEMPT = Symbol('meshgate.h2.attempt');
type Tracked = ClientHttp2Stream & { [ATTEMPT]?: H2Attempt };

// The upstream stream's listeners: one function each for every stream, finding
// the attempt through the stream. A closed node:http2 stream outlives young-
// generation collections (its native handle keeps it), so listeners closing
// over an attempt would keep the whole exchange alive into the old generation.
function onResponse(this: Tracked, h: IncomingHttpHeaders, flags: number): void {
  this[ATTEMPT]?.response(h, flags);
}
function onData(this: Tracked, chunk: Buffer): void {
  this[ATTEMPT]?.data(chunk);
}
function onTrailers(this: Tracked, t: IncomingHttpHeaders): void {
  const a = this[ATTEMPT];
  if (a !== undefined) a.trailers = t;
}
function onEnd(this: Tracked): void {
  this[ATTEMPT]?.end();
}
function onError(this: Tracked, e: Error): void {
  const a = this[ATTEMPT];
  if (a !== undefined) a.streamError = e as StreamError;
}
function onClose(this: Tracked): void {
  this[ATTEMPT]?.close();
}
function onUpstreamDrain(this: Tracked): void {
  this[ATTEMPT]?.src.resume();
}
function onHeadersTimeout(a: H2Attempt): void {
  a.headersTimeout();
}
function onDeadline(a: H2Attempt): void {
  a.deadline();
}

/** Whether node:http2 ends a request with its headers when not told (its methods without a meaningful payload). */
function endsByDefault(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'DELETE';
}

type StreamError = Error & { code?: string; cause?: { code?: string } };

/**
 * One attempt on an upstream HTTP/2 stream: its state and handlers in one
 * object. It reports the response to the attempt's sink and resolves with
 * what happened.
 */
class H2Attempt {
  readonly src: Exchange['body'];
  private readonly sink: AttemptOptions['sink'];
  private readonly grpcCall: boolean;
  private readonly grpc: boolean;
  /** grpc-status and grpc-message of the response headers, for a response that ends without trailers. */
  private headerStatus: Record<string, unknown> | undefined;
  /** What is left of the client's gRPC deadline, counted from when the gateway got the call. */
  private readonly deadlineLeft: number | undefined;
  private readonly started = performance.now();
  private readonly withBody: boolean;
  private entry: SessionEntry | undefined;
  private stream: Tracked | undefined;
  private headersSeen = false;
  private bodyAttached = false;
  private done = false;
  private status: number | undefined;
  private headersMs: number | undefined;
  trailers: IncomingHttpHeaders | undefined;
  streamError: StreamError | undefined;
  private headersTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => {
    this.cancelUpstream(NGHTTP2_CANCEL);
    this.finish({ failure: 'aborted' });
  };
  /** Request body handlers, made when the request has a body. */
  private bodyHandlers: { data(chunk: Buffer): void; end(): void; aborted(): void; attach(): void } | undefined;
  private downstreamDrain: (() => void) | undefined;

  constructor(
    private readonly adapter: Http2Adapter,
    private readonly ex: Exchange,
    private readonly inst: Instance,
    private readonly cluster: Cluster,
    private readonly opts: AttemptOptions,
    private readonly resolve: (r: AttemptReport) => void,
  ) {
    this.sink = opts.sink;
    this.src = ex.body;
    this.grpc = adapter.grpc && isGrpcRequest(ex.req.headers);
    // A gRPC call proper (not gRPC-Web, whose status travels in the body): its end must carry a valid grpc-status.
    this.grpcCall = this.grpc && !isGrpcWebRequest(ex.req.headers);
    const grpcTimeout = this.grpc ? parseGrpcTimeout(ex.req.headers['grpc-timeout']) : undefined;
    this.deadlineLeft = grpcTimeout !== undefined ? ex.startMs + grpcTimeout - Date.now() : undefined;
    this.withBody = requestHasBody(ex.req);
  }

  start(): void {
    const { opts, sink, ex } = this;
    if (opts.signal.aborted) {
      this.resolve({ failure: 'aborted', reachedUpstream: false });
      return;
    }
    const deadlineLeft = this.deadlineLeft;
    if (deadlineLeft !== undefined && deadlineLeft <= 0) {
      ex.flag = 'UT';
      sink.head(200, deadlineExceeded(), true);
      this.resolve({ failure: 'timeout', reachedUpstream: false });
      return;
    }

    // ----- send the request -----
    const headers = this.adapter.requestHeaders(ex, this.inst, this.cluster, this.grpc, deadlineLeft);
    const pool = this.adapter.pool;
    let entry: SessionEntry;
    let stream: Tracked;
    for (let tries = 0; ; tries++) {
      entry = pool.get(this.inst, this.cluster.config.connectTimeoutMs, upstreamTlsFor(this.inst, this.cluster.config));
      this.entry = entry;
      try {
        // node:http2 copies and validates an options object at a cost above the rest of request()
        // (4.5 us here): none is passed when its default (end GET, HEAD and DELETE with their headers) is right.
        stream = endsByDefault(ex.method) === !this.withBody ? entry.session.request(headers) : entry.session.request(headers, { endStream: !this.withBody });
        break;
      } catch (e) {
        // The session went away between get() and request() (GOAWAY): once more on a new one.
        pool.drop(this.inst, entry);
        if (tries === 0 && (e as { code?: string }).code === 'ERR_HTTP2_GOAWAY_SESSION') continue;
        this.finish({ failure: (e as { code?: string }).code === 'ERR_HTTP2_GOAWAY_SESSION' ? 'refused-stream' : 'protocol', error: e as Error });
        return;
      }
    }
    this.stream = stream;
    stream[ATTEMPT] = this;
    opts.signal.addEventListener('abort', this.onAbort);
    this.headersTimer = setTimeout(onHeadersTimeout, opts.timeoutMs, this);
    if (deadlineLeft !== undefined) this.deadlineTimer = setTimeout(onDeadline, deadlineLeft, this);

    // The body is attached once the session is up, so a connect failure leaves it untouched for a retry.
    if (this.withBody) {
      const body = this.bodyHandlersFor();
      if (entry.connected) body.attach();
      else entry.session.once('connect', body.attach);
    }

    // ----- the response -----
    stream.on('response', onResponse);
    stream.on('data', onData);
    stream.on('trailers', onTrailers);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  }

  private bodyHandlersFor(): NonNullable<H2Attempt['bodyHandlers']> {
    const src = this.src;
    return (this.bodyHandlers ??= {
      data: (chunk: Buffer): void => {
        this.ex.bytesIn += chunk.length;
        const stream = this.stream!;
        if (!stream.write(chunk)) {
          src.pause();
          stream.once('drain', onUpstreamDrain);
        }
      },
      end: (): void => {
        // An HTTP/2 request stream the client reset also ends: never pass a cut body on as a complete one.
        if (bodyCut(src)) this.srcAborted();
        else if (!this.stream!.destroyed) this.stream!.end();
      },
      // The client went away mid-body: the upstream stream is reset, not ended, and a response begun is broken off.
      aborted: (): void => this.srcAborted(),
      attach: (): void => {
        if (this.bodyAttached || this.done) return;
        this.bodyAttached = true;
        if (src.readableEnded) {
          this.stream!.end();
          return;
        }
        if (bodyCut(src)) {
          this.srcAborted();
          return;
        }
        const h = this.bodyHandlers!;
        src.on('data', h.data);
        src.once('end', h.end);
        src.once('aborted', h.aborted);
        src.once('error', h.aborted);
        src.resume();
      },
    });
  }

  private srcAborted(): void {
    if (this.done) return;
    this.cancelUpstream(NGHTTP2_CANCEL);
    this.sink.broken(new Error('request aborted'), NGHTTP2_CANCEL);
    this.finish({ status: this.status, failure: 'aborted' });
  }

  private detachBody(): void {
    const h = this.bodyHandlers;
    if (!this.bodyAttached || h === undefined) return;
    const src = this.src;
    src.off('data', h.data);
    src.off('end', h.end);
    src.off('aborted', h.aborted);
    src.off('error', h.aborted);
    this.stream?.off('drain', onUpstreamDrain);
  }

  /** The upstream answered completely while the client still streams: stop sending. */
  private stopSending(): void {
    const stream = this.stream!;
    if (!stream.writableEnded && !stream.closed) stream.close(NGHTTP2_NO_ERROR);
  }

  private cancelUpstream(code: number): void {
    const stream = this.stream;
    if (!stream || stream.destroyed) return;
    if (code === NGHTTP2_CANCEL && !stream.writableEnded) resetOnly(stream);
    else stream.close(code);
  }

  private finish(o: { status?: number; failure?: FailureKind; error?: Error }): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.headersTimer);
    clearTimeout(this.deadlineTimer);
    this.opts.signal.removeEventListener('abort', this.onAbort);
    this.detachBody();
    // The stream no longer leads here (see ATTEMPT).
    if (this.stream !== undefined) this.stream[ATTEMPT] = undefined;
    // A failure before the session connected never reached the upstream; a
    // refused stream was not processed. Otherwise the request went out.
    const reached = this.headersSeen || this.bodyAttached || (this.entry?.connected === true && o.failure !== 'refused-stream' && o.failure !== 'connect-failure');
    // One shape for every report (a spread of `o`'s several shapes is a slow copy).
    this.resolve({ status: o.status, failure: o.failure, error: o.error, reachedUpstream: reached, headersMs: this.headersMs });
  }

  private classify(): FailureKind {
    const stream = this.stream!;
    if (!this.entry!.connected) return 'connect-failure';
    const code = this.streamError?.code ?? '';
    const cause = this.streamError?.cause?.code ?? '';
    if (code === 'ERR_HTTP2_GOAWAY_SESSION' || stream.rstCode === NGHTTP2_REFUSED_STREAM) return 'refused-stream';
    if (code === 'ERR_HTTP2_STREAM_CANCEL' && CONNECT_CODES.has(cause) && !this.headersSeen) return 'connect-failure';
    if (code.startsWith('ERR_HTTP2_INVALID') || code === 'ERR_HTTP2_ERROR' || stream.rstCode === http2.constants.NGHTTP2_PROTOCOL_ERROR) return 'protocol';
    return 'reset';
  }

  headersTimeout(): void {
    if (this.headersSeen || this.done) return;
    this.cancelUpstream(NGHTTP2_CANCEL);
    this.finish({ failure: 'timeout', error: new AttemptTimeoutError(this.opts.timeoutMs) });
  }

  deadline(): void {
    if (this.done) return;
    this.cancelUpstream(NGHTTP2_CANCEL);
    this.ex.flag = 'UT';
    // The call ends with DEADLINE_EXCEEDED: a trailers-only answer, or trailers after what was sent.
    if (!this.sink.committed) this.sink.head(200, deadlineExceeded(), true);
    else this.sink.end({ 'grpc-status': String(GrpcStatus.DEADLINE_EXCEEDED), 'grpc-message': 'Deadline Exceeded' });
    this.finish({ status: this.status, failure: 'timeout', error: new AttemptTimeoutError(this.deadlineLeft!) });
  }

  response(h: IncomingHttpHeaders, flags: number): void {
    if (this.done) return;
    this.headersSeen = true;
    const status = Number(h[':status']);
    this.status = status;
    this.headersMs = performance.now() - this.started;
    let out = downstreamHeaders(h);
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (this.grpcCall && endStream) {
      // Trailers-only: these headers end the call.
      const repaired = repairGrpcStatus(out, status);
      if (repaired) {
        out = repaired as typeof out;
        this.ex.flag ||= 'UP';
      }
    } else if (this.grpcCall && h['grpc-status'] !== undefined) {
      const hs: Record<string, unknown> = { 'grpc-status': h['grpc-status'] };
      if (h['grpc-message'] !== undefined) hs['grpc-message'] = h['grpc-message'];
      this.headerStatus = hs;
    }
    const r = this.sink.head(status, out, endStream);
    if (r === 'hold') {
      this.cancelUpstream(NGHTTP2_CANCEL);
      this.finish({ status });
      return;
    }
    if (r !== undefined) {
      this.cancelUpstream(NGHTTP2_CANCEL);
      this.finish({ status, failure: (r as { code?: string }).code === 'MESHGATE_ABORTED' ? 'aborted' : 'protocol', error: r });
      return;
    }
    if (endStream) {
      this.stopSending();
      this.finish({ status });
    }
  }

  data(chunk: Buffer): void {
    if (this.done) return;
    const r = this.sink.data(chunk);
    if (r === true) return;
    if (r === false) {
      this.stream!.pause();
      this.sink.onDrain((this.downstreamDrain ??= (): void => {
        if (!this.done) this.stream!.resume();
      }));
      return;
    }
    this.cancelUpstream(NGHTTP2_CANCEL);
    this.finish({ status: this.status, failure: 'protocol', error: r });
  }

  end(): void {
    if (this.done) return;
    if (!this.headersSeen) {
      // END_STREAM without a response (not possible per spec): treat as a reset.
      this.finish({ failure: 'protocol' });
      return;
    }
    const status = this.status!;
    let t = this.trailers ? downstreamHeaders(this.trailers) : undefined;
    if (this.grpcCall) {
      // A gRPC call ends with a valid grpc-status; an upstream that ends it without one, or
      // with one no client can parse, gets its ending repaired (grpc-status-mapping rules).
      const repaired = repairGrpcStatus(t ?? this.headerStatus, status);
      if (repaired) {
        t = repaired as typeof t;
        this.ex.flag ||= 'UP';
      } else if (t === undefined) t = this.headerStatus as typeof t;
    }
    const err = this.sink.end(t as ResponseHead | undefined);
    this.stopSending();
    this.finish(err ? { status, failure: 'protocol', error: err } : { status });
  }

  close(): void {
    if (this.done) return;
    const entry = this.entry!;
    const stream = this.stream!;
    if (entry.session.destroyed && !entry.connected) this.adapter.pool.drop(this.inst, entry);
    const failure = this.classify();
    // Mid-stream failure: the client must see a broken stream, not a clean end.
    this.sink.broken(this.streamError ?? new Error('upstream stream closed'), stream.rstCode || NGHTTP2_INTERNAL_ERROR);
    this.finish({ status: this.status, failure, error: this.streamError ?? new Error(`upstream stream closed (code ${stream.rstCode})`) });
  }
}
