// Upstream adapters by protocol name. A service's protocol comes from its
// config (`services.<name>.protocol`) or its instances' metadata `protocol`
// (Dubbo providers, Nacos/Consul metadata); default http.
import { GRPC_PROTOCOLS, GrpcAdapter } from './grpc.js';
import { HttpAdapter, type HttpAdapterOptions } from './http.js';
import { Http2Adapter } from './http2.js';
import type { UpstreamAdapter } from './types.js';

export function createAdapters(opts: HttpAdapterOptions): Map<string, UpstreamAdapter> {
  const http = new HttpAdapter(opts);
  const grpc = new GrpcAdapter();
  const map = new Map<string, UpstreamAdapter>([
    ['http', http],
    // Dubbo's REST protocol and Spring Cloud instances speak plain HTTP/1.1.
    ['rest', http],
    ['http2', new Http2Adapter()],
  ]);
  // gRPC, and Dubbo 3 Triple, which is gRPC-compatible over HTTP/2.
  for (const p of GRPC_PROTOCOLS) map.set(p, grpc);
  return map;
}
