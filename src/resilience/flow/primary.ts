// flow_control limits for the whole gateway in a --workers cluster: workers
// do not keep their own buckets for qps, warm_up and queue rules; each check
// goes to the primary over the cluster IPC channel, which runs the same
// controllers once for all workers. So `count: 100` is 100 per interval for
// the gateway, however many workers and however the kernel spreads
// connections. Concurrency rules stay per worker (an in-flight slot belongs
// to the process that holds the request; a worker that dies must not leak
// the primary's slots).
import type { FlowRuleConfig } from '../../config/schema.js';
import { askPrimary, inClusterWorker, onPrimaryAsk } from '../../store/primary-channel.js';
import { Concurrency, Throttle, TokenBucket, WarmUp, type Controller } from './controllers.js';

export function controllerFor(r: FlowRuleConfig): Controller<unknown> {
  return r.metric === 'concurrency'
    ? new Concurrency(r.count)
    : r.behavior === 'warm_up'
      ? new WarmUp(r.count, r.warmUpSec, r.coldFactor)
      : r.behavior === 'queue'
        ? new Throttle(r.count, r.intervalSec, r.maxQueueingMs)
        : new TokenBucket(r.count, r.burst, r.intervalSec);
}

/** True in a worker of a --workers cluster: flow states belong to the primary. */
export const flowInClusterWorker = inClusterWorker;

export interface FlowAnswer {
  /** Controller result: >= 0 pass after that many ms; REJECT. */
  res: number;
  retryAfterMs: number;
}
/** [rule identity, rule config, key] */
type FlowAsk = [string, FlowRuleConfig, string];

/** Worker side: the primary's verdict, or undefined when it does not answer (the caller decides locally). */
export async function askPrimaryFlow(rule: string, cfg: FlowRuleConfig, key: string): Promise<FlowAnswer | undefined> {
  const a = await askPrimary<[number, number]>('flow', [rule, cfg, key] satisfies FlowAsk);
  return a ? { res: a[0], retryAfterMs: a[1] } : undefined;
}

/** Keys kept per rule in the primary; past it the state is started afresh (as a worker's own map does). */
const MAX_KEYS = 100_000;

interface RuleStates {
  ctl: Controller<unknown>;
  states: Map<string, unknown>;
  used: number;
}
const rules = new Map<string, RuleStates>();
let serving = false;

/** Primary side: answer the workers' flow checks (once, before workers start). */
export function serveFlowChecks(): void {
  if (serving) return;
  serving = true;
  // Rules no worker asked about for an hour (removed by a reload) are dropped.
  setInterval(() => {
    const old = Date.now() - 3_600_000;
    for (const [k, v] of rules) if (v.used < old) rules.delete(k);
  }, 300_000).unref();
  onPrimaryAsk('flow', (payload) => {
    const [rule, cfg, key] = payload as FlowAsk;
    const id = `${rule}\u0000${JSON.stringify(cfg)}`;
    let r = rules.get(id);
    if (!r) rules.set(id, (r = { ctl: controllerFor(cfg), states: new Map(), used: 0 }));
    const now = Date.now();
    r.used = now;
    let s = r.states.get(key);
    if (s === undefined) {
      // A clear keeps this O(1) and bounded (the worker's own map forgets the oldest instead).
      if (r.states.size >= MAX_KEYS) r.states.clear();
      s = r.ctl.create(now);
      r.states.set(key, s);
    }
    const res = r.ctl.acquire(s, now);
    return [res, res < 0 ? r.ctl.retryAfterMs(s, now) : 0];
  });
}
