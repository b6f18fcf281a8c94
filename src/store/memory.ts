// In-process counter store: fixed windows keyed by window start.
import type { CounterStore } from './types.js';

interface Slot {
  window: number;
  value: number;
  expires: number;
}

export class MemoryStore implements CounterStore {
  readonly kind = 'memory' as const;
  private readonly counters = new Map<string, Slot>();
  private readonly flags = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepMs = 10_000) {
    this.sweeper = setInterval(() => this.sweep(), sweepMs).unref();
  }

  incr(key: string, windowMs: number, delta = 1): number {
    const now = Date.now();
    const window = Math.floor(now / windowMs);
    let slot = this.counters.get(key);
    if (!slot || slot.window !== window) {
      slot = { window, value: 0, expires: (window + 1) * windowMs };
      this.counters.set(key, slot);
    }
    slot.value += delta;
    return slot.value;
  }

  get(key: string, windowMs: number): number {
    const slot = this.counters.get(key);
    return slot && slot.window === Math.floor(Date.now() / windowMs) ? slot.value : 0;
  }

  setFlag(key: string, ttlMs: number): void {
    this.flags.set(key, Date.now() + ttlMs);
  }

  hasFlag(key: string): boolean {
    const until = this.flags.get(key);
    if (until === undefined) return false;
    if (until <= Date.now()) {
      this.flags.delete(key);
      return false;
    }
    return true;
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, s] of this.counters) if (s.expires <= now) this.counters.delete(k);
    for (const [k, t] of this.flags) if (t <= now) this.flags.delete(k);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
