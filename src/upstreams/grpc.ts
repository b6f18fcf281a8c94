// gRPC upstream adapter: a transparent gRPC proxy over node:http2 sessions
// (src/upstreams/http2.ts). Requests pass with all metadata (including -bin),
// responses with their trailers; trailers-only responses stay trailers-only.
// On top of plain HTTP/2 it enforces the client's grpc-timeout locally
// (DEADLINE_EXCEEDED) and passes the remaining deadline on; gateway errors
// reach the client as gRPC statuses (src/server/respond.ts), e.g. an
// unreachable upstream as UNAVAILABLE.
// Registered for protocols `grpc` and `tri` (Dubbo 3 Triple is gRPC-compatible).
import { Http2Adapter, type Http2AdapterOptions } from './http2.js';

export const GRPC_PROTOCOLS = ['grpc', 'tri'] as const;

export class GrpcAdapter extends Http2Adapter {
  override readonly protocol: string = 'grpc';
  override readonly grpc: boolean = true;

  constructor(opts: Http2AdapterOptions = {}) {
    super(opts);
  }
}
