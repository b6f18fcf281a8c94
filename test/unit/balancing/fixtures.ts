// Shared helpers for balancing/routing unit tests.
import { Instance } from '../../../src/balancing/instance.js';
import type { PickContext } from '../../../src/balancing/types.js';

export function inst(id: string, weight = 1, metadata: Record<string, string> = {}): Instance {
  const [host, port] = id.split(':');
  return new Instance({ host: host!, port: Number(port), weight, healthy: true, metadata });
}

export function instances(n: number, weight = 1): Instance[] {
  return Array.from({ length: n }, (_, i) => inst(`10.0.${Math.floor(i / 250)}.${(i % 250) + 1}:8080`, weight));
}

export interface FakeCtx extends PickContext {
  cookies: string[];
}

export function ctx(opts: { headers?: Record<string, string>; query?: Record<string, string>; cookies?: Record<string, string>; ip?: string } = {}): FakeCtx {
  const cookies: string[] = [];
  return {
    header: (n) => opts.headers?.[n],
    query: (n) => opts.query?.[n],
    cookie: (n) => opts.cookies?.[n],
    clientIp: opts.ip ?? '127.0.0.1',
    setResponseCookie: (c) => cookies.push(c),
    cookies,
  };
}

/** Count picks per instance id. */
export function tally(n: number, pick: () => Instance | undefined): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const p = pick();
    const k = p ? p.id : 'none';
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

/** A deterministic PRNG (mulberry32) for tests that must not depend on luck. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
