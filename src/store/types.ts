// Shared counters for filters (CC, rate limits, token limits). A memory store
// serves one process; the Redis store shares counters across workers and gateways.

export interface CounterStore {
  readonly kind: 'memory' | 'redis';
  /** Add `delta` to the counter of `key` in the fixed window of `windowMs` now running; returns the window's total. */
  incr(key: string, windowMs: number, delta?: number): number | Promise<number>;
  /** Current value in the running window (0 if none). */
  get(key: string, windowMs: number): number | Promise<number>;
  /** Set a flag that expires (e.g. a block). */
  setFlag(key: string, ttlMs: number): void | Promise<void>;
  hasFlag(key: string): boolean | Promise<boolean>;
  close(): Promise<void>;
}
