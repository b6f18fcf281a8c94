// Real local upstream servers for tests.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface TestUpstream {
  server: http.Server;
  port: number;
  address: string; // 127.0.0.1:PORT
  /** Requests seen (method, url, headers). */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Default handler: JSON echo with the instance name. */
export function echo(name: string): Handler {
  return (req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      const body = JSON.stringify({ instance: name, method: req.method, url: req.url, headers: req.headers, bodyBytes: bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-instance': name });
      res.end(body);
    });
  };
}

export async function startUpstream(handler: Handler | string = 'u', port = 0): Promise<TestUpstream> {
  const h = typeof handler === 'string' ? echo(handler) : handler;
  const seen: TestUpstream['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    h(req, res);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const p = (server.address() as AddressInfo).port;
  return {
    server,
    port: p,
    address: `127.0.0.1:${p}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A port on 127.0.0.1 that refuses connections and stays that way: port 1
 * (tcpmux, unused). A port from freePort() is free only until something binds
 * it (a listener on port 0 may be given it), and whatever listens there then
 * answers for the "dead" instance. Ports below 1024 are never handed out for
 * port 0 (ip_local_port_range).
 */
export const REFUSED_PORT = 1;

/** A port that was free a moment ago (listen on 0, close). */
export async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
