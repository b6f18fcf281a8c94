// Consistent hashing: ring hash (ketama-style) and maglev. The key comes from
// a header, cookie, query parameter or the client IP; a request without a key
// falls back to weighted random. An unavailable (or already tried) instance
// passes its keys on to the next entries, so only its own keys move.
import type { HashKey } from '../config/schema.js';
import { fmix32, murmur3 } from './hash.js';
import type { Instance } from './instance.js';
import { WeightedRandom } from './simple.js';
import type { LoadBalancer, PickContext } from './types.js';

export type KeyFn = (ctx: PickContext) => string | undefined;

export function hashKeyFn(key: HashKey): KeyFn {
  if ('header' in key) {
    const name = key.header.toLowerCase();
    return (ctx) => ctx.header(name);
  }
  if ('cookie' in key) {
    const name = key.cookie;
    return (ctx) => ctx.cookie(name);
  }
  if ('query' in key) {
    const name = key.query;
    return (ctx) => ctx.query(name);
  }
  return (ctx) => ctx.clientIp || undefined;
}

function anyUsable(list: readonly Instance[], now: number, exclude: ReadonlySet<Instance> | undefined): boolean {
  for (const inst of list) if (inst.available(now) && (exclude === undefined || !exclude.has(inst))) return true;
  return false;
}

/** Ring entries at most (about 8 MB of ring), reached only past ~1000 instances. */
const MAX_RING = 1 << 20;

/**
 * Ring hash (ketama-style): every instance gets points on a 32-bit ring, a key
 * goes to the first point clockwise of its hash. An instance of average weight
 * gets `pointsPerInstance` (the configured ring size, >= 1024) points, others
 * in proportion to weight. The count does not depend on how many instances
 * there are, so adding or removing one leaves every other instance's points
 * where they were: only about 1/(N+1) of the keys move.
 */
export class RingHash implements LoadBalancer {
  /** Sorted point hashes and the instance index owning each. */
  readonly hashes: Uint32Array;
  private readonly owners: Uint32Array;
  private readonly fallback: WeightedRandom;

  constructor(
    private readonly instances: readonly Instance[],
    private readonly keyOf: KeyFn,
    pointsPerInstance = 1024,
  ) {
    this.fallback = new WeightedRandom(instances);
    const routable = instances.filter((i) => i.weight > 0);
    const avgWeight = routable.reduce((s, i) => s + i.weight, 0) / (routable.length || 1);
    const perAvg = Math.max(1, Math.min(pointsPerInstance, Math.floor(Math.max(pointsPerInstance, MAX_RING) / (routable.length || 1))));
    const counts = instances.map((i) => (i.weight > 0 ? Math.max(1, Math.round((perAvg * i.weight) / avgWeight)) : 0));
    const total = counts.reduce((s, n) => s + n, 0);
    // Pack (hash, owner) into one float so a numeric typed-array sort orders the ring.
    const packed = new Float64Array(total);
    let k = 0;
    instances.forEach((inst, idx) => {
      // Points derive from the instance id, not its position in the list.
      const base = murmur3(inst.id);
      for (let j = 0; j < counts[idx]!; j++) packed[k++] = fmix32((base + Math.imul(j + 1, 0x9e3779b9)) | 0) * 0x200000 + idx;
    });
    packed.sort();
    this.hashes = new Uint32Array(total);
    this.owners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const v = packed[i]!;
      const h = Math.floor(v / 0x200000);
      this.hashes[i] = h;
      this.owners[i] = v - h * 0x200000;
    }
  }

  /** Index of the first point at or after h (wrapping). */
  private lowerBound(h: number): number {
    const a = this.hashes;
    let lo = 0;
    let hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (a[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === a.length ? 0 : lo;
  }

  pick(ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined {
    const key = this.keyOf(ctx);
    if (key === undefined) return this.fallback.pick(ctx, exclude);
    return this.pickHash(murmur3(key), exclude);
  }

  pickHash(h: number, exclude?: ReadonlySet<Instance>): Instance | undefined {
    const n = this.hashes.length;
    if (n === 0) return undefined;
    const now = Date.now();
    let i = this.lowerBound(h);
    const first = this.instances[this.owners[i]!]!;
    if (first.available(now) && (exclude === undefined || !exclude.has(first))) return first;
    if (!anyUsable(this.instances, now, exclude)) return undefined;
    for (let step = 1; step < n; step++) {
      i = i + 1 === n ? 0 : i + 1;
      const inst = this.instances[this.owners[i]!]!;
      if (inst.available(now) && (exclude === undefined || !exclude.has(inst))) return inst;
    }
    return undefined;
  }
}

/** Maglev lookup table size (prime, Envoy's default). */
export const MAGLEV_TABLE_SIZE = 65537;

/**
 * Maglev: a lookup table of a prime size filled from each instance's
 * permutation (offset, skip derived from its id) in turns proportional to
 * weight. Lookups are one array read; table changes are minimal when the
 * instance set changes.
 */
export class Maglev implements LoadBalancer {
  readonly table: Int32Array;
  private readonly fallback: WeightedRandom;

  constructor(
    private readonly instances: readonly Instance[],
    private readonly keyOf: KeyFn,
    readonly size = MAGLEV_TABLE_SIZE,
  ) {
    this.fallback = new WeightedRandom(instances);
    this.table = new Int32Array(size).fill(-1);
    const entries = instances
      .map((inst, idx) => ({
        idx,
        weight: inst.weight,
        offset: murmur3(inst.id, 0x9747b28c) % size,
        skip: (murmur3(inst.id, 0x5bd1e995) % (size - 1)) + 1,
        next: 0,
        credit: 0,
      }))
      .filter((e) => e.weight > 0);
    if (entries.length === 0) return;
    const maxWeight = Math.max(...entries.map((e) => e.weight));
    let filled = 0;
    while (filled < size) {
      for (const e of entries) {
        // An entry of the largest weight takes a slot every round; one of a
        // third of that weight every third round.
        e.credit += e.weight / maxWeight;
        if (e.credit < 1) continue;
        e.credit -= 1;
        let slot: number;
        do {
          slot = (e.offset + e.skip * e.next) % size;
          e.next++;
        } while (this.table[slot] !== -1);
        this.table[slot] = e.idx;
        if (++filled === size) break;
      }
    }
  }

  pick(ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined {
    const key = this.keyOf(ctx);
    if (key === undefined) return this.fallback.pick(ctx, exclude);
    return this.pickHash(murmur3(key), exclude);
  }

  pickHash(h: number, exclude?: ReadonlySet<Instance>): Instance | undefined {
    if (this.table[0] === -1) return undefined;
    const now = Date.now();
    let i = h % this.size;
    const first = this.instances[this.table[i]!]!;
    if (first.available(now) && (exclude === undefined || !exclude.has(first))) return first;
    if (!anyUsable(this.instances, now, exclude)) return undefined;
    // Unavailable: the next slots in the table decide (spreads its keys over the others).
    for (let step = 1; step < this.size; step++) {
      i = i + 1 === this.size ? 0 : i + 1;
      const inst = this.instances[this.table[i]!]!;
      if (inst.available(now) && (exclude === undefined || !exclude.has(inst))) return inst;
    }
    return undefined;
  }
}
