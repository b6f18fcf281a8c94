// Routes that are not plain proxies (dubbo: HTTP-to-Dubbo)
// compile a handler here; the pipeline calls it instead of forward().
import type { CompiledRoute } from '../routing/router.js';
import type { Exchange } from '../server/exchange.js';
import type { CompileDeps } from '../server/runtime.js';
import type { Cancellation } from './cancel.js';

export interface RouteHandler {
  handle(ex: Exchange, route: CompiledRoute, signal: Cancellation): Promise<void>;
  close?(): void;
}

type HandlerFactory = (route: CompiledRoute, deps: CompileDeps) => RouteHandler;
const factories = new Map<string, HandlerFactory>();

export function registerRouteHandler(kind: 'dubbo', factory: HandlerFactory): void {
  factories.set(kind, factory);
}

export function compileRouteHandler(route: CompiledRoute, deps: CompileDeps): RouteHandler {
  const f = factories.get(route.kind);
  if (!f) throw new Error(`${route.kind} routes are not available in this build`);
  return f(route, deps);
}
