// The whole benchmark suite in one command, with short settings.
//
//   npx tsx test/bench/suite.ts [--quick] [--only a,b] [--no-build] [--write | --no-write]
//   npx tsx test/bench/suite.ts --compare REF [--only a,b] [--quick] [--rounds N]
//
// Runs every bench in test/bench/ one after the other (a full run takes at
// most about 30 minutes; --quick a few minutes; --only picks benches by name),
// each with MESHGATE_BENCH_REPORT naming a file where the bench appends its
// headline figures (lib/report.ts: one JSON line each: metric, value, its
// baseline from the same run, ratio, load average). Each bench's own output
// goes to a log file (path printed). At the end the figures are printed and,
// for a run of the whole suite (full or --quick; with --only only if
// --write), the block between `<!-- suite:begin -->` and `<!-- suite:end -->`
// in BENCHMARKS.md is rewritten: date, commit, load average at the start,
// and every figure with its ratio against its baseline. Nothing else in the
// file changes.
//
// --compare REF: REF (any git revision) is checked out with `git worktree add
// --detach` under /tmp, node_modules is a symlink to this tree's, and it is
// built there. The bench harness of this tree (test/bench, test/helpers,
// test/doubles) is copied over REF's, so both builds are measured by the same
// scripts; only src/, registries/ and what they compile to differ. The chosen
// benches then run for both builds alternately (new, REF, REF, new, ... over
// --rounds rounds, 3 by default, 2 with --quick), and per figure the ratio
// new / REF of each round is printed with its median and spread: a change is
// a regression only when the spread across rounds does not straddle it.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { flag, optString, opt } from './lib/args.js';
import { ROOT } from './lib/procs.js';
import { loadAvg } from './lib/report.js';

interface Bench {
  name: string;
  /** Script file in test/bench/. */
  script: string;
  args: string[];
  quick: string[];
  env?: Record<string, string>;
  quickEnv?: Record<string, string>;
  /** Run with node --expose-gc (steadier heap figures). */
  gc?: boolean;
  /** Whether the script reports figures (waf-engine.ts is not edited here: it only runs). */
  reports?: false;
  /** Minutes before the bench is stopped. */
  timeoutMin?: number;
}

// Short settings: a full run of everything stays around 30 minutes on the
// project's 2-core machine; --quick is a smoke run of a few minutes.
const BENCHES: Bench[] = [
  { name: 'proxy', script: 'proxy.ts', args: ['--no-build', '--only', 'meshgate,nginx,fastify', '--rounds', '2', '--seconds', '5', '--warmup', '2', '--paced-seconds', '8'], quick: ['--no-build', '--only', 'meshgate,nginx', '--rounds', '1', '--seconds', '3', '--warmup', '1', '--paced-seconds', '4'] },
  { name: 'routes', script: 'routes.ts', args: ['--n', '100000'], quick: ['--n', '20000'] },
  { name: 'routes-reload', script: 'routes-reload.ts', args: ['--routes', '10000'], quick: ['--routes', '2000'], gc: true },
  { name: 'lb', script: 'lb.ts', args: [], quick: ['--micro'] },
  { name: 'resilience', script: 'resilience.ts', args: ['--seconds', '3', '--rounds', '3'], quick: ['--pipeline'] },
  { name: 'faults', script: 'faults.ts', args: ['--seconds', '15', '--rate', '300'], quick: ['--seconds', '6', '--rate', '200', '--only', 'kill'] },
  { name: 'auth', script: 'auth.ts', args: ['--dist', '--no-build', '--rounds', '1', '--seconds', '4', '--warmup', '1'], quick: ['--dist', '--no-build', '--rounds', '1', '--seconds', '2', '--warmup', '1'] },
  { name: 'cc', script: 'cc.ts', args: ['--dist', '--rounds', '1', '--seconds', '4', '--warmup', '1', '--flood', '200000'], quick: ['--dist', '--only', 'micro'] },
  { name: 'cc-ipc', script: 'cc-ipc.ts', args: ['--asks', '50000'], quick: ['--asks', '10000'] },
  { name: 'waf', script: 'waf.ts', args: ['--no-build', '--rounds', '1', '--seconds', '5', '--warmup', '2'], quick: ['--no-build', '--only', 'cost', '--rounds', '1', '--seconds', '3', '--warmup', '1'], timeoutMin: 12 },
  { name: 'waf-sqli', script: 'waf-sqli.ts', args: [], quick: [] },
  { name: 'waf-engine', script: 'waf-engine.ts', args: ['--n', '1000'], quick: ['--n', '300'], reports: false },
  { name: 'upstream-tls', script: 'upstream-tls.ts', args: ['--no-build', '--rounds', '1', '--seconds', '4', '--warmup', '1'], quick: ['--no-build', '--rounds', '1', '--seconds', '2', '--warmup', '1'] },
  { name: 'h2-grpc', script: 'h2-grpc.ts', args: [], quick: [], env: { BENCH_ROUNDS: '2', BENCH_SECONDS: '4', BENCH_H2_REQUESTS: '20000' }, quickEnv: { BENCH_ROUNDS: '1', BENCH_SECONDS: '2', BENCH_H2_REQUESTS: '5000' } },
  { name: 'grpc', script: 'grpc.ts', args: [], quick: [], env: { BENCH_ROUNDS: '2', BENCH_SECONDS: '4' }, quickEnv: { BENCH_ROUNDS: '1', BENCH_SECONDS: '2' } },
  { name: 'dubbo', script: 'dubbo.ts', args: [], quick: [], env: { BENCH_SECONDS: '4' }, quickEnv: { BENCH_SECONDS: '2' } },
  { name: 'ai', script: 'ai.ts', args: [], quick: [], env: { AI_BENCH_STREAMS: '1000', AI_BENCH_SAMPLES: '100' }, quickEnv: { AI_BENCH_STREAMS: '100', AI_BENCH_SAMPLES: '30' } },
  { name: 'ai-translate', script: 'ai-translate.ts', args: ['--chunks', '10000', '--rounds', '5'], quick: ['--chunks', '2000', '--rounds', '3'] },
  { name: 'registry-propagation-zk-nacos', script: 'registry-propagation-zk-nacos.ts', args: ['50', '1000', '10'], quick: ['15', '200', '10'], gc: true },
  { name: 'registry-propagation-consul-eureka', script: 'registry-propagation-consul-eureka.ts', args: ['30'], quick: ['10'] },
  { name: 'endpoints-scale', script: 'endpoints-scale.ts', args: ['--no-build'], quick: ['--no-build', '--services', '2000', '--seconds', '4', '--warmup', '1', '--rounds', '1'], timeoutMin: 12 },
  { name: 'admin-live', script: 'admin-live.ts', args: ['--no-build'], quick: ['--no-build', '--services', '2000', '--seconds', '4', '--rounds', '1'], timeoutMin: 8 },
  { name: 'admin-stats', script: 'admin-stats.ts', args: ['--no-build'], quick: ['--no-build', '--routes', '500', '--workers', '2', '--seconds', '4', '--rounds', '1'], timeoutMin: 10 },
  { name: 'workers-ipc', script: 'workers-ipc.ts', args: ['--no-build'], quick: ['--no-build', '--workers', '1,2', '--routes', '200', '--services', '2000', '--churn', '1000', '--churn-seconds', '3', '--reloads', '3'], timeoutMin: 12 },
];

interface Figure {
  bench: string;
  metric: string;
  value: number;
  baseline?: number;
  ratio?: number;
  unit?: string;
  note?: string;
  load?: number;
}

interface Outcome {
  bench: string;
  ok: boolean;
  seconds: number;
  error?: string;
  figures: Figure[];
  log: string;
}

const quick = flag('quick');
const compareRef = optString('compare');
const only = optString('only')?.split(',');
for (const n of only ?? []) if (!BENCHES.some((b) => b.name === n)) throw new Error(`--only: no bench ${n} (${BENCHES.map((b) => b.name).join(', ')})`);
const chosen = BENCHES.filter((b) => !only || only.includes(b.name));
const tmp = mkdtempSync(join(tmpdir(), 'meshgate-suite-'));
// A bench added to test/bench/ without an entry above is named, not silently skipped.
const unlisted = readdirSync(join(ROOT, 'test/bench')).filter((f) => f.endsWith('.ts') && f !== 'suite.ts' && !BENCHES.some((b) => b.script === f));

function git(args: string[], cwd = ROOT): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function build(dir: string): void {
  process.stdout.write(`building ${dir} (npm run build)... `);
  const b = spawnSync('npm', ['run', 'build'], { cwd: dir, encoding: 'utf8' });
  // Type errors elsewhere do not stop tsc from emitting; the benches use what it emitted.
  process.stdout.write(b.status === 0 ? 'ok\n' : `exited ${b.status}, using the emitted JS\n`);
  if (!existsSync(join(dir, 'dist/src/cli.js'))) throw new Error(`${dir}: dist/src/cli.js missing after the build`);
}

/** Runs one bench in `dir` (this tree or the compare worktree); its process group is stopped on timeout. */
function runBench(b: Bench, dir: string, tag: string): Promise<Outcome> {
  const reportFile = join(tmp, `${b.name}-${tag}.jsonl`);
  const log = join(tmp, `${b.name}-${tag}.log`);
  rmSync(reportFile, { force: true });
  const nodeArgs = [...(b.gc ? ['--expose-gc'] : []), '--import', 'tsx', join(dir, 'test/bench', b.script), ...(quick ? b.quick : b.args)];
  const env = { ...process.env, ...(quick ? (b.quickEnv ?? b.env) : b.env), MESHGATE_BENCH_REPORT: reportFile };
  const t0 = performance.now();
  return new Promise((resolve) => {
    // Its own process group, so a timeout stops the bench and everything it started.
    const child = spawn(process.execPath, nodeArgs, { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d));
    child.stderr!.on('data', (d: Buffer) => (out += d));
    const limitMin = (b.timeoutMin ?? 8) * (quick ? 0.5 : 1);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGTERM');
        setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }, 5000).unref();
      } catch {
        /* already gone */
      }
    }, limitMin * 60_000);
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      // Whatever the bench left behind in its group (it kills its children on exit; this is the safety net).
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* nothing left */
      }
      writeFileSync(log, out);
      const figures: Figure[] = existsSync(reportFile)
        ? readFileSync(reportFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Figure)
        : [];
      const ok = code === 0 && !timedOut;
      const tail = out.trim().split('\n').slice(-3).join(' / ').slice(0, 300);
      resolve({ bench: b.name, ok, seconds: (performance.now() - t0) / 1000, error: ok ? undefined : timedOut ? `stopped after ${limitMin} min` : `exit ${code ?? sig}: ${tail}`, figures, log });
    });
  });
}

const fmt = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toLocaleString('en-US') : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
};
const cell = (s: string): string => s.replace(/\|/g, '\\|');

function printOutcome(o: Outcome): void {
  process.stdout.write(`${o.ok ? 'ok  ' : 'FAIL'} ${o.bench} (${o.seconds.toFixed(0)} s, log ${o.log})${o.error ? `: ${o.error}` : ''}\n`);
  for (const f of o.figures) {
    process.stdout.write(`       ${f.metric}: ${fmt(f.value)}${f.unit ? ` ${f.unit}` : ''}${f.baseline !== undefined ? ` (baseline ${fmt(f.baseline)}, ratio ${fmt(f.ratio)})` : ''}${f.note ? ` [${f.note}]` : ''} load ${f.load}\n`);
  }
}

function summaryBlock(outcomes: Outcome[], startLoad: number, started: Date, commit: string): string {
  const lines = [
    `Last suite run (\`npm run bench${quick ? ' -- --quick' : ''}\`, test/bench/suite.ts): ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${commit}, ` +
      `${cpus().length} CPUs, node ${process.version}, load average at the start ${startLoad}${quick ? '; --quick settings (smoke run: short, single rounds)' : ''}. ` +
      'Every ratio is value / baseline, both from the same run of the same bench; the load average is the one-minute figure when the bench reported. ' +
      'This block is rewritten by each run; the sections below are the reviewed measurements.',
    '',
    '| bench | figure | value | baseline | ratio | load | note |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const o of outcomes) {
    if (!o.ok) lines.push(`| ${o.bench} | **did not complete** | | | | | ${cell(o.error ?? '')} |`);
    for (const f of o.figures) {
      lines.push(`| ${o.bench} | ${cell(f.metric)} | ${fmt(f.value)}${f.unit ? ` ${f.unit}` : ''} | ${fmt(f.baseline)} | ${fmt(f.ratio)} | ${f.load ?? ''} | ${cell(f.note ?? '')} |`);
    }
    if (o.ok && o.figures.length === 0) lines.push(`| ${o.bench} | ran (${o.seconds.toFixed(0)} s); reports no figures | | | | | |`);
  }
  if (unlisted.length) lines.push('', `Not in the suite yet (no entry in test/bench/suite.ts): ${unlisted.join(', ')}.`);
  return lines.join('\n');
}

function rewriteBenchmarks(block: string): void {
  const file = join(ROOT, 'BENCHMARKS.md');
  const text = readFileSync(file, 'utf8');
  const begin = '<!-- suite:begin -->';
  const end = '<!-- suite:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error('BENCHMARKS.md: the suite markers are missing');
  writeFileSync(file, `${text.slice(0, i + begin.length)}\n${block}\n${text.slice(j)}`);
  process.stdout.write('BENCHMARKS.md: summary block rewritten\n');
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function compare(ref: string): Promise<void> {
  const sha = git(['rev-parse', ref]);
  const short = sha.slice(0, 9);
  const dir = join(tmpdir(), `meshgate-compare-${short}`);
  if (!existsSync(dir)) git(['worktree', 'add', '--detach', dir, sha]);
  // No install: the dependencies of this tree serve both builds.
  if (!existsSync(join(dir, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  for (const sub of ['test/bench', 'test/helpers', 'test/doubles']) {
    rmSync(join(dir, sub), { recursive: true, force: true });
    mkdirSync(join(dir, sub), { recursive: true });
    cpSync(join(ROOT, sub), join(dir, sub), { recursive: true });
  }
  if (!flag('no-build')) {
    build(ROOT);
    build(dir);
  }
  const rounds = opt('rounds', quick ? 2 : 3);
  const head = git(['rev-parse', '--short=9', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'src', 'registries']) !== '' ? ' + uncommitted changes' : '';
  process.stdout.write(`compare: new = ${ROOT} (${head}${dirty}), ref = ${ref} (${short}) at ${dir}; ${rounds} rounds; load average ${loadAvg()}\n`);
  for (const b of chosen) {
    const byMetric = new Map<string, { unit?: string; pairs: Array<[number, number]> }>();
    for (let r = 1; r <= rounds; r++) {
      // Alternate which build goes first, so a drift in machine load hits both alike.
      const order: Array<['new' | 'ref', string]> = r % 2 ? [['new', ROOT], ['ref', dir]] : [['ref', dir], ['new', ROOT]];
      const got: Record<string, Outcome> = {};
      for (const [tag, d] of order) {
        const o = await runBench(b, d, `${tag}-${r}`);
        got[tag] = o;
        process.stdout.write(`round ${r} ${tag} ${b.name}: ${o.ok ? 'ok' : `FAIL ${o.error}`} (${o.seconds.toFixed(0)} s, load ${loadAvg()})\n`);
      }
      for (const f of got.new!.figures) {
        const g = got.ref!.figures.find((x) => x.metric === f.metric);
        if (!g) continue;
        const e = byMetric.get(f.metric) ?? { unit: f.unit, pairs: [] };
        e.pairs.push([f.value, g.value]);
        byMetric.set(f.metric, e);
      }
    }
    process.stdout.write(`\n${b.name}: new / ${short} per round (median; spread)\n`);
    const shown = new Set<string>();
    for (const [metric, e] of byMetric) {
      // A figure reported twice against different baselines has the same value in both builds: print it once.
      const key = JSON.stringify(e.pairs);
      if (shown.has(key)) continue;
      shown.add(key);
      const ratios = e.pairs.map(([a, c]) => a / c);
      process.stdout.write(
        `  ${metric}: ${fmt(median(ratios))} (${ratios.map(fmt).join(', ')}; min ${fmt(Math.min(...ratios))}, max ${fmt(Math.max(...ratios))}); new ${fmt(median(e.pairs.map((p) => p[0])))} vs ref ${fmt(median(e.pairs.map((p) => p[1])))}${e.unit ? ` ${e.unit}` : ''}\n`,
      );
    }
  }
  process.stdout.write(`\nthe worktree stays at ${dir} for further runs (git worktree remove ${dir} when done)\n`);
}

async function main(): Promise<void> {
  const startLoad = loadAvg();
  const started = new Date();
  process.stdout.write(`meshgate bench suite${quick ? ' (--quick)' : ''}: ${chosen.map((b) => b.name).join(', ')}\nlogs and reports in ${tmp}; load average at the start ${startLoad}\n`);
  if (unlisted.length) process.stdout.write(`not in the suite (add an entry to test/bench/suite.ts): ${unlisted.join(', ')}\n`);
  if (compareRef) return compare(compareRef);
  if (!flag('no-build')) build(ROOT);
  const commit = `${git(['rev-parse', '--short=9', 'HEAD'])}${git(['status', '--porcelain', '--', 'src', 'registries']) !== '' ? ' + uncommitted changes' : ''}`;
  const outcomes: Outcome[] = [];
  for (const b of chosen) {
    process.stdout.write(`-- ${b.name} (load ${loadAvg()})\n`);
    const o = await runBench(b, ROOT, 'run');
    printOutcome(o);
    outcomes.push(o);
  }
  const block = summaryBlock(outcomes, startLoad, started, commit);
  process.stdout.write(`\n${block}\n\n`);
  if (flag('write') || (!only && !flag('no-write'))) rewriteBenchmarks(block);
  const failed = outcomes.filter((o) => !o.ok);
  process.stdout.write(`${outcomes.length - failed.length} of ${outcomes.length} benches completed in ${((Date.now() - started.getTime()) / 60_000).toFixed(1)} min${failed.length ? `; failed: ${failed.map((f) => f.bench).join(', ')}` : ''}\n`);
  process.exitCode = failed.length ? 1 : 0;
}

main().catch((e: Error) => {
  console.error(e.stack);
  process.exit(1);
});
