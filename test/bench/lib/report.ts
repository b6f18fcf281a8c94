// Machine-readable headline figures for test/bench/suite.ts: each bench calls
// report() where it prints its headline numbers. With MESHGATE_BENCH_REPORT
// set, one JSON line per figure is appended to that file; without it nothing
// happens, so a bench run by hand prints exactly what it printed before.
import { appendFileSync, readFileSync } from 'node:fs';

export interface BenchFigure {
  bench: string;
  metric: string;
  value: number;
  /** The same measurement's reference from the same run (direct, plugin off, 10 services...), when there is one. */
  baseline?: number;
  /** value / baseline unless given (a bench may define it the other way round, e.g. throughput ratio). */
  ratio?: number;
  unit?: string;
  note?: string;
}

/** The 1-minute load average now (the machine is shared: every figure carries it). */
export function loadAvg(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
}

export function report(f: BenchFigure): void {
  const file = process.env.MESHGATE_BENCH_REPORT;
  if (!file) return;
  const ratio = f.ratio ?? (f.baseline !== undefined && f.baseline !== 0 && Number.isFinite(f.baseline) ? f.value / f.baseline : undefined);
  const line = { ...f, ratio, load: loadAvg(), at: new Date().toISOString() };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

/** The median (the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
