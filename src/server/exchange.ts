// One request's context, shared by filters, the router, balancers and upstream adapters.
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Instance } from '../balancing/instance.js';
import type { H1Request } from './h1server.js';
import type { PickContext } from '../balancing/types.js';
import type { Flag } from './flags.js';
import { normalizePath } from '../routing/match.js';
import { CancelToken } from '../upstreams/cancel.js';
import type { RuntimeState } from './runtime.js';

/** HTTP/1.1 requests come from meshgate's own server (h1server.ts), HTTP/2 from node:http2's compat API. */
export type DownstreamRequest = H1Request | Http2ServerRequest;
/**
 * What the gateway uses of a response: met by meshgate's HTTP/1.1 response
 * (h1server.ts) and by node:http2's compat response.
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

export class Exchange implements PickContext {
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
  bytesIn = 0;
  bytesOut = 0;
  instance: Instance | undefined;
  /** Trust X-Forwarded-* from the client (listener setting). */
  trustForwarded = false;
  /** Grey tag for full-link grey release (passed upstream). */
  tag: string | undefined;
  /** The matched route's filters (their onDone hooks run when the exchange ends). */
  routeFilters: readonly import('../filters/types.js').FilterInstance[] | undefined;
  /** Aborted when the client goes away (the response closed before it ended). */
  readonly cancel = new CancelToken();
  /** The runtime state (routes, filters) this exchange started on. */
  runtime: RuntimeState | undefined;
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
    this.path = this.matchPath === rawPath ? url : q === -1 ? this.matchPath : `${this.matchPath}?${this.queryString}`;
  }

  get method(): string {
    return this.req.method ?? 'GET';
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
