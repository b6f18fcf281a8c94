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
  protected readonly grpc: boolean = false;
  readonly pool: Http2SessionPool;

  constructor(protected readonly opts: Http2AdapterOptions = {}) {
    this.pool = new Http2SessionPool({ idleTimeoutMs: opts.idleTimeoutMs ?? 300_000 });
  }

  /** Request headers for the upstream stream, with :authority from the host policy. */
  protected requestHeaders(ex: Exchange, inst: Instance, cluster: Cluster, grpc: boolean, grpcTimeoutMs: number | undefined): OutgoingHttpHeaders {
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
    return new Promise<AttemptReport>((resolve) => {
      if (opts.signal.aborted) {
        resolve({ failure: 'aborted', reachedUpstream: false });
        return;
      }
      const sink = opts.sink;
      const grpc = this.grpc && isGrpcRequest(ex.req.headers);
      // A gRPC call proper (not gRPC-Web, whose status travels in the body): its end must carry a valid grpc-status.
      const grpcCall = grpc && !isGrpcWebRequest(ex.req.headers);
      /** grpc-status and grpc-message of the response headers, for a response that ends without trailers. */
      let headerStatus: Record<string, unknown> | undefined;
      // gRPC deadline: from the client's grpc-timeout, counted from when the gateway got the call.
      const grpcTimeout = grpc ? parseGrpcTimeout(ex.req.headers['grpc-timeout']) : undefined;
      const deadlineLeft = grpcTimeout !== undefined ? ex.startMs + grpcTimeout - Date.now() : undefined;
      if (deadlineLeft !== undefined && deadlineLeft <= 0) {
        ex.flag = 'UT';
        sink.head(200, deadlineExceeded(), true);
        resolve({ failure: 'timeout', reachedUpstream: false });
        return;
      }

      const started = performance.now();
      const src = ex.body;
      const withBody = requestHasBody(ex.req);
      let entry: SessionEntry;
      let stream: ClientHttp2Stream;
      let headersSeen = false;
      let bodyAttached = false;
      let done = false;
      let status: number | undefined;
      let headersMs: number | undefined;
      let trailers: IncomingHttpHeaders | undefined;
      let streamError: (Error & { code?: string; cause?: { code?: string } }) | undefined;
      let headersTimer: NodeJS.Timeout | undefined;
      let deadlineTimer: NodeJS.Timeout | undefined;

      const onAbort = (): void => {
        cancelUpstream(NGHTTP2_CANCEL);
        finish({ failure: 'aborted' });
      };
      const onSrcData = (chunk: Buffer): void => {
        ex.bytesIn += chunk.length;
        if (!stream.write(chunk)) {
          src.pause();
          stream.once('drain', onUpstreamDrain);
        }
      };
      const onUpstreamDrain = (): void => {
        src.resume();
      };
      const onSrcEnd = (): void => {
        // An HTTP/2 request stream the client reset also ends: never pass a cut body on as a complete one.
        if (bodyCut(src)) onSrcAborted();
        else if (!stream.destroyed) stream.end();
      };
      // The client went away mid-body: the upstream stream is reset, not ended, and a response begun is broken off.
      const onSrcAborted = (): void => {
        if (done) return;
        cancelUpstream(NGHTTP2_CANCEL);
        sink.broken(new Error('request aborted'), NGHTTP2_CANCEL);
        finish({ status, failure: 'aborted' });
      };
      const onDownstreamDrain = (): void => {
        if (!done) stream.resume();
      };
      const attachBody = (): void => {
        if (bodyAttached || done) return;
        bodyAttached = true;
        if (src.readableEnded) {
          stream.end();
          return;
        }
        if (bodyCut(src)) {
          onSrcAborted();
          return;
        }
        src.on('data', onSrcData);
        src.once('end', onSrcEnd);
        src.once('aborted', onSrcAborted);
        src.once('error', onSrcAborted);
        src.resume();
      };
      const detachBody = (): void => {
        if (!bodyAttached) return;
        src.off('data', onSrcData);
        src.off('end', onSrcEnd);
        src.off('aborted', onSrcAborted);
        src.off('error', onSrcAborted);
        stream?.off('drain', onUpstreamDrain);
      };
      // The upstream answered completely while the client still streams: stop sending.
      const stopSending = (): void => {
        if (!stream.writableEnded && !stream.closed) stream.close(NGHTTP2_NO_ERROR);
      };
      const cancelUpstream = (code: number): void => {
        if (!stream || stream.destroyed) return;
        if (code === NGHTTP2_CANCEL && !stream.writableEnded) resetOnly(stream);
        else stream.close(code);
      };
      const finish = (o: { status?: number; failure?: FailureKind; error?: Error }): void => {
        if (done) return;
        done = true;
        clearTimeout(headersTimer);
        clearTimeout(deadlineTimer);
        opts.signal.removeEventListener('abort', onAbort);
        detachBody();
        // A failure before the session connected never reached the upstream; a
        // refused stream was not processed. Otherwise the request went out.
        const reached = headersSeen || bodyAttached || (entry?.connected === true && o.failure !== 'refused-stream' && o.failure !== 'connect-failure');
        resolve({ ...o, reachedUpstream: reached, headersMs });
      };
      const classify = (): FailureKind => {
        if (!entry.connected) return 'connect-failure';
        const code = streamError?.code ?? '';
        const cause = streamError?.cause?.code ?? '';
        if (code === 'ERR_HTTP2_GOAWAY_SESSION' || stream.rstCode === NGHTTP2_REFUSED_STREAM) return 'refused-stream';
        if (code === 'ERR_HTTP2_STREAM_CANCEL' && CONNECT_CODES.has(cause) && !headersSeen) return 'connect-failure';
        if (code.startsWith('ERR_HTTP2_INVALID') || code === 'ERR_HTTP2_ERROR' || stream.rstCode === http2.constants.NGHTTP2_PROTOCOL_ERROR) return 'protocol';
        return 'reset';
      };

      // ----- send the request -----
      const headers = this.requestHeaders(ex, inst, cluster, grpc, deadlineLeft);
      for (let tries = 0; ; tries++) {
        entry = this.pool.get(inst, cluster.config.connectTimeoutMs, upstreamTlsFor(inst, cluster.config));
        try {
          stream = entry.session.request(headers, { endStream: !withBody });
          break;
        } catch (e) {
          // The session went away between get() and request() (GOAWAY): once more on a new one.
          this.pool.drop(inst, entry);
          if (tries === 0 && (e as { code?: string }).code === 'ERR_HTTP2_GOAWAY_SESSION') continue;
          finish({ failure: (e as { code?: string }).code === 'ERR_HTTP2_GOAWAY_SESSION' ? 'refused-stream' : 'protocol', error: e as Error });
          return;
        }
      }
      opts.signal.addEventListener('abort', onAbort);

      headersTimer = setTimeout(() => {
        if (headersSeen || done) return;
        cancelUpstream(NGHTTP2_CANCEL);
        finish({ failure: 'timeout', error: new AttemptTimeoutError(opts.timeoutMs) });
      }, opts.timeoutMs);
      if (deadlineLeft !== undefined) {
        deadlineTimer = setTimeout(() => {
          if (done) return;
          cancelUpstream(NGHTTP2_CANCEL);
          ex.flag = 'UT';
          // The call ends with DEADLINE_EXCEEDED: a trailers-only answer, or trailers after what was sent.
          if (!sink.committed) sink.head(200, deadlineExceeded(), true);
          else sink.end({ 'grpc-status': String(GrpcStatus.DEADLINE_EXCEEDED), 'grpc-message': 'Deadline Exceeded' });
          finish({ status, failure: 'timeout', error: new AttemptTimeoutError(deadlineLeft) });
        }, deadlineLeft);
      }

      // The body is attached once the session is up, so a connect failure leaves it untouched for a retry.
      if (withBody) {
        if (entry.connected) attachBody();
        else entry.session.once('connect', attachBody);
      }

      // ----- the response -----
      stream.on('response', (h, flags) => {
        if (done) return;
        headersSeen = true;
        status = Number(h[':status']);
        headersMs = performance.now() - started;
        let out = downstreamHeaders(h);
        const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
        if (grpcCall && endStream) {
          // Trailers-only: these headers end the call.
          const repaired = repairGrpcStatus(out, status);
          if (repaired) {
            out = repaired as typeof out;
            ex.flag ||= 'UP';
          }
        } else if (grpcCall && h['grpc-status'] !== undefined) {
          headerStatus = { 'grpc-status': h['grpc-status'] };
          if (h['grpc-message'] !== undefined) headerStatus['grpc-message'] = h['grpc-message'];
        }
        const r = sink.head(status, out, endStream);
        if (r === 'hold') {
          cancelUpstream(NGHTTP2_CANCEL);
          finish({ status });
          return;
        }
        if (r !== undefined) {
          cancelUpstream(NGHTTP2_CANCEL);
          finish({ status, failure: (r as { code?: string }).code === 'MESHGATE_ABORTED' ? 'aborted' : 'protocol', error: r });
          return;
        }
        if (endStream) {
          stopSending();
          finish({ status });
        }
      });
      stream.on('data', (chunk: Buffer) => {
        if (done) return;
        const r = sink.data(chunk);
        if (r === true) return;
        if (r === false) {
          stream.pause();
          sink.onDrain(onDownstreamDrain);
          return;
        }
        cancelUpstream(NGHTTP2_CANCEL);
        finish({ status, failure: 'protocol', error: r });
      });
      stream.on('trailers', (t: IncomingHttpHeaders) => {
        trailers = t;
      });
      stream.on('end', () => {
        if (done) return;
        if (!headersSeen) {
          // END_STREAM without a response (not possible per spec): treat as a reset.
          finish({ failure: 'protocol' });
          return;
        }
        let t = trailers ? downstreamHeaders(trailers) : undefined;
        if (grpcCall) {
          // A gRPC call ends with a valid grpc-status; an upstream that ends it without one, or
          // with one no client can parse, gets its ending repaired (grpc-status-mapping rules).
          const repaired = repairGrpcStatus(t ?? headerStatus, status!);
          if (repaired) {
            t = repaired as typeof t;
            ex.flag ||= 'UP';
          } else if (t === undefined) t = headerStatus as typeof t;
        }
        const err = sink.end(t as ResponseHead | undefined);
        stopSending();
        finish(err ? { status, failure: 'protocol', error: err } : { status });
      });
      stream.on('error', (e: Error) => {
        streamError = e as typeof streamError;
      });
      stream.on('close', () => {
        if (done) return;
        if (entry.session.destroyed && !entry.connected) this.pool.drop(inst, entry);
        const failure = classify();
        // Mid-stream failure: the client must see a broken stream, not a clean end.
        sink.broken(streamError ?? new Error('upstream stream closed'), stream.rstCode || NGHTTP2_INTERNAL_ERROR);
        finish({ status, failure, error: streamError ?? new Error(`upstream stream closed (code ${stream.rstCode})`) });
      });
    });
  }

  prune(liveIds: ReadonlySet<string>): void {
    this.pool.prune(liveIds);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
