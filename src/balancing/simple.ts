// Smooth weighted round robin (nginx) and weighted random.
import type { Instance } from './instance.js';
import type { LoadBalancer, PickContext } from './types.js';

/**
 * nginx's smooth weighted round robin: each pick adds every available peer's
 * weight to its current value, takes the largest and subtracts the total from
 * it. Weights 5:1 give A A B A A A. A tie goes to the lighter peer (then the
 * earlier one), which starts the cycle with the minority pick in the middle
 * rather than late; the cycle itself is nginx's. Unavailable peers are skipped
 * without disturbing the others' sequence.
 */
export class SmoothRoundRobin implements LoadBalancer {
  private readonly current: Float64Array;
  constructor(private readonly instances: readonly Instance[]) {
    this.current = new Float64Array(instances.length);
  }

  pick(_ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined {
    const list = this.instances;
    const now = Date.now();
    let total = 0;
    let best = -1;
    let bestVal = -Infinity;
    for (let i = 0; i < list.length; i++) {
      const inst = list[i]!;
      if (!inst.available(now) || (exclude !== undefined && exclude.has(inst))) continue;
      const c = (this.current[i]! += inst.weight);
      total += inst.weight;
      if (c > bestVal || (c === bestVal && inst.weight < list[best]!.weight)) {
        bestVal = c;
        best = i;
      }
    }
    if (best < 0) return undefined;
    this.current[best]! -= total;
    return list[best];
  }
}

/** Weighted random over available instances. */
export class WeightedRandom implements LoadBalancer {
  constructor(private readonly instances: readonly Instance[]) {}

  pick(_ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined {
    const list = this.instances;
    const now = Date.now();
    let total = 0;
    for (const inst of list) if (inst.available(now) && !exclude?.has(inst)) total += inst.weight;
    if (total <= 0) return undefined;
    let r = Math.random() * total;
    let last: Instance | undefined;
    for (const inst of list) {
      if (!inst.available(now) || exclude?.has(inst)) continue;
      last = inst;
      r -= inst.weight;
      if (r < 0) return inst;
    }
    return last;
  }
}
