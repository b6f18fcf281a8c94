// Processes for benchmarks: start them (optionally pinned to a CPU with
// taskset), wait for their port, run one to completion, read their CPU time
// and memory from /proc, and kill them all when the bench exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(fileURLToPath(new URL('../../..', import.meta.url)));

const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function pinned(cmd: string, args: readonly string[], cpu: number | undefined): [string, string[]] {
  return cpu !== undefined ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, [...args]];
}

/**
 * V8 flags every Node target runs with: the young-generation size meshgate's
 * launchers use (npm start, the Dockerfile, the systemd unit), given to the
 * Node peers too so comparisons are between the programs, not flags.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64', '--min-semi-space-size=16'];

/** BENCH_GATEWAY_NODE_ARGS: more node flags for every meshgate a bench starts (e.g. --trace-gc, --import a timer). */
export const GATEWAY_NODE_ARGS: readonly string[] = (process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** The JSON a child printed as its last line (the benches' child tools report that way). */
export function lastJsonLine<T>(out: string): T {
  return JSON.parse(out.trim().split('\n').pop()!) as T;
}

/** Waits until something listens on 127.0.0.1:port; with `child`, fails at once if it exits first. */
export async function waitForPort(port: number, name: string, timeoutMs = 60_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child !== undefined && child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not listen on ${port}`);
}

/** Starts a long-running process (killed when the bench exits); its stderr tail is printed if it dies. taskset execs, so the pid is the command's. */
export function startProcess(name: string, cmd: string, args: readonly string[], cpu: number | undefined, env?: Record<string, string>): ChildProcess {
  const [c, a] = pinned(cmd, args, cpu);
  // BENCH_STDOUT_DIR: each process's stdout goes to <dir>/<name>-<n>.out (e.g. a gateway's --trace-gc lines).
  const outDir = process.env.BENCH_STDOUT_DIR;
  const stdout = outDir ? openSync(join(outDir, `${name}-${children.length}.out`), 'w') : 'ignore';
  const child = spawn(c, a, { cwd: ROOT, stdio: ['ignore', stdout, 'pipe'], env: env ? { ...process.env, ...env } : process.env });
  if (typeof stdout === 'number') closeSync(stdout);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d).slice(-4000)));
  child.on('exit', (code, sig) => {
    if (code !== 0 && sig !== 'SIGKILL' && sig !== 'SIGTERM') process.stderr.write(`${name} exited ${code ?? sig}: ${err}\n`);
  });
  children.push(child);
  return child;
}

/** Stops a process: SIGTERM, then SIGKILL if it has not exited within `timeoutMs`; resolves once it exited. */
export async function stopProcess(child: ChildProcess, timeoutMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

/** Runs a command to completion; resolves with its stdout, rejects with its output on a non-zero exit. */
export function runProcess(cmd: string, args: readonly string[], cpu: number | undefined, env?: Record<string, string>): Promise<string> {
  const [c, a] = pinned(cmd, args, cpu);
  return new Promise((res, rej) => {
    const child = spawn(c, a, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (err += d));
    child.on('exit', (code) => (code === 0 ? res(out) : rej(new Error(`${cmd} exited ${code}: ${err || out}`))));
  });
}

function stat(pid: number): string[] | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return f.slice(f.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** utime + stime of a process (all its threads), in seconds; with `tree`, its descendants too (a --workers primary and its workers). */
/** The machine's CPU time so far, all cores (seconds): busy (user, nice, system, irq, softirq, steal) and total. */
export function machineCpu(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / 100, total: (busy + idle + iowait) / 100 };
}

export function cpuSeconds(pid: number, tree = false): number {
  if (!tree) {
    const st = stat(pid);
    return st ? (Number(st[11]) + Number(st[12])) / 100 : 0;
  }
  const kids = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = stat(Number(d));
    if (!st) continue;
    const ppid = Number(st[1]);
    kids.set(ppid, [...(kids.get(ppid) ?? []), Number(d)]);
  }
  let total = 0;
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop()!;
    const st = stat(p);
    if (st) total += (Number(st[11]) + Number(st[12])) / 100;
    todo.push(...(kids.get(p) ?? []));
  }
  return total;
}

/** Asks every process started here to stop (SIGTERM), at the end of a bench. */
export function stopAll(): void {
  for (const c of children) c.kill('SIGTERM');
}

/** Resident memory of a process, MB. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A node:http upstream answering "hello world" (run with `node -e HELLO_UPSTREAM_JS <port>`). */
export const HELLO_UPSTREAM_JS = `
const http = require('node:http');
const body = Buffer.from('hello world\\n');
const srv = http.createServer((req, res) => { req.resume(); res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }); res.end(body); });
srv.keepAliveTimeout = 120000;
srv.listen(Number(process.argv[1]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
`;
