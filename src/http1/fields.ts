// Header policy shared by both sides: hop-by-hop fields (RFC 9110 7.6.1) and
// the Connection header's tokens.

/** Fields that describe one connection, never forwarded. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * Fields that may not come in trailers: framing, routing and authentication
 * (RFC 9110 6.5.1). Trailers are read and dropped on requests; on responses
 * these are dropped and the rest passed on.
 */
export const FORBIDDEN_TRAILERS: ReadonlySet<string> = new Set([
  'content-length',
  'transfer-encoding',
  'host',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'content-encoding',
  'content-type',
  'content-range',
  'authorization',
  'set-cookie',
  'cookie',
  'expect',
  'max-forwards',
  'cache-control',
]);

/** Does a comma-separated header value (Connection) list `token`? Case-insensitive; spaces and tabs around items ignored. */
export function connectionHasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  for (const item of value.split(',')) {
    let s = 0;
    let e = item.length;
    while (s < e && (item.charCodeAt(s) === 32 || item.charCodeAt(s) === 9)) s++;
    while (e > s && (item.charCodeAt(e - 1) === 32 || item.charCodeAt(e - 1) === 9)) e--;
    if (e - s === token.length && item.slice(s, e).toLowerCase() === token) return true;
  }
  return false;
}

/** Extra hop-by-hop names listed in a Connection header. */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (!value) return undefined;
  const s = Array.isArray(value) ? value.join(',') : value;
  if (s === 'keep-alive' || s === 'close' || s === 'Keep-Alive') return undefined;
  const out = new Set<string>();
  for (const t of s.split(',')) {
    const n = t.trim().toLowerCase();
    if (n && n !== 'close' && n !== 'keep-alive') out.add(n);
  }
  return out.size ? out : undefined;
}
