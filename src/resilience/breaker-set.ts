// The circuit breakers of one service (BreakerSet): rules with scope
// 'service' share one breaker each; rules with scope 'instance' get one
// breaker per instance, made on first use. A request passes only when every
// breaker that applies to it allows it (Sentinel checks every DegradeRule of
// a resource); its outcome is reported to all of them.
import type { Logger } from 'pino';
import type { Instance } from '../balancing/instance.js';
import type { CircuitBreakerConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { AttemptOutcome } from '../exchange/outcome.js';
import { CircuitBreaker, CLOSED, HALF_OPEN, OPEN, STATE_NAMES, type BreakerState, type Clock, type StateChange } from './breaker.js';
import type { BreakerPermit, BreakerSet } from './types.js';

/** Identity of a rule for carrying state across reloads (the fallback does not affect breaker state). */
export function ruleKey(rule: CircuitBreakerConfig): string {
  const { fallback: _fallback, ...rest } = rule;
  return JSON.stringify(rest);
}

class Permit implements BreakerPermit {
  constructor(
    private readonly set: ServiceBreakers,
    private readonly breakers: readonly CircuitBreaker[],
    /** Probe tokens parallel to `breakers` (undefined: no probe in this request). */
    private readonly tokens: readonly number[] | undefined,
  ) {}

  done(outcome: AttemptOutcome, rtMs: number): void {
    const now = this.set.clock();
    const bs = this.breakers;
    const tokens = this.tokens;
    for (let i = 0; i < bs.length; i++) bs[i]!.complete(outcome, rtMs, now, tokens ? tokens[i]! : 0);
  }
}

interface Entry {
  /** Service-scope breakers followed by this instance's breakers. */
  breakers: CircuitBreaker[];
  /** The permit for requests that carry no probe (stateless, shared). */
  permit: Permit;
}

export interface BreakerDeps {
  log: Pick<Logger, 'info' | 'warn' | 'debug'>;
  metrics?: Metrics;
  clock?: Clock;
  /** Is this instance id still in the service? (instance-scope breakers of gone instances are dropped) */
  isLive?: (id: string) => boolean;
}

export class ServiceBreakers implements BreakerSet {
  readonly clock: Clock;
  readonly perInstance: boolean;
  readonly keys: string[];
  /** Signature of the whole rule list: unchanged signature, unchanged set. */
  readonly signature: string;
  private readonly serviceBreakers: CircuitBreaker[] = [];
  private readonly instanceRules: Array<{ rule: CircuitBreakerConfig; index: number; key: string }> = [];
  private readonly instances = new Map<string, Entry>();
  private readonly serviceEntry: Entry;
  private closed = false;
  private sweepAt = 64;

  constructor(
    readonly service: string,
    readonly rules: readonly CircuitBreakerConfig[],
    private readonly deps: BreakerDeps,
    /** Default probe timeout: the service's request timeout. */
    readonly defaultProbeTimeoutMs: number,
    previous?: ServiceBreakers,
  ) {
    this.clock = deps.clock ?? Date.now;
    this.keys = rules.map(ruleKey);
    this.perInstance = rules.some((r) => r.scope === 'instance');
    this.signature = JSON.stringify(this.keys);
    // Breakers of rules that did not change keep their state. Rules are matched
    // by content, not position, so adding or removing another rule resets nothing.
    const reuse = new Map<string, CircuitBreaker[]>();
    const reuseInst = new Map<string, Map<string, CircuitBreaker>>();
    if (previous) {
      for (const b of previous.serviceBreakers) push(reuse, previous.keys[b.index]!, b);
      for (const [id, e] of previous.instances) {
        for (const b of e.breakers) {
          if (b.scope === 'service') continue;
          const k = previous.keys[b.index]!;
          let m = reuseInst.get(k);
          if (!m) reuseInst.set(k, (m = new Map()));
          m.set(id, b);
        }
      }
    }
    const onChange = (c: StateChange): void => this.onStateChange(c);
    rules.forEach((rule, index) => {
      const key = this.keys[index]!;
      if (rule.scope === 'instance') {
        this.instanceRules.push({ rule, index, key });
        return;
      }
      const old = reuse.get(key)?.shift();
      if (old) old.rebind(rule, index, onChange, defaultProbeTimeoutMs);
      this.serviceBreakers.push(old ?? this.make(rule, index, 'service'));
    });
    if (reuseInst.size > 0 && this.instanceRules.length > 0) {
      const ids = new Set<string>();
      for (const m of reuseInst.values()) for (const id of m.keys()) ids.add(id);
      for (const id of ids) {
        const own = this.instanceRules.map(({ rule, index, key }) => {
          const m = reuseInst.get(key);
          const old = m?.get(id);
          if (!old) return this.make(rule, index, id);
          m!.delete(id);
          old.rebind(rule, index, onChange, defaultProbeTimeoutMs);
          return old;
        });
        this.instances.set(id, this.entry([...this.serviceBreakers, ...own]));
      }
    }
    this.serviceEntry = this.entry(this.serviceBreakers);
    previous?.retire(this);
    this.publish('service');
    for (const id of this.instances.keys()) this.publish(id);
  }

  private entry(breakers: CircuitBreaker[]): Entry {
    return { breakers, permit: new Permit(this, breakers, undefined) };
  }

  private make(rule: CircuitBreakerConfig, index: number, scope: string): CircuitBreaker {
    return new CircuitBreaker(rule, index, scope, {
      clock: this.clock,
      defaultProbeTimeoutMs: this.defaultProbeTimeoutMs,
      onStateChange: (c) => this.onStateChange(c),
    });
  }

  /** Breakers currently held (service scope first). */
  all(): CircuitBreaker[] {
    const out = [...this.serviceBreakers];
    for (const e of this.instances.values()) for (const b of e.breakers) if (b.scope !== 'service') out.push(b);
    return out;
  }

  tryPass(inst: Instance | undefined): BreakerPermit | undefined {
    let entry = this.serviceEntry;
    if (this.instanceRules.length > 0 && inst !== undefined) entry = this.instances.get(inst.id) ?? this.instanceEntry(inst.id);
    const bs = entry.breakers;
    let allClosed = true;
    for (let i = 0; i < bs.length; i++) {
      if (bs[i]!.state !== CLOSED) {
        allClosed = false;
        break;
      }
    }
    if (allClosed) return entry.permit;
    const now = this.clock();
    for (let i = 0; i < bs.length; i++) if (!bs[i]!.allows(now)) return undefined;
    // Every breaker allows the request: those that are open make it their probe.
    let tokens: number[] | undefined;
    for (let i = 0; i < bs.length; i++) {
      const t = bs[i]!.admit(now);
      if (t !== 0) (tokens ??= new Array<number>(bs.length).fill(0))[i] = t;
    }
    return tokens ? new Permit(this, bs, tokens) : entry.permit;
  }

  private instanceEntry(id: string): Entry {
    // Forget instances that left the service, amortised: sweep when the map doubled since the last sweep.
    if (this.instances.size >= this.sweepAt) {
      const live = this.deps.isLive;
      if (live) this.prune({ has: live } as ReadonlySet<string>);
      this.sweepAt = Math.max(64, this.instances.size * 2);
    }
    const breakers = [...this.serviceBreakers, ...this.instanceRules.map(({ rule, index }) => this.make(rule, index, id))];
    const e = this.entry(breakers);
    this.instances.set(id, e);
    return e;
  }

  /** Drop instance breakers of instances no longer in the service. */
  prune(liveIds: ReadonlySet<string>): void {
    for (const [id, e] of this.instances) {
      if (liveIds.has(id)) continue;
      for (const b of e.breakers) if (b.scope !== 'service') b.close();
      this.instances.delete(id);
      this.deps.metrics?.circuitState.remove(this.service, id);
    }
  }

  private onStateChange(c: StateChange): void {
    const b = c.breaker;
    const fields = {
      service: this.service,
      scope: b.scope,
      rule: b.index,
      strategy: b.rule.strategy,
      from: STATE_NAMES[c.from],
      to: STATE_NAMES[c.to],
      reason: c.reason,
      ...(c.value !== undefined ? { value: c.value, threshold: b.rule.threshold } : {}),
    };
    if (c.to === OPEN && c.reason !== 'probe_abandoned') this.deps.log.warn(fields, 'circuit breaker opened');
    else if (c.to === CLOSED) this.deps.log.info(fields, 'circuit breaker closed');
    else this.deps.log.debug(fields, 'circuit breaker state change');
    this.publish(b.scope);
  }

  /** meshgate_circuit_state per scope: 1 when any breaker there is open, else 2 when one is half-open, else 0. */
  private publish(scope: string): void {
    const m = this.deps.metrics;
    if (!m || this.closed) return;
    const list = scope === 'service' ? this.serviceBreakers : (this.instances.get(scope)?.breakers ?? []);
    let v: BreakerState = CLOSED;
    for (const b of list) {
      if (b.scope !== scope) continue;
      if (b.state === OPEN) v = OPEN;
      else if (b.state === HALF_OPEN && v === CLOSED) v = HALF_OPEN;
    }
    if (scope === 'service' && this.serviceBreakers.length === 0) return;
    m.circuitState.labels(this.service, scope).set(v);
  }

  describe(): Record<string, unknown> {
    const now = this.clock();
    const instances: Record<string, unknown[]> = {};
    for (const [id, e] of this.instances) instances[id] = e.breakers.filter((b) => b.scope !== 'service').map((b) => b.describe(now));
    return {
      service: this.service,
      breakers: this.serviceBreakers.map((b) => b.describe(now)),
      ...(this.instanceRules.length > 0 ? { instances } : {}),
    };
  }

  /** Replaced by `next`: close what it did not carry over and drop metric series it no longer has. */
  private retire(next: ServiceBreakers | undefined): void {
    this.closed = true;
    const kept = new Set(next?.all() ?? []);
    for (const b of this.all()) if (!kept.has(b)) b.close();
    const m = this.deps.metrics;
    if (!m) return;
    if (this.serviceBreakers.length > 0 && !next?.serviceBreakers.length) m.circuitState.remove(this.service, 'service');
    for (const id of this.instances.keys()) if (!next?.instances.has(id)) m.circuitState.remove(this.service, id);
  }

  close(): void {
    this.retire(undefined);
  }
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const l = m.get(k);
  if (l) l.push(v);
  else m.set(k, [v]);
}

/** At most this many other instances are tried when instance breakers refuse one. */
const MAX_ALTERNATIVES = 8;

/**
 * Instance-scope breakers refused `first`: pick other instances (not yet
 * tried) until one passes, so an instance with an open breaker is skipped like
 * an ejected one instead of failing the request. undefined: none passes.
 */
export function passAnotherInstance(
  breakers: BreakerSet,
  first: Instance,
  tried: ReadonlySet<Instance>,
  pick: (exclude: ReadonlySet<Instance>) => Instance | undefined,
): { inst: Instance; permit: BreakerPermit } | undefined {
  const skip = new Set(tried).add(first);
  for (let n = 0; n < MAX_ALTERNATIVES; n++) {
    const inst = pick(skip);
    if (inst === undefined) return undefined;
    const permit = breakers.tryPass(inst);
    if (permit) return { inst, permit };
    skip.add(inst);
  }
  return undefined;
}
