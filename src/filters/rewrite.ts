// rewrite: change the upstream path (prefix, exact, or regex substitution) and Host.
import type { z } from 'zod';
import type { RewriteFilterSchema } from '../config/schema.js';
import type { Exchange } from '../server/exchange.js';
import type { FilterInstance } from './types.js';

type RewriteConfig = z.output<typeof RewriteFilterSchema>;

function joinPrefix(newPrefix: string, rest: string): string {
  if (rest === '') return newPrefix;
  if (newPrefix.endsWith('/') && rest.startsWith('/')) return newPrefix + rest.slice(1);
  if (!newPrefix.endsWith('/') && !rest.startsWith('/')) return `${newPrefix}/${rest}`;
  return newPrefix + rest;
}

/** `routePrefix` is the prefix the route matched on (prefix rewrites replace it). */
export function createRewrite(config: RewriteConfig, routePrefix: string | undefined): FilterInstance {
  const p = config.path;
  let rewritePath: ((path: string) => string) | undefined;
  if (p && 'prefix' in p) {
    if (routePrefix === undefined) throw new Error('rewrite.path.prefix needs a route that matches on a path prefix');
    const from = routePrefix;
    rewritePath = (path) => (path.startsWith(from) ? joinPrefix(p.prefix, path.slice(from.length)) : path);
  } else if (p && 'exact' in p) {
    rewritePath = () => p.exact;
  } else if (p && 'regex' in p) {
    const re = new RegExp(p.regex);
    rewritePath = (path) => path.replace(re, p.substitution);
  }
  const host = config.host;
  return {
    type: 'rewrite',
    phase: 'transform',
    onRequest(ex: Exchange) {
      if (rewritePath) {
        const q = ex.queryString ? `?${ex.queryString}` : '';
        ex.path = rewritePath(ex.matchPath) + q;
      }
      if (host !== undefined) ex.upstreamHost = host;
    },
  };
}
