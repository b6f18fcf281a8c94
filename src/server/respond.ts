// Gateway-generated responses: JSON {error, flag, requestId} with x-meshgate-flag.
import type { Exchange } from './exchange.js';
import { FLAGS, type Flag } from './flags.js';
import { grpcStatusFor, isGrpcRequest, sendTrailersOnly } from '../upstreams/grpc-status.js';

export function sendError(ex: Exchange, flag: Flag, message?: string, status?: number, headers?: Record<string, string>): void {
  ex.flag = flag;
  const code = status ?? FLAGS[flag].status;
  ex.status = code;
  const res = ex.res;
  if (res.headersSent || res.destroyed || res.writableEnded) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  // gRPC clients understand only gRPC statuses: answer trailers-only, not JSON.
  if (isGrpcRequest(ex.req.headers)) {
    sendTrailersOnly(res, grpcStatusFor(flag, code), message ?? FLAGS[flag].error, { 'x-meshgate-flag': flag, 'x-request-id': ex.requestId, ...headers });
    return;
  }
  const body = JSON.stringify({ error: message ?? FLAGS[flag].error, flag, requestId: ex.requestId });
  ex.bytesOut += Buffer.byteLength(body);
  res.writeHead(code, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-meshgate-flag': flag,
    'x-request-id': ex.requestId,
    ...headers,
  });
  res.end(body);
}

export function sendDirect(ex: Exchange, status: number, body: string, headers: Record<string, string> = {}): void {
  ex.status = status;
  const res = ex.res;
  if (res.headersSent || res.destroyed) return;
  ex.bytesOut += Buffer.byteLength(body);
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), 'x-request-id': ex.requestId, ...headers });
  res.end(body);
}
