// Traffic shaping controllers, one state per key. The math follows Sentinel:
//
// - TokenBucket: GatewayFlowRule / ParamFlowChecker.passDefaultLocalCheck.
//   A key's bucket holds up to count + burst tokens and starts full. Tokens
//   are added only once more than intervalSec has passed since the last
//   refill, passTime * count / interval of them, capped.
// - Throttle (behavior queue): RateLimiterController / passThrottleLocalCheck.
//   Requests are spaced costMs = round(1000 * intervalSec / count) apart; a
//   request that would wait maxQueueingMs or more is rejected.
// - WarmUp: WarmUpController (Guava's SmoothWarmingUp turned into a QPS
//   limit). Starts cold at count / coldFactor and rises to count as stored
//   tokens are used up over about warmUpSec of traffic.
// - Concurrency: requests in flight per key (FLOW_GRADE_THREAD).
//
// Controllers take `now` so tests can drive them with a fake clock.

/** Result of acquire: >= 0 pass after that many ms (0: now); REJECT: reject. */
export const REJECT = -1;

export interface Controller<S> {
  create(now: number): S;
  /** Take one permit from `s`. */
  acquire(s: S, now: number): number;
  /** After a rejection: ms until a permit may be available. */
  retryAfterMs(s: S, now: number): number;
  describe(s: S, now: number): Record<string, unknown>;
}

interface Bucket {
  tokens: number;
  lastAdd: number;
  fresh: boolean;
}

export class TokenBucket implements Controller<Bucket> {
  private readonly count: number;
  private readonly max: number;
  private readonly durationMs: number;

  constructor(count: number, burst: number, intervalSec: number) {
    // Sentinel takes the threshold of a gateway rule as a whole number.
    this.count = Math.trunc(count);
    this.max = this.count + burst;
    this.durationMs = intervalSec * 1000;
  }

  create(now: number): Bucket {
    return { tokens: this.max, lastAdd: now, fresh: true };
  }

  acquire(b: Bucket, now: number): number {
    if (this.count === 0) return REJECT;
    if (b.fresh) {
      // First request of a key: fill the bucket and take one.
      b.fresh = false;
      b.tokens = this.max - 1;
      b.lastAdd = now;
      return 0;
    }
    const passTime = now - b.lastAdd;
    if (passTime > this.durationMs) {
      const add = Math.floor((passTime * this.count) / this.durationMs);
      const next = add + b.tokens > this.max ? this.max - 1 : b.tokens + add - 1;
      if (next < 0) return REJECT;
      b.tokens = next;
      b.lastAdd = now;
      return 0;
    }
    if (b.tokens >= 1) {
      b.tokens--;
      return 0;
    }
    return REJECT;
  }

  retryAfterMs(b: Bucket, now: number): number {
    return this.count === 0 ? this.durationMs : Math.max(0, b.lastAdd + this.durationMs - now);
  }

  describe(b: Bucket): Record<string, unknown> {
    return { tokens: b.fresh ? this.max : b.tokens, maxTokens: this.max };
  }
}

interface Slot {
  /** When the last admitted request passes (or passed). -1: none yet. */
  latestPassed: number;
}

export class Throttle implements Controller<Slot> {
  readonly costMs: number;

  constructor(
    private readonly count: number,
    intervalSec: number,
    private readonly maxQueueingMs: number,
  ) {
    this.costMs = count > 0 ? Math.round((1000 * intervalSec) / count) : Number.POSITIVE_INFINITY;
  }

  create(): Slot {
    return { latestPassed: -1 };
  }

  acquire(s: Slot, now: number): number {
    if (this.count <= 0) return REJECT;
    if (s.latestPassed < 0) {
      s.latestPassed = now;
      return 0;
    }
    const expected = s.latestPassed + this.costMs;
    if (expected <= now) {
      s.latestPassed = now;
      return 0;
    }
    const wait = expected - now;
    if (wait >= this.maxQueueingMs) return REJECT;
    s.latestPassed = expected;
    return wait;
  }

  retryAfterMs(s: Slot, now: number): number {
    return this.count <= 0 ? 1000 : Math.max(0, s.latestPassed + this.costMs - this.maxQueueingMs - now);
  }

  describe(s: Slot, now: number): Record<string, unknown> {
    return { queuedMs: Math.max(0, s.latestPassed - now), spacingMs: this.costMs };
  }
}

interface Warm {
  storedTokens: number;
  lastFilled: number;
  /** Start of the current second and the requests passed in it. */
  second: number;
  passed: number;
  /** Requests passed in the second before `second` (0 if that was not the previous one). */
  previousPassed: number;
}

export class WarmUp implements Controller<Warm> {
  private readonly warningToken: number;
  private readonly maxToken: number;
  private readonly slope: number;
  private readonly coolBelow: number;

  constructor(
    private readonly count: number,
    warmUpSec: number,
    private readonly coldFactor: number,
  ) {
    // Sentinel's integer arithmetic, kept so thresholds match it exactly.
    this.warningToken = Math.trunc(Math.trunc(warmUpSec * count) / (coldFactor - 1));
    this.maxToken = this.warningToken + Math.trunc((2 * warmUpSec * count) / (1 + coldFactor));
    this.slope = (coldFactor - 1) / count / (this.maxToken - this.warningToken);
    this.coolBelow = Math.trunc(count) / coldFactor;
  }

  create(): Warm {
    return { storedTokens: 0, lastFilled: 0, second: 0, passed: 0, previousPassed: 0 };
  }

  /** The QPS allowed now, from the stored tokens. */
  limit(w: Warm): number {
    if (this.count <= 0) return 0;
    if (w.storedTokens >= this.warningToken && this.maxToken > this.warningToken) {
      const above = w.storedTokens - this.warningToken;
      // Sentinel rounds up to the next double; a relative epsilon does the same job.
      return (1 / (above * this.slope + 1 / this.count)) * (1 + 1e-12);
    }
    return this.count;
  }

  private roll(w: Warm, now: number): void {
    const second = now - (now % 1000);
    if (second === w.second) return;
    w.previousPassed = second - w.second === 1000 ? w.passed : 0;
    w.second = second;
    w.passed = 0;
    this.syncToken(w, second);
  }

  private syncToken(w: Warm, second: number): void {
    if (second <= w.lastFilled) return;
    const old = w.storedTokens;
    let next = old;
    const elapsed = second - w.lastFilled;
    if (old < this.warningToken) next = old + (elapsed * this.count) / 1000;
    else if (old > this.warningToken && w.previousPassed < this.coolBelow) next = old + (elapsed * this.count) / 1000;
    next = Math.min(Math.trunc(next), this.maxToken);
    w.storedTokens = Math.max(0, next - w.previousPassed);
    w.lastFilled = second;
  }

  acquire(w: Warm, now: number): number {
    this.roll(w, now);
    if (w.passed + 1 <= this.limit(w)) {
      w.passed++;
      return 0;
    }
    return REJECT;
  }

  retryAfterMs(_w: Warm, now: number): number {
    return 1000 - (now % 1000);
  }

  describe(w: Warm, now: number): Record<string, unknown> {
    this.roll(w, now);
    return { allowedQps: Math.floor(this.limit(w)), storedTokens: w.storedTokens, warningToken: this.warningToken, maxToken: this.maxToken, passedThisSecond: w.passed };
  }
}

export interface Gauge {
  n: number;
  key: string;
}

/** Requests in flight per key; release through the filter's onDone. */
export class Concurrency implements Controller<Gauge> {
  constructor(private readonly count: number) {}

  create(): Gauge {
    return { n: 0, key: '' };
  }

  acquire(g: Gauge): number {
    if (g.n + 1 > this.count) return REJECT;
    g.n++;
    return 0;
  }

  retryAfterMs(): number {
    return 1000;
  }

  describe(g: Gauge): Record<string, unknown> {
    return { inFlight: g.n, max: this.count };
  }
}
