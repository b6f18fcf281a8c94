// AI routes: registers the `ai` route handler (imported once at startup).
import { registerRouteHandler } from '../route-handlers.js';
import { AiRouteHandler } from './handler.js';

registerRouteHandler('ai', (route, deps) => new AiRouteHandler(route, deps));

export { AiRouteHandler } from './handler.js';
