// Logging: the gateway log (pino JSON) and the access log (one JSON line per request).
import pino, { type Logger } from 'pino';
import type { Exchange } from '../server/exchange.js';

export function createLogger(level: string = process.env.MESHGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Where access-log lines go: anything with write(string) (a stream, a file). */
export interface AccessLogSink {
  write(line: string): unknown;
  flushSync?(): void;
}

/**
 * The access log writes through sonic-boom (pino's destination), buffered and
 * asynchronous, so it stays off the hot path. dest: a file path or a file descriptor.
 */
export function createAccessLogSink(dest: string | number = process.env.MESHGATE_ACCESS_LOG ?? 1): AccessLogSink {
  return pino.destination({ dest, sync: false, minLength: 4096 });
}

const q = JSON.stringify;

/**
 * One access-log line. Built by hand rather than through a logger: it is the
 * one log line every request pays for, and the fields are fixed.
 */
export function accessLogLine(ex: Exchange, status: number, durationMs: number): string {
  return (
    `{"time":"${new Date(ex.startMs).toISOString()}","requestId":${q(ex.requestId)},"client":${q(ex.clientIp)},` +
    `"method":${q(ex.method)},"host":${q(ex.host)},"path":${q(ex.matchPath)},"route":${q(ex.routeName)},` +
    `"service":${q(ex.service)},"upstream":${q(ex.upstreamAddr)},"status":${status},"flag":"${ex.flag}",` +
    `"attempts":${ex.attempts},"durationMs":${Math.round(durationMs * 1000) / 1000},"bytesIn":${ex.bytesIn},"bytesOut":${ex.bytesOut}}\n`
  );
}
