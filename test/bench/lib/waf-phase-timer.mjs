// Times the WAF inside a running gateway, per request: phase 1, what lies
// between the phases when the body came with the head (the body's variables,
// the same turn), phase 2, and optionally the slowest top-level rules. Load it
// into a gateway built in dist/:
//
//   node --import ./test/bench/lib/waf-phase-timer.mjs dist/src/cli.js start ...
//   BENCH_GATEWAY_NODE_ARGS="--import ./test/bench/lib/waf-phase-timer.mjs" BENCH_STDOUT_DIR=/tmp/out npx tsx test/bench/waf.ts --only cost
//
// Prints a `waf-phases` line to stdout every WAF_PHASE_INTERVAL_MS (5000);
// WAF_PHASE_RULES=N adds the N slowest rules (each timed with
// process.hrtime, about 0.1 µs more per rule evaluated). The dist/ read is
// the one next to this file's checkout, or WAF_PHASE_DIST.
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dist = process.env.WAF_PHASE_DIST ?? fileURLToPath(new URL('../../../dist', import.meta.url));
const { Transaction } = await import(pathToFileURL(`${dist}/src/filters/waf/engine.js`).href);

const sum = [0, 0, 0, 0];
const count = [0, 0, 0, 0];
/** When each transaction's phase 1 ended. */
const phase1End = new WeakMap();
const runPhase = Transaction.prototype.runPhase;
Transaction.prototype.runPhase = function (phase, vars) {
  const t0 = performance.now();
  if (phase === 2) {
    const e = phase1End.get(this);
    // Under a millisecond: the same turn (a body read later would take longer than that to arrive).
    if (e !== undefined && t0 - e < 1) {
      sum[3] += t0 - e;
      count[3]++;
    }
  }
  const r = runPhase.call(this, phase, vars);
  const t1 = performance.now();
  if (phase === 1 || phase === 2) {
    sum[phase] += t1 - t0;
    count[phase]++;
  }
  if (phase === 1) phase1End.set(this, t1);
  return r;
};

const top = Number(process.env.WAF_PHASE_RULES ?? 0);
const ruleNs = new Map();
if (top > 0) {
  const evalRule = Transaction.prototype.evalRule;
  Transaction.prototype.evalRule = function (rule, isTop) {
    if (!isTop) return evalRule.call(this, rule, isTop);
    const t0 = process.hrtime.bigint();
    const r = evalRule.call(this, rule, isTop);
    ruleNs.set(rule.id, (ruleNs.get(rule.id) ?? 0) + Number(process.hrtime.bigint() - t0));
    return r;
  };
}

const us = (i) => (count[i] === 0 ? '-' : ((sum[i] * 1000) / count[i]).toFixed(1));
setInterval(() => {
  if (count[1] === 0) return;
  let line = `waf-phases: ${count[1]} requests, µs each: phase 1 ${us(1)}, between the phases (same turn, ${count[3]}) ${us(3)}, phase 2 ${us(2)}`;
  if (top > 0) line += `; slowest rules: ${[...ruleNs].sort((a, b) => b[1] - a[1]).slice(0, top).map(([id, ns]) => `${id} ${(ns / count[1] / 1000).toFixed(2)}`).join(', ')}`;
  process.stdout.write(`${line}\n`);
  sum.fill(0);
  count.fill(0);
  ruleNs.clear();
}, Number(process.env.WAF_PHASE_INTERVAL_MS ?? 5000)).unref();
