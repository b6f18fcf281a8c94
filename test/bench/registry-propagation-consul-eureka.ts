// Registry propagation benchmark for Consul and Eureka (against the doubles):
// time from a change in the registry to (a) the EndpointTable holding it and
// (b) the gateway routing a request to the changed instance.
//
//   npx tsx test/bench/registry-propagation-consul-eureka.ts [changes=100]
//
// Baselines measured in the same run:
//  - Consul: a bare blocking query (node:http, index+wait) on the same double:
//    how fast the registry itself tells anyone; the watcher should add little.
//  - Eureka: a bare poll loop (GET /apps/ every interval, undici): the best a
//    poller can do at that interval.
// Changes are spaced by a random pause so they land at random phases of the
// Eureka poll interval. Takes about ten minutes (the 5 s interval dominates).
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { request } from 'undici';
import { EndpointTable } from '../../src/discovery/endpoint-table.js';
import { ConsulRegistrySchema, EurekaRegistrySchema } from '../../src/config/schema.js';
import createConsul from '../../registries/consul/index.js';
import createEureka from '../../registries/eureka/index.js';
import { ConsulDouble } from '../doubles/consul/server.js';
import { EurekaDouble } from '../doubles/eureka/server.js';
import { Gateway } from '../../src/gateway.js';
import { latencyStats, type LatencyStats } from './lib/latency-stats.js';
import { report } from './lib/report.js';

const N = Number(process.argv[2] ?? 100);
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Stats = LatencyStats;
const stats = (samples: number[]): Stats => latencyStats(samples, 1);

/** Resolves when the table reports `service` with an endpoint on `port`. */
function tableHas(table: EndpointTable, service: string, port: number): Promise<number> {
  return new Promise((resolve) => {
    const check = (s: string, eps: readonly { port: number }[] | undefined) => {
      if (s === service && eps?.some((e) => e.port === port)) {
        table.off('endpoints', check);
        resolve(performance.now());
      }
    };
    table.on('endpoints', check);
  });
}

async function consulTable(): Promise<number[]> {
  const consul = new ConsulDouble();
  const address = await consul.start();
  consul.register({ ID: 'bench-1', Name: 'bench', Port: 20000, Address: '127.0.0.1' });
  const table = new EndpointTable(log);
  const w = createConsul(ConsulRegistrySchema.parse({ name: 'c', type: 'consul', servers: [address], waitSec: 30 }), table.sinkFor('c', 'consul', log));
  await w.start();
  while (!table.endpointsOf('bench.dc1.consul')) await sleep(5);
  const out: number[] = [];
  for (let i = 1; i <= N; i++) {
    await sleep(5 + Math.random() * 20);
    const port = 20000 + i;
    const seen = tableHas(table, 'bench.dc1.consul', port);
    const t0 = performance.now();
    consul.register({ ID: 'bench-1', Name: 'bench', Port: port, Address: '127.0.0.1' });
    out.push((await seen) - t0);
  }
  await w.stop();
  await consul.stop();
  return out;
}

/** Baseline: one bare blocking query per change, straight on node:http. */
async function consulRaw(): Promise<number[]> {
  const consul = new ConsulDouble();
  const address = await consul.start();
  consul.register({ ID: 'bench-1', Name: 'bench', Port: 20000, Address: '127.0.0.1' });
  const agent = new http.Agent({ keepAlive: true });
  const get = (index: number) =>
    new Promise<number>((resolve, reject) => {
      http
        .get(`http://${address}/v1/health/service/bench?passing=1&index=${index}&wait=30s`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(Number(res.headers['x-consul-index'])));
        })
        .on('error', reject);
    });
  let index = await get(0);
  const out: number[] = [];
  for (let i = 1; i <= N; i++) {
    const pending = get(index);
    await sleep(5 + Math.random() * 20);
    const t0 = performance.now();
    consul.register({ ID: 'bench-1', Name: 'bench', Port: 20000 + i, Address: '127.0.0.1' });
    index = await pending;
    out.push(performance.now() - t0);
  }
  agent.destroy();
  await consul.stop();
  return out;
}

async function eurekaTable(intervalMs: number): Promise<number[]> {
  const eureka = new EurekaDouble();
  await eureka.start();
  eureka.register({ app: 'bench', instanceId: 'b1', ipAddr: '127.0.0.1', port: 20000 });
  const table = new EndpointTable(log);
  const w = createEureka(EurekaRegistrySchema.parse({ name: 'e', type: 'eureka', servers: [eureka.url], fetchIntervalMs: intervalMs }), table.sinkFor('e', 'eureka', log));
  await w.start();
  const out: number[] = [];
  for (let i = 1; i <= N; i++) {
    await sleep(Math.random() * intervalMs);
    const port = 20000 + i;
    const seen = tableHas(table, 'bench.eureka', port);
    const t0 = performance.now();
    eureka.register({ app: 'bench', instanceId: 'b1', ipAddr: '127.0.0.1', port });
    out.push((await seen) - t0);
  }
  const d = w.describe!();
  await w.stop();
  await eureka.stop();
  console.error(`eureka ${intervalMs} ms: ${JSON.stringify({ full: d.fullFetches, delta: d.deltaFetches, mismatches: d.hashcodeMismatches })}`);
  return out;
}

/** Baseline: a bare poller, GET /apps/ every interval, noticing the new port. */
async function eurekaRaw(intervalMs: number): Promise<number[]> {
  const eureka = new EurekaDouble();
  await eureka.start();
  eureka.register({ app: 'bench', instanceId: 'b1', ipAddr: '127.0.0.1', port: 20000 });
  let seenPort = 20000;
  let waiter: ((t: number) => void) | undefined;
  let want = -1;
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const res = await request(`${eureka.url}/apps/`, { headers: { accept: 'application/json' } });
      const body = (await res.body.json()) as { applications: { application: { instance: { port: { $: number } }[] }[] } };
      seenPort = body.applications.application[0]!.instance[0]!.port.$;
      if (seenPort === want && waiter) {
        const w = waiter;
        waiter = undefined;
        w(performance.now());
      }
      await sleep(intervalMs);
    }
  };
  void loop();
  const out: number[] = [];
  for (let i = 1; i <= N; i++) {
    await sleep(Math.random() * intervalMs);
    want = 20000 + i;
    const seen = new Promise<number>((r) => (waiter = r));
    const t0 = performance.now();
    eureka.register({ app: 'bench', instanceId: 'b1', ipAddr: '127.0.0.1', port: want });
    out.push((await seen) - t0);
  }
  stopped = true;
  await sleep(intervalMs + 50);
  await eureka.stop();
  return out;
}

/** Change -> first request the gateway routes to the changed instance (the instance moves between two upstreams). */
async function gatewayRouting(eurekaIntervalMs: number): Promise<{ consul: number[]; eureka: number[] }> {
  const upstreams = await Promise.all(
    ['a', 'b'].map(
      (name) =>
        new Promise<{ server: http.Server; port: number; name: string }>((resolve) => {
          const server = http.createServer((_req, res) => {
            res.writeHead(200, { 'x-instance': name, 'content-length': 2 });
            res.end('ok');
          });
          server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as { port: number }).port, name }));
        }),
    ),
  );
  const consul = new ConsulDouble();
  await consul.start();
  const eureka = new EurekaDouble();
  await eureka.start();
  consul.register({ ID: 'r-1', Name: 'routed', Port: upstreams[0]!.port, Address: '127.0.0.1' });
  eureka.register({ app: 'routed', instanceId: 'r1', ipAddr: '127.0.0.1', port: upstreams[0]!.port });
  const gw = await Gateway.start({
    config: {
      listeners: [{ name: 'public', address: '127.0.0.1:0' }],
      admin: { address: '127.0.0.1:0' },
      log: { level: 'silent', access: false },
      registries: [
        { name: 'consul', type: 'consul', servers: [consul.address], waitSec: 30 },
        { name: 'eureka', type: 'eureka', servers: [eureka.url], fetchIntervalMs: eurekaIntervalMs },
      ],
      routes: [
        { name: 'c', match: { path: { prefix: '/c' } }, backends: [{ service: 'routed.dc1.consul' }] },
        { name: 'e', match: { path: { prefix: '/e' } }, backends: [{ service: 'routed.eureka' }] },
      ],
    } as never,
    log,
    accessLog: false,
    admin: false,
  });
  const base = gw.listenerUrl('public');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const hit = (path: string) =>
    new Promise<string>((resolve) => {
      http
        .get(`${base}${path}`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.headers['x-instance'] ?? res.statusCode)));
        })
        .on('error', () => resolve('error'));
    });
  const run = async (path: string, change: (port: number) => void, pauseMs: () => number) => {
    while ((await hit(path)) !== 'a') await sleep(10);
    const out: number[] = [];
    for (let i = 1; i <= N; i++) {
      await sleep(pauseMs());
      const target = upstreams[i % 2]!;
      const t0 = performance.now();
      change(target.port);
      // Poll with a 1 ms pause: a tight loop in this process would starve the watchers' own timers.
      while ((await hit(path)) !== target.name) await sleep(1);
      out.push(performance.now() - t0);
    }
    return out;
  };
  const c = await run('/c', (port) => consul.register({ ID: 'r-1', Name: 'routed', Port: port, Address: '127.0.0.1' }), () => 5 + Math.random() * 20);
  const e = await run('/e', (port) => eureka.register({ app: 'routed', instanceId: 'r1', ipAddr: '127.0.0.1', port }), () => Math.random() * eurekaIntervalMs);
  agent.destroy();
  await gw.stop();
  await consul.stop();
  await eureka.stop();
  for (const u of upstreams) await new Promise((r) => u.server.close(r));
  return { consul: c, eureka: e };
}

const rows: [string, Stats, string][] = [];
const add = (name: string, s: number[], target: string) => {
  rows.push([name, stats(s), target]);
  console.error(`${name}: ${JSON.stringify(stats(s))}`);
};

const raw = await consulRaw();
add('consul: bare blocking query (baseline)', raw, '');
const ct = await consulTable();
add('consul: change -> EndpointTable', ct, 'p99 <= 100 ms');
// The Eureka runs mostly sleep through their poll intervals: baseline and watcher run side by side
// (separate doubles) to keep the whole benchmark near ten minutes.
const [raw1, table1] = await Promise.all([eurekaRaw(1000), eurekaTable(1000)]);
add('eureka 1000 ms: bare poll loop (baseline)', raw1, '');
add('eureka 1000 ms: change -> EndpointTable', table1, 'p99 <= 1100 ms');
const [raw5, table5, routed] = await Promise.all([eurekaRaw(5000), eurekaTable(5000), gatewayRouting(1000)]);
add('eureka 5000 ms (default): bare poll loop (baseline)', raw5, '');
add('eureka 5000 ms (default): change -> EndpointTable', table5, 'p99 <= 5100 ms');
add('consul: change -> gateway routes to it', routed.consul, 'p99 <= 100 ms');
add('eureka 1000 ms: change -> gateway routes to it', routed.eureka, 'p99 <= 1100 ms');

console.log(`| measurement | n | p50 ms | p99 ms | max ms | mean ms | target |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const [name, s, target] of rows) console.log(`| ${name} | ${s.n} | ${s.p50} | ${s.p99} | ${s.max} | ${s.mean} | ${target} |`);
const cRatio = stats(ct).p50 / Math.max(0.1, stats(raw).p50);
console.log(`\nconsul watcher p50 / bare blocking query p50 = ${cRatio.toFixed(2)}`);
report({ bench: 'registry-propagation-consul-eureka', metric: 'consul change -> table p50 ms (vs bare blocking query)', value: stats(ct).p50, baseline: stats(raw).p50, unit: 'ms' });
report({ bench: 'registry-propagation-consul-eureka', metric: 'consul change -> routed p99 ms', value: stats(routed.consul).p99, unit: 'ms' });
report({ bench: 'registry-propagation-consul-eureka', metric: 'eureka 1 s change -> table p50 ms (vs bare poll loop)', value: stats(table1).p50, baseline: stats(raw1).p50, unit: 'ms' });
report({ bench: 'registry-propagation-consul-eureka', metric: 'eureka 1 s change -> routed p99 ms', value: stats(routed.eureka).p99, unit: 'ms' });
process.exit(0);
