// One circuit breaker for one DegradeRule, with Sentinel's semantics:
//
// - Statistics: a single bucket of statIntervalMs aligned to the clock
//   (windowStart = now - now % statIntervalMs), as Sentinel 1.8's
//   LeapArray(sampleCount = 1, statIntervalMs). A request is counted when it
//   completes, into the bucket running at completion time.
// - Judged only on completion, only while CLOSED, and only once the bucket
//   holds at least minRequests completions. Trip is strict greater-than
//   (slow/total > threshold, err/total > threshold, errors > threshold), except
//   that a slow ratio threshold of 1.0 also trips at equality (every call slow).
// - CLOSED -> OPEN for openMs -> HALF_OPEN: the first request after openMs is
//   the single probe, everything else is rejected until it completes. A good
//   probe closes the breaker and resets the bucket; a bad one reopens it for
//   another openMs. A probe that has not completed after probeTimeoutMs counts
//   as bad. A probe that never reached a verdict (the client went away, or a
//   later rule rejected the request) returns the breaker to OPEN with the
//   retry time already due, so the next request probes again.
//
// Where this differs from Sentinel on purpose: in HALF_OPEN only the probe's
// own completion decides (Sentinel lets any completion decide, including
// requests admitted before the breaker opened), and there is a probe timeout.
import type { CircuitBreakerConfig } from '../config/schema.js';
import type { AttemptOutcome } from '../exchange/outcome.js';

export const CLOSED = 0;
export const OPEN = 1;
export const HALF_OPEN = 2;
export type BreakerState = typeof CLOSED | typeof OPEN | typeof HALF_OPEN;
export const STATE_NAMES = ['closed', 'open', 'half_open'] as const;

export type Clock = () => number;

export interface StateChange {
  breaker: CircuitBreaker;
  from: BreakerState;
  to: BreakerState;
  /** The value that caused the change (ratio or count), when there is one. */
  value?: number;
  reason: 'threshold' | 'open_elapsed' | 'probe_ok' | 'probe_failed' | 'probe_timeout' | 'probe_abandoned';
}

const DEFAULT_ERRORS: NonNullable<CircuitBreakerConfig['errors']> = ['connect-failure', 'timeout', 'reset', '5xx'];

/**
 * Precompiled "is this outcome an error" test for a rule's `errors` list.
 * Returns undefined for outcomes that say nothing about the upstream
 * (the client went away), which are not counted at all.
 */
export function compileErrorTest(errors: CircuitBreakerConfig['errors']): (o: AttemptOutcome) => boolean | undefined {
  const list = errors ?? DEFAULT_ERRORS;
  const statuses = new Uint8Array(600);
  let connect = false;
  let timeout = false;
  let reset = false;
  let gatewayError = false;
  for (const e of list) {
    if (typeof e === 'number') statuses[e] = 1;
    else if (e === 'connect-failure') connect = true;
    else if (e === 'timeout') timeout = true;
    else if (e === 'reset') reset = true;
    else if (e === '5xx') {
      for (let s = 500; s < 600; s++) statuses[s] = 1;
      gatewayError = true;
    } else if (e === '4xx') for (let s = 400; s < 500; s++) statuses[s] = 1;
  }
  return (o) => {
    const f = o.failure;
    if (f === undefined) return o.status !== undefined && o.status < 600 && statuses[o.status] === 1;
    switch (f) {
      case 'aborted':
        return undefined;
      case 'connect-failure':
        return connect;
      case 'timeout':
        return timeout;
      case 'reset':
      case 'refused-stream':
        return reset;
      case 'protocol':
        // The gateway answers a protocol error with 502: an error wherever 5xx is.
        return gatewayError;
    }
  };
}

export interface BreakerOptions {
  clock: Clock;
  /** Used when the rule sets no probeTimeoutMs (the service's request timeout). */
  defaultProbeTimeoutMs: number;
  onStateChange(change: StateChange): void;
}

export class CircuitBreaker {
  state: BreakerState = CLOSED;
  /** OPEN: the time from which the next request may probe. */
  nextRetryAt = 0;
  windowStart = 0;
  total = 0;
  /** Slow completions (slow_ratio) or errors (error_ratio, error_count) in the bucket. */
  bad = 0;
  /** Identifies the probe in flight; a stale permit cannot decide. */
  private probeToken = 0;
  probeStartedAt = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  probeTimeoutMs: number;
  private readonly isError: (o: AttemptOutcome) => boolean | undefined;
  private readonly slowMs: number;
  private readonly interval: number;

  constructor(
    public rule: CircuitBreakerConfig,
    /** Rule position in the service's list (for logs and the admin view). */
    public index: number,
    /** Where the breaker applies: 'service' or an instance id (host:port). */
    readonly scope: string,
    private opts: BreakerOptions,
  ) {
    this.isError = compileErrorTest(rule.errors);
    this.slowMs = rule.strategy === 'slow_ratio' ? (rule.maxRtMs ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY;
    this.interval = rule.statIntervalMs;
    this.probeTimeoutMs = rule.probeTimeoutMs ?? opts.defaultProbeTimeoutMs;
  }

  /**
   * May a request pass now? Has no side effects except expiring a probe that
   * timed out (a real transition). Call `admit` for each breaker only once
   * every breaker of the request said yes.
   */
  allows(now: number): boolean {
    if (this.state === CLOSED) return true;
    if (this.state === HALF_OPEN) {
      if (now - this.probeStartedAt < this.probeTimeoutMs) return false;
      this.expireProbe();
    }
    return now >= this.nextRetryAt;
  }

  /** Admit a request `allows` said yes to. Returns a probe token (> 0) when this request is the half-open probe, else 0. */
  admit(now: number): number {
    if (this.state === CLOSED) return 0;
    // OPEN and the retry time has come: this request is the single probe.
    this.state = HALF_OPEN;
    this.probeStartedAt = now;
    const token = ++this.probeToken;
    this.change(OPEN, HALF_OPEN, 'open_elapsed');
    // The timer only makes a stuck probe visible without traffic; `allows` checks the same deadline.
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      if (this.state === HALF_OPEN && this.probeToken === token && this.opts.clock() - this.probeStartedAt >= this.probeTimeoutMs) this.expireProbe();
    }, this.probeTimeoutMs + 1);
    this.probeTimer.unref();
    return token;
  }

  /** A probe admitted by `admit` will never complete (a later breaker or rule rejected the request). */
  abandon(token: number, now: number): void {
    if (this.state !== HALF_OPEN || token !== this.probeToken) return;
    this.clearProbeTimer();
    this.state = OPEN;
    this.nextRetryAt = now;
    this.change(HALF_OPEN, OPEN, 'probe_abandoned');
  }

  /** A request admitted by this breaker completed. `token` is the probe token from `admit` (0: not the probe). */
  complete(outcome: AttemptOutcome, rtMs: number, now: number, token: number): void {
    const err = this.isError(outcome);
    if (err === undefined) {
      // The client went away: nothing learnt about the upstream.
      if (token !== 0) this.abandon(token, now);
      return;
    }
    const bad = this.rule.strategy === 'slow_ratio' ? rtMs > this.slowMs : err;
    const start = now - (now % this.interval);
    if (start !== this.windowStart) {
      this.windowStart = start;
      this.total = 0;
      this.bad = 0;
    }
    this.total++;
    if (bad) this.bad++;

    if (token !== 0) {
      if (this.state !== HALF_OPEN || token !== this.probeToken) return; // timed out meanwhile
      this.clearProbeTimer();
      if (bad) {
        this.state = OPEN;
        this.nextRetryAt = now + this.rule.openMs;
        this.change(HALF_OPEN, OPEN, 'probe_failed', 1);
      } else {
        this.state = CLOSED;
        this.total = 0;
        this.bad = 0;
        this.change(HALF_OPEN, CLOSED, 'probe_ok');
      }
      return;
    }
    if (this.state !== CLOSED || this.total < this.rule.minRequests) return;
    const value = this.rule.strategy === 'error_count' ? this.bad : this.bad / this.total;
    const threshold = this.rule.threshold;
    if (value > threshold || (this.rule.strategy === 'slow_ratio' && threshold === 1 && value === 1)) {
      this.state = OPEN;
      this.nextRetryAt = now + this.rule.openMs;
      this.change(CLOSED, OPEN, 'threshold', value);
    }
  }

  private expireProbe(): void {
    this.clearProbeTimer();
    this.state = OPEN;
    // The probe failed at its deadline: open from then on.
    this.nextRetryAt = this.probeStartedAt + this.probeTimeoutMs + this.rule.openMs;
    this.change(HALF_OPEN, OPEN, 'probe_timeout');
  }

  private clearProbeTimer(): void {
    if (this.probeTimer) {
      clearTimeout(this.probeTimer);
      this.probeTimer = undefined;
    }
  }

  private change(from: BreakerState, to: BreakerState, reason: StateChange['reason'], value?: number): void {
    this.opts.onStateChange({ breaker: this, from, to, reason, value });
  }

  /**
   * Carry this breaker into a new config whose rule has the same content
   * (only its position or fallback changed): state, window and a probe in
   * flight stay valid.
   */
  rebind(rule: CircuitBreakerConfig, index: number, onStateChange: (c: StateChange) => void, defaultProbeTimeoutMs: number): void {
    this.rule = rule;
    this.index = index;
    this.opts = { ...this.opts, onStateChange, defaultProbeTimeoutMs };
    this.probeTimeoutMs = rule.probeTimeoutMs ?? defaultProbeTimeoutMs;
  }

  close(): void {
    this.clearProbeTimer();
  }

  describe(now: number): Record<string, unknown> {
    const r = this.rule;
    const inWindow = now - (now % this.interval) === this.windowStart;
    const total = inWindow ? this.total : 0;
    const bad = inWindow ? this.bad : 0;
    return {
      rule: this.index,
      strategy: r.strategy,
      threshold: r.threshold,
      ...(r.maxRtMs !== undefined ? { maxRtMs: r.maxRtMs } : {}),
      minRequests: r.minRequests,
      statIntervalMs: r.statIntervalMs,
      openMs: r.openMs,
      scope: this.scope,
      state: STATE_NAMES[this.state],
      window: {
        start: new Date(inWindow ? this.windowStart : now - (now % this.interval)).toISOString(),
        total,
        [r.strategy === 'slow_ratio' ? 'slow' : 'errors']: bad,
        ratio: total > 0 ? bad / total : 0,
      },
      ...(this.state === OPEN ? { retryAt: new Date(this.nextRetryAt).toISOString() } : {}),
      ...(this.state === HALF_OPEN ? { probeSince: new Date(this.probeStartedAt).toISOString(), probeTimeoutMs: this.probeTimeoutMs } : {}),
    };
  }
}
