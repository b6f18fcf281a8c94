// HTTP-to-Dubbo routes (Higress http2rpc semantics): map the request to a
// service method, build Java-typed arguments, and make a generic ($invoke)
// call through forward() — so instance choice, breakers, retries, outlier
// detection and metrics are the same as for HTTP backends.
import { readWholeBody } from '../../exchange/body.js';
import type { Cancellation } from '../../exchange/cancel.js';
import type { ClusterManager } from '../../balancing/clusters.js';
import { BackendSet, type CompiledBackend, type CompiledCanary } from '../../routing/canary.js';
import type { CompiledRoute } from '../../routing/router.js';
import { chooseBackend, pickInstance } from '../../routing/select.js';
import type { Exchange } from '../../exchange/exchange.js';
import { sendError } from '../../exchange/respond.js';
import { forward, type ForwardDeps } from '../forward.js';
import { applyHeaderOpsToObject, HOP_BY_HOP } from '../headers.js';
import type { CompileDeps, RouteHandler } from '../route-handlers.js';
import { DubboAdapter, setInvocation, type DubboAdapterOptions } from './adapter.js';
import { genericInvocation } from './codec.js';
import { buildArgs, compileMethod, matchMethod, orderMethods, type CompiledMethod } from './mapping.js';
import { ParamError } from './params.js';

/** Largest request body read for BODY parameters. */
export const MAX_REQUEST_BODY = 4 * 1024 * 1024;

/** Attachment keys the gateway sets itself; headers never override them. */
const RESERVED = new Set(['path', 'interface', 'version', 'group', 'timeout', 'generic', 'dubbo', 'input', 'dubbo.tag']);

interface Shared {
  adapter: DubboAdapter;
  refs: number;
  clusters: ClusterManager;
  onEndpoints: () => void;
}

// One adapter (connection pool) per gateway: it outlives config reloads, so
// connections survive them. Keyed by the gateway's ClusterManager.
const shared = new WeakMap<ClusterManager, Shared>();
let adapterOptions: DubboAdapterOptions = {};

/** Options for adapters created from now on (tests shorten heartbeats). */
export function setDubboAdapterOptions(opts: DubboAdapterOptions): void {
  adapterOptions = opts;
}

function acquireAdapter(clusters: ClusterManager): Shared {
  let s = shared.get(clusters);
  if (!s) {
    const adapter = new DubboAdapter(adapterOptions);
    // Providers that leave the registry: close their connections.
    const onEndpoints = (): void => {
      const live = new Set<string>();
      for (const c of clusters.all()) for (const i of c.instances) live.add(i.id);
      adapter.prune(live);
    };
    clusters.on('endpoints', onEndpoints);
    s = { adapter, refs: 0, clusters, onEndpoints };
    shared.set(clusters, s);
  }
  s.refs++;
  return s;
}

function releaseAdapter(s: Shared): void {
  if (--s.refs > 0) return;
  s.clusters.off('endpoints', s.onEndpoints);
  if (shared.get(s.clusters) === s) shared.delete(s.clusters);
  void s.adapter.close();
}

/** The Dubbo adapter of a gateway (by its ClusterManager), if a dubbo route created one. */
export function dubboAdapterOf(clusters: ClusterManager): DubboAdapter | undefined {
  return shared.get(clusters)?.adapter;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

/**
 * A registry lists every protocol a provider exports (dubbo://, tri://,
 * rest://) under one service. Prefer instances labelled protocol=dubbo; when
 * none is labelled (static endpoints), use them all.
 */
function dubboOnly(set: BackendSet): BackendSet {
  return new BackendSet(
    set.backends.map(
      (b): CompiledBackend => ({
        ...b,
        subset: { ...b.subset, protocol: 'dubbo' },
        subsetFallback: b.subset ? b.subsetFallback : 'all',
      }),
    ),
  );
}

export class DubboRouteHandler implements RouteHandler {
  private readonly methods: CompiledMethod[];
  private readonly main: BackendSet;
  private readonly canary: CompiledCanary | undefined;
  private readonly fwd: ForwardDeps;
  private readonly shared: Shared;
  private readonly timeoutMs: number | undefined;
  private readonly service: string;
  private readonly version: string;
  private readonly group: string;
  private closed = false;

  constructor(route: CompiledRoute, deps: CompileDeps) {
    const cfg = route.config.dubbo!;
    if (route.main.backends.length === 0 && !route.canary) throw new Error('a dubbo route needs backends: the provider service as discovered, e.g. providers:<interface>:<version>:<group>.<registry>');
    this.methods = orderMethods(
      cfg.methods.map((m, i) => {
        try {
          return compileMethod(m);
        } catch (e) {
          throw new Error(`methods[${i}].${(e as Error).message}`);
        }
      }),
    );
    this.service = cfg.service;
    this.version = cfg.version;
    this.group = cfg.group;
    this.timeoutMs = cfg.timeoutMs ?? route.config.timeoutMs;
    this.main = dubboOnly(route.main);
    this.canary = route.canary && { ...route.canary, backends: dubboOnly(route.canary.backends) };
    this.shared = acquireAdapter(deps.clusters);
    const adapter = this.shared.adapter;
    this.fwd = {
      metrics: deps.metrics,
      adapterFor: () => adapter,
      pickInstance,
      cluster: (s) => deps.clusters.get(s),
    };
  }

  private attachments(ex: Exchange, m: CompiledMethod): Record<string, string> {
    const att: Record<string, string> = { path: this.service, interface: this.service, generic: 'true' };
    if (this.version) att.version = this.version;
    // Providers find the exporter by the group attachment.
    if (this.group) att.group = this.group;
    if (ex.tag) att['dubbo.tag'] = ex.tag;
    if (m.attach === 'none') return att;
    // The headers as an HTTP upstream would get them: filters' request header operations
    // applied (auth sets the consumer header and removes client-sent identity headers).
    let headers: Record<string, string | string[] | undefined> = ex.req.headers;
    if (ex.requestHeaderOps.length !== 0) {
      headers = { ...headers };
      applyHeaderOpsToObject(headers, ex.requestHeaderOps);
    }
    if (m.attach === 'all') {
      for (const name in headers) {
        if (name.charCodeAt(0) === 58 /* : */ || HOP_BY_HOP.has(name) || name === 'content-length' || RESERVED.has(name)) continue;
        const v = headerValue(headers[name]);
        if (v !== undefined) att[name] = v;
      }
    } else {
      for (const name of m.attach) {
        if (RESERVED.has(name)) continue;
        const v = headerValue(headers[name]);
        if (v !== undefined) att[name] = v;
      }
    }
    return att;
  }

  async handle(ex: Exchange, route: CompiledRoute, signal: Cancellation): Promise<void> {
    const found = matchMethod(this.methods, ex.matchPath, ex.method);
    if ('notFound' in found) {
      sendError(ex, 'NR', `no Dubbo method is mapped to ${ex.matchPath}`, 404);
      return;
    }
    if ('notAllowed' in found) {
      sendError(ex, 'BR', `${ex.method} is not allowed for ${ex.matchPath}`, 405, { allow: found.notAllowed.join(', ') });
      return;
    }
    const m = found.method;
    let bodyText = '';
    let body: unknown;
    if (m.needsBody) {
      const read = await readWholeBody(ex.body, MAX_REQUEST_BODY, (n) => (ex.bytesIn += n));
      if (read === 'aborted') {
        ex.flag = 'DC';
        ex.status = 499;
        return;
      }
      if (read === 'too-large') {
        sendError(ex, 'BR', `request body larger than ${MAX_REQUEST_BODY} bytes`, 413);
        return;
      }
      const text = read.toString('utf8');
      bodyText = text;
      if (text.trim() !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          if (!m.bodyMayBeText) {
            sendError(ex, 'BR', 'request body is not valid JSON', 400);
            return;
          }
        }
      }
    }
    let args: unknown[];
    try {
      args = buildArgs(found, { query: (n) => ex.query(n), header: (n) => ex.header(n), body, bodyText });
    } catch (e) {
      if (!(e instanceof ParamError)) throw e;
      sendError(ex, 'BR', e.message, 400);
      return;
    }
    // Full-link grey: the tag picks the instance lane and travels as dubbo.tag (so the choice comes first).
    const backend = chooseBackend(ex, this.main, this.canary, route.grey);
    if (!backend) {
      sendError(ex, 'UH', 'route has no backend with weight > 0');
      return;
    }
    setInvocation(ex, genericInvocation(this.service, this.version, this.group, m.serviceMethod, m.types, args, this.attachments(ex, m)));
    ex.vars.dubboMethod = m.serviceMethod;
    await forward(ex, backend, this.timeoutMs, signal, this.fwd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    releaseAdapter(this.shared);
  }
}
