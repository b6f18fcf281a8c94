// Command-line options of the benchmarks: `--name value` and `--flag`.
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
