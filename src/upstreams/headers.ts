// Header rules shared by upstream adapters: hop-by-hop stripping (RFC 9110 7.6.1),
// forwarded headers, header operations.
import type { Exchange, HeaderOps } from '../server/exchange.js';

export const HOP_BY_HOP = new Set([
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

/** An HTTP token (RFC 9110 5.6.2): what a method or a header name must be. */
export const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

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

/** Apply add/set/remove operations to a flat [name, value, ...] header list. */
export function applyHeaderOpsToList(list: string[], ops: readonly HeaderOps[]): void {
  for (const op of ops) {
    if (op.remove || op.set) {
      const drop = new Set<string>([...(op.remove ?? []), ...Object.keys(op.set ?? {})].map((n) => n.toLowerCase()));
      for (let i = list.length - 2; i >= 0; i -= 2) if (drop.has(list[i]!.toLowerCase())) list.splice(i, 2);
    }
    if (op.set) for (const [k, v] of Object.entries(op.set)) list.push(k, v);
    if (op.add) for (const [k, v] of Object.entries(op.add)) list.push(k, v);
  }
}

/** Apply add/set/remove operations to a header object (response headers). */
export function applyHeaderOpsToObject(h: Record<string, string | string[] | undefined>, ops: readonly HeaderOps[]): void {
  for (const op of ops) {
    for (const n of op.remove ?? []) delete h[n.toLowerCase()];
    for (const [k, v] of Object.entries(op.set ?? {})) h[k.toLowerCase()] = v;
    for (const [k, v] of Object.entries(op.add ?? {})) {
      const key = k.toLowerCase();
      const cur = h[key];
      h[key] = cur === undefined ? v : Array.isArray(cur) ? [...cur, v] : [cur, v];
    }
  }
}

/** What the gateway adds to an upstream's response headers: x-request-id, cookies set by filters, the route's header operations. */
export function addGatewayResponseHeaders(out: Record<string, string | string[] | undefined>, ex: Exchange): void {
  out['x-request-id'] ??= ex.requestId;
  if (ex.responseCookies) {
    const cur = out['set-cookie'];
    out['set-cookie'] = cur === undefined ? ex.responseCookies : ([] as string[]).concat(cur, ex.responseCookies);
  }
  if (ex.responseHeaderOps.length) applyHeaderOpsToObject(out, ex.responseHeaderOps);
}
