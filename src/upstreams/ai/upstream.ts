// One HTTP call to a provider, on node:http(s) with keep-alive agents shared
// by every AI route (so connections outlive config reloads).
//
// Why node:http here and not the gateway's own h1client: provider calls need
// TLS to public endpoints and per-call control of the response stream —
// pause() while the client's socket is full, so a slow client slows the
// provider read (TCP backpressure all the way up), and destroy() when the
// client goes away, so the provider stops generating (and billing).
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' }),
  https: new https.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 256, scheduling: 'lifo' }),
};

export interface Target {
  https: boolean;
  host: string;
  port: number;
  /** Path prefix every call's path is appended to ("" or "/v1"...). */
  basePath: string;
}

export function parseBaseUrl(url: string): Target {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  return {
    https: secure,
    host: u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname,
    port: u.port ? Number(u.port) : secure ? 443 : 80,
    basePath: u.pathname.replace(/\/+$/, ''),
  };
}

export interface CallOptions {
  method: 'GET' | 'POST';
  /** Appended to the target's base path (may carry a query). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** No response head within this long: the call fails with 'timeout'. */
  headTimeoutMs: number;
}

export type CallResult =
  | { ok: true; status: number; headers: IncomingMessage['headers']; res: IncomingMessage; abort: () => void }
  | { ok: false; failure: 'timeout' | 'error' | 'aborted'; message: string };

export interface AbortSource {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Errors of a kept-alive connection the provider closed while it sat idle (the request never reached it). */
const STALE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * Makes the call; the response body is the caller's to read (or abort).
 * A call that fails on a reused keep-alive connection before any answer
 * (the provider closed it while idle: its keep-alive timeout raced ours) is
 * sent once more on a new connection — the provider never saw it.
 */
export function callProvider(t: Target, opts: CallOptions, signal: AbortSource): Promise<CallResult> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve({ ok: false, failure: 'aborted', message: 'client went away' });
      return;
    }
    const headers: Record<string, string | number> = { ...opts.headers, host: t.port === (t.https ? 443 : 80) ? t.host : `${t.host}:${t.port}` };
    if (opts.body) headers['content-length'] = opts.body.length;
    let req: http.ClientRequest;
    let settled = false;
    const finish = (r: CallResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!r.ok) signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onAbort = (): void => {
      req.destroy();
      finish({ ok: false, failure: 'aborted', message: 'client went away' });
    };
    signal.addEventListener('abort', onAbort);
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, failure: 'timeout', message: `no answer from the provider within ${opts.headTimeoutMs} ms` });
    }, opts.headTimeoutMs);
    const send = (fresh: boolean): void => {
      const r = (t.https ? https : http).request({
        host: t.host,
        port: t.port,
        method: opts.method,
        path: t.basePath + opts.path,
        headers,
        // A resend goes on a connection of its own, never on another idle one.
        agent: fresh ? false : t.https ? agents.https : agents.http,
        servername: t.https ? t.host : undefined,
      });
      req = r;
      let answered = false;
      r.on('error', (e: NodeJS.ErrnoException) => {
        if (settled) return;
        if (!fresh && !answered && r.reusedSocket && e.code !== undefined && STALE.has(e.code)) {
          send(true);
          return;
        }
        finish({ ok: false, failure: 'error', message: `provider connection failed: ${e.message}` });
      });
      r.on('response', (res) => {
        answered = true;
        // From here the caller owns the body; a client abort still destroys the call.
        const abort = (): void => {
          signal.removeEventListener('abort', onAbort);
          r.destroy();
          res.destroy();
        };
        res.once('close', () => signal.removeEventListener('abort', onAbort));
        finish({ ok: true, status: res.statusCode ?? 502, headers: res.headers, res, abort });
      });
      r.end(opts.body);
    };
    send(false);
  });
}

/** Reads a whole response body, up to `limit` bytes (more: rejects). */
export function readAll(res: IncomingMessage, limit: number, idleMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer = setTimeout(onIdle, idleMs);
    function onIdle(): void {
      res.destroy();
      reject(Object.assign(new Error(`provider stopped sending for ${idleMs} ms`), { failure: 'timeout' }));
    }
    res.on('data', (c: Buffer) => {
      clearTimeout(timer);
      timer = setTimeout(onIdle, idleMs);
      size += c.length;
      if (size > limit) {
        clearTimeout(timer);
        res.destroy();
        reject(Object.assign(new Error(`provider answer larger than ${limit} bytes`), { failure: 'error' }));
        return;
      }
      chunks.push(c);
    });
    res.on('end', () => {
      clearTimeout(timer);
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    });
    res.on('error', (e) => {
      clearTimeout(timer);
      reject(Object.assign(e, { failure: 'error' }));
    });
    res.on('close', () => {
      clearTimeout(timer);
      if (!res.complete) reject(Object.assign(new Error('provider closed the answer early'), { failure: 'error' }));
    });
  });
}
