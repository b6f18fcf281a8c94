// Live request figures for the console's overview: requests per second, the
// share of errors and each flag's rate, p50 and p99 latency, one point per
// second for the last five minutes.
//
// Each point is the difference between two readings of the request counters
// (meshgate_requests_total and meshgate_request_duration_seconds summed over
// their label sets: Metrics.requestTotals keeps that sum as requests are
// counted, a few additions each, so a reading costs the same at any number
// of routes; a --workers primary sums its workers'). Quantiles are
// interpolated inside the histogram's buckets as Prometheus'
// histogram_quantile does. The sampler runs only while someone reads it: it
// starts on the first read and stops a minute after the last.
import type { RequestTotals } from '../observability/metrics.js';

/** The request counters summed over every route and service (Metrics.requestTotals). */
export type Totals = RequestTotals;

export interface StatsPoint {
  t: number;
  rps: number;
  /** Share of requests that were errors (0..1) in this interval; 0 without requests. */
  errorRate: number;
  /** Requests per second by flag (flags seen in this interval only). */
  byFlag: Record<string, number>;
  /** Milliseconds; null without requests in the interval. */
  p50: number | null;
  p99: number | null;
}


function emptyTotals(): Totals {
  return { requests: 0, errors: 0, byFlag: {}, bounds: [], cumulative: [], count: 0 };
}

function addBucket(t: Totals, le: number, n: number): void {
  if (!Number.isFinite(le)) return; // +Inf is the count
  let i = t.bounds.indexOf(le);
  if (i < 0) {
    i = t.bounds.findIndex((b) => b > le);
    if (i < 0) i = t.bounds.length;
    t.bounds.splice(i, 0, le);
    t.cumulative.splice(i, 0, 0);
  }
  t.cumulative[i]! += n;
}

/** Totals summed over processes (a --workers primary's over its workers' Metrics.requestTotals). */
export function sumTotals(list: readonly Totals[]): Totals {
  const t = emptyTotals();
  for (const x of list) {
    t.requests += x.requests;
    t.errors += x.errors;
    t.count += x.count;
    for (const [flag, n] of Object.entries(x.byFlag)) t.byFlag[flag] = (t.byFlag[flag] ?? 0) + n;
    for (let i = 0; i < x.bounds.length; i++) addBucket(t, x.bounds[i]!, x.cumulative[i]!);
  }
  return t;
}

/** The q-quantile (0..1) in milliseconds of the observations between two readings, or null without any. */
export function quantileMs(prev: Totals, cur: Totals, q: number): number | null {
  const total = cur.count - prev.count;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (let i = 0; i < cur.bounds.length; i++) {
    const le = cur.bounds[i]!;
    const j = prev.bounds.indexOf(le);
    const inBucket = cur.cumulative[i]! - (j < 0 ? 0 : prev.cumulative[j]!);
    if (inBucket >= rank) {
      const inThis = inBucket - below;
      const frac = inThis > 0 ? (rank - below) / inThis : 1;
      return (lower + (le - lower) * frac) * 1000;
    }
    below = inBucket;
    lower = le;
  }
  // Past the last bound: Prometheus answers the last bound.
  return lower * 1000;
}

export function pointBetween(prev: Totals, cur: Totals, seconds: number, t: number): StatsPoint {
  const requests = Math.max(0, cur.requests - prev.requests);
  const byFlag: Record<string, number> = {};
  for (const [flag, n] of Object.entries(cur.byFlag)) {
    const d = n - (prev.byFlag[flag] ?? 0);
    if (d > 0) byFlag[flag] = d / seconds;
  }
  return {
    t,
    rps: requests / seconds,
    errorRate: requests > 0 ? Math.max(0, cur.errors - prev.errors) / requests : 0,
    byFlag,
    p50: quantileMs(prev, cur, 0.5),
    p99: quantileMs(prev, cur, 0.99),
  };
}

const KEEP = 300;
const IDLE_STOP_MS = 60_000;

export class StatsSampler {
  private readonly points: StatsPoint[] = [];
  private timer: NodeJS.Timeout | undefined;
  private last: { totals: Totals; at: number } | undefined;
  private lastRead = 0;
  private busy = false;

  constructor(
    private readonly read: () => Promise<Totals>,
    readonly intervalMs = 1000,
  ) {}

  /** The points newer than `since` (ms); starts sampling when it was not running. */
  since(since: number): StatsPoint[] {
    this.lastRead = Date.now();
    if (this.timer === undefined) this.start();
    return this.points.filter((p) => p.t > since);
  }

  private start(): void {
    void this.sample();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastRead > IDLE_STOP_MS) return this.stop();
      void this.sample();
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.last = undefined;
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const totals = await this.read();
      const at = Date.now();
      const prev = this.last;
      this.last = { totals, at };
      // Counters that went down (a worker restarted and its sums left the total) give no point for this interval.
      if (!prev || totals.requests < prev.totals.requests || totals.count < prev.totals.count) return;
      this.points.push(pointBetween(prev.totals, totals, (at - prev.at) / 1000, at));
      if (this.points.length > KEEP) this.points.splice(0, this.points.length - KEEP);
    } catch {
      // A reading that failed (a worker that did not answer) leaves a gap in the chart.
    } finally {
      this.busy = false;
    }
  }
}
