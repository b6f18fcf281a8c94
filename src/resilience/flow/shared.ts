// Counters shared through the store (flow_control with `shared: true`).
//
// A Redis round trip per request is a remote dependency on the hot path, and
// the one place where opossum fits: its fire() overhead is small next to a
// network call, and its error-percentage breaker with a call timeout is
// exactly what a store call needs. When the store is slow or down, the breaker
// opens and the rule falls back to a local limit, as Sentinel's cluster flow
// control does with fallbackToLocalWhenFail.
import { EventEmitter } from 'node:events';
import OpossumBreaker from 'opossum';
import type { Logger } from 'pino';
import type { CounterStore } from '../../store/types.js';

/** One bucket rotation for every opossum breaker in the process (instead of a timer each). */
let rotator: EventEmitter | undefined;
let rotatorUsers = 0;
let rotatorTimer: NodeJS.Timeout | undefined;
const BUCKET_MS = 1000;
const BUCKETS = 10;

function acquireRotator(): EventEmitter {
  if (!rotator) rotator = new EventEmitter();
  rotator.setMaxListeners(0);
  if (rotatorUsers++ === 0) {
    rotatorTimer = setInterval(() => rotator!.emit('rotate'), BUCKET_MS);
    rotatorTimer.unref();
  }
  return rotator;
}

function releaseRotator(): void {
  if (--rotatorUsers === 0 && rotatorTimer) {
    clearInterval(rotatorTimer);
    rotatorTimer = undefined;
  }
}

export interface SharedCounterOptions {
  /** Per call; a store slower than this counts as failed. */
  timeoutMs?: number;
  /** How long the store is left alone after the breaker opens. */
  resetTimeoutMs?: number;
}

/**
 * incr() resolves to the shared window count, or undefined when the store is
 * unavailable (the caller then applies its local limit).
 */
export class SharedCounter {
  private readonly breaker: OpossumBreaker<[string, number], number> | undefined;
  private readonly rotator: EventEmitter | undefined;
  failures = 0;

  constructor(
    private readonly store: CounterStore,
    log: Pick<Logger, 'warn' | 'info'>,
    opts: SharedCounterOptions = {},
  ) {
    if (store.kind === 'memory') return; // in-process: synchronous, nothing to protect
    this.rotator = acquireRotator();
    this.breaker = new OpossumBreaker((key: string, windowMs: number) => Promise.resolve(store.incr(key, windowMs)), {
      timeout: opts.timeoutMs ?? 250,
      errorThresholdPercentage: 50,
      volumeThreshold: 5,
      resetTimeout: opts.resetTimeoutMs ?? 5_000,
      rollingCountTimeout: BUCKET_MS * BUCKETS,
      rollingCountBuckets: BUCKETS,
      // Without these, every failure sorts all latency samples of the window and each breaker runs its own timers.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: this.rotator,
    });
    this.breaker.fallback(() => undefined);
    this.breaker.on('failure', () => this.failures++);
    this.breaker.on('open', () => log.warn({ store: store.kind }, 'shared flow counters unavailable: falling back to local limits'));
    this.breaker.on('close', () => log.info({ store: store.kind }, 'shared flow counters available again'));
  }

  incr(key: string, windowMs: number): number | Promise<number | undefined> {
    if (!this.breaker) return this.store.incr(key, windowMs) as number;
    return this.breaker.fire(key, windowMs) as Promise<number | undefined>;
  }

  get state(): 'local' | 'closed' | 'open' | 'half_open' {
    if (!this.breaker) return 'local';
    return this.breaker.opened ? 'open' : this.breaker.halfOpen ? 'half_open' : 'closed';
  }

  close(): void {
    if (!this.breaker) return;
    this.breaker.shutdown();
    releaseRotator();
  }
}
