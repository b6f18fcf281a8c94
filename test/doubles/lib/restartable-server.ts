// An HTTP server for registry doubles that can go away (an outage: stop
// listening, cut every connection) and come back on the same port.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export class RestartableServer {
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** The port last listened on (kept across outages). */
  port = 0;

  constructor(
    private readonly handler: http.RequestListener,
    private readonly keepAliveTimeoutMs?: number,
  ) {}

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** Listen on 127.0.0.1: the given port, else the last one, else any free one. */
  async listen(port = 0): Promise<void> {
    const server = http.createServer(this.handler);
    if (this.keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = this.keepAliveTimeoutMs;
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port || this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stop listening and destroy every open connection. */
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    const closed = new Promise<void>((r) => s.close(() => r()));
    for (const sock of this.sockets) sock.destroy();
    await closed;
  }
}
