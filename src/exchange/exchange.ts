// One request's context, shared by filters, the router, balancers and upstream adapters.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { Flag } from './flags.js';
import { normalizePath } from './normalize.js';
import { CancelToken } from './cancel.js';

/**
 * What the gateway uses of a request: met by meshgate's HTTP/1.1 request
 * (server/h1server.ts) and by the HTTP/2 request (server/h2-exchange.ts). The body is the
 * readable side.
 */
export interface DownstreamRequest extends Readable {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly httpVersion: string;
  readonly httpVersionMajor: number;
  readonly socket: Socket;
  /** The whole body was read. */
  readonly complete: boolean;
}
/**
 * What the gateway uses of a response: met by meshgate's HTTP/1.1 response
 * (h1server.ts) and by the HTTP/2 response (h2-exchange.ts).
 */
export interface DownstreamResponse {
  statusCode: number;
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  readonly writableFinished: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
  setHeader(name: string, value: number | string | readonly string[]): unknown;
  write(chunk: Buffer | string): boolean;
  end(): unknown;
  end(chunk: Buffer | string): unknown;
  /** Send the head now (streams of unknown length). */
  flushHeaders?(): void;
  /** Answer Expect: 100-continue. */
  writeContinue?(): void;
  /** Trailers after the body (where the protocol and framing can carry them). */
  addTrailers?(trailers: Record<string, string | string[]>): void;
  destroy(err?: Error): unknown;
  on(event: 'close' | 'drain' | 'finish', listener: () => void): unknown;
  once(event: 'close' | 'drain' | 'finish', listener: () => void): unknown;
  off(event: 'close' | 'drain' | 'finish', listener: () => void): unknown;
}

export interface HeaderOps {
  add?: Record<string, string>;
  set?: Record<string, string>;
  remove?: string[];
}

/** One upstream attempt's span (observability/tracing.ts). */
export interface AttemptTrace {
  /** The W3C traceparent the upstream gets on this attempt. */
  readonly traceparent: string;
  end(outcome: { status?: number; failure?: string }): void;
}

/** A request's trace, when tracing is on (observability/tracing.ts). */
export interface ExchangeTrace {
  readonly traceId: string;
  startAttempt(ex: Exchange, instance: string, attempt: number): AttemptTrace;
  end(ex: Exchange, status: number): void;
}

export class Exchange {
  /** performance.now() at the start (monotonic, for durations). */
  readonly startPerf = performance.now();
  /** Wall-clock start, for logs. */
  readonly startMs = Date.now();
  /** Path (with query) as it will be sent upstream; filters may rewrite it. */
  path: string;
  /** Path without the query, as matched by routes. */
  readonly matchPath: string;
  readonly queryString: string;
  private queryCache: URLSearchParams | undefined;
  private cookieCache: Map<string, string> | undefined;
  /** Host header to send upstream, undefined = per service policy. */
  upstreamHost: string | undefined;
  readonly requestHeaderOps: HeaderOps[] = [];
  readonly responseHeaderOps: HeaderOps[] = [];
  responseCookies: string[] | undefined;

  routeName = '';
  service = '';
  upstreamAddr = '';
  status = 0;
  flag: Flag | '' = '';
  attempts = 0;
  /** Proxied responses get `x-request-id` (config `requestId.response`; gateway-made answers always do). */
  echoRequestId = true;
  /** Why the last upstream attempt failed, when there is more to say than the flag (a TLS handshake: `tls: CERT_HAS_EXPIRED (...)`). */
  upstreamError: string | undefined;
  /** The last upstream attempt's time to its response headers (or to its failure), ms; undefined: none was made. */
  upstreamMs: number | undefined;
  bytesIn = 0;
  bytesOut = 0;
  /**
   * The address the connection comes from (IPv4-mapped prefix removed). It
   * differs from clientIp only behind trusted proxies; X-Forwarded-For sent
   * upstream ends with it.
   */
  peerIp: string;
  /** Trust X-Forwarded-* from the client (listener setting). */
  trustForwarded = false;
  /**
   * The authenticated consumer's name (auth filters set it; CC rules, flow
   * control keys, canary conditions, AI usage and the access log read it).
   */
  consumer: string | undefined;
  /** The request's trace, when tracing is on. */
  trace: ExchangeTrace | undefined;
  /** The traceparent for the attempt in flight (replaces the client's upstream), when tracing is on. */
  traceparent: string | undefined;
  /** Grey tag for full-link grey release (passed upstream). */
  tag: string | undefined;
  /**
   * Set by a filter that read the body first (the WAF): what upstreams read
   * in place of the request (the bytes it read, then the rest).
   */
  bodySource: Readable | undefined;
  /** Aborted when the client goes away (the response closed before it ended). */
  readonly cancel = new CancelToken();
  /** Free-form values for filters (e.g. matched rule names). */
  readonly vars: Record<string, unknown> = {};
  /** Called once when the exchange is done (response finished or aborted). */
  readonly onDone: Array<(ex: Exchange) => void> = [];

  constructor(
    readonly req: DownstreamRequest,
    readonly res: DownstreamResponse,
    readonly requestId: string,
    readonly clientIp: string,
    readonly host: string,
    readonly scheme: 'http' | 'https',
  ) {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    this.queryString = q === -1 ? '' : url.slice(q + 1);
    // Routes see, and the upstream gets, the path without dot segments.
    this.matchPath = normalizePath(rawPath);
    this.peerIp = clientIp;
    this.path = this.matchPath === rawPath ? url : q === -1 ? this.matchPath : `${this.matchPath}?${this.queryString}`;
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  /** The request body as upstreams read it. */
  get body(): Readable {
    return this.bodySource ?? this.req;
  }

  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  }

  query(name: string): string | undefined {
    if (!this.queryString) return undefined;
    this.queryCache ??= new URLSearchParams(this.queryString);
    return this.queryCache.get(name) ?? undefined;
  }

  cookie(name: string): string | undefined {
    if (!this.cookieCache) {
      this.cookieCache = new Map();
      const raw = this.req.headers.cookie;
      if (raw) {
        for (const part of raw.split(';')) {
          const eq = part.indexOf('=');
          if (eq < 0) continue;
          const k = part.slice(0, eq).trim();
          if (!this.cookieCache.has(k)) {
            let v = part.slice(eq + 1).trim();
            if (v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
            try {
              v = decodeURIComponent(v);
            } catch {
              /* keep raw */
            }
            this.cookieCache.set(k, v);
          }
        }
      }
    }
    return this.cookieCache.get(name);
  }

  setResponseCookie(cookie: string): void {
    (this.responseCookies ??= []).push(cookie);
  }

  elapsedMs(): number {
    return performance.now() - this.startPerf;
  }
}

/**
 * Whether a request has a body to forward. HTTP/1.1: Transfer-Encoding, or a
 * Content-Length other than 0. HTTP/2: a Content-Length other than 0, or a
 * HEADERS frame that did not end the stream (a body follows, length unknown)
 * for a method that carries one; a GET or HEAD with no Content-Length is sent
 * without one.
 */
export function requestHasBody(req: DownstreamRequest): boolean {
  const h = req.headers;
  const cl = h['content-length'];
  if (req.httpVersionMajor !== 2) return h['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
  if (cl !== undefined) return cl !== '0';
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  if (stream === undefined || stream.endAfterHeaders !== false || req.readableEnded) return false;
  return req.method !== 'GET' && req.method !== 'HEAD';
}
