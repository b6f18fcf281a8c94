// API keys of one provider: rotated round robin; a key that fails
// (keyFailover.on, failureThreshold times in a row) is taken out of rotation
// and probed back in. The probe is a cheap authenticated call to the provider
// (its model list) made after cooldownMs; while probes fail, the wait doubles
// up to maxCooldownMs. A real request that succeeds with a key also clears
// its failures.
//
// When every key is out, requests still go out with the key that has been out
// longest rather than failing at the gateway: the provider's answer is the
// truth, and a provider-wide outage must not need a probe cycle to end.

export interface KeyPoolOptions {
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

interface KeyState {
  readonly key: string;
  failures: number;
  out: boolean;
  /** When it was taken out (ms). */
  outSince: number;
  cooldownMs: number;
  timer: NodeJS.Timeout | undefined;
  probing: boolean;
}

/** Answers whether a key works again (true: back in rotation). */
export type KeyProbe = (key: string) => Promise<boolean>;

export class KeyPool {
  private readonly states: KeyState[];
  private next = 0;
  private closed = false;

  constructor(
    keys: readonly string[],
    private readonly opts: KeyPoolOptions,
    private readonly probe: KeyProbe | undefined,
    /** Told when a key leaves or rejoins rotation (logs). */
    private readonly onChange?: (key: string, out: boolean) => void,
  ) {
    // A provider without keys (a local vLLM) is one "key" that sends no auth.
    const list = keys.length > 0 ? keys : [''];
    this.states = list.map((key) => ({ key, failures: 0, out: false, outSince: 0, cooldownMs: opts.cooldownMs, timer: undefined, probing: false }));
  }

  /**
   * Take over the verdicts of the pool this one replaces (a config reload of
   * the same provider): keys out stay out, and are probed on the same
   * schedule. The previous pool is left as it is (the reload may yet be refused).
   */
  adopt(prev: KeyPool): void {
    for (const s of this.states) {
      const p = prev.states.find((x) => x.key === s.key);
      if (!p) continue;
      s.failures = p.failures;
      if (p.out) {
        s.out = true;
        s.outSince = p.outSince;
        s.cooldownMs = p.cooldownMs;
        this.schedule(s);
      }
    }
  }

  get size(): number {
    return this.states.length;
  }

  /** Keys in rotation now. */
  available(): string[] {
    return this.states.filter((s) => !s.out).map((s) => s.key);
  }

  /** The next key in rotation not in `exclude`; when all are out, the one out longest; undefined when every key is excluded. */
  pick(exclude?: ReadonlySet<string>): string | undefined {
    const n = this.states.length;
    for (let i = 0; i < n; i++) {
      const s = this.states[(this.next + i) % n]!;
      if (s.out || exclude?.has(s.key)) continue;
      this.next = (this.next + i + 1) % n;
      return s.key;
    }
    let oldest: KeyState | undefined;
    for (const s of this.states) if (!exclude?.has(s.key) && (oldest === undefined || s.outSince < oldest.outSince)) oldest = s;
    return oldest?.key;
  }

  success(key: string): void {
    const s = this.find(key);
    if (!s) return;
    s.failures = 0;
    if (s.out) this.restore(s);
  }

  failure(key: string): void {
    const s = this.find(key);
    if (!s || s.out) return;
    if (++s.failures < this.opts.failureThreshold) return;
    s.out = true;
    s.outSince = Date.now();
    s.cooldownMs = this.opts.cooldownMs;
    this.onChange?.(key, true);
    this.schedule(s);
  }

  close(): void {
    this.closed = true;
    for (const s of this.states) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = undefined;
    }
  }

  private find(key: string): KeyState | undefined {
    return this.states.find((s) => s.key === key);
  }

  private restore(s: KeyState): void {
    s.out = false;
    s.failures = 0;
    s.cooldownMs = this.opts.cooldownMs;
    if (s.timer) clearTimeout(s.timer);
    s.timer = undefined;
    this.onChange?.(s.key, false);
  }

  private schedule(s: KeyState): void {
    if (this.closed || !this.probe) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (this.closed || !s.out || s.probing) return;
      s.probing = true;
      this.probe!(s.key)
        .catch(() => false)
        .then((ok) => {
          s.probing = false;
          if (this.closed || !s.out) return;
          if (ok) this.restore(s);
          else {
            s.cooldownMs = Math.min(s.cooldownMs * 2, this.opts.maxCooldownMs);
            this.schedule(s);
          }
        });
    }, s.cooldownMs);
    s.timer.unref();
  }
}
