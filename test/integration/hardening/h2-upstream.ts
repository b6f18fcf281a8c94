// An HTTP/1.1 upstream for the HTTP/2 hardening tests that records, for every
// request it saw, how many body bytes arrived and whether the body completed
// or was cut off (the gateway gave up on it); a gateway that routes every
// request to it; and the status of one HTTP/2 request.
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { ConfigInput } from '../../../src/config/schema.js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';

type ListenerInput = NonNullable<ConfigInput['listeners']>[number];

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

/** A gateway with one `http` listener named public (settings from `listener`) that routes everything to `up`. */
export async function gatewayFor(up: RecordingUpstream, listener: Partial<ListenerInput> = {}): Promise<{ gw: Gateway; url: string; port: number }> {
  const gw = await startGateway({
    listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http', ...listener }],
    registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
    routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
  });
  const url = gw.listenerUrl('public');
  return { gw, url, port: Number(new URL(url).port) };
}

/** The status of one GET over a new node:http2 session, closed afterwards. */
export function h2status(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', reject);
    const req = session.request({ ':path': path });
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    req.resume();
    req.on('end', () => {
      session.close();
      resolve(status);
    });
    req.on('error', reject);
    req.end();
  });
}
