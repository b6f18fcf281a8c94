// rewrite: change the upstream path (prefix, exact, or regex substitution) and Host.
import { z } from 'zod';
import { strict } from '../config/schema.js';
import { ensureLinearRegexEngine } from '../config/linear-regex.js';
import type { Exchange } from '../exchange/exchange.js';
import { defineFilter, type FilterInstance } from './types.js';

// The path regex is matched against client paths.
ensureLinearRegexEngine();

function regexError(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
const compiles = (source: string): boolean => regexError(source) === undefined;

export const RewriteFilterSchema = strict({
  type: z.literal('rewrite'),
  /** prefix: replaces the matched route prefix; exact: replaces the whole path; regex+substitution */
  path: z
    .union([
      strict({ prefix: z.string().startsWith('/') }),
      strict({ exact: z.string().startsWith('/') }),
      strict({ regex: z.string().refine(compiles, { error: (i) => `invalid regular expression: ${regexError(String(i.input))}` }), substitution: z.string() }),
    ])
    .optional(),
  host: z.string().min(1).optional(),
});

type RewriteConfig = z.output<typeof RewriteFilterSchema>;

export const rewriteFilter = defineFilter({
  type: 'rewrite',
  schema: RewriteFilterSchema,
  create: (config, ctx) => createRewrite(config, ctx.routePrefix),
});

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
