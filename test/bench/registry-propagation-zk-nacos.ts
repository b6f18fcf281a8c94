// Registry propagation and scale benchmark for ZooKeeper (real server) and
// Nacos (the double, UDP push).
//
//   node --expose-gc --import tsx test/bench/registry-propagation-zk-nacos.ts [changes=100] [services=1000] [instances=10]
//   (npx tsx ... works too; memory numbers are steadier with --expose-gc)
//
// Propagation: a service has one instance; each change replaces it with an
// instance on the other of two upstreams (ZooKeeper: one multi-op transaction,
// Nacos: one instance-list change, one push). Measured from just before the
// change is sent to:
//   table    - the gateway's EndpointTable holding the new instance
//   routing  - the first request through the gateway answered by the new instance
//              (requests are sent back to back while waiting)
//   baseline - a bare client of the same registry seeing the same change in the
//              same run (ZooKeeper: node-zookeeper-client children watch;
//              Nacos: the npm client's subscribe listener): the registry's own floor.
// Scale: <services> x <instances> in one registry, initial sync of a fresh
// watcher into an EndpointTable: time and heap growth, against a bare read of
// the same data (ZooKeeper: getChildren of every providers node; Nacos: service
// list + instance/list per service over HTTP, 32 at a time).
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import pino from 'pino';
import zookeeper from 'node-zookeeper-client';
import { NacosNamingClient } from 'nacos';
import { Agent, request } from 'undici';
import { EndpointTable } from '../../src/discovery/endpoint-table.js';
import { NacosRegistrySchema, ZookeeperRegistrySchema } from '../../src/config/schema.js';
import createZookeeper from '../../registries/zookeeper/index.js';
import createNacos from '../../registries/nacos/index.js';
import { Gateway } from '../../src/gateway.js';
import { startNacosDouble } from '../doubles/nacos/server.js';
import { startNacosGrpcDouble } from '../doubles/nacos-grpc/server.js';
import { startZookeeper, type ZookeeperServer } from '../helpers/zookeeper.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { latencyStats, type LatencyStats } from './lib/latency-stats.js';
import { report } from './lib/report.js';

const CHANGES = Number(process.argv[2] ?? 100);
const SERVICES = Number(process.argv[3] ?? 1000);
const INSTANCES = Number(process.argv[4] ?? 10);
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const quiet = { info() {}, debug() {}, warn() {}, error() {}, log() {} } as unknown as typeof console;

type Stats = LatencyStats;
const stats = (samples: number[]): Stats => latencyStats(samples, 2);

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1048576;
}

function zkCall<T>(fn: (cb: (err: unknown, r?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => fn((err, r) => (err ? reject(err) : resolve(r as T))));
}

async function zkConnect(connectString: string): Promise<zookeeper.Client> {
  const c = zookeeper.createClient(connectString, { sessionTimeout: 30000, spinDelay: 200 });
  await new Promise<void>((resolve) => {
    c.once('connected', () => resolve());
    c.connect();
  });
  return c;
}

/** Resolves with the time the table first holds `service` with an endpoint on `port`. */
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

/** Send requests back to back until one is answered by `instance`; resolves with that time. */
async function routedTo(agent: Agent, url: string, instance: string, deadlineMs = 10_000): Promise<number> {
  const end = performance.now() + deadlineMs;
  while (performance.now() < end) {
    const res = await request(url, { dispatcher: agent });
    await res.body.dump();
    if (res.headers['x-instance'] === instance) return performance.now();
  }
  throw new Error(`never routed to ${instance}`);
}

interface PropagationResult {
  table: Stats;
  routing: Stats;
  baseline: Stats;
}

async function propagationRun(opts: {
  gatewayRegistry: Record<string, unknown>;
  service: string;
  ups: [TestUpstream, TestUpstream];
  /** Apply change i (instance on ups[i % 2]). */
  change: (i: number) => Promise<void>;
  /** Resolves when the bare client sees an instance on `port` (none for Nacos gRPC: no other client of it runs here). */
  baseline?: (port: number) => Promise<number>;
  setup: () => Promise<void>;
}): Promise<PropagationResult> {
  await opts.setup();
  const gw = await Gateway.start({
    config: {
      listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
      admin: { address: '127.0.0.1:0' },
      registries: [opts.gatewayRegistry],
      routes: [{ name: 'bench', match: { path: { prefix: '/' } }, backends: [{ service: opts.service }] }],
    } as never,
    log,
    accessLog: false,
  });
  const agent = new Agent({ connections: 4 });
  const url = `${gw.listenerUrl('public')}/`;
  try {
    await routedTo(agent, url, 'a', 30_000);
    const t: number[] = [];
    const r: number[] = [];
    const b: number[] = [];
    for (let i = 1; i <= CHANGES; i++) {
      const up = opts.ups[i % 2]!;
      const inst = i % 2 === 0 ? 'a' : 'b';
      const tableP = tableHas(gw.table, opts.service, up.port);
      const baseP = opts.baseline?.(up.port) ?? Promise.resolve(Number.NaN);
      const t0 = performance.now();
      await opts.change(i);
      const routeT = await routedTo(agent, url, inst);
      const [tableT, baseT] = await Promise.all([tableP, baseP]);
      t.push(tableT - t0);
      r.push(routeT - t0);
      if (!Number.isNaN(baseT)) b.push(baseT - t0);
      await sleep(20 + Math.random() * 30);
    }
    return { table: stats(t), routing: stats(r), baseline: stats(b) };
  } finally {
    await agent.close();
    await gw.stop();
  }
}

// ---------- ZooKeeper ----------

function curatorJson(id: string, port: number): Buffer {
  return Buffer.from(JSON.stringify({ name: 'bench', id, address: '127.0.0.1', port, sslPort: null, payload: { metadata: { instance_status: 'UP' } }, serviceType: 'DYNAMIC' }));
}

async function zkPropagation(zk: ZookeeperServer, ups: [TestUpstream, TestUpstream]): Promise<PropagationResult> {
  const writer = await zkConnect(zk.connectString);
  const observer = await zkConnect(zk.connectString);
  // The bare baseline: a children watch re-armed on every event, reading each new instance's data.
  const waiters: Array<{ port: number; resolve: (t: number) => void }> = [];
  const seenPorts = async () => {
    const children = await zkCall<string[]>((cb) => observer.getChildren('/services/bench', watch, cb));
    const ports = new Set<number>();
    for (const c of children) {
      const data = await zkCall<Buffer>((cb) => observer.getData(`/services/bench/${c}`, cb)).catch(() => undefined);
      if (data) ports.add((JSON.parse(data.toString()) as { port: number }).port);
    }
    const now = performance.now();
    for (let k = waiters.length - 1; k >= 0; k--) if (ports.has(waiters[k]!.port)) waiters.splice(k, 1)[0]!.resolve(now);
  };
  const watch = () => void seenPorts().catch(() => undefined);
  try {
    return await propagationRun({
      service: 'bench.zookeeper',
      ups,
      gatewayRegistry: { name: 'zk', type: 'zookeeper', servers: [zk.connectString], paths: ['/services'], spinDelayMs: 200 },
      setup: async () => {
        await zkCall((cb) => writer.mkdirp('/services/bench', cb));
        await zkCall((cb) => writer.create('/services/bench/i0', curatorJson('i0', ups[0].port), zookeeper.CreateMode.EPHEMERAL, cb));
        await seenPorts();
      },
      change: async (i) => {
        await zkCall((cb) =>
          writer
            .transaction()
            .create(`/services/bench/i${i}`, curatorJson(`i${i}`, ups[i % 2]!.port), zookeeper.CreateMode.EPHEMERAL)
            .remove(`/services/bench/i${i - 1}`)
            .commit(cb),
        );
      },
      baseline: (port) => new Promise((resolve) => waiters.push({ port, resolve })),
    });
  } finally {
    writer.close();
    observer.close();
  }
}

async function zkScale(zk: ZookeeperServer): Promise<{ syncMs: number; heapMb: number; baselineMs: number; nodes: number }> {
  const writer = await zkConnect(zk.connectString);
  const iface = (s: number) => `com.bench.Service${s}`;
  for (let s = 0; s < SERVICES; s++) {
    await zkCall((cb) => writer.mkdirp(`/dubbo/${iface(s)}/providers`, cb));
    const creates: Promise<unknown>[] = [];
    for (let i = 0; i < INSTANCES; i++) {
      const url = `dubbo://10.${(s >> 8) & 255}.${s & 255}.${i + 1}:20880/${iface(s)}?anyhost=true&application=bench&interface=${iface(s)}&methods=a,b,c&side=provider&version=1.0.0&weight=100&timestamp=${Date.now()}`;
      creates.push(zkCall((cb) => writer.create(`/dubbo/${iface(s)}/providers/${encodeURIComponent(url)}`, cb)));
    }
    await Promise.all(creates);
  }
  writer.close();

  // Bare read of the same tree.
  const bare = await zkConnect(zk.connectString);
  let baselineMs = 0;
  let nodes = 0;
  for (let round = 0; round < 2; round++) {
    // the first round warms up; the second is reported
    const b0 = performance.now();
    const ifaces = await zkCall<string[]>((cb) => bare.getChildren('/dubbo', cb));
    nodes = 0;
    for (let k = 0; k < ifaces.length; k += 128) {
      const lists = await Promise.all(ifaces.slice(k, k + 128).map((n) => zkCall<string[]>((cb) => bare.getChildren(`/dubbo/${n}/providers`, cb))));
      for (const l of lists) nodes += l.length;
    }
    baselineMs = performance.now() - b0;
  }
  bare.close();

  const before = heapMb();
  const table = new EndpointTable(log);
  const watcher = createZookeeper(ZookeeperRegistrySchema.parse({ name: 'zk', type: 'zookeeper', servers: [zk.connectString], paths: ['/dubbo'] }), table.sinkFor('zk', 'zookeeper', log));
  const t0 = performance.now();
  await watcher.start();
  while (!(table.allSynced() && table.services().length >= SERVICES)) await sleep(5);
  const syncMs = performance.now() - t0;
  const complete = table.services().every((s) => s.endpoints.length === INSTANCES);
  if (!complete) throw new Error('zookeeper scale: not every service has all instances');
  const grown = heapMb() - before;
  await watcher.stop();
  return { syncMs, heapMb: grown, baselineMs, nodes };
}

// ---------- Nacos ----------

async function nacosPropagation(ups: [TestUpstream, TestUpstream]): Promise<PropagationResult> {
  const nacos = await startNacosDouble({ cacheMillis: 60_000 });
  const waiters: Array<{ port: number; resolve: (t: number) => void }> = [];
  const bare = new NacosNamingClient({ logger: quiet, serverList: nacos.address, namespace: 'public' });
  try {
    return await propagationRun({
      service: 'bench.DEFAULT-GROUP.public.nacos',
      ups,
      // polling far out of the way: what is measured is push
      gatewayRegistry: { name: 'nacos', type: 'nacos', servers: [nacos.address], serviceListIntervalMs: 1000, pollIntervalMs: 600_000 },
      setup: async () => {
        nacos.setInstances('bench', [{ ip: '127.0.0.1', port: ups[0].port }]);
        await bare.ready();
        bare.subscribe({ serviceName: 'bench' } as never, ((hosts: Array<{ port: number }>) => {
          const now = performance.now();
          for (let k = waiters.length - 1; k >= 0; k--) if (hosts.some((h) => h.port === waiters[k]!.port)) waiters.splice(k, 1)[0]!.resolve(now);
        }) as never);
      },
      change: async (i) => {
        nacos.setInstances('bench', [{ ip: '127.0.0.1', port: ups[i % 2]!.port }]);
      },
      baseline: (port) => new Promise((resolve) => waiters.push({ port, resolve })),
    });
  } finally {
    await (bare as unknown as { close(): Promise<void> }).close();
    await nacos.stop();
  }
}

async function nacosGrpcPropagation(ups: [TestUpstream, TestUpstream]): Promise<PropagationResult> {
  const nacos = await startNacosGrpcDouble();
  try {
    return await propagationRun({
      service: 'bench.DEFAULT-GROUP.public.nacos',
      ups,
      gatewayRegistry: { name: 'nacos', type: 'nacos', servers: [nacos.httpAddress], protocol: 'grpc', serviceListIntervalMs: 1000 },
      setup: async () => {
        nacos.register('bench', { ip: '127.0.0.1', port: ups[0].port });
      },
      // The new instance first, then the old one leaves: two pushes, never an empty service.
      change: async (i) => {
        nacos.register('bench', { ip: '127.0.0.1', port: ups[i % 2]!.port });
        nacos.deregister('bench', '127.0.0.1', ups[(i + 1) % 2]!.port);
      },
    });
  } finally {
    await nacos.close();
  }
}

async function nacosScale(): Promise<{ syncMs: number; heapMb: number; baselineMs: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./lib/zk-nacos-double-child.ts', import.meta.url).pathname, String(SERVICES), String(INSTANCES)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (l) => {
        const m = /^READY (\d+)/.exec(l);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (c) => reject(new Error(`double exited ${c}`)));
    });
    const address = `127.0.0.1:${port}`;

    // Bare read: service list, then every instance list, 32 at a time.
    const agent = new Agent({ connections: 32 });
    let baselineMs = 0;
    for (let round = 0; round < 2; round++) {
      // the first round warms up the double; the second is reported
      const b0 = performance.now();
      const list = (await (await request(`http://${address}/nacos/v1/ns/service/list?pageNo=1&pageSize=${SERVICES}&groupName=DEFAULT_GROUP&namespaceId=public`, { dispatcher: agent })).body.json()) as { doms: string[] };
      let k = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (k < list.doms.length) {
            const name = list.doms[k++]!;
            const res = await request(`http://${address}/nacos/v1/ns/instance/list?serviceName=DEFAULT_GROUP%40%40${encodeURIComponent(name)}&clusters=DEFAULT&namespaceId=public`, { dispatcher: agent });
            JSON.parse(await res.body.text());
          }
        }),
      );
      baselineMs = performance.now() - b0;
    }
    await agent.close();

    const before = heapMb();
    const table = new EndpointTable(log);
    const watcher = createNacos(NacosRegistrySchema.parse({ name: 'nacos', type: 'nacos', servers: [address], pollIntervalMs: 600_000, serviceListIntervalMs: 600_000 }), table.sinkFor('nacos', 'nacos', log));
    const t0 = performance.now();
    await watcher.start();
    while (!(table.allSynced() && table.services().length >= SERVICES)) await sleep(5);
    const syncMs = performance.now() - t0;
    if (!table.services().every((s) => s.endpoints.length === INSTANCES)) throw new Error('nacos scale: not every service has all instances');
    // let the client's subscriptions (one query each) settle before measuring memory
    await sleep(3000);
    const grown = heapMb() - before;
    await watcher.stop();
    return { syncMs, heapMb: grown, baselineMs };
  } finally {
    child.stdin!.end();
    child.kill();
  }
}

// ---------- main ----------

const fmt = (s: Stats) => `p50 ${s.p50} ms, p99 ${s.p99} ms, max ${s.max} ms (n=${s.n})`;
const ups: [TestUpstream, TestUpstream] = [await startUpstream('a'), await startUpstream('b')];
const zk = await startZookeeper();
try {
  console.log(`node ${process.version}, ${CHANGES} changes, scale ${SERVICES} services x ${INSTANCES} instances, gc ${typeof (globalThis as { gc?: unknown }).gc === 'function' ? 'exposed' : 'not exposed'}`);
  const zkP = await zkPropagation(zk, ups);
  console.log(`zookeeper table    ${fmt(zkP.table)}`);
  console.log(`zookeeper routing  ${fmt(zkP.routing)}`);
  console.log(`zookeeper baseline ${fmt(zkP.baseline)}  (bare children watch)`);
  console.log(`zookeeper routing/baseline p50 ${(zkP.routing.p50 / zkP.baseline.p50).toFixed(2)}x, p99 ${(zkP.routing.p99 / zkP.baseline.p99).toFixed(2)}x`);
  report({ bench: 'registry-propagation-zk-nacos', metric: 'zookeeper change -> routed p99 ms (vs bare children watch)', value: zkP.routing.p99, baseline: zkP.baseline.p99, unit: 'ms' });
  const nP = await nacosPropagation(ups);
  console.log(`nacos table        ${fmt(nP.table)}`);
  console.log(`nacos routing      ${fmt(nP.routing)}`);
  console.log(`nacos baseline     ${fmt(nP.baseline)}  (bare npm client listener)`);
  console.log(`nacos routing/baseline p50 ${(nP.routing.p50 / nP.baseline.p50).toFixed(2)}x, p99 ${(nP.routing.p99 / nP.baseline.p99).toFixed(2)}x`);
  report({ bench: 'registry-propagation-zk-nacos', metric: 'nacos UDP push change -> routed p99 ms (vs bare npm client)', value: nP.routing.p99, baseline: nP.baseline.p99, unit: 'ms' });
  const gP = await nacosGrpcPropagation(ups);
  console.log(`nacos grpc table   ${fmt(gP.table)}`);
  console.log(`nacos grpc routing ${fmt(gP.routing)}  (server push on the gRPC stream; no bare client to compare)`);
  report({ bench: 'registry-propagation-zk-nacos', metric: 'nacos gRPC change -> routed p99 ms (vs nacos UDP push)', value: gP.routing.p99, baseline: nP.routing.p99, unit: 'ms' });
  const zs = await zkScale(zk);
  report({ bench: 'registry-propagation-zk-nacos', metric: `zookeeper initial sync ms, ${SERVICES}x${INSTANCES} (vs bare read)`, value: zs.syncMs, baseline: zs.baselineMs, unit: 'ms' });
  console.log(`zookeeper scale: ${zs.nodes} provider nodes, initial sync ${Math.round(zs.syncMs)} ms (bare read ${Math.round(zs.baselineMs)} ms, ${(zs.syncMs / zs.baselineMs).toFixed(2)}x), heap +${zs.heapMb.toFixed(1)} MB`);
  const ns = await nacosScale();
  report({ bench: 'registry-propagation-zk-nacos', metric: `nacos initial sync ms, ${SERVICES}x${INSTANCES} (vs bare read)`, value: ns.syncMs, baseline: ns.baselineMs, unit: 'ms' });
  console.log(`nacos scale: initial sync ${Math.round(ns.syncMs)} ms (bare read ${Math.round(ns.baselineMs)} ms, ${(ns.syncMs / ns.baselineMs).toFixed(2)}x), heap +${ns.heapMb.toFixed(1)} MB`);
} finally {
  await zk.destroy();
  for (const u of ups) await u.close();
}
process.exit(0);
