// An upstream on node:net that frames every byte it receives with llhttp (the
// parser node:http runs, strict) and records each request it framed: what a
// real server behind the gateway would have acted on. Tests assert on these
// records: how many requests reached the upstream, in which order, with which
// method, target, headers, body and trailers, and whether each one completed.
import { createHash } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { headerOf, headersOf, LlhttpStream, type FramedMsg } from './raw-http.js';

export interface SeenRequest {
  /** Order of arrival over all connections, from 0. */
  seq: number;
  /** The upstream connection it came on, from 0. */
  conn: number;
  method: string;
  url: string;
  versionMinor: number;
  /** [name, value, ...] as received. */
  headers: string[];
  body: Buffer;
  trailers: string[];
  upgrade: boolean;
  /** The whole message arrived. */
  complete: boolean;
  /** The connection closed before the message was complete. */
  aborted: boolean;
  header(name: string): string | undefined;
  headerAll(name: string): string[];
}

/** How the upstream answers one request. */
export interface Reply {
  readonly socket: net.Socket;
  write(data: Buffer | string): void;
  /** Write a whole response and keep the connection. */
  send(status: number, body?: string, headers?: Record<string, string>): void;
  /** Write the bytes (if any), then FIN and close. */
  close(data?: Buffer | string): void;
  /** Close with a TCP RST. */
  reset(): void;
}

export interface CountingUpstreamOptions {
  /** Called when a request head is complete (before its body). Return true if it answered. */
  onHead?(req: SeenRequest, reply: Reply): boolean | void;
  /** Called when a request is complete. Default: a JSON echo (see echoReply). */
  onRequest?(req: SeenRequest, reply: Reply): void;
  /** Called for a request asking to switch protocols. Default: 101 for websocket, then echo bytes. */
  onUpgrade?(req: SeenRequest, reply: Reply, rest: Buffer): void;
}

export interface CountingUpstream {
  port: number;
  address: string;
  /** Every request whose head the upstream framed, in arrival order. */
  requests: SeenRequest[];
  /** The requests that arrived whole. */
  readonly complete: SeenRequest[];
  /** Bytes the upstream's parser refused (a gateway that forwarded malformed framing). */
  parseErrors: string[];
  /** Connections accepted so far. */
  connections: number;
  /** Connections open now. */
  readonly open: number;
  /** A request whose head arrived but whose end did not, on a connection still open. */
  readonly inProgress: number;
  /** Connections switched to a tunnel (after a 101) and still open. */
  readonly tunnels: number;
  /** Forget what was recorded (counts restart). */
  clear(): void;
  close(): Promise<void>;
}

/** The default answer: 200 with a JSON description of the request. */
export function echoReply(req: SeenRequest, reply: Reply): void {
  reply.send(
    200,
    JSON.stringify({ seq: req.seq, method: req.method, url: req.url, body: req.body.toString('latin1'), trailers: req.trailers }),
    { 'content-type': 'application/json' },
  );
}

function websocketAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

export async function startCountingUpstream(opts: CountingUpstreamOptions = {}): Promise<CountingUpstream> {
  let requests: SeenRequest[] = [];
  let parseErrors: string[] = [];
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const tunnels = new Set<net.Socket>();
  const pending = new Set<SeenRequest>();

  const server = net.createServer((socket) => {
    const conn = connections++;
    sockets.add(socket);
    socket.on('error', () => undefined);
    let tunneled = false;
    const makeReply = (): Reply => ({
      socket,
      write: (d) => {
        if (!socket.destroyed) socket.write(d);
      },
      send: (status, body = '', headers = {}) => {
        if (socket.destroyed) return;
        let head = `HTTP/1.1 ${status} ${status === 200 ? 'OK' : 'Status'}\r\n`;
        for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
        head += `content-length: ${Buffer.byteLength(body)}\r\n\r\n`;
        socket.write(head + body);
      },
      close: (d) => {
        if (socket.destroyed) return;
        if (d !== undefined && d.length) socket.end(d, () => socket.destroy());
        else socket.end(() => socket.destroy());
      },
      reset: () => socket.resetAndDestroy(),
    });
    const reqOf = new WeakMap<FramedMsg, SeenRequest>();
    const parser = new LlhttpStream('request', {
      onHead: (m) => {
        const r: SeenRequest = {
          seq: requests.length,
          conn,
          method: m.method ?? '',
          url: m.url ?? '',
          versionMinor: m.versionMinor,
          headers: m.headers,
          body: Buffer.alloc(0),
          trailers: [],
          upgrade: m.upgrade,
          complete: false,
          aborted: false,
          header: (n) => headerOf(r.headers, n),
          headerAll: (n) => headersOf(r.headers, n),
        };
        reqOf.set(m, r);
        requests.push(r);
        pending.add(r);
        if (!m.upgrade) opts.onHead?.(r, makeReply());
        return 0;
      },
      onComplete: (m) => {
        const r = reqOf.get(m);
        if (!r) return;
        r.body = m.body;
        r.trailers = m.trailers;
        r.complete = true;
        pending.delete(r);
        if (r.upgrade) return;
        (opts.onRequest ?? echoReply)(r, makeReply());
      },
      onBody: (m) => {
        const r = reqOf.get(m);
        if (r) r.body = m.body;
      },
    });
    socket.on('data', (d: Buffer) => {
      if (tunneled) return;
      const res = parser.feed(d);
      if (typeof res === 'string') {
        parseErrors.push(res);
        socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`, () => socket.destroy());
      } else if (res !== undefined) {
        tunneled = true;
        tunnels.add(socket);
        const m = parser.current!;
        const r = reqOf.get(m)!;
        r.complete = true;
        pending.delete(r);
        socket.removeAllListeners('data');
        if (opts.onUpgrade) opts.onUpgrade(r, makeReply(), res.upgrade);
        else {
          const key = r.header('sec-websocket-key') ?? '';
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${websocketAccept(key)}\r\n\r\n`);
          if (res.upgrade.length) socket.write(res.upgrade);
          socket.on('data', (x: Buffer) => socket.write(x));
        }
      }
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      sockets.delete(socket);
      tunnels.delete(socket);
      for (const r of pending) {
        if (r.conn === conn) {
          r.aborted = true;
          pending.delete(r);
        }
      }
      parser.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get complete() {
      return requests.filter((r) => r.complete);
    },
    get parseErrors() {
      return parseErrors;
    },
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    get inProgress() {
      return pending.size;
    },
    get tunnels() {
      return tunnels.size;
    },
    clear() {
      requests = [];
      parseErrors = [];
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  } as CountingUpstream;
}
