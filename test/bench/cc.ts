// CC benchmark: what a CC rule costs per request, what the Redis store adds,
// and the gateway's memory under a flood of distinct client IPs.
//
//   npx tsx test/bench/cc.ts [--rounds 3] [--seconds 8] [--warmup 3] [--connections 32]
//                            [--flood 1000000] [--flood-heap-mb N] [--dist] [--no-pin] [--workers] [--only micro|cost|flood] [--out FILE]
//
// Micro: the cc filter's check in this process, one client and 50,000 in turn.
//
// Cost: meshgate processes as users start them (`start --workers 1`, access
// log off; from src through tsx, or dist/ with --dist after `npm run build`),
// identical but for the route's filter, all proxying to one node:http
// upstream:
//   - plain:     no filter;
//   - cc-memory: { type: cc, rules: [{ key: ip, qps, qpm }] } with limits the
//                load never reaches (the check runs on every request, nothing
//                is refused);
//   - cc-redis:  the same rule with `shared: true` and store: redis (the real
//                redis-server, test/helpers/redis.ts): one EVALSHA per request;
//   - with --workers: plain and cc-memory again with `--workers 2` (all
//                gateway processes on the gateway CPU), where each check is
//                an IPC round trip to the primary; the ratio is to plain
//                --workers 2 and CPU counts the primary and both workers.
// wrk (1 thread, the same connections for all) measures each in turn,
// rotating the order every round. The table shows medians over rounds:
// requests/s, the ratio to plain, p50, p99, the p99 added, and the gateway's
// CPU time per request (from /proc). On a 2-core machine the gateways run on
// CPU 1 and wrk, the upstream and Redis on CPU 0 (taskset) unless --no-pin.
//
// Flood: a gateway whose listener trusts X-Forwarded-For from 127.0.0.1 and a
// cc rule keyed by IP (the contract's { qps: 50, qpm: 1000, blockSeconds: 300 },
// default maxKeys 100,000); wrk sends each request from a new client address
// (10.0.0.1, 10.0.0.2, ...) as fast as it can until --flood addresses were
// sent. The gateway's RSS is sampled every 250 ms; the table shows it before,
// its peak, and the identities the rule holds at the end.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import type { Exchange } from '../../src/exchange/exchange.js';
import { compileFilters } from '../../src/filters/index.js';
import { Metrics } from '../../src/observability/metrics.js';
import { MemoryStore } from '../../src/store/memory.js';
import { startRedis } from '../helpers/redis.js';
import { freePort } from '../helpers/upstream.js';
import { report } from './lib/report.js';
import { parseWrk, type MeasuredRun } from './lib/wrk.js';
import { cpuSeconds, NODE_FLAGS, stopAll, rssMb, runProcess as run, startProcess as start, waitForPort } from './lib/procs.js';
import { argv, flag, opt, optString, runOptions } from './lib/args.js';

const only = optString('only');
const o = { ...runOptions(), flood: opt('flood', 1_000_000), floodHeapMb: opt('flood-heap-mb', 0), dist: flag('dist') };

type Result = MeasuredRun;

const PATH = '/api/items?page=2&sort=-created';

async function measure(url: string, pid: number, cpu: number | undefined): Promise<Result> {
  await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.warmup}s`, url], cpu);
  const c0 = cpuSeconds(pid, true);
  const t0 = performance.now();
  const r = parseWrk(await run('wrk', ['-t1', `-c${o.connections}`, `-d${o.seconds}s`, '--latency', url], cpu));
  const served = r.rps * ((performance.now() - t0) / 1000);
  return { ...r, cpuUsPerReq: ((cpuSeconds(pid, true) - c0) * 1e6) / served };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

type Kind = 'plain' | 'cc-memory' | 'cc-redis' | 'flood' | 'plain-w2' | 'cc-memory-w2';

function gatewayConfig(kind: Kind, port: number, admin: number, upstream: number, redisUrl: string): string {
  const rule =
    kind === 'plain' || kind === 'plain-w2'
      ? ''
      : kind === 'flood'
        ? '{ key: ip, qps: 50, qpm: 1000, blockSeconds: 300 }'
        : `{ key: ip, qps: 100000000, qpm: 1000000000${kind === 'cc-redis' ? ', shared: true' : ''} }`;
  return `listeners: [{ name: public, address: "127.0.0.1:${port}"${kind === 'flood' ? ', trustForwarded: true, trustedProxies: ["127.0.0.0/8"]' : ''} }]
admin: { address: "127.0.0.1:${admin}" }
log: { level: warn, access: false }
${kind === 'cc-redis' ? `store: { type: redis, redis: { url: "${redisUrl}", prefix: "bench:" } }` : ''}
registries: [{ name: up, type: static, endpoints: ["127.0.0.1:${upstream}"] }]
routes:
  - name: api
    match: { path: { prefix: / } }
    backends: [{ service: up.static }]
    filters: [${rule ? `{ type: cc, rules: [${rule}] }` : ''}]
`;
}

const FLOOD_LUA = `
local n = tonumber(os.getenv("CC_FLOOD_FROM") or "0")
request = function()
  n = n + 1
  local ip = string.format("%d.%d.%d.%d", 10 + math.floor(n / 16777216), math.floor(n / 65536) % 256, math.floor(n / 256) % 256, n % 256)
  return wrk.format(nil, nil, { ["X-Forwarded-For"] = ip })
end
`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshgate-cc-bench-'));
  const redis = await startRedis();
  try {
    const genCpu = o.pin ? 0 : undefined;
    const gwCpu = o.pin ? 1 : undefined;
    const upPort = await freePort();
    const upSrc = `require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end('{"ok":true}'))}).listen(${upPort},'127.0.0.1')`;
    start('upstream', process.execPath, ['-e', upSrc], genCpu);
    await waitForPort(upPort, 'upstream');
    const cli = [...NODE_FLAGS, ...(o.dist ? ['dist/src/cli.js'] : ['--import', 'tsx', 'src/cli.ts'])];
    const boot = async (kind: Kind) => {
      const workers = kind.endsWith('-w2') ? '2' : '1';
      const port = await freePort();
      const admin = await freePort();
      const file = join(dir, `${kind}.yaml`);
      writeFileSync(file, gatewayConfig(kind, port, admin, upPort, redis.url));
      // --flood-heap-mb N: the flood gateway runs with V8's old space capped, to show the memory it keeps is bounded.
      const heap = kind === 'flood' && o.floodHeapMb > 0 ? [`--max-old-space-size=${o.floodHeapMb}`] : [];
      const child = start(kind, process.execPath, [...heap, ...cli, 'start', '--config', file, '--workers', workers], gwCpu);
      await waitForPort(port, kind);
      return { name: kind, port, admin, child };
    };
    const lines: string[] = [];
    const say = (s: string): void => {
      lines.push(s);
      process.stdout.write(`${s}\n`);
    };
    say(`# CC benchmark (${new Date().toISOString()}), meshgate --workers 1 (${o.dist ? 'dist/' : 'src/ through tsx'}), access log off`);
    if (only === undefined || only === 'micro') {
      // In-process: the check alone, without the proxying around it (stable on a busy machine).
      const ctx = { store: new MemoryStore(), log: pino({ level: 'silent' }), metrics: new Metrics({ processMetrics: false }) };
      const f = compileFilters([{ type: 'cc', rules: [{ key: 'ip', qps: 100_000_000, qpm: 1_000_000_000 }] } as never], ctx, 'filters', new Map()).chain[0]!;
      const ex = { clientIp: '192.0.2.1', vars: {}, routeName: 'api', responseHeaderOps: [] } as unknown as Exchange;
      const n = 2_000_000;
      const time = (fn: (i: number) => void): number => {
        for (let i = 0; i < n / 10; i++) fn(i);
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) fn(i);
        return Number(process.hrtime.bigint() - t0) / n;
      };
      const one = time(() => f.onRequest!(ex));
      const ips = Array.from({ length: 50_000 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
      const many = time((i) => {
        (ex as { clientIp: string }).clientIp = ips[i % ips.length]!;
        f.onRequest!(ex);
      });
      say('');
      say(`In-process, the cc filter's check (rule { key: ip, qps, qpm }, admitted), ${n.toLocaleString('en-US')} checks: one client ${one.toFixed(0)} ns per check; 50,000 clients in turn ${many.toFixed(0)} ns per check`);
      report({ bench: 'cc', metric: 'ns per check, 50,000 clients in turn (vs one client)', value: many, baseline: one, unit: 'ns' });
    }
    if (only === undefined || only === 'cost') {
      const targets = [await boot('plain'), await boot('cc-memory'), await boot('cc-redis'), ...(flag('workers') ? [await boot('plain-w2'), await boot('cc-memory-w2')] : [])];
      const res = new Map<Kind, Result[]>(targets.map((t) => [t.name, []]));
      for (let round = 0; round < o.rounds; round++) {
        const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
        for (const t of order) {
          const r = await measure(`http://127.0.0.1:${t.port}${PATH}`, t.child.pid!, genCpu);
          if (r.errors > 0) throw new Error(`${t.name}: ${r.errors} errors or non-2xx answers`);
          res.get(t.name)!.push(r);
          process.stderr.write(`round ${round + 1} ${t.name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(2)} ms ${r.cpuUsPerReq.toFixed(1)} us/req\n`);
        }
      }
      say('');
      say(`Cost: GET ${PATH}, wrk -t1 -c${o.connections}, ${o.seconds} s per run, ${o.rounds} rounds (medians)${o.pin ? ', gateways pinned to CPU 1, wrk, upstream and Redis to CPU 0' : ''}`);
      say('');
      say('| route | req/s | ratio to plain | p50 ms | p99 ms | added p99 ms | CPU µs/req |');
      say('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
      const plain = res.get('plain')!;
      for (const t of targets) {
        const rs = res.get(t.name)!;
        const p99 = median(rs.map((r) => r.p99));
        const isBase = t.name === 'plain' || t.name === 'plain-w2';
        const label = {
          plain: 'plain (no filter)',
          'cc-memory': 'cc, key ip, memory store',
          'cc-redis': 'cc, key ip, shared: true (Redis)',
          'plain-w2': 'plain, --workers 2',
          'cc-memory-w2': 'cc, memory store, --workers 2 (counted in the primary over IPC; ratio to plain --workers 2)',
          flood: '',
        }[t.name];
        const base = t.name.endsWith('-w2') ? res.get('plain-w2')! : plain;
        const baseP99 = median(base.map((r) => r.p99));
        const ratios = rs.map((r, i) => r.rps / base[i]!.rps);
        say(
          `| ${label} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${isBase ? '' : `${median(ratios).toFixed(2)} (rounds: ${ratios.map((x) => x.toFixed(2)).join(', ')})`} | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${p99.toFixed(2)} | ${isBase ? '' : (p99 - baseP99).toFixed(2)} | ${median(rs.map((r) => r.cpuUsPerReq)).toFixed(1)} |`,
        );
        if (!isBase) {
          const baseName = t.name.endsWith('-w2') ? 'plain-w2' : 'plain';
          report({ bench: 'cc', metric: `${t.name} CPU us/req (vs ${baseName})`, value: median(rs.map((r) => r.cpuUsPerReq)), baseline: median(base.map((r) => r.cpuUsPerReq)), unit: 'us' });
          report({ bench: 'cc', metric: `${t.name} req/s (vs ${baseName})`, value: median(rs.map((r) => r.rps)), baseline: median(base.map((r) => r.rps)), ratio: median(ratios), unit: 'req/s', note: 'ratio: median of per-round ratios' });
        }
      }
      for (const t of targets) t.child.kill('SIGTERM');
    }
    if (only === undefined || only === 'flood') {
      const t = await boot('flood');
      const lua = join(dir, 'flood.lua');
      writeFileSync(lua, FLOOD_LUA);
      // Warm up with addresses outside the flood's range, then measure from a settled heap.
      await run('wrk', ['-t1', `-c${o.connections}`, '-d2s', '-s', lua, `http://127.0.0.1:${t.port}/`], genCpu, { CC_FLOOD_FROM: String(200 * 16777216) });
      await new Promise((r) => setTimeout(r, 2000));
      const before = rssMb(t.child.pid!);
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(t.child.pid!))), 250);
      let sent = 0;
      let refused = 0;
      const t0 = performance.now();
      while (sent < o.flood) {
        const out = await run('wrk', ['-t1', `-c${o.connections}`, '-d10s', '--latency', '-s', lua, `http://127.0.0.1:${t.port}/`], genCpu, { CC_FLOOD_FROM: String(sent) });
        const r = parseWrk(out);
        const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
        sent += total;
        refused += r.errors;
        process.stderr.write(`flood: ${sent} addresses sent, ${r.rps.toFixed(0)} req/s, RSS ${rssMb(t.child.pid!).toFixed(0)} MB (peak ${peak.toFixed(0)})\n`);
      }
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      const after = rssMb(t.child.pid!);
      const routes = (await (await request(`http://127.0.0.1:${t.admin}/api/routes`)).body.json()) as { routes?: Array<{ filters: Array<{ type: string; state?: { rules?: Array<{ counts?: { identities?: number; evictions?: number } }> } }> }> };
      const counts = JSON.stringify(routes).match(/"identities":(\d+),"maxKeys":(\d+),"evictions":(\d+)/);
      say('');
      say(`Flood: ${sent.toLocaleString('en-US')} distinct client addresses (X-Forwarded-For from a trusted proxy) in ${seconds.toFixed(0)} s (${Math.round(sent / seconds)} req/s), rule { key: ip, qps: 50, qpm: 1000, blockSeconds: 300 }, maxKeys 100,000${o.floodHeapMb > 0 ? `, gateway run with --max-old-space-size=${o.floodHeapMb} (still serving at the end: ${t.child.exitCode === null ? 'yes' : 'no'})` : ''}`);
      say('');
      say('| RSS before | RSS peak | RSS after | identities held at the end | forgotten | non-2xx answers |');
      say('| ---: | ---: | ---: | ---: | ---: | ---: |');
      say(`| ${before.toFixed(0)} MB | ${peak.toFixed(0)} MB | ${after.toFixed(0)} MB | ${counts?.[1] ?? '?'} | ${counts?.[3] ?? '?'} | ${refused} |`);
      report({ bench: 'cc', metric: `RSS MB peak under ${sent} distinct IPs (vs before)`, value: peak, baseline: before, unit: 'MB' });
      t.child.kill('SIGTERM');
    }
    const out = argv.indexOf('--out');
    if (out >= 0) writeFileSync(argv[out + 1]!, lines.join('\n') + '\n');
  } finally {
    stopAll();
    await redis.destroy();
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
