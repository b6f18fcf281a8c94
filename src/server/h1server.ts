// meshgate's HTTP/1.1 server side, on node:net sockets (no node:http): the
// connection lifecycle. The wire rules (head scanning and parsing, chunked
// coding, header policy) are src/http1/'s, shared with the upstream client
// and held to llhttp by the differential tests (test/unit/http1/).
//
// One H1Connection per client connection reads request heads, frames request
// bodies (content-length or chunked) into an H1Request (a Readable), and
// writes one H1Response at a time. Requests on a connection are answered in
// order: a pipelined request is parsed only after the previous response has
// finished.
//
// A request the wire codec refuses is answered 4xx/5xx (flag BR) and the
// connection closed; the answer to HEAD has no body.
// Bounds per connection: a head of maxHeaderBytes (431), pipelined bytes of
// PIPELINE_BUFFER while a response is pending (reading pauses), a body
// stream's highWaterMark (reading pauses until the upstream takes it).
// Timeouts, checked by one sweep a second: a head must arrive within
// headersTimeoutMs of its first byte (408); body bytes may pause at most
// bodyTimeoutMs while the gateway reads (408, or the connection closes once
// answering began); an idle keep-alive connection closes after
// keepAliveTimeoutMs, which responses announce in Keep-Alive.
import { EventEmitter } from 'node:events';
import { STATUS_CODES, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { ChunkedDecoder, chunkSizeLine, lastChunk } from '../http1/chunked.js';
import { connectionHasToken, FORBIDDEN_TRAILERS } from '../http1/fields.js';
import { MAX_FIELDS } from '../http1/frame.js';
import { BAD_VALUE_RE, DIGITS_RE, invalidHeader, TOKEN_RE, WireError } from '../http1/grammar.js';
import { holdToTurnEnd } from '../http1/turn-writes.js';
import { HeadScanner, keepsAlive, parseRequestHead, type RequestHead } from '../http1/head.js';

const EMPTY = Buffer.alloc(0);
/** Bytes of pipelined requests buffered while a response is pending, before reading pauses. */
const PIPELINE_BUFFER = 256 * 1024;
const SWEEP_MS = 1000;
/**
 * After an answer given before the request body was read, at most this much
 * of the rest is read and dropped to keep the connection; a larger rest (or a
 * chunked one, of unknown size) closes the connection after the answer, so a
 * refused upload cannot keep the gateway reading.
 */
const DISCARD_LIMIT = 1024 * 1024;
/**
 * A connection closed while its client may still be sending: how long what
 * still comes is read and dropped after the answer, so that the client reads
 * the answer rather than a reset (nginx's lingering close).
 */
const LINGER_MS = 2000;

/** Request headers whose duplicates are dropped (the first wins), as node:http does. */
const SINGLE = new Set([
  'content-type',
  'user-agent',
  'referer',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/** The cached Date header value, rebuilt once a second. */
let dateSecond = 0;
let dateValue = '';
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

// ---------- request ----------

export class H1Request extends Readable {
  readonly httpVersionMajor = 1;
  readonly httpVersion: string;
  /** The whole body was read. */
  complete = false;
  /** The connection closed before the body was read. */
  aborted = false;
  trailers: Record<string, string> = {};

  constructor(
    private readonly conn: H1Connection | undefined,
    readonly method: string,
    readonly url: string,
    readonly httpVersionMinor: number,
    readonly headers: IncomingHttpHeaders,
    readonly rawHeaders: string[],
    readonly socket: Socket,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.httpVersion = httpVersionMinor === 1 ? '1.1' : '1.0';
  }

  /** The request has no body; its end is pushed on the first read. */
  bodyless = false;

  /**
   * The whole body, when it came in the same read as the head (a
   * content-length body): also pushed into this stream, which is unchanged for
   * its readers. A filter that must see the body first (the WAF) reads it here,
   * synchronously, instead of reading the stream and replaying it.
   */
  wholeBody: Buffer | undefined;

  override _read(): void {
    if (this.bodyless) this.push(null);
    else this.conn?.resumeBody();
  }

  /** The connection went away before the body ended. */
  abort(): void {
    if (this.complete || this.aborted) return;
    this.aborted = true;
    this.emit('aborted');
    // Like node:http: an error only for whoever listens for one.
    if (this.listenerCount('error') > 0) {
      const err = new Error('aborted') as NodeJS.ErrnoException;
      err.code = 'ECONNRESET';
      this.destroy(err);
    } else this.destroy();
  }
}

// ---------- response ----------

/** Where a response writes, and who hears that it finished. */
interface ResponseOwner {
  readonly socket: Socket;
  /** Keep the connection open after this response. */
  keepAlive: boolean;
  /** `timeout=N` for the Keep-Alive header. */
  readonly keepAliveHint: string;
  /** The request body is not read to its end yet (the response then closes the connection if the client may not send it). */
  bodyPending(): boolean;
  /** What is left of a pending body is small enough to read and drop to keep the connection (DISCARD_LIMIT). */
  bodyDiscardable(): boolean;
  responseFinished(res: H1Response): void;
}

type HeaderValue = string | number | readonly string[];
type OutgoingHeaders = Record<string, HeaderValue | undefined>;

export class H1Response extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  private closeEmitted = false;
  private readonly socket: Socket;
  /** Head serialized but not written yet (written with the first body bytes). */
  private pendingHead: string | undefined;
  private chunked = false;
  private noBody: boolean;
  /** Body bytes still owed under content-length; -1 = not sized. */
  private left = -1;
  private hasDate = false;
  private stored: OutgoingHeaders | undefined;
  private trailers: Record<string, string | string[]> | undefined;
  private continueSent = false;

  constructor(
    private readonly owner: ResponseOwner,
    private readonly req: H1Request,
  ) {
    super();
    this.socket = owner.socket;
    this.noBody = req.method === 'HEAD';
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) throw new Error('cannot set headers after they are sent');
    (this.stored ??= {})[name.toLowerCase()] = value;
    return this;
  }

  writeContinue(): void {
    if (this.headersSent || this.continueSent || this.destroyed || this.req.httpVersionMinor === 0) return;
    this.continueSent = true;
    this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  /** One header line (or lines, for a list); framing and connection headers are the server's to write. */
  private line(name: string, value: HeaderValue): string {
    if (!TOKEN_RE.test(name)) throw invalidHeader(name, 'not a token');
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'date') this.hasDate = true;
        break;
      case 10: {
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          if (connectionHasToken(String(value), 'close')) this.owner.keepAlive = false;
          return '';
        }
        if (lower === 'keep-alive') return '';
        break;
      }
      case 14:
        if (name.toLowerCase() === 'content-length') {
          const s = String(value);
          if (!DIGITS_RE.test(s)) throw invalidHeader(name, 'not a length');
          this.left = Number(s);
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return '';
        break;
    }
    if (typeof value === 'object') {
      let out = '';
      for (const v of value) {
        if (BAD_VALUE_RE.test(v)) throw invalidHeader(name, 'control character in value');
        out += `${name}: ${v}\r\n`;
      }
      return out;
    }
    const v = typeof value === 'number' ? String(value) : value;
    if (BAD_VALUE_RE.test(v)) throw invalidHeader(name, 'control character in value');
    return `${name}: ${v}\r\n`;
  }

  writeHead(status: number, headers?: OutgoingHeaders | readonly string[]): this {
    if (this.headersSent) throw new Error('cannot write headers after they are sent');
    if (!Number.isInteger(status) || status < 200 || status > 999) throw new RangeError(`invalid status code: ${status}`);
    this.statusCode = status;
    if (status === 204 || status === 304) this.noBody = true;
    const owner = this.owner;
    this.left = -1;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    const stored = this.stored;
    if (stored !== undefined && stored !== headers) {
      for (const k in stored) if (headers === undefined || Array.isArray(headers) || !(k in headers)) head += this.line(k, stored[k]!);
    }
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) head += this.line(headers[i] as string, headers[i + 1] as string);
    } else if (headers !== undefined) {
      const obj = headers as OutgoingHeaders;
      for (const k in obj) {
        const v = obj[k];
        if (v !== undefined) head += this.line(k, v);
      }
    }
    if (!this.hasDate) head += `date: ${httpDate()}\r\n`;
    if (this.noBody) this.left = -1;
    else if (this.left < 0) {
      // Unsized body: chunked for HTTP/1.1 clients, delimited by close for HTTP/1.0.
      if (this.req.httpVersionMinor === 1) {
        this.chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else owner.keepAlive = false;
    }
    // A client told to expect 100-continue that never got it may or may not send its body.
    if (owner.keepAlive && this.req.headers.expect !== undefined && !this.continueSent && owner.bodyPending()) owner.keepAlive = false;
    if (owner.keepAlive && owner.bodyPending() && !owner.bodyDiscardable()) owner.keepAlive = false;
    if (owner.keepAlive) {
      head += this.req.httpVersionMinor === 0 ? `connection: keep-alive\r\nkeep-alive: ${owner.keepAliveHint}\r\n\r\n` : `keep-alive: ${owner.keepAliveHint}\r\n\r\n`;
    } else head += 'connection: close\r\n\r\n';
    this.pendingHead = head;
    this.headersSent = true;
    return this;
  }

  /** Write the head now rather than with the first body bytes (streams of unknown length). */
  flushHeaders(): void {
    if (!this.headersSent) this.writeHead(this.statusCode, this.stored);
    if (this.pendingHead !== undefined && !this.destroyed) {
      this.socket.write(this.pendingHead, 'latin1');
      this.pendingHead = undefined;
    }
  }

  addTrailers(trailers: Record<string, string | string[]>): void {
    this.trailers = trailers;
  }

  /** Write body bytes; false when the client is slow (wait for 'drain'). */
  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode, this.stored);
    return this.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk, false);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    if (this.destroyed) return this;
    const body = chunk === undefined ? EMPTY : typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (!this.headersSent) {
      if (!this.noBody && this.stored?.['content-length'] === undefined) (this.stored ??= {})['content-length'] = body.length;
      this.writeHead(this.statusCode, this.stored);
    }
    this.send(body, true);
    return this;
  }

  /** Body bytes framed as the head says, the head if still pending, and at the end the terminator: one writev. */
  private send(body: Buffer, last: boolean): boolean {
    const socket = this.socket;
    let data = this.noBody ? EMPTY : body;
    if (this.left >= 0) {
      if (data.length > this.left) {
        // More than content-length announced: the rest cannot be framed.
        data = data.subarray(0, this.left);
        this.owner.keepAlive = false;
      }
      this.left -= data.length;
      // Ended short of content-length: the client must see the connection close.
      if (last && this.left > 0) this.owner.keepAlive = false;
    }
    const head = this.pendingHead;
    this.pendingHead = undefined;
    if (head !== undefined) holdToTurnEnd(socket);
    let ok: boolean;
    if (this.chunked) {
      let pre = head ?? '';
      if (data.length) pre += chunkSizeLine(data.length);
      const post = (data.length ? '\r\n' : '') + (last ? this.lastChunk() : '');
      socket.cork();
      if (pre) socket.write(pre, 'latin1');
      if (data.length) socket.write(data);
      if (post) socket.write(post, 'latin1');
      socket.uncork();
    } else if (head !== undefined) {
      if (data.length) {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(data);
        socket.uncork();
      } else socket.write(head, 'latin1');
    } else if (data.length) socket.write(data);
    ok = !socket.writableNeedDrain;
    if (last) this.whenFlushed();
    return ok;
  }

  private lastChunk(): string {
    return lastChunk(this.trailers, allowedTrailer);
  }

  /** 'finish' once the kernel has every byte (on the next tick when nothing waits in the socket's queue). */
  private whenFlushed(): void {
    const socket = this.socket;
    if (socket.writableLength === 0) process.nextTick(finishResponse, this);
    else socket.write(EMPTY, () => finishResponse(this));
  }

  /** Called once the response is complete on the wire. */
  finished(): void {
    if (this.destroyed || this.writableFinished) return;
    this.writableFinished = true;
    this.emit('finish');
    this.emitClose();
    this.owner.responseFinished(this);
  }

  private emitClose(): void {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.emit('close');
  }

  /** The connection went away before the response finished. */
  closedUnderneath(): void {
    if (this.writableFinished) return;
    this.destroyed = true;
    this.emitClose();
  }

  /** Break the response off: the connection closes ('close' follows when it has). */
  destroy(_err?: Error): this {
    if (this.destroyed || this.writableFinished) return this;
    this.destroyed = true;
    this.owner.keepAlive = false;
    this.socket.destroy();
    return this;
  }
}

/** A response on a socket taken over for an upgrade: one answer, then the socket closes. */
export function detachedResponse(req: H1Request, socket: Socket): H1Response {
  const owner: ResponseOwner = {
    socket,
    keepAlive: false,
    keepAliveHint: '',
    bodyPending: () => false,
    bodyDiscardable: () => true,
    responseFinished: () => closeAfterWrites(socket),
  };
  return new H1Response(owner, req);
}

/**
 * End the socket and close it once everything written is in the kernel (a
 * client that never closes its side holds nothing). With `linger` (the client
 * may still be sending), what still comes is read and dropped for up to
 * LINGER_MS first, or until the client closes its side (H1Connection.onEnd).
 */
function closeAfterWrites(socket: Socket, last?: string, linger = false): void {
  const done = linger ? () => lingerThenClose(socket) : () => socket.destroy();
  if (last === undefined) socket.end(done);
  else socket.end(last, 'latin1', done);
}

function lingerThenClose(socket: Socket): void {
  if (socket.destroyed) return;
  const t = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once('close', () => clearTimeout(t));
  socket.resume();
}

function finishResponse(res: H1Response): void {
  res.finished();
}

// ---------- heads ----------

/** A trailer field the response may carry: a valid name and value, and not one that frames or routes. */
function allowedTrailer(name: string, value: string): boolean {
  return TOKEN_RE.test(name) && !BAD_VALUE_RE.test(value) && !FORBIDDEN_TRAILERS.has(name.toLowerCase());
}

/** The request's header object, as node:http builds it: repeats joined with ", " (cookie with "; "), set-cookie a list, SINGLE names first-wins. */
function headerObject(raw: readonly string[], lower: readonly string[]): IncomingHttpHeaders {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < lower.length; i++) {
    const name = lower[i]!;
    const value = raw[2 * i + 1]!;
    const prev = headers[name];
    if (prev === undefined) headers[name] = name === 'set-cookie' ? [value] : value;
    else if (name === 'set-cookie') (prev as string[]).push(value);
    else if (name === 'cookie') headers[name] = `${prev}; ${value}`;
    else if (!SINGLE.has(name)) headers[name] = `${prev}, ${value}`;
  }
  return headers as IncomingHttpHeaders;
}

// ---------- connection ----------

export interface H1ServerOptions {
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  /** Longest pause between request body bytes while the gateway reads (408, or the connection closes). */
  bodyTimeoutMs: number;
  maxHeaderBytes: number;
  onRequest(req: H1Request, res: H1Response): void;
  onUpgrade(req: H1Request, socket: Socket, head: Buffer): void;
  /** A request refused before it reached onRequest (for metrics and the access log). */
  onRefused?(status: number, reason: string, socket: Socket): void;
}

const enum State {
  /** Waiting for (or reading) a request head. */
  Head,
  /** Reading the request body. */
  Body,
  /** The request was read; its response is not finished. */
  Answer,
  Closed,
}

class H1Connection implements ResponseOwner {
  keepAlive = true;
  readonly keepAliveHint: string;
  private state = State.Head;
  private buf: Buffer | undefined;
  private readonly scanner: HeadScanner;
  /** Date.now() when body bytes last came (or reading last resumed); 0 when not reading a body. */
  private bodyAt = 0;
  private req: H1Request | undefined;
  private res: H1Response | undefined;
  /** Content-length bytes left of the request body; -1 when chunked. */
  private bodyLeft = 0;
  private chunks: ChunkedDecoder | undefined;
  /** The response finished before the body was read: the rest is read and dropped. */
  private dumping = false;
  private paused = false;
  /** Date.now() when the current head's first byte came, or 0. */
  headStarted = 0;
  /** Date.now() when the connection became idle, or 0 while busy. */
  idleSince: number;
  private readonly pushBody = (b: Buffer): void => this.body(b);

  constructor(
    readonly socket: Socket,
    private readonly server: H1Server,
  ) {
    this.keepAliveHint = `timeout=${Math.floor(server.opts.keepAliveTimeoutMs / 1000)}`;
    this.scanner = new HeadScanner(true, server.opts.maxHeaderBytes);
    this.idleSince = Date.now();
    socket.on('data', (d: Buffer) => this.feed(d));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClose());
    socket.on('error', () => undefined);
    socket.on('drain', () => this.res?.emit('drain'));
  }

  get idle(): boolean {
    return this.state === State.Head && this.buf === undefined;
  }

  bodyPending(): boolean {
    return this.state === State.Body;
  }

  bodyDiscardable(): boolean {
    return this.chunks === undefined && this.bodyLeft <= DISCARD_LIMIT;
  }

  feed(d: Buffer): void {
    switch (this.state) {
      case State.Head:
        if (this.buf === undefined) {
          this.buf = d;
          this.headStarted = Date.now();
          this.idleSince = 0;
        } else this.buf = Buffer.concat([this.buf, d]);
        this.parse();
        return;
      case State.Body:
        this.feedBody(d);
        return;
      case State.Answer:
        // A pipelined request: kept until the response before it is finished.
        this.buf = this.buf === undefined ? d : Buffer.concat([this.buf, d]);
        if (this.buf.length > PIPELINE_BUFFER) this.pause();
        return;
      case State.Closed:
        return;
    }
  }

  private parse(): void {
    const buf = this.buf!;
    const scanner = this.scanner;
    let end: number;
    try {
      end = scanner.scan(buf);
    } catch (e) {
      this.refuse(e as WireError, buf.toString('latin1', scanner.start, scanner.start + 5) === 'HEAD ');
      return;
    }
    if (end < 0) {
      // Only empty lines so far: they are dropped (the head's clock keeps running; they cannot hold a connection open).
      if (scanner.empty && scanner.start > 0) {
        this.buf = scanner.start < buf.length ? buf.subarray(scanner.start) : EMPTY;
        scanner.reset();
      }
      return;
    }
    let head: RequestHead;
    try {
      head = parseRequestHead(scanner, MAX_FIELDS);
      if (head.upgrade && (head.chunked || head.contentLength > 0)) throw new WireError(400, 'upgrade request with a body');
    } catch (e) {
      this.refuse(e instanceof WireError ? e : new WireError(400, 'bad request'), buf.toString('latin1', scanner.start, scanner.start + 5) === 'HEAD ');
      return;
    }
    scanner.reset();
    const rest = end < buf.length ? buf.subarray(end) : undefined;
    this.buf = undefined;
    this.headStarted = 0;
    const headers = headerObject(head.raw, head.lower);
    const req = new H1Request(this, head.method, head.url, head.minor, headers, head.raw, this.socket);
    this.req = req;
    const connection = head.connection;
    this.keepAlive = keepsAlive(head.minor, connection);
    if (this.server.closing) this.keepAlive = false;
    if (head.upgrade) {
      this.detach();
      req.complete = true;
      req.push(null);
      this.server.opts.onUpgrade(req, this.socket, rest ?? EMPTY);
      return;
    }
    this.res = new H1Response(this, req);
    if (head.chunked) {
      this.state = State.Body;
      this.bodyLeft = -1;
      this.chunks = new ChunkedDecoder(this.server.opts.maxHeaderBytes, 400);
      this.bodyAt = Date.now();
    } else if (head.contentLength > 0) {
      this.state = State.Body;
      this.bodyLeft = head.contentLength;
      this.bodyAt = Date.now();
    } else {
      // No body: the stream ends when someone reads it (most never do), not now.
      this.state = State.Answer;
      req.complete = true;
      req.bodyless = true;
    }
    let after = rest;
    if (rest !== undefined && this.state === State.Body && this.chunks === undefined && rest.length >= this.bodyLeft) {
      // The whole body is here: the request is handed over complete (see H1Request.wholeBody).
      const n = this.bodyLeft;
      req.wholeBody = rest.length === n ? rest : rest.subarray(0, n);
      after = rest.length === n ? undefined : rest.subarray(n);
      this.feedBody(req.wholeBody);
    }
    this.server.opts.onRequest(req, this.res);
    if (after !== undefined && !this.socket.destroyed) this.feed(after);
  }

  private feedBody(d: Buffer): void {
    let rest: Buffer | undefined;
    if (this.chunks) {
      let at: number;
      try {
        at = this.chunks.feed(d, this.pushBody);
      } catch (e) {
        this.bodyError(e as WireError);
        return;
      }
      if (at < 0) return;
      if (at < d.length) rest = d.subarray(at);
    } else {
      const take = Math.min(this.bodyLeft, d.length);
      this.body(take === d.length ? d : d.subarray(0, take));
      this.bodyLeft -= take;
      if (this.bodyLeft > 0) return;
      if (take < d.length) rest = d.subarray(take);
    }
    this.bodyEnded();
    if (rest !== undefined && this.state !== State.Closed) this.feed(rest);
  }

  private body(b: Buffer): void {
    this.bodyAt = Date.now();
    if (this.dumping) return;
    if (!this.req!.push(b)) this.pause();
  }

  private bodyEnded(): void {
    const req = this.req!;
    this.chunks = undefined;
    req.complete = true;
    if (this.dumping) {
      this.dumping = false;
      this.next();
      return;
    }
    this.state = State.Answer;
    this.bodyAt = 0;
    req.push(null);
  }

  /** A malformed chunked body: answer 400 if nothing was answered yet, else drop the connection. */
  private bodyError(e: WireError): void {
    const req = this.req!;
    if (this.res && !this.res.headersSent) {
      req.abort();
      this.res.closedUnderneath();
      this.refuse(e);
    } else this.socket.destroy();
  }

  resumeBody(): void {
    if (this.state === State.Body) this.resume();
  }

  private pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private resume(): void {
    if (this.paused) {
      this.paused = false;
      // The body's idle clock counts only while the gateway is reading.
      if (this.state === State.Body) this.bodyAt = Date.now();
      this.socket.resume();
    }
  }

  responseFinished(res: H1Response): void {
    if (res !== this.res) return;
    if (!this.keepAlive || this.server.closing) {
      // The client may still be sending its body: it is read and dropped while the answer drains (see closeAfterWrites).
      const sending = this.state === State.Body;
      this.state = State.Closed;
      this.req = undefined;
      this.res = undefined;
      if (sending) this.resume();
      closeAfterWrites(this.socket, undefined, sending);
      return;
    }
    if (this.state === State.Body) {
      // Read the rest of the body and drop it, so the connection can carry the next request.
      this.dumping = true;
      this.resume();
      return;
    }
    this.next();
  }

  /** Ready for the next request on this connection. */
  private next(): void {
    this.state = State.Head;
    this.req = undefined;
    this.res = undefined;
    const pending = this.buf;
    this.buf = undefined;
    this.resume();
    if (pending !== undefined) this.feed(pending);
    else this.idleSince = Date.now();
  }

  /** Answer a request the server refuses, then close; the answer to a HEAD request has no body. */
  refuse(e: WireError, head = this.req?.method === 'HEAD'): void {
    this.state = State.Closed;
    this.buf = undefined;
    const socket = this.socket;
    this.server.opts.onRefused?.(e.status, e.message, socket);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    closeAfterWrites(socket, errorResponse(e.status, e.message, head));
  }

  private onEnd(): void {
    // The client stopped sending: a request in flight is abandoned (as node:http does).
    if (this.state !== State.Head || this.buf !== undefined) this.abandon();
    if (!this.socket.destroyed) this.socket.destroy();
  }

  private onClose(): void {
    this.abandon();
    this.state = State.Closed;
    this.server.forget(this);
  }

  private abandon(): void {
    this.req?.abort();
    this.res?.closedUnderneath();
  }

  /** Hand the socket over (upgrade): the connection stops reading it. */
  private detach(): void {
    this.state = State.Closed;
    // Paused until the new owner reads (pipe resumes it): no byte is lost in between.
    this.socket.pause();
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('drain');
    this.server.forget(this);
  }

  /** Time out a head that takes too long, or an idle keep-alive connection. */
  sweep(now: number): void {
    const o = this.server.opts;
    if (this.state === State.Head) {
      if (this.buf !== undefined && this.headStarted && now - this.headStarted > o.headersTimeoutMs) this.refuse(new WireError(408, 'request head timeout'));
      else if (this.buf === undefined && this.idleSince && now - this.idleSince > o.keepAliveTimeoutMs) this.socket.destroy();
    } else if (this.state === State.Body && !this.paused && this.bodyAt && now - this.bodyAt > o.bodyTimeoutMs) {
      // The client stopped sending its body: 408 if nothing was answered yet, else the connection closes.
      this.bodyAt = 0;
      this.bodyError(new WireError(408, 'request body timeout'));
    }
  }
}

function errorResponse(status: number, message: string, head: boolean): string {
  const body = JSON.stringify({ error: message, flag: 'BR' });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\ncontent-type: application/json\r\nx-meshgate-flag: BR\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${head ? '' : body}`
  );
}

// ---------- server ----------

export class H1Server {
  private readonly conns = new Set<H1Connection>();
  private timer: NodeJS.Timeout | undefined;
  /** Stop keeping connections alive: each closes after its current response. */
  closing = false;

  constructor(readonly opts: H1ServerOptions) {}

  /** Serve a connection; `first` is bytes already read from it. */
  connection(socket: Socket, first?: Buffer): void {
    socket.setNoDelay(true);
    const c = new H1Connection(socket, this);
    this.conns.add(c);
    this.timer ??= setInterval(() => this.sweepAll(), SWEEP_MS).unref();
    if (first?.length) c.feed(first);
    socket.resume();
  }

  forget(c: H1Connection): void {
    this.conns.delete(c);
    if (this.conns.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private sweepAll(): void {
    const now = Date.now();
    for (const c of this.conns) c.sweep(now);
  }

  closeIdleConnections(): void {
    for (const c of this.conns) if (c.idle) c.socket.destroy();
  }

  closeAllConnections(): void {
    for (const c of this.conns) c.socket.destroy();
  }

  /** No more keep-alive; idle connections close now, busy ones after their response. */
  close(): void {
    this.closing = true;
    for (const c of this.conns) c.keepAlive = false;
    this.closeIdleConnections();
  }
}
