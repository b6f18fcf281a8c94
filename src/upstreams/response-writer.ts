// The one place an upstream response reaches the client. Adapters report what
// the upstream says (head, body, trailers, a break, a switched protocol) to a
// ResponseSink; forward() makes one per attempt and decides through it what
// is held back for a retry and what is committed. Nothing else in upstreams/
// writes to the client.
import type { Duplex } from 'node:stream';
import type { Http2ServerResponse } from 'node:http2';
import { constants as h2 } from 'node:http2';
import type { DownstreamResponse, Exchange } from '../exchange/exchange.js';
import { addGatewayResponseHeaders } from './headers.js';
import type { ResponseHead, ResponseSink } from './types.js';

/** Why the sink refused a head or a body: the adapter fails the attempt with it. */
export class SinkError extends Error {
  constructor(
    message: string,
    /** MESHGATE_ABORTED: the client is gone; MESHGATE_BAD_RESPONSE: the downstream refused the head. */
    readonly code: 'MESHGATE_ABORTED' | 'MESHGATE_BAD_RESPONSE',
  ) {
    super(message);
  }
}

const CLIENT_GONE = (): SinkError => new SinkError('request aborted', 'MESHGATE_ABORTED');

/** The downstream HTTP/2 stream of a response, when it is one. */
function h2Stream(res: DownstreamResponse): Http2ServerResponse['stream'] | undefined {
  const stream = (res as Http2ServerResponse).stream as Http2ServerResponse['stream'] | undefined;
  return stream !== undefined && 'rstCode' in stream ? stream : undefined;
}

/** The client is gone (its connection, or its HTTP/2 stream). */
export function downstreamGone(res: DownstreamResponse): boolean {
  if (res.destroyed) return true;
  return h2Stream(res)?.destroyed === true;
}

/** Breaks a response off: an HTTP/2 stream is reset with `code`, an HTTP/1.1 connection closed. */
export function resetDownstream(res: DownstreamResponse, code: number = h2.NGHTTP2_INTERNAL_ERROR): void {
  const stream = h2Stream(res);
  if (stream) {
    if (!stream.destroyed) stream.close(code);
  } else if (!res.destroyed) res.destroy();
}

export class ResponseWriter implements ResponseSink {
  committed = false;
  /** The head was held back for a retry: the rest of this response is dropped. */
  held = false;
  private status = 0;
  /** A sized response's head, not written until its first body bytes (or its end). */
  private heldHead: ResponseHead | undefined;

  constructor(
    private readonly ex: Exchange,
    /** True for a status forward wants retried rather than passed on. */
    private readonly hold: ((status: number) => boolean) | undefined,
    /** Where 'drain' is heard (the client's socket, for a response written straight to it). */
    private readonly drainSource: { once(e: 'drain', cb: () => void): unknown } = ex.res,
  ) {}

  /** Made right before its attempt starts. */
  private readonly startedAt = performance.now();

  head(status: number, headers: ResponseHead, endStream = false, retryable = true): 'hold' | SinkError | undefined {
    const ex = this.ex;
    // The upstream's time to headers, for the access log; set here because the response may end
    // (and be logged) before the attempt's promise settles in forward.
    ex.upstreamMs = performance.now() - this.startedAt;
    if (retryable && this.hold?.(status)) {
      this.held = true;
      return 'hold';
    }
    const res = ex.res;
    addGatewayResponseHeaders(headers, ex);
    if (res.headersSent || downstreamGone(res)) return CLIENT_GONE();
    this.status = status;
    if (endStream) {
      // No body follows: for gRPC a trailers-only response, which must stay one
      // HEADERS frame with END_STREAM (setHeader + end, not writeHead).
      try {
        res.statusCode = status;
        for (const k in headers) if (headers[k] !== undefined) res.setHeader(k, headers[k]!);
      } catch (e) {
        return new SinkError(`upstream response header refused: ${(e as Error).message}`, 'MESHGATE_BAD_RESPONSE');
      }
      this.committed = true;
      ex.status = status;
      res.end();
      return undefined;
    }
    // Streams of unknown length (SSE, long polls) get their head at once. A sized
    // body's head waits for its first bytes (or its end) and goes out with them: an
    // upstream that fails before them leaves nothing sent, so the client gets a 502
    // (or the request a retry) instead of a head with no body behind it.
    if (headers['content-length'] !== undefined) {
      this.heldHead = headers;
      return undefined;
    }
    const err = this.commit(headers);
    if (err) return err;
    res.flushHeaders?.();
    return undefined;
  }

  private commit(headers: ResponseHead): SinkError | undefined {
    try {
      this.ex.res.writeHead(this.status, headers as Record<string, string | string[]>);
    } catch (e) {
      // A header the downstream refuses (a control character in a value): nothing was sent.
      return new SinkError(`upstream response header refused: ${(e as Error).message}`, 'MESHGATE_BAD_RESPONSE');
    }
    this.committed = true;
    this.ex.status = this.status;
    return undefined;
  }

  private commitHeld(): SinkError | undefined {
    const h = this.heldHead;
    if (h === undefined) return undefined;
    this.heldHead = undefined;
    return this.commit(h);
  }

  data(chunk: Buffer): boolean | SinkError {
    if (this.held) return true;
    if (this.heldHead !== undefined) {
      const err = this.commitHeld();
      if (err) return err;
    }
    if (!this.committed) return true;
    this.ex.bytesOut += chunk.length;
    return this.ex.res.write(chunk);
  }

  onDrain(resume: () => void): void {
    this.drainSource.once('drain', resume);
  }

  end(trailers?: Record<string, string | string[] | undefined>): SinkError | undefined {
    if (this.held) return undefined;
    if (this.heldHead !== undefined) {
      const err = this.commitHeld();
      if (err) return err;
    }
    if (!this.committed) return undefined;
    const res = this.ex.res;
    if (trailers && res.addTrailers) {
      let any = false;
      for (const k in trailers) if (trailers[k] !== undefined) any = true;
      if (any) {
        try {
          res.addTrailers(trailers as Record<string, string | string[]>);
        } catch {
          /* the downstream cannot carry trailers */
        }
      }
    }
    res.end();
    return undefined;
  }

  broken(err: Error, h2Code?: number): void {
    // Mid-stream failure: the client must see a broken response, not a clean end.
    if (!this.committed) return;
    const res = this.ex.res;
    if (h2Stream(res)) resetDownstream(res, h2Code ?? h2.NGHTTP2_INTERNAL_ERROR);
    else if (!res.destroyed) res.destroy(err);
  }

  tunnel(status: number, headers: ResponseHead, client: Duplex, upstream: Duplex, head: Buffer): void {
    const ex = this.ex;
    this.committed = true;
    this.status = status;
    ex.status = status;
    let text = `HTTP/1.1 ${status} Switching Protocols\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) text += `${k}: ${one}\r\n`;
    }
    client.write(text + '\r\n');
    if (head.length) upstream.write(head);
    upstream.on('data', (d: Buffer) => (ex.bytesOut += d.length));
    client.on('data', (d: Buffer) => (ex.bytesIn += d.length));
    upstream.pipe(client);
    client.pipe(upstream);
    const close = (): void => {
      upstream.destroy();
      client.destroy();
    };
    upstream.once('close', close);
    client.once('close', close);
    upstream.on('error', close);
    client.on('error', close);
  }
}
