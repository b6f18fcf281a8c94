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
import type { CounterStore } from './types.js';

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
  private readonly prefix: string;

  constructor(config: RedisStoreConfig, opts: RedisStoreOptions = {}) {
    this.prefix = config.prefix;
    this.redis = new Redis(config.url, {
      // Requests must not pile up behind a Redis that is down: fail fast, let callers fall back.
      maxRetriesPerRequest: 1,
      commandTimeout: opts.commandTimeoutMs ?? 1000,
      enableOfflineQueue: true,
      lazyConnect: false,
    }) as ScriptedRedis;
    // Connection errors are retried by ioredis; commands fail individually and callers decide.
    this.redis.on('error', () => undefined);
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
