// HTTP proxy benchmark: meshgate against direct, nginx and @fastify/http-proxy.
//
//   npx tsx test/bench/proxy.ts [--rounds 3] [--seconds 10] [--warmup 5] [--connections 50]
//                               [--rate 2000] [--paced-seconds 15] [--no-pin] [--pin-paced] [--no-build]
//                               [--profile DIR] [--only direct,meshgate,...] [--node-arg FLAG ...] [--paced-only]
//                               [--base DIR] [--fast-upstream]
//
// --fast-upstream: the two upstream instances are one nginx process (1 worker,
// `return 200`, access log off) instead of node:http, so the upstream caps no
// target (direct runs several times faster than any proxy), and nginx as the
// proxy writes no access log either: the per-core comparison is meshgate-nolog
// against nginx, like with like; meshgate with its access log is the second row.
//
// What runs (every server its own process, all started once, idle while another is measured):
//  - 2 upstream instances: minimal node:http servers with a fixed 12-byte body.
//  - direct: the load generator against upstream instance A (instance B is
//    also used by the fixed-rate run, which spreads its connections over both).
//  - meshgate: compiled JS (`npm run build`, then node dist/src/cli.js start
//    --workers 1), one route to a static service with the two instances,
//    round robin; access log ON, written to /dev/null (MESHGATE_ACCESS_LOG), so
//    the cost of the log line is in the numbers.
//  - meshgate-nolog: the same with `log.access: false`.
//  - meshgate-10k: meshgate-nolog with 10,000 more routes (exact paths,
//    prefixes, regexes with literal starts, a few hosts) in front of the bench
//    route, which is last in config order and a prefix: throughput at 10,000
//    routes against meshgate-nolog's at one.
//  - meshgate-base (with --base DIR): the same as meshgate, from another
//    checkout's built dist/ (e.g. `git worktree add DIR <commit>` and build
//    it), measured in the same rounds: a before/after of a change.
//  - nginx: /usr/sbin/nginx, 1 worker, upstream block with both instances and
//    keepalive 64, access log to /dev/null (combined format).
//  - fastify: @fastify/http-proxy on one process over both instances
//    (undici BalancedPool), no logger.
//  - floor: not a proxy to use, a reference (test/bench/lib/proxy-floor.ts):
//    node:http + undici with nothing else, what any proxy on them starts from.
//  - rawclient and raw: references that split the floor in two
//    (test/bench/lib/proxy-raw.ts): the node:http server with a few lines of
//    JS as the upstream client on node:net (no undici), and the same JS on
//    node:net on both sides (no node:http either). They handle only what the
//    benchmark sends (no body, content-length answers).
//  - tcp: a reference (test/bench/lib/proxy-tcp.ts): a node:net relay
//    that pipes each client connection to its own upstream connection, no
//    HTTP parsing; the cost of one Node process as one more hop.
//  fastify and the references run through tsx (it compiles the .ts file at load; the
//  request path is fastify's, reply-from's and undici's plain JS).
//
// Throughput: wrk (1 thread, same connections and duration for every target,
// a discarded warm-up run before each measurement), or autocannon when wrk is
// missing. Rounds go through every target in turn, so load from anything else
// on the machine hits all targets alike; the table shows medians over rounds.
//
// Latency at a fixed rate: test/bench/lib/proxy-paced.ts (open loop, request
// i due at t0 + i/rate), for direct (both instances) and each proxy; the
// added p99 is p99(proxy) - p99(direct), medians over rounds. In each round
// the fixed-rate runs follow the throughput runs, so every target is measured
// shortly after it was saturated; --paced-only leaves the throughput runs out
// and measures the fixed rate on its own.
//
// CPU: on a 2-core machine, for the throughput runs the proxies are pinned to
// CPU 1 and the load generator and upstreams to CPU 0 (taskset), unless
// --no-pin. The fixed-rate runs are unpinned (every process may use every
// CPU) unless --pin-paced: at 2,000 req/s no process is short of CPU, and
// sharing one CPU between the generator and both upstreams adds queueing
// delay to every proxy's tail (nginx's added p99 measured 0.5-1.2 ms pinned
// and 0.21-0.45 ms unpinned, per round, on the same machine minutes apart).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { cpuSeconds, NODE_FLAGS, stopProcess as stop, waitForPort } from './lib/procs.js';
import { parseWrk as parseWrkOutput } from './lib/wrk.js';
import { report } from './lib/report.js';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const NGINX = '/usr/sbin/nginx';

interface Opts {
  rounds: number;
  seconds: number;
  warmup: number;
  connections: number;
  rate: number;
  pacedSeconds: number;
  pin: boolean;
  build: boolean;
  profileDir: string | undefined;
  only: Set<string> | undefined;
  /** Keep the fixed-rate run pinned like the throughput runs. */
  pinPaced: boolean;
  /** Extra node flags for the meshgate processes (e.g. V8 heap flags), repeatable. */
  nodeArgs: string[];
  /** Only the fixed-rate runs: no throughput run saturates the targets first. */
  pacedOnly: boolean;
  /** Another checkout with a built dist/: measured as meshgate-base. */
  base: string | undefined;
  /** nginx `return 200` as the upstream (and no access log on the nginx proxy). */
  fastUpstream: boolean;
}

function parseOpts(argv: string[]): Opts {
  const o: Opts = { rounds: 3, seconds: 10, warmup: 5, connections: 50, rate: 2000, pacedSeconds: 15, pin: true, build: true, profileDir: undefined, only: undefined, nodeArgs: [], pinPaced: false, pacedOnly: false, base: undefined, fastUpstream: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--rounds') o.rounds = num();
    else if (a === '--seconds') o.seconds = num();
    else if (a === '--warmup') o.warmup = num();
    else if (a === '--connections') o.connections = num();
    else if (a === '--rate') o.rate = num();
    else if (a === '--paced-seconds') o.pacedSeconds = num();
    else if (a === '--no-pin') o.pin = false;
    else if (a === '--pin-paced') o.pinPaced = true;
    else if (a === '--paced-only') o.pacedOnly = true;
    else if (a === '--no-build') o.build = false;
    else if (a === '--profile') o.profileDir = resolve(argv[++i] ?? '');
    else if (a === '--node-arg') o.nodeArgs.push(argv[++i] ?? '');
    else if (a === '--only') o.only = new Set((argv[++i] ?? '').split(','));
    else if (a === '--base') o.base = resolve(argv[++i] ?? '');
    else if (a === '--fast-upstream') o.fastUpstream = true;
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const children: ChildProcess[] = [];
let tmp = '';

let keepTmp = false;
function cleanup(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  if (tmp && !keepTmp) rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** Spawn, pinned to a CPU when pinning; output to a log file in the temp dir. */
function start(name: string, cpu: number | undefined, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const [c, a] = cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
  const child = spawn(c, a, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => out.push(d));
  child.on('exit', () => writeFileSync(join(tmp, `${name}.log`), Buffer.concat(out)));
  children.push(child);
  return child;
}

function run(cmd: string, args: string[], cpu: number | undefined): Promise<string> {
  const [c, a] = cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
  return new Promise((resolveRun, reject) => {
    const child = spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolveRun(out) : reject(new Error(`${cmd} exited ${code}: ${err || out}`))));
  });
}

/** Move running processes (every thread, and their child processes) to the CPUs in `list` (taskset syntax). */
function setAffinity(procs: ChildProcess[], list: string): void {
  const tree = (pid: number): number[] => {
    const kids = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    return [pid, ...kids.flatMap(tree)];
  };
  for (const c of procs) {
    if (c.pid === undefined || c.exitCode !== null) continue;
    for (const pid of tree(c.pid)) spawnSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
  }
}

// ---------- load generators ----------

interface Throughput {
  rps: number;
  p50: number; // ms
  p99: number; // ms
  errors: number;
  /** CPU microseconds per request used by the server under test (NaN for direct). */
  cpuUsPerReq: number;
}

function parseWrk(out: string): Throughput {
  return { ...parseWrkOutput(out), cpuUsPerReq: NaN };
}

class Loader {
  readonly tool: 'wrk' | 'autocannon';
  constructor(
    private readonly o: Opts,
    private readonly cpu: number | undefined,
  ) {
    this.tool = has('wrk') ? 'wrk' : 'autocannon';
  }

  async measure(url: string, seconds: number): Promise<Throughput> {
    if (this.tool === 'wrk') {
      const out = await run('wrk', ['-t1', `-c${this.o.connections}`, `-d${seconds}s`, '--latency', url], this.cpu);
      return parseWrk(out);
    }
    const bin = join(ROOT, 'node_modules/autocannon/autocannon.js');
    const out = await run(process.execPath, [bin, '-j', '-c', String(this.o.connections), '-d', String(seconds), url], this.cpu);
    const j = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number; timeouts: number };
    return { rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, errors: j.non2xx + j.errors + j.timeouts, cpuUsPerReq: NaN };
  }

  async throughput(url: string, pid: number | undefined): Promise<Throughput> {
    await this.measure(url, this.o.warmup);
    const cpu0 = pid !== undefined ? cpuSeconds(pid, true) : 0;
    const t0 = performance.now();
    const r = await this.measure(url, this.o.seconds);
    if (pid !== undefined) {
      // Requests served = rate x the time wrk ran (its own count is not printed).
      const served = r.rps * ((performance.now() - t0) / 1000);
      r.cpuUsPerReq = ((cpuSeconds(pid, true) - cpu0) * 1e6) / served;
    }
    return r;
  }
}

interface Paced {
  targetRate: number;
  achievedRate: number;
  measured: number;
  errors: number;
  maxQueued: number;
  service: { p50: number; p90: number; p99: number; p999: number; max: number };
  fromDue: { p50: number; p90: number; p99: number; p999: number; max: number };
}

async function paced(o: Opts, cpu: number | undefined, urls: string[]): Promise<Paced> {
  const out = await run(process.execPath, ['--import', 'tsx', join(ROOT, 'test/bench/lib/proxy-paced.ts'), '--rate', String(o.rate), '--seconds', String(o.pacedSeconds), '--warmup', '3', '--connections', '64', ...urls], cpu);
  return JSON.parse(out) as Paced;
}

// ---------- servers ----------

const UPSTREAM_JS = `
const http = require('node:http');
const body = Buffer.from('hello world\\n');
const srv = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
srv.keepAliveTimeout = 120000;
srv.listen(Number(process.argv[1]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;

/** 10,000 routes to the same service, none of which matches the bench's requests (`/`). */
function fillerRoutes(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    const path = k < 4 ? `{ exact: /svc${i}/items }` : k < 9 ? `{ prefix: /svc${i} }` : `{ regex: "/r${i}/[0-9]+" }`;
    const hosts = i % 50 === 7 ? `, hosts: [h${i}.example.com]` : '';
    out.push(`  - { name: filler-${i}, match: { path: ${path}${hosts} }, backends: [{ service: bench.static }] }`);
  }
  return out.join('\n') + '\n';
}

function meshgateYaml(port: number, admin: number, ups: number[], access: boolean, filler = 0): string {
  return `listeners:
  - name: public
    address: 127.0.0.1:${port}
admin:
  address: 127.0.0.1:${admin}
registries:
  - name: bench
    type: static
    endpoints: [${ups.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
services:
  bench.static:
    loadBalancer: { type: round_robin }
routes:
${fillerRoutes(filler)}  - name: bench
    match: { path: { prefix: / } }
    backends: [{ service: bench.static }]
log:
  level: warn
  access: ${access}
`;
}

/** The fast upstream: both instances in one nginx worker answering a fixed 12-byte body. */
function nginxUpstreamConf(dir: string, ports: number[]): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  keepalive_requests 1000000;
  default_type text/plain;
  server {
${ports.map((p) => `    listen 127.0.0.1:${p};`).join('\n')}
    location / { return 200 "hello world\\n"; }
  }
}
`;
}

function nginxConf(dir: string, port: number, ups: number[], accessLog = true): string {
  return `worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log ${accessLog ? '/dev/null combined' : 'off'};
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp;
  uwsgi_temp_path ${dir}/uwsgi_temp;
  scgi_temp_path ${dir}/scgi_temp;
  keepalive_requests 100000;
  upstream bench {
${ups.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive 64;
    keepalive_requests 100000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://bench;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`;
}

// ---------- report ----------

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const f0 = (n: number): string => Math.round(n).toLocaleString('en-US');
const f2 = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const f3 = (n: number): string => (Number.isFinite(n) ? n.toFixed(3) : 'n/a');

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ')} |`;
  return [line(head), `|${w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : `${'-'.repeat(n + 1)}:`)).join('|')}|`, ...rows.map(line)].join('\n');
}

// ---------- main ----------

async function main(): Promise<void> {
  const o = parseOpts(process.argv.slice(2));
  const ncpu = availableParallelism();
  const pin = o.pin && ncpu >= 2 && has('taskset');
  const genCpu = pin ? 0 : undefined;
  const proxyCpu = pin ? 1 : undefined;
  if (!has('wrk')) {
    process.stdout.write('wrk not found (install: apt-get install wrk); using autocannon from node_modules\n');
  }
  const useNginx = existsSync(NGINX);
  if (!useNginx) process.stdout.write(`nginx not found at ${NGINX} (install: apt-get install nginx); skipping it\n`);

  if (o.build) {
    process.stdout.write('building (npm run build)...\n');
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) {
      // Type errors elsewhere in the tree do not stop tsc from emitting.
      process.stdout.write(`npm run build exited ${b.status}; continuing with the emitted JS:\n${(b.stdout + b.stderr).split('\n').slice(0, 10).join('\n')}\n`);
    }
  }
  if (!existsSync(join(ROOT, 'dist/src/cli.js'))) throw new Error('dist/src/cli.js missing: run npm run build');

  tmp = mkdtempSync(join(tmpdir(), 'meshgate-proxy-bench-'));
  const upPorts = [await freePort(), await freePort()];
  let ups: ChildProcess[];
  if (o.fastUpstream) {
    if (!useNginx) throw new Error(`--fast-upstream needs nginx at ${NGINX}`);
    const dir = join(tmp, 'nginx-upstream');
    mkdirSync(dir);
    writeFileSync(join(dir, 'nginx.conf'), nginxUpstreamConf(dir, upPorts));
    const child = start('upstream-nginx', genCpu, NGINX, ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', join(dir, 'nginx.conf')]);
    await Promise.all(upPorts.map((p, i) => waitForPort(p, `upstream ${i}`, 30_000, child)));
    ups = [child];
  } else {
    ups = upPorts.map((p, i) => start(`upstream-${i}`, genCpu, process.execPath, ['-e', UPSTREAM_JS, String(p)]));
    await Promise.all(ups.map((c, i) => waitForPort(upPorts[i]!, `upstream ${i}`, 30_000, c)));
  }
  const upUrls = upPorts.map((p) => `http://127.0.0.1:${p}`);

  interface Target {
    name: string;
    label: string;
    url: string;
    child?: ChildProcess;
  }
  const targets: Target[] = [{ name: 'direct', label: 'direct (upstream A)', url: `${upUrls[0]}/` }];
  const want = (n: string): boolean => !o.only || o.only.has(n) || n === 'direct';
  // --profile DIR: every Node target writes a V8 CPU profile to DIR/<target>/ when it exits.
  const profileArgs = (name: string): string[] => {
    if (!o.profileDir) return [];
    mkdirSync(join(o.profileDir, name), { recursive: true });
    return ['--cpu-prof', '--cpu-prof-dir', join(o.profileDir, name)];
  };

  const builds: Array<[string, boolean, string, number?]> = [
    ['meshgate', true, ROOT],
    ['meshgate-nolog', false, ROOT],
    ['meshgate-10k', false, ROOT, 10_000],
  ];
  if (o.base !== undefined) {
    if (!existsSync(join(o.base, 'dist/src/cli.js'))) throw new Error(`--base ${o.base}: dist/src/cli.js missing (build it there first)`);
    builds.push(['meshgate-base', true, o.base]);
  }
  for (const [name, access, dir, filler] of builds) {
    if (!want(name) || (filler && !o.only?.has(name))) continue; // meshgate-10k only when asked for
    const port = await freePort();
    const admin = await freePort();
    const cfg = join(tmp, `${name}.yaml`);
    writeFileSync(cfg, meshgateYaml(port, admin, upPorts, access, filler ?? 0));
    const child = start(name, proxyCpu, process.execPath, [...profileArgs(name), ...NODE_FLAGS, ...o.nodeArgs, join(dir, 'dist/src/cli.js'), 'start', '--config', cfg, '--workers', '1'], { MESHGATE_ACCESS_LOG: '/dev/null' });
    await waitForPort(port, name, 30_000, child);
    const label = dir !== ROOT ? `meshgate at ${o.base} (access log to /dev/null)` : filler ? `meshgate, ${filler.toLocaleString('en-US')} more routes (access log off)` : access ? 'meshgate (access log to /dev/null)' : 'meshgate (access log off)';
    targets.push({ name, label, url: `http://127.0.0.1:${port}/`, child });
  }
  if (useNginx && want('nginx')) {
    const port = await freePort();
    const dir = join(tmp, 'nginx');
    mkdirSync(dir);
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port, upPorts, !o.fastUpstream));
    const child = start('nginx', proxyCpu, NGINX, ['-p', dir, '-e', join(dir, 'nginx-error.log'), '-c', join(dir, 'nginx.conf')]);
    await waitForPort(port, 'nginx', 30_000, child);
    targets.push({ name: 'nginx', label: `nginx (1 worker, keepalive 64, access log ${o.fastUpstream ? 'off' : 'to /dev/null'})`, url: `http://127.0.0.1:${port}/`, child });
  }
  if (want('fastify')) {
    const port = await freePort();
    const child = start('fastify', proxyCpu, process.execPath, [...profileArgs('fastify'), ...NODE_FLAGS, '--import', 'tsx', 'test/bench/lib/proxy-fastify.ts', String(port), ...upUrls]);
    await waitForPort(port, 'fastify', 30_000, child);
    targets.push({ name: 'fastify', label: '@fastify/http-proxy (BalancedPool)', url: `http://127.0.0.1:${port}/`, child });
  }

  // The references: what node:http + undici, JS on node:net and a plain TCP
  // relay cost on their own (test/bench/lib/proxy-*.ts).
  const refs: [name: string, label: string, args: string[]][] = [
    ['floor', 'reference: bare node:http + undici', ['test/bench/lib/proxy-floor.ts']],
    ['rawclient', 'reference: node:http server + JS client on node:net', ['test/bench/lib/proxy-raw.ts', 'node-server']],
    ['raw', 'reference: JS HTTP/1.1 on node:net, both sides', ['test/bench/lib/proxy-raw.ts', 'raw']],
    ['tcp', 'reference: bare TCP relay (node:net)', ['test/bench/lib/proxy-tcp.ts']],
  ];
  for (const [name, label, [script, ...mode]] of refs) {
    if (!want(name)) continue;
    const port = await freePort();
    const child = start(name, proxyCpu, process.execPath, [...profileArgs(name), ...NODE_FLAGS, '--import', 'tsx', script!, ...mode, String(port), ...upUrls]);
    await waitForPort(port, name, 30_000, child);
    targets.push({ name, label, url: `http://127.0.0.1:${port}/`, child });
  }

  // Every target answers before anything is measured.
  for (const t of targets) {
    const r = await fetch(t.url).catch((e: Error) => {
      throw new Error(`${t.name} (${t.url}) does not answer: ${(e.cause as Error | undefined)?.message ?? e.message}; logs in ${tmp}`);
    });
    const text = await r.text();
    if (r.status !== 200 || text !== 'hello world\n') throw new Error(`${t.name}: unexpected answer ${r.status} ${JSON.stringify(text)}`);
  }

  const loader = new Loader(o, genCpu);
  const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(
    `\nmachine: ${ncpu} CPUs (${cpuModel}), ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}\n` +
      `load: ${loader.tool}, ${o.connections} connections, ${loader.tool === 'wrk' ? '1 thread, ' : ''}${o.warmup} s warm-up + ${o.seconds} s per target, ${o.rounds} rounds\n` +
      `fixed rate: ${o.rate} req/s open loop, 64 connections, 3 s warm-up + ${o.pacedSeconds} s\n` +
      (pin
        ? `pinning: proxies on CPU 1; load generator and upstreams on CPU 0${o.pinPaced ? '' : ' (throughput runs; fixed-rate runs unpinned)'}\n`
        : 'pinning: none\n'),
  );

  const thr = new Map<string, Throughput[]>(targets.map((t) => [t.name, []]));
  const pac = new Map<string, Paced[]>(targets.map((t) => [t.name, []]));
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of o.pacedOnly ? [] : targets) {
      const r = await loader.throughput(t.url, t.child?.pid);
      thr.get(t.name)!.push(r);
      process.stdout.write(
        `round ${round} ${t.name.padEnd(15)} ${f0(r.rps).padStart(7)} req/s  p50 ${f3(r.p50)} ms  p99 ${f3(r.p99)} ms  ${t.child ? `CPU ${f0(r.cpuUsPerReq)} us/req` : ''}${r.errors ? `  ERRORS ${r.errors}` : ''}\n`,
      );
    }
    // The fixed-rate run is unpinned unless --pin-paced: at 2,000 req/s nothing
    // is short of CPU, and pinning the generator and both upstreams to one CPU
    // makes them queue behind each other, which shows up as every proxy's tail.
    const pacedCpu = o.pinPaced ? genCpu : undefined;
    if (pin && !o.pinPaced) setAffinity(children, `0-${ncpu - 1}`);
    for (const t of targets) {
      // Direct spreads its connections over both instances, as the proxies do.
      const r = await paced(o, pacedCpu, t.name === 'direct' ? upUrls.map((u) => `${u}/`) : [t.url]);
      pac.get(t.name)!.push(r);
      process.stdout.write(
        `round ${round} ${t.name.padEnd(15)} @${f0(r.achievedRate)} req/s  p50 ${f3(r.service.p50)} ms  p99 ${f3(r.service.p99)} ms  (from due: p99 ${f3(r.fromDue.p99)} ms)${r.errors ? `  ERRORS ${r.errors}` : ''}\n`,
      );
    }
    if (pin && !o.pinPaced) {
      setAffinity(ups, String(genCpu));
      setAffinity(targets.flatMap((t) => (t.child ? [t.child] : [])), String(proxyCpu));
    }
  }

  const med = (name: string, f: (r: Throughput) => number): number => median(thr.get(name)!.map(f));
  const pmed = (name: string, f: (r: Paced) => number): number => median(pac.get(name)!.map(f));
  /** Round by round, f of target `a` over f of target `b` (the same rounds, the same order). */
  const roundRatios = (a: string, b: string, f: (r: Throughput) => number): number[] => thr.get(a)!.map((r, i) => f(r) / f(thr.get(b)![i]!));
  const directP99 = pmed('direct', (r) => r.service.p99);
  const directDueP99 = pmed('direct', (r) => r.fromDue.p99);
  const pacedCell = (t: Target, f: () => string): string => (pac.get(t.name)!.length ? f() : '-');
  const thrCell = (t: Target, f: () => string): string => (thr.get(t.name)!.length ? f() : '-');
  const rows = targets.map((t) => [
    t.label,
    thrCell(t, () => f0(med(t.name, (r) => r.rps))),
    thrCell(t, () => f3(med(t.name, (r) => r.p50))),
    thrCell(t, () => f3(med(t.name, (r) => r.p99))),
    t.name === 'direct' ? '-' : thrCell(t, () => f0(med(t.name, (r) => r.cpuUsPerReq))),
    pacedCell(t, () => f0(pmed(t.name, (r) => r.achievedRate))),
    pacedCell(t, () => f3(pmed(t.name, (r) => r.service.p50))),
    pacedCell(t, () => f3(pmed(t.name, (r) => r.service.p99))),
    t.name === 'direct' ? '-' : pacedCell(t, () => f3(pmed(t.name, (r) => r.service.p99) - directP99)),
    t.name === 'direct' ? '-' : pacedCell(t, () => f3(pmed(t.name, (r) => r.fromDue.p99) - directDueP99)),
  ]);
  process.stdout.write(
    `\nmedians over ${o.rounds} rounds\n` +
      table(
        ['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU us/req', `@rate req/s`, 'p50 ms', 'p99 ms', '+p99 ms', '+p99 from due'],
        rows,
      ) +
      '\n',
  );
  const ratios: string[] = [];
  if (thr.has('meshgate')) {
    if (!o.pacedOnly) {
      const mg = med('meshgate', (r) => r.rps);
      if (thr.has('fastify')) {
        // The medians of each target's rounds, and the ratio round by round: @fastify/http-proxy's
        // own cost swings between rounds (90-200 us per request in one run), so both are shown.
        const perRound = roundRatios('meshgate', 'fastify', (r) => r.rps);
        ratios.push(`meshgate / @fastify/http-proxy throughput: ${f2(mg / med('fastify', (r) => r.rps))}x (target >= 2x); median of per-round ratios ${f2(median(perRound))}x (per round ${perRound.map(f2).join(', ')})`);
        ratios.push(`  CPU per request, @fastify/http-proxy / meshgate: ${f2(med('fastify', (r) => r.cpuUsPerReq) / med('meshgate', (r) => r.cpuUsPerReq))}x`);
      }
      if (thr.has('nginx')) ratios.push(`meshgate / nginx throughput: ${f2(mg / med('nginx', (r) => r.rps))}x`);
      report({ bench: 'proxy', metric: 'meshgate req/s (vs direct)', value: mg, baseline: med('direct', (r) => r.rps), unit: 'req/s' });
      report({ bench: 'proxy', metric: 'meshgate CPU us/req', value: med('meshgate', (r) => r.cpuUsPerReq), unit: 'us' });
      for (const other of ['fastify', 'nginx', 'meshgate-base']) {
        if (!thr.has(other)) continue;
        report({ bench: 'proxy', metric: `meshgate req/s (vs ${other})`, value: mg, baseline: med(other, (r) => r.rps), unit: 'req/s', note: `median of per-round ratios ${f2(median(roundRatios('meshgate', other, (r) => r.rps)))}` });
      }
    }
    const added = pmed('meshgate', (r) => r.service.p99) - directP99;
    ratios.push(`p99 meshgate adds over direct at ${o.rate} req/s: ${f3(added)} ms (target <= 1 ms)`);
    report({ bench: 'proxy', metric: `p99 ms at ${o.rate} req/s (vs direct)`, value: pmed('meshgate', (r) => r.service.p99), baseline: directP99, unit: 'ms', note: `added ${f3(added)} ms` });
    const perRound = pac.get('meshgate')!.map((r, i) => f3(r.service.p99 - pac.get('direct')![i]!.service.p99));
    ratios.push(`  per round: ${perRound.join(', ')} ms`);
  }
  if (!o.pacedOnly && thr.has('meshgate-nolog') && thr.has('nginx')) {
    // Per core: CPU time per request, access log off on both sides (decisions: like with like).
    const mine = med('meshgate-nolog', (r) => r.cpuUsPerReq);
    const theirs = med('nginx', (r) => r.cpuUsPerReq);
    const perRound = roundRatios('meshgate-nolog', 'nginx', (r) => r.cpuUsPerReq).map(f2);
    ratios.push(`CPU per request, meshgate (access log off) / nginx (access log off): ${f2(mine / theirs)}x (goal <= 3x; per round ${perRound.join(', ')})`);
    report({ bench: 'proxy', metric: 'CPU us/req, meshgate access log off (vs nginx, access log off)', value: mine, baseline: theirs, unit: 'us' });
  }
  if (!o.pacedOnly && thr.has('meshgate-10k') && thr.has('meshgate-nolog')) {
    const perRound = roundRatios('meshgate-10k', 'meshgate-nolog', (r) => r.rps).map(f2);
    const ratio = med('meshgate-10k', (r) => r.rps) / med('meshgate-nolog', (r) => r.rps);
    ratios.push(`throughput with 10,000 more routes / with one: ${f2(ratio)}x (goal >= 0.9x; per round ${perRound.join(', ')})`);
    report({ bench: 'proxy', metric: 'meshgate req/s, 10,000 routes (vs 1 route)', value: med('meshgate-10k', (r) => r.rps), baseline: med('meshgate-nolog', (r) => r.rps), unit: 'req/s' });
  }
  process.stdout.write(`\n${ratios.join('\n')}\n`);
  const errs = [...thr.values()].flat().reduce((s, r) => s + r.errors, 0) + [...pac.values()].flat().reduce((s, r) => s + r.errors, 0);
  if (errs) process.stdout.write(`WARNING: ${errs} failed requests during the run\n`);

  for (const t of targets) if (t.child) await stop(t.child);
  await Promise.all(ups.map((c) => stop(c)));
  if (o.profileDir) process.stdout.write(`CPU profiles in ${o.profileDir}/<target>/\n`);
}

main().catch((e) => {
  keepTmp = true; // the servers' logs stay for a look
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exit(1);
});
