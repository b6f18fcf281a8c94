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
  const store = new mod.RedisStore(config.redis);
  await checkCredentials(store).catch(async (e: unknown) => {
    await store.close();
    throw e;
  });
  return store;
}

/** Credentials Redis refuses: a config error, said once at start, never a slow path on every request. */
const REFUSED = /WRONGPASS|NOAUTH|invalid password|invalid username|NOPERM/i;

/**
 * At start: a Redis that answers but refuses the credentials stops the
 * gateway with the reason. A Redis that does not answer (yet) is not an
 * error: shared limits fall back as each rule says until it does.
 */
async function checkCredentials(store: CounterStore & { ready?(): Promise<void> }): Promise<void> {
  if (!store.ready) return;
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((r) => (timer = setTimeout(r, 2000)));
  try {
    await Promise.race([store.ready(), waited]);
  } catch (e) {
    const msg = (e as Error).message;
    if (REFUSED.test(msg)) throw new Error(`store.redis.url: Redis refused the credentials: ${msg}`);
  } finally {
    clearTimeout(timer);
  }
}
