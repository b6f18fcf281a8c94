// HTTP/1.1 client for upstream requests: keep-alive connections on node:net,
// one request at a time per connection (no pipelining), request and response
// bodies streamed with backpressure, never buffered.
//
// Why not undici here: on the gateway's hot path undici's request machinery
// (request objects, queues, handler wrappers, header validation and
// conversion, its WASM parser) cost as much CPU per request as the rest of
// the proxy put together; see BENCHMARKS.md (the `rawclient` reference
// against `floor`). This client does only what a proxy needs, and parses
// responses strictly: anything that could desynchronise a kept-alive
// connection (conflicting or malformed framing, bare CR or LF, obs-fold, a
// head over 64 KiB) fails the request and closes the connection.
// WebSocket upgrades still go through undici (src/upstreams/http.ts).
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { describeTlsError, tlsConnectOptions, type UpstreamTls } from '../balancing/tls.js';
import type { Readable } from 'node:stream';
import { ChunkedDecoder, chunkSizeLine } from '../http1/chunked.js';
import { connectionHasToken, connectionTokens, FORBIDDEN_TRAILERS, HOP_BY_HOP } from '../http1/fields.js';
import { MAX_FIELDS } from '../http1/frame.js';
import { TOKEN_RE, WireError } from '../http1/grammar.js';
import { HeadScanner, parseResponseHead, type ResponseHead } from '../http1/head.js';
import { holdToTurnEnd } from '../http1/turn-writes.js';

export type ResponseHeaders = Record<string, string | string[]>;

/** What a request tells its caller. Callbacks run at most once each, and after onResponseEnd or onResponseError nothing else. */
export interface H1Handler {
  /** The request is about to be written on a connected socket; the upstream may act on it from here on. */
  onRequestSent(): void;
  /** Final (non-1xx) response head. Header names are lower case; repeated headers are arrays. */
  onResponseStart(status: number, headers: ResponseHeaders): void;
  onResponseData(chunk: Buffer): void;
  onResponseEnd(trailers: ResponseHeaders | undefined): void;
  onResponseError(err: Error): void;
}

export interface H1RequestOptions {
  method: string;
  /** Request target as sent (origin form). */
  path: string;
  /** Flat [name, value, ...] list; content-length passes through, transfer-encoding is the client's to set. */
  headers: readonly string[];
  /** Streamed as is with content-length when the headers have one, chunked otherwise. Attached only once the request is written. */
  body: Readable | null;
}

export interface H1PoolOptions {
  /** Most connections open to the instance at once; requests beyond wait in order. */
  connections: number;
  /** Idle connections close after this long (shorter when the upstream's Keep-Alive header asks). */
  keepAliveTimeoutMs: number;
  connectTimeoutMs: number;
  /** Connect over TLS (src/balancing/tls.ts); absent: plain TCP. */
  tls?: UpstreamTls;
}

/** Errors of this client; `code` is what the adapter classifies by. */
export class UpstreamConnectionError extends Error {
  constructor(
    message: string,
    readonly code: 'MESHGATE_CONNECT_TIMEOUT' | 'MESHGATE_BAD_RESPONSE' | 'MESHGATE_BAD_REQUEST' | 'MESHGATE_CONNECTION_CLOSED' | 'MESHGATE_POOL_CLOSED' | 'MESHGATE_TLS_HANDSHAKE',
  ) {
    super(message);
  }
}

const badResponse = (why: string): UpstreamConnectionError => new UpstreamConnectionError(`invalid upstream response: ${why}`, 'MESHGATE_BAD_RESPONSE');

const MAX_HEAD_BYTES = 64 * 1024;
/** An upstream's `Keep-Alive: timeout=N` is cut by this much, so a request never lands on a connection it is closing. */
const KEEP_ALIVE_MARGIN_MS = 2000;
/** A CR, LF or NUL: what could end a header line early, or split a message. */
const hasLineBreak = (s: string): boolean => s.indexOf('\r') >= 0 || s.indexOf('\n') >= 0 || s.indexOf('\0') >= 0;
/** Request targets: visible ASCII and obs-text, no spaces or controls. */
const BAD_TARGET = /[^\x21-\x7e\x80-\xff]/;
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');
const EMPTY = Buffer.alloc(0);
const ignoreError = (): void => undefined;
/** Methods whose requests carry a body: without one they get `content-length: 0`, as RFC 9110 8.6 advises. */
const PAYLOAD_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** Builds the request head; throws on anything that would break the message framing. */
function requestHead(o: H1RequestOptions, authority: string): { head: string; chunked: boolean } {
  if (!TOKEN_RE.test(o.method)) throw new UpstreamConnectionError(`invalid method ${JSON.stringify(o.method)}`, 'MESHGATE_BAD_REQUEST');
  if (o.path.length === 0 || BAD_TARGET.test(o.path)) throw new UpstreamConnectionError(`invalid request target ${JSON.stringify(o.path)}`, 'MESHGATE_BAD_REQUEST');
  let head = `${o.method} ${o.path} HTTP/1.1\r\n`;
  let hasLength = false;
  let hasHost = false;
  let names = '';
  let values = '';
  const h = o.headers;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!;
    const value = h[i + 1]!;
    if (name.length === 0) throw new UpstreamConnectionError('empty request header name', 'MESHGATE_BAD_REQUEST');
    if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
    else if (name.length === 4 && name.toLowerCase() === 'host') hasHost = true;
    names += name;
    values += value;
    head += `${name}: ${value}\r\n`;
  }
  // One scan each: every name is a token, no value has a CR, LF or NUL.
  if ((names.length > 0 && !TOKEN_RE.test(names)) || hasLineBreak(values)) {
    for (let i = 0; i < h.length; i += 2) {
      if (!TOKEN_RE.test(h[i]!) || hasLineBreak(h[i + 1]!)) throw new UpstreamConnectionError(`invalid request header ${JSON.stringify(h[i])}`, 'MESHGATE_BAD_REQUEST');
    }
  }
  // HTTP/1.1 requires Host (RFC 9112 3.2).
  if (!hasHost) head += `host: ${authority}\r\n`;
  const chunked = o.body !== null && !hasLength;
  if (chunked) head += 'transfer-encoding: chunked\r\n';
  else if (o.body === null && !hasLength && PAYLOAD_METHODS.has(o.method)) head += 'content-length: 0\r\n';
  return { head: `${head}\r\n`, chunked };
}

/** One request: its handler, and the controls the caller holds (pause, resume, abort). */
export class H1Request {
  done = false;
  /** The connection it is on, once it has one. */
  conn: H1Conn | undefined;
  /** The request head went out: the upstream may have acted on it. */
  sent = false;
  readonly head: string;
  readonly chunked: boolean;

  constructor(
    readonly pool: H1Pool,
    readonly opts: H1RequestOptions,
    readonly handler: H1Handler,
  ) {
    const { head, chunked } = requestHead(opts, pool.authority);
    this.head = head;
    this.chunked = chunked;
  }

  /** Stop reading the response (the caller's downstream is full). */
  pause(): void {
    if (!this.done && this.conn?.req === this) {
      this.conn.paused = true;
      this.conn.socket.pause();
    }
  }

  resume(): void {
    if (!this.done && this.conn?.req === this) {
      this.conn.paused = false;
      this.conn.socket.resume();
    }
  }

  /** Give up: the handler gets onResponseError(err); a connection that carried the request is closed. */
  abort(err: Error): void {
    if (this.done) return;
    const conn = this.conn;
    if (conn === undefined) this.pool.dequeue(this);
    else if (!this.sent) conn.req = undefined; // still connecting: the connection stays for the next request
    this.fail(err);
    if (conn !== undefined && this.sent) conn.destroy();
  }

  /** Ends the request with an error (once). */
  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.conn?.stopBody();
    this.handler.onResponseError(err);
  }
}

const enum State {
  Idle,
  Head,
  Body,
  Chunked,
  UntilClose,
}

/** One upstream connection and the strict response parser for it. */
export class H1Conn {
  readonly socket: Socket;
  req: H1Request | undefined;
  private connected = false;
  /** Reading paused by the caller (its downstream is full). */
  paused = false;
  private connectTimer: NodeJS.Timeout | undefined;
  private error: Error | undefined;
  /** Keep the connection after this response. */
  private reusable = true;
  /** Idle since (Date.now()) and for how long it may stay idle. */
  idleSince = 0;
  idleLimitMs: number;

  // Request body
  private body: Readable | null = null;
  private bodyDone = true;
  // Response parser
  private state = State.Idle;
  private pending: Buffer | undefined;
  private left = 0;
  private readonly scanner = new HeadScanner(false, MAX_HEAD_BYTES);
  private chunks: ChunkedDecoder | undefined;
  /** Chunk data for the request; nothing once its caller gave up (the decoder may still be inside the same read). */
  private readonly onChunk = (b: Buffer): void => {
    const r = this.req;
    if (r !== undefined && !r.done) r.handler.onResponseData(b);
  };
  /** The last Keep-Alive header seen (parsed once per connection, not per response). */
  private keepAliveSeen: string | undefined;

  constructor(
    private readonly pool: H1Pool,
    host: string,
    port: number,
  ) {
    this.idleLimitMs = pool.opts.keepAliveTimeoutMs;
    const tls = pool.opts.tls;
    if (tls === undefined) {
      this.socket = connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000 });
    } else {
      // The last session ticket the pool got: a new connection resumes instead of a full handshake.
      const t = tlsConnect({ host, port, ...tlsConnectOptions(tls, host, 'http/1.1'), session: pool.tlsSession });
      t.setNoDelay(true);
      t.setKeepAlive(true, 60_000);
      t.on('session', (session: Buffer) => (pool.tlsSession = session));
      this.socket = t;
    }
    this.connectTimer = setTimeout(() => {
      this.socket.destroy(new UpstreamConnectionError(`connect to ${host}:${port} timed out after ${pool.opts.connectTimeoutMs} ms`, 'MESHGATE_CONNECT_TIMEOUT'));
    }, pool.opts.connectTimeoutMs);
    this.socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
      this.connected = true;
      const r = this.req;
      if (r !== undefined) this.write(r);
      else this.pool.release(this);
    });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (e: Error) => (this.error ??= tls !== undefined && !this.connected ? handshakeError(e, this.socket as TLSSocket) : e));
    this.socket.on('close', () => this.onClose());
  }

  /** Takes a request: written now when connected, else once connected. */
  assign(r: H1Request): void {
    this.req = r;
    r.conn = this;
    if (this.connected) this.write(r);
  }

  /** Still usable after idling since idleSince. */
  usable(now: number): boolean {
    return this.connected && !this.socket.destroyed && now - this.idleSince < this.idleLimitMs;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private write(r: H1Request): void {
    r.sent = true;
    this.state = State.Head;
    this.reusable = true;
    r.handler.onRequestSent();
    if (r.done) {
      // Aborted by the handler: nothing went out, but the upstream could see a half-written request.
      this.destroy();
      return;
    }
    holdToTurnEnd(this.socket);
    this.socket.write(r.head, 'latin1');
    const body = r.opts.body;
    if (body === null) return;
    this.body = body;
    this.bodyDone = false;
    body.on('data', this.onBodyData);
    body.once('end', this.onBodyEnd);
    body.once('error', this.onBodyError);
    // Destroyed before it was attached: no event will come; the request cannot complete.
    if (body.destroyed && !body.readableEnded) {
      this.onBodyError(body.errored ?? Object.assign(new Error('request body destroyed before it was sent'), { code: 'MESHGATE_ABORTED' }));
    }
  }

  private readonly onBodyData = (chunk: Buffer): void => {
    const s = this.socket;
    let ok: boolean;
    if (this.req?.chunked) {
      if (chunk.length === 0) return; // a zero-size chunk would end the body
      s.cork();
      s.write(chunkSizeLine(chunk.length), 'latin1');
      s.write(chunk);
      ok = s.write(CRLF);
      s.uncork();
    } else ok = s.write(chunk);
    if (!ok) {
      this.body!.pause();
      s.once('drain', this.onDrain);
    }
  };

  private readonly onDrain = (): void => {
    if (!this.bodyDone) this.body?.resume();
  };

  private readonly onBodyEnd = (): void => {
    if (this.req?.chunked) this.socket.write(LAST_CHUNK);
    this.detachBody();
  };

  private readonly onBodyError = (err: Error): void => {
    this.detachBody();
    this.req?.fail(err);
    this.destroy();
  };

  private detachBody(): void {
    const b = this.body;
    this.bodyDone = true;
    if (b === null) return;
    this.body = null;
    b.off('data', this.onBodyData);
    b.off('end', this.onBodyEnd);
    b.off('error', this.onBodyError);
    // An error may already be on its way (a stream destroyed with one emits it on the next tick), or
    // come later from a source this connection no longer reads: it must find a listener, or it ends the process.
    if (!b.readableEnded) b.on('error', ignoreError);
    this.socket.off('drain', this.onDrain);
  }

  /**
   * The request failed: an unfinished body stops and lets go of its source.
   * It is destroyed without an error: nothing listens to it any more, and the
   * caller already has the request's error.
   */
  stopBody(): void {
    const b = this.body;
    if (b === null || this.bodyDone) return;
    this.detachBody();
    b.destroy();
    this.reusable = false;
  }

  private onData(d: Buffer): void {
    if (this.req === undefined || this.req.done) {
      // Bytes nobody asked for: the connection's framing cannot be trusted.
      this.destroy();
      return;
    }
    try {
      this.parse(d);
    } catch (e) {
      this.req?.fail(e instanceof WireError ? badResponse(e.message) : (e as Error));
      this.destroy();
    }
  }

  private parse(d: Buffer): void {
    let buf = this.pending === undefined ? d : Buffer.concat([this.pending, d]);
    this.pending = undefined;
    while (buf.length > 0) {
      const r = this.req;
      // The handler gave up on the response (onResponseStart held it or failed): abort already closed the connection.
      if (r === undefined || r.done) return;
      switch (this.state) {
        case State.Head: {
          const end = this.scanner.scan(buf);
          if (end < 0) {
            this.pending = buf;
            return;
          }
          buf = buf.subarray(end);
          if (this.onHead(r)) return this.ended(r, undefined, buf);
          break;
        }
        case State.Body:
          buf = this.deliver(r, buf);
          if (this.left === 0) return this.ended(r, undefined, buf);
          break;
        case State.UntilClose:
          r.handler.onResponseData(buf);
          return;
        case State.Chunked: {
          const chunks = this.chunks!;
          const end = chunks.feed(buf, this.onChunk);
          if (end < 0) return;
          this.chunks = undefined;
          return this.ended(r, trailerObject(chunks.trailers), buf.subarray(end));
        }
        case State.Idle:
          this.reusable = false;
          this.destroy();
          return;
      }
    }
  }

  /** Passes on up to `left` body bytes (without copying); returns the rest. */
  private deliver(r: H1Request, buf: Buffer): Buffer {
    const n = Math.min(this.left, buf.length);
    this.left -= n;
    if (n === buf.length) {
      r.handler.onResponseData(buf);
      return EMPTY;
    }
    r.handler.onResponseData(buf.subarray(0, n));
    return buf.subarray(n);
  }

  /** The response ended inside a read; bytes after it mean the upstream sent more than one answer. */
  private ended(r: H1Request, trailers: ResponseHeaders | undefined, rest: Buffer): void {
    if (rest.length > 0) this.reusable = false;
    this.complete(r, trailers);
  }

  /** Parses a response head; true when the response is complete with it (no body). */
  private onHead(r: H1Request): boolean {
    const h = parseResponseHead(this.scanner, MAX_FIELDS);
    this.scanner.reset();
    const status = h.status;
    if (status < 200) {
      // 100 Continue, 102, 103 Early Hints: no body; the final answer follows.
      if (status === 101) throw badResponse('101 Switching Protocols to a request that did not ask');
      return false;
    }
    const f = responseFields(h);
    const headers = f.headers;
    if (h.minor === 0) this.reusable = false; // HTTP/1.0: one request per connection
    if (f.close) this.reusable = false;
    const ka = f.keepAlive;
    if (ka !== undefined && ka !== this.keepAliveSeen) {
      this.keepAliveSeen = ka;
      const t = /(?:^|[,;\s])timeout\s*=\s*(\d+)/i.exec(ka);
      if (t !== null) {
        const ms = Number(t[1]) * 1000 - KEEP_ALIVE_MARGIN_MS;
        this.idleLimitMs = ms < 1000 ? 0 : Math.min(this.pool.opts.keepAliveTimeoutMs, ms);
      }
    }
    const bodyLength = h.chunked ? -1 : h.contentLength; // -1: chunked or until close
    const noBody = r.opts.method === 'HEAD' || status === 204 || status === 304;
    r.handler.onResponseStart(status, headers);
    if (r.done) return false; // the handler gave up on it (held for a retry, or the client left)
    if (noBody || bodyLength === 0) return true;
    if (h.chunked) {
      this.state = State.Chunked;
      this.chunks = new ChunkedDecoder(MAX_HEAD_BYTES, 502);
    }
    else if (bodyLength < 0) {
      this.state = State.UntilClose;
      this.reusable = false;
    } else {
      this.left = bodyLength;
      this.state = State.Body;
    }
    return false;
  }

  private complete(r: H1Request, trailers: ResponseHeaders | undefined): void {
    this.state = State.Idle;
    this.req = undefined;
    if (r.done) {
      // The caller gave up inside this read (its error was already reported): no end after it, and the connection goes.
      this.reusable = false;
      this.destroy();
      return;
    }
    r.done = true;
    if (!this.bodyDone) {
      // Answered before the request body was all sent: stop sending, and the connection cannot be reused.
      this.reusable = false;
      const b = this.body;
      this.detachBody();
      b?.destroy();
    }
    r.handler.onResponseEnd(trailers);
    this.finishCycle();
  }

  /** After a response: back to the pool, or closed. */
  private finishCycle(): void {
    if (!this.bodyDone) return;
    if (this.reusable && !this.socket.destroyed && this.idleLimitMs > 0) {
      if (this.paused) {
        this.paused = false;
        this.socket.resume();
      }
      this.pool.release(this);
    } else this.destroy();
  }

  private onEnd(): void {
    const r = this.req;
    if (r !== undefined && !r.done && this.state === State.UntilClose) {
      this.reusable = false;
      this.complete(r, undefined);
    }
  }

  private onClose(): void {
    clearTimeout(this.connectTimer);
    const r = this.req;
    // The request fails first, so that a body still being sent is stopped (and lets go of the client's request).
    if (r !== undefined && !r.done) {
      let err = this.error;
      if (err === undefined && !this.connected && this.pool.opts.tls !== undefined) {
        // Closed during the handshake without an error of its own (a server that is not TLS, or hung up).
        err = handshakeError(new Error('connection closed during the TLS handshake'), this.socket as TLSSocket);
      }
      r.fail(err ?? new UpstreamConnectionError('upstream closed the connection before the response ended', 'MESHGATE_CONNECTION_CLOSED'));
    }
    this.req = undefined;
    this.detachBody();
    this.pool.removed(this);
  }
}

/**
 * An error before the TLS handshake finished: a connect failure (nothing
 * reached the upstream) that says what failed. A refused or unreachable TCP
 * connect keeps its own error.
 */
function handshakeError(e: Error, socket: TLSSocket): Error {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'MESHGATE_CONNECT_TIMEOUT') return e;
  if (socket.connecting) return e;
  const detail = describeTlsError(e) ?? `tls: ${code ?? 'handshake failed'} (${e.message.slice(0, 160)})`;
  return Object.assign(new UpstreamConnectionError(detail, 'MESHGATE_TLS_HANDSHAKE'), { tls: detail, cause: e });
}

interface Fields {
  /** End-to-end headers: lower-case names, repeats as arrays. */
  headers: ResponseHeaders;
  keepAlive: string | undefined;
  /** Connection: close. */
  close: boolean;
}

/** Adds a field to a header object: repeats become arrays. */
function addField(headers: ResponseHeaders, key: string, value: string): void {
  const cur = headers[key];
  // Plain objects: a name like `constructor` finds an inherited value, which a header simply replaces.
  if (typeof cur === 'string') headers[key] = [cur, value];
  else if (Array.isArray(cur)) cur.push(value);
  else headers[key] = value;
}

/**
 * The end-to-end headers of a parsed response head: hop-by-hop fields and
 * those the Connection header names are left out. Control characters other
 * than HTAB were refused by the parser; what a downstream refuses beyond that
 * is refused when the header is passed on (a 502 UP).
 */
function responseFields(h: ResponseHead): Fields {
  const headers: ResponseHeaders = {};
  let keepAlive: string | undefined;
  const { raw, lower } = h;
  for (let i = 0; i < lower.length; i++) {
    const key = lower[i]!;
    if (HOP_BY_HOP.has(key)) {
      if (key === 'keep-alive') keepAlive = raw[2 * i + 1];
      continue;
    }
    addField(headers, key, raw[2 * i + 1]!);
  }
  const connection = h.connection;
  let close = false;
  if (connection !== undefined && connection !== 'keep-alive') {
    close = connectionHasToken(connection, 'close');
    const extra = connectionTokens(connection);
    if (extra !== undefined) for (const name of extra) delete headers[name];
  }
  return { headers, keepAlive, close };
}

/** Trailer fields passed on: all but those that frame, route or authenticate. */
function trailerObject(raw: readonly string[]): ResponseHeaders | undefined {
  if (raw.length === 0) return undefined;
  const out: ResponseHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!.toLowerCase();
    if (!FORBIDDEN_TRAILERS.has(key)) addField(out, key, raw[i + 1]!);
  }
  return out;
}

/** Keep-alive connections to one upstream instance. */
export class H1Pool {
  /** Connected and waiting, most recently used last. */
  private readonly idle: H1Conn[] = [];
  /** Requests waiting for a connection, in order. */
  private readonly queue: H1Request[] = [];
  private readonly conns = new Set<H1Conn>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  /** host:port, as a Host header names it. */
  readonly authority: string;
  /** With TLS: the last session the upstream gave, for the next connection to resume. */
  tlsSession: Buffer | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly opts: H1PoolOptions,
  ) {
    this.authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  }

  /** Starts a request; throws (synchronously) only when the request itself is invalid. */
  request(opts: H1RequestOptions, handler: H1Handler): H1Request {
    const r = new H1Request(this, opts, handler);
    if (this.closed) {
      r.fail(new UpstreamConnectionError('connection pool closed', 'MESHGATE_POOL_CLOSED'));
      return r;
    }
    this.dispatch(r);
    return r;
  }

  get size(): number {
    return this.conns.size;
  }

  private dispatch(r: H1Request): void {
    const now = Date.now();
    for (let c = this.idle.pop(); c !== undefined; c = this.idle.pop()) {
      if (c.usable(now)) {
        c.assign(r);
        return;
      }
      c.destroy();
    }
    if (this.conns.size < this.opts.connections) {
      const c = new H1Conn(this, this.host, this.port);
      this.conns.add(c);
      c.assign(r);
      return;
    }
    this.queue.push(r);
  }

  dequeue(r: H1Request): void {
    const i = this.queue.indexOf(r);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** A connection is free: it takes the next waiting request, or idles. */
  release(c: H1Conn): void {
    // Requests leave the queue when aborted (H1Request.abort), so a waiting one is always live.
    const r = this.queue.shift();
    if (r !== undefined) {
      c.assign(r);
      return;
    }
    if (this.closed) {
      c.destroy();
      return;
    }
    c.idleSince = Date.now();
    this.idle.push(c);
    if (this.sweepTimer === undefined) {
      this.sweepTimer = setTimeout(this.sweep, 1000);
      this.sweepTimer.unref();
    }
  }

  /** A connection closed: a waiting request gets a new one. */
  removed(c: H1Conn): void {
    this.conns.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.closed) return;
    const r = this.queue.shift();
    if (r !== undefined) this.dispatch(r);
  }

  /** Closes connections idle past their limit; runs while any connection idles. */
  private readonly sweep = (): void => {
    this.sweepTimer = undefined;
    const now = Date.now();
    // destroy() leaves the idle list when the socket's 'close' event comes, after this loop.
    for (const c of this.idle) if (!c.usable(now)) c.destroy();
    if (this.idle.length > 0 && !this.closed) {
      this.sweepTimer = setTimeout(this.sweep, 1000);
      this.sweepTimer.unref();
    }
  };

  /** Closes idle connections now and the others when their response ends; waiting requests fail. */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    for (const r of this.queue.splice(0)) r.fail(new UpstreamConnectionError('connection pool closed', 'MESHGATE_POOL_CLOSED'));
    for (const c of this.idle.splice(0)) c.destroy();
    const open = [...this.conns];
    return Promise.all(open.map((c) => new Promise<void>((res) => (c.socket.destroyed ? res() : c.socket.once('close', () => res()))))).then(() => undefined);
  }
}
