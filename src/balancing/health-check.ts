// Active health checks. A HealthChecker runs over a ClusterManager: every
// service with a `healthCheck` policy has its instances probed each intervalMs
// (HTTP: status in expectedStatuses; TCP: connection accepted; gRPC: a probe
// registered by the gRPC module). unhealthyThreshold failures in a row mark an
// instance unhealthy (balancers skip it), healthyThreshold successes in a row
// bring it back. Instances start healthy.
//
// In a multi-process gateway one process runs the checker and passes each
// verdict (onVerdict) to the others, which apply it with applyHealthVerdict;
// snapshot() gives a process that starts later the verdicts so far.
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { probeTls, tlsConnectOptions } from './tls.js';
import { connect } from 'node:net';
import type { Logger } from 'pino';
import type { HealthCheckConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { Cluster } from './cluster.js';
import { grpcHealthProbe } from './health-grpc.js';
import type { ClusterManager } from './clusters.js';
import type { Instance } from './instance.js';

/** One probe of one instance: resolves true when healthy. Must settle by timeoutMs and never reject. */
export type HealthProbe = (inst: Instance, cfg: HealthCheckConfig, cluster: Cluster) => Promise<boolean>;

export interface HealthVerdict {
  service: string;
  instance: string;
  healthy: boolean;
}

export const httpProbe: HealthProbe = (inst, cfg, cluster) =>
  new Promise<boolean>((resolve) => {
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(ok);
    };
    // Over TLS when requests to the instance are (src/balancing/tls.ts).
    const tls = probeTls(inst, cluster?.config);
    if (tls === null) {
      resolve(false);
      return;
    }
    const send = tls === undefined ? request : httpsRequest;
    const req = send(
      {
        host: inst.host,
        port: inst.port,
        path: cfg.path,
        method: 'GET',
        agent: false,
        headers: { host: inst.id, 'user-agent': 'meshgate-health-check', connection: 'close' },
        ...(tls === undefined ? {} : tlsConnectOptions(tls, inst.host, 'http/1.1')),
      },
      (res) => {
        res.resume();
        finish(cfg.expectedStatuses.includes(res.statusCode ?? 0));
        res.on('error', () => undefined);
      },
    );
    const timer = setTimeout(() => {
      finish(false);
      req.destroy();
    }, cfg.timeoutMs);
    req.on('error', () => finish(false));
    req.end();
  });

export const tcpProbe: HealthProbe = (inst, cfg) =>
  new Promise<boolean>((resolve) => {
    const sock = connect({ host: inst.host, port: inst.port });
    const finish = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), cfg.timeoutMs);
    sock.once('connect', () => finish(true));
    sock.once('error', () => finish(false));
  });

const probes = new Map<string, HealthProbe>([
  ['http', httpProbe],
  ['tcp', tcpProbe],
  ['grpc', grpcHealthProbe],
]);

/** The gRPC module registers 'grpc' here (grpc.health.v1.Health/Check); tests may register others. */
export function registerHealthProbe(type: string, probe: HealthProbe): void {
  probes.set(type, probe);
}

/** Apply a verdict (from the checker, or received from the process running it). */
export function applyHealthVerdict(clusters: Pick<ClusterManager, 'has' | 'get'>, v: HealthVerdict, metrics?: Metrics): boolean {
  if (!clusters.has(v.service)) return false;
  const inst = clusters.get(v.service).instance(v.instance);
  if (!inst) return false;
  inst.checkHealthy = v.healthy;
  metrics?.instanceHealthy.labels(v.service, v.instance).set(v.healthy ? 1 : 0);
  return true;
}

interface InstanceState {
  successes: number;
  failures: number;
  healthy: boolean;
}

class ClusterCheck {
  readonly states = new Map<string, InstanceState>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  key: string;

  constructor(
    readonly cluster: Cluster,
    public cfg: HealthCheckConfig,
    private readonly owner: HealthChecker,
  ) {
    this.key = JSON.stringify(cfg);
  }

  start(): void {
    this.stopped = false;
    void this.round();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  reschedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.running) this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.round(), this.cfg.intervalMs);
    this.timer.unref();
  }

  async round(): Promise<void> {
    if (this.running || this.stopped) return;
    this.running = true;
    this.timer = undefined;
    try {
      const probe = probes.get(this.cfg.type);
      if (!probe) {
        this.owner.warnOnce(`${this.cluster.name}:${this.cfg.type}`, { service: this.cluster.name, type: this.cfg.type }, 'health check type has no probe in this build; instances are not checked');
        return;
      }
      const cfg = this.cfg;
      const list = this.cluster.instances;
      const results = await Promise.all(list.map((i) => probe(i, cfg, this.cluster).catch(() => false)));
      if (this.stopped) return;
      const live = new Set<string>();
      list.forEach((inst, k) => {
        live.add(inst.id);
        this.record(inst, results[k]!);
      });
      for (const id of this.states.keys()) if (!live.has(id)) this.states.delete(id);
    } finally {
      this.running = false;
      this.schedule();
    }
  }

  private record(inst: Instance, ok: boolean): void {
    let st = this.states.get(inst.id);
    if (!st) {
      st = { successes: 0, failures: 0, healthy: inst.checkHealthy };
      this.states.set(inst.id, st);
      this.owner.metrics?.instanceHealthy.labels(this.cluster.name, inst.id).set(st.healthy ? 1 : 0);
    }
    if (ok) {
      st.failures = 0;
      st.successes++;
      if (!st.healthy && st.successes >= this.cfg.healthyThreshold) this.verdict(inst, st, true);
    } else {
      st.successes = 0;
      st.failures++;
      if (st.healthy && st.failures >= this.cfg.unhealthyThreshold) this.verdict(inst, st, false);
    }
    // An Instance object replaced (removed and re-added) starts healthy: keep it in line.
    if (inst.checkHealthy !== st.healthy) inst.checkHealthy = st.healthy;
  }

  private verdict(inst: Instance, st: InstanceState, healthy: boolean): void {
    st.healthy = healthy;
    inst.checkHealthy = healthy;
    this.owner.emitVerdict({ service: this.cluster.name, instance: inst.id, healthy });
  }

  /** The policy is gone: every instance counts as healthy again. */
  release(): void {
    this.stop();
    for (const [id, st] of this.states) {
      if (!st.healthy) {
        const inst = this.cluster.instance(id);
        if (inst) inst.checkHealthy = true;
        this.owner.emitVerdict({ service: this.cluster.name, instance: id, healthy: true });
      }
    }
    this.states.clear();
  }
}

export interface HealthCheckerOptions {
  metrics?: Metrics;
  log?: Logger;
  /** Called on every verdict change (broadcast it to other processes). */
  onVerdict?: (v: HealthVerdict) => void;
  /** How often policy changes and new or dropped services are picked up (default 1000 ms). */
  syncIntervalMs?: number;
}

export class HealthChecker {
  private readonly checks = new Map<Cluster, ClusterCheck>();
  private syncTimer: NodeJS.Timeout | undefined;
  private readonly warned = new Set<string>();
  private readonly onCluster = (): void => this.sync();
  /** ClusterManager.membership at the last walk of every cluster (see sync). */
  private syncedMembership = -1;
  readonly metrics: Metrics | undefined;

  constructor(
    private readonly clusters: ClusterManager,
    private readonly opts: HealthCheckerOptions = {},
  ) {
    this.metrics = opts.metrics;
  }

  start(): void {
    if (this.syncTimer) return;
    this.clusters.on('cluster', this.onCluster);
    this.syncTimer = setInterval(() => this.sync(), this.opts.syncIntervalMs ?? 1000);
    this.syncTimer.unref();
    this.sync();
  }

  stop(): void {
    if (this.syncTimer) clearInterval(this.syncTimer);
    this.syncTimer = undefined;
    this.clusters.off('cluster', this.onCluster);
    for (const c of this.checks.values()) c.stop();
    this.checks.clear();
    this.syncedMembership = -1;
  }

  /**
   * Pick up policy changes and new or dropped services now (also runs every
   * syncIntervalMs). Walks every cluster only when the set of clusters or
   * their policies changed since the last walk: at 10,000 services a walk
   * takes 2-5 ms, which a once-a-second timer would add to request latency.
   */
  sync(): void {
    if (this.clusters.membership === this.syncedMembership) return;
    this.syncedMembership = this.clusters.membership;
    const present = new Set<Cluster>();
    for (const cluster of this.clusters.all()) {
      present.add(cluster);
      const cfg = cluster.config.healthCheck;
      let check = this.checks.get(cluster);
      if (!cfg) {
        if (check) {
          check.release();
          this.checks.delete(cluster);
        }
        continue;
      }
      if (!check) {
        check = new ClusterCheck(cluster, cfg, this);
        this.checks.set(cluster, check);
        check.start();
      } else if (check.key !== JSON.stringify(cfg)) {
        check.cfg = cfg;
        check.key = JSON.stringify(cfg);
        check.reschedule();
      }
    }
    for (const [cluster, check] of this.checks) {
      if (!present.has(cluster)) {
        check.stop();
        this.checks.delete(cluster);
      }
    }
  }

  /** Current unhealthy verdicts (for a process that starts later). */
  snapshot(): HealthVerdict[] {
    const out: HealthVerdict[] = [];
    for (const [cluster, check] of this.checks) {
      for (const [id, st] of check.states) if (!st.healthy) out.push({ service: cluster.name, instance: id, healthy: false });
    }
    return out;
  }

  describe(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [cluster, check] of this.checks) {
      out[cluster.name] = {
        config: check.cfg,
        instances: Object.fromEntries([...check.states].map(([id, st]) => [id, { healthy: st.healthy, successes: st.successes, failures: st.failures }])),
      };
    }
    return out;
  }

  emitVerdict(v: HealthVerdict): void {
    this.metrics?.instanceHealthy.labels(v.service, v.instance).set(v.healthy ? 1 : 0);
    this.opts.log?.[v.healthy ? 'info' : 'warn']({ service: v.service, instance: v.instance }, v.healthy ? 'health check: instance healthy again' : 'health check: instance unhealthy');
    try {
      this.opts.onVerdict?.(v);
    } catch (e) {
      this.opts.log?.error({ err: e }, 'health verdict listener failed');
    }
  }

  warnOnce(key: string, obj: Record<string, unknown>, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.opts.log?.warn(obj, msg);
  }
}
