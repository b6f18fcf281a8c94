// Load balancing and canary cost.
//
//   npx tsx test/bench/lb.ts            micro-benchmarks, then through the gateway
//   npx tsx test/bench/lb.ts --micro    micro-benchmarks only
//
// Micro: ns per pick() of each balancer over 10 instances, and ns per routing
// decision (new Exchange, route match, canary/grey, backend and instance pick)
// for a plain round-robin route, a route with a 3-rule canary (header,
// cookie, weight; the request falls through all three, the most work), and a
// grey route. Gateway: requests/s and latency with autocannon (separate
// process) against one local upstream (separate process), 4 instances
// registered on the same upstream port range. Every ratio is against the plain
// round-robin case measured in the same run.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Cluster } from '../../src/balancing/cluster.js';
import { createLoadBalancer } from '../../src/balancing/index.js';
import { Instance } from '../../src/balancing/instance.js';
import { DEFAULT_SERVICE, RouteSchema, type LoadBalancerConfig } from '../../src/config/schema.js';
import { compileRoute, Router } from '../../src/routing/router.js';
import { chooseBackend, pickInstance } from '../../src/routing/select.js';
import { Exchange, type DownstreamRequest, type DownstreamResponse } from '../../src/exchange/exchange.js';
import { report } from './lib/report.js';

const LBS: Array<[string, LoadBalancerConfig]> = [
  ['round_robin', { type: 'round_robin' }],
  ['random', { type: 'random' }],
  ['least_request', { type: 'least_request', choices: 2 }],
  ['consistent_hash ring', { type: 'consistent_hash', algorithm: 'ring', key: { header: 'x-user' }, ringSize: 1024 }],
  ['consistent_hash maglev', { type: 'consistent_hash', algorithm: 'maglev', key: { header: 'x-user' }, ringSize: 1024 }],
  ['sticky (cookie set)', { type: 'sticky', cookie: 'mg', fallback: 'round_robin' }],
];

function timeIt(fn: (i: number) => void, n: number): number {
  for (let i = 0; i < Math.min(n, 200_000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  return Number(process.hrtime.bigint() - t0) / n;
}

/**
 * Median ns/op per case over `rounds` rounds; each round times every case
 * once, so load from other processes hits all cases alike.
 */
function measureAll(cases: Array<(i: number) => void>, n: number, rounds = 7): number[] {
  const samples = cases.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) cases.forEach((fn, k) => samples[k]!.push(timeIt(fn, n)));
  return samples.map((xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
}

function fakeReq(headers: Record<string, string>, url = '/api/users/42'): DownstreamRequest {
  return { url, method: 'GET', headers, rawHeaders: Object.entries(headers).flat() } as unknown as DownstreamRequest;
}

function micro(): Array<{ name: string; ns: number; ratio: number }> {
  const instances = Array.from({ length: 10 }, (_, i) => new Instance({ host: `10.0.0.${i + 1}`, port: 8080, weight: 1 + (i % 3), healthy: true, metadata: {} }));
  const keys = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
  const rows: Array<{ name: string; ns: number; ratio: number }> = [];
  const lbFns: Array<(i: number) => void> = [];
  for (const [, cfg] of LBS) {
    const lb = createLoadBalancer(instances, cfg);
    // Contexts are built up front: only pick() is timed.
    const sticky = createLoadBalancer(instances, cfg);
    const cookieOf = new Map<number, string>();
    const ctxs = keys.map((k, i) => {
      const c = {
        header: (h: string) => (h === 'x-user' ? k : undefined),
        query: () => undefined,
        cookie: (n: string) => (n === 'mg' ? cookieOf.get(i) : undefined),
        clientIp: '127.0.0.1',
        setResponseCookie: (s: string) => cookieOf.set(i, s.slice(s.indexOf('=') + 1, s.indexOf(';'))),
      };
      if (cfg.type === 'sticky') sticky.pick(c);
      return c;
    });
    lbFns.push((i) => lb.pick(ctxs[i & 1023]!));
  }
  const lbNs = measureAll(lbFns, 1_000_000);
  LBS.forEach(([name], k) => rows.push({ name: `pick: ${name}`, ns: lbNs[k]!, ratio: lbNs[k]! / lbNs[0]! }));

  const cluster = new Cluster('users', { ...DEFAULT_SERVICE });
  cluster.setEndpoints(instances.map((i, k) => ({ host: i.host, port: i.port, weight: 1, healthy: true, metadata: (k === 0 ? { 'x-mse-tag': 'gray' } : {}) as Record<string, string> })));
  const canaryCluster = new Cluster('users-v2', { ...DEFAULT_SERVICE });
  canaryCluster.setEndpoints(instances.slice(0, 2).map((i) => ({ host: i.host, port: 9090, weight: 1, healthy: true, metadata: {} })));
  const clusterOf = (s: string) => (s === 'users-v2' ? canaryCluster : cluster);
  const routes = {
    plain: RouteSchema.parse({ name: 'plain', match: { path: { prefix: '/api' } }, backends: [{ service: 'users' }] }),
    canary: RouteSchema.parse({
      name: 'canary',
      match: { path: { prefix: '/api' } },
      backends: [{ service: 'users' }],
      canary: { byHeader: 'x-canary', byHeaderValue: 'beta', byCookie: 'canary', weight: 0, backends: [{ service: 'users-v2' }] },
    }),
    grey: RouteSchema.parse({ name: 'grey', match: { path: { prefix: '/api' } }, backends: [{ service: 'users' }], grey: {} }),
  };
  // A request with a few ordinary headers and cookies that matches no canary rule.
  const headers = { host: 'api.example.com', 'user-agent': 'bench', accept: '*/*', 'x-canary': 'prod', cookie: 'sid=abc; theme=dark; canary=no' };
  const res = {} as DownstreamResponse;
  const routeFns: Array<(i: number) => void> = [];
  const names: string[] = [];
  for (const [name, rc] of Object.entries(routes)) {
    const router = new Router([compileRoute(rc, 0, clusterOf)]);
    const req = fakeReq(name === 'grey' ? { ...headers, 'x-mse-tag': 'gray' } : headers);
    const empty = new Set<Instance>();
    names.push(name === 'plain' ? 'plain round-robin route' : name === 'canary' ? '3-rule canary (falls through all)' : 'grey route (tagged request)');
    routeFns.push(() => {
      const ex = new Exchange(req, res, 'r', '127.0.0.1', 'api.example.com', 'http');
      const route = router.match(ex)!;
      const b = chooseBackend(ex, route.main, route.canary, route.grey)!;
      pickInstance(b, ex, empty);
    });
  }
  const routeNs = measureAll(routeFns, 500_000);
  names.forEach((name, k) => rows.push({ name: `route: ${name}`, ns: routeNs[k]!, ratio: routeNs[k]! / routeNs[0]! }));
  return rows;
}

// ---------- through the gateway ----------

const UPSTREAM_SRC = `
const http = require('node:http');
const body = Buffer.from('{"ok":true}');
const ports = [];
let n = Number(process.argv[1]);
(async () => {
  for (let i = 0; i < n; i++) {
    const s = http.createServer((req, res) => { req.resume(); res.writeHead(200, {'content-type':'application/json','content-length':body.length}); res.end(body); });
    s.keepAliveTimeout = 60000;
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    ports.push(s.address().port);
  }
  process.stdout.write(JSON.stringify(ports) + '\\n');
})();
`;

async function startUpstreams(n: number): Promise<{ child: ChildProcess; ports: number[] }> {
  const child = spawn(process.execPath, ['-e', UPSTREAM_SRC, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { child, ports: JSON.parse(line.toString()) as number[] };
}

async function autocannon(url: string, seconds: number, headers: Record<string, string>): Promise<{ rps: number; p50: number; p99: number; non2xx: number }> {
  const bin = fileURLToPath(new URL('../../node_modules/autocannon/autocannon.js', import.meta.url));
  const args = [bin, '-j', '-c', '32', '-d', String(seconds)];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await once(child, 'exit');
  const r = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number };
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx };
}

async function gatewayBench(seconds: number, rounds: number): Promise<Array<{ name: string; rps: number; p50: number; p99: number; ratio: number; non2xx: number; spread: number }>> {
  const { Gateway } = await import('../../src/gateway.js');
  const pino = (await import('pino')).default;
  const ups = await startUpstreams(4);
  const endpoints = ups.ports.map((p) => `127.0.0.1:${p}`);
  const cases: Array<[string, LoadBalancerConfig, Record<string, unknown>]> = [
    ...LBS.map(([name, lb]) => [name === 'sticky (cookie set)' ? 'sticky (no cookie sent: every answer sets one)' : name, lb, {}] as [string, LoadBalancerConfig, Record<string, unknown>]),
    [
      '3-rule canary (falls through all)',
      { type: 'round_robin' },
      { canary: { byHeader: 'x-canary', byHeaderValue: 'beta', byCookie: 'canary', weight: 0, backends: [{ service: 'users.static' }] } },
    ],
  ];
  const gw = await Gateway.start({
    config: {
      listeners: [{ name: 'public', address: '127.0.0.1:0' }],
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', access: false },
      registries: cases.map((_, i) => ({ name: `s${i}`, type: 'static', endpoints })),
      services: Object.fromEntries(cases.map(([, lb], i) => [`s${i}.static`, { loadBalancer: lb }])),
      routes: cases.map(([, , extra], i) => ({ name: `r${i}`, match: { path: { prefix: `/r${i}` } }, backends: [{ service: `s${i}.static` }], ...extra })),
    } as never,
    log: pino({ level: 'silent' }),
    accessLog: false,
  });
  const rows: Array<{ name: string; rps: number; p50: number; p99: number; ratio: number; non2xx: number; spread: number }> = [];
  try {
    const url = gw.listenerUrl('public');
    const headers = { 'x-user': 'user-42', 'x-canary': 'prod', cookie: 'sid=abc; canary=no' };
    await autocannon(`${url}/r0`, 3, headers); // warm up
    // Rounds of every case in turn; the median per case is reported, so load
    // from other processes on the machine hits all cases alike.
    const samples = cases.map(() => [] as Array<{ rps: number; p50: number; p99: number; non2xx: number }>);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < cases.length; i++) samples[i]!.push(await autocannon(`${url}/r${i}`, seconds, headers));
    }
    const med = samples.map((xs) => [...xs].sort((a, b) => a.rps - b.rps)[Math.floor(xs.length / 2)]!);
    const spread = samples.map((xs) => {
      const r = xs.map((x) => x.rps);
      return (Math.max(...r) - Math.min(...r)) / med[0]!.rps;
    });
    cases.forEach(([name], i) => rows.push({ name, ...med[i]!, ratio: med[i]!.rps / med[0]!.rps, spread: spread[i]! }));
  } finally {
    await gw.stop();
    ups.child.kill();
  }
  return rows;
}

const microRows = micro();
console.log(`\n# Micro-benchmarks (node ${process.version}, ${new Date().toISOString()})\n`);
console.log('| case | ns/op | ratio to round robin |');
console.log('| --- | ---: | ---: |');
for (const r of microRows) {
  console.log(`| ${r.name} | ${r.ns.toFixed(0)} | ${r.ratio.toFixed(2)} |`);
  if (r !== microRows[0]) report({ bench: 'lb', metric: `ns/op ${r.name} (vs ${microRows[0]!.name})`, value: r.ns, baseline: microRows[0]!.ns, unit: 'ns' });
}

if (!process.argv.includes('--micro')) {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const rows = await gatewayBench(seconds, rounds);
  console.log(`\n# Through the gateway (autocannon -c 32 -d ${seconds}, median of ${rounds} interleaved rounds, 4 upstream instances)\n`);
  console.log('| case | req/s | p50 ms | p99 ms | non-2xx | ratio to round robin | spread of rounds (of baseline) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50} | ${r.p99} | ${r.non2xx} | ${r.ratio.toFixed(3)} | ${(r.spread * 100).toFixed(0)}% |`);
    if (r !== rows[0]) report({ bench: 'lb', metric: `gateway req/s ${r.name} (vs ${rows[0]!.name})`, value: r.rps, baseline: rows[0]!.rps, unit: 'req/s' });
  }
}
process.exit(0);
