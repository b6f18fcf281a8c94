// WAF benchmark: what the CRS WAF costs and what it catches, in one run.
//
//   npx tsx test/bench/waf.ts [--rounds 3] [--seconds 8] [--warmup 3] [--connections 32]
//                             [--paranoia 1] [--no-build] [--no-pin] [--only cost|detection]
//                             [--base DIR] [--vary]
//
// Cost: two meshgate processes as users start them, started anew every round (`node dist/src/cli.js
// start --workers 1`, access log off), identical but for one global
// `{ type: waf, mode: block, paranoia: N }` filter, both proxying to the same
// node:http upstream. wrk (1 thread, the same connection count for both)
// measures each in turn, alternating which goes first in every round, for:
//   - get:  GET /api/items?page=2&sort=-created&q=blue+running+shoes&category=footwear
//   - post: POST /api/orders with a 2 KiB JSON body
// with a browser's User-Agent and Accept. The table shows medians over rounds:
// requests/s, the on/off ratio, p50 and p99, and CPU time per request of the
// gateway process (from /proc). On a 2-core machine the gateways run on CPU 1
// and wrk and the upstream on CPU 0 (taskset) unless --no-pin, so the
// generator never competes with the process it measures.
//
// --vary: every request carries values no request before it had (a counter
// from a random start in the GET's page and q, and in the POST's order id,
// SKUs, customer name, e-mail, street and note), as real traffic does, where
// the default repeats one request and the WAF's per-value caches answer
// most of it.
//
// --base DIR: a third gateway, WAF on, run from another build (DIR/dist/src/cli.js:
// a worktree of the commit before, built), measured in the same rounds; its
// rows read "on (base)", with their ratio to the same WAF-off runs.
//
// BENCH_GATEWAY_NODE_ARGS: more node flags for every gateway, e.g.
// `--import ./test/bench/lib/waf-phase-timer.mjs` (the WAF's phases timed
// inside the gateway) with BENCH_STDOUT_DIR to keep what they print.
//
// Detection (against the WAF-on gateway): CRS's own go-ftw regression tests
// for 930-944 at the paranoia level (test/waf/ftw.ts), libinjection's SQLi and
// XSS lists as a query value and as a form body, and the false-positive sets:
// libinjection's false_positives.txt and the benign corpus (test/waf/benign).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatCorpusReport, runCorpus } from '../waf/corpus.js';
import { freePort } from '../helpers/upstream.js';
import { parseWrk, type MeasuredRun } from './lib/wrk.js';
import { formatFtwReport, runFtw } from '../waf/ftw.js';
import { cpuSeconds, GATEWAY_NODE_ARGS, NODE_FLAGS, ROOT, stopAll, stopProcess, runProcess as run, startProcess as start, waitForPort } from './lib/procs.js';
import { argv, flag, opt, optString, runOptions } from './lib/args.js';
import { report } from './lib/report.js';

const only = optString('only');
const o = { ...runOptions(), paranoia: opt('paranoia', 1) };
const BASE = optString('base');
/** --vary: new values in every request (the query's page and q; the order's ids, names, addresses), as real traffic has, so no cache of the WAF's sees a value twice. */
const VARY = flag('vary');
type TargetName = 'waf-off' | 'waf-on' | 'waf-on-base';

/** The pid of the gateway itself (taskset execs it, so it is the child's pid). */
function gatewayPid(child: ChildProcess): number {
  return child.pid!;
}

type Result = MeasuredRun;

const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';

/** A realistic 2 KiB JSON order; with --vary, `{n}` in its ids, names and addresses (wrkScript puts a new number there per request). */
function orderJson(): string {
  const n = VARY ? '{n}' : '';
  const items = [];
  for (let i = 0; items.length < 14; i++) {
    items.push({ sku: `SKU-${1000 + i}${n}`, name: `Running shoe model ${i}`, qty: (i % 3) + 1, price: 59.9 + i, color: ['blue', 'black', 'white'][i % 3] });
  }
  const body = {
    orderId: VARY ? '9f1c2d3e-4b5a-6978-8a9b-{n}' : '9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b',
    customer: { name: `Jane Doe${n}`, email: `jane.doe${n}@example.com`, phone: '+1 555 0100' },
    shipping: { street: `12${n} Main Street`, city: 'Springfield', zip: '12345', country: 'US' },
    items,
    note: `Please leave the parcel at the front door.${n}`,
  };
  let s = JSON.stringify(body);
  while (Buffer.byteLength(s) < 2048) {
    body.note += ' Thanks!';
    s = JSON.stringify(body);
  }
  return s;
}

const PATHS = { get: '/api/items?page=2&sort=-created&q=blue+running+shoes&category=footwear', post: '/api/orders' } as const;
/** With --vary: the same requests, `{n}` where each gets a new number. */
const VARY_PATHS = { get: '/api/items?page={n}&sort=-created&q=blue+running+shoes+{n}&category=footwear', post: PATHS.post } as const;

function wrkScript(dir: string, kind: 'get' | 'post'): string {
  const file = join(dir, `${kind}.lua`);
  const lines = [`wrk.headers["User-Agent"] = "${UA}"`, 'wrk.headers["Accept"] = "application/json, text/plain, */*"', 'wrk.headers["Accept-Language"] = "en-US,en;q=0.9"'];
  if (kind === 'post') {
    lines.push('wrk.method = "POST"', `wrk.body = [[${orderJson()}]]`, 'wrk.headers["Content-Type"] = "application/json"');
  }
  if (VARY) {
    // `{n}` in the path and the body becomes a number no earlier request had
    // (the warm-up run is another wrk process, hence the random start).
    lines.push(
      'math.randomseed(os.time())',
      'local n = math.random(1, 1000000000) * 1000',
      `local path = "${VARY_PATHS[kind]}"`,
      'local body = wrk.body',
      'request = function()',
      '  n = n + 1',
      '  local s = tostring(n)',
      '  return wrk.format(nil, (path:gsub("{n}", s)), nil, body and (body:gsub("{n}", s)))',
      'end',
    );
  }
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}



async function measure(url: string, script: string, pid: number, cpu: number | undefined): Promise<Result> {
  await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.warmup}s`, '-s', script, url], cpu);
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  const r = parseWrk(await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', '-s', script, url], cpu));
  const served = r.rps * ((performance.now() - t0) / 1000);
  return { ...r, cpuUsPerReq: ((cpuSeconds(pid) - c0) * 1e6) / served };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

function gatewayConfig(port: number, admin: number, upstream: number, waf: boolean): string {
  return `listeners: [{ name: public, address: "127.0.0.1:${port}" }]
admin: { address: "127.0.0.1:${admin}" }
log: { level: warn, access: false }
registries: [{ name: up, type: static, endpoints: ["127.0.0.1:${upstream}"] }]
${waf ? `filters: [{ type: waf, mode: block, paranoia: ${o.paranoia} }]` : 'filters: []'}
routes:
  - { name: api, match: { path: { prefix: / } }, backends: [{ service: up.static }] }
`;
}

async function main(): Promise<void> {
  if (!flag('no-build')) spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-waf-bench-'));
  try {
    const genCpu = o.pin ? 0 : undefined;
    const gwCpu = o.pin ? 1 : undefined;
    const upPort = await freePort();
    const upSrc = `require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('{"ok":true}'))}).listen(${upPort},'127.0.0.1')`;
    start('upstream', process.execPath, ['-e', upSrc], genCpu);
    await waitForPort(upPort, 'upstream');
    type Target = { name: TargetName; port: number; child: ChildProcess };
    const kinds: { name: TargetName; waf: boolean; cli: string }[] = [
      { name: 'waf-off', waf: false, cli: 'dist/src/cli.js' },
      { name: 'waf-on', waf: true, cli: 'dist/src/cli.js' },
    ];
    if (BASE !== undefined) kinds.push({ name: 'waf-on-base', waf: true, cli: join(resolve(BASE), 'dist/src/cli.js') });
    const startTargets = async (): Promise<Target[]> => {
      const out: Target[] = [];
      for (const k of kinds) {
        const port = await freePort();
        const file = join(dir, `${k.name}.yaml`);
        writeFileSync(file, gatewayConfig(port, await freePort(), upPort, k.waf));
        const child = start(k.name, process.execPath, [...NODE_FLAGS, ...GATEWAY_NODE_ARGS, k.cli, 'start', '--config', file, '--workers', '1'], gwCpu);
        await waitForPort(port, k.name);
        out.push({ name: k.name, port, child });
      }
      return out;
    };
    const stopTargets = async (ts: Target[]): Promise<void> => {
      await Promise.all(ts.map((t) => stopProcess(t.child)));
    };
    let targets = await startTargets();
    const lines: string[] = [];
    const say = (s: string): void => {
      lines.push(s);
      process.stdout.write(`${s}\n`);
    };
    say(`# WAF benchmark (${new Date().toISOString()}), paranoia ${o.paranoia}, meshgate --workers 1, access log off${VARY ? ', new values in every request (--vary)' : ''}`);
    if (only !== 'detection') {
      const scripts = { get: wrkScript(dir, 'get'), post: wrkScript(dir, 'post') };
      const res: Record<string, Record<string, Result[]>> = { get: { 'waf-off': [], 'waf-on': [], 'waf-on-base': [] }, post: { 'waf-off': [], 'waf-on': [], 'waf-on-base': [] } };
      for (let round = 0; round < o.rounds; round++) {
        // Fresh processes every round: in one run the same build, started twice, differed by 10 % in CPU per request (A/A, BENCHMARKS.md).
        if (round > 0) {
          await stopTargets(targets);
          targets = await startTargets();
        }
        for (const kind of ['get', 'post'] as const) {
          const order = round % 2 === 0 ? targets : [...targets].reverse();
          for (const t of order) {
            const r = await measure(`http://127.0.0.1:${t.port}${PATHS[kind]}`, scripts[kind], gatewayPid(t.child), genCpu);
            if (r.errors > 0) throw new Error(`${t.name} ${kind}: ${r.errors} errors or non-2xx answers (a benign request was blocked?)`);
            res[kind]![t.name]!.push(r);
            process.stderr.write(`round ${round + 1} ${kind} ${t.name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms ${r.cpuUsPerReq.toFixed(1)} us/req\n`);
          }
        }
      }
      say('');
      say(`Cost: wrk -t1 -c${o.connections}, ${o.seconds} s per run, ${o.rounds} rounds (medians)${o.pin ? ', gateways pinned to CPU 1, wrk and upstream to CPU 0' : ''}`);
      say('');
      say('| request | WAF | req/s | ratio on/off | p50 ms | p99 ms | added p99 ms | CPU µs/req |');
      say('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
      for (const kind of ['get', 'post'] as const) {
        const off = res[kind]!['waf-off']!;
        const on = res[kind]!['waf-on']!;
        const offRps = median(off.map((r) => r.rps));
        const onRps = median(on.map((r) => r.rps));
        const offP99 = median(off.map((r) => r.p99));
        const onP99 = median(on.map((r) => r.p99));
        const ratios = on.map((r, i) => r.rps / off[i]!.rps);
        const label = (kind === 'get' ? 'GET with a 4-field query' : 'POST 2 KiB JSON') + (VARY ? ', new values' : '');
        say(`| ${label} | off | ${offRps.toFixed(0)} | | ${median(off.map((r) => r.p50)).toFixed(2)} | ${offP99.toFixed(2)} | | ${median(off.map((r) => r.cpuUsPerReq)).toFixed(1)} |`);
        report({ bench: 'waf', metric: `${label} req/s, WAF on (vs off)`, value: onRps, baseline: offRps, ratio: median(ratios), unit: 'req/s', note: 'ratio: median of per-round ratios' });
        report({ bench: 'waf', metric: `${label} CPU us/req, WAF on (vs off)`, value: median(on.map((r) => r.cpuUsPerReq)), baseline: median(off.map((r) => r.cpuUsPerReq)), unit: 'us' });
        say(`| ${label} | on | ${onRps.toFixed(0)} | ${median(ratios).toFixed(2)} (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')}) | ${median(on.map((r) => r.p50)).toFixed(2)} | ${onP99.toFixed(2)} | ${(onP99 - offP99).toFixed(2)} | ${median(on.map((r) => r.cpuUsPerReq)).toFixed(1)} |`);
        const base = res[kind]!['waf-on-base']!;
        if (base.length !== 0) {
          const bRatios = base.map((r, i) => r.rps / off[i]!.rps);
          const bP99 = median(base.map((r) => r.p99));
          say(`| ${label} | on (base) | ${median(base.map((r) => r.rps)).toFixed(0)} | ${median(bRatios).toFixed(2)} (rounds: ${bRatios.map((x) => x.toFixed(2)).join(', ')}) | ${median(base.map((r) => r.p50)).toFixed(2)} | ${bP99.toFixed(2)} | ${(bP99 - offP99).toFixed(2)} | ${median(base.map((r) => r.cpuUsPerReq)).toFixed(1)} |`);
        }
      }
    }
    if (only !== 'cost') {
      say('');
      const ftw = await runFtw({ host: '127.0.0.1', port: targets[1]!.port, families: ['930', '931', '932', '933', '934', '941', '942', '943', '944'], maxParanoia: o.paranoia, concurrency: 8 });
      say('```');
      say(formatFtwReport(ftw, { missedLimit: 0 }));
      report({ bench: 'waf', metric: `CRS regression stages blocked, paranoia ${o.paranoia} (of positives)`, value: ftw.total.blocked, baseline: ftw.total.positive, unit: 'stages' });
      say('```');
      const corpus = await runCorpus({ host: '127.0.0.1', port: targets[1]!.port, concurrency: 8 });
      say('```');
      say(formatCorpusReport(corpus, { blockedLimit: 15 }));
      say('```');
    }
    const out = argv.indexOf('--out');
    if (out >= 0) writeFileSync(argv[out + 1]!, lines.join('\n') + '\n');
  } finally {
    stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
