// An HTTP/1.1 upstream for the HTTP/2 hardening tests that records, for every
// request it saw, how many body bytes arrived and whether the body completed
// or was cut off (the gateway gave up on it).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  /** The whole body arrived. */
  complete: boolean;
  /** The connection went away before the body completed. */
  aborted: boolean;
}

export interface RecordingUpstream {
  address: string;
  seen: SeenRequest[];
  /** Requests being handled right now, and the most at once. */
  active: number;
  maxActive: number;
  close(): Promise<void>;
}

/**
 * Answers 200 with a small JSON body once the request body is complete.
 * `x-delay: <ms>` delays the answer; `/hang` never answers.
 */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const up: RecordingUpstream = {
    address: '',
    seen: [],
    active: 0,
    maxActive: 0,
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const r: SeenRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0, complete: false, aborted: false };
    up.seen.push(r);
    up.active++;
    up.maxActive = Math.max(up.maxActive, up.active);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      up.active--;
    };
    req.on('data', (c: Buffer) => (r.bytes += c.length));
    req.on('end', () => {
      r.complete = true;
      if (r.url.startsWith('/hang')) return;
      const delay = Number(req.headers['x-delay'] ?? 0);
      setTimeout(() => {
        const body = JSON.stringify({ url: r.url, bytes: r.bytes, xff: req.headers['x-forwarded-for'] ?? null });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body, finish);
      }, delay);
    });
    req.on('error', () => undefined);
    res.on('close', () => {
      if (!r.complete) r.aborted = true;
      finish();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  up.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  up.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return up;
}
