// The request path: global filters -> route match -> route filters ->
// backend choice (canary, weights) -> forward (instance, breaker, adapter) ->
// access log + metrics. Reads one RuntimeState reference per request and
// never awaits the control plane.
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Cluster } from '../balancing/cluster.js';
import type { ClusterManager } from '../balancing/clusters.js';
import type { Instance } from '../balancing/instance.js';
import type { FilterInstance, FilterResult, Rejection } from '../filters/types.js';
import { AddressSet, realClientIp } from '../filters/ip-restriction.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import { accessLogLine, redactQuery, refusedLogLine, type AccessLogSink } from '../observability/logger.js';
import { routeToCanary, type CompiledBackend } from '../routing/canary.js';
import { applyGrey } from '../routing/grey.js';
import { normalizeHost } from '../exchange/normalize.js';
import type { CompiledRoute } from '../routing/router.js';
import { chooseBackend, pickInstance } from '../routing/select.js';
import { forward, type ForwardDeps, type UpgradeRequest } from '../upstreams/forward.js';
import { upgradeProtocols } from '../upstreams/http.js';
import type { RouteHandler } from '../upstreams/route-handlers.js';
import type { UpstreamAdapter } from '../upstreams/types.js';
import type { FailureKind } from '../exchange/outcome.js';
import { Exchange, type DownstreamRequest, type DownstreamResponse } from '../exchange/exchange.js';
import { connectionTokens } from '../http1/fields.js';
import { detachedResponse, type H1Request } from './h1server.js';
import type { Flag } from '../exchange/flags.js';
import { sendDirect, sendError, sendInternalError } from '../exchange/respond.js';
import type { RuntimeState } from './runtime.js';

const REQUEST_ID_RE = /^[\w.:-]{1,128}$/;
const ignoreError = (): void => undefined;
const ignoreData = (): void => undefined;

const EXCHANGE = Symbol('meshgate.exchange');
/** Each config generation's redacted query parameter names, lower case. */
const REDACT_SETS = new WeakMap<object, ReadonlySet<string>>();
type ResponseWithExchange = DownstreamResponse & { [EXCHANGE]?: PipelineExchange };

/** An exchange with what only the pipeline needs: the config generation it started on, its route's filters. */
class PipelineExchange extends Exchange {
  /** The runtime state (routes, filters) this exchange started on. */
  runtime!: RuntimeState;
  /** The matched route's filters (their onDone hooks run when the exchange ends). */
  routeFilters: readonly FilterInstance[] | undefined;
  /** An upgrade request (WebSocket): the client's socket and what followed the head. */
  upgrade: UpgradeRequest | undefined;
}

export interface PipelineDeps {
  clusters: ClusterManager;
  metrics: Metrics;
  log: Logger;
  accessLog: AccessLogSink | undefined;
  /** protocol -> adapter (http always; http2/grpc/dubbo when available) */
  adapters: Map<string, UpstreamAdapter>;
}

function isThenable(v: unknown): v is PromiseLike<FilterResult> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** Run filters from index i; synchronous unless a filter returns a promise. */
function runChain(chain: readonly FilterInstance[], ex: Exchange, i = 0): FilterResult | Promise<FilterResult> {
  for (; i < chain.length; i++) {
    const f = chain[i]!;
    if (f.onRequest === undefined) continue;
    const r = f.onRequest(ex);
    if (isThenable(r)) {
      const next = i + 1;
      return Promise.resolve(r).then((v) => (v ? v : runChain(chain, ex, next)));
    }
    if (r) return r;
  }
  return undefined;
}

/** The flag of an upgrade that got no answer to pass on. */
function upgradeFailureFlag(f: FailureKind | undefined): Flag {
  switch (f) {
    case 'timeout':
      return 'UT';
    case 'connect-failure':
      return 'UF';
    case 'protocol':
      return 'UP';
    case 'aborted':
      return 'DC';
  }
  return 'UC';
}

/** What a listener trusts of a request's forwarding headers (its trustForwarded and trustedProxies settings). */
export interface ClientTrust {
  /** Pass the client's X-Forwarded-* on upstream. */
  readonly trustForwarded: boolean;
  /** Peers whose X-Forwarded-For names the client; undefined: none. */
  readonly trustedProxies: AddressSet | undefined;
}

const NO_TRUST: ClientTrust = { trustForwarded: false, trustedProxies: undefined };

/** A listener's settings compiled for the request path. */
export function clientTrust(listener: { trustForwarded: boolean; trustedProxies?: readonly string[] }): ClientTrust {
  const proxies = listener.trustedProxies ?? [];
  return { trustForwarded: listener.trustForwarded, trustedProxies: proxies.length ? new AddressSet(proxies) : undefined };
}


/** The client address without the IPv4-mapped prefix. */
function plainIp(address: string | undefined): string {
  const a = address ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export class Pipeline {
  state: RuntimeState;
  readonly forwardDeps: ForwardDeps;
  inflight = 0;
  /** Set by the gateway when `tracing:` is configured. */
  tracing: Tracing | undefined;

  constructor(
    initial: RuntimeState,
    private readonly deps: PipelineDeps,
  ) {
    this.state = initial;
    const pipeline = this;
    this.closeListener = function (this: DownstreamResponse) {
      pipeline.responseClosed(this);
    };
    this.forwardDeps = {
      metrics: deps.metrics,
      adapterFor: (cluster, inst) => this.adapterFor(cluster, inst),
      pickInstance,
      cluster: (s) => deps.clusters.get(s),
      onTlsFailure: (service, instance, detail) => {
        // Once per instance and reason: a failing instance must not fill the log with one line per request.
        const key = `${instance} ${detail}`;
        if (this.tlsWarned.has(key)) return;
        if (this.tlsWarned.size >= 1000) this.tlsWarned.clear();
        this.tlsWarned.add(key);
        deps.log.warn({ service, instance, reason: detail }, `upstream TLS handshake with ${instance} failed: ${detail}`);
      },
    };
  }

  /** Upstream TLS failures already logged (instance and detail). */
  private readonly tlsWarned = new Set<string>();

  adapterFor(cluster: Cluster, inst: Instance): UpstreamAdapter | undefined {
    const protocol = cluster.config.protocol ?? inst.metadata.protocol ?? 'http';
    return this.deps.adapters.get(protocol);
  }

  private newExchange(req: DownstreamRequest, res: DownstreamResponse, scheme: 'http' | 'https', trust: ClientTrust): PipelineExchange {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && REQUEST_ID_RE.test(given) ? given : randomUUID();
    const authority = req.headers.host ?? (req.headers[':authority'] as string | undefined);
    // The client is the peer, or, behind trusted proxies, who X-Forwarded-For names (security.md 4).
    const peer = plainIp(req.socket?.remoteAddress);
    const clientIp = trust.trustedProxies === undefined ? peer : realClientIp(peer, req.rawHeaders, trust.trustedProxies);
    const ex = new PipelineExchange(req, res, requestId, clientIp, normalizeHost(authority), scheme);
    ex.runtime = this.state;
    const echo = this.state.config.requestId.response;
    ex.echoRequestId = echo === 'always' || (echo === 'auto' && req.httpVersion !== '2.0');
    ex.trustForwarded = trust.trustForwarded;
    ex.peerIp = peer;
    return ex;
  }

  /**
   * The response's 'close' listener: one function per pipeline, not a closure
   * per request; the exchange rides on the response.
   */
  private readonly closeListener: (this: DownstreamResponse) => void;

  private responseClosed(res: DownstreamResponse): void {
    const ex = (res as ResponseWithExchange)[EXCHANGE]!;
    this.inflight--;
    // HTTP/2 reports a stream reset by the client as writableFinished; writableEnded tells.
    // A tunnel (101) ends when either side closes: that is its normal end.
    if ((!res.writableFinished || !res.writableEnded) && ex.status !== 101) {
      ex.cancel.abort();
      if (!ex.flag) ex.flag = 'DC';
      if (!res.headersSent) ex.status = 499;
    }
    this.done(ex);
  }

  /** The 'request' handler of a listener. */
  handle(req: DownstreamRequest, res: DownstreamResponse, scheme: 'http' | 'https' = 'http', trust: ClientTrust = NO_TRUST, upgrade?: UpgradeRequest): void {
    // The request body's error path for the whole exchange: whoever reads the body
    // (an upstream adapter, a route handler, nobody) comes and goes, and a client that
    // leaves mid-body must never leave an 'error' without a listener (it ends the process).
    // The exchange learns of it from the response's 'close' (ex.cancel).
    req.on('error', ignoreError);
    const ex = this.newExchange(req, res, scheme, trust);
    if (this.tracing !== undefined) ex.trace = this.tracing.startRequest(ex);
    ex.upgrade = upgrade;
    this.inflight++;
    (res as ResponseWithExchange)[EXCHANGE] = ex;
    res.on('close', this.closeListener);
    if (ex.matchPath.charCodeAt(0) !== 47 /* / */) {
      // absolute-form or asterisk-form targets are not proxied
      if (req.method === 'OPTIONS' && ex.matchPath === '*') sendDirect(ex, 204, '');
      else sendError(ex, 'BR', 'request target must be an absolute path');
      return;
    }
    // The route is matched first (matching reads nothing filters change), so that
    // global filters know it: a route may stand in for a global filter (the WAF).
    // Global filters run whether a route matched or not.
    const route = ex.runtime.router.match(ex);
    if (route) {
      ex.routeName = route.name;
      ex.routeFilters = route.filters;
    }
    const r = runChain(route?.globalFilters ?? ex.runtime.globalFilters, ex);
    if (isThenable(r)) {
      r.then(
        (v) => (v ? this.reject(ex, v, route) : this.routeFilters(ex, route)),
        (e) => this.internalError(ex, e),
      );
    } else if (r) this.reject(ex, r, route);
    else this.routeFilters(ex, route);
  }

  private routeFilters(ex: PipelineExchange, route: CompiledRoute | undefined): void {
    if (!route) {
      sendError(ex, 'NR', `no route for ${ex.method} ${ex.host}${ex.matchPath}`);
      return;
    }
    const r = runChain(route.filters, ex);
    if (isThenable(r)) {
      r.then(
        (v) => (v ? this.reject(ex, v, route) : this.dispatch(ex, route)),
        (e) => this.internalError(ex, e),
      );
    } else if (r) this.reject(ex, r, route);
    else this.dispatch(ex, route);
  }

  private reject(ex: Exchange, rej: Rejection, route: CompiledRoute | undefined): void {
    this.deps.metrics.rejections.labels(rej.flag, route?.name ?? '', ex.vars.rejectedBy ? String(ex.vars.rejectedBy) : '').inc();
    if (rej.body !== undefined) {
      ex.flag = rej.flag;
      sendDirect(ex, rej.status, rej.body, { 'x-meshgate-flag': rej.flag, ...rej.headers });
    } else sendError(ex, rej.flag, rej.message, rej.status, rej.headers);
  }

  private internalError(ex: Exchange, e: unknown): void {
    this.deps.log.error({ err: e, requestId: ex.requestId }, 'request pipeline error');
    sendInternalError(ex);
  }

  private dispatch(ex: PipelineExchange, route: CompiledRoute): void {
    if (route.kind === 'direct') {
      const d = route.config.directResponse!;
      sendDirect(ex, d.status, d.body);
      return;
    }
    if (ex.upgrade !== undefined && route.kind !== 'proxy') {
      sendError(ex, 'UP', `${route.kind} routes do not take upgrades`);
      return;
    }
    if (ex.req.headers.expect === '100-continue') ex.res.writeContinue?.();
    if (route.kind !== 'proxy') {
      (route.handler as RouteHandler).handle(ex, route, ex.cancel).catch((e) => this.internalError(ex, e));
      return;
    }
    const backend = chooseBackend(ex, route.main, route.canary, route.grey);
    if (!backend) {
      sendError(ex, 'UH', 'route has no backend with weight > 0');
      return;
    }
    forward(ex, backend, route.config.timeoutMs, ex.cancel, this.forwardDeps, ex.upgrade).catch((e) => this.internalError(ex, e));
  }

  /** The 'upgrade' handler (WebSocket): the same path as any request, with the socket handed to forward. */
  handleUpgrade(req: H1Request, socket: Socket, head: Buffer, scheme: 'http' | 'https' = 'http', trust: ClientTrust = NO_TRUST): void {
    socket.on('error', ignoreError);
    const res = detachedResponse(req, socket);
    // The response 'close' (exchange done, or the client gone before an answer) comes from the socket.
    socket.once('end', () => res.closedUnderneath());
    socket.once('close', () => res.closedUnderneath());
    if (upgradeProtocols(req.headers.upgrade) === undefined) {
      // Upgrade: h2c (alone) is never forwarded: the request is served as the plain
      // HTTP/1.1 request it also is, without Upgrade and HTTP2-Settings (hop-by-hop),
      // and the connection closes after the answer. The socket is read (and what
      // comes is dropped) so that a client leaving is noticed.
      socket.on('data', ignoreData);
      socket.resume();
      this.handle(req, res, scheme, trust);
      return;
    }
    this.handle(req, res, scheme, trust, { socket, head });
  }

  /**
   * A request the HTTP/1.1 server refused before it became an exchange
   * (malformed, too large, too slow): counted with flag BR and logged.
   */
  refused(status: number, reason: string, remoteAddress: string | undefined): void {
    this.deps.metrics.observeRequest('', '', status, 'BR', 0);
    this.deps.accessLog?.write(refusedLogLine(plainIp(remoteAddress), status, reason));
  }

  private done(ex: PipelineExchange): void {
    const state = ex.runtime;
    const seconds = ex.elapsedMs() / 1000;
    const status = ex.status || ex.res.statusCode || 0;
    this.deps.metrics.observeRequest(ex.routeName, ex.service, status, ex.flag, seconds);
    this.deps.metrics.countBytes(ex.routeName, ex.bytesIn, ex.bytesOut);
    for (const f of state.globalFilters) f.onDone?.(ex);
    if (ex.routeFilters) for (const f of ex.routeFilters) f.onDone?.(ex);
    for (const cb of ex.onDone) cb(ex);
    ex.trace?.end(ex, status);
    if (this.deps.accessLog !== undefined) {
      const log = state.config.log;
      let redact = REDACT_SETS.get(log);
      if (redact === undefined) REDACT_SETS.set(log, (redact = new Set(log.redactQuery.map((n) => n.toLowerCase()))));
      this.deps.accessLog.write(accessLogLine(ex, status, seconds * 1000, redactQuery(ex.queryString, redact)));
    }
  }
}
