// The `cc` filter: per-client flood control. Each rule names an identity
// (key.ts), limits per second/minute/hour/day and a block time; an identity
// that breaks a limit is refused (429, flag CC, Retry-After) and, with
// blockSeconds, refused outright for that long. The counting is limiter.ts.
//
// Rules keyed by IP (or header, cookie, query) run in the protect phase,
// before authentication, so a flood never reaches the auth code; rules whose
// key includes the consumer run in the traffic phase, after auth has named
// the consumer. One config entry therefore compiles to up to two instances.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { positiveInt, strict, StringMatchSchema, type StringMatch } from '../../config/schema.js';
import type { Exchange } from '../../exchange/exchange.js';
import { compileStringMatch } from '../../routing/match.js';
import { defineFilter, type FilterCompileContext, type FilterInstance, type FilterResult, type Phase, type Rejection } from '../types.js';
import { compileRateKey, describeRateKey, keyNeedsConsumer, RateKeySchema, type RateKeyFn } from './key.js';
import { DEFAULT_MAX_KEYS, inClusterWorker, LocalLimiter, PrimaryLimiter, StoreLimiter, type Limiter, type RateDecision, type RateSpec } from './limiter.js';

const limitShape = {
  /** Requests per second. */
  qps: positiveInt.optional(),
  /** Requests per minute. */
  qpm: positiveInt.optional(),
  /** Requests per hour. */
  qph: positiveInt.optional(),
  /** Requests per day. */
  qpd: positiveInt.optional(),
};
const PERIODS = [
  ['qps', 1000],
  ['qpm', 60_000],
  ['qph', 3_600_000],
  ['qpd', 86_400_000],
] as const;

type Limits = { qps?: number; qpm?: number; qph?: number; qpd?: number };
const hasLimit = (l: Limits): boolean => PERIODS.some(([k]) => l[k] !== undefined);
const NEEDS_LIMIT = { error: 'needs at least one of qps, qpm, qph, qpd' };

/** "*": each distinct value; a string: that value; { exact | prefix | regex | contains }: the values it matches. */
const ValueSchema = z.union([z.string().min(1), StringMatchSchema]);

const OverrideSchema = strict({
  values: z.array(ValueSchema).min(1),
  ...limitShape,
  blockSeconds: z.number().int().min(0).optional(),
}).refine(hasLimit, NEEDS_LIMIT);

const LimitsSchema = strict(limitShape).refine(hasLimit, NEEDS_LIMIT);

export const CcRuleSchema = strict({
  /** Name in metrics and logs (default: the rule's index). */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, _ . - (up to 64)').optional(),
  key: RateKeySchema,
  /** Which values of the key the rule covers; each covered value is counted on its own. */
  values: z.array(ValueSchema).min(1).default(['*']),
  ...limitShape,
  /** Once an identity breaks a limit it is refused outright this long, whatever its rate (0: refused only while over). */
  blockSeconds: z.number().int().min(0).default(0),
  /** Values with their own limits instead of the rule's (Sentinel's parameter exceptions); the first that matches wins. */
  overrides: z.array(OverrideSchema).default([]),
  /** block: refuse; detect: log and count what would be refused, pass it. Default: the filter's mode. */
  mode: z.enum(['block', 'detect']).optional(),
  /** Count through the shared store (store.type: redis): one limit for every gateway of a fleet. */
  shared: z.boolean().default(false),
  /** A shared rule whose store fails or is slow: allow (count in this gateway with `fallback`'s limits) or deny (refuse). */
  onStoreError: z.enum(['allow', 'deny']).default('allow'),
  /** Limits counted in this gateway while the store is unavailable (default: the rule's own). */
  fallback: LimitsSchema.optional(),
  /** Identities kept in memory for this rule; the least recently seen is forgotten first. */
  maxKeys: positiveInt.default(DEFAULT_MAX_KEYS),
}).refine(hasLimit, NEEDS_LIMIT);

export const CcFilterSchema = strict({
  type: z.literal('cc'),
  rules: z.array(CcRuleSchema).min(1),
  mode: z.enum(['block', 'detect']).default('block'),
  /** Add X-RateLimit-Limit/Remaining/Reset (the tightest limit that applied) to answers. */
  headers: z.boolean().default(false),
  /** A shared store slower than this counts as failed (ms). */
  storeTimeoutMs: positiveInt.default(100),
});

export type CcConfig = z.output<typeof CcFilterSchema>;
export type CcRuleConfig = z.output<typeof CcRuleSchema>;

function specOf(l: Limits, blockSeconds: number): RateSpec {
  const limits = [];
  for (const [k, ms] of PERIODS) if (l[k] !== undefined) limits.push({ periodMs: ms, limit: l[k] });
  return { limits, blockMs: blockSeconds * 1000 };
}

type ValueTest = (v: string) => boolean;

function compileValues(values: readonly (string | StringMatch)[]): ValueTest {
  const tests: ValueTest[] = [];
  const exact = new Set<string>();
  for (const v of values) {
    if (v === '*') return () => true;
    if (typeof v === 'string') exact.add(v);
    else {
      const t = compileStringMatch(v);
      tests.push((s) => t(s));
    }
  }
  return (s) => exact.has(s) || tests.some((t) => t(s));
}

interface Target {
  readonly id: string;
  readonly limiter: Limiter;
  readonly spec: RateSpec;
}

interface Rule {
  readonly index: number;
  readonly label: string;
  readonly config: CcRuleConfig;
  readonly keyOf: RateKeyFn;
  readonly covers: ValueTest;
  readonly main: Target;
  readonly overrides: ReadonlyArray<{ test: ValueTest; target: Target }>;
  readonly detect: boolean;
  refused: number;
  detected: number;
}

/** What the instances of one config entry share. */
interface Group {
  readonly rules: Rule[];
  readonly targets: Map<string, Target>;
}

function buildGroup(cfg: CcConfig, ctx: FilterCompileContext): Group {
  const prev = (ctx.previous as CcFilter | undefined)?.group;
  const targets = new Map<string, Target>();
  const store = ctx.store;
  const makeTarget = (id: string, spec: RateSpec, r: CcRuleConfig, at: string): Target => {
    const old = prev?.targets.get(id);
    let limiter: Limiter;
    if (r.shared) {
      if (!store.eval) throw new Error(`${at}.shared: needs store.type: redis (the ${store.kind} store is not shared between gateways)`);
      const metrics = ctx.metrics;
      const label = r.name ?? at;
      limiter = new StoreLimiter(store, id, spec, {
        timeoutMs: cfg.storeTimeoutMs,
        onStoreError: r.onStoreError,
        fallback: r.fallback ? specOf(r.fallback, r.blockSeconds) : undefined,
        maxKeys: r.maxKeys,
        onError: (e) => {
          metrics.ccStoreErrors.labels(ctx.route ?? '', label).inc();
          ctx.log.warn({ cc: { rule: label, route: ctx.route, error: e.message, onStoreError: r.onStoreError } }, 'cc: shared store failed');
        },
      });
    } else if (inClusterWorker()) limiter = new PrimaryLimiter(id, spec, r.maxKeys);
    else limiter = new LocalLimiter(spec, { maxKeys: r.maxKeys, previous: old?.limiter instanceof LocalLimiter ? old.limiter : undefined });
    const t = { id, limiter, spec };
    targets.set(id, t);
    return t;
  };
  const rules = cfg.rules.map((r, index): Rule => {
    const at = `rules[${index}]`;
    const combined = Array.isArray(r.key) && r.key.length > 1;
    if (combined && (r.values.some((v) => v !== '*') || r.overrides.length)) {
      throw new Error(`${at}.values: a combined key takes only "*" (each distinct combination) and no overrides`);
    }
    if (r.fallback && !r.shared) throw new Error(`${at}.fallback: only a shared rule has a fallback`);
    // Same id for the same rule everywhere: gateways of a fleet share the counters of identical rules.
    const id = createHash('sha1')
      .update(`${ctx.route ?? '*'}\u0000${index}\u0000${JSON.stringify({ key: r.key, values: r.values, qps: r.qps, qpm: r.qpm, qph: r.qph, qpd: r.qpd, b: r.blockSeconds })}`)
      .digest('hex')
      .slice(0, 16);
    return {
      index,
      label: r.name ?? String(index),
      config: r,
      keyOf: compileRateKey(r.key),
      covers: compileValues(r.values),
      main: makeTarget(id, specOf(r, r.blockSeconds), r, at),
      overrides: r.overrides.map((o, j) => ({
        test: compileValues(o.values),
        target: makeTarget(`${id}.${j}`, specOf(o, o.blockSeconds ?? r.blockSeconds), r, `${at}.overrides[${j}]`),
      })),
      detect: (r.mode ?? cfg.mode) === 'detect',
      refused: 0,
      detected: 0,
    };
  });
  return { rules, targets };
}

const rateHeaders = (d: RateDecision): Record<string, string> => ({
  'x-ratelimit-limit': String(d.limit),
  'x-ratelimit-remaining': String(d.remaining),
  'x-ratelimit-reset': String(Math.ceil(d.resetMs / 1000)),
});

export class CcFilter implements FilterInstance {
  readonly type = 'cc';
  private readonly rules: Rule[];

  constructor(
    readonly phase: Phase,
    readonly group: Group,
    private readonly cfg: CcConfig,
    private readonly ctx: FilterCompileContext,
    /** The instance that describes and closes the group (the first of the entry). */
    private readonly lead: boolean,
  ) {
    this.rules = group.rules.filter((r) => (keyNeedsConsumer(r.config.key) ? 'traffic' : 'protect') === phase);
  }

  onRequest(ex: Exchange): FilterResult | Promise<FilterResult> {
    return this.from(ex, 0, undefined);
  }

  /** Checks rules from index i on; turns async only at the first check that waits (a shared store or the primary). */
  private from(ex: Exchange, i: number, tightest: RateDecision | undefined): FilterResult | Promise<FilterResult> {
    for (; i < this.rules.length; i++) {
      const r = this.rules[i]!;
      const v = r.keyOf(ex);
      if (v === undefined) continue;
      const target = this.targetFor(r, v);
      if (!target) continue;
      const d = target.limiter.hit(v);
      if (d instanceof Promise) {
        const next = i + 1;
        return d.then((dd) => {
          const out = this.judge(ex, r, v, dd, tightest);
          if (out.rejection) return out.rejection;
          return this.from(ex, next, out.tightest);
        });
      }
      const out = this.judge(ex, r, v, d, tightest);
      if (out.rejection) return out.rejection;
      tightest = out.tightest;
    }
    if (tightest && this.cfg.headers) ex.responseHeaderOps.push({ set: rateHeaders(tightest) });
    return undefined;
  }

  private targetFor(r: Rule, v: string): Target | undefined {
    for (const o of r.overrides) if (o.test(v)) return o.target;
    return r.covers(v) ? r.main : undefined;
  }

  private judge(ex: Exchange, r: Rule, v: string, d: RateDecision, tightest: RateDecision | undefined): { rejection?: Rejection; tightest?: RateDecision } {
    if (d.allowed) return { tightest: !tightest || d.remaining < tightest.remaining ? d : tightest };
    const mode = r.detect ? 'detect' : 'block';
    this.ctx.metrics.ccRejections.labels(ex.routeName, r.label, mode).inc();
    if (d.blockStarted) {
      this.ctx.log.warn(
        { cc: { rule: r.label, route: ex.routeName, key: describeRateKey(r.config.key), identity: v.slice(0, 120), blockSeconds: Math.round(d.retryAfterMs / 1000), action: mode } },
        r.detect ? 'cc: identity would be blocked (detect mode)' : 'cc: identity blocked',
      );
    }
    if (r.detect) {
      r.detected++;
      ex.vars.ccDetected = true;
      return { tightest };
    }
    r.refused++;
    ex.vars.rejectedBy = 'cc';
    const headers: Record<string, string> = { 'retry-after': String(Math.max(1, Math.ceil(d.retryAfterMs / 1000))) };
    if (this.cfg.headers) Object.assign(headers, rateHeaders({ ...d, remaining: 0 }));
    return { rejection: { status: 429, flag: 'CC', message: d.blocked ? 'blocked by CC protection' : 'rate limited by CC protection', headers } };
  }

  describe(): unknown {
    if (!this.lead) return { see: 'the protect-phase cc instance of the same entry' };
    return {
      mode: this.cfg.mode,
      rules: this.group.rules.map((r) => ({
        name: r.label,
        key: describeRateKey(r.config.key),
        phase: keyNeedsConsumer(r.config.key) ? 'traffic' : 'protect',
        mode: r.detect ? 'detect' : 'block',
        limits: Object.fromEntries(PERIODS.filter(([k]) => r.config[k] !== undefined).map(([k]) => [k, r.config[k]])),
        blockSeconds: r.config.blockSeconds,
        refused: r.refused,
        detected: r.detected,
        counts: r.main.limiter.describe(),
        overrides: r.overrides.length || undefined,
      })),
    };
  }

  close(): void {
    if (!this.lead) return;
    for (const t of this.group.targets.values()) t.limiter.close();
  }
}

export function createCc(cfg: CcConfig, ctx: FilterCompileContext): FilterInstance[] {
  const group = buildGroup(cfg, ctx);
  const phases: Phase[] = [];
  if (group.rules.some((r) => !keyNeedsConsumer(r.config.key))) phases.push('protect');
  if (group.rules.some((r) => keyNeedsConsumer(r.config.key))) phases.push('traffic');
  return phases.map((p, i) => new CcFilter(p, group, cfg, ctx, i === 0));
}

export const ccFilter = defineFilter({
  type: 'cc',
  schema: CcFilterSchema,
  create: (config, ctx) => createCc(config, ctx),
});
