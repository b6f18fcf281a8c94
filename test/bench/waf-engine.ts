// The WAF engine alone, in process: CPU per request for the cost benchmark's
// two requests (test/bench/waf.ts), without sockets, so where the time goes
// can be profiled (`node --cpu-prof --import tsx test/bench/waf-engine.ts`).
//
//   npx tsx test/bench/waf-engine.ts [--n 2000] [--repeat 5] [--paranoia 1] [--vary] [--fresh] [--only get|post]
//                                     [--remove 920000-920999,942100]
//
// --remove leaves rules out by id or id range (the `removeIds` of the CRS
// load): what a family costs is the difference, run by run (one process per
// variant, pinned: `taskset -c 1`).
// --vary changes every value of every request (a counter that never repeats,
// in the query values and in the JSON body's ids, names and note, as
// waf.ts --vary does through a gateway), so no per-value memo can make
// repeats cheap. The bodies are made before the timed loops.
// --fresh makes every string of a request a new string, read from a buffer
// as the gateway's parser reads it: the same values, but no string object
// is shared with the request before (a cache keyed by value then hashes and
// compares it, as it does in the gateway). Making them is inside the timed
// loop: about 1.7 µs per GET (its 9 strings; 11 for a POST).
// --phases also prints the median loop's time per part of a request: the
// head's variables, phase 1, the body's variables (POST), phase 2.
// --rules N also prints the N top-level rules that took longest per request
// (each evaluation timed with process.hrtime, which adds about 0.1 µs to
// each; the loops' own figures are then not comparable to runs without it).
// The same parts inside a running gateway: test/bench/lib/waf-phase-timer.mjs.
import type { CompiledRule } from '../../src/filters/waf/engine.js';
import { Transaction } from '../../src/filters/waf/engine.js';
import { loadCrs } from '../../src/filters/waf/ruleset.js';
import { addBodyVars, buildHeadVars } from '../../src/filters/waf/request-vars.js';
import { argv, flag, opt, optString } from './lib/args.js';

const N = opt('n', 2000);
const paranoia = opt('paranoia', 1);
const vary = argv.includes('--vary');
const fresh = argv.includes('--fresh');

const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
const HEADERS: [string, string][] = [
  ['Host', '127.0.0.1:8080'],
  ['User-Agent', UA],
  ['Accept', 'application/json, text/plain, */*'],
  ['Accept-Language', 'en-US,en;q=0.9'],
];

function order(k: number): string {
  const items = [];
  for (let i = 0; items.length < 14; i++) {
    items.push({ sku: `SKU-${1000 + i}${vary ? k : ''}`, name: `Running shoe model ${i}${vary ? ` v${k}` : ''}`, qty: (i % 3) + 1, price: 59.9 + i, color: ['blue', 'black', 'white'][i % 3] });
  }
  const body = { orderId: '9f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b', customer: { name: `Jane Doe${vary ? k : ''}`, email: 'jane.doe@example.com', phone: '+1 555 0100' }, shipping: { street: '12 Main Street', city: 'Springfield', zip: '12345', country: 'US' }, items, note: `Please leave the parcel at the front door.${vary ? k : ''}` };
  let s = JSON.stringify(body);
  while (Buffer.byteLength(s) < 2048) {
    body.note += ' Thanks!';
    s = JSON.stringify(body);
  }
  return s;
}

const removeIds = (optString('remove') ?? '').split(',').filter((x) => x !== '').map((x) => (x.includes('-') ? x : Number(x)));
const rs = loadCrs({ blockingParanoiaLevel: paranoia, detectionParanoiaLevel: paranoia, tx: { allowed_methods: 'GET HEAD POST OPTIONS PUT PATCH DELETE' }, removeTargets: [{ id: 943120, target: 'ARGS_NAMES:/^json\\./' }], removeIds });

/** A string equal to `s` but not the same object (with --fresh): read from a buffer, as a parser makes it. */
const renew = (s: string): string => (fresh ? Buffer.from(s, 'latin1').toString('latin1') : s);
const headers = (list: readonly [string, string][]): [string, string][] => list.map(([n, v]) => [renew(n), renew(v)]);

/** Milliseconds spent per part of the requests of the current loop (--phases): head, phase 1, body, phase 2. */
const parts = [0, 0, 0, 0];
const phases = flag('phases');
let mark = 0;
/** With --phases: adds the time since the last lap to `part`. */
function lap(part: number): void {
  if (!phases) return;
  const now = performance.now();
  parts[part]! += now - mark;
  mark = now;
}

function get(k: number): boolean {
  if (phases) mark = performance.now();
  const target = renew(`/api/items?page=${vary ? k : 2}&sort=-created&q=blue+running+shoes${vary ? k : ''}&category=footwear`);
  const head = buildHeadVars({ method: 'GET', target, httpVersion: 'HTTP/1.1', headers: headers(HEADERS), remoteAddr: '127.0.0.1', remotePort: 40000, uniqueId: `id${k}` });
  const tx = rs.newTransaction(head);
  lap(0);
  tx.runPhase(1);
  lap(1);
  tx.runPhase(2, head);
  lap(3);
  return tx.verdict().blocked;
}

/** With --vary, a number of 7 digits in every varied value: each request's body is the template with its own number there. */
const MARK = 7777777;
const template = order(MARK);
const bodies: Buffer[] = [];
/** Makes the bodies of requests seqBase .. seqBase + count - 1 (outside the timing); without --vary, the one body. */
function prepare(count: number): void {
  bodies.length = 0;
  if (!vary) bodies.push(Buffer.from(template));
  else for (let k = 0; k < count; k++) bodies.push(Buffer.from(template.replaceAll(String(MARK), String(MARK - 1 - seqBase - k))));
}
function post(k: number): boolean {
  const body = vary ? bodies[k - seqBase]! : bodies[0]!;
  const list: [string, string][] = [...HEADERS, ['Content-Type', 'application/json'], ['Content-Length', String(body.length)]];
  if (phases) mark = performance.now();
  const head = buildHeadVars({ method: 'POST', target: renew('/api/orders'), httpVersion: 'HTTP/1.1', headers: headers(list), remoteAddr: '127.0.0.1', remotePort: 40000, uniqueId: `id${k}` });
  const tx = rs.newTransaction(head);
  lap(0);
  tx.runPhase(1);
  lap(1);
  const vars = addBodyVars(head, body, { truncated: false, processor: tx.requestBodyProcessor as 'JSON' | undefined });
  lap(2);
  tx.runPhase(2, vars);
  lap(3);
  return tx.verdict().blocked;
}

/** --rules N: nanoseconds per top-level rule id over the timed loops. */
const ruleTop = opt('rules', 0);
const ruleNs = new Map<number, number>();
let timingRules = false;
if (ruleTop > 0) {
  const proto = Transaction.prototype as unknown as { evalRule(rule: CompiledRule, top: boolean): boolean };
  const evalRule = proto.evalRule;
  proto.evalRule = function (this: unknown, rule: CompiledRule, top: boolean): boolean {
    if (!top || !timingRules) return evalRule.call(this, rule, top);
    const t0 = process.hrtime.bigint();
    const r = evalRule.call(this, rule, top);
    ruleNs.set(rule.id, (ruleNs.get(rule.id) ?? 0) + Number(process.hrtime.bigint() - t0));
    return r;
  };
}

/** Requests made so far: each gets the next number, so with --vary none repeats another's values. */
let seq = 0;
/** The number of the first request `prepare` made a body for. */
let seqBase = 0;

function warmUp(name: string, fn: (k: number) => boolean): void {
  const n = Math.min(500, N);
  seqBase = seq;
  prepare(n);
  for (let i = 0; i < n; i++) if (fn(seq++)) throw new Error(`${name} was blocked`);
}

// Apart from warmUp so that a profile can be cut to the timed loop.
function timed(fn: (k: number) => boolean): NodeJS.CpuUsage {
  seqBase = seq;
  prepare(N);
  const t0 = process.cpuUsage();
  for (let i = 0; i < N; i++) fn(seq++);
  return process.cpuUsage(t0);
}

/** Timed loops per request kind: the median is reported (a single loop is at the mercy of one GC or JIT event). */
const REPEAT = opt('repeat', 5);

function measure(name: string, fn: (k: number) => boolean): void {
  warmUp(name, fn);
  const loops: { us: number; parts: number[] }[] = [];
  ruleNs.clear();
  timingRules = true;
  for (let r = 0; r < REPEAT; r++) {
    parts.fill(0);
    const d = timed(fn);
    loops.push({ us: (d.user + d.system) / N, parts: parts.map((ms) => (ms * 1000) / N) });
  }
  timingRules = false;
  loops.sort((a, b) => a.us - b.us);
  const med = loops[loops.length >> 1]!;
  console.log(`${name}: ${med.us.toFixed(1)} µs CPU per request (median of ${REPEAT} loops of ${N} requests, min ${loops[0]!.us.toFixed(1)}, max ${loops[loops.length - 1]!.us.toFixed(1)}${vary ? ', every value varied' : ''}${fresh ? ', new strings' : ''})`);
  if (phases) {
    const [h, p1, b, p2] = med.parts.map((x) => x.toFixed(1));
    console.log(`  that loop, µs per request: head variables ${h}, phase 1 ${p1}, body variables ${b}, phase 2 ${p2}`);
  }
  if (ruleTop > 0) {
    const top = [...ruleNs].sort((a, b) => b[1] - a[1]).slice(0, ruleTop);
    console.log(`  slowest rules, µs per request: ${top.map(([id, ns]) => `${id} ${(ns / (N * REPEAT) / 1000).toFixed(2)}`).join(', ')}`);
  }
}

const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
if (only !== 'post') measure('GET with a query', get);
if (only !== 'get') measure('POST 2 KiB JSON', post);
