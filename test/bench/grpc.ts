// gRPC unary calls through meshgate vs straight to the server.
//
//   npx tsx test/bench/grpc.ts   (BENCH_ROUNDS=4, BENCH_SECONDS=8, BENCH_CONCURRENCY=32 by default)
//
// Three processes: the gRPC server (the test Echo service, @grpc/grpc-js),
// the load generator (@grpc/grpc-js clients: 4 channels, calls in a closed
// loop with BENCH_CONCURRENCY calls in flight) and this process running the
// gateway (h2c listener, grpc upstream). Cases:
//   - direct:   load generator -> gRPC server
//   - bare node:http2 proxy: load generator -> 40 lines of node:http2 piping -> gRPC server
//     (what any Node proxy pays for HTTP/2 itself; runs in this process too)
//   - meshgate: load generator -> meshgate -> gRPC server
// BENCH_ROUNDS rounds, rotating which case goes first; ratios are against
// the direct numbers of the same round, and the summary gives medians. The
// proxies' CPU time per call is measured too (it is less sensitive to other
// load on the machine than calls/s).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { startBareH2Proxy } from './lib/h2-bare-proxy.js';
import { report } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);

if (process.argv.includes('--server')) {
  const { startEchoServer } = await import('../integration/grpc/helpers.js');
  const s = await startEchoServer('bench');
  process.stdout.write(`${s.port}\n`);
} else if (process.argv.includes('--load')) {
  await load(process.argv[process.argv.indexOf('--load') + 1]!);
} else {
  await main();
}

interface Result {
  calls: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Child role: closed-loop unary calls against target for BENCH_SECONDS; prints a Result as JSON. */
async function load(target: string): Promise<void> {
  const { echoClient } = await import('../integration/grpc/helpers.js');
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
  const clients = Array.from({ length: 4 }, () => echoClient(target));
  const req = { msg: 'x'.repeat(64) };
  // Warm-up: connections, JIT.
  const warmEnd = Date.now() + 1_000;
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let end = 0;
  const worker = (k: number): Promise<void> =>
    new Promise<void>((resolve) => {
      const client = clients[k % clients.length]!;
      const one = (): void => {
        const now = Date.now();
        if ((measuring && now >= end) || (!measuring && now >= warmEnd)) return resolve();
        const t0 = process.hrtime.bigint();
        client.unary(req, (err: Error | null) => {
          if (measuring) {
            if (err) errors++;
            else latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
          }
          one();
        });
      };
      one();
    });
  await Promise.all(Array.from({ length: concurrency }, (_, k) => worker(k)));
  measuring = true;
  const start = Date.now();
  end = start + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, (_, k) => worker(k)));
  const elapsed = (Date.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number): number => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const r: Result = { calls: latencies.length, rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors };
  process.stdout.write(`${JSON.stringify(r)}\n`);
  for (const c of clients) c.close();
  process.exit(0);
}

async function child(args: string[]): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, grpc_proxy: '', http_proxy: '', https_proxy: '' } });
  const rl = createInterface({ input: proc.stdout! });
  const [line] = (await once(rl, 'line')) as [string];
  return { proc, line };
}

async function run(target: string): Promise<Result> {
  const { proc, line } = await child(['--load', target]);
  await once(proc, 'exit');
  return JSON.parse(line) as Result;
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 32);
  const { Gateway } = await import('../../src/gateway.js');
  const pino = (await import('pino')).default;
  const server = await child(['--server']);
  const port = Number(server.line);
  const gw = await Gateway.start({
    config: {
      listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
      admin: { address: '127.0.0.1:0' },
      registries: [{ name: 'echo', type: 'static', endpoints: [`127.0.0.1:${port}`] }],
      services: { 'echo.static': { protocol: 'grpc' } },
      routes: [{ name: 'echo', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'echo.static' }] }],
      log: { level: 'error', access: false },
    },
    log: pino({ level: 'error' }),
    accessLog: false,
  });
  const viaGateway = new URL(gw.listenerUrl('public')).host;
  const direct = `127.0.0.1:${port}`;
  const bare = await startBareH2Proxy(port);
  const targets = { direct, 'bare node:http2 proxy': `127.0.0.1:${bare.port}`, meshgate: viaGateway };
  type Case = keyof typeof targets;
  const cases = Object.keys(targets) as Case[];
  const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
  console.log(`node ${process.version}, ${rounds} rounds x ${seconds}s per case, ${concurrency} calls in flight over 4 channels, load average ${loadavg()[0]!.toFixed(1)}`);
  console.log('| round | case | calls/s | p50 ms | p99 ms | errors | CPU us/call in the proxy | calls/s vs direct |');
  console.log('|---|---|---|---|---|---|---|---|');
  const all = new Map<Case, Array<Result & { cpu: number; ratio: number }>>(cases.map((c) => [c, []]));
  for (let round = 1; round <= rounds; round++) {
    // Rotate the order so that load changes on the machine hit every case alike.
    const order = cases.map((_, k) => cases[(k + round - 1) % cases.length]!);
    const results = new Map<Case, Result & { cpu: number }>();
    for (const name of order) {
      const before = process.cpuUsage();
      const r = await run(targets[name]);
      // This process's CPU per measured call (warm-up calls add to the CPU, not the count: an upper bound).
      const used = process.cpuUsage(before);
      results.set(name, { ...r, cpu: name === 'direct' ? NaN : (used.user + used.system) / r.calls });
    }
    const d = results.get('direct')!;
    for (const name of cases) {
      const r = results.get(name)!;
      const ratio = r.rps / d.rps;
      all.get(name)!.push({ ...r, ratio });
      console.log(`| ${round} | ${name} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${Number.isNaN(r.cpu) ? '' : r.cpu.toFixed(0)} | ${ratio.toFixed(2)} |`);
    }
  }
  const med = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  console.log('');
  console.log('| case | median calls/s | median p50 ms | median p99 ms | errors | median CPU us/call in the proxy | median ratio to direct (per round) |');
  console.log('|---|---|---|---|---|---|---|');
  for (const name of cases) {
    const rs = all.get(name)!;
    const cpu = med(rs.map((r) => r.cpu));
    console.log(
      `| ${name} | ${Math.round(med(rs.map((r) => r.rps)))} | ${med(rs.map((r) => r.p50)).toFixed(2)} | ${med(rs.map((r) => r.p99)).toFixed(2)} | ${rs.reduce((a, r) => a + r.errors, 0)} | ${Number.isNaN(cpu) ? '' : cpu.toFixed(0)} | ${med(rs.map((r) => r.ratio)).toFixed(2)} |`,
    );
  }
  for (const name of cases) {
    const rs = all.get(name)!;
    if (rs.some((r) => r.ratio !== 1)) report({ bench: 'grpc', metric: `${name} calls/s (vs direct)`, value: med(rs.map((r) => r.rps)), ratio: med(rs.map((r) => r.ratio)), unit: 'calls/s', note: 'ratio: median of per-round ratios' });
  }
  console.log(`load average at the end: ${loadavg()[0]!.toFixed(1)}`);
  await gw.stop();
  bare.close();
  server.proc.kill();
}
