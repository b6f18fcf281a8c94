// Faults under load, with the README's recommended policy for a service of
// several instances (retries incl. reset and timeout, per-instance breakers,
// outlier detection). Two scenarios, each at a fixed request rate through the
// `meshgate` bin (1 worker, access log off):
//
//   kill:  three instances; one is killed (SIGKILL) a third of the way in.
//   slow:  two instances; one starts answering after 2 s a third of the way in.
//
// Reported: requests sent, failed (anything but a 200, or no answer), the
// failed share (target < 0.1 %), and for `slow` the p99 of the requests the
// healthy instance answered before and after the fault. Results go in
// RELIABILITY.md.
//
//   npx tsx test/bench/faults.ts [--rate 500] [--seconds 30] [--only kill|slow] [--policy recommended|service-breaker]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { freePort } from '../helpers/upstream.js';
import { opt, optString } from './lib/args.js';
import { NODE_FLAGS } from './lib/procs.js';
import { report } from './lib/report.js';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const RATE = opt('rate', 500);
const SECONDS = opt('seconds', 30);
const ONLY = optString('only', '');
const POLICY = optString('policy', 'recommended');

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

/** An upstream in its own process (so it can be killed for real); `slow` after SIGUSR2. */
async function upstream(): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const src = `
    const http = require('node:http');
    let slow = false;
    process.on('SIGUSR2', () => { slow = true; });
    http.createServer((req, res) => {
      req.resume();
      const answer = () => { res.writeHead(200, { 'content-type': 'text/plain', 'x-port': '${port}' }); res.end('ok ${port}'); };
      if (slow) setTimeout(answer, 2000); else answer();
    }).listen(${port}, '127.0.0.1', () => process.send && process.send('up'));`;
  const proc = spawn(process.execPath, ['-e', src], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  children.push(proc);
  await new Promise<void>((r) => proc.once('message', () => r()));
  return { port, proc };
}

function policy(): Record<string, unknown> {
  const retries = { attempts: 2, on: ['connect-failure', 'refused-stream', 'reset', 'timeout', 503], perTryTimeoutMs: 1000 };
  if (POLICY === 'service-breaker') {
    return { timeoutMs: 3000, retries, circuitBreakers: [{ strategy: 'slow_ratio', maxRtMs: 800, threshold: 0.5, minRequests: 10, statIntervalMs: 10000, openMs: 30000 }] };
  }
  return {
    timeoutMs: 3000,
    retries,
    outlierDetection: { consecutiveGatewayFailure: 5, baseEjectionMs: 30000, maxEjectionPercent: 50 },
    circuitBreakers: [
      { strategy: 'slow_ratio', maxRtMs: 800, threshold: 0.5, minRequests: 10, statIntervalMs: 10000, openMs: 30000, scope: 'instance' },
      { strategy: 'error_ratio', threshold: 0.2, minRequests: 20, statIntervalMs: 10000, openMs: 30000, scope: 'instance' },
    ],
  };
}

async function gateway(ports: number[]): Promise<{ url: string; proc: ChildProcess; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-faults-'));
  const [port, admin] = [await freePort(), await freePort()];
  const cfg = {
    listeners: [{ name: 'public', address: `127.0.0.1:${port}` }],
    admin: { address: `127.0.0.1:${admin}` },
    log: { level: 'warn', access: false },
    registries: [{ name: 'app', type: 'static', endpoints: ports.map((p) => `127.0.0.1:${p}`) }],
    services: { 'app.static': policy() },
    routes: [{ name: 'app', match: { path: { prefix: '/' } }, backends: [{ service: 'app.static' }] }],
  };
  const file = join(dir, 'meshgate.json.yaml');
  writeFileSync(file, JSON.stringify(cfg));
  const proc = spawn(process.execPath, [...NODE_FLAGS, 'dist/src/cli.js', 'start', '--config', file, '--workers', '1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(proc);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    const ok = await fetch(`${url}/`).then((r) => r.ok, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, proc, dir };
}

interface Sample {
  t: number;
  ms: number;
  ok: boolean;
  port: string;
}

/** Sends RATE requests a second for SECONDS; calls `fault` once, at a third of the run. */
async function load(url: string, fault: () => void): Promise<Sample[]> {
  const pool = new Pool(url, { connections: 64, pipelining: 1 });
  const samples: Sample[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  const total = RATE * SECONDS;
  let faulted = false;
  for (let i = 0; i < total; i++) {
    const due = (i / RATE) * 1000;
    const wait = due - (performance.now() - t0);
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (!faulted && due >= (SECONDS * 1000) / 3) {
      faulted = true;
      fault();
    }
    const start = performance.now();
    pending.push(
      pool.request({ path: `/r${i}`, method: 'GET' }).then(
        async (res) => {
          await res.body.text();
          samples.push({ t: start - t0, ms: performance.now() - start, ok: res.statusCode === 200, port: String(res.headers['x-port'] ?? '') });
        },
        () => {
          samples.push({ t: start - t0, ms: performance.now() - start, ok: false, port: '' });
        },
      ),
    );
  }
  await Promise.all(pending);
  await pool.close();
  return samples;
}

function p99(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

async function scenario(name: 'kill' | 'slow'): Promise<void> {
  const ups = await Promise.all(Array.from({ length: name === 'kill' ? 3 : 2 }, () => upstream()));
  const gw = await gateway(ups.map((u) => u.port));
  const victim = ups[0]!;
  const faultAt = (SECONDS * 1000) / 3;
  const samples = await load(gw.url, () => (name === 'kill' ? victim.proc.kill('SIGKILL') : victim.proc.kill('SIGUSR2')));
  const failed = samples.filter((s) => !s.ok).length;
  const healthy = samples.filter((s) => s.ok && s.port !== String(victim.port));
  const before = healthy.filter((s) => s.t < faultAt).map((s) => s.ms);
  const after = healthy.filter((s) => s.t >= faultAt).map((s) => s.ms);
  console.log(
    `${name} (${POLICY}): ${samples.length} requests at ${RATE}/s for ${SECONDS} s, failed ${failed} (${((100 * failed) / samples.length).toFixed(3)} %); ` +
      `answered by healthy instances: p99 ${p99(before).toFixed(1)} ms before the fault, ${p99(after).toFixed(1)} ms after (${after.length} requests)`,
  );
  report({ bench: 'faults', metric: `${name}: requests failed (of sent)`, value: failed, baseline: samples.length, unit: 'requests' });
  report({ bench: 'faults', metric: `${name}: p99 ms of healthy instances after the fault (vs before)`, value: p99(after), baseline: p99(before), unit: 'ms' });
  gw.proc.kill('SIGTERM');
  for (const u of ups) u.proc.kill('SIGKILL');
  rmSync(gw.dir, { recursive: true, force: true });
}

if (ONLY !== 'slow') await scenario('kill');
if (ONLY !== 'kill') await scenario('slow');
process.exit(0);
