// Routes that are not plain proxies (dubbo: HTTP-to-Dubbo; ai: LLM providers)
// compile a handler here; the pipeline calls it instead of forward().
import type { CompiledRoute } from '../routing/router.js';
import type { Exchange } from '../exchange/exchange.js';
import type { Logger } from 'pino';
import type { ClusterManager } from '../balancing/clusters.js';
import type { Endpoint } from '../discovery/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { CounterStore } from '../store/types.js';
import type { Cancellation } from '../exchange/cancel.js';

/** What compiling a config's routes, filters and policies needs from the gateway. */
export interface CompileDeps {
  clusters: ClusterManager;
  store: CounterStore;
  log: Logger;
  metrics: Metrics;
  /** Current endpoints of a service, for clusters a new config needs (default: none until registered). */
  endpointsOf?(service: string): readonly Endpoint[] | undefined;
}

export interface RouteHandler {
  handle(ex: Exchange, route: CompiledRoute, signal: Cancellation): Promise<void>;
  close?(): void;
}

type HandlerFactory = (route: CompiledRoute, deps: CompileDeps) => RouteHandler;
const factories = new Map<string, HandlerFactory>();

export function registerRouteHandler(kind: 'dubbo' | 'ai', factory: HandlerFactory): void {
  factories.set(kind, factory);
}

export function compileRouteHandler(route: CompiledRoute, deps: CompileDeps): RouteHandler {
  const f = factories.get(route.kind);
  if (!f) throw new Error(`${route.kind} routes are not available in this build`);
  return f(route, deps);
}
