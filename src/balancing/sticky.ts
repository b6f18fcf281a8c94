// Sticky sessions by cookie: the first pick goes through a fallback balancer
// and sets a cookie naming the instance; later requests carrying the cookie go
// to the same instance while it is available. The cookie holds a hash of the
// instance address, not the address itself.
import { murmur3 } from './hash.js';
import type { Instance } from './instance.js';
import type { LoadBalancer, PickContext } from './types.js';

export function stickyToken(inst: Instance): string {
  return murmur3(inst.id, 0x51c4).toString(36) + murmur3(inst.id, 0x7e1).toString(36);
}

export class StickyCookie implements LoadBalancer {
  private readonly byToken = new Map<string, Instance>();
  /** Precomputed Set-Cookie values per instance. */
  private readonly setCookie = new Map<Instance, string>();

  constructor(
    instances: readonly Instance[],
    private readonly cookie: string,
    ttlSec: number | undefined,
    private readonly fallback: LoadBalancer,
  ) {
    const attrs = `; Path=/; HttpOnly; SameSite=Lax${ttlSec !== undefined ? `; Max-Age=${ttlSec}` : ''}`;
    for (const inst of instances) {
      const token = stickyToken(inst);
      this.byToken.set(token, inst);
      this.setCookie.set(inst, `${cookie}=${token}${attrs}`);
    }
  }

  pick(ctx: PickContext, exclude?: ReadonlySet<Instance>): Instance | undefined {
    const token = ctx.cookie(this.cookie);
    if (token !== undefined) {
      const inst = this.byToken.get(token);
      if (inst !== undefined && inst.available(Date.now()) && (exclude === undefined || !exclude.has(inst))) return inst;
    }
    const inst = this.fallback.pick(ctx, exclude);
    if (inst !== undefined) ctx.setResponseCookie?.(this.setCookie.get(inst)!);
    return inst;
  }
}
