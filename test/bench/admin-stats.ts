// The console's live figures at many routes: what reading the request
// counters every second (the overview's charts: `/api/stats`, sampled while
// the console is open) costs the requests served meanwhile.
//
//   npx tsx test/bench/admin-stats.ts [--routes 2000] [--workers 1,2] [--rate 1000]
//        [--seconds 8] [--rounds 2] [--dist DIR] [--no-build]
//   --dist DIR: the gateway built in DIR (a worktree with its own dist/), for before/after
//
// Per worker count: one gateway (dist/, access log off) with <routes> routes
// to one fast node:http upstream, each route sent two requests first so every
// route has its label sets in the request metrics, as a gateway that has run
// a while does. A fixed request rate (lib/proxy-paced.ts, open loop, 32
// connections) goes to one route, once quiet and once while `/api/stats` is
// read every second (the order alternates per round). The sampler keeps
// sampling for a minute after the last read, so each quiet run waits until it
// has stopped. Reported: the request p99 both ways.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { flag, opt, optString } from './lib/args.js';
import { startGateway } from './lib/gateway-proc.js';
import { runPaced, type PacedResult } from './lib/paced.js';
import { freePort, HELLO_UPSTREAM_JS, ROOT, startProcess, stopAll, waitForPort } from './lib/procs.js';
import { loadAvg, median, report } from './lib/report.js';

const ROUTES = opt('routes', 2000);
const WORKERS = (optString('workers') ?? '1,2').split(',').map(Number);
const RATE = opt('rate', 1000);
const SECONDS = opt('seconds', 8);
const ROUNDS = opt('rounds', 2);
const DIST = optString('dist');
const BENCH = 'admin-stats';
/** stats.ts IDLE_STOP_MS and a margin: the sampler has stopped by then. */
const SAMPLER_IDLE_MS = 62_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function warm(url: string): Promise<void> {
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < ROUTES; i += 16) {
      await Promise.all(Array.from({ length: Math.min(16, ROUTES - i) }, (_, k) => fetch(`${url}/r${i + k}/x`).then((r) => r.arrayBuffer())));
    }
  }
}

async function main(): Promise<void> {
  if (!flag('no-build') && !DIST) spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
  console.log(`node ${process.version}; ${ROUTES} routes; --workers ${WORKERS.join(', ')}; ${DIST ? `build in ${DIST}` : 'this build'}; load average at start ${loadAvg()}`);
  const upPort = await freePort();
  const up = startProcess('upstream', process.execPath, ['-e', HELLO_UPSTREAM_JS, String(upPort)], undefined);
  await waitForPort(upPort, 'upstream', 30_000, up);
  const routes = Array.from({ length: ROUTES }, (_, i) => ({ name: `r${i}`, match: { path: { prefix: `/r${i}/` } }, backends: [{ service: 'up.static' }] }));
  for (const workers of WORKERS) {
    const gw = await startGateway(`gw-stats-${workers}`, { registries: [{ name: 'up', type: 'static', endpoints: [`127.0.0.1:${upPort}`] }], routes }, { workers, dist: DIST ? join(DIST, 'dist') : undefined });
    await warm(gw.url);
    const results: Record<'quiet' | 'stats', PacedResult[]> = { quiet: [], stats: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of round % 2 ? (['quiet', 'stats'] as const) : (['stats', 'quiet'] as const)) {
        let polling = mode === 'stats';
        const poller = (async () => {
          while (polling) {
            await (await fetch(`${gw.admin}/api/stats?since=0`)).arrayBuffer();
            await sleep(1000);
          }
        })();
        if (polling) await sleep(2000); // the sampler running
        const p = await runPaced(`${gw.url}/r7/x`, { rate: RATE, seconds: SECONDS, warmup: 1 });
        polling = false;
        await poller;
        results[mode].push(p);
        console.log(`--workers ${workers} round ${round} ${mode.padEnd(5)} @${p.achievedRate} req/s  p50 ${p.service.p50.toFixed(3)} ms  p99 ${p.service.p99.toFixed(3)} ms  p99.9 ${p.service.p999.toFixed(3)} ms  errors ${p.errors}  load ${loadAvg()}`);
        if (mode === 'stats') await sleep(SAMPLER_IDLE_MS);
      }
    }
    const q99 = median(results.quiet.map((r) => r.service.p99));
    const s99 = median(results.stats.map((r) => r.service.p99));
    console.log(`${ROUTES} routes, --workers ${workers}, ${RATE} req/s (medians of ${ROUNDS} rounds): p99 ${q99.toFixed(3)} ms quiet, ${s99.toFixed(3)} ms while the console's live figures are read every second`);
    report({ bench: BENCH, metric: `p99 ms at ${RATE} req/s, ${ROUTES} routes, --workers ${workers}, live figures read every second (vs quiet)`, value: s99, baseline: q99, unit: 'ms' });
    await gw.stop();
  }
}

main()
  .catch((e: Error) => {
    console.error(e.stack ?? e.message);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
