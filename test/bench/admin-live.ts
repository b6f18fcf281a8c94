// The console's live view at scale: what `/api/services?live=1` (each
// worker's own instance state, which the console polls every 1-2 s with
// `--workers N`) costs the requests the workers serve meanwhile.
//
//   npx tsx test/bench/admin-live.ts [--services 10000] [--per 10] [--workers 2] [--rate 1000]
//        [--seconds 10] [--rounds 2] [--dist DIR] [--no-build]
//   --dist DIR: the gateway built in DIR (a worktree with its own dist/), for before/after
//
// One gateway (dist/, or DIR/dist for another build; --workers N, access log
// off) fed by the Nacos gRPC double with <services> x <per> instances, and a
// route `hot` to a fast node:http upstream. A fixed request rate
// (lib/proxy-paced.ts, open loop, 32 connections) goes to /hot/ twice per
// round: once quiet, once while the whole live view is read back to back
// with a 1 s pause between reads (how the console polled before it asked for
// pages; the first answer is parsed and checked whole, later ones only read),
// and once while a page is read the same way, as the console's services page
// does now (`?limit=200` from the primary, then `?live=1&limit=200`; the first
// page is checked: 200 services from every worker), and once while a search
// is read the same way (`?q=192.0.2.1&limit=200`, and its live page: a term
// no service has, so every endpoint's address and metadata are looked at, as
// while someone types an address into the services page). The order rotates
// per round. Reported: the request p99 each way and how long an answer took.
// With --workers 1 there is no live view: the gateway (one process, the one
// that serves the requests) is read for the whole list, a page and a search.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { flag, opt, optString } from './lib/args.js';
import { endpointCount, startGateway } from './lib/gateway-proc.js';
import { startNacosDoubleProcess } from './lib/nacos-double.js';
import { runPaced, type PacedResult } from './lib/paced.js';
import { freePort, HELLO_UPSTREAM_JS, ROOT, startProcess, stopAll, waitForPort } from './lib/procs.js';
import { loadAvg, median, report } from './lib/report.js';

const SERVICES = opt('services', 10_000);
const PER = opt('per', 10);
const WORKERS = opt('workers', 2);
const RATE = opt('rate', 1000);
const SECONDS = opt('seconds', 10);
const ROUNDS = opt('rounds', 2);
const DIST = optString('dist');
const BENCH = 'admin-live';
let stopNacos = (): void => undefined;
const SUFFIX = '.DEFAULT-GROUP.public.nacos';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


async function main(): Promise<void> {
  if (!flag('no-build') && !DIST) spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
  console.log(`node ${process.version}; ${SERVICES} services x ${PER} instances; --workers ${WORKERS}; ${DIST ? `build in ${DIST}` : 'this build'}; load average at start ${loadAvg()}`);
  const nacos = await startNacosDoubleProcess();
  stopNacos = () => nacos.stop();
  const upPort = await freePort();
  const up = startProcess('upstream', process.execPath, ['-e', HELLO_UPSTREAM_JS, String(upPort)], undefined);
  await waitForPort(upPort, 'upstream', 30_000, up);
  const gw = await startGateway(
    'gw-live',
    {
      registries: [{ name: 'nacos', type: 'nacos', servers: [nacos.httpAddress], protocol: 'grpc', serviceListIntervalMs: 1000 }],
      routes: [{ name: 'hot', match: { path: { prefix: '/hot' } }, backends: [{ service: `hot${SUFFIX}` }] }],
    },
    { workers: WORKERS, dist: DIST ? join(DIST, 'dist') : undefined },
  );
  await nacos.call('fill', { prefix: 'svc-', from: 0, count: SERVICES, per: PER });
  await nacos.call('set', { name: 'hot', instances: [{ ip: '127.0.0.1', port: upPort }] });
  while ((await endpointCount(gw, 'svc-')) < SERVICES * PER) await sleep(500);
  for (let i = 0; ; i++) {
    const r = await fetch(`${gw.url}/hot/`).catch(() => undefined);
    if (r?.status === 200) break;
    if (i > 100) throw new Error('the hot route never answered 200');
    await sleep(100);
  }
  await sleep(2000);

  const results: Record<'quiet' | 'live' | 'page' | 'search', PacedResult[]> = { quiet: [], live: [], page: [], search: [] };
  const answers: number[] = [];
  const pageAnswers: number[] = [];
  const searchAnswers: number[] = [];
  const live = WORKERS > 1;
  /** A page (or a search) as the services page reads it: from the primary, then (with workers) each worker's live state. */
  const readPage = async (query: string, times: number[], expect: number): Promise<void> => {
    const t0 = performance.now();
    const plain = await fetch(`${gw.admin}/api/services?${query}`);
    if (times.length === 0) {
      const list = (await plain.json()) as unknown[];
      if (list.length !== expect) throw new Error(`?${query} gave ${list.length} services, not ${expect}`);
    } else await plain.arrayBuffer();
    if (live) {
      const res = await fetch(`${gw.admin}/api/services?live=1&${query}`);
      if (times.length === 0) {
        const body = (await res.json()) as { workers: Array<{ services: unknown[] }> };
        if (body.workers.length !== WORKERS || body.workers.some((w) => w.services.length !== expect)) throw new Error(`a live ?${query} came back wrong`);
      } else await res.arrayBuffer();
    }
    times.push(performance.now() - t0);
  };
  const MODES = ['quiet', 'live', 'page', 'search'] as const;
  for (let round = 1; round <= ROUNDS; round++) {
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(k + round - 1) % MODES.length]!;
      let polling = mode !== 'quiet';
      const poller = (async () => {
        while (polling && (mode === 'page' || mode === 'search')) {
          if (mode === 'page') await readPage('limit=200', pageAnswers, 200);
          else await readPage('q=192.0.2.1&limit=200', searchAnswers, 0);
          await sleep(1000);
        }
        while (polling) {
          const t0 = performance.now();
          const res = await fetch(`${gw.admin}/api/services${live ? '?live=1' : ''}`);
          // Parsed once, to check it is whole; later answers are only read (parsing 60 MB would take this machine's CPU from the gateway).
          if (answers.length === 0) {
            const body = (await res.json()) as { workers: Array<{ services: unknown[] }> } | unknown[];
            const counts = Array.isArray(body) ? [body.length] : body.workers.map((w) => w.services.length);
            if (counts.length !== (live ? WORKERS : 1) || counts.some((n) => n < SERVICES)) throw new Error('a live view came back incomplete');
          } else await res.arrayBuffer();
          answers.push(performance.now() - t0);
          await sleep(1000);
        }
      })();
      const p = await runPaced(`${gw.url}/hot/`, { rate: RATE, seconds: SECONDS, warmup: 2 });
      polling = false;
      await poller;
      results[mode].push(p);
      console.log(`round ${round} ${mode.padEnd(6)} @${p.achievedRate} req/s  p50 ${p.service.p50.toFixed(3)} ms  p99 ${p.service.p99.toFixed(3)} ms  p99.9 ${p.service.p999.toFixed(3)} ms  errors ${p.errors}  load ${loadAvg()}`);
    }
  }
  const q99 = median(results.quiet.map((r) => r.service.p99));
  const l99 = median(results.live.map((r) => r.service.p99));
  const p99 = median(results.page.map((r) => r.service.p99));
  const s99 = median(results.search.map((r) => r.service.p99));
  const a50 = median(answers);
  const pa50 = median(pageAnswers);
  const sa50 = median(searchAnswers);
  console.log(
    `${SERVICES * PER} endpoints, --workers ${WORKERS}, ${RATE} req/s (medians of ${ROUNDS} rounds): p99 ${q99.toFixed(3)} ms quiet, ${l99.toFixed(3)} ms while the whole ${live ? 'live view' : 'list'} is read every second, ${p99.toFixed(3)} ms while a page of 200 is, ${s99.toFixed(3)} ms while a search is; ` +
      `a whole answer took ${a50.toFixed(0)} ms (median of ${answers.length}), a page ${pa50.toFixed(1)} ms (median of ${pageAnswers.length}), a search ${sa50.toFixed(1)} ms (median of ${searchAnswers.length})`,
  );
  report({ bench: BENCH, metric: `p99 ms at ${RATE} req/s, a search read every second (vs quiet), ${WORKERS} workers`, value: s99, baseline: q99, unit: 'ms' });
  report({ bench: BENCH, metric: `search answer ms (q matching nothing, plain${live ? ' and live' : ''}), ${SERVICES * PER} endpoints, ${WORKERS} workers`, value: sa50, unit: 'ms' });
  report({ bench: BENCH, metric: `p99 ms at ${RATE} req/s, ${live ? 'live view' : 'whole list'} read every second (vs quiet), ${WORKERS} workers`, value: l99, baseline: q99, unit: 'ms' });
  report({ bench: BENCH, metric: `p99 ms at ${RATE} req/s, a page read every second (vs quiet), ${WORKERS} workers`, value: p99, baseline: q99, unit: 'ms' });
  report({ bench: BENCH, metric: `${live ? 'live view' : 'whole list'} answer ms, ${SERVICES * PER} endpoints, ${WORKERS} workers`, value: a50, unit: 'ms' });
  report({ bench: BENCH, metric: `page answer ms (plain${live ? ' and live' : ''}, 200 services), ${SERVICES * PER} endpoints, ${WORKERS} workers`, value: pa50, unit: 'ms' });
  await gw.stop();
  nacos.stop();
}

main()
  .catch((e: Error) => {
    console.error(e.stack ?? e.message);
    process.exitCode = 1;
  })
  .finally(() => {
    stopNacos();
    stopAll();
  });
