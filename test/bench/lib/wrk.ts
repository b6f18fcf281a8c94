// Reading wrk's `--latency` output: requests per second, p50 and p99 in ms,
// and errors (non-2xx/3xx answers plus socket errors). Shared by the benches.

export interface WrkResult {
  rps: number;
  /** ms */
  p50: number;
  /** ms */
  p99: number;
  errors: number;
}

/** A wrk run and the CPU the measured process spent per request (µs). */
export interface MeasuredRun extends WrkResult {
  cpuUsPerReq: number;
}

function wrkMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n;
}

export function parseWrk(out: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const p = (q: string): number => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    if (!m) throw new Error(`no ${q}% in wrk output:\n${out}`);
    return wrkMs(m[1]!, m[2]!);
  };
  if (!rps) throw new Error(`no Requests/sec in wrk output:\n${out}`);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = Number(non2xx?.[1] ?? 0) + (sock ? sock.slice(1).reduce((s, x) => s + Number(x), 0) : 0);
  return { rps: Number(rps[1]), p50: p('50'), p99: p('99'), errors };
}
