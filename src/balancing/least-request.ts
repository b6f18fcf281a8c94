// least_request, as Envoy does it.
//
// Equal weights: power of N choices (default two) — sample N available
// instances at random and take the one with the fewest requests in flight.
// Unequal weights: a weighted scheduler over effective weights
// weight / (active + 1), so an idle service splits exactly by weight and a
// loaded instance gets proportionally less. The scheduler is the smooth
// weighted round robin of simple.ts with weights recomputed per pick.
import type { Instance } from './instance.js';
import type { LoadBalancer, PickContext } from './types.js';

export class LeastRequest implements LoadBalancer {
  private readonly current: Float64Array;
  /** Scratch list of available indexes (reused: no allocation per pick). */
  private readonly avail: Int32Array;
  private readonly equalWeights: boolean;

  constructor(
    private readonly instances: readonly Instance[],
    private readonly choices = 2,
    private readonly random: () => number = Math.random,
  ) {
    this.current = new Float64Array(instances.length);
    this.avail = new Int32Array(instances.length);
    this.equalWeights = instances.every((i) => i.weight === instances[0]!.weight);
  }

  pick(_ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined {
    return this.equalWeights ? this.pickP2C(exclude) : this.pickWeighted(exclude);
  }

  private pickP2C(exclude?: ReadonlySet<Instance>): Instance | undefined {
    const list = this.instances;
    const now = Date.now();
    let n = 0;
    for (let i = 0; i < list.length; i++) {
      const inst = list[i]!;
      if (inst.available(now) && (exclude === undefined || !exclude.has(inst))) this.avail[n++] = i;
    }
    if (n === 0) return undefined;
    if (n === 1) return list[this.avail[0]!];
    // First choice uniform; further choices uniform among the others when there
    // are enough instances (two distinct choices for the common case).
    let bestIdx = Math.floor(this.random() * n);
    let best = list[this.avail[bestIdx]!]!;
    for (let c = 1; c < this.choices; c++) {
      let j = Math.floor(this.random() * (n - 1));
      if (j >= bestIdx) j++;
      const cand = list[this.avail[j]!]!;
      if (cand.active < best.active) {
        best = cand;
        bestIdx = j;
      }
    }
    return best;
  }

  private pickWeighted(exclude?: ReadonlySet<Instance>): Instance | undefined {
    const list = this.instances;
    const now = Date.now();
    let total = 0;
    let best = -1;
    let bestVal = -Infinity;
    for (let i = 0; i < list.length; i++) {
      const inst = list[i]!;
      if (!inst.available(now) || (exclude !== undefined && exclude.has(inst))) continue;
      const w = inst.weight / (inst.active + 1);
      const c = (this.current[i]! += w);
      total += w;
      if (c > bestVal) {
        bestVal = c;
        best = i;
      }
    }
    if (best < 0) return undefined;
    this.current[best]! -= total;
    return list[best];
  }
}
