// Gateway-generated responses: JSON {error, flag, requestId} with x-meshgate-flag.
// Answers that HTTP allows no body (to HEAD; 1xx, 204, 304) are sent without
// one, whatever the transport does with a body it is given.
import type { Exchange } from './exchange.js';
import { FLAGS, type Flag } from './flags.js';
import { grpcStatusFor, isGrpcRequest, sendTrailersOnly } from './grpc-status.js';

/** Statuses that never carry content, nor a Content-Length that would describe some (RFC 9110 8.6, 15.3.5, 15.4.5). */
export function statusHasNoContent(status: number): boolean {
  return status < 200 || status === 204 || status === 304;
}

/**
 * Writes a gateway answer: the head, and the body only where one is allowed.
 * A HEAD answer keeps the Content-Length a GET would get (RFC 9110 9.3.2);
 * 1xx, 204 and 304 get none.
 */
function answer(ex: Exchange, status: number, body: string, headers: Record<string, string | number>): void {
  const res = ex.res;
  if (statusHasNoContent(status)) {
    delete headers['content-length'];
    res.writeHead(status, headers);
    res.end();
    return;
  }
  if (ex.method === 'HEAD') {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  ex.bytesOut += Buffer.byteLength(body);
  res.writeHead(status, headers);
  res.end(body);
}

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
  answer(ex, code, body, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-meshgate-flag': flag,
    'x-request-id': ex.requestId,
    ...headers,
  });
}

export function sendDirect(ex: Exchange, status: number, body: string, headers: Record<string, string> = {}): void {
  const res = ex.res;
  if (res.headersSent || res.destroyed) return;
  if (status < 200) {
    // A 1xx cannot end an exchange (both transports refuse to write one as the answer): the configuration asks for the impossible.
    sendInternalError(ex, `configured response status ${status} is not a final status`);
    return;
  }
  ex.status = status;
  answer(ex, status, body, { 'content-length': Buffer.byteLength(body), 'x-request-id': ex.requestId, ...headers });
}

/** 500, for a failure of the gateway itself (no flag). */
export function sendInternalError(ex: Exchange, message = 'internal gateway error'): void {
  ex.flag = '';
  ex.status = 500;
  const res = ex.res;
  if (res.headersSent || res.destroyed || res.writableEnded) {
    if (!res.writableEnded) res.destroy();
    return;
  }
  const body = JSON.stringify({ error: message, requestId: ex.requestId });
  answer(ex, 500, body, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': ex.requestId });
}
