// Rate limits per identity: a sliding window of sub-windows, in this process
// (LocalWindows), in the primary of a --workers cluster (over the cluster IPC
// channel), or in Redis (one Lua script per check) for a fleet.
//
// The algorithm. A limit of N per period T keeps, per identity, a count for
// each of the last B+1 sub-windows of width w = T/B (B = SUBWINDOWS = 10): the
// running one and the B before it. A request is admitted when the sum of
// those counts plus its cost is at most N. The counted span starts at the
// start of the oldest sub-window, so it always covers the whole of the last T
// (and up to w more): after any admission, the admissions of the last T are
// at most N. So:
//   - never more than N admitted in any window of length T (no 2x at a
//     boundary, no double first period: state starts empty, not full);
//   - an identity that sends all the time gets at least N per T + w, that is
//     at least N * B/(B+1) = 91% of N per T (refusals come at most one
//     sub-window early);
//   - N back-to-back requests from an idle identity pass.
// A refused request counts nothing. The request that breaks a limit starts
// the block (blockMs): for that long every check of the identity is refused,
// whatever its rate; refusals during the block neither extend it nor count.
//
// State per identity and limit: B+2 numbers. Local state is bounded by
// maxKeys identities per rule (LocalWindows): the least recently seen are
// forgotten first (and start afresh if they come back).
//
// The API fits a limit charged after the fact (AI tokens): check(key) asks
// whether there is room, charge(key, amount) counts what was used (and starts
// the block when that breaks a limit); hit(key, cost) is both, atomically, as
// CC does per request.
import { createHash } from 'node:crypto';
import { ownString } from '../../exchange/strings.js';
import { askPrimary, inClusterWorker, onPrimaryAsk } from '../../store/primary-channel.js';
import type { CounterStore } from '../../store/types.js';

export { inClusterWorker };

export const SUBWINDOWS = 10;

export interface LimitSpec {
  /** The period, ms (1000 for qps, 60_000 for qpm...). */
  readonly periodMs: number;
  /** Units admitted per period. */
  readonly limit: number;
}

export interface RateSpec {
  readonly limits: readonly LimitSpec[];
  /** How long an identity that broke a limit is refused outright (0: no block). */
  readonly blockMs: number;
}

export type RateOp = 'hit' | 'check' | 'charge';

export interface RateDecision {
  readonly allowed: boolean;
  /** Refused because the identity is inside a block. */
  readonly blocked: boolean;
  /** This check started a block. */
  readonly blockStarted: boolean;
  /** When to try again, ms from now (0 when allowed). */
  readonly retryAfterMs: number;
  /** The limit with the least room left: its size, what is left, ms until its oldest counts leave the window. */
  readonly limit: number;
  readonly remaining: number;
  readonly resetMs: number;
  /** Index in spec.limits of the limit that refused (-1: none, or blocked). */
  readonly broken: number;
}

/** Pure step over one identity's state: [blockUntil, then per limit: head sub-window, B+1 counts]. Mutates `s`. */
export function step(s: number[], spec: RateSpec, op: RateOp, cost: number, now: number): RateDecision {
  const B = SUBWINDOWS;
  const stride = B + 2;
  const n = spec.limits.length;
  const sums: number[] = new Array(n);
  // Advance each limit's ring to the running sub-window and sum it.
  for (let i = 0; i < n; i++) {
    const w = spec.limits[i]!.periodMs / B;
    const k = Math.floor(now / w);
    const base = 1 + i * stride;
    const head = s[base]!;
    if (k - head > B) for (let j = 1; j <= B + 1; j++) s[base + j] = 0;
    else for (let j = head + 1; j <= k; j++) s[base + 1 + (j % (B + 1))] = 0;
    if (k > head) s[base] = k;
    let sum = 0;
    for (let j = 1; j <= B + 1; j++) sum += s[base + j]!;
    sums[i] = sum;
  }
  const blockUntil = s[0]!;
  if (blockUntil > now) return decide(s, spec, sums, now, false, true, false, -1, Math.ceil(blockUntil - now));
  const need = op === 'check' ? 1 : cost;
  let broken = -1;
  for (let i = 0; i < n; i++) if (sums[i]! + need > spec.limits[i]!.limit) {
    broken = i;
    break;
  }
  if (op === 'charge' || (op === 'hit' && broken === -1)) {
    for (let i = 0; i < n; i++) {
      const w = spec.limits[i]!.periodMs / B;
      const k = Math.floor(now / w);
      s[1 + i * stride + 1 + (k % (B + 1))]! += cost;
      sums[i]! += cost;
    }
  }
  if (broken === -1) return decide(s, spec, sums, now, true, false, false, -1, 0);
  // A charge is counted whatever it brings; it breaks a limit only when it goes beyond it.
  if (op === 'charge') {
    const over = spec.limits.findIndex((l, i) => sums[i]! > l.limit);
    if (over === -1) return decide(s, spec, sums, now, true, false, false, -1, 0);
    broken = over;
  }
  if (op !== 'check' && spec.blockMs > 0) {
    s[0] = now + spec.blockMs;
    return decide(s, spec, sums, now, false, true, true, broken, spec.blockMs);
  }
  return decide(s, spec, sums, now, false, false, false, broken, untilRoom(s, spec, broken, now, op === 'charge' ? 1 : need));
}

/** ms until limit i has room for `need` more (sub-windows leave the span one by one). */
function untilRoom(s: number[], spec: RateSpec, i: number, now: number, need: number): number {
  const B = SUBWINDOWS;
  const l = spec.limits[i]!;
  const w = l.periodMs / B;
  const k = Math.floor(now / w);
  const base = 1 + i * (B + 2) + 1;
  let sum = 0;
  for (let j = 0; j <= B; j++) sum += s[base + j]!;
  if (need > l.limit) return l.periodMs + w; // never fits: say a whole window
  for (let j = 1; j <= B + 1; j++) {
    // At sub-window k+j, sub-window k+j-B-1 has left the span.
    sum -= s[base + ((k + j - B - 1) % (B + 1))]!;
    if (sum + need <= l.limit) return Math.max(1, Math.ceil((k + j) * w - now));
  }
  return Math.ceil((k + B + 1) * w - now);
}

function decide(s: number[], spec: RateSpec, sums: number[], now: number, allowed: boolean, blocked: boolean, blockStarted: boolean, broken: number, retryAfterMs: number): RateDecision {
  let t = 0;
  let room = Infinity;
  for (let i = 0; i < sums.length; i++) {
    const r = spec.limits[i]!.limit - sums[i]!;
    if (r < room) {
      room = r;
      t = i;
    }
  }
  const l = spec.limits[t]!;
  const B = SUBWINDOWS;
  const w = l.periodMs / B;
  const k = Math.floor(now / w);
  const base = 1 + t * (B + 2) + 1;
  // The oldest sub-window holding counts leaves the span at its start + T + w.
  let resetMs = 0;
  for (let j = k - B; j <= k; j++) {
    if (s[base + (((j % (B + 1)) + B + 1) % (B + 1))]! > 0) {
      resetMs = Math.max(1, Math.ceil((j + B + 1) * w - now));
      break;
    }
  }
  return { allowed, blocked, blockStarted, retryAfterMs: allowed ? 0 : retryAfterMs, limit: l.limit, remaining: Math.max(0, room), resetMs, broken };
}

export function emptyState(spec: RateSpec): number[] {
  return new Array(1 + spec.limits.length * (SUBWINDOWS + 2)).fill(0);
}

export type Clock = () => number;

/**
 * In-process windows for one rule, at most maxKeys identities, in two
 * generations: new and refreshed identities go into the young map; when it
 * holds maxKeys/2, the old map is dropped whole and the young one becomes
 * old. An identity used again while old moves back to young. So an identity
 * is kept as long as fewer than maxKeys/2 others arrive between two of its
 * requests (at most maxKeys), the least recently seen are the ones forgotten,
 * and every step is O(1) (a Map used as an LRU list, deleting its oldest
 * entry each time, is not: V8 skips the deleted entries on every walk).
 */
export class LocalWindows {
  private young = new Map<string, number[]>();
  private old = new Map<string, number[]>();
  private readonly half: number;
  /** Identities forgotten to stay within maxKeys. */
  evictions = 0;

  constructor(
    readonly spec: RateSpec,
    readonly maxKeys: number,
    private readonly clock: Clock = Date.now,
  ) {
    this.half = Math.max(1, Math.floor(maxKeys / 2));
  }

  run(key: string, op: RateOp, cost = 1): RateDecision {
    let s = this.young.get(key);
    if (s === undefined) {
      s = this.old.get(key);
      if (s !== undefined) this.old.delete(key);
      else s = emptyState(this.spec);
      if (this.young.size >= this.half) {
        this.evictions += this.old.size;
        this.old = this.young;
        this.young = new Map();
      }
      // A key read from a header, a cookie or the query can be a view of its whole line (see ownString).
      this.young.set(ownString(key), s);
    }
    return step(s, this.spec, op, cost, this.clock());
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}

/** What a limiter needs from where its counts live. */
export interface Limiter {
  hit(key: string, cost?: number): RateDecision | Promise<RateDecision>;
  check(key: string): RateDecision | Promise<RateDecision>;
  charge(key: string, amount: number): RateDecision | Promise<RateDecision>;
  describe(): unknown;
  close(): void;
}

export interface LocalLimiterOptions {
  maxKeys?: number;
  clock?: Clock;
  /** Take over the windows of a limiter this one replaces (config reload with the same rule). */
  previous?: LocalLimiter;
}

/** Default cap of identities per rule kept in memory. */
export const DEFAULT_MAX_KEYS = 100_000;

/** Counts in this process (a single-process gateway, or a test). */
export class LocalLimiter implements Limiter {
  readonly windows: LocalWindows;
  constructor(spec: RateSpec, opts: LocalLimiterOptions = {}) {
    const prev = opts.previous?.windows;
    this.windows =
      prev && JSON.stringify(prev.spec) === JSON.stringify(spec) && prev.maxKeys === (opts.maxKeys ?? DEFAULT_MAX_KEYS)
        ? prev
        : new LocalWindows(spec, opts.maxKeys ?? DEFAULT_MAX_KEYS, opts.clock);
  }
  hit(key: string, cost = 1): RateDecision {
    return this.windows.run(key, 'hit', cost);
  }
  check(key: string): RateDecision {
    return this.windows.run(key, 'check', 0);
  }
  charge(key: string, amount: number): RateDecision {
    return this.windows.run(key, 'charge', amount);
  }
  describe(): unknown {
    return { where: 'process', identities: this.windows.size, maxKeys: this.windows.maxKeys, evictions: this.windows.evictions };
  }
  close(): void {}
}

// ---------- whole-gateway counts in a --workers cluster ----------
//
// Workers do not count on their own: each check goes to the primary over the
// cluster IPC channel (store/primary-channel.ts, batched per event-loop
// turn), which keeps one LocalWindows per rule for all of them, so a limit
// written as 100/s is 100/s for the gateway, whatever the number of workers
// and however the kernel spreads connections. The cost is that round trip
// (measured in BENCHMARKS.md).

/** [rule, key, op, cost, spec and maxKeys the first time this worker names the rule] */
type RateAsk = [string, string, RateOp, number, [RateSpec, number]?];
type PackedDecision = [number, number, number, number, number, number, number, number];

const pack = (d: RateDecision): PackedDecision => [d.allowed ? 1 : 0, d.blocked ? 1 : 0, d.blockStarted ? 1 : 0, d.retryAfterMs, d.limit, d.remaining, d.resetMs, d.broken];
const unpack = (a: PackedDecision): RateDecision => ({ allowed: a[0] === 1, blocked: a[1] === 1, blockStarted: a[2] === 1, retryAfterMs: a[3], limit: a[4], remaining: a[5], resetMs: a[6], broken: a[7] });

/** Rules this worker has described to the primary. */
const described = new Set<string>();

/** Counts in the primary; the worker's own windows answer only when the primary does not. */
export class PrimaryLimiter implements Limiter {
  private readonly local: LocalLimiter;
  private readonly id: string;
  ipcFailures = 0;
  constructor(
    rule: string,
    private readonly spec: RateSpec,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
  ) {
    this.local = new LocalLimiter(spec, { maxKeys });
    // The same rule id with other limits (a reload) is another set of windows.
    this.id = `${rule}:${createHash('sha1').update(JSON.stringify([spec, maxKeys])).digest('hex').slice(0, 8)}`;
  }
  private async run(key: string, op: RateOp, cost: number): Promise<RateDecision> {
    const ask: RateAsk = [this.id, key, op, cost];
    if (!described.has(this.id)) {
      described.add(this.id);
      ask.push([this.spec, this.maxKeys]);
    }
    const a = await askPrimary<PackedDecision | null>('rate', ask);
    if (a) return unpack(a);
    // No answer, or the primary does not know the rule (describe it again next time).
    if (a === null) described.delete(this.id);
    this.ipcFailures++;
    return this.local.windows.run(key, op, cost);
  }
  hit(key: string, cost = 1): Promise<RateDecision> {
    return this.run(key, 'hit', cost);
  }
  check(key: string): Promise<RateDecision> {
    return this.run(key, 'check', 0);
  }
  charge(key: string, amount: number): Promise<RateDecision> {
    return this.run(key, 'charge', amount);
  }
  describe(): unknown {
    return { where: 'primary (whole gateway)', ipcFailures: this.ipcFailures };
  }
  close(): void {}
}

/** The primary's windows, by rule id; a rule left idle for a day is dropped. */
const primaryWindows = new Map<string, { w: LocalWindows; used: number }>();
let serving = false;

/** Primary side: answer the workers' rate checks (once, before workers start). */
export function serveRateChecks(): void {
  if (serving) return;
  serving = true;
  setInterval(() => {
    const old = Date.now() - 86_400_000;
    for (const [k, v] of primaryWindows) if (v.used < old) primaryWindows.delete(k);
  }, 600_000).unref();
  onPrimaryAsk('rate', (payload) => {
    const [rule, key, op, cost, described] = payload as RateAsk;
    let e = primaryWindows.get(rule);
    if (!e) {
      if (!described) return null;
      primaryWindows.set(rule, (e = { w: new LocalWindows(described[0], described[1]), used: 0 }));
    }
    e.used = Date.now();
    return pack(e.w.run(key, op, cost));
  });
}

// ---------- Redis: shared by every gateway of a fleet ----------
//
// One key per rule and identity, `<prefix>cc:{<rule>}:<identity>`: the hash
// tag keeps every key of a rule in one Redis Cluster slot. The script runs the
// same step as above on the key's state (a MessagePack array), with Redis's
// own clock (TIME), so gateways' clocks need not agree; it is one atomic round
// trip per check, and the key expires once its counts and block have run out.

export const RATE_SCRIPT = {
  name: 'meshgateRate',
  lua: `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local cost = tonumber(ARGV[2])
local blockMs = tonumber(ARGV[3])
local B = tonumber(ARGV[4])
local n = (#ARGV - 4) / 2
local stride = B + 2
local s = {}
local raw = redis.call('GET', KEYS[1])
if raw then
  local ok, v = pcall(cmsgpack.unpack, raw)
  if ok then s = v end
end
if type(s) ~= 'table' or #s ~= 1 + n * stride then
  s = {}
  for i = 1, 1 + n * stride do s[i] = 0 end
end
local periods, limits, sums, ks = {}, {}, {}, {}
local maxPeriod = 0
for i = 1, n do
  local p = tonumber(ARGV[3 + 2 * i])
  periods[i] = p
  limits[i] = tonumber(ARGV[4 + 2 * i])
  if p > maxPeriod then maxPeriod = p end
  local w = p / B
  local k = math.floor(now / w)
  ks[i] = k
  local base = 2 + (i - 1) * stride
  local head = s[base]
  if k - head > B then
    for j = 1, B + 1 do s[base + j] = 0 end
  else
    for j = head + 1, k do s[base + 1 + (j % (B + 1))] = 0 end
  end
  if k > head then s[base] = k end
  local sum = 0
  for j = 1, B + 1 do sum = sum + s[base + j] end
  sums[i] = sum
end
local allowed, blocked, started, broken, retry = 1, 0, 0, -1, 0
if s[1] > now then
  allowed, blocked, retry = 0, 1, s[1] - now
else
  local need = cost
  if op == 'check' then need = 1 end
  for i = 1, n do
    if broken == -1 and sums[i] + need > limits[i] then broken = i - 1 end
  end
  if op == 'charge' or (op == 'hit' and broken == -1) then
    for i = 1, n do
      local base = 2 + (i - 1) * stride
      local slot = base + 1 + (ks[i] % (B + 1))
      s[slot] = s[slot] + cost
      sums[i] = sums[i] + cost
    end
  end
  if op == 'charge' then
    broken = -1
    for i = 1, n do
      if broken == -1 and sums[i] > limits[i] then broken = i - 1 end
    end
  end
  if broken ~= -1 then
    allowed = 0
    if op ~= 'check' and blockMs > 0 then
      s[1] = now + blockMs
      blocked, started, retry = 1, 1, blockMs
    else
      local i = broken + 1
      local w = periods[i] / B
      local k = ks[i]
      local base = 2 + (i - 1) * stride
      local sum = sums[i]
      if op == 'charge' then need = 1 end
      retry = math.ceil((k + B + 1) * w - now)
      if need > limits[i] then retry = periods[i] + w else
        for j = 1, B + 1 do
          sum = sum - s[base + 1 + ((k + j - B - 1) % (B + 1))]
          if sum + need <= limits[i] then
            retry = math.max(1, math.ceil((k + j) * w - now))
            break
          end
        end
      end
    end
  end
end
local tight, room = 1, nil
for i = 1, n do
  local r = limits[i] - sums[i]
  if room == nil or r < room then room, tight = r, i end
end
local w = periods[tight] / B
local k = ks[tight]
local base = 2 + (tight - 1) * stride
local reset = 0
for j = k - B, k do
  if s[base + 1 + (j % (B + 1))] > 0 then
    reset = math.max(1, math.ceil((j + B + 1) * w - now))
    break
  end
end
local ttl = maxPeriod + maxPeriod / B + 1000
if s[1] > now and s[1] - now + 1000 > ttl then ttl = s[1] - now + 1000 end
redis.call('SET', KEYS[1], cmsgpack.pack(s), 'PX', math.ceil(ttl))
if room < 0 then room = 0 end
return {allowed, blocked, started, retry, limits[tight], room, reset, broken}`,
} as const;

export interface StoreLimiterOptions {
  /** A store call slower than this counts as failed (ms). */
  timeoutMs: number;
  /** Store unavailable: allow (count locally with `fallback`'s limits) or deny (refuse). */
  onStoreError: 'allow' | 'deny';
  /** Limits counted in this gateway while the store is unavailable (default: the rule's own). */
  fallback?: RateSpec;
  maxKeys?: number;
  /** Called once per failed store call (log, metrics). */
  onError?(e: Error): void;
}

/** After a failed call, the store is left alone this long: requests use the fallback at once, never wait on it. */
const STORE_RETRY_MS = 1000;

/** Counts in a shared store (Redis); falls back to local counts or refusals when the store fails. */
export class StoreLimiter implements Limiter {
  private readonly local: LocalLimiter;
  private readonly spec: RateSpec;
  private readonly argv: (string | number)[];
  private downUntil = 0;
  failures = 0;
  lastError = '';

  constructor(
    private readonly store: CounterStore,
    private readonly rule: string,
    spec: RateSpec,
    private readonly opts: StoreLimiterOptions,
  ) {
    if (!store.eval) throw new Error(`the ${store.kind} store cannot run shared limits`);
    store.load?.(RATE_SCRIPT);
    this.spec = spec;
    this.local = new LocalLimiter(opts.fallback ?? spec, { maxKeys: opts.maxKeys });
    this.argv = [spec.blockMs, SUBWINDOWS];
    for (const l of spec.limits) this.argv.push(l.periodMs, l.limit);
  }

  private fail(e: Error): void {
    this.failures++;
    this.lastError = e.message;
    this.downUntil = Date.now() + STORE_RETRY_MS;
    this.opts.onError?.(e);
  }

  private fallback(key: string, op: RateOp, cost: number): RateDecision {
    if (this.opts.onStoreError === 'allow') return this.local.windows.run(key, op, cost);
    return { allowed: false, blocked: false, blockStarted: false, retryAfterMs: STORE_RETRY_MS, limit: this.spec.limits[0]!.limit, remaining: 0, resetMs: STORE_RETRY_MS, broken: -1 };
  }

  private run(key: string, op: RateOp, cost: number): RateDecision | Promise<RateDecision> {
    if (Date.now() < this.downUntil) return this.fallback(key, op, cost);
    if (this.store.available?.() === false) {
      // Not connected (down, or refusing our credentials): said once per retry interval, not waited on.
      this.fail(new Error(`store not connected${this.store.lastError ? ` (${this.store.lastError})` : ''}`));
      return this.fallback(key, op, cost);
    }
    const call = this.store.eval!(RATE_SCRIPT, [`${this.store.prefix ?? ''}cc:{${this.rule}}:${key}`], [op, cost, ...this.argv]);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`store did not answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
    });
    return Promise.race([call, timeout]).then(
      (r) => {
        clearTimeout(timer);
        const a = r as number[];
        return { allowed: a[0] === 1, blocked: a[1] === 1, blockStarted: a[2] === 1, retryAfterMs: Number(a[3]), limit: Number(a[4]), remaining: Number(a[5]), resetMs: Number(a[6]), broken: Number(a[7]) };
      },
      (e: unknown) => {
        clearTimeout(timer);
        this.fail(e instanceof Error ? e : new Error(String(e)));
        return this.fallback(key, op, cost);
      },
    );
  }

  hit(key: string, cost = 1): RateDecision | Promise<RateDecision> {
    return this.run(key, 'hit', cost);
  }
  check(key: string): RateDecision | Promise<RateDecision> {
    return this.run(key, 'check', 0);
  }
  charge(key: string, amount: number): RateDecision | Promise<RateDecision> {
    return this.run(key, 'charge', amount);
  }
  describe(): unknown {
    return { where: `store (${this.store.kind})`, storeFailures: this.failures, lastError: this.lastError || undefined, usingFallback: Date.now() < this.downUntil, onStoreError: this.opts.onStoreError };
  }
  close(): void {}
}
