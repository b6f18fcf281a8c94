// Workers: what the IPC fan-out of endpoint changes and config costs with
// `meshgate start --workers N` (N = 1, 2, 4 by default; 1 is a single process,
// no IPC: the baseline).
//
//   npx tsx test/bench/workers-ipc.ts [--workers 1,2,4] [--routes 1000] [--churn 2000] [--churn-seconds 5]
//        [--services 10000] [--per 10] [--reloads 5] [--no-build]
//
// Per N, one gateway (dist/, access log off) fed by the Nacos gRPC double in
// its own process (lib/nacos-grpc-double-child.ts; service list refreshed
// every 500 ms so new services are not waited for), <routes> routes to the
// services chn-0..chn-<routes-1> (10 instances each):
//  (c) reload fan-out: a route is added or removed in the config file and
//      POST /api/reload is timed until its answer (200 only once every worker
//      prepared and committed the config: src/workers.ts), <reloads> times.
//  (a) changes to every worker: the double makes <churn> endpoint changes per
//      second for <churn-seconds> on chn-* (lib/nacos-grpc-double-child.ts
//      churn: instances deregistered and registered in turn). Arrival in the
//      workers is measured, not assumed: a barrier (/api/resilience?live=1)
//      queues behind every endpoint message sent before it on each worker's
//      ordered IPC channel, so its round trip is the delivery lag to the
//      slowest worker at that moment; barriers go back to back during the
//      churn. At the end, each worker's table versions (/api/services?live=1,
//      one per update applied there) and endpoint counts are compared with
//      the primary's. changes/s to every worker = changes the primary applied /
//      (time from the churn's start to the return of the first barrier sent
//      after the primary's last change), if every worker ends with the same
//      endpoints (the primary batches a moment's changes per service, so a
//      worker may apply fewer, coalesced updates).
//  (b) 100,000 endpoints: the double gets <services> x <per> new instances
//      (svc-*); time from that to the primary holding them all (its table's
//      lastChangeAt) and to every worker holding them (the first barrier sent
//      after that returns).
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flag, opt, optString } from './lib/args.js';
import { endpointCount, startGateway, versionSum, workersBarrier, workerViews, type GatewayProc } from './lib/gateway-proc.js';
import { latencyStats } from './lib/latency-stats.js';
import { startNacosDoubleProcess } from './lib/nacos-double.js';
import { ROOT, stopAll } from './lib/procs.js';
import { loadAvg, median, report } from './lib/report.js';

const WORKERS = (optString('workers', '1,2,4')).split(',').map(Number);
const ROUTES = opt('routes', 1000);
const CHURN = opt('churn', 2000);
const CHURN_SECONDS = opt('churn-seconds', 5);
const SERVICES = opt('services', 10_000);
const PER = opt('per', 10);
const RELOADS = opt('reloads', 5);
const BENCH = 'workers-ipc';
const SUFFIX = '.DEFAULT-GROUP.public.nacos';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function routes(n: number, extra: boolean): unknown[] {
  const r: unknown[] = [];
  for (let i = 0; i < n; i++) r.push({ name: `r${i}`, match: { path: { prefix: `/s${i}/` } }, backends: [{ service: `chn-${i}${SUFFIX}` }] });
  if (extra) r.push({ name: 'extra', match: { path: { prefix: '/extra' } }, backends: [{ service: `chn-0${SUFFIX}` }] });
  return r;
}

async function lastChangeAt(gw: GatewayProc): Promise<number> {
  const regs = (await (await fetch(`${gw.admin}/api/registries`)).json()) as Array<{ lastChangeAt?: string }>;
  return Math.max(...regs.map((r) => (r.lastChangeAt ? Date.parse(r.lastChangeAt) : 0)));
}

/** Barriers back to back (gap ms) until stop() is called; each: wall-clock issue and return. */
function barrierLoop(gw: GatewayProc, gapMs: number): { stop(): Promise<Array<{ at: number; back: number; answered: number }>> } {
  const out: Array<{ at: number; back: number; answered: number }> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      const answered = await workersBarrier(gw);
      out.push({ at, back: Date.now(), answered });
      await sleep(gapMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return out;
    },
  };
}

/** Wall-clock time every worker held everything the primary had applied by `last`: one barrier issued after it. */
async function allWorkersAt(gw: GatewayProc, last: number, probes: Array<{ at: number; back: number }>): Promise<number> {
  const p = probes.find((x) => x.at >= last);
  if (p) return p.back;
  await workersBarrier(gw);
  return Date.now();
}

interface Row {
  n: number;
  reloadMs: number;
  offered: number;
  primaryRate: number;
  workerRate: number;
  lagQuiet: number;
  lagP50: number;
  lagMax: number;
  workerApplied: number;
  primaryApplied: number;
  bulkPrimaryMs: number;
  bulkAllMs: number;
  load: number;
}

async function one(n: number): Promise<Row> {
  const load = loadAvg();
  const nacos = await startNacosDoubleProcess();
  await nacos.call('fill', { prefix: 'chn-', from: 0, count: ROUTES, per: PER });
  const gw = await startGateway(`w${n}`, { registries: [{ name: 'nacos', type: 'nacos', servers: [nacos.httpAddress], protocol: 'grpc', serviceListIntervalMs: 500 }], routes: routes(ROUTES, false) }, { workers: n });
  try {
    while ((await endpointCount(gw, 'chn-')) < ROUTES * PER) await sleep(200);
    await sleep(1000);

    // (c) reload fan-out
    const base = JSON.parse(readFileSync(gw.configFile, 'utf8')) as Record<string, unknown>;
    const reloads: number[] = [];
    for (let i = 0; i <= RELOADS; i++) {
      writeFileSync(gw.configFile, JSON.stringify({ ...base, routes: routes(ROUTES, i % 2 === 0) }));
      const t0 = performance.now();
      const res = await fetch(`${gw.admin}/api/reload`, { method: 'POST' });
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`reload answered ${res.status}: ${await res.text()}`);
      if (i > 0) reloads.push(ms); // the first one warms up
    }
    const reloadMs = median(reloads);
    console.log(`workers ${n}: reload of ${ROUTES} routes to every worker: median ${reloadMs.toFixed(0)} ms (${reloads.map((x) => x.toFixed(0)).join(', ')}) load ${loadAvg()}`);

    // (a) churn
    const quiet: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t = performance.now();
      await workersBarrier(gw);
      quiet.push(performance.now() - t);
    }
    const v0 = await versionSum(gw, 'chn-');
    const w0 = n > 1 ? await workerViews(gw, 'chn-') : [];
    const probes = barrierLoop(gw, 20);
    const tStart = Date.now();
    const sent = await nacos.call('churn', { rate: CHURN, seconds: CHURN_SECONDS, prefix: 'chn-', count: ROUTES, per: PER });
    // The primary may still be applying pushes when the double is done: wait until its table stops changing.
    for (let v = await versionSum(gw, 'chn-'); ; ) {
      await sleep(500);
      const v2 = await versionSum(gw, 'chn-');
      if (v2 === v) break;
      v = v2;
    }
    const last = await lastChangeAt(gw);
    const list = await probes.stop();
    const tAll = await allWorkersAt(gw, last, list);
    const primaryApplied = (await versionSum(gw, 'chn-')) - v0;
    const w1 = n > 1 ? await workerViews(gw, 'chn-') : [];
    const workerApplied = n > 1 ? Math.min(...w1.map((w) => w.versions - (w0.find((x) => x.pid === w.pid)?.versions ?? 0))) : primaryApplied;
    const endpointsOk = n > 1 ? w1.every((w) => w.endpoints === ROUTES * PER) : true;
    const during = list.filter((p) => p.at >= tStart && p.at <= last).map((p) => p.back - p.at);
    const lag = during.length ? latencyStats(during, 1) : { p50: NaN, max: NaN, n: 0 };
    const primaryRate = primaryApplied / ((last - tStart) / 1000);
    // The primary sends the changes of one moment as one message holding each
    // service's latest list, so a worker may apply fewer (coalesced) updates
    // than the primary did; what must arrive is the same final state, checked
    // by the endpoint counts. The rate is the primary's changes over the time
    // until every worker holds their result.
    const workerRate = endpointsOk ? primaryApplied / ((tAll - tStart) / 1000) : NaN;
    console.log(
      `workers ${n}: churn offered ${CHURN}/s for ${CHURN_SECONDS} s (${sent.sent} sent): primary applied ${primaryApplied} (${primaryRate.toFixed(0)}/s), in every worker by ${((tAll - tStart) / 1000).toFixed(2)} s (${workerRate.toFixed(0)}/s to every worker${n > 1 ? `; ${workerApplied} updates in the slowest worker: the rest coalesced` : ''})` +
        `${n > 1 ? `, worker endpoint counts ${endpointsOk ? 'match' : 'DIFFER'}` : ''}; delivery lag (barrier round trip) during churn p50 ${lag.p50} ms, max ${lag.max} ms (n=${lag.n}), quiet ${median(quiet).toFixed(1)} ms; load ${loadAvg()}`,
    );

    // (b) 100,000 endpoints
    const probes2 = barrierLoop(gw, 20);
    const tFill = Date.now();
    await nacos.call('fill', { prefix: 'svc-', from: 0, count: SERVICES, per: PER });
    while ((await endpointCount(gw, 'svc-')) < SERVICES * PER) await sleep(100);
    await sleep(300);
    const lastBulk = await lastChangeAt(gw);
    const list2 = await probes2.stop();
    const tAll2 = await allWorkersAt(gw, lastBulk, list2);
    const bulkPrimaryMs = lastBulk - tFill;
    const bulkAllMs = tAll2 - tFill;
    console.log(`workers ${n}: ${SERVICES * PER} endpoints (${SERVICES} services): primary holds all after ${bulkPrimaryMs} ms, every worker after ${bulkAllMs} ms (+${bulkAllMs - bulkPrimaryMs} ms); load ${loadAvg()}`);
    return { n, reloadMs, offered: CHURN, primaryRate, workerRate, lagQuiet: median(quiet), lagP50: lag.p50, lagMax: lag.max, workerApplied, primaryApplied, bulkPrimaryMs, bulkAllMs, load };
  } finally {
    await gw.stop();
    nacos.stop();
  }
}

async function main(): Promise<void> {
  if (!flag('no-build')) {
    const b = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (b.status !== 0) process.stdout.write(`npm run build exited ${b.status}; continuing with the emitted JS\n`);
  }
  if (!existsSync(join(ROOT, 'dist/src/cli.js'))) throw new Error('dist/src/cli.js missing: run npm run build');
  console.log(`node ${process.version}; workers ${WORKERS.join(', ')}; ${ROUTES} routes; load average at start ${loadAvg()}`);
  const rows: Row[] = [];
  for (const n of WORKERS) rows.push(await one(n));
  const b = rows.find((r) => r.n === 1) ?? rows[0]!;
  console.log('\n| workers | reload to all (ms) | changes/s offered | applied/s primary | to every worker /s | lag p50 / max (ms), quiet | 100k endpoints: primary / every worker (ms) | load |');
  console.log('| ---: | ---: | ---: | ---: | ---: | --- | --- | ---: |');
  for (const r of rows) {
    console.log(`| ${r.n} | ${r.reloadMs.toFixed(0)} | ${r.offered} | ${r.primaryRate.toFixed(0)} | ${r.workerRate.toFixed(0)} | ${r.lagP50} / ${r.lagMax}, ${r.lagQuiet.toFixed(1)} | ${r.bulkPrimaryMs} / ${r.bulkAllMs} | ${r.load} |`);
    if (r === b) continue;
    report({ bench: BENCH, metric: `reload fan-out ms, ${r.n} workers (vs 1)`, value: r.reloadMs, baseline: b.reloadMs, unit: 'ms' });
    report({ bench: BENCH, metric: `changes/s to every worker, ${r.n} workers (vs 1 process)`, value: r.workerRate, baseline: b.workerRate, unit: '/s', note: `offered ${r.offered}/s` });
    report({ bench: BENCH, metric: `100k endpoints to every worker ms, ${r.n} workers (vs 1)`, value: r.bulkAllMs, baseline: b.bulkAllMs, unit: 'ms' });
  }
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
