// Upstream adapters by protocol name. A service's protocol comes from its
// config (`services.<name>.protocol`) or its instances' metadata `protocol`.
import { HttpAdapter, type HttpAdapterOptions } from './http.js';
import type { UpstreamAdapter } from './types.js';

export function createAdapters(opts: HttpAdapterOptions): Map<string, UpstreamAdapter> {
  const http = new HttpAdapter(opts);
  const map = new Map<string, UpstreamAdapter>([
    ['http', http],
    // Dubbo's REST protocol and Spring Cloud instances speak plain HTTP/1.1.
    ['rest', http],
  ]);
  return map;
}
