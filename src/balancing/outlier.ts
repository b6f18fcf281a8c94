// Outlier detection (Envoy semantics): an instance that fails N times in a row
// is ejected from load balancing for baseEjectionMs x (times ejected), capped
// at maxEjectionMs, as long as no more than maxEjectionPercent of the service
// is ejected (at least one instance may always be). Connect failures,
// timeouts and resets count as gateway failures and as 5xx. Every intervalMs,
// an instance that is back and was ejected before has its multiplier lowered
// by one, so a host that stays healthy earns short ejections again.
import type { Logger } from 'pino';
import type { OutlierDetectionConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutlierDetector } from '../resilience/types.js';
import type { AttemptOutcome } from '../exchange/outcome.js';
import type { Cluster } from './cluster.js';
import type { Instance } from './instance.js';

export interface OutlierDeps {
  metrics?: Metrics;
  log?: Logger;
  now?: () => number;
}

export class OutlierDetection implements OutlierDetector {
  private readonly returns = new Map<Instance, NodeJS.Timeout>();
  private readonly sweep: NodeJS.Timeout;
  private readonly now: () => number;
  private closed = false;
  readonly gatewayThreshold: number;
  readonly connectThreshold: number;

  constructor(
    private readonly cluster: Cluster,
    readonly config: OutlierDetectionConfig,
    private readonly deps: OutlierDeps = {},
  ) {
    this.now = deps.now ?? Date.now;
    this.gatewayThreshold = config.consecutiveGatewayFailure ?? Infinity;
    this.connectThreshold = config.consecutiveConnectFailure ?? Infinity;
    this.sweep = setInterval(() => this.decay(), config.intervalMs);
    this.sweep.unref();
    // Ejections in progress (a replaced policy) run their course.
    const now = this.now();
    for (const i of cluster.instances) if (i.ejectedUntil > now) this.scheduleReturn(i, i.ejectedUntil - now);
  }

  report(inst: Instance, o: AttemptOutcome): void {
    if (o.failure === 'aborted') return;
    if (o.failure === undefined && o.status !== undefined && o.status < 500) {
      // Success: the common case, kept to three stores.
      inst.consecutive5xx = 0;
      inst.consecutiveGatewayFailures = 0;
      inst.consecutiveConnectFailures = 0;
      return;
    }
    let gateway: boolean;
    if (o.failure !== undefined) {
      gateway = true;
      if (o.failure === 'connect-failure') inst.consecutiveConnectFailures++;
      else inst.consecutiveConnectFailures = 0;
    } else {
      const s = o.status ?? 0;
      gateway = s === 502 || s === 503 || s === 504;
      inst.consecutiveConnectFailures = 0;
    }
    inst.consecutive5xx++;
    if (gateway) inst.consecutiveGatewayFailures++;
    else inst.consecutiveGatewayFailures = 0;
    if (
      inst.consecutive5xx >= this.config.consecutive5xx ||
      inst.consecutiveGatewayFailures >= this.gatewayThreshold ||
      inst.consecutiveConnectFailures >= this.connectThreshold
    ) {
      const reason =
        inst.consecutiveConnectFailures >= this.connectThreshold
          ? 'consecutive connect failures'
          : inst.consecutiveGatewayFailures >= this.gatewayThreshold
            ? 'consecutive gateway failures'
            : 'consecutive 5xx';
      this.eject(inst, reason);
    }
  }

  /** How many instances the service may have ejected at once. */
  maxEjected(): number {
    return Math.max(1, Math.floor((this.cluster.instances.length * this.config.maxEjectionPercent) / 100));
  }

  ejectedCount(now = this.now()): number {
    let n = 0;
    for (const i of this.cluster.instances) if (i.ejectedUntil > now) n++;
    return n;
  }

  private eject(inst: Instance, reason: string): void {
    const now = this.now();
    // Counting starts over either way: a refused ejection is retried after
    // another full run of failures, not on every failing request.
    inst.consecutive5xx = 0;
    inst.consecutiveGatewayFailures = 0;
    inst.consecutiveConnectFailures = 0;
    if (this.closed || inst.ejectedUntil > now) return;
    if (this.ejectedCount(now) >= this.maxEjected()) {
      this.deps.log?.warn({ service: this.cluster.name, instance: inst.id, reason }, 'outlier not ejected: maxEjectionPercent reached');
      return;
    }
    inst.ejections++;
    const ms = Math.min(this.config.baseEjectionMs * inst.ejections, Math.max(this.config.maxEjectionMs, this.config.baseEjectionMs));
    inst.ejectedUntil = now + ms;
    this.deps.metrics?.ejected.labels(this.cluster.name, inst.id).set(1);
    this.deps.log?.warn({ service: this.cluster.name, instance: inst.id, reason, ejectionMs: ms, ejections: inst.ejections }, 'outlier ejected');
    this.scheduleReturn(inst, ms);
  }

  private scheduleReturn(inst: Instance, ms: number): void {
    const prev = this.returns.get(inst);
    if (prev) clearTimeout(prev);
    // Balancers read ejectedUntil directly; this timer only updates the gauge
    // and forgets the instance when it is back.
    const t = setTimeout(() => this.returned(inst), ms + 1);
    t.unref();
    this.returns.set(inst, t);
  }

  private returned(inst: Instance): void {
    this.returns.delete(inst);
    if (inst.ejectedUntil > this.now()) return;
    inst.ejectedUntil = 0;
    this.deps.metrics?.ejected.labels(this.cluster.name, inst.id).set(0);
    this.deps.log?.info({ service: this.cluster.name, instance: inst.id }, 'outlier returned to load balancing');
  }

  /** Interval sweep: instances that are back lower their ejection multiplier. */
  decay(): void {
    const now = this.now();
    for (const i of this.cluster.instances) {
      if (i.ejections > 0 && i.ejectedUntil <= now) i.ejections--;
    }
  }

  describe(): unknown {
    const now = this.now();
    return {
      config: this.config,
      maxEjected: this.maxEjected(),
      ejected: this.cluster.instances.filter((i) => i.ejectedUntil > now).map((i) => ({ instance: i.id, until: new Date(i.ejectedUntil).toISOString(), ejections: i.ejections })),
    };
  }

  /** Stop timers. `release`: return every ejected instance to load balancing (the policy is gone). */
  close(release = true): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweep);
    for (const [inst, t] of this.returns) {
      clearTimeout(t);
      if (release) {
        inst.ejectedUntil = 0;
        this.deps.metrics?.ejected.labels(this.cluster.name, inst.id).set(0);
      }
    }
    this.returns.clear();
  }
}

/**
 * Attach, keep or remove a cluster's detector after a config is accepted. An
 * unchanged policy keeps its detector (and every ejection in progress).
 */
export function applyOutlierDetection(cluster: Cluster, deps: OutlierDeps): void {
  const cfg = cluster.config.outlierDetection;
  const cur = cluster.outlier instanceof OutlierDetection ? cluster.outlier : undefined;
  if (cur && cfg && JSON.stringify(cur.config) === JSON.stringify(cfg)) return;
  // A changed policy takes over ejections in progress; a removed one releases them.
  if (cur) cur.close(!cfg);
  else cluster.outlier?.close?.();
  cluster.outlier = cfg ? new OutlierDetection(cluster, cfg, deps) : undefined;
}
