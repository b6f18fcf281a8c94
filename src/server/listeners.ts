// Downstream listeners. `http`: HTTP/1.1 (and h2c where available).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenerConfig } from '../config/schema.js';
import { parseHostPort } from '../discovery/types.js';
import type { Pipeline } from './pipeline.js';

export interface RunningListener {
  readonly name: string;
  readonly config: ListenerConfig;
  readonly server: http.Server;
  address(): AddressInfo;
  /** Stop accepting; let requests in flight finish (up to graceMs), then close idle connections. */
  close(graceMs?: number): Promise<void>;
}

export async function startListener(config: ListenerConfig, pipeline: Pipeline): Promise<RunningListener> {
  if (config.protocol !== 'http') throw new Error(`listeners.${config.name}.protocol: ${config.protocol} is not available in this build`);
  const server = http.createServer({
    keepAliveTimeout: config.keepAliveTimeoutMs,
    maxHeaderSize: config.maxHeaderBytes,
    requestTimeout: 0,
    headersTimeout: 60_000,
    noDelay: true,
  });
  const trust = config.trustForwarded;
  server.on('request', (req, res) => pipeline.handle(req, res, 'http', trust));
  // Answer Expect: 100-continue ourselves once the request is routed and admitted.
  server.on('checkContinue', (req, res) => pipeline.handle(req, res, 'http', trust));
  server.on('upgrade', (req, socket, head) => pipeline.handleUpgrade(req, socket, head, 'http', trust));
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const body = JSON.stringify({ error: status === 431 ? 'request headers too large' : 'bad request', flag: 'BR' });
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\nx-meshgate-flag: BR\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  const { host, port } = parseHostPort(config.address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: false }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    name: config.name,
    config,
    server,
    address: () => server.address() as AddressInfo,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        const t = setTimeout(() => {
          server.closeAllConnections();
          resolve();
        }, graceMs);
        t.unref();
      }),
  };
}
