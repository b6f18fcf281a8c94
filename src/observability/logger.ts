// Logging (pino): the gateway log and the access log (one JSON line per request).
import pino, { type Logger } from 'pino';

export function createLogger(level: string = process.env.MESHGATE_LOG_LEVEL ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** The access log writes asynchronously through sonic-boom so it stays off the hot path. */
export function createAccessLogger(dest: string | number = process.env.MESHGATE_ACCESS_LOG ?? 1): Logger {
  const destination = pino.destination({ dest, sync: false, minLength: 4096 });
  return pino({ base: null, timestamp: false, messageKey: 'msg' }, destination);
}
