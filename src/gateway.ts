// The gateway in one process: control plane (config, registries, endpoint
// table) and data plane (listeners, pipeline) side by side, never mixed:
// the control plane produces a RuntimeState, the data plane reads it.
// src/server/workers.ts splits the two across processes for --workers N.
import type { Logger } from 'pino';
import { ClusterManager } from './balancing/clusters.js';
import type { Cluster } from './balancing/cluster.js';
import { applyClusterPolicies } from './resilience/policies.js';
import { HealthChecker, type HealthVerdict } from './balancing/health-check.js';
import { ConfigError, parseConfigText, validateConfig } from './config/load.js';
import type { Config, ConfigInput, RegistryConfig } from './config/schema.js';
import { EndpointTable } from './discovery/endpoint-table.js';
import { loadRegistryFactory } from './discovery/registries.js';
import type { RegistryFactory, RegistryWatcher } from './discovery/types.js';
import { createAccessLogSink, createLogger, type AccessLogSink } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { CertificateStore, startListener, type RunningListener } from './server/listeners.js';
import { Pipeline } from './server/pipeline.js';
import { compileRuntime, referencedServices, type RuntimeState } from './server/runtime.js';
import { createStore } from './store/index.js';
import type { CounterStore } from './store/types.js';
import { createAdapters } from './upstreams/index.js';
import type { UpstreamAdapter } from './upstreams/types.js';
import type { RouteHandler } from './upstreams/route-handlers.js';
import { startAdmin, type AdminServer } from './admin/server.js';

export interface GatewayOptions {
  /** A config object (validated here), or YAML text. */
  config: ConfigInput | Config | string;
  /** File the config came from (reloads re-read it). */
  configPath?: string;
  log?: Logger;
  /** false: no access log; a Logger: write there; default: stdout. */
  accessLog?: boolean | AccessLogSink;
  /** Start the admin server (default true). */
  admin?: boolean;
  /** Serve traffic (false in the primary of a worker cluster). */
  dataPlane?: boolean;
  /** Run active health checks here (false in workers: the primary runs them and sends verdicts). */
  healthChecks?: boolean;
  metrics?: Metrics;
}

export interface ReloadResult {
  ok: boolean;
  version?: number;
  error?: string;
  problems?: string[];
}

interface PendingRegistry {
  config: RegistryConfig;
  key: string;
  factory: RegistryFactory<RegistryConfig>;
}

interface RegistryRun {
  config: RegistryConfig;
  key: string;
  watcher: RegistryWatcher;
}

const REGISTRY_START_WAIT_MS = 5_000;

function closeRouteHandlers(state: RuntimeState): void {
  for (const r of state.router.routes) (r.handler as RouteHandler | undefined)?.close?.();
}

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly table: EndpointTable;
  readonly clusters: ClusterManager;
  readonly adapters: Map<string, UpstreamAdapter>;
  store!: CounterStore;
  pipeline!: Pipeline;
  private listeners = new Map<string, RunningListener>();
  private registries = new Map<string, RegistryRun>();
  private admin: AdminServer | undefined;
  private accessSink: AccessLogSink | undefined;
  private reloading: Promise<ReloadResult> = Promise.resolve({ ok: true });
  readonly startedAt = Date.now();
  lastReload: { at: number; ok: boolean; error?: string } | undefined;
  /** Hooks for the worker cluster: the primary broadcasts these. */
  onApplied: ((config: Config) => void) | undefined;
  onHealthVerdict: ((v: HealthVerdict) => void) | undefined;
  health: HealthChecker | undefined;

  private constructor(
    private readonly opts: GatewayOptions,
    public config: Config,
  ) {
    this.log = opts.log ?? createLogger(config.log.level);
    this.metrics = opts.metrics ?? new Metrics();
    this.table = new EndpointTable(this.log);
    this.clusters = new ClusterManager(this.table);
    this.adapters = createAdapters({});
    // A cluster created between reloads (a breaker's fallback service, say) gets its policies at once.
    this.clusters.on('cluster', (c: Cluster) => applyClusterPolicies(c, { log: this.log, metrics: this.metrics }));
    this.table.on('registry', (s: { name: string; up: boolean }) => this.metrics.registryUp.labels(s.name).set(s.up ? 1 : 0));
    this.table.on('change', (service: string, entry: { endpoints: readonly unknown[] } | undefined) => {
      if (entry) this.metrics.endpoints.labels(service).set(entry.endpoints.length);
      else this.metrics.endpoints.remove(service);
    });
  }

  get state(): RuntimeState {
    return this.pipeline.state;
  }

  static async start(opts: GatewayOptions): Promise<Gateway> {
    const config = typeof opts.config === 'string' ? parseConfigText(opts.config, opts.configPath ?? '<inline>') : validateConfig(opts.config);
    const gw = new Gateway(opts, config);
    try {
      await gw.init();
    } catch (e) {
      await gw.stop().catch(() => undefined);
      throw e;
    }
    return gw;
  }

  private accessLogger(): AccessLogSink | undefined {
    const a = this.opts.accessLog;
    if (a === false || !this.config.log.access) return undefined;
    if (a && typeof a === 'object') return a;
    return (this.accessSink = createAccessLogSink());
  }

  private async init(): Promise<void> {
    const config = this.config;
    this.store = await createStore(config.store);
    const pending = await this.prepareRegistries(config.registries);
    const state = compileRuntime(config, this.compileDeps(), undefined);
    this.pipeline = new Pipeline(state, {
      clusters: this.clusters,
      metrics: this.metrics,
      log: this.log,
      accessLog: this.accessLogger(),
      adapters: this.adapters,
    });
    await this.startRegistries(pending);
    if (this.opts.dataPlane !== false) await this.syncListeners(config);
    if (this.opts.healthChecks !== false) {
      this.health = new HealthChecker(this.clusters, { metrics: this.metrics, log: this.log, onVerdict: (v) => this.onHealthVerdict?.(v) });
      this.health.start();
    }
    if (this.opts.admin !== false) this.admin = await startAdmin(this, config.admin.address);
    this.log.info(
      {
        listeners: [...this.listeners.values()].map((l) => `${l.name}=${l.address().address}:${l.address().port}`),
        admin: this.admin?.url,
        routes: config.routes.length,
        registries: config.registries.length,
      },
      'meshgate started',
    );
  }

  private compileDeps() {
    return { clusters: this.clusters, store: this.store, log: this.log, metrics: this.metrics };
  }

  /** Load adapters for registries that are new or changed (not started yet). Throws naming the registry. */
  private async prepareRegistries(list: RegistryConfig[]): Promise<PendingRegistry[]> {
    const out: PendingRegistry[] = [];
    for (const [i, rc] of list.entries()) {
      const key = JSON.stringify(rc);
      if (this.registries.get(rc.name)?.key === key) continue;
      try {
        out.push({ config: rc, key, factory: await loadRegistryFactory(rc.type) });
      } catch (e) {
        throw new ConfigError(`registries[${i}]`, [`registries[${i}].type: ${(e as Error).message}`]);
      }
    }
    return out;
  }

  /**
   * Start watchers side by side. Waits for their first listing up to
   * REGISTRY_START_WAIT_MS so the first requests find endpoints, but a silent
   * registry never holds up the listeners (/readyz says who is still syncing).
   */
  private async startRegistries(pending: PendingRegistry[]): Promise<void> {
    const starts: Array<Promise<void>> = [];
    for (const p of pending) {
      const rc = p.config;
      const old = this.registries.get(rc.name);
      if (old) {
        await Promise.resolve(old.watcher.stop()).catch(() => undefined);
        this.table.dropRegistry(rc.name);
      }
      const sink = this.table.sinkFor(rc.name, rc.type, this.log.child({ registry: rc.name }));
      const fail = (e: unknown): void => {
        sink.status(false, (e as Error).message);
        this.log.error({ registry: rc.name, err: (e as Error).message }, 'registry failed to start');
      };
      try {
        const watcher = p.factory(rc, sink);
        this.registries.set(rc.name, { config: rc, key: p.key, watcher });
        starts.push(Promise.resolve(watcher.start()).catch(fail));
      } catch (e) {
        fail(e);
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([
      Promise.all(starts).then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), REGISTRY_START_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (!waited) this.log.warn({ waitingFor: this.table.registryStates().filter((r) => !r.synced).map((r) => r.name) }, 'registries still syncing; serving anyway');
  }

  private async stopRemovedRegistries(config: Config): Promise<void> {
    const keep = new Set(config.registries.map((r) => r.name));
    for (const [name, run] of this.registries) {
      if (keep.has(name)) continue;
      await Promise.resolve(run.watcher.stop()).catch(() => undefined);
      this.table.dropRegistry(name);
      this.registries.delete(name);
      this.metrics.registryUp.remove(name);
    }
  }

  /** Refuse a config whose new or changed https listeners have unreadable or mismatched certificates. */
  private checkListeners(config: Config): void {
    for (const [i, lc] of config.listeners.entries()) {
      const cur = this.listeners.get(lc.name);
      if (lc.protocol !== 'https' || !lc.tls || (cur && JSON.stringify(cur.config) === JSON.stringify(lc))) continue;
      try {
        new CertificateStore(lc.tls.certificates, `listeners[${i}].tls.certificates`);
      } catch (e) {
        throw new ConfigError(`listeners[${i}]`, [(e as Error).message]);
      }
    }
  }

  private async syncListeners(config: Config): Promise<void> {
    const wanted = new Map(config.listeners.map((l) => [l.name, l]));
    for (const [name, l] of this.listeners) {
      const w = wanted.get(name);
      if (!w || JSON.stringify(w) !== JSON.stringify(l.config)) {
        await l.close(5_000);
        this.listeners.delete(name);
      }
    }
    for (const [name, lc] of wanted) {
      if (this.listeners.has(name)) continue;
      this.listeners.set(name, await startListener(lc, this.pipeline));
    }
  }

  /** Validate and apply a new config atomically; a bad one is refused and the old one keeps serving. */
  reload(next?: ConfigInput | Config | string): Promise<ReloadResult> {
    const run = async (): Promise<ReloadResult> => {
      let config: Config;
      try {
        if (next === undefined) {
          if (!this.opts.configPath) return { ok: false, error: 'no config file to reload from' };
          const { loadConfigFile } = await import('./config/load.js');
          config = loadConfigFile(this.opts.configPath);
        } else config = typeof next === 'string' ? parseConfigText(next) : validateConfig(next);
        const runs = await this.prepareRegistries(config.registries);
        if (this.opts.dataPlane !== false) this.checkListeners(config);
        const state = compileRuntime(config, this.compileDeps(), this.pipeline.state);
        // Committed from here on.
        await this.stopRemovedRegistries(config);
        await this.startRegistries(runs);
        const previous = this.pipeline.state;
        this.pipeline.state = state;
        this.config = config;
        // Retire the old routes' handlers (they reference-count shared connection pools).
        closeRouteHandlers(previous);
        const retired = this.clusters.retain(referencedServices(config));
        for (const c of retired) {
          c.breakers?.close?.();
          c.outlier?.close?.();
        }
        this.health?.sync();
        const live = new Set<string>();
        for (const c of this.clusters.all()) for (const i of c.instances) live.add(i.id);
        for (const a of this.adapters.values()) a.prune?.(live);
        if (retired.length) this.log.debug({ services: retired.map((c) => c.name) }, 'clusters retired');
        if (this.opts.dataPlane !== false) await this.syncListeners(config);
        this.metrics.configReloads.labels('applied').inc();
        this.lastReload = { at: Date.now(), ok: true };
        this.log.info({ version: state.version, routes: config.routes.length }, 'config applied');
        this.onApplied?.(config);
        return { ok: true, version: state.version };
      } catch (e) {
        const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
        this.metrics.configReloads.labels('rejected').inc();
        this.lastReload = { at: Date.now(), ok: false, error: problems.join('; ') };
        this.log.error({ problems }, 'config rejected: the running config keeps serving');
        return { ok: false, error: problems.join('; '), problems };
      }
    };
    // Reloads run one at a time.
    this.reloading = this.reloading.then(run, run);
    return this.reloading;
  }

  listener(name: string): RunningListener | undefined {
    return this.listeners.get(name);
  }

  listenerUrl(name?: string): string {
    const l = name ? this.listeners.get(name) : this.listeners.values().next().value;
    if (!l) throw new Error(`no listener ${name ?? ''}`);
    const a = l.address();
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${l.config.protocol === 'https' ? 'https' : 'http'}://${host}:${a.port}`;
  }

  adminUrl(): string {
    if (!this.admin) throw new Error('admin server not started');
    return this.admin.url;
  }

  registryWatchers(): Array<{ name: string; type: string; watcher: RegistryWatcher }> {
    return [...this.registries.values()].map((r) => ({ name: r.config.name, type: r.config.type, watcher: r.watcher }));
  }

  ready(): boolean {
    return this.table.allSynced();
  }

  async stop(graceMs = 5_000): Promise<void> {
    this.health?.stop();
    await Promise.allSettled([...this.listeners.values()].map((l) => l.close(graceMs)));
    this.listeners.clear();
    await this.admin?.close();
    for (const run of this.registries.values()) await Promise.resolve(run.watcher?.stop()).catch(() => undefined);
    this.registries.clear();
    if (this.pipeline) {
      for (const f of this.pipeline.state.globalFilters) f.close?.();
      for (const r of this.pipeline.state.router.routes) for (const f of r.filters) f.close?.();
      closeRouteHandlers(this.pipeline.state);
    }
    for (const c of this.clusters.all()) {
      c.breakers?.close?.();
      c.outlier?.close?.();
    }
    await Promise.allSettled([...this.adapters.values()].map((a) => a.close()));
    await this.store?.close();
    this.accessSink?.flushSync?.();
  }
}
