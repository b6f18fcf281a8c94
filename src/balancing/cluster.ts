// A Cluster is one service as the data plane sees it: its instances (from the
// EndpointTable), its policy (from `services:` config) and the balancers built
// over them. Clusters outlive config reloads, so instance state (ejections,
// health verdicts, in-flight counts) and balancer state carry over.
import type { LoadBalancerConfig, ServiceConfig } from '../config/schema.js';
import { endpointKey, type Endpoint } from '../discovery/types.js';
import { createLoadBalancer } from './index.js';
import { Instance } from './instance.js';
import type { LoadBalancer, PickContext } from './types.js';
import type { BreakerSet, OutlierDetector } from '../resilience/types.js';

export interface InstanceSelector {
  /** Instance metadata must equal every entry. */
  subset?: Readonly<Record<string, string>>;
}

export interface View {
  instances: readonly Instance[];
  lb: LoadBalancer;
}

/** Subset objects come from config and live as long as it does: key them once, not per request. */
const selectorKeys = new WeakMap<object, string>();

export function selectorKey(sel: Readonly<Record<string, string>>): string {
  let k = selectorKeys.get(sel);
  if (k === undefined) {
    k = JSON.stringify(Object.entries(sel).sort(([a], [b]) => (a < b ? -1 : 1)));
    selectorKeys.set(sel, k);
  }
  return k;
}

export function matchesSubset(inst: Instance, subset: Readonly<Record<string, string>>): boolean {
  for (const k in subset) if (inst.metadata[k] !== subset[k]) return false;
  return true;
}

export class Cluster {
  instances: readonly Instance[] = [];
  private byId = new Map<string, Instance>();
  private all: View;
  private views = new Map<string, View>();
  private filteredViews = new Map<string, View>();
  /** Bumped when instances or policy change; caches keyed on a cluster compare it. */
  generation = 0;
  /** Requests and retries in flight (retry budget). */
  activeRequests = 0;
  activeRetries = 0;
  /** Circuit breakers (src/resilience), set from `circuitBreakers` config. */
  breakers: BreakerSet | undefined;
  /** Outlier detection (src/balancing), set from `outlierDetection` config. */
  outlier: OutlierDetector | undefined;

  constructor(
    readonly name: string,
    public config: ServiceConfig,
  ) {
    this.all = { instances: [], lb: createLoadBalancer([], config.loadBalancer) };
  }

  /** Replace the instance list (keeps Instance objects whose host:port stays). */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    const next = new Map<string, Instance>();
    const list: Instance[] = [];
    for (const e of endpoints) {
      const old = this.byId.get(endpointKey(e));
      const inst = old ?? new Instance(e);
      if (old) old.update(e);
      next.set(inst.id, inst);
      list.push(inst);
    }
    this.byId = next;
    this.instances = list;
    this.rebuild();
  }

  /** Apply new policy. Balancers are rebuilt only when the balancer config changed. */
  setConfig(config: ServiceConfig): void {
    const lbChanged = JSON.stringify(config.loadBalancer) !== JSON.stringify(this.config.loadBalancer);
    this.config = config;
    if (lbChanged) this.rebuild();
  }

  get lbConfig(): LoadBalancerConfig {
    return this.config.loadBalancer;
  }

  instance(id: string): Instance | undefined {
    return this.byId.get(id);
  }

  private rebuild(): void {
    this.generation++;
    this.all = { instances: this.instances, lb: createLoadBalancer(this.instances, this.config.loadBalancer) };
    this.views.clear();
    this.filteredViews.clear();
  }

  /** The instances a selector admits (all instances when there is no selector). */
  view(sel?: InstanceSelector): View {
    if (!sel?.subset) return this.all;
    const key = selectorKey(sel.subset);
    let v = this.views.get(key);
    if (!v) {
      const subset = sel.subset;
      const instances = this.instances.filter((i) => matchesSubset(i, subset));
      v = { instances, lb: createLoadBalancer(instances, this.config.loadBalancer) };
      if (this.views.size > 1024) this.views.clear();
      this.views.set(key, v);
    }
    return v;
  }

  /**
   * A view of the instances `admit` accepts, cached under `key` until the
   * instances or the balancer config change (grey tags build these).
   */
  filtered(key: string, admit: (inst: Instance) => boolean): View {
    let v = this.filteredViews.get(key);
    if (!v) {
      const instances = this.instances.filter(admit);
      v = { instances, lb: createLoadBalancer(instances, this.config.loadBalancer) };
      if (this.filteredViews.size > 1024) this.filteredViews.clear();
      this.filteredViews.set(key, v);
    }
    return v;
  }

  pick(ctx: PickContext, sel?: InstanceSelector, exclude?: ReadonlySet<Instance>): Instance | undefined {
    return this.view(sel).lb.pick(ctx, exclude);
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, instances: this.instances.map((i) => i.toJSON()) };
  }
}
