// HTTP-to-Dubbo: registers the `dubbo` route handler (imported once at startup).
import { registerRouteHandler } from '../route-handlers.js';
import { DubboRouteHandler } from './handler.js';

registerRouteHandler('dubbo', (route, deps) => new DubboRouteHandler(route, deps));

export { DubboAdapter, httpStatusFor, STATUS_TO_HTTP } from './adapter.js';
export { dubboAdapterOf, DubboRouteHandler, setDubboAdapterOptions } from './handler.js';
