// The HTTP/1.1 differential fuzz, full count:
//
//   npx tsx test/fuzz/run.ts --count 1000000 --seed 1 [--workers 2] [--start 0]
//                            [--examples 3] [--no-minimize] [--case N]
//   npx tsx test/fuzz/run.ts --input 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' [--kind response --method HEAD --splits 3,9]
//
// Generates inputs (test/fuzz/generate.ts), frames each with meshgate's codec
// (src/http1/frame.ts) and with llhttp (test/fuzz/llhttp-oracle.ts), compares
// them (test/fuzz/compare.ts) and prints totals: agreements, meshgate-stricter
// by class with one example each, laxer and framing-differs cases with the
// first few examples and the seed/index that rebuilds each, and a minimal
// reproduction per class. `--case N` runs only case N of the seed, `--input`
// one given input (escaped as the report prints it); both print the two
// results. Exit code 1 when anything is laxer, differs, or throws.
//
// "late: ..." classes are laxer cases where meshgate had not yet decided when
// the input ended and refuses however the input goes on (it refuses at the
// end of the line or head, llhttp at the byte); the others it would frame.
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { frameMessages } from '../../src/http1/frame.js';
import type { FrameResult } from '../../src/http1/frame-types.js';
import { classify, compare, escapeBytes, type Verdict } from './compare.js';
import { generateOne, type FuzzCase, type Kind } from './generate.js';
import { frameWithLlhttp, REQUEST_MAX_HEADER, RESPONSE_MAX_HEADER, versionMajorOf } from './llhttp-oracle.js';

export type Outcome = Verdict | 'meshgate-threw';

/**
 * Ways an input cut short may go on (ending a line, a field name, a method,
 * a status line, a head): appended to tell "refuses later" from "would
 * accept" when meshgate was still waiting for bytes.
 */
const LATE_PROBES = ['\r\n\r\n', ': v\r\n\r\n', ' / HTTP/1.1\r\nHost: a\r\n\r\n', 'TTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', '\r\nContent-Length: 0\r\n\r\n', '0\r\n\r\n'].map((s) => Buffer.from(s, 'latin1'));

export interface CaseResult {
  verdict: Outcome;
  detail: string;
  cls: string;
  meshgate?: FrameResult;
  llhttp: FrameResult;
}

export interface Example {
  seed: number;
  index: number;
  detail: string;
}

export interface ClassStat {
  count: number;
  examples: Example[];
}

export interface Stats {
  inputs: number;
  agree: number;
  /** Of the agreements: both refused the input (the rest framed it alike). */
  agreeRefused: number;
  /** Outcome -> class -> count and first examples. */
  byOutcome: Record<Outcome, Record<string, ClassStat>>;
}

const OUTCOMES: Outcome[] = ['agree', 'meshgate-stricter', 'meshgate-laxer', 'framing-differs', 'meshgate-threw'];

export function emptyStats(): Stats {
  return { inputs: 0, agree: 0, agreeRefused: 0, byOutcome: { agree: {}, 'meshgate-stricter': {}, 'meshgate-laxer': {}, 'framing-differs': {}, 'meshgate-threw': {} } };
}

/** Frame one input both ways and compare. */
export function runInput(kind: Kind, input: Buffer, requestMethod?: string, splits?: number[]): CaseResult {
  const opts: { requestMethod?: string; splits?: number[] } = {};
  if (requestMethod !== undefined) opts.requestMethod = requestMethod;
  if (splits !== undefined) opts.splits = splits;
  const llhttp = frameWithLlhttp(kind, input, opts);
  let meshgate: FrameResult;
  try {
    meshgate = frameMessages(kind, input, { ...opts, maxHeaderBytes: kind === 'request' ? REQUEST_MAX_HEADER : RESPONSE_MAX_HEADER });
  } catch (e) {
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { verdict: 'meshgate-threw', detail: msg, cls: `threw ${msg.replace(/\d+/g, 'N').slice(0, 80)}`, llhttp };
  }
  const { verdict, detail } = compare(meshgate, llhttp);
  let cls = verdict === 'agree' ? 'agree' : classify({ kind, input, requestMethod, meshgate, llhttp }, verdict, detail);
  if (verdict === 'meshgate-laxer' && meshgate.ok && meshgate.partial && !llhttp.ok && !/HPE_CLOSED_CONNECTION/.test(llhttp.error)) {
    // meshgate had not decided yet when the input ended. "late" if it refuses
    // that message however the input goes on (each completion below);
    // otherwise it would frame what llhttp refused: a plain laxer case.
    let late = true;
    for (const tail of LATE_PROBES) {
      try {
        const more = frameMessages(kind, Buffer.concat([input, tail]), { ...opts, maxHeaderBytes: kind === 'request' ? REQUEST_MAX_HEADER : RESPONSE_MAX_HEADER });
        if (more.ok || more.messages.length !== llhttp.messages.length) late = false;
      } catch {
        late = false;
      }
      if (!late) break;
    }
    if (late) cls = `late: ${cls}`;
  }
  return { verdict, detail, cls, meshgate, llhttp };
}

export function runCase(c: FuzzCase): CaseResult {
  return runInput(c.kind, c.input, c.requestMethod, c.splits);
}

/** Run cases [start, start + count) of `seed`; keep up to `keep` examples per class. */
export function runSlice(seed: number, start: number, count: number, keep = 3): Stats {
  const st = emptyStats();
  for (let i = start; i < start + count; i++) {
    const c = generateOne(seed, i);
    const r = runCase(c);
    st.inputs++;
    if (r.verdict === 'agree') {
      st.agree++;
      if (!r.llhttp.ok) st.agreeRefused++;
      continue;
    }
    const by = st.byOutcome[r.verdict];
    const s = (by[r.cls] ??= { count: 0, examples: [] });
    s.count++;
    if (s.examples.length < keep) s.examples.push({ seed, index: i, detail: r.detail });
  }
  return st;
}

export function mergeStats(a: Stats, b: Stats, keep = 3): Stats {
  a.inputs += b.inputs;
  a.agree += b.agree;
  a.agreeRefused += b.agreeRefused;
  for (const o of OUTCOMES) {
    for (const [cls, s] of Object.entries(b.byOutcome[o])) {
      const t = (a.byOutcome[o][cls] ??= { count: 0, examples: [] });
      t.count += s.count;
      for (const e of s.examples) if (t.examples.length < keep) t.examples.push(e);
      t.examples.sort((x, y) => x.index - y.index);
    }
  }
  return a;
}

/** Shrink an input while it keeps the same outcome and class (splits dropped if not needed). */
export function minimize(c: FuzzCase, budget = 20_000): { input: Buffer; splits?: number[] } {
  const want = runCase(c);
  let calls = 0;
  let splits = c.splits;
  const same = (input: Buffer, sp: number[] | undefined): boolean => {
    calls++;
    const r = runInput(c.kind, input, c.requestMethod, sp?.filter((x) => x < input.length));
    return r.verdict === want.verdict && r.cls === want.cls;
  };
  if (splits && same(c.input, undefined)) splits = undefined;
  let cur = c.input;
  let n = 2;
  while (cur.length >= 2 && calls < budget) {
    const size = Math.ceil(cur.length / n);
    let reduced = false;
    for (let i = 0; i < cur.length && calls < budget; i += size) {
      const cand = Buffer.concat([cur.subarray(0, i), cur.subarray(i + size)]);
      if (same(cand, splits)) {
        cur = cand;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(n * 2, cur.length);
    }
  }
  const out: { input: Buffer; splits?: number[] } = { input: cur };
  if (splits) out.splits = splits.filter((x) => x < cur.length);
  return out;
}

function showInput(b: Buffer, max = 400): string {
  const s = escapeBytes(b.subarray(0, max));
  return b.length > max ? `${s}...(${b.length} bytes)` : s;
}

/** The inverse of escapeBytes: \\r \\n \\t \\xNN \\\\ (for --input). */
export function unescapeBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c !== '\\' || i + 1 >= s.length) {
      out.push(s.charCodeAt(i) & 0xff);
      continue;
    }
    const n = s[++i]!;
    if (n === 'r') out.push(13);
    else if (n === 'n') out.push(10);
    else if (n === 't') out.push(9);
    else if (n === 'x') {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(n.charCodeAt(0));
  }
  return Buffer.from(out);
}

function describeResult(r: FrameResult | undefined): string {
  if (r === undefined) return 'threw';
  const ms = r.messages.map((m) => `${m.method ?? m.status} ${m.url ?? ''} HTTP/${versionMajorOf(m)}.${m.versionMinor} [${m.headers.length / 2} fields] body ${m.body.length}${m.trailers.length ? ` trailers ${m.trailers.length / 2}` : ''}${m.upgrade ? ' upgrade' : ''}`);
  return `${r.ok ? `ok${r.partial ? ' partial' : ''}` : `refused: ${r.error}`}; messages: ${ms.join(' | ') || 'none'}`;
}

function report(st: Stats, seed: number, elapsedMs: number, opts: { minimize: boolean; examples: number }): number {
  const out: string[] = [];
  const rate = st.inputs / (elapsedMs / 1000);
  out.push(`inputs ${st.inputs}, seed ${seed}, ${(elapsedMs / 1000).toFixed(1)} s, ${Math.round(rate)} inputs/s`);
  out.push(`agree ${st.agree} (both framed it alike: ${st.agree - st.agreeRefused}; both refused it: ${st.agreeRefused})`);
  const section = (o: Outcome, title: string, many: boolean): void => {
    const classes = Object.entries(st.byOutcome[o]).sort((a, b) => b[1].count - a[1].count);
    const total = classes.reduce((a, [, s]) => a + s.count, 0);
    out.push(`${title} ${total}${classes.length ? ` in ${classes.length} classes` : ''}`);
    for (const [cls, s] of classes) {
      out.push(`  [${s.count}] ${cls}`);
      const shown = many ? s.examples.slice(0, opts.examples) : s.examples.slice(0, 1);
      for (const e of shown) {
        const c = generateOne(e.seed, e.index);
        out.push(`      seed ${e.seed} index ${e.index} (${c.kind}${c.requestMethod ? `, answering ${c.requestMethod}` : ''}${c.splits ? `, ${c.splits.length} splits` : ''}): ${e.detail}`);
        out.push(`        input: "${showInput(c.input)}"`);
        if (many) out.push(`        ops: ${c.ops.join('; ')}`);
      }
      if (opts.minimize && s.examples.length > 0) {
        const c = generateOne(s.examples[0]!.seed, s.examples[0]!.index);
        const m = minimize(c);
        const r = runInput(c.kind, m.input, c.requestMethod, m.splits);
        out.push(`      minimal: "${showInput(m.input)}"${m.splits ? ` split at ${m.splits.join(',')}` : ''}`);
        if (many) {
          out.push(`        meshgate: ${describeResult(r.meshgate)}`);
          out.push(`        llhttp:   ${describeResult(r.llhttp)}`);
        }
      }
    }
  };
  section('meshgate-stricter', 'meshgate-stricter', false);
  section('meshgate-laxer', 'meshgate-laxer (bugs)', true);
  section('framing-differs', 'framing-differs (bugs)', true);
  section('meshgate-threw', 'meshgate threw (bugs)', true);
  console.log(out.join('\n'));
  const bad = ['meshgate-laxer', 'framing-differs', 'meshgate-threw'].reduce((a, o) => a + Object.values(st.byOutcome[o as Outcome]).reduce((x, s) => x + s.count, 0), 0);
  return bad > 0 ? 1 : 0;
}

function args(): Record<string, string> {
  const a: Record<string, string> = {};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i++) {
    const k = v[i]!;
    if (!k.startsWith('--')) continue;
    const next = v[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      a[k.slice(2)] = next;
      i++;
    } else a[k.slice(2)] = 'true';
  }
  return a;
}

/**
 * A worker thread does not inherit tsx's loader (Node 20 runs a worker's
 * entry before its --import hooks), so the worker registers tsx itself, then
 * imports this file.
 */
const WORKER_BOOT = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); });`;

async function main(): Promise<void> {
  const a = args();
  const seed = Number(a.seed ?? 1);
  const count = Number(a.count ?? 100_000);
  const start = Number(a.start ?? 0);
  const keep = Number(a.examples ?? 3);
  if (a.input !== undefined || a.case !== undefined) {
    const c =
      a.input !== undefined
        ? { kind: (a.kind ?? 'request') as Kind, input: unescapeBytes(a.input), seed, index: -1, ops: ['given'], ...(a.method ? { requestMethod: a.method } : {}), ...(a.splits ? { splits: a.splits.split(',').map(Number) } : {}) }
        : generateOne(seed, Number(a.case));
    const r = runCase(c);
    console.log(`case ${a.input !== undefined ? 'given' : `seed ${seed} index ${a.case}`}: ${c.kind}${c.requestMethod ? ` answering ${c.requestMethod}` : ''}${c.splits ? ` split at ${c.splits.join(',')}` : ''}`);
    console.log(`ops: ${c.ops.join('; ')}`);
    console.log(`input: "${showInput(c.input, 4000)}"`);
    console.log(`verdict: ${r.verdict} [${r.cls}] ${r.detail}`);
    console.log(`meshgate: ${describeResult(r.meshgate)}`);
    console.log(`llhttp:   ${describeResult(r.llhttp)}`);
    return;
  }
  const workers = Math.max(1, Math.min(Number(a.workers ?? Math.min(2, cpus().length)), 64));
  const t0 = Date.now();
  let st: Stats;
  if (workers === 1 || count < 1000) st = runSlice(seed, start, count, keep);
  else {
    // Contiguous ranges: cases are independent draws, so the loads come out even.
    const per = Math.ceil(count / workers);
    const parts = await Promise.all(
      Array.from({ length: workers }, (_, w) => {
        const s0 = start + w * per;
        const n = Math.max(0, Math.min(per, start + count - s0));
        return new Promise<Stats>((resolve, reject) => {
          const wk = new Worker(WORKER_BOOT, { eval: true, workerData: { seed, start: s0, count: n, keep } });
          wk.once('message', (m: Stats) => resolve(m));
          wk.once('error', reject);
          wk.once('exit', (code) => {
            if (code !== 0) reject(new Error(`worker ${w} exited with ${code}`));
          });
        });
      }),
    );
    st = parts.reduce((acc, p) => mergeStats(acc, p, keep), emptyStats());
  }
  const elapsed = Date.now() - t0;
  process.exitCode = report(st, seed, elapsed, { minimize: a['no-minimize'] === undefined, examples: keep });
}

if (!isMainThread && (workerData as { seed?: number } | null)?.seed !== undefined) {
  const d = workerData as { seed: number; start: number; count: number; keep: number };
  parentPort!.postMessage(runSlice(d.seed, d.start, d.count, d.keep));
} else if (isMainThread && process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 2;
  });
}
