// How late the machine wakes a sleeping process: a 1 ms timer in a process
// that does nothing else, for SECONDS seconds; prints one JSON line with the
// lateness percentiles (ms past the 1 ms asked for). A gateway that sleeps
// between requests waits as long for the scheduler when a request arrives, so
// this is the floor under any tail latency measured on the same machine at
// the same time (a VM whose idle vCPU the host has descheduled wakes late).
//
//   node test/bench/lib/timer-lateness.mjs SECONDS
import { performance } from 'node:perf_hooks';

const seconds = Number(process.argv[2] ?? 10);
const late = [];
const end = performance.now() + seconds * 1000;
let asked = performance.now();
function tick() {
  const now = performance.now();
  late.push(Math.max(0, now - asked - 1));
  if (now >= end) return done();
  asked = now;
  setTimeout(tick, 1);
}
function done() {
  late.sort((a, b) => a - b);
  const q = (p) => Number(late[Math.min(late.length - 1, Math.floor(p * late.length))].toFixed(3));
  const over = (ms) => late.filter((x) => x > ms).length;
  process.stdout.write(`${JSON.stringify({ samples: late.length, p50: q(0.5), p99: q(0.99), p999: q(0.999), max: q(1), over1ms: over(1), over2_5ms: over(2.5) })}\n`);
}
setTimeout(tick, 1);
