// Endpoints at scale and registry churn, through a real gateway process.
//
//   npx tsx test/bench/endpoints-scale.ts [--services 10000] [--per 10] [--rate 1000] [--churn 1000]
//        [--seconds 10] [--warmup 2] [--rounds 2] [--only memory] [--pin] [--no-build] [--workers 1]
//        [--dist DIR]   the gateway built in DIR (a worktree with its own dist/), for before/after
//        [--lateness]   also the machine's wake-up lateness during each run (lib/timer-lateness.mjs)
//
// What runs: meshgate as users run it (dist/src/cli.js start --workers 1, the
// launchers' V8 flags, access log off) with one route per service (10,000
// routes: every service has a Cluster and a balancer, the most a gateway
// holds per endpoint), fed by the Nacos gRPC double in its own process
// (test/bench/lib/nacos-grpc-double-child.ts). Why Nacos over gRPC: it is the
// protocol of current Nacos (2.x/3.x; the v1 HTTP API is gone in 3.2), one
// subscription per service with pushes on one stream, so 10,000 services are
// watched as users watch them, through the real path (watcher ->
// EndpointTable -> ClusterManager/Cluster). A static registry file names one
// service per registry entry, not a shape anyone runs at 10,000 services.
//
// Memory: the gateway starts with every route and an empty registry; heap and
// RSS are read (heap after a full GC, through the inspector: lib/inspector.ts);
// then the double gets <services> x <per> instances, the gateway finds them at
// its next service-list refresh (every 5 s, the default) and subscribes; once meshgate_endpoints
// sums to every instance, heap and RSS are read again. The same is done in the
// same run for 10 services x <per> (10 routes): the baseline. Bytes per
// endpoint = heap growth / endpoints (the watcher's copy, the table, the
// Cluster's instances and balancer).
//
// Churn: on the same gateway (10,000 routed services with 10 instances each),
// a route `hot` to one more service whose one instance is a fast node:http
// upstream. A fixed request rate (lib/proxy-paced.ts, open loop, 32
// connections) goes to /hot/ twice per round, once quiet and once while the
// double makes <churn> endpoint changes per second (order alternates per
// round). A change is one instance deregistered or registered (one push);
// instances are replaced in turn across all the routed services (each leaves
// on one port and comes back on another: a different endpoint), and every
// 100th change re-registers the hot service's own instance with a new
// metadata revision (its balancer is rebuilt while it serves). What reached
// the gateway is counted, not assumed: the sum of the table versions in
// /api/services before and after (one per applied change). CPU per request is
// the gateway's CPU time over the paced run divided by the requests sent.
// Nothing is pinned by default: with --pin the gateway runs on CPU 1 and the
// double, the upstream and the load generator on CPU 0 (taskset), which on a
// 2-core machine queues the generator behind the double (one such run: p50
// 8.5 ms with no churn at all).
//
// --workers N (N > 1): the gateway as `meshgate start` runs by default (one
// worker per CPU): the primary watches Nacos and keeps the table, the workers
// serve the requests and get every endpoint change over IPC. CPU is then the
// whole process tree's, what reached the gateway is counted in each worker
// (the lowest worker's count is reported), and the heap figures are the
// primary's (its table and watcher; each worker holds its own clusters).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { flag, opt, optString } from './lib/args.js';
import { endpointCount, startGateway, versionSum, workerViews, type GatewayProc } from './lib/gateway-proc.js';
import { remoteMemory } from './lib/inspector.js';
import { startNacosDoubleProcess, type NacosDoubleProcess } from './lib/nacos-double.js';
import { runPaced, type PacedResult } from './lib/paced.js';
import { cpuSeconds, freePort, HELLO_UPSTREAM_JS, lastJsonLine, machineCpu, ROOT, rssMb, runProcess, startProcess, stopAll, waitForPort } from './lib/procs.js';
import { loadAvg, median, report } from './lib/report.js';

const SERVICES = opt('services', 10_000);
const PER = opt('per', 10);
const RATE = opt('rate', 1000);
const CHURN = opt('churn', 1000);
const SECONDS = opt('seconds', 10);
const WARMUP = opt('warmup', 2);
const ROUNDS = opt('rounds', 2);
const ONLY = optString('only');
// --pin (2+ CPUs): the gateway on CPU 1; the double, the upstream and the load generator on CPU 0. Off by
// default: on the 2-core machine CPU 0 then queues the generator behind the double (p50 8 ms while quiet).
const PIN = flag('pin') && availableParallelism() >= 2;
const GW_CPU = PIN ? 1 : undefined;
const AUX_CPU = PIN ? 0 : undefined;
const WORKERS = opt('workers', 1);
const DIST = optString('dist');
const BENCH = WORKERS > 1 ? `endpoints-scale-w${WORKERS}` : 'endpoints-scale';
const SUFFIX = '.DEFAULT-GROUP.public.nacos';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (b: number) => (b / 1048576).toFixed(1);


function routes(prefix: string, n: number): unknown[] {
  const r: unknown[] = [];
  for (let i = 0; i < n; i++) r.push({ name: `r${i}`, match: { path: { prefix: `/s${i}/` } }, backends: [{ service: `${prefix}${i}${SUFFIX}` }] });
  r.push({ name: 'hot', match: { path: { prefix: '/hot' } }, backends: [{ service: `hot${SUFFIX}` }] });
  return r;
}

async function waitEndpoints(gw: GatewayProc, prefix: string, want: number, timeoutMs = 300_000): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const n = await endpointCount(gw, prefix);
    if (n >= want) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`${prefix}: ${n} of ${want} endpoints after ${timeoutMs} ms`);
    await sleep(200);
  }
}

interface Mem {
  heap: number;
  rss: number;
}

async function memory(gw: GatewayProc): Promise<Mem> {
  const m = await remoteMemory(gw.inspectPort!);
  return { heap: m.heapUsed, rss: rssMb(gw.pid) * 1048576 };
}

/** A gateway with `services` routes, memory before and after the registry fills them with PER instances each. */
async function scaleCase(label: string, services: number): Promise<{ gw: GatewayProc; nacos: NacosDoubleProcess; before: Mem; after: Mem; syncMs: number }> {
  const nacos = await startNacosDoubleProcess(AUX_CPU);
  const gw = await startGateway(label, {
    registries: [{ name: 'nacos', type: 'nacos', servers: [nacos.httpAddress], protocol: 'grpc' }],
    routes: routes('svc-', services),
  }, { inspect: true, cpu: GW_CPU, workers: WORKERS, dist: DIST ? join(DIST, 'dist') : undefined });
  await sleep(1500);
  const before = await memory(gw);
  const t0 = performance.now();
  await nacos.call('fill', { prefix: 'svc-', from: 0, count: services, per: PER });
  await waitEndpoints(gw, 'svc-', services * PER);
  const syncMs = performance.now() - t0;
  await sleep(2000); // pushes acknowledged, subscriptions settled
  const after = await memory(gw);
  return { gw, nacos, before, after, syncMs };
}

/** CPU seconds of the gateway: with workers, the whole process tree. */
function gatewayCpu(gw: GatewayProc): number {
  return cpuSeconds(gw.pid, WORKERS > 1);
}

/** Changes the gateway applied so far (table versions summed): with workers, in the worker that has applied the fewest. */
async function tableVersions(gw: GatewayProc, prefix: string): Promise<number> {
  if (WORKERS <= 1) return versionSum(gw, prefix);
  const views = await workerViews(gw, prefix);
  if (views.length !== WORKERS) throw new Error(`${views.length} of ${WORKERS} workers answered`);
  return Math.min(...views.map((v) => v.versions));
}

function pacedRun(url: string): Promise<PacedResult> {
  return runPaced(url, { rate: RATE, seconds: SECONDS, warmup: WARMUP }, AUX_CPU);
}

interface Lateness {
  samples: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  over1ms: number;
  over2_5ms: number;
}

/**
 * --lateness: the machine's own wake-up delay over the same seconds as each
 * paced run (lib/timer-lateness.mjs: a 1 ms timer in an idle process, not
 * pinned), the floor under the p99 the run measures, which the ≤ 1 ms target
 * is read against. Off by default: its thousand wake-ups a second are one
 * more process on the cores the gateway, the double and the load share.
 */
const LATENESS = flag('lateness');

async function latenessRun(): Promise<Lateness | undefined> {
  if (!LATENESS) return undefined;
  return lastJsonLine<Lateness>(await runProcess(process.execPath, [join(ROOT, 'test/bench/lib/timer-lateness.mjs'), String(WARMUP + SECONDS)], undefined));
}


async function main(): Promise<void> {
  if (!flag('no-build') && !DIST) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) process.stdout.write(`npm run build exited ${b.status}; continuing with the emitted JS\n`);
  }
  if (!existsSync(join(ROOT, 'dist/src/cli.js'))) throw new Error('dist/src/cli.js missing: run npm run build');
  console.log(`node ${process.version}; ${SERVICES} services x ${PER} instances; --workers ${WORKERS}; ${DIST ? `build in ${DIST}` : 'this build'}; ${PIN ? 'gateway pinned to CPU 1, double, upstream and load generator to CPU 0' : 'not pinned'}; load average at start ${loadAvg()}`);

  // ---- memory: baseline (10 services) first, then the full scale; the big gateway stays for the churn runs.
  const small = await scaleCase('gw-10', 10);
  const smallDelta = small.after.heap - small.before.heap;
  console.log(
    `baseline 10 services x ${PER}: heap ${mb(small.before.heap)} -> ${mb(small.after.heap)} MB (+${mb(smallDelta)}), RSS ${mb(small.before.rss)} -> ${mb(small.after.rss)} MB, sync ${Math.round(small.syncMs)} ms`,
  );
  await small.gw.stop();
  small.nacos.stop();

  const big = await scaleCase('gw-scale', SERVICES);
  const eps = SERVICES * PER;
  const bigDelta = big.after.heap - big.before.heap;
  const perEp = bigDelta / eps;
  const perEpSmall = smallDelta / (10 * PER);
  console.log(
    `${SERVICES} services x ${PER} (${eps} endpoints, ${SERVICES} routes): heap ${mb(big.before.heap)} -> ${mb(big.after.heap)} MB (+${mb(bigDelta)}), RSS ${mb(big.before.rss)} -> ${mb(big.after.rss)} MB (+${mb(big.after.rss - big.before.rss)}), sync ${Math.round(big.syncMs)} ms (load ${loadAvg()})`,
  );
  console.log(`bytes per endpoint: ${Math.round(perEp)} (heap), ${Math.round((big.after.rss - big.before.rss) / eps)} (RSS); baseline 10 services: ${Math.round(perEpSmall)} (heap; 100 endpoints, mostly noise)`);
  console.log(`heap with ${eps} endpoints / heap with ${10 * PER}: ${(big.after.heap / small.after.heap).toFixed(2)}x`);
  report({ bench: BENCH, metric: `heap MB, ${SERVICES}x${PER} endpoints (vs 10x${PER})`, value: big.after.heap / 1048576, baseline: small.after.heap / 1048576, unit: 'MB' });
  report({ bench: BENCH, metric: `RSS MB, ${SERVICES}x${PER} endpoints (vs 10x${PER})`, value: big.after.rss / 1048576, baseline: small.after.rss / 1048576, unit: 'MB' });
  report({ bench: BENCH, metric: 'heap bytes per endpoint', value: perEp, baseline: perEpSmall, unit: 'B', note: 'baseline: 10 services (noisy)' });
  report({ bench: BENCH, metric: `initial sync ms, ${eps} endpoints (vs ${10 * PER})`, value: big.syncMs, baseline: small.syncMs, unit: 'ms', note: 'includes up to 5 s until the next service-list refresh' });

  if (ONLY === 'memory') {
    await big.gw.stop();
    big.nacos.stop();
    return;
  }

  // ---- churn
  const gw = big.gw;
  const nacos = big.nacos;
  const upPort = await freePort();
  const up = startProcess('upstream', process.execPath, ['-e', HELLO_UPSTREAM_JS, String(upPort)], AUX_CPU);
  await waitForPort(upPort, 'upstream', 30_000, up);
  await nacos.call('set', { name: 'hot', instances: [{ ip: '127.0.0.1', port: upPort, metadata: { rev: '0' } }] });
  const url = `${gw.url}/hot/`;
  for (let i = 0; ; i++) {
    const r = await fetch(url).catch(() => undefined);
    if (r?.status === 200) break;
    if (i > 100) throw new Error('the hot route never answered 200');
    await sleep(100);
  }
  // What the gateway spends with no requests and no churn (registry health checks, service-list refreshes), to read CPU per request against.
  const i0 = gatewayCpu(gw);
  await sleep(3000);
  const idleCpuPerSec = (gatewayCpu(gw) - i0) / 3;
  console.log(`gateway CPU while idle: ${(idleCpuPerSec * 1000).toFixed(0)} ms/s`);
  const allPrefix = ''; // every service: the churned ones and hot
  const results: Record<'quiet' | 'churn', Array<PacedResult & { cpuUs: number; applied: number; sent: number; load: number; share: { machine: number; gateway: number; double: number }; late: Lateness | undefined }>> = { quiet: [], churn: [] };
  for (let round = 1; round <= ROUNDS; round++) {
    const order: Array<'quiet' | 'churn'> = round % 2 ? ['quiet', 'churn'] : ['churn', 'quiet'];
    for (const mode of order) {
      const v0 = await tableVersions(gw, allPrefix);
      // Reading the versions is a whole /api/services answer (30-60 MB of JSON at 100,000 endpoints): let its garbage go before measuring.
      await sleep(3000);
      const load = loadAvg();
      let churnP: Promise<Record<string, unknown>> | undefined;
      if (mode === 'churn') {
        churnP = nacos.call('churn', { rate: CHURN, seconds: WARMUP + SECONDS + 1, prefix: 'svc-', count: SERVICES, per: PER, hot: { name: 'hot', ip: '127.0.0.1', port: upPort }, hotEvery: 100 });
        await sleep(500);
      }
      const c0 = gatewayCpu(gw);
      const d0 = cpuSeconds(nacos.child.pid!);
      const m0 = machineCpu();
      const [p, late] = await Promise.all([pacedRun(url), latenessRun()]);
      const cpu = gatewayCpu(gw) - c0;
      // Where the machine's cores went during the run: a rig that keeps them busy queues the gateway behind its own parts.
      const m1 = machineCpu();
      const wall = (m1.total - m0.total) / availableParallelism();
      const share = { machine: (m1.busy - m0.busy) / (m1.total - m0.total), gateway: cpu / wall, double: (cpuSeconds(nacos.child.pid!) - d0) / wall };
      const sentInfo = churnP ? await churnP : { sent: 0 };
      // The gateway may still be applying pushes when the double is done: wait until its table stops changing.
      let v1 = await tableVersions(gw, allPrefix);
      for (;;) {
        await sleep(1000);
        const v = await tableVersions(gw, allPrefix);
        if (v === v1) break;
        v1 = v;
      }
      const applied = v1 - v0;
      const requests = RATE * (WARMUP + SECONDS);
      const r = { ...p, cpuUs: (cpu / requests) * 1e6, applied, sent: Number(sentInfo.sent), load, share, late };
      results[mode].push(r);
      console.log(
        `round ${round} ${mode.padEnd(5)} @${p.achievedRate} req/s  p50 ${p.service.p50.toFixed(3)} ms  p99 ${p.service.p99.toFixed(3)} ms  p99.9 ${p.service.p999.toFixed(3)} ms  CPU ${r.cpuUs.toFixed(1)} us/req` +
          `${mode === 'churn' ? `  changes sent ${r.sent}, applied by the gateway ${applied} (${(applied / (WARMUP + SECONDS + 1)).toFixed(0)}/s)` : `  changes applied ${applied}`}  errors ${p.errors}  load ${load}` +
          `  CPU busy: machine ${(share.machine * 100).toFixed(0)}% of ${availableParallelism()} cores, gateway ${(share.gateway * 100).toFixed(0)}% of a core, double ${(share.double * 100).toFixed(0)}%` +
          (late ? `  machine wake-up lateness (1 ms timer, idle process): p99 ${late.p99.toFixed(2)} ms, p99.9 ${late.p999.toFixed(2)} ms, max ${late.max.toFixed(1)} ms, ${late.over2_5ms} of ${late.samples} over 2.5 ms` : ''),
      );
    }
  }
  const q99 = median(results.quiet.map((r) => r.service.p99));
  const c99 = median(results.churn.map((r) => r.service.p99));
  const q50 = median(results.quiet.map((r) => r.service.p50));
  const c50 = median(results.churn.map((r) => r.service.p50));
  const qCpu = median(results.quiet.map((r) => r.cpuUs));
  const cCpu = median(results.churn.map((r) => r.cpuUs));
  const applied = results.churn.reduce((a, r) => a + r.applied, 0);
  const sent = results.churn.reduce((a, r) => a + r.sent, 0);
  const lateQ = LATENESS ? median(results.quiet.map((r) => r.late!.p99)) : undefined;
  const lateC = LATENESS ? median(results.churn.map((r) => r.late!.p99)) : undefined;
  console.log(
    `churn ${CHURN} changes/s over ${SERVICES} routed services at ${RATE} req/s (medians of ${ROUNDS} rounds): p50 ${q50.toFixed(3)} -> ${c50.toFixed(3)} ms, p99 ${q99.toFixed(3)} -> ${c99.toFixed(3)} ms (delta ${(c99 - q99).toFixed(3)} ms, target <= 1 ms), CPU ${qCpu.toFixed(1)} -> ${cCpu.toFixed(1)} us/req; changes applied ${applied} of ${sent} sent${lateQ !== undefined ? `; the machine's wake-up lateness p99 ${lateQ.toFixed(2)} -> ${lateC!.toFixed(2)} ms over the same runs` : ''}`,
  );
  report({ bench: BENCH, metric: `p99 ms at ${RATE} req/s with ${CHURN} endpoint changes/s (vs quiet)`, value: c99, baseline: q99, unit: 'ms', note: `delta ${(c99 - q99).toFixed(3)} ms` });
  report({ bench: BENCH, metric: `p50 ms with churn (vs quiet)`, value: c50, baseline: q50, unit: 'ms' });
  report({ bench: BENCH, metric: 'gateway CPU us/req with churn (vs quiet)', value: cCpu, baseline: qCpu, unit: 'us' });
  report({ bench: BENCH, metric: 'endpoint changes applied / sent', value: applied, baseline: sent, unit: 'changes' });
  if (lateQ !== undefined) report({ bench: BENCH, metric: 'machine wake-up lateness p99 ms, 1 ms timer in an idle process, churn runs (vs quiet runs)', value: lateC!, baseline: lateQ, unit: 'ms', note: 'the floor under the p99 figures above' });
  await gw.stop();
  nacos.stop();
}

main()
  .then(() => {
    stopAll();
    setTimeout(() => process.exit(0), 500);
  })
  .catch((e: Error) => {
    console.error(e.stack);
    stopAll();
    process.exit(1);
  });
