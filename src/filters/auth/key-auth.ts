// key_auth: an API key in a header (default x-api-key) or a query parameter,
// matched against the consumers' key_auth credentials.
//
// The lookup is by the key's SHA-256, and the digests are compared with
// timingSafeEqual: no comparison ever runs over the key itself, so response
// time says nothing about how much of a guess was right.
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { strict } from '../../config/schema.js';
import type { Exchange } from '../../exchange/exchange.js';
import { defineFilter, type FilterResult } from '../types.js';
import { authenticated, commonAuthSettings, unauthorized, type AuthFilter } from './common.js';
import { EMPTY_CONSUMERS, sha256, type Consumers } from './consumers.js';

const headerName = z
  .string()
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a header name')
  .transform((h) => h.toLowerCase());

export const KeyAuthFilterSchema = strict({
  type: z.literal('key_auth'),
  /** The header carrying the key (default x-api-key when no query is named). */
  header: headerName.optional(),
  /** A query parameter carrying the key (tried after the header). */
  query: z.string().min(1).optional(),
  ...commonAuthSettings,
});

type KeyAuthConfig = z.output<typeof KeyAuthFilterSchema>;

/** The query string without parameter `name` (hideCredentials). */
export function withoutQueryParam(path: string, name: string): string {
  const q = path.indexOf('?');
  if (q < 0) return path;
  const kept = path
    .slice(q + 1)
    .split('&')
    .filter((part) => {
      const eq = part.indexOf('=');
      const k = eq < 0 ? part : part.slice(0, eq);
      let decoded = k;
      try {
        decoded = decodeURIComponent(k.replace(/\+/g, ' '));
      } catch {
        /* keep raw */
      }
      return decoded !== name;
    });
  return kept.length ? `${path.slice(0, q)}?${kept.join('&')}` : path.slice(0, q);
}

export function createKeyAuth(cfg: KeyAuthConfig, consumers: Consumers): AuthFilter {
  const header = cfg.header ?? (cfg.query === undefined ? 'x-api-key' : undefined);
  const query = cfg.query;
  const challenge = `Key realm="${cfg.realm}"${header ? `, header="${header}"` : ''}${query ? `, query="${query}"` : ''}`;
  return {
    type: 'key_auth',
    phase: 'auth',
    challenge,
    identityHeaders: [cfg.consumerHeader],
    onRequest(ex: Exchange): FilterResult {
      if (ex.consumer !== undefined) return undefined; // an earlier auth filter already knows the client
      let key: string | undefined;
      let fromQuery = false;
      if (header !== undefined) key = ex.header(header);
      if (key === undefined && query !== undefined) {
        key = ex.query(query);
        fromQuery = key !== undefined;
      }
      if (key === undefined) return undefined; // no key: another auth kind may apply; the gate decides
      const digest = sha256(key);
      const hit = consumers.keys.get(digest.toString('base64'));
      if (hit === undefined || !timingSafeEqual(hit.digest, digest)) return unauthorized(challenge, 'invalid API key');
      authenticated(ex, hit.consumer, cfg.consumerHeader);
      if (cfg.hideCredentials) {
        if (fromQuery) ex.path = withoutQueryParam(ex.path, query!);
        else ex.requestHeaderOps.push({ remove: [header!] });
      }
      return undefined;
    },
    describe: () => ({ header, query, hideCredentials: cfg.hideCredentials, consumers: new Set([...consumers.keys.values()].map((k) => k.consumer)).size }),
  };
}

export const keyAuthFilter = defineFilter({
  type: 'key_auth',
  schema: KeyAuthFilterSchema,
  create: (config, ctx) => createKeyAuth(config, ctx.consumers ?? EMPTY_CONSUMERS),
});
