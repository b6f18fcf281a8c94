// Counters shared by every worker and every gateway through Redis (ioredis).
//
// incr is one atomic script: INCRBY the key of the running window and, when
// the key is new, PEXPIRE it at the end of the window (plus a second of
// slack), so windows never leak and two gateways can never see a counter
// without an expiry. Window boundaries come from the gateway's clock
// (Date.now), like the memory store: gateways sharing a Redis should keep
// their clocks in sync (NTP), as they must for any fixed-window limit.
import { Redis } from 'ioredis';
import type { StoreConfig } from '../config/schema.js';
import type { CounterStore, StoreScript } from './types.js';

type RedisStoreConfig = Extract<StoreConfig, { type: 'redis' }>['redis'];

const INCR_SCRIPT = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n`;

interface ScriptedRedis extends Redis {
  meshgateIncr(key: string, delta: number, ttlMs: number): Promise<number>;
}

export interface RedisStoreOptions {
  /** Fail a command after this long instead of queueing it while Redis is away (default 1000 ms). */
  commandTimeoutMs?: number;
}

export class RedisStore implements CounterStore {
  readonly kind = 'redis' as const;
  private readonly redis: ScriptedRedis;
  readonly prefix: string;
  /** Scripts defined on the connection, by name. */
  private readonly scripts = new Set<string>();
  /** The last connection error (a wrong password shows here, not on each request). */
  lastError = '';

  constructor(config: RedisStoreConfig, opts: RedisStoreOptions = {}) {
    this.prefix = config.prefix;
    this.redis = new Redis(config.url, {
      // Requests must not pile up behind a Redis that is down: fail fast, let callers fall back.
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      enableOfflineQueue: true,
      lazyConnect: false,
      // Commands issued in one event-loop turn (many requests' checks) leave in one write: each is still its own atomic script.
      enableAutoPipelining: true,
    }) as ScriptedRedis;
    // Connection errors are retried by ioredis; commands fail individually and callers decide.
    this.redis.on('error', (e: Error) => {
      this.lastError = e.message;
    });
    this.redis.defineCommand('meshgateIncr', { numberOfKeys: 1, lua: INCR_SCRIPT });
  }

  private windowKey(key: string, windowMs: number, now: number): string {
    return `${this.prefix}c:${key}:${windowMs}:${Math.floor(now / windowMs)}`;
  }

  incr(key: string, windowMs: number, delta = 1): Promise<number> {
    const now = Date.now();
    const ttl = windowMs - (now % windowMs) + 1000;
    return this.redis.meshgateIncr(this.windowKey(key, windowMs, now), delta, ttl);
  }

  async get(key: string, windowMs: number): Promise<number> {
    const v = await this.redis.get(this.windowKey(key, windowMs, Date.now()));
    return v === null ? 0 : Number(v);
  }

  async setFlag(key: string, ttlMs: number): Promise<void> {
    await this.redis.set(`${this.prefix}f:${key}`, '1', 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async hasFlag(key: string): Promise<boolean> {
    return (await this.redis.exists(`${this.prefix}f:${key}`)) === 1;
  }

  load(script: StoreScript): void {
    this.define(script, 1);
    this.redis.script('LOAD', script.lua).catch(() => undefined);
  }

  private define(script: StoreScript, numberOfKeys: number): void {
    if (this.scripts.has(script.name)) return;
    // defineCommand sends EVALSHA and loads the script on NOSCRIPT: one round trip once loaded.
    this.redis.defineCommand(script.name, { numberOfKeys, lua: script.lua });
    this.scripts.add(script.name);
  }

  eval(script: StoreScript, keys: string[], args: (string | number)[]): Promise<unknown> {
    this.define(script, keys.length);
    const fn = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[script.name]!;
    return fn.call(this.redis, ...keys, ...args);
  }

  /** Connected and authenticated: commands sent now are answered, not queued. */
  available(): boolean {
    return this.redis.status === 'ready';
  }

  /** Resolves once connected (for startup checks and tests). */
  async ready(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}
