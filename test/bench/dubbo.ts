// HTTP-to-Dubbo throughput and latency through the gateway.
//
//   npx tsx test/bench/dubbo.ts           (BENCH_SECONDS=8 by default)
//
// The provider double (test/doubles/dubbo) runs in its own process, and so do
// autocannon and an HTTP upstream that answers the same JSON for the
// baseline. Cases, each autocannon -c 32 for BENCH_SECONDS:
//   - baseline: the gateway proxying plain HTTP to the HTTP upstream
//   - GET /orders/{id}: Long path parameter + header attachment -> POJO result
//   - GET /orders/by-item?item=: String query parameter -> String result
//   - POST /orders: entire JSON body as a POJO -> POJO result
// Two rounds (the second in reverse order); ratios are against the baseline
// measured in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { report } from './lib/report.js';

const SELF = fileURLToPath(import.meta.url);

if (process.argv.includes('--provider')) {
  // Child role: the provider double, no call recording.
  const { DubboProviderDouble } = await import('../doubles/dubbo/provider.js');
  const { orderService } = await import('../doubles/dubbo/order-service.js');
  const p = await DubboProviderDouble.start({ services: [orderService()], record: false });
  process.stdout.write(`${p.port}\n`);
} else if (process.argv.includes('--http')) {
  // Child role: the HTTP upstream of the baseline, answering an Order as JSON.
  const http = await import('node:http');
  const body = Buffer.from(JSON.stringify({ class: 'com.example.Order', id: 42, item: 'item-42', quantity: 2, tenant: 'acme' }));
  const s = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  s.keepAliveTimeout = 60_000;
  s.listen(0, '127.0.0.1', () => process.stdout.write(`${(s.address() as { port: number }).port}\n`));
} else {
  await main();
}

async function child(role: string): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, role], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(proc.stdout!, 'data')) as [Buffer];
  return { proc, port: Number(line.toString().trim()) };
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function autocannon(url: string, seconds: number, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Result> {
  const bin = fileURLToPath(new URL('../../node_modules/autocannon/autocannon.js', import.meta.url));
  const args = [bin, '-j', '-c', '32', '-d', String(seconds)];
  if (opts.method) args.push('-m', opts.method);
  if (opts.body) {
    const f = join(tmpdir(), `meshgate-dubbo-bench-${process.pid}.json`);
    writeFileSync(f, opts.body);
    args.push('-i', f);
  }
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}=${v}`);
  args.push(url);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await once(proc, 'exit');
  const r = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number };
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx, errors: r.errors };
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 8);
  const { Gateway } = await import('../../src/gateway.js');
  const { dubboRoute } = await import('../integration/dubbo/routes.js');
  const pino = (await import('pino')).default;
  const provider = await child('--provider');
  const upstream = await child('--http');
  const gw = await Gateway.start({
    config: {
      listeners: [{ name: 'public', address: '127.0.0.1:0' }],
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', access: false },
      registries: [
        { name: 'orders', type: 'static', endpoints: [`127.0.0.1:${provider.port}`] },
        { name: 'http', type: 'static', endpoints: [`127.0.0.1:${upstream.port}`] },
      ],
      routes: [{ name: 'baseline', match: { path: { prefix: '/http' } }, backends: [{ service: 'http.static' }] }, dubboRoute('orders', '/orders', 'orders.static')],
    } as never,
    log: pino({ level: 'silent' }),
    accessLog: false,
  });
  const url = gw.listenerUrl('public');
  const json = { 'content-type': 'application/json' };
  const cases: Array<[string, string, Parameters<typeof autocannon>[2]]> = [
    ['baseline: HTTP proxy, same JSON', '/http/orders/42', { headers: { 'x-tenant': 'acme' } }],
    ['GET /orders/{id} (Long -> POJO)', '/orders/42', { headers: { 'x-tenant': 'acme' } }],
    ['GET /orders/by-item?item= (String -> String)', '/orders/by-item?item=book', {}],
    ['POST /orders (POJO body -> POJO)', '/orders', { method: 'POST', body: JSON.stringify({ item: 'pen', quantity: 3, price: 9.5 }), headers: json }],
  ];
  const rows: Array<Result & { name: string; ratio: number; spread: string }> = [];
  try {
    // Warm up both paths (connections, JIT).
    await autocannon(`${url}/http/orders/42`, 2);
    await autocannon(`${url}/orders/42`, 2);
    // Two rounds, the second in reverse order, so drift on a shared machine
    // weighs on every case alike; each row is the mean of its two runs.
    const runs = new Map<string, Result[]>();
    for (const order of [cases, [...cases].reverse()]) {
      for (const [name, path, opts] of order) {
        const r = await autocannon(`${url}${path}`, seconds, opts);
        runs.set(name, [...(runs.get(name) ?? []), r]);
      }
    }
    const mean = (xs: Result[], k: keyof Result) => xs.reduce((a, x) => a + x[k], 0) / xs.length;
    const sum = (xs: Result[], k: keyof Result) => xs.reduce((a, x) => a + x[k], 0);
    const base = mean(runs.get(cases[0]![0])!, 'rps');
    for (const [name] of cases) {
      const xs = runs.get(name)!;
      const rps = mean(xs, 'rps');
      rows.push({ name, rps, p50: mean(xs, 'p50'), p99: mean(xs, 'p99'), non2xx: sum(xs, 'non2xx'), errors: sum(xs, 'errors'), ratio: rps / base, spread: xs.map((x) => x.rps.toFixed(0)).join(' / ') });
    }
  } finally {
    await gw.stop();
    provider.proc.kill();
    upstream.proc.kill();
  }
  console.log(`\n# HTTP-to-Dubbo through the gateway (node ${process.version}, ${new Date().toISOString()}, autocannon -c 32 -d ${seconds}, 2 rounds)\n`);
  console.log('| case | calls/s (mean) | runs | p50 ms | p99 ms | non-2xx | errors | ratio to baseline |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.spread} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.non2xx} | ${r.errors} | ${r.ratio.toFixed(2)} |`);
    if (r !== rows[0]) report({ bench: 'dubbo', metric: `${r.name} calls/s (vs ${rows[0]!.name})`, value: r.rps, baseline: rows[0]!.rps, ratio: r.ratio, unit: 'calls/s' });
  }
  process.exit(0);
}
