// HTTP/2 (h2c) and gRPC proxying: meshgate beside nginx, a bare node:http2
// proxy and the upstream called directly, all in one run.
//
//   npx tsx test/bench/h2-grpc.ts [--base DIR] [--only h2c,unary,stream,bidi] [--skip nginx,bare,...] [--prof DIR]
//   env: BENCH_ROUNDS (3), BENCH_SECONDS (6, gRPC loads), BENCH_H2_REQUESTS (30000 per h2load run),
//        BENCH_NO_TAP=1 (also meshgate with http2.rejectMalformedFields off: what the guard costs)
//   --base DIR: also a meshgate built in DIR (a worktree with its own dist/), for before/after in one run
//   --prof DIR: meshgate runs with --cpu-prof, profiles written to DIR when it stops
//
// Processes (none pinned; the machine has 2 cores and others use them too):
//   - upstreams: a node:http2 server answering a small body (h2c loads) and the
//     @grpc/grpc-js Echo server of the integration tests (gRPC loads)
//   - direct:   load -> upstream
//   - nginx:    Debian's /usr/sbin/nginx, 1 worker, `listen ... http2` (h2c),
//               `grpc_pass grpc://` to the upstream for both loads (nginx's
//               only way to speak HTTP/2 to an upstream)
//   - meshgate: dist/src/cli.js start --workers 1, access log off (build first:
//               npx tsc -p tsconfig.build.json); with --base DIR also DIR/dist
//   - bare:     ~40 lines of node:http2 piping streams and copying trailers
//               (what any Node proxy pays for HTTP/2 itself)
// Loads: h2load (-c 8 -m 10) for h2c; a @grpc/grpc-js client process for gRPC
// unary (16 callers on one channel, 100 B), server streaming (100 messages a
// call, 4 callers) and bidi ping-pong (16 streams, one message in flight each).
// CPU per request comes from /proc/<pid>/stat (utime+stime; nginx: master and
// worker) over the measured interval. Rounds rotate the order of the targets.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, freePort, NODE_FLAGS, ROOT, waitForPort } from './lib/procs.js';
import { startBareH2Proxy } from './lib/h2-bare-proxy.js';
import { report } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);


// ---------- child roles ----------

/** h2c upstream: every request gets 200 and a 13-byte body. */
async function h2Upstream(): Promise<void> {
  const http2 = await import('node:http2');
  const body = Buffer.from('hello, world\n');
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } });
  server.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length });
    stream.end(body);
  });
  server.on('sessionError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.stdout.write(`${(server.address() as { port: number }).port}\n`);
}

/** The bare node:http2 proxy in its own process: prints its port. */
async function bareProxy(upstreamPort: number): Promise<void> {
  process.stdout.write(`${(await startBareH2Proxy(upstreamPort)).port}\n`);
}

type GrpcKind = 'unary' | 'stream' | 'bidi';

interface LoadResult {
  /** requests: unary calls, streamed messages, or ping-pong round trips */
  n: number;
  calls: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/**
 * gRPC load on one channel: prints "go" when the measured interval starts and
 * a LoadResult as JSON at its end. Latency is per call (unary, stream) or per
 * round trip (bidi).
 */
async function grpcLoad(kind: GrpcKind, target: string): Promise<void> {
  const { echoClient } = await import('../integration/grpc/helpers.js');
  const seconds = Number(process.env.BENCH_SECONDS ?? 6);
  const client = echoClient(target);
  const callers = kind === 'stream' ? 4 : 16;
  // {"msg":"x..."} is 100 bytes on the wire
  const msg = 'x'.repeat(90);
  let measuring = false;
  let stopAt = Date.now() + 1_000;
  let n = 0;
  let calls = 0;
  let errors = 0;
  const lat: number[] = [];
  const done = (t0: bigint, k = 1): void => {
    if (!measuring) return;
    n += k;
    calls++;
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  };
  const caller = (): Promise<void> =>
    new Promise<void>((res) => {
      if (kind === 'unary') {
        const one = (): void => {
          if (Date.now() >= stopAt) return res();
          const t0 = process.hrtime.bigint();
          client.unary({ msg }, (err: Error | null) => {
            if (err) errors += measuring ? 1 : 0;
            else done(t0);
            one();
          });
        };
        one();
      } else if (kind === 'stream') {
        const one = (): void => {
          if (Date.now() >= stopAt) return res();
          const t0 = process.hrtime.bigint();
          let got = 0;
          const call = client.serverStream({ count: 100, size: 80 });
          call.on('data', () => got++);
          call.on('error', () => {
            if (measuring) errors++;
            one();
          });
          call.on('end', () => undefined);
          call.on('status', (s: { code: number }) => {
            if (s.code === 0) {
              done(t0, got);
              one();
            }
          });
        };
        one();
      } else {
        // one bidi stream per caller, one message in flight
        const call = client.bidi();
        let t0 = process.hrtime.bigint();
        const send = (): void => {
          if (Date.now() >= stopAt) {
            call.end();
            return;
          }
          t0 = process.hrtime.bigint();
          call.write({ msg });
        };
        call.on('data', () => {
          done(t0);
          send();
        });
        call.on('error', () => {
          errors++;
          res();
        });
        call.on('status', () => res());
        send();
      }
    });
  await Promise.all(Array.from({ length: callers }, caller));
  process.stdout.write('go\n');
  measuring = true;
  const start = Date.now();
  stopAt = start + seconds * 1000;
  await Promise.all(Array.from({ length: callers }, caller));
  const elapsed = (Date.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  const r: LoadResult = { n, calls, rps: n / elapsed, p50: q(0.5), p99: q(0.99), errors };
  process.stdout.write(`${JSON.stringify(r)}\n`);
  client.close();
  process.exit(0);
}

// ---------- the parent ----------

const started: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of started) if (c.exitCode === null) c.kill('SIGKILL');
});

function spawnChild(name: string, cmd: string, args: string[], env?: Record<string, string>): ChildProcess {
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, grpc_proxy: '', http_proxy: '', https_proxy: '', ...env } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (code && sig !== 'SIGKILL' && sig !== 'SIGTERM') process.stderr.write(`${name} exited ${code}: ${err}\n`);
  });
  started.push(child);
  return child;
}

/** A role of this file in its own process (Node flags as the launchers use); resolves with its first stdout line. */
async function role(name: string, args: string[], extraNode: string[] = []): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawnChild(name, process.execPath, [...NODE_FLAGS, ...extraNode, '--import', 'tsx', SELF, ...args]);
  const rl = createInterface({ input: proc.stdout! });
  const [line] = (await once(rl, 'line')) as [string];
  return { proc, line };
}

const tmp = mkdtempSync(join(tmpdir(), 'meshgate-h2-bench-'));

async function startMeshgate(name: string, dist: string, h2Port: number, grpcPort: number, prof?: string, tap = true): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const admin = await freePort();
  const config = {
    listeners: [{ name: 'public', address: `127.0.0.1:${port}`, protocol: 'http', ...(tap ? {} : { http2: { rejectMalformedFields: false } }) }],
    admin: { address: `127.0.0.1:${admin}` },
    log: { level: 'warn', access: false },
    registries: [
      { name: 'h2', type: 'static', endpoints: [`127.0.0.1:${h2Port}`] },
      { name: 'echo', type: 'static', endpoints: [`127.0.0.1:${grpcPort}`] },
    ],
    services: { 'h2.static': { protocol: 'http2' }, 'echo.static': { protocol: 'grpc' } },
    routes: [
      { name: 'echo', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'echo.static' }] },
      { name: 'h2', match: { path: { prefix: '/' } }, backends: [{ service: 'h2.static' }] },
    ],
  };
  const file = join(tmp, `${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  // cluster workers inherit the primary's execArgv: the worker (the request path) is profiled too
  const profArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  const proc = spawnChild(name, process.execPath, [...NODE_FLAGS, ...profArgs, join(dist, 'src/cli.js'), 'start', '--config', file, '--workers', '1']);
  await waitForPort(port, name, 120_000, proc);
  return { proc, port };
}

async function startNginx(h2Port: number, grpcPort: number): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const dir = join(tmp, 'nginx');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const conf = `
worker_processes 1;
daemon off;
error_log ${dir}/logs/error.log warn;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  http2_max_concurrent_streams 128;
  keepalive_requests 1000000;
  http2_max_requests 1000000;
  upstream h2up { server 127.0.0.1:${h2Port}; keepalive 16; keepalive_requests 1000000; }
  upstream grpcup { server 127.0.0.1:${grpcPort}; keepalive 16; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port} http2;
    location /test.Echo/ { grpc_pass grpc://grpcup; }
    location / { grpc_pass grpc://h2up; }
  }
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const proc = spawnChild('nginx', '/usr/sbin/nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')]);
  await waitForPort(port, 'nginx', 30_000, proc);
  return { proc, port };
}

interface Sample {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** proxy CPU us per request (NaN for direct) */
  cpu: number;
  /** upstream CPU us per request */
  upCpu: number;
  /** load generator CPU us per request */
  loadCpu: number;
}

interface Target {
  name: string;
  port: number;
  pid?: number;
  tree?: boolean;
}

function runCmd(cmd: string, args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(c);
    let out = '';
    c.stdout!.on('data', (d: Buffer) => (out += d));
    c.stderr!.on('data', (d: Buffer) => (out += d));
    c.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} exited ${code}: ${out.slice(-2000)}`))));
  });
}

const cpuOf = (t: Target): number => (t.pid ? cpuSeconds(t.pid, t.tree) : 0);

async function h2loadRun(t: Target, upPid: number, requests: number): Promise<Sample> {
  const url = `http://127.0.0.1:${t.port}/`;
  // warm-up: connections, JIT
  await runCmd('/usr/bin/h2load', ['-n', String(Math.min(4000, requests)), '-c', '8', '-m', '10', url]);
  const c0 = cpuOf(t);
  const u0 = cpuSeconds(upPid);
  const child = spawn('/usr/bin/h2load', ['-n', String(requests), '-c', '8', '-m', '10', url], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  // h2load's own CPU, read just before it exits
  let l1 = 0;
  const poll = setInterval(() => (l1 = cpuSeconds(child.pid!) || l1), 100);
  const [code] = (await once(child, 'exit')) as [number];
  clearInterval(poll);
  const c1 = cpuOf(t);
  const u1 = cpuSeconds(upPid);
  if (code !== 0) throw new Error(`h2load exited ${code}: ${out}`);
  const rps = Number(/finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out)?.[1]);
  const m = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const ok = Number(m?.[2] ?? 0);
  const status2xx = Number(/status codes: (\d+) 2xx/.exec(out)?.[1] ?? 0);
  // h2load gives mean and sd of request time, not percentiles: p50 = mean here, p99 blank
  const tm = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(out);
  const ms = (v: string, u: string): number => Number(v) * (u === 'us' ? 1e-3 : u === 's' ? 1e3 : 1);
  return {
    rps,
    p50: tm ? ms(tm[5]!, tm[6]!) : NaN,
    p99: NaN,
    errors: Math.max(requests - ok, requests - status2xx),
    cpu: t.pid ? ((c1 - c0) * 1e6) / requests : NaN,
    upCpu: ((u1 - u0) * 1e6) / requests,
    loadCpu: (l1 * 1e6) / requests,
  };
}

async function grpcRun(kind: GrpcKind, t: Target, upPid: number): Promise<Sample> {
  const proc = spawnChild('grpc load', process.execPath, [...NODE_FLAGS, '--import', 'tsx', SELF, '--grpc-load', kind, `127.0.0.1:${t.port}`]);
  const rl = createInterface({ input: proc.stdout! });
  let c0 = 0;
  let u0 = 0;
  let l0 = 0;
  let c1 = 0;
  let u1 = 0;
  let l1 = 0;
  let result: LoadResult | undefined;
  for await (const line of rl) {
    if (line === 'go') {
      c0 = cpuOf(t);
      u0 = cpuSeconds(upPid);
      l0 = cpuSeconds(proc.pid!);
    } else {
      c1 = cpuOf(t);
      u1 = cpuSeconds(upPid);
      l1 = cpuSeconds(proc.pid!);
      result = JSON.parse(line) as LoadResult;
    }
  }
  if (!result) throw new Error('grpc load gave no result');
  return {
    rps: result.rps,
    p50: result.p50,
    p99: result.p99,
    errors: result.errors,
    cpu: t.pid ? ((c1 - c0) * 1e6) / result.n : NaN,
    upCpu: ((u1 - u0) * 1e6) / result.n,
    loadCpu: ((l1 - l0) * 1e6) / result.n,
  };
}

const med = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const f = (x: number, d = 0): string => (Number.isNaN(x) ? '' : x.toFixed(d));

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const requests = Number(process.env.BENCH_H2_REQUESTS ?? 30_000);
  const base = flag('--base');
  const prof = flag('--prof');
  const only = (flag('--only') ?? 'h2c,unary,stream,bidi').split(',');
  const skip = (flag('--skip') ?? '').split(',');
  if (prof) mkdirSync(prof, { recursive: true });

  const h2up = await role('h2 upstream', ['--h2-upstream']);
  const grpcUp = await role('grpc upstream', ['--grpc-upstream']);
  const h2Port = Number(h2up.line);
  const grpcPort = Number(grpcUp.line);
  const targets: Array<{ name: string; h2: Target; grpc: Target }> = [];
  const add = (name: string, h2: Target, grpc: Target): void => void (skip.includes(name) ? undefined : targets.push({ name, h2, grpc }));
  add('direct', { name: 'direct', port: h2Port }, { name: 'direct', port: grpcPort });
  if (!skip.includes('nginx')) {
    const ng = await startNginx(h2Port, grpcPort);
    const t = { name: 'nginx', port: ng.port, pid: ng.proc.pid!, tree: true };
    add('nginx', t, t);
  }
  if (!skip.includes('meshgate')) {
    const mg = await startMeshgate('meshgate', join(ROOT, 'dist'), h2Port, grpcPort, prof);
    // --workers 1: a primary and one worker; count both
    const t = { name: 'meshgate', port: mg.port, pid: mg.proc.pid!, tree: true };
    add('meshgate', t, t);
  }
  if (process.env.BENCH_NO_TAP) {
    // the cost of the malformed-field guard: the same gateway with http2.rejectMalformedFields off
    const mg = await startMeshgate('meshgate-notap', join(ROOT, 'dist'), h2Port, grpcPort, undefined, false);
    const t = { name: 'meshgate, no tap', port: mg.port, pid: mg.proc.pid!, tree: true };
    add('meshgate, no tap', t, t);
  }
  if (base) {
    const mg = await startMeshgate('meshgate-base', join(resolve(base), 'dist'), h2Port, grpcPort);
    const t = { name: 'meshgate base', port: mg.port, pid: mg.proc.pid!, tree: true };
    add('meshgate base', t, t);
  }
  if (!skip.includes('bare')) {
    const b1 = await role('bare h2', ['--bare', String(h2Port)]);
    const b2 = await role('bare grpc', ['--bare', String(grpcPort)]);
    add('bare node:http2', { name: 'bare', port: Number(b1.line), pid: b1.proc.pid! }, { name: 'bare', port: Number(b2.line), pid: b2.proc.pid! });
  }

  const loads = [
    { key: 'h2c', title: `h2c: h2load -n ${requests} -c 8 -m 10, 13-byte body`, unit: 'req/s' },
    { key: 'unary', title: 'gRPC unary: 16 callers on one channel, 100 B messages', unit: 'calls/s' },
    { key: 'stream', title: 'gRPC server streaming: 4 callers, 100 messages of ~100 B per call', unit: 'msgs/s' },
    { key: 'bidi', title: 'gRPC bidi ping-pong: 16 streams on one channel, one 100 B message in flight each', unit: 'round trips/s' },
  ].filter((l) => only.includes(l.key));
  console.log(`node ${process.version}, nginx 1.22 (Debian), ${rounds} rounds, gRPC ${process.env.BENCH_SECONDS ?? 6} s per case; load average ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  for (const load of loads) {
    const all = new Map<string, Array<Sample & { ratio: number }>>(targets.map((t) => [t.name, []]));
    const upPid = load.key === 'h2c' ? h2up.proc.pid! : grpcUp.proc.pid!;
    console.log(`\n### ${load.title}\n`);
    console.log(`| round | target | ${load.unit} | vs direct | p50 ms | p99 ms | errors | proxy CPU us/req | upstream CPU us/req | load gen CPU us/req | loadavg |`);
    console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (let round = 1; round <= rounds; round++) {
      const order = targets.map((_, k) => targets[(k + round - 1) % targets.length]!);
      if (round % 2 === 0) order.reverse();
      const got = new Map<string, Sample>();
      for (const t of order) {
        const s = load.key === 'h2c' ? await h2loadRun(t.h2, upPid, requests) : await grpcRun(load.key as GrpcKind, t.grpc, upPid);
        got.set(t.name, s);
      }
      const d = got.get('direct')?.rps ?? NaN;
      const la = loadavg()[0]!.toFixed(1);
      for (const t of targets) {
        const s = got.get(t.name)!;
        const ratio = s.rps / d;
        all.get(t.name)!.push({ ...s, ratio });
        console.log(`| ${round} | ${t.name} | ${f(s.rps)} | ${f(ratio, 2)} | ${f(s.p50, 2)} | ${f(s.p99, 2)} | ${s.errors} | ${f(s.cpu)} | ${f(s.upCpu)} | ${f(s.loadCpu)} | ${la} |`);
      }
    }
    console.log(`\nmedians (${load.title}):\n`);
    console.log(`| target | ${load.unit} | ratio to direct (median of rounds) | p50 ms | p99 ms | errors | proxy CPU us/req | upstream CPU us/req | load gen CPU us/req |`);
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const t of targets) {
      const rs = all.get(t.name)!;
      console.log(
        `| ${t.name} | ${f(med(rs.map((r) => r.rps)))} | ${f(med(rs.map((r) => r.ratio)), 2)} | ${f(med(rs.map((r) => r.p50)), 2)} | ${f(med(rs.map((r) => r.p99)), 2)} | ${rs.reduce((a, r) => a + r.errors, 0)} | ${f(med(rs.map((r) => r.cpu)))} | ${f(med(rs.map((r) => r.upCpu)))} | ${f(med(rs.map((r) => r.loadCpu)))} |`,
      );
    }
    const direct = all.get('direct');
    for (const t of targets) {
      if (t.name === 'direct' || !direct) continue;
      const rs = all.get(t.name)!;
      report({ bench: 'h2-grpc', metric: `${load.title}: ${t.name} ${load.unit} (vs direct)`, value: med(rs.map((r) => r.rps)), baseline: med(direct.map((r) => r.rps)), unit: load.unit, note: `ratio: median of per-round ratios ${f(med(rs.map((r) => r.ratio)), 2)}; proxy CPU ${f(med(rs.map((r) => r.cpu)))} us/req` });
    }
  }
  console.log(`\nload average at the end: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  for (const c of started) if (c.exitCode === null) c.kill('SIGTERM');
  // profiles are written on a clean exit: give the gateway time to stop
  await new Promise((r) => setTimeout(r, prof ? 3000 : 500));
  process.exit(0);
}

// Roles run last: the module's constants are initialised by then.
if (argv[0] === '--h2-upstream') await h2Upstream();
else if (argv[0] === '--grpc-upstream') {
  const { startEchoServer } = await import('../integration/grpc/helpers.js');
  const s = await startEchoServer('bench');
  process.stdout.write(`${s.port}\n`);
} else if (argv[0] === '--bare') await bareProxy(Number(argv[1]));
else if (argv[0] === '--grpc-load') await grpcLoad(argv[1] as GrpcKind, argv[2]!);
else await main();
