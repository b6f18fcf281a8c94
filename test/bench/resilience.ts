// Resilience benchmarks: `npx tsx test/bench/resilience.ts [--micro] [--gateway] [--seconds N] [--rounds N]`
//
// 1. Micro: per-request cost of the breaker engine (tryPass + done), of
//    flow_control rules, and of opossum's fire() for the same job, with its
//    default options and with the options traffic-semantics.md recommends;
//    plus the cost of one failure with default options once the window holds
//    many latency samples (the performance trap).
// 2. Pipeline: the gateway's request path in-process (filters, routing,
//    forward, breakers, metrics; a fake upstream adapter, no sockets), rule-free
//    route against the three-rule route, interleaved in small batches. Without
//    network and HTTP parsing this is an upper bound on the relative cost.
// 3. Gateway: throughput through a real gateway process (autocannon) of a
//    route with no rules against a route with three active rules (an
//    error_ratio breaker, a per-client-IP qps rule and a concurrency rule),
//    and against an identical rule-free control route (the noise floor),
//    rotating the order each round so all see the same machine state.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import OpossumBreaker from 'opossum';
import pino from 'pino';
import { Instance } from '../../src/balancing/instance.js';
import { ServiceSchema } from '../../src/config/schema.js';
import { FlowControlFilterSchema } from '../../src/resilience/flow/filter.js';
import { Metrics } from '../../src/observability/metrics.js';
import { ServiceBreakers } from '../../src/resilience/breaker-set.js';
import { createFlowControl } from '../../src/resilience/flow/filter.js';
import { Exchange } from '../../src/exchange/exchange.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { AttemptOutcome } from '../../src/exchange/outcome.js';
import { report } from './lib/report.js';

// autocannon ships no type declarations: describe the part used here.
interface CannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Cannon = (opts: Record<string, unknown>, cb: (err: Error | null, res: CannonResult) => void) => unknown;
const autocannon = createRequire(import.meta.url)('autocannon') as Cannon;

const args = process.argv.slice(2);
const only = args.includes('--micro') ? 'micro' : args.includes('--gateway') ? 'gateway' : args.includes('--pipeline') ? 'pipeline' : 'all';
const argNum = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const SECONDS = argNum('--seconds', 3);
const ROUNDS = argNum('--rounds', 12);

const log = pino({ level: 'silent' });
const OK: AttemptOutcome = { status: 200, committed: true, reachedUpstream: true };

function nsPerOp(label: string, n: number, fn: () => void): number {
  for (let i = 0; i < Math.min(n, 200_000); i++) fn(); // warm up the JIT
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`  ${label.padEnd(64)} ${ns.toFixed(1).padStart(9)} ns/op`);
  return ns;
}

async function nsPerOpAsync(label: string, n: number, fn: () => Promise<unknown>): Promise<number> {
  // Yield to the event loop every 10k calls so timers (opossum's bucket rotation) run as they would in a server.
  const loop = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      await fn();
      if (i % 10_000 === 9_999) await new Promise((r) => setImmediate(r));
    }
  };
  await loop(Math.min(n, 50_000));
  const t0 = process.hrtime.bigint();
  await loop(n);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`  ${label.padEnd(64)} ${ns.toFixed(1).padStart(9)} ns/op`);
  return ns;
}

async function micro(): Promise<void> {
  console.log(`\n## Micro-benchmarks (node ${process.version}, ${new Date().toISOString()})\n`);
  const rules = (n: number) =>
    ServiceSchema.parse({
      circuitBreakers: [
        { strategy: 'error_ratio', threshold: 0.5 },
        { strategy: 'slow_ratio', maxRtMs: 500, threshold: 0.8 },
        { strategy: 'error_count', threshold: 100 },
      ].slice(0, n),
    }).circuitBreakers;
  const inst = new Instance({ host: '127.0.0.1', port: 1, weight: 1, healthy: true, metadata: {} });
  const N = 2_000_000;
  console.log('Circuit breakers (meshgate engine), closed, tryPass + done:');
  const one = new ServiceBreakers('s', rules(1), { log }, 15_000);
  const engine1 = nsPerOp('1 rule (error_ratio)', N, () => one.tryPass(inst)!.done(OK, 3));
  const three = new ServiceBreakers('s', rules(3), { log }, 15_000);
  nsPerOp('3 rules (error_ratio, slow_ratio, error_count)', N, () => three.tryPass(inst)!.done(OK, 3));
  const perInst = new ServiceBreakers('s', ServiceSchema.parse({ circuitBreakers: [{ strategy: 'error_ratio', threshold: 0.5, scope: 'instance' }] }).circuitBreakers, { log }, 15_000);
  nsPerOp('1 rule, scope instance', N, () => perInst.tryPass(inst)!.done(OK, 3));

  console.log('\nopossum 9 fire() around an action that resolves at once (awaited one by one):');
  const action = (): Promise<number> => Promise.resolve(1);
  const M = 300_000;
  const bare = await nsPerOpAsync('no breaker: await action()', M, action);
  const engineAsync = await nsPerOpAsync('meshgate engine around it: tryPass, await, done', M, async () => {
    const p = one.tryPass(inst)!;
    await action();
    p.done(OK, 3);
  });
  const defaults = new OpossumBreaker(action, {});
  const opDefault = await nsPerOpAsync('opossum, default options', M, () => defaults.fire());
  defaults.shutdown();
  const rotator = new EventEmitter();
  const rotation = setInterval(() => rotator.emit('rotate'), 1000);
  const tuned = new OpossumBreaker(action, { rollingPercentilesEnabled: false, enableSnapshots: false, rotateBucketController: rotator });
  const opTuned = await nsPerOpAsync('opossum, percentiles + snapshots off, shared rotation', M, () => tuned.fire());
  tuned.shutdown();
  const noTimeout = new OpossumBreaker(action, { timeout: false, rollingPercentilesEnabled: false, enableSnapshots: false, rotateBucketController: rotator });
  const opNoTimeout = await nsPerOpAsync('opossum, as above and timeout: false (no timer per call)', M, () => noTimeout.fire());
  noTimeout.shutdown();
  clearInterval(rotation);
  console.log(
    `  -> overhead over a bare await: meshgate ${(engineAsync - bare).toFixed(0)} ns, opossum default ${(opDefault - bare).toFixed(0)} ns, ` +
      `tuned ${(opTuned - bare).toFixed(0)} ns, tuned without timeout ${(opNoTimeout - bare).toFixed(0)} ns (engine sync path: ${engine1.toFixed(0)} ns)`,
  );

  console.log('\nopossum failure cost once the window holds many successes (latency samples):');
  for (const [label, opts] of [
    ['default options', {}],
    ['rollingPercentilesEnabled: false', { rollingPercentilesEnabled: false, enableSnapshots: false }],
  ] as const) {
    let fail = false;
    const b = new OpossumBreaker(() => (fail ? Promise.reject(new Error('x')) : Promise.resolve(1)), {
      ...opts,
      errorThresholdPercentage: 99,
      volumeThreshold: 1_000_000,
      timeout: false,
    });
    for (let i = 0; i < 100_000; i++) await b.fire();
    fail = true;
    const t0 = process.hrtime.bigint();
    const F = 50;
    for (let i = 0; i < F; i++) await b.fire().catch(() => undefined);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6 / F;
    console.log(`  ${`${label}, 100k samples in window: per failure`.padEnd(64)} ${ms.toFixed(3).padStart(9)} ms`);
    b.shutdown();
  }

  console.log('\nflow_control onRequest (+ onDone), rules that admit everything:');
  const ctx = { store: new MemoryStore(), log, metrics: new Metrics({ processMetrics: false }) };
  const ex = new Exchange({ url: '/x?u=1', method: 'GET', headers: { 'x-user': 'alice' } } as never, {} as never, 'r', '10.0.0.1', 'h', 'http');
  const fc = (r: unknown[]) => createFlowControl(FlowControlFilterSchema.parse({ type: 'flow_control', rules: r }), ctx);
  const qps = fc([{ count: 1e12 }]);
  nsPerOp('qps reject, no key', N, () => qps.onRequest!(ex));
  const keyed = fc([{ count: 1e12, key: { header: 'x-user' } }]);
  nsPerOp('qps reject, keyed by header', N, () => keyed.onRequest!(ex));
  const ipKeyed = fc([{ count: 1e12, key: { ip: true } }]);
  nsPerOp('qps reject, keyed by client ip', N, () => ipKeyed.onRequest!(ex));
  const conc = fc([{ metric: 'concurrency', count: 1e9 }]);
  nsPerOp('concurrency (onRequest + onDone)', N, () => {
    conc.onRequest!(ex);
    conc.onDone!(ex);
  });
  const warm = fc([{ count: 1e12, behavior: 'warm_up' }]);
  nsPerOp('warm_up', N, () => warm.onRequest!(ex));
  (ctx.store as MemoryStore).close();
}

// ---------- the request path in-process ----------

/** Just enough of a ServerResponse for the pipeline; 'close' fires when it ends. */
class FakeResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  writableEnded = false;
  writableFinished = false;
  constructor(private readonly onEnd: () => void) {
    super();
  }
  writeHead(code: number): this {
    this.statusCode = code;
    this.headersSent = true;
    return this;
  }
  end(): void {
    this.writableEnded = this.writableFinished = true;
    this.emit('close');
    this.onEnd();
  }
  destroy(): void {
    this.destroyed = true;
    this.emit('close');
    this.onEnd();
  }
}

async function pipeline(): Promise<void> {
  const { ClusterManager } = await import('../../src/balancing/clusters.js');
  const { validateConfig } = await import('../../src/config/load.js');
  const { compileRuntime } = await import('../../src/server/runtime.js');
  const { Pipeline } = await import('../../src/server/pipeline.js');
  console.log(`\n## Request path in-process (fake upstream adapter, no sockets)\n`);
  const store = new MemoryStore();
  const adapter = {
    protocol: 'http',
    async attempt(ex: Exchange) {
      ex.res.writeHead(200, { 'content-length': '2' });
      ex.res.end('ok');
      return { status: 200, committed: true, reachedUpstream: true, headersMs: 0.05 };
    },
    async close() {},
  };
  // Three pipelines with the same route (same name, path, service): one without
  // rules, an identical control (the noise floor), one with the three rules.
  const make = (withRules: boolean) => {
    const source = Object.assign(new EventEmitter(), {
      endpointsOf: () => [{ host: '10.0.0.1', port: 8080, weight: 1, healthy: true, metadata: {} }],
    });
    const clusters = new ClusterManager(source);
    const metrics = new Metrics({ processMetrics: false });
    const config = validateConfig({
      services: withRules ? { 'api.static': { circuitBreakers: [{ strategy: 'error_ratio', threshold: 0.5, minRequests: 5, statIntervalMs: 1000, openMs: 10000 }] } } : {},
      routes: [
        {
          name: 'api',
          match: { path: { prefix: '/api' } },
          backends: [{ service: 'api.static' }],
          filters: withRules ? [{ type: 'flow_control', rules: [{ metric: 'qps', count: 1e8, key: { ip: true } }, { metric: 'concurrency', count: 1e5 }] }] : [],
        },
      ],
    });
    const compiled = compileRuntime(config, { clusters, store, log, metrics });
    compiled.activate();
    const state = compiled.state;
    return new Pipeline(state, { clusters, metrics, log, accessLog: undefined, adapters: new Map([['http', adapter as never]]) });
  };
  const pipes = { base: make(false), control: make(false), rules: make(true) };
  const socket = { remoteAddress: '10.1.2.3' };
  const one = (p: InstanceType<typeof Pipeline>): Promise<void> =>
    new Promise((resolve) => {
      // A bodiless request: the pipeline only attaches its error listener and reads nothing.
      const req = { url: '/api/items?id=1', method: 'GET', headers: { host: 'bench.test' }, rawHeaders: ['host', 'bench.test'], httpVersion: '1.1', socket, on: () => req, once: () => req, resume: () => req };
      p.handle(req as never, new FakeResponse(resolve) as never);
    });
  const batch = async (p: InstanceType<typeof Pipeline>, n: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await one(p);
    return Number(process.hrtime.bigint() - t0) / n;
  };
  const names = ['base', 'control', 'rules'] as const;
  for (let i = 0; i < 3; i++) for (const n of names) await batch(pipes[n], 20_000);
  const res: Record<string, number[]> = { base: [], control: [], rules: [] };
  for (let r = 0; r < 30; r++) {
    // Rotate the order of small batches so all three see the same machine state.
    for (const n of [...names.slice(r % 3), ...names.slice(0, r % 3)]) res[n]!.push(await batch(pipes[n], 10_000));
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  for (const n of names) console.log(`  ${n.padEnd(8)} median ${(median(res[n]!) / 1000).toFixed(2)} us/request`);
  for (const n of ['control', 'rules'] as const) {
    const ratios = res[n]!.map((v, i) => v / res.base![i]!);
    console.log(`  ${n.padEnd(8)} vs base: median per-batch ratio ${median(ratios).toFixed(3)}, ${((median(res[n]!) - median(res.base!)) / 1000).toFixed(2)} us per request`);
    report({ bench: 'resilience', metric: `in-process us/request, ${n} (vs base)`, value: median(res[n]!) / 1000, baseline: median(res.base!) / 1000, ratio: median(ratios), unit: 'us', note: 'ratio: median of per-batch ratios' });
  }
  await store.close();
}

// ---------- through the gateway ----------

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((resolve) => {
      http
        .get(url, (res) => {
          res.resume();
          resolve(res.statusCode !== undefined && res.statusCode < 500);
        })
        .on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

/** CPU time (user + system) a process used so far, in ms (Linux /proc; clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function run(url: string, seconds: number): Promise<CannonResult> {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: 50, pipelining: 1, duration: seconds }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

async function gateway(): Promise<void> {
  console.log(`\n## Through the gateway (autocannon, 50 connections, ${SECONDS} s per run, ${ROUNDS} rounds, order rotated each round)\n`);
  const dir = await mkdtemp(join(tmpdir(), 'meshgate-bench-'));
  const children: ChildProcess[] = [];
  try {
    const upPort = await freePort();
    const gwPort = await freePort();
    const adminPort = await freePort();
    // Upstream in its own process so it does not share an event loop with autocannon.
    const upstream = spawn(
      process.execPath,
      ['-e', `require('http').createServer((q,s)=>{q.resume();s.writeHead(200,{'content-type':'text/plain','content-length':'2'});s.end('ok')}).listen(${upPort},'127.0.0.1')`],
      { stdio: 'inherit' },
    );
    children.push(upstream);
    // base and control are identical routes without rules: their difference is the noise floor.
    const config = `
listeners: [{ name: public, address: "127.0.0.1:${gwPort}" }]
admin: { address: "127.0.0.1:${adminPort}" }
log: { level: warn, access: false }
registries:
  - { name: base, type: static, endpoints: ["127.0.0.1:${upPort}"] }
  - { name: control, type: static, endpoints: ["127.0.0.1:${upPort}"] }
  - { name: guarded, type: static, endpoints: ["127.0.0.1:${upPort}"] }
services:
  guarded.static:
    circuitBreakers:
      - { strategy: error_ratio, threshold: 0.5, minRequests: 5, statIntervalMs: 1000, openMs: 10000 }
routes:
  - { name: base, match: { path: { prefix: /base } }, backends: [{ service: base.static }] }
  - { name: control, match: { path: { prefix: /control } }, backends: [{ service: control.static }] }
  - name: rules
    match: { path: { prefix: /rules } }
    backends: [{ service: guarded.static }]
    filters:
      - type: flow_control
        rules:
          - { metric: qps, count: 100000000, key: { ip: true } }
          - { metric: concurrency, count: 100000 }
`;
    const cfgPath = join(dir, 'bench.yaml');
    await writeFile(cfgPath, config);
    const gw = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'start', '--config', cfgPath, '--workers', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(gw);
    const paths = ['base', 'control', 'rules'] as const;
    await waitHttp(`http://127.0.0.1:${upPort}/`);
    for (const p of paths) await waitHttp(`http://127.0.0.1:${gwPort}/${p}`);
    for (const p of paths) await run(`http://127.0.0.1:${gwPort}/${p}`, 2); // warm up
    // Machines running other work make req/s noisy; the gateway's own CPU time per
    // request is a steadier measure of what the rules cost. Both are reported, as
    // ratios against the base run of the same round.
    const rps: Record<string, number[]> = { base: [], control: [], rules: [] };
    const cpu: Record<string, number[]> = { base: [], control: [], rules: [] };
    for (let r = 0; r < ROUNDS; r++) {
      const order = [...paths.slice(r % 3), ...paths.slice(0, r % 3)];
      for (const which of order) {
        const c0 = await cpuMs(gw.pid!);
        const res = await run(`http://127.0.0.1:${gwPort}/${which}`, SECONDS);
        const cpuUs = (((await cpuMs(gw.pid!)) - c0) * 1000) / res.requests.total;
        const bad = res.non2xx + res.errors + res.timeouts;
        rps[which]!.push(res.requests.average);
        cpu[which]!.push(cpuUs);
        console.log(
          `  round ${String(r + 1).padStart(2)} ${which.padEnd(8)} ${res.requests.average.toFixed(0).padStart(7)} req/s  gateway CPU ${cpuUs.toFixed(1).padStart(6)} us/req  p50 ${res.latency.p50} ms  p99 ${res.latency.p99} ms  non-2xx/errors ${bad}`,
        );
      }
    }
    const median = (a: number[]) => {
      const s = [...a].sort((x, y) => x - y);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const ratios = (m: Record<string, number[]>, which: string) => m[which]!.map((v, i) => v / m.base![i]!);
    console.log('');
    for (const which of ['control', 'rules']) {
      console.log(
        `  ${which.padEnd(8)} vs base: req/s median ratio ${median(ratios(rps, which)).toFixed(3)} (median ${median(rps[which]!).toFixed(0)} vs ${median(rps.base!).toFixed(0)}), ` +
          `CPU/request median ratio ${median(ratios(cpu, which)).toFixed(3)} (median ${median(cpu[which]!).toFixed(1)} vs ${median(cpu.base!).toFixed(1)} us)`,
      );
      report({ bench: 'resilience', metric: `gateway req/s, ${which} (vs base)`, value: median(rps[which]!), baseline: median(rps.base!), ratio: median(ratios(rps, which)), unit: 'req/s', note: 'ratio: median of per-round ratios' });
      report({ bench: 'resilience', metric: `gateway CPU us/req, ${which} (vs base)`, value: median(cpu[which]!), baseline: median(cpu.base!), ratio: median(ratios(cpu, which)), unit: 'us' });
    }
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

if (only === 'all' || only === 'micro') await micro();
if (only === 'all' || only === 'pipeline') await pipeline();
if (only === 'all' || only === 'gateway') await gateway();
process.exit(0);
