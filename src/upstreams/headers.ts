// Header rules shared by upstream adapters: forwarded headers, header
// operations. The wire rules (hop-by-hop fields, tokens) live in src/http1/.
import type { Exchange, HeaderOps } from '../exchange/exchange.js';

export { connectionHasToken, connectionTokens, HOP_BY_HOP } from '../http1/fields.js';
export { TOKEN_RE } from '../http1/grammar.js';

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
  if (ex.echoRequestId) out['x-request-id'] ??= ex.requestId;
  if (ex.responseCookies) {
    const cur = out['set-cookie'];
    out['set-cookie'] = cur === undefined ? ex.responseCookies : ([] as string[]).concat(cur, ex.responseCookies);
  }
  if (ex.responseHeaderOps.length) applyHeaderOpsToObject(out, ex.responseHeaderOps);
}
