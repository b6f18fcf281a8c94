// gRPC unary calls through meshgate vs straight to the server.
//
//   npx tsx test/bench/grpc.ts            (BENCH_SECONDS=8, BENCH_CONCURRENCY=32 by default)
//
// Three processes: the gRPC server (the test Echo service, @grpc/grpc-js),
// the load generator (@grpc/grpc-js clients: 4 channels, calls in a closed
// loop with BENCH_CONCURRENCY calls in flight) and this process running the
// gateway (h2c listener, grpc upstream). Cases:
//   - direct:   load generator -> gRPC server
//   - meshgate: load generator -> meshgate -> gRPC server
// Two rounds (the second in reverse order); ratios are against the direct
// numbers of the same round.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

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
  console.log(`node ${process.version}, ${seconds}s per case, ${concurrency} calls in flight over 4 channels`);
  const rows: string[] = [];
  for (let round = 1; round <= 2; round++) {
    const order: Array<[string, string]> = [
      ['direct', direct],
      ['meshgate', viaGateway],
    ];
    if (round === 2) order.reverse();
    const results = new Map<string, Result>();
    for (const [name, target] of order) results.set(name, await run(target));
    const d = results.get('direct')!;
    for (const [name] of order.sort()) {
      const r = results.get(name)!;
      const row = `| ${round} | ${name} | ${Math.round(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${name === 'direct' ? '1.00' : (r.rps / d.rps).toFixed(2)} |`;
      rows.push(row);
    }
  }
  console.log('| round | case | calls/s | p50 ms | p99 ms | errors | calls/s vs direct |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  await gw.stop();
  server.proc.kill();
}
