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
  /** Key prefix of a shared store. */
  readonly prefix?: string;
  /**
   * Runs a script atomically in the store (Redis: a Lua script, by its SHA
   * once loaded): one round trip. Absent in the memory store.
   */
  eval?(script: StoreScript, keys: string[], args: (string | number)[]): Promise<unknown>;
  /** Loads a script ahead of its first eval (so the first check is not the one that pays for it). */
  load?(script: StoreScript): void;
  /** false while the store cannot serve (not connected, bad credentials): callers use their fallback at once instead of waiting. */
  available?(): boolean;
  /** The last connection error, if any. */
  readonly lastError?: string;
}

export interface StoreScript {
  /** A name unique per script text. */
  readonly name: string;
  readonly lua: string;
}
