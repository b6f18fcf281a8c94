// Command-line options of the benchmarks: `--name value` and `--flag`.
import { availableParallelism } from 'node:os';

export const argv = process.argv.slice(2);

/** The number after `--name`, or `def`. */
export function opt(name: string, def: number): number {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
}

/** The word after `--name`, or `def`. */
export function optString(name: string, def: string): string;
export function optString(name: string): string | undefined;
export function optString(name: string, def?: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : def;
}

/** Whether `--name` is on the command line. */
export function flag(name: string): boolean {
  return argv.includes(`--${name}`);
}

/**
 * The options every wrk-driven benchmark takes: `--rounds`, `--seconds` (per
 * run), `--warmup` (seconds before each run), `--connections`, and `--no-pin`
 * (pinning needs two CPUs); `defaults` sets a benchmark's own defaults.
 */
export function runOptions(defaults: { rounds?: number; seconds?: number; warmup?: number; connections?: number } = {}): {
  rounds: number;
  seconds: number;
  warmup: number;
  connections: number;
  pin: boolean;
} {
  return {
    rounds: opt('rounds', defaults.rounds ?? 3),
    seconds: opt('seconds', defaults.seconds ?? 8),
    warmup: opt('warmup', defaults.warmup ?? 3),
    connections: opt('connections', defaults.connections ?? 32),
    pin: !flag('no-pin') && availableParallelism() >= 2,
  };
}
