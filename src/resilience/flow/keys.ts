// Keys of gateway flow rules (Sentinel GatewayParamFlowItem): client IP, host,
// header, query parameter, cookie or authenticated consumer, optionally
// filtered by a match.
import type { KeySource, StringMatch } from '../../config/schema.js';
import { compileStringMatch } from '../../routing/match.js';
import type { Exchange } from '../../exchange/exchange.js';

/**
 * Returns the key a request is counted under, or undefined when the rule does
 * not apply to it. A rule without a key counts every request under ''.
 * A keyed rule skips requests without the key (Sentinel passes a null
 * parameter) and, with a match, requests whose value does not match (Sentinel
 * gives those an unlimited threshold). Each matching value is limited
 * separately.
 */
export type KeyFn = (ex: Exchange) => string | undefined;

const MAX_KEY_LENGTH = 256;

export function compileKey(key: KeySource | undefined, match: StringMatch | undefined): KeyFn {
  if (!key) {
    if (match) throw new Error('match: needs a key to match against');
    return () => '';
  }
  const get = extractor(key);
  const test = match ? compileStringMatch(match) : undefined;
  return (ex) => {
    let v = get(ex);
    if (v === undefined) return undefined;
    if (test !== undefined && !test(v)) return undefined;
    // Bound the memory one hostile value can take.
    if (v.length > MAX_KEY_LENGTH) v = v.slice(0, MAX_KEY_LENGTH);
    return v;
  };
}

function extractor(key: KeySource): (ex: Exchange) => string | undefined {
  if ('ip' in key) return (ex) => ex.clientIp;
  if ('host' in key) return (ex) => ex.host;
  if ('consumer' in key) return (ex) => ex.consumer;
  if ('header' in key) {
    const name = key.header.toLowerCase();
    return (ex) => ex.header(name);
  }
  if ('query' in key) {
    const name = key.query;
    return (ex) => ex.query(name);
  }
  const name = key.cookie;
  return (ex) => ex.cookie(name);
}

export function describeKey(key: KeySource | undefined): string {
  if (!key) return 'route';
  if ('ip' in key) return 'client ip';
  if ('host' in key) return 'host';
  if ('consumer' in key) return 'consumer';
  if ('header' in key) return `header ${key.header}`;
  if ('query' in key) return `query ${key.query}`;
  return `cookie ${key.cookie}`;
}
