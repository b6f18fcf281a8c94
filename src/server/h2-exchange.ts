// HTTP/2 requests and responses on node:http2's stream API: what the pipeline
// reads (DownstreamRequest) and writes (DownstreamResponse) for one
// ServerHttp2Stream, without node:http2's compat layer. What that saves per
// request: a Proxy per `req.socket`, a dozen listeners, and on a sized
// response the wait for trailers (compat always responds with
// waitForTrailers, so every response ended with an extra empty DATA frame a
// turn later).
//
// Trailers: a response waits for trailers when the client said it takes them
// (`te: trailers`, which every gRPC client sends), or when its length is not
// known from its head (no content-length: a streamed answer). A sized answer to
// a client that did not ask for trailers ends with its last DATA frame;
// trailers an upstream sends on such an answer are dropped (RFC 9110 6.5.1:
// a recipient may discard them; browsers never see trailers).
//
// Header rules are node:http2's compat layer's plus two, for heads and
// trailers alike: a field name must be a token and a value free of control
// characters (a refused head throws, so nothing is sent), and
// connection-specific fields (RFC 9113 8.2.2) are left out instead of failing
// the response (in trailers node:http2 would throw from its 'wantTrailers'
// event, out of any caller's reach).
//
// A response that is complete while the client is still sending its body (an
// answer before the body: a WAF refusal, a 413, an upstream that answered
// early) is followed by RST_STREAM with NO_ERROR (RFC 9113 8.1), so the client
// stops sending instead of waiting on a flow-control window that nobody reads
// any more. node:http2 does this itself only when nothing of the body was
// read; after a read (the WAF's, a size check's) it did not. node:http2 sends
// the response's pending DATA first (its SubmitRstStream flushes them), but a
// reset submitted with the trailers went out before them: a response with
// trailers (gRPC, te: trailers) is not followed by one, and its client's
// upload waits on the window as before. A response given whole by end() with
// no trailers added (every answer the gateway makes) does not wait for
// trailers even when the client takes them.
import { EventEmitter } from 'node:events';
import type { OutgoingHttpHeaders } from 'node:http';
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { DownstreamRequest, DownstreamResponse } from '../exchange/exchange.js';
import { BAD_VALUE_RE, invalidHeader, TOKEN_RE } from '../http1/grammar.js';

const REQUEST = Symbol('meshgate.h2.request');
const RESPONSE = Symbol('meshgate.h2.response');
type Owned = ServerHttp2Stream & { [REQUEST]?: H2Request; [RESPONSE]?: H2Response };

function onStreamData(this: Owned, chunk: Buffer): void {
  const req = this[REQUEST];
  if (req !== undefined && !req.push(chunk)) this.pause();
}

function onStreamEnd(this: Owned): void {
  this[REQUEST]?.push(null);
}

function onStreamAborted(this: Owned): void {
  const req = this[REQUEST];
  if (req === undefined || req.streamClosed) return;
  req.aborted = true;
  req.emit('aborted');
}

function onStreamDrain(this: Owned): void {
  this[RESPONSE]?.emit('drain');
}

function onWantTrailers(this: Owned): void {
  const res = this[RESPONSE];
  try {
    this.sendTrailers(res?.trailers ?? {});
  } catch (e) {
    // Trailers node:http2 refuses (addTrailers checked them): the client sees a reset, and the process lives.
    this.destroy(e as Error);
  }
  // No stopUpload here: a reset submitted with the trailers went out before them (see the head of this file).
}

/** The response is complete: a client still sending the request body is told to stop (see the head of this file). */
function stopUpload(s: ServerHttp2Stream): void {
  if (s.endAfterHeaders || s.closed || s.destroyed) return;
  if (s.state.remoteClose === 1) return;
  s.close(constants.NGHTTP2_NO_ERROR);
}

function onStreamClose(this: Owned): void {
  const req = this[REQUEST];
  if (req !== undefined) {
    this[REQUEST] = undefined;
    req.streamClosed = true;
    // The body ends here if it had not (a reset stream: `aborted` tells the readers).
    req.push(null);
    // Nobody read it: let it flow out so it can end.
    if (!req.didRead && !req.readableFlowing) req.resume();
    req.emit('close');
  }
  const res = this[RESPONSE];
  if (res !== undefined) {
    this[RESPONSE] = undefined;
    res.closed = true;
    res.emit('finish');
    res.emit('close');
  }
}

/** RFC 9113 8.2.2: fields an HTTP/2 message must not carry. */
function connectionSpecific(name: string, value: unknown): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
    case 'http2-settings':
      return true;
    case 'te':
      return value !== 'trailers';
    default:
      return false;
  }
}

type HeaderValue = number | string | readonly string[];

/** Copies `from` into `to` with lower-case names, checked as a response head's fields. */
function putHeaders(to: OutgoingHttpHeaders, from: Record<string, HeaderValue | undefined>): void {
  for (const k in from) {
    const v = from[k];
    if (v === undefined) continue;
    const name = k.toLowerCase();
    if (name.charCodeAt(0) === 58 /* ':' */ || !TOKEN_RE.test(name)) throw invalidHeader(k, 'not a token');
    if (connectionSpecific(name, v)) continue;
    if (typeof v === 'object') {
      for (const one of v) if (BAD_VALUE_RE.test(one)) throw invalidHeader(k, 'control character in value');
      to[name] = v as string[];
    } else {
      const s = typeof v === 'number' ? String(v) : v;
      if (BAD_VALUE_RE.test(s)) throw invalidHeader(k, 'control character in value');
      to[name] = s;
    }
  }
}

/** The request of one stream: its head, and its body as a Readable. */
export class H2Request extends Readable implements DownstreamRequest {
  readonly httpVersion = '2.0';
  readonly httpVersionMajor = 2;
  readonly httpVersionMinor = 0;
  readonly method: string;
  readonly url: string;
  /** The client reset the stream before its body ended. */
  aborted = false;
  /** The stream closed. */
  streamClosed = false;
  /** Someone asked for the body. */
  didRead = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
    readonly rawHeaders: string[],
    /** The connection (net or TLS), for the peer's address. */
    readonly socket: Socket,
  ) {
    super({ autoDestroy: false });
    this.method = headers[':method'] as string;
    this.url = headers[':path'] as string;
    const s = stream as Owned;
    s[REQUEST] = this;
    s.on('aborted', onStreamAborted);
    // A stream whose HEADERS ended it has no body to wait for.
    if (stream.endAfterHeaders) this.push(null);
    else s.on('end', onStreamEnd);
  }

  get complete(): boolean {
    return this.aborted || this.readableEnded || this.streamClosed || this.stream.destroyed;
  }

  override _read(): void {
    if (this.streamClosed) return;
    if (!this.didRead) {
      this.didRead = true;
      this.stream.on('data', onStreamData);
    } else this.stream.resume();
  }
}

/**
 * The response of one stream. writeHead checks and keeps the head; it is sent
 * with the first body bytes, flushHeaders() or end(), so an answer without a
 * body is one HEADERS frame that ends the stream.
 */
export class H2Response extends EventEmitter implements DownstreamResponse {
  statusCode = 200;
  writableEnded = false;
  /** The stream closed. */
  closed = false;
  /** Trailers to send after the body (when the response waits for trailers). */
  trailers: Record<string, string | string[]> | undefined;
  private stored: OutgoingHttpHeaders | undefined;
  /** writeHead was called; the head is not on the stream yet. */
  private pending = false;
  /** The head went out saying trailers follow: the response is complete once they are sent. */
  private waits = false;

  constructor(
    readonly stream: ServerHttp2Stream,
    /** The client takes trailers (`te: trailers`): every response waits for them. */
    private readonly takesTrailers: boolean,
  ) {
    super();
    const s = stream as Owned;
    s[RESPONSE] = this;
    s.on('drain', onStreamDrain);
    // The request's end too: the response is made first, and for every dispatched stream.
    s.on('close', onStreamClose);
  }

  get headersSent(): boolean {
    return this.pending || this.stream.headersSent;
  }

  get writableFinished(): boolean {
    return this.stream.writableFinished;
  }

  get destroyed(): boolean {
    return this.stream.destroyed;
  }

  /** The stream can take no more: closed, reset or destroyed. */
  private get gone(): boolean {
    const s = this.stream;
    return this.closed || s.destroyed || s.closed;
  }

  setHeader(name: string, value: HeaderValue): this {
    if (this.headersSent) throw new Error('cannot set headers after they are sent');
    putHeaders((this.stored ??= {}), { [name]: value });
    return this;
  }

  writeHead(status: number, headers?: OutgoingHttpHeaders): this {
    if (this.gone) return this;
    if (this.headersSent) throw new Error('cannot write headers after they are sent');
    if (!Number.isInteger(status) || status < 200 || status > 599) throw new RangeError(`invalid status code: ${status}`);
    if (headers !== undefined) putHeaders((this.stored ??= {}), headers as Record<string, HeaderValue | undefined>);
    this.statusCode = status;
    this.pending = true;
    return this;
  }

  /** Puts the head on the stream; false when node:http2 refused it (the stream is reset). */
  private sendHead(endStream: boolean, noTrailers = false): boolean {
    this.pending = false;
    const status = this.statusCode;
    // node:http2 ends these streams with their head whatever it is told: no trailers to wait for.
    if (status === 204 || status === 205 || status === 304 || (this.stream as { headRequest?: boolean }).headRequest === true) endStream = true;
    // The kept head is the one sent (node:http2 copies it itself).
    const out: OutgoingHttpHeaders = this.stored ?? {};
    out[':status'] = status;
    const wait = !endStream && !noTrailers && (this.takesTrailers || out['content-length'] === undefined);
    try {
      this.stream.respond(out, { endStream, waitForTrailers: wait });
    } catch (e) {
      // A status or a repeated single-value field node:http2 refuses: the client sees a reset, not a hang.
      this.stream.destroy(e as Error);
      return false;
    }
    if (wait) {
      this.waits = true;
      this.stream.on('wantTrailers', onWantTrailers);
    }
    return true;
  }

  flushHeaders(): void {
    if (this.gone || this.stream.headersSent) return;
    this.sendHead(false);
  }

  writeContinue(): void {
    if (this.headersSent || this.gone) return;
    this.stream.additionalHeaders({ ':status': 100 });
  }

  /** Checked as head fields are: connection-specific ones are left out (node:http2 would refuse the whole trailer block). */
  addTrailers(trailers: Record<string, string | string[]>): void {
    putHeaders((this.trailers ??= {}) as OutgoingHttpHeaders, trailers);
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.gone) return false;
    const s = this.stream;
    if (!s.headersSent && !this.sendHead(false)) return false;
    // HEAD, 204 and 304 answers end with their head: their body is dropped.
    if (s.writableEnded) return true;
    return s.write(chunk);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    if (this.gone) return this;
    const s = this.stream;
    const empty = chunk === undefined || chunk.length === 0;
    if (!s.headersSent) {
      // No body: the head ends the stream (one HEADERS frame; a gRPC trailers-only answer).
      // With a body, the whole response is here: no trailers can come after it unless added already.
      if (!this.sendHead(empty, this.trailers === undefined)) return this;
      if (empty) {
        stopUpload(s);
        return this;
      }
    }
    if (s.writableEnded) return this;
    if (empty) s.end();
    else s.end(chunk);
    if (!this.waits) stopUpload(s);
    return this;
  }

  destroy(err?: Error): void {
    if (!this.stream.destroyed) this.stream.destroy(err);
  }
}

/** Takes trailers: the request's `te` lists "trailers" (the only value HTTP/2 allows). */
export function takesTrailers(headers: IncomingHttpHeaders): boolean {
  const te = headers.te;
  return te !== undefined && String(te).toLowerCase().includes('trailers');
}
