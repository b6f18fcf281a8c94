// The flow_control filter (phase traffic): Sentinel FlowRule / GatewayFlowRule.
// A request passes only when every rule that applies to it passes. Rejected:
// 429, flag RL, Retry-After. Queueing rules delay the request instead (the
// only case where this filter returns a promise, besides shared counters).
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { FlowRuleSchema, strict, type FlowRuleConfig } from '../../config/schema.js';
import { defineFilter, type FilterContext, type FilterInstance, type FilterResult, type Rejection } from '../../filters/types.js';
import type { Exchange } from '../../exchange/exchange.js';
import { ownString } from '../../exchange/strings.js';
import type { Clock } from '../breaker.js';
import { REJECT, type Controller, type Gauge } from './controllers.js';
import { compileKey, describeKey, type KeyFn } from './keys.js';
import { SharedCounter } from './shared.js';
import { askPrimaryFlow, controllerFor, flowInClusterWorker } from './primary.js';

export const FlowControlFilterSchema = strict({
  type: z.literal('flow_control'),
  rules: z.array(FlowRuleSchema).min(1),
  /** Share counters across gateways through the store (qps/reject rules only). */
  shared: z.boolean().default(false),
});

export type FlowControlConfig = z.output<typeof FlowControlFilterSchema>;

export const flowControlFilter = defineFilter({
  type: 'flow_control',
  schema: FlowControlFilterSchema,
  create: (config, ctx) => createFlowControl(config, ctx),
});

/** Keys tracked per rule before the oldest are forgotten (a forgotten key starts afresh). */
const MAX_KEYS = 100_000;

interface Rule {
  readonly index: number;
  readonly config: FlowRuleConfig;
  readonly keyOf: KeyFn;
  readonly keyed: boolean;
  readonly ctl: Controller<unknown>;
  /** State of an unkeyed rule. */
  readonly single: unknown;
  readonly states: Map<string, unknown>;
  readonly concurrency: boolean;
  /** Counted through the store (qps + reject with `shared: true`). */
  readonly sharedKey: string | undefined;
  /** Counted by the primary of a --workers cluster (rate rules in a worker, unless shared through Redis). */
  readonly primaryId: string | undefined;
  passed: number;
  rejected: number;
}

let instances = 0;

export interface FlowControlOptions {
  clock?: Clock;
}

export class FlowControl implements FilterInstance {
  readonly type = 'flow_control';
  readonly phase = 'traffic' as const;
  private readonly rules: Rule[];
  private readonly holdKey = `flow_control#${++instances}`;
  private readonly shared: SharedCounter | undefined;
  private readonly clock: Clock;
  readonly store: FilterContext['store'];
  private readonly hasConcurrency: boolean;

  constructor(
    readonly config: FlowControlConfig,
    ctx: FilterContext,
    opts: FlowControlOptions = {},
  ) {
    this.clock = opts.clock ?? Date.now;
    this.store = ctx.store;
    const identity = createHash('sha1')
      .update(`${ctx.route ?? '*'}\u0000${JSON.stringify(config.rules)}`)
      .digest('hex')
      .slice(0, 12);
    this.rules = config.rules.map((r, index) => {
      const at = `rules[${index}]`;
      if (r.metric === 'concurrency' && r.behavior !== 'reject') throw new Error(`${at}.behavior: concurrency rules only reject (warm_up and queue shape QPS)`);
      if (r.behavior === 'warm_up' && r.count <= 0) throw new Error(`${at}.count: warm_up needs a count above 0`);
      let keyOf: KeyFn;
      try {
        keyOf = compileKey(r.key, r.match);
      } catch (e) {
        throw new Error(`${at}.${(e as Error).message}`);
      }
      const ctl: Controller<unknown> = controllerFor(r);
      const isShared = config.shared && r.metric === 'qps' && r.behavior === 'reject';
      // Under --workers, the memory-store buckets of a rate rule live in the primary (one limit for the gateway).
      const viaPrimary = !(isShared && ctx.store.kind === 'redis') && r.metric !== 'concurrency' && flowInClusterWorker();
      return {
        index,
        config: r,
        keyOf,
        keyed: r.key !== undefined,
        ctl,
        single: ctl.create(this.clock()),
        states: new Map(),
        concurrency: r.metric === 'concurrency',
        sharedKey: isShared && !viaPrimary ? `flow:${identity}:${index}:` : undefined,
        primaryId: viaPrimary ? `${identity}:${index}` : undefined,
        passed: 0,
        rejected: 0,
      };
    });
    this.hasConcurrency = this.rules.some((r) => r.concurrency);
    this.shared = this.rules.some((r) => r.sharedKey) ? new SharedCounter(ctx.store, ctx.log) : undefined;
  }

  private stateOf(r: Rule, key: string, now: number): unknown {
    if (!r.keyed) return r.single;
    let s = r.states.get(key);
    if (s === undefined) {
      if (r.states.size >= MAX_KEYS) r.states.delete(r.states.keys().next().value!);
      // Kept past the request: a key cut from a header can be a view of its whole line (see ownString).
      const own = ownString(key);
      s = r.ctl.create(now);
      if (r.concurrency) (s as Gauge).key = own;
      r.states.set(own, s);
    }
    return s;
  }

  onRequest(ex: Exchange): FilterResult | Promise<FilterResult> {
    return this.run(ex, 0, 0);
  }

  private run(ex: Exchange, from: number, wait: number): FilterResult | Promise<FilterResult> {
    const rules = this.rules;
    const now = this.clock();
    for (let i = from; i < rules.length; i++) {
      const r = rules[i]!;
      const key = r.keyOf(ex);
      if (key === undefined) continue;
      if (r.sharedKey !== undefined) {
        const limit = r.config.burst + Math.trunc(r.config.count);
        const windowMs = r.config.intervalSec * 1000;
        const n = this.shared!.incr(r.sharedKey + key, windowMs);
        if (typeof n === 'number') {
          if (n > limit) return this.reject(ex, r, windowMs - (now % windowMs));
          r.passed++;
          continue;
        }
        return n.then((count) => {
          if (count === undefined) {
            // Store unavailable: the local bucket decides.
            const s = this.stateOf(r, key, this.clock());
            if (r.ctl.acquire(s, this.clock()) === REJECT) return this.reject(ex, r, r.ctl.retryAfterMs(s, this.clock()));
          } else if (count > limit) return this.reject(ex, r, windowMs - (this.clock() % windowMs));
          r.passed++;
          return this.run(ex, i + 1, wait);
        });
      }
      if (r.primaryId !== undefined) {
        const next = i + 1;
        return askPrimaryFlow(r.primaryId, r.config, key).then((ans) => {
          let res: number;
          let retry = 0;
          if (ans) {
            res = ans.res;
            retry = ans.retryAfterMs;
          } else {
            // The primary did not answer: this worker's own bucket decides.
            const ls = this.stateOf(r, key, this.clock());
            res = r.ctl.acquire(ls, this.clock());
            if (res === REJECT) retry = r.ctl.retryAfterMs(ls, this.clock());
          }
          if (res === REJECT) return this.reject(ex, r, retry);
          r.passed++;
          return this.run(ex, next, Math.max(wait, res));
        });
      }
      const s = this.stateOf(r, key, now);
      const res = r.ctl.acquire(s, now);
      if (res === REJECT) return this.reject(ex, r, r.ctl.retryAfterMs(s, now));
      r.passed++;
      if (r.concurrency) this.hold(ex, s as Gauge);
      if (res > wait) wait = res;
    }
    if (wait > 0) return new Promise<undefined>((resolve) => setTimeout(resolve, wait));
    return undefined;
  }

  private hold(ex: Exchange, g: Gauge): void {
    const held = ex.vars[this.holdKey] as Gauge[] | undefined;
    if (held) held.push(g);
    else ex.vars[this.holdKey] = [g];
  }

  private reject(ex: Exchange, r: Rule, retryAfterMs: number): Rejection {
    r.rejected++;
    this.release(ex, r.index);
    ex.vars.rejectedBy = 'flow_control';
    return {
      status: 429,
      flag: 'RL',
      message: `rate limited (flow_control rule ${r.index}: ${r.config.metric} ${r.config.count})`,
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
    };
  }

  /** Give back concurrency taken for this exchange. */
  private release(ex: Exchange, _rule?: number): void {
    if (!this.hasConcurrency) return;
    const held = ex.vars[this.holdKey] as Gauge[] | undefined;
    if (!held) return;
    ex.vars[this.holdKey] = undefined;
    for (const g of held) {
      g.n--;
      if (g.n <= 0 && g.key !== '') this.forget(g);
    }
  }

  private forget(g: Gauge): void {
    for (const r of this.rules) {
      if (r.concurrency && r.keyed && r.states.get(g.key) === g) {
        r.states.delete(g.key);
        return;
      }
    }
  }

  onDone(ex: Exchange): void {
    this.release(ex);
  }

  describe(): unknown {
    const now = this.clock();
    return {
      type: this.type,
      shared: this.config.shared ? { store: this.store.kind, state: this.shared?.state ?? 'local' } : undefined,
      rules: this.rules.map((r) => ({
        rule: r.index,
        metric: r.config.metric,
        count: r.config.count,
        behavior: r.config.behavior,
        key: describeKey(r.config.key),
        passed: r.passed,
        rejected: r.rejected,
        ...(r.keyed ? { keys: r.states.size } : { state: r.ctl.describe(r.single, now) }),
      })),
    };
  }

  close(): void {
    this.shared?.close();
  }
}

export function createFlowControl(config: FlowControlConfig, ctx: FilterContext, opts?: FlowControlOptions): FilterInstance {
  // Same rules at the same place in the new config: keep counters, buckets and in-flight counts.
  const prev = ctx.previous;
  if (prev instanceof FlowControl && prev.store === ctx.store && JSON.stringify(prev.config) === JSON.stringify(config)) return prev;
  return new FlowControl(config, ctx, opts);
}
