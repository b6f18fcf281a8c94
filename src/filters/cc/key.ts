// Rate-limit keys: the one syntax every limit keyed by a client identity uses
// (cc rules, AI token limits):
//   ip | consumer | { header: N } | { cookie: N } | { query: N }
// or a list of them for a combined key (every part must be present).
import { z } from 'zod';
import { strict } from '../../config/schema.js';
import type { Exchange } from '../../exchange/exchange.js';

const name = z.string().min(1);

export const RateKeyPartSchema = z.union([
  z.literal('ip'),
  z.literal('consumer'),
  strict({ header: name }),
  strict({ cookie: name }),
  strict({ query: name }),
]);

export const RateKeySchema = z.union([RateKeyPartSchema, z.array(RateKeyPartSchema).min(1).max(8)]);

export type RateKeyPart = z.output<typeof RateKeyPartSchema>;
export type RateKey = z.output<typeof RateKeySchema>;
/** The identity a request is counted under, or undefined when it lacks a part of the key (the limit does not apply to it). */
export type RateKeyFn = (ex: Exchange) => string | undefined;

/**
 * Longest value of one key part kept. A longer value is cut, so one hostile
 * header cannot make a counter key of any size; two values that share their
 * first 256 characters share a counter (only the sender of both can arrange that).
 */
export const MAX_KEY_PART = 256;

/** Separates the parts of a combined key's value (a control character: not in any header value, nor in an IP or consumer name). */
export const KEY_SEPARATOR = '\u001f';

function partFn(p: RateKeyPart): (ex: Exchange) => string | undefined {
  if (p === 'ip') return (ex) => ex.clientIp;
  if (p === 'consumer') return (ex) => ex.consumer;
  if ('header' in p) {
    const h = p.header.toLowerCase();
    return (ex) => ex.header(h);
  }
  if ('cookie' in p) {
    const c = p.cookie;
    return (ex) => ex.cookie(c);
  }
  const q = p.query;
  return (ex) => ex.query(q);
}

const cut = (v: string): string => (v.length > MAX_KEY_PART ? v.slice(0, MAX_KEY_PART) : v);

/** Compiles a key to the function that reads it from a request. An empty value counts as absent. */
export function compileRateKey(key: RateKey): RateKeyFn {
  const parts = Array.isArray(key) ? key : [key];
  if (parts.length === 1) {
    const f = partFn(parts[0]!);
    return (ex) => {
      const v = f(ex);
      return v ? cut(v) : undefined;
    };
  }
  const fns = parts.map(partFn);
  return (ex) => {
    let out = '';
    for (let i = 0; i < fns.length; i++) {
      const v = fns[i]!(ex);
      if (!v) return undefined;
      out += i === 0 ? cut(v) : KEY_SEPARATOR + cut(v);
    }
    return out;
  };
}

/** True when the key needs the authenticated consumer (the limit must run after the auth phase). */
export function keyNeedsConsumer(key: RateKey): boolean {
  return (Array.isArray(key) ? key : [key]).some((p) => p === 'consumer');
}

/** A short human name of a key, for logs and the admin view: "ip", "header x-api-key", "ip+consumer". */
export function describeRateKey(key: RateKey): string {
  return (Array.isArray(key) ? key : [key])
    .map((p) => (typeof p === 'string' ? p : 'header' in p ? `header ${p.header}` : 'cookie' in p ? `cookie ${p.cookie}` : `query ${p.query}`))
    .join('+');
}
