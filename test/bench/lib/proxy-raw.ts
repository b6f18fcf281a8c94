// Reference points for test/bench/proxy.ts, not usable proxies: HTTP/1.1
// handled by a few lines of JavaScript on node:net instead of node:http and
// undici. They split the bare node:http + undici reference (proxy-floor.ts)
// into its two halves:
//  - mode `raw`: requests read and responses written on node:net sockets on
//    both sides (no node:http, no undici);
//  - mode `node-server`: the node:http server in front, the same node:net
//    client behind it (no undici).
// What they handle is only what the benchmark sends: requests without a body
// and upstream responses with content-length. There is no validation, no
// chunked encoding, no limits and no error handling beyond dropping the
// connection: never put them in front of anything.
//
//   node --import tsx test/bench/lib/proxy-raw.ts raw|node-server PORT http://127.0.0.1:A [http://127.0.0.1:B ...]
import http from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

const [mode, port, ...upstreams] = process.argv.slice(2);
if ((mode !== 'raw' && mode !== 'node-server') || !port || upstreams.length === 0) {
  process.stderr.write('usage: proxy-raw raw|node-server PORT UPSTREAM_URL...\n');
  process.exit(2);
}

const HEAD_END = Buffer.from('\r\n\r\n');
type Done = (status: number, headers: string[], body: Buffer) => void;

/** One upstream keep-alive connection, one request at a time. */
class UpstreamConn {
  private done: Done | undefined;
  private buf: Buffer | undefined;
  private bodyLeft = -1;
  private status = 0;
  private headers: string[] = [];
  readonly socket: Socket;

  constructor(
    port: number,
    private readonly pool: UpstreamPool,
  ) {
    this.socket = connect({ port, host: '127.0.0.1', noDelay: true });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => pool.drop(this));
  }

  send(head: string, done: Done): void {
    this.done = done;
    this.socket.write(head, 'latin1');
  }

  private onData(d: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    if (this.bodyLeft < 0) {
      const end = this.buf.indexOf(HEAD_END);
      if (end < 0) return;
      const lines = this.buf.toString('latin1', 0, end).split('\r\n');
      this.status = Number(lines[0]!.slice(9, 12));
      this.headers = [];
      let length = 0;
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).trim();
        const lower = name.toLowerCase();
        if (lower === 'content-length') length = Number(value);
        if (lower !== 'connection' && lower !== 'keep-alive') this.headers.push(name, value);
      }
      this.bodyLeft = length;
      this.buf = this.buf.subarray(end + 4);
    }
    if (this.buf.length < this.bodyLeft) return;
    const body = this.buf.subarray(0, this.bodyLeft);
    this.buf = undefined;
    this.bodyLeft = -1;
    const done = this.done!;
    this.done = undefined;
    this.pool.release(this);
    done(this.status, this.headers, body);
  }
}

class UpstreamPool {
  private readonly idle: UpstreamConn[] = [];
  constructor(private readonly port: number) {}
  request(head: string, done: Done): void {
    (this.idle.pop() ?? new UpstreamConn(this.port, this)).send(head, done);
  }
  release(c: UpstreamConn): void {
    this.idle.push(c);
  }
  drop(c: UpstreamConn): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }
}

const pools = upstreams.map((u) => new UpstreamPool(Number(new URL(u).port)));
let next = 0;
const pick = (): UpstreamPool => pools[next++ % pools.length]!;
const hopByHop = (lower: string): boolean => lower === 'connection' || lower === 'keep-alive';

if (mode === 'node-server') {
  const server = http.createServer((req, res) => {
    let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (!hopByHop(raw[i]!.toLowerCase())) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
    pick().request(`${head}\r\n`, (status, headers, body) => {
      res.writeHead(status, headers);
      res.end(body);
    });
  });
  server.keepAliveTimeout = 120_000;
  server.listen(Number(port), '127.0.0.1');
} else {
  createServer({ noDelay: true }, (client) => {
    client.on('error', () => undefined);
    let buf: Buffer | undefined;
    client.on('data', (d: Buffer) => {
      buf = buf ? Buffer.concat([buf, d]) : d;
      for (;;) {
        const end: number = buf.indexOf(HEAD_END);
        if (end < 0) return;
        const lines = buf.toString('latin1', 0, end).split('\r\n');
        buf = end + 4 < buf.length ? buf.subarray(end + 4) : undefined;
        let head = `${lines[0]}\r\n`;
        for (let i = 1; i < lines.length; i++) {
          const line = lines[i]!;
          if (!hopByHop(line.slice(0, line.indexOf(':')).toLowerCase())) head += `${line}\r\n`;
        }
        pick().request(`${head}\r\n`, (status, headers, body) => {
          let out = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\n`;
          for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
          client.write(Buffer.concat([Buffer.from(`${out}\r\n`, 'latin1'), body]));
        });
        if (!buf) return;
      }
    });
  }).listen(Number(port), '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
