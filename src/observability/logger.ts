// Logging: the gateway log (pino JSON) and the access log (one JSON line per request).
import pino, { type Logger } from 'pino';
import type { Exchange } from '../exchange/exchange.js';

export function createLogger(level: string = process.env.MESHGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Where access-log lines go: anything with write(string) (a stream, a file). */
export interface AccessLogSink {
  write(line: string): unknown;
  flushSync?(): void;
}

/** How long an access-log line may wait in memory before it is written. */
export const ACCESS_LOG_FLUSH_MS = 100;
/** A batch is written at once when it reaches this many bytes. */
const ACCESS_LOG_BATCH_BYTES = 64 * 1024;
/** Bytes waiting for a slow destination (a blocked stdout pipe) past which batches are dropped, not queued. */
const ACCESS_LOG_MAX_PENDING_BYTES = 32 * 1024 * 1024;

/** Where batches go: sonic-boom in buffer mode, or anything with write(Buffer). */
export interface AccessLogDestination {
  write(batch: Buffer): unknown;
  flushSync?(): void;
}

/**
 * Lines are encoded straight into a 64 KiB buffer and handed to sonic-boom
 * (pino's destination, asynchronous) as one write every ACCESS_LOG_FLUSH_MS
 * or when the buffer is full, whichever comes first. A write per line would
 * cost a system call per request; a batch kept as a string would keep every
 * line alive (and copied by the young-generation GC) until it is written.
 * A line reaches the file within 100 ms when traffic is light; flushSync()
 * (on stop) writes what is waiting.
 */
export class BatchedAccessLog implements AccessLogSink {
  private buf = Buffer.allocUnsafe(ACCESS_LOG_BATCH_BYTES);
  private len = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly flushNow = (): void => this.flush();

  constructor(
    private readonly dest: AccessLogDestination,
    private readonly flushMs = ACCESS_LOG_FLUSH_MS,
  ) {}

  write(line: string): void {
    // A UTF-16 code unit takes at most 3 bytes in UTF-8.
    if (this.len + line.length * 3 > this.buf.length) {
      this.flush();
      if (line.length * 3 > this.buf.length) {
        this.dest.write(Buffer.from(line));
        return;
      }
    }
    this.len += this.buf.write(line, this.len);
    if (this.timer === undefined) {
      this.timer = setTimeout(this.flushNow, this.flushMs);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.len === 0) return;
    // The batch is handed over, not copied: the next lines go to a new buffer.
    const out = this.buf.subarray(0, this.len);
    this.buf = Buffer.allocUnsafe(ACCESS_LOG_BATCH_BYTES);
    this.len = 0;
    this.dest.write(out);
  }

  flushSync(): void {
    this.flush();
    try {
      this.dest.flushSync?.();
    } catch {
      /* nothing left to write, or the destination is gone */
    }
  }
}

/** dest: a file path or a file descriptor (default stdout, or MESHGATE_ACCESS_LOG). */
export function createAccessLogSink(dest: string | number = process.env.MESHGATE_ACCESS_LOG ?? 1): AccessLogSink {
  // In buffer mode sonic-boom's write takes Buffers (its typings only know strings).
  const boom = pino.destination({ dest, sync: false, contentMode: 'buffer', maxLength: ACCESS_LOG_MAX_PENDING_BYTES });
  return new BatchedAccessLog(boom as unknown as AccessLogDestination);
}

/** Characters JSON.stringify would escape (and any surrogate, paired or not). */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** A JSON string literal: most values need no escaping and skip JSON.stringify. */
const q = (v: string): string => (NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`);

// Requests that start in the same millisecond share one formatted time, and
// those in the same second one formatted date and time of day: a Date is
// formatted once a second, not once a request.
let lastMs = -1;
let lastIso = '';
let lastSecond = Number.NaN;
let secondPrefix = '';
export function isoAt(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    const second = Math.floor(ms / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      secondPrefix = new Date(second * 1000).toISOString().slice(0, -4); // without "000Z"
    }
    const frac = ms - second * 1000;
    lastIso = `${secondPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
  }
  return lastIso;
}

/**
 * One access-log line. Built by hand rather than through a logger: it is the
 * one log line every request pays for, and the fields are fixed.
 */
export function accessLogLine(ex: Exchange, status: number, durationMs: number, query = ''): string {
  const ua = ex.req.headers['user-agent'];
  return (
    `{"time":"${isoAt(ex.startMs)}","requestId":${q(ex.requestId)},"client":${q(ex.clientIp)},` +
    `"method":${q(ex.method)},"host":${q(ex.host)},"path":${q(ex.matchPath)},` +
    (query !== '' ? `"query":${q(query)},` : '') +
    `"protocol":"HTTP/${ex.req.httpVersion}",` +
    (ua !== undefined ? `"userAgent":${q(ua)},` : '') +
    `"route":${q(ex.routeName)},` +
    `"service":${q(ex.service)},"upstream":${q(ex.upstreamAddr)},"status":${status},"flag":"${ex.flag}",` +
    `"attempts":${ex.attempts},"durationMs":${Math.round(durationMs * 1000) / 1000},` +
    (ex.upstreamMs !== undefined ? `"upstreamMs":${Math.round(ex.upstreamMs * 1000) / 1000},` : '') +
    (ex.upstreamError !== undefined ? `"upstreamError":${q(ex.upstreamError)},` : '') +
    `"bytesIn":${ex.bytesIn},"bytesOut":${ex.bytesOut}` +
    // The authenticated consumer (auth filters set it), absent otherwise.
    (ex.consumer !== undefined ? `,"consumer":${q(ex.consumer)}` : '') +
    // With tracing on: the request's trace, to find its spans.
    (ex.trace !== undefined ? `,"traceId":"${ex.trace.traceId}"` : '') +
    // AI routes: provider, models, tokens (src/upstreams/ai/handler.ts sets it).
    (ex.vars?.ai !== undefined ? `,"ai":${JSON.stringify(ex.vars.ai)}}\n` : '}\n')
  );
}

/**
 * The query string for the access log: the value of every parameter named in
 * `names` (lower case) becomes REDACTED; everything else as the client sent it.
 */
export function redactQuery(query: string, names: ReadonlySet<string>): string {
  if (query === '' || names.size === 0) return query;
  let out = '';
  let changed = false;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    let key = name.toLowerCase();
    if (key.includes('%')) {
      try {
        key = decodeURIComponent(key.replace(/\+/g, ' '));
      } catch {
        // keep the raw name
      }
    }
    const redact = eq !== -1 && names.has(key);
    if (redact) changed = true;
    out += (out === '' ? '' : '&') + (redact ? `${name}=REDACTED` : part);
  }
  return changed ? out : query;
}

/**
 * The access-log line of a request refused before it was routed (malformed,
 * too large): the same fields, empty where nothing was known, and the reason.
 */
export function refusedLogLine(client: string, status: number, reason: string): string {
  return (
    `{"time":"${isoAt(Date.now())}","requestId":"","client":${q(client)},"method":"","host":"","path":"","route":"","service":"","upstream":"",` +
    `"status":${status},"flag":"BR","attempts":0,"durationMs":0,"bytesIn":0,"bytesOut":0,"error":${q(reason)}}\n`
  );
}
