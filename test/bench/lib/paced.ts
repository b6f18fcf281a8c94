// One fixed-rate run of lib/proxy-paced.ts in its own process (the load
// generator never shares an event loop with what it measures), its JSON line
// parsed. For the benches that compare a gateway's latency quiet and under
// something (churn, the console's reads).
import { join } from 'node:path';
import { lastJsonLine, ROOT, runProcess } from './procs.js';

export interface Latencies {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** What proxy-paced.ts prints (milliseconds; service: from the request's write, fromDue: from when it was due). */
export interface PacedResult {
  targetRate: number;
  achievedRate: number;
  measured: number;
  errors: number;
  maxQueued: number;
  service: Latencies;
  fromDue: Latencies;
}

export async function runPaced(url: string, o: { rate: number; seconds: number; warmup: number; connections?: number }, cpu?: number): Promise<PacedResult> {
  const args = ['--import', 'tsx', join(ROOT, 'test/bench/lib/proxy-paced.ts'), '--rate', String(o.rate), '--seconds', String(o.seconds), '--warmup', String(o.warmup), '--connections', String(o.connections ?? 32), url];
  const out = await runProcess(process.execPath, args, cpu);
  return lastJsonLine<PacedResult>(out);
}
