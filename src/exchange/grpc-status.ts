// gRPC wire facts shared by the gRPC adapter, the listeners and gateway
// error responses: status codes, grpc-timeout parsing, grpc-message encoding
// and trailers-only responses.
import type { IncomingHttpHeaders } from 'node:http';
import type { DownstreamResponse } from './exchange.js';

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** A gRPC request: content-type application/grpc, application/grpc+proto, application/grpc-web... */
export function isGrpcRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return ct !== undefined && ct.startsWith('application/grpc');
}

/** gRPC-Web (application/grpc-web, application/grpc-web-text...): its trailers travel in the response body. */
export function isGrpcWebRequest(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  return ct !== undefined && ct.startsWith('application/grpc-web');
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** grpc-timeout ("1-8 digits" + H|M|S|m|u|n) in milliseconds; undefined when absent or malformed. */
export function parseGrpcTimeout(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Milliseconds as a grpc-timeout value (at most 8 digits, rounded up so a deadline never shrinks to 0). */
export function formatGrpcTimeout(ms: number): string {
  const v = Math.max(1, Math.ceil(ms));
  if (v < 1e8) return `${v}m`;
  const s = Math.ceil(v / 1000);
  if (s < 1e8) return `${s}S`;
  return `${Math.min(99_999_999, Math.ceil(s / 60))}M`;
}

/** grpc-message is percent-encoded: everything outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(msg: string): string {
  let plain = true;
  for (let i = 0; i < msg.length; i++) {
    const c = msg.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return msg;
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  }
  return out;
}

/** The highest status code gRPC defines (UNAUTHENTICATED). */
const MAX_GRPC_STATUS = 16;

/**
 * A grpc-status value as a code: decimal digits naming one of gRPC's codes
 * (0..16). Anything else (`abc`, `-1`, `17`, empty, repeated) is undefined: a
 * status that cannot be parsed.
 */
export function parseGrpcStatus(v: string | string[] | undefined): number | undefined {
  if (typeof v !== 'string' || !/^\d{1,3}$/.test(v)) return undefined;
  const n = Number(v);
  return n <= MAX_GRPC_STATUS ? n : undefined;
}

/**
 * gRPC's mapping for a response without grpc-status, by HTTP status (grpc's
 * http-grpc-status-mapping): 200 is UNKNOWN too, since a call that really
 * succeeded says so with grpc-status.
 */
export function grpcStatusFromHttp(httpStatus: number): number {
  switch (httpStatus) {
    case 400:
    case 431:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
  }
  return GrpcStatus.UNKNOWN;
}

/**
 * The fields that end an upstream's gRPC response (its trailers, or the
 * headers of a trailers-only response) as a client must get them: a valid
 * grpc-status. Returns undefined when they already carry one; otherwise the
 * fields to send instead:
 *   - grpc-status that cannot be parsed or is out of range: UNKNOWN ("error
 *     parsing returned status" in gRPC's status code table);
 *   - no grpc-status at all: the HTTP-to-gRPC mapping of the response status
 *     (UNKNOWN for a 200).
 * Either way grpc-message says what happened, and grpc-status-details-bin
 * (whose code would no longer match) is dropped. Other metadata stays.
 */
export function repairGrpcStatus<T extends Record<string, unknown>>(fields: T | undefined, httpStatus: number): Record<string, unknown> | undefined {
  const raw = fields?.['grpc-status'] as string | string[] | undefined;
  if (raw !== undefined && parseGrpcStatus(raw) !== undefined) return undefined;
  const out: Record<string, unknown> = {};
  if (fields) {
    for (const k in fields) {
      if (k === 'grpc-status' || k === 'grpc-message' || k === 'grpc-status-details-bin') continue;
      out[k] = fields[k];
    }
  }
  if (raw === undefined) {
    out['grpc-status'] = String(grpcStatusFromHttp(httpStatus));
    out['grpc-message'] = encodeGrpcMessage(`upstream ended the call without grpc-status (HTTP status ${httpStatus})`);
  } else {
    const shown = (Array.isArray(raw) ? raw.join(', ') : raw).slice(0, 64);
    out['grpc-status'] = String(GrpcStatus.UNKNOWN);
    out['grpc-message'] = encodeGrpcMessage(`upstream sent an invalid grpc-status ${JSON.stringify(shown)}`);
  }
  return out;
}

/**
 * The gRPC status a gateway-generated error carries. Flags with a clear gRPC
 * meaning map to it; the rest follow gRPC's HTTP-to-gRPC mapping of the status.
 */
export function grpcStatusFor(flag: string, httpStatus: number): number {
  switch (flag) {
    case 'UT':
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 'NR':
      return GrpcStatus.UNIMPLEMENTED;
    case 'RL':
    case 'CC':
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 'DC':
      return GrpcStatus.CANCELLED;
    case 'BR':
      return GrpcStatus.INTERNAL;
  }
  return grpcStatusFromHttp(httpStatus);
}

/**
 * A trailers-only response: one HEADERS frame with END_STREAM carrying
 * :status 200 and grpc-status. The HTTP/2 response (server/h2-exchange.ts)
 * sends a head with end() and no body as one HEADERS frame with END_STREAM,
 * not HEADERS followed by an empty DATA frame.
 */
export function sendTrailersOnly(res: DownstreamResponse, grpcStatus: number, message: string, headers?: Record<string, string>): void {
  res.statusCode = 200;
  res.setHeader('content-type', 'application/grpc');
  res.setHeader('grpc-status', String(grpcStatus));
  if (message) res.setHeader('grpc-message', encodeGrpcMessage(message));
  if (headers) for (const k in headers) res.setHeader(k, headers[k]!);
  res.end();
}
