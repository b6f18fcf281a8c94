// Nearest-rank percentiles of latency samples (ms), rounded for printing.

export interface LatencyStats {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export function latencyStats(samples: number[], decimals = 2): LatencyStats {
  const v = [...samples].sort((a, b) => a - b);
  const pick = (q: number) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))]!;
  const f = 10 ** decimals;
  const r = (x: number) => Math.round(x * f) / f;
  return { n: v.length, p50: r(pick(0.5)), p99: r(pick(0.99)), max: r(v[v.length - 1]!), mean: r(v.reduce((a, b) => a + b, 0) / v.length) };
}
