// Store factory: memory (per process) or redis (shared by workers and gateways).
import type { StoreConfig } from '../config/schema.js';
import { MemoryStore } from './memory.js';
import type { CounterStore } from './types.js';

type RedisStoreCtor = new (c: Extract<StoreConfig, { type: 'redis' }>['redis']) => CounterStore;

export async function createStore(config: StoreConfig): Promise<CounterStore> {
  if (config.type === 'memory') return new MemoryStore();
  const modPath = './redis.js';
  const mod = (await import(modPath).catch(() => undefined)) as { RedisStore?: RedisStoreCtor } | undefined;
  if (!mod?.RedisStore) throw new Error('store.type: redis store is not available in this build');
  return new mod.RedisStore(config.redis);
}
