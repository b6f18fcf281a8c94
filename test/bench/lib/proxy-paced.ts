// Open-loop load at a fixed request rate, for test/bench/proxy.ts.
//
//   node --import tsx test/bench/lib/proxy-paced.ts --rate 2000 --seconds 15 --warmup 3 \
//        --connections 64 http://127.0.0.1:PORT/path [more urls...]
//
// Why not wrk or autocannon: wrk has no fixed-rate mode (wrk2 is not
// packaged), and autocannon's overallRate lets each connection send its
// per-second quota back to back and then idle until the next second, so the
// load comes in bursts. Here request i is due at t0 + i/rate, whatever the
// previous responses did (open loop, like wrk2): a timer wakes about every
// millisecond and sends every request that is due, each on an idle
// keep-alive connection (one request in flight per connection, no
// pipelining). Connections are spread over the URLs in turn.
//
// Two latencies are kept per request: from the moment its bytes were written
// (service time, what the proxy adds shows here) and from the moment it was
// due (includes the generator's own timer lateness and any wait for an idle
// connection; with enough connections the two differ only by the timer
// jitter). Prints one JSON line.
import { connect, type Socket } from 'node:net';

interface Args {
  rate: number;
  seconds: number;
  warmup: number;
  connections: number;
  urls: URL[];
}

function parseArgs(argv: string[]): Args {
  const a: Args = { rate: 2000, seconds: 15, warmup: 3, connections: 64, urls: [] };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i]!;
    if (v === '--rate') a.rate = Number(argv[++i]);
    else if (v === '--seconds') a.seconds = Number(argv[++i]);
    else if (v === '--warmup') a.warmup = Number(argv[++i]);
    else if (v === '--connections') a.connections = Number(argv[++i]);
    else a.urls.push(new URL(v));
  }
  if (a.urls.length === 0 || !(a.rate > 0) || !(a.seconds > 0)) throw new Error('usage: proxy-paced --rate N --seconds S [--warmup S] [--connections N] URL...');
  return a;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection with at most one request in flight. */
class Conn {
  busy = false;
  /** hrtime (ns) the current request was due / written. */
  dueNs = 0n;
  sentNs = 0n;
  private buf: Buffer | undefined;
  private bodyLeft = -1;
  private status = 0;

  constructor(
    readonly socket: Socket,
    private readonly request: Buffer,
    private readonly onDone: (c: Conn, status: number) => void,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
  }

  send(dueNs: bigint): void {
    this.busy = true;
    this.dueNs = dueNs;
    this.sentNs = process.hrtime.bigint();
    this.socket.write(this.request);
  }

  // Minimal response reader: the upstream answers with content-length (every
  // proxy keeps it for a fixed body), so a response ends after that many bytes.
  private onData(d: Buffer): void {
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    for (;;) {
      if (this.bodyLeft < 0) {
        const end = this.buf.indexOf(HEADER_END);
        if (end < 0) return;
        const head = this.buf.subarray(0, end).toString('latin1');
        this.status = Number(head.slice(9, 12));
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!m) throw new Error(`response without content-length:\n${head}`);
        this.bodyLeft = Number(m[1]);
        this.buf = this.buf.subarray(end + 4);
      }
      if (this.buf.length < this.bodyLeft) return;
      this.buf = this.buf.subarray(this.bodyLeft);
      this.bodyLeft = -1;
      this.busy = false;
      this.onDone(this, this.status);
      if (this.buf.length === 0) return;
    }
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const intervalNs = BigInt(Math.round(1e9 / a.rate));
  const total = Math.ceil(a.rate * (a.warmup + a.seconds));
  const warmupCount = Math.ceil(a.rate * a.warmup);
  const cap = total - warmupCount;
  const service = new Float64Array(cap);
  const fromDue = new Float64Array(cap);
  let recorded = 0;
  let completed = 0;
  let errors = 0;
  let measuredFirstNs = 0n;
  let measuredLastNs = 0n;

  const idle: Conn[] = [];
  const queue: bigint[] = []; // due times of requests waiting for a connection
  let t0 = 0n;
  let next = 0; // index of the next request to send
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((r) => (finish = r));

  const onDone = (c: Conn, status: number): void => {
    const now = process.hrtime.bigint();
    completed++;
    if (status < 200 || status >= 400) errors++;
    // Requests due after the warm-up are measured.
    if (c.dueNs >= t0 + BigInt(warmupCount) * intervalNs && recorded < cap) {
      if (recorded === 0) measuredFirstNs = c.dueNs;
      measuredLastNs = now;
      service[recorded] = Number(now - c.sentNs) / 1e6;
      fromDue[recorded] = Number(now - c.dueNs) / 1e6;
      recorded++;
    }
    const q = queue.shift();
    if (q !== undefined) c.send(q);
    else idle.push(c);
    if (completed === total) finish();
  };

  const conns: Conn[] = [];
  for (let i = 0; i < a.connections; i++) {
    const u = a.urls[i % a.urls.length]!;
    const req = Buffer.from(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: meshgate-bench\r\n\r\n`, 'latin1');
    const socket = connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.on('error', (e) => {
      process.stderr.write(`connection error: ${e.message}\n`);
      process.exit(2);
    });
    socket.on('close', () => {
      if (completed < total) {
        process.stderr.write('a server closed a keep-alive connection during the run\n');
        process.exit(2);
      }
    });
    const c = new Conn(socket, req, onDone);
    conns.push(c);
    idle.push(c);
  }

  let maxQueue = 0;
  t0 = process.hrtime.bigint();
  const tick = (): void => {
    const now = process.hrtime.bigint();
    while (next < total) {
      const due = t0 + BigInt(next) * intervalNs;
      if (due > now) break;
      next++;
      const c = idle.pop();
      if (c) c.send(due);
      else {
        queue.push(due);
        if (queue.length > maxQueue) maxQueue = queue.length;
      }
    }
    if (next < total) {
      const waitMs = Number(t0 + BigInt(next) * intervalNs - process.hrtime.bigint()) / 1e6;
      setTimeout(tick, Math.max(0, Math.floor(waitMs)));
    }
  };
  tick();
  const deadline = setTimeout(() => {
    process.stderr.write(`timed out: ${completed}/${total} responses\n`);
    process.exit(2);
  }, (a.warmup + a.seconds + 30) * 1000);
  await finished;
  clearTimeout(deadline);
  for (const c of conns) c.socket.destroy();

  const s = service.subarray(0, recorded).sort();
  const d = fromDue.subarray(0, recorded).sort();
  const seconds = Number(measuredLastNs - measuredFirstNs) / 1e9;
  const out = {
    targetRate: a.rate,
    achievedRate: Math.round((recorded / seconds) * 10) / 10,
    measured: recorded,
    errors,
    maxQueued: maxQueue,
    service: { p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), p999: percentile(s, 99.9), max: s[s.length - 1] },
    fromDue: { p50: percentile(d, 50), p90: percentile(d, 90), p99: percentile(d, 99), p999: percentile(d, 99.9), max: d[d.length - 1] },
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
