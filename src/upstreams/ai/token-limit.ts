// Token rate limits of an AI route (tokenRateLimit): tokens per minute, hour
// or day per identity (consumer, IP, header, cookie, query, the route, or a
// combination), counted with the CC limiter's sliding windows — in this
// process (the primary's, under --workers) or in the shared store (Redis).
//
// Checked before the call (an identity with no room left is refused with
// 429), charged after it with the real count. So one call can overshoot a
// limit by its own size — what it costs is not known until it ends — and the
// identity is then refused until enough of the window has passed.
import type { AiTokenRateLimitConfig } from '../../config/ai-schema.js';
import type { Exchange } from '../../exchange/exchange.js';
import { compileRateKey, type RateKey, type RateKeyPart } from '../../filters/cc/key.js';
import { inClusterWorker, LocalLimiter, PrimaryLimiter, StoreLimiter, type Limiter, type RateDecision, type RateSpec } from '../../filters/cc/limiter.js';
import type { CounterStore } from '../../store/types.js';

export interface TokenLimit {
  /** The identity a request counts under (undefined: it lacks a part of the key and is not limited). */
  keyOf(ex: Exchange): string | undefined;
  check(key: string): Promise<RateDecision>;
  charge(key: string, tokens: number): Promise<RateDecision>;
  /** "consumer", "ip+header x-team": for messages. */
  readonly describe: string;
  close(): void;
}

export function compileTokenLimit(cfg: AiTokenRateLimitConfig, route: string, store: CounterStore): TokenLimit {
  const limits: Array<{ periodMs: number; limit: number }> = [];
  if (cfg.tokensPerMinute) limits.push({ periodMs: 60_000, limit: cfg.tokensPerMinute });
  if (cfg.tokensPerHour) limits.push({ periodMs: 3_600_000, limit: cfg.tokensPerHour });
  if (cfg.tokensPerDay) limits.push({ periodMs: 86_400_000, limit: cfg.tokensPerDay });
  if (limits.length === 0) throw new Error('give tokensPerMinute, tokensPerHour or tokensPerDay');
  const spec: RateSpec = { limits, blockMs: 0 };
  const parts = Array.isArray(cfg.key) ? cfg.key : [cfg.key];
  // "route" is this route's name: one budget for everyone on it.
  const rest = parts.filter((p) => p !== 'route') as RateKeyPart[];
  const byRoute = rest.length < parts.length;
  const restFn = rest.length > 0 ? compileRateKey((rest.length === 1 ? rest[0]! : rest) as RateKey) : undefined;
  const keyOf = (ex: Exchange): string | undefined => {
    if (!restFn) return route;
    const v = restFn(ex);
    return v === undefined ? undefined : byRoute ? `${route}\u001f${v}` : v;
  };
  const rule = `ai-tokens:${route}`;
  let limiter: Limiter;
  if (cfg.store === 'shared') {
    if (!store.eval) throw new Error(`store: shared needs the redis store (this gateway's store is ${store.kind})`);
    limiter = new StoreLimiter(store, rule, spec, { timeoutMs: 250, onStoreError: 'allow' });
  } else {
    limiter = inClusterWorker() ? new PrimaryLimiter(rule, spec) : new LocalLimiter(spec);
  }
  const describe = parts.map((p) => (typeof p === 'string' ? p : 'header' in p ? `header ${p.header}` : 'cookie' in p ? `cookie ${p.cookie}` : `query ${p.query}`)).join('+');
  return {
    keyOf,
    describe,
    check: async (key) => limiter.check(key),
    charge: async (key, tokens) => limiter.charge(key, tokens),
    close: () => limiter.close(),
  };
}
