// Shared pieces of the reload tests: a gateway in this process (1 worker) or
// started as `meshgate start --workers 2`, both reloaded through
// POST /api/reload; a steady keep-alive load; SSE streams; fd counts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Agent, request } from 'undici';
import { Gateway } from '../../../src/gateway.js';
import { waitFor } from '../../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

export interface Admin {
  status: number;
  body: any;
}

export interface Target {
  readonly workers: 1 | 2;
  readonly admin: string;
  /** Write the config file and POST /api/reload. */
  reload(yaml: string): Promise<Admin>;
  get(path: string): Promise<Admin>;
  /** meshgate_config_reloads_total{result} */
  reloads(result: 'applied' | 'rejected'): Promise<number>;
  /** Open file descriptors of the processes that serve (this one, or each worker). */
  fds(): Promise<number>;
  /** The serving processes' pids. */
  pids(): Promise<number[]>;
  /** Log lines written so far (JSON text). */
  logs(): string;
  stop(): Promise<void>;
}

async function adminJson(url: string, method = 'GET'): Promise<Admin> {
  // A connection per call: admin calls leave no keep-alive connection behind to count as an fd.
  const r = await request(url, { method, reset: true });
  const text = await r.body.text();
  return { status: r.statusCode, body: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) : text };
}

async function metricValue(admin: string, result: string): Promise<number> {
  const text = await (await request(`${admin}/metrics`, { reset: true })).body.text();
  const m = new RegExp(`^meshgate_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

async function countFds(pid: number | 'self'): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/**
 * A gateway serving `yaml`. The config file is a symlink to a file in another
 * directory, so rewriting it does not wake the CLI's file watcher: each
 * reload is exactly the POST the test sends.
 */
export async function startTarget(workers: 1 | 2, yaml: string): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-reload-'));
  await mkdir(join(dir, 'real'));
  const real = join(dir, 'real', 'config.yaml');
  const file = join(dir, 'meshgate.yaml');
  await writeFile(real, yaml);
  await symlink(real, file);
  const adminAddress = /admin:\s*\{\s*address:\s*"([^"]+)"/.exec(yaml)?.[1];
  if (!adminAddress) throw new Error('the test config needs admin: { address: "..." }');
  const admin = `http://${adminAddress}`;
  const common = {
    workers,
    admin,
    async reload(text: string) {
      await writeFile(real, text);
      return adminJson(`${admin}/api/reload`, 'POST');
    },
    get: (path: string) => adminJson(admin + path),
    reloads: (result: 'applied' | 'rejected') => metricValue(admin, result),
  };

  let logs = '';
  if (workers === 1) {
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs += chunk.toString();
        cb();
      },
    });
    const gw = await Gateway.start({ config: yaml, configPath: file, log: pino({ level: 'info' }, sink), accessLog: false });
    return {
      ...common,
      logs: () => logs,
      fds: () => countFds('self'),
      pids: async () => [process.pid],
      async stop() {
        await gw.stop(1_000);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  let stderr = '';
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--config', file, '--workers', '2'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MESHGATE_LOG_LEVEL: 'warn' },
  });
  child.stdout?.on('data', (b: Buffer) => (logs += b.toString()));
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
    logs += b.toString();
  });
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`gateway exited: ${stderr}`);
      const r = await adminJson(`${admin}/readyz`).catch(() => undefined);
      return r?.status === 200;
    },
    60_000,
    100,
  );
  const pids = async (): Promise<number[]> => ((await adminJson(`${admin}/api/services?live=1`)).body.workers as Array<{ pid: number }>).map((w) => w.pid).sort();
  return {
    ...common,
    logs: () => logs,
    pids,
    async fds() {
      let n = 0;
      for (const pid of await pids()) n += await countFds(pid);
      return n;
    },
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Something else holding a port. */
export async function occupy(port: number): Promise<{ close(): Promise<void> }> {
  const s = net.createServer((c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve());
  });
  return { close: () => new Promise<void>((r) => s.close(() => r())) };
}

/** Whether anything accepts TCP connections on the port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export interface LoadResult {
  sent: number;
  ok: number;
  /** One entry per failed request: status and flag, or the client error code. */
  failures: string[];
  statuses: Record<string, number>;
}

/**
 * Requests at a steady rate from a pool of keep-alive connections. A request
 * counts as failed unless it answers 200 (and `check` agrees with the body).
 */
export function startLoad(url: string, opts: { rate: number; connections?: number; check?: (body: string) => string | undefined } = { rate: 300 }): { stop(): Promise<LoadResult> } {
  const agent = new Agent({ connections: opts.connections ?? 16, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 });
  const result: LoadResult = { sent: 0, ok: 0, failures: [], statuses: {} };
  const inflight = new Set<Promise<void>>();
  const t0 = Date.now();
  const fire = (): void => {
    result.sent++;
    const p = (async () => {
      try {
        const r = await request(url, { dispatcher: agent, headersTimeout: 10_000, bodyTimeout: 10_000 });
        const body = await r.body.text();
        result.statuses[r.statusCode] = (result.statuses[r.statusCode] ?? 0) + 1;
        const bad = r.statusCode !== 200 ? `${r.statusCode} ${String(r.headers['x-meshgate-flag'] ?? '')}` : opts.check?.(body);
        if (bad) result.failures.push(bad);
        else result.ok++;
      } catch (e) {
        const err = e as Error & { code?: string };
        result.failures.push(err.code ?? err.message);
      }
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - t0) * opts.rate) / 1000) - result.sent;
    for (let i = 0; i < due && inflight.size < 500; i++) fire();
  }, 5);
  return {
    async stop() {
      clearInterval(timer);
      while (inflight.size) await Promise.all([...inflight]);
      await agent.close();
      return result;
    },
  };
}

/** An upstream that answers /sse with an event every `everyMs` until released, and anything else with an echo naming it. */
export async function startSseUpstream(everyMs = 100, name = 'u'): Promise<TestUpstream & { release(): void; open(): number }> {
  const streams = new Set<{ end(): void }>();
  // Every answer closes its upstream connection, so the gateway keeps no upstream pool and
  // the serving processes' fd counts depend on open client connections only.
  const echo = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const body = JSON.stringify({ instance: name, url: req.url, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  };
  const up = await startUpstream((req, res) => {
    if (!req.url?.startsWith('/sse')) return echo(req, res);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'close' });
    let n = 0;
    const timer = setInterval(() => res.write(`data: ${++n}\n\n`), everyMs);
    const s = {
      end() {
        clearInterval(timer);
        res.end('data: end\n\n');
      },
    };
    streams.add(s);
    res.on('close', () => {
      clearInterval(timer);
      streams.delete(s);
    });
  });
  return Object.assign(up, {
    release() {
      for (const s of [...streams]) s.end();
    },
    open: () => streams.size,
  });
}

export interface SseClient {
  events(): number;
  /** Resolves when the stream ends: `clean` when it ended with the upstream's last event. */
  done: Promise<{ clean: boolean; events: number; error?: string }>;
  destroy(): void;
}

/** One SSE stream through the gateway on its own connection. */
export function openSse(url: string): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    let events = 0;
    let text = '';
    let finish!: (v: { clean: boolean; events: number; error?: string }) => void;
    const done = new Promise<{ clean: boolean; events: number; error?: string }>((r) => (finish = r));
    const req = http.get(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`SSE answered ${res.statusCode}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
        const parts = text.split('\n\n');
        text = parts.pop()!;
        events += parts.length;
        for (const p of parts) if (p === 'data: end') finish({ clean: true, events });
      });
      res.on('close', () => finish({ clean: false, events, error: 'closed before the last event' }));
      res.on('error', (e) => finish({ clean: false, events, error: e.message }));
      resolve({ events: () => events, done, destroy: () => req.destroy() });
    });
    req.on('error', (e) => {
      reject(e);
      finish({ clean: false, events, error: e.message });
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One request on a connection the test holds itself (so it can tell the
 * connection stayed open across a reload). Reads one content-length response.
 */
export function exchange(socket: net.Socket, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (e?: Error, r?: RawResponse): void => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      if (e) reject(e);
      else resolve(r!);
    };
    const onClose = (): void => done(new Error('connection closed before the response'));
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const h: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const len = Number(h['content-length'] ?? 0);
      if (buf.length < end + 4 + len) return;
      done(undefined, { status: Number(statusLine!.split(' ')[1]), headers: h, body: buf.subarray(end + 4, end + 4 + len).toString() });
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gw.test\r\n${extra}\r\n`);
  });
}

export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}
