// The gateway in one process: control plane (config, registries, endpoint
// table) and data plane (listeners, pipeline) side by side, never mixed:
// the control plane produces a RuntimeState, the data plane reads it.
// src/server/workers.ts splits the two across processes for --workers N.
//
// A reload is a transaction. Prepare: validate, compile (nothing shared
// changes), bind the new addresses and check changed listener settings, here
// and in every worker. Any failure there aborts it all: the running config,
// listeners and reports stay as they were. Commit: registries, then one
// reference swaps (pipeline.state), new listeners serve, kept ones take their
// new settings in place; the previous generation is retired with one call.
import type { Logger } from 'pino';
import { ClusterManager } from './balancing/clusters.js';
import type { Cluster } from './balancing/cluster.js';
import { applyClusterPolicies } from './resilience/policies.js';
import { HealthChecker, type HealthVerdict } from './balancing/health-check.js';
import { ConfigError, parseConfigText, readConfigFile, textHash, validateConfig } from './config/load.js';
import type { Config, ConfigInput, RegistryConfig } from './config/schema.js';
import { EndpointTable } from './discovery/endpoint-table.js';
import { loadRegistryFactory } from './discovery/registries.js';
import type { RegistryFactory, RegistryWatcher } from './discovery/types.js';
import { createAccessLogSink, createLogger, type AccessLogSink } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { ListenerSet, type PreparedListeners } from './server/listener-set.js';
import type { RunningListener } from './server/listeners.js';
import { Pipeline } from './server/pipeline.js';
import { compileRuntime, retireRuntime, type Candidate, type RuntimeState } from './server/runtime.js';
import { serviceNameWarnings } from './config/names.js';
import { createStore } from './store/index.js';
import { Tracing } from './observability/tracing.js';
import type { CounterStore } from './store/types.js';
import { createAdapters } from './upstreams/index.js';
import type { UpstreamAdapter } from './upstreams/types.js';
import { startAdmin, type AdminServer } from './admin/server.js';

export interface GatewayOptions {
  /** A config object (validated here), or YAML text. */
  config: ConfigInput | Config | string;
  /** File the config came from (reloads re-read it). */
  configPath?: string;
  /** The file's text `config` was parsed from (the history's first entry, which the file watch and the console compare against). */
  configText?: string;
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
  /** A file-watch reload found the file's text unchanged since it was last applied: nothing was done. */
  unchanged?: boolean;
}

/** One applied config generation, newest last in `Gateway.history`. */
export interface AppliedConfig {
  readonly version: number;
  /** When it started serving. */
  readonly at: number;
  /** Who applied it: a console user's or token's name, or how (`start`, `file`). */
  readonly by: string;
  /** The file's text it was read from (undefined: applied from an object or inline text, not from the file). */
  readonly text: string | undefined;
  /** sha256 of that text. */
  readonly hash: string | undefined;
}

/** How reload() was asked for. */
export interface ReloadOptions {
  /** Recorded in the history and the log (default: 'file'). */
  by?: string;
  /** Skip (answer `unchanged`) when the file's text is the one that serves: the file watch sets it, so a write the console made and applied is not applied twice. */
  ifFileChanged?: boolean;
}

const HISTORY_KEEP = 20;

/** A step of a reload that other processes take part in (the workers). */
export interface PreparedChange {
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Listeners served by other processes (src/server/workers.ts): prepared and committed with each reload. */
export interface RemoteDataPlane {
  /** Every worker compiles `config`, binds its new addresses and checks its settings; rejects (all aborted) naming what failed. */
  prepare(config: Config): Promise<PreparedChange>;
}

/** A config validated, compiled and bound, not serving yet. The gateway takes no other reload until it is committed or aborted. */
export interface PendingReload {
  readonly version: number;
  commit(): Promise<ReloadResult>;
  abort(): Promise<void>;
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

interface Prepared {
  config: Config;
  /** The file's text the config was read from, when it was. */
  text: string | undefined;
  registries: PendingRegistry[];
  candidate: Candidate;
  local: PreparedListeners | undefined;
  remote: PreparedChange | undefined;
}

const REGISTRY_START_WAIT_MS = 5_000;
/** How long a listener a reload removed may drain its requests in flight. */
const RETIRED_LISTENER_GRACE_MS = 5_000;

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly table: EndpointTable;
  readonly clusters: ClusterManager;
  readonly adapters: Map<string, UpstreamAdapter>;
  store!: CounterStore;
  pipeline!: Pipeline;
  private listenerSet: ListenerSet | undefined;
  private registries = new Map<string, RegistryRun>();
  private admin: AdminServer | undefined;
  private accessSink: AccessLogSink | undefined;
  /** The end of the reload queue: reloads run one at a time. */
  private queue: Promise<void> = Promise.resolve();
  /** Listeners a reload removed, still draining. */
  private draining = new Set<Promise<void>>();
  readonly startedAt = Date.now();
  lastReload: { at: number; ok: boolean; error?: string } | undefined;
  /** The generations applied since start, newest last (at most 20): what the console shows and rolls back to. */
  readonly history: AppliedConfig[] = [];
  /** Set by the primary of a worker cluster: its workers' listeners take part in every reload. */
  remote: RemoteDataPlane | undefined;
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
    const candidate = compileRuntime(config, this.compileDeps(), undefined);
    this.pipeline = new Pipeline(candidate.state, {
      clusters: this.clusters,
      metrics: this.metrics,
      log: this.log,
      accessLog: this.accessLogger(),
      adapters: this.adapters,
    });
    this.setTracing(config);
    candidate.activate();
    this.record(candidate.state.version, 'start', this.startText());
    await this.startRegistries(pending);
    if (this.opts.dataPlane !== false) {
      this.listenerSet = new ListenerSet(this.pipeline);
      (await this.listenerSet.prepare(config, 'name')).commit();
    }
    if (this.opts.healthChecks !== false) {
      this.health = new HealthChecker(this.clusters, { metrics: this.metrics, log: this.log, onVerdict: (v) => this.onHealthVerdict?.(v) });
      this.health.start();
    }
    if (this.opts.admin !== false) this.admin = await startAdmin(this, config.admin.address);
    // A --workers primary (no data plane) says so once its workers serve ('meshgate primary ready'):
    // saying "started" here would come before a worker that then fails to start.
    this.log[this.opts.dataPlane === false ? 'debug' : 'info'](
      {
        listeners: this.listenerSet?.all().map((l) => `${l.name}=${l.address().address}:${l.address().port}`),
        admin: this.admin?.url,
        routes: config.routes.length,
        registries: config.registries.length,
      },
      this.opts.dataPlane === false ? 'control plane started' : 'meshgate started',
    );
    this.warnNames(config);
  }

  /** The text the starting config came from, when it is known: read again here, the file might already hold another. */
  private startText(): string | undefined {
    return this.opts.configText ?? (typeof this.opts.config === 'string' ? this.opts.config : undefined);
  }

  private record(version: number, by: string, text: string | undefined): void {
    this.history.push({ version, at: Date.now(), by, text, hash: text === undefined ? undefined : textHash(text) });
    if (this.history.length > HISTORY_KEEP) this.history.splice(0, this.history.length - HISTORY_KEEP);
  }

  /** File the config is read from on reload (undefined: started from an object or inline text). */
  get configPath(): string | undefined {
    return this.opts.configPath;
  }

  /** sha256 of the file text the serving config came from (undefined when it did not come from the file). */
  get servingHash(): string | undefined {
    return this.history.at(-1)?.hash;
  }

  /** Starts, replaces or stops tracing when `tracing:` changed (spans already queued are still sent). */
  private setTracing(config: Config): void {
    const next = config.tracing;
    const cur = this.pipeline.tracing;
    if (next === undefined ? cur === undefined : cur !== undefined && JSON.stringify(cur.config) === JSON.stringify(next)) return;
    this.pipeline.tracing = next === undefined ? undefined : new Tracing(next);
    void cur?.close();
  }

  /** Service names no configured registry can give (config/names.ts): said at start and on every applied reload. */
  private warnNames(config: Config): void {
    for (const w of serviceNameWarnings(config)) this.log.warn({ config: w }, 'config: a service no registry can give (its requests will answer 503 UH)');
  }

  private compileDeps() {
    return { clusters: this.clusters, store: this.store, log: this.log, metrics: this.metrics, endpointsOf: (s: string) => this.table.endpointsOf(s) };
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
   * A changed registry's new watcher takes over its services in the table: they
   * keep their endpoints until it reports (one update per service, no gap).
   */
  private async startRegistries(pending: PendingRegistry[]): Promise<void> {
    const starts: Array<Promise<void>> = [];
    for (const p of pending) {
      const rc = p.config;
      const old = this.registries.get(rc.name);
      if (old) await Promise.resolve(old.watcher.stop()).catch(() => undefined);
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

  /** Take the reload queue; resolves with the function that hands it on. */
  private acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const before = this.queue;
    this.queue = before.then(() => held);
    return before.then(() => release);
  }

  /** Reads the file when `next` is undefined; its text comes back for the history. */
  private readFile(): string {
    if (!this.opts.configPath) throw new Error('no config file to reload from');
    return readConfigFile(this.opts.configPath);
  }

  private load(next: ConfigInput | Config | string | undefined, text: string | undefined): Config {
    if (next === undefined) return parseConfigText(text!, this.opts.configPath);
    return typeof next === 'string' ? parseConfigText(next) : validateConfig(next);
  }

  /** Everything that can fail, with nothing running changed; throws after undoing its own steps. */
  private async prepare(config: Config, text: string | undefined): Promise<Prepared> {
    const registries = await this.prepareRegistries(config.registries);
    const candidate = compileRuntime(config, this.compileDeps(), this.pipeline.state);
    let local: PreparedListeners | undefined;
    let remote: PreparedChange | undefined;
    try {
      if (this.listenerSet) local = await this.listenerSet.prepare(config);
      if (this.remote) remote = await this.remote.prepare(config);
    } catch (e) {
      await local?.abort();
      candidate.discard();
      throw e;
    }
    return { config, text, registries, candidate, local, remote };
  }

  private async abort(p: Prepared): Promise<void> {
    await Promise.allSettled([p.remote?.abort(), p.local?.abort()]);
    p.candidate.discard();
  }

  /** Nothing here can refuse the config any more. */
  private async commit(p: Prepared, by: string): Promise<ReloadResult> {
    const { config, candidate } = p;
    await this.stopRemovedRegistries(config);
    await this.startRegistries(p.registries);
    const previous = this.pipeline.state;
    // The swap: requests from here on start on the new generation.
    this.pipeline.state = candidate.state;
    this.config = config;
    candidate.activate();
    const removed = p.local?.commit() ?? [];
    void this.retire(previous, candidate.state, removed, RETIRED_LISTENER_GRACE_MS);
    this.health?.sync();
    if (p.remote) {
      await p.remote.commit().catch((e: unknown) => this.log.error({ err: (e as Error).message }, 'workers did not confirm the new config'));
    }
    this.metrics.configReloads.labels('applied').inc();
    this.lastReload = { at: Date.now(), ok: true };
    this.record(candidate.state.version, by, p.text);
    this.setTracing(config);
    this.log.info({ version: candidate.state.version, routes: config.routes.length, by }, 'config applied');
    this.warnNames(config);
    return { ok: true, version: candidate.state.version };
  }

  private refused(e: unknown): ReloadResult {
    const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
    this.metrics.configReloads.labels('rejected').inc();
    this.lastReload = { at: Date.now(), ok: false, error: problems.join('; ') };
    this.log.error({ problems }, 'config rejected: the running config keeps serving');
    return { ok: false, error: problems.join('; '), problems };
  }

  /**
   * Release a generation that stopped serving, in one call: listeners `next`
   * does not have (they drain up to graceMs), then filters, route handlers and
   * clusters `next` does not carry over. `next` undefined: the gateway stops,
   * so the listeners drain before anything their requests use is released.
   */
  private retire(old: RuntimeState | undefined, next: RuntimeState | undefined, listeners: RunningListener[], graceMs: number): Promise<void> {
    const drained = Promise.allSettled(listeners.map((l) => l.close(graceMs))).then(() => undefined);
    this.draining.add(drained);
    void drained.finally(() => this.draining.delete(drained));
    const release = (): void => {
      if (!old) return;
      const dropped = retireRuntime(old, next, this.clusters);
      if (dropped.length) this.log.debug({ services: dropped.map((c) => c.name) }, 'clusters retired');
      if (!next) return;
      const live = new Set<string>();
      for (const c of this.clusters.all()) for (const i of c.instances) live.add(i.id);
      for (const a of this.adapters.values()) a.prune?.(live);
    };
    if (next) {
      release();
      return drained;
    }
    return drained.then(release);
  }

  /** Validate and apply a new config as one transaction; a refused one leaves everything as it was. */
  async reload(next?: ConfigInput | Config | string, opts: ReloadOptions = {}): Promise<ReloadResult> {
    const release = await this.acquire();
    try {
      let p: Prepared;
      try {
        const text = next === undefined ? this.readFile() : undefined;
        if (opts.ifFileChanged && text !== undefined && textHash(text) === this.servingHash) return { ok: true, version: this.state.version, unchanged: true };
        p = await this.prepare(this.load(next, text), text);
      } catch (e) {
        return this.refused(e);
      }
      return await this.commit(p, opts.by ?? (next === undefined ? 'file' : 'api'));
    } finally {
      release();
    }
  }

  /**
   * The first half of a reload, for a worker whose primary coordinates: prepare
   * now, commit or abort when told. Rejects (counted and logged as refused) with
   * nothing changed. Other reloads wait until this one is settled.
   */
  async begin(next: ConfigInput | Config): Promise<PendingReload> {
    const release = await this.acquire();
    let p: Prepared;
    try {
      p = await this.prepare(this.load(next, undefined), undefined);
    } catch (e) {
      release();
      throw new Error(this.refused(e).error);
    }
    let settled = false;
    return {
      version: p.candidate.state.version,
      commit: async () => {
        if (settled) throw new Error('reload already settled');
        settled = true;
        try {
          return await this.commit(p, 'primary');
        } finally {
          release();
        }
      },
      abort: async () => {
        if (settled) return;
        settled = true;
        try {
          await this.abort(p);
          this.refused(new Error('aborted by the primary: not every worker could take the config'));
        } finally {
          release();
        }
      },
    };
  }

  listener(name: string): RunningListener | undefined {
    return this.listenerSet?.get(name);
  }

  listenerUrl(name?: string): string {
    const l = name ? this.listenerSet?.get(name) : this.listenerSet?.all()[0];
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
    await this.retire(this.pipeline?.state, undefined, this.listenerSet?.takeAll() ?? [], graceMs);
    await Promise.allSettled([...this.draining]);
    await this.admin?.close();
    for (const run of this.registries.values()) await Promise.resolve(run.watcher?.stop()).catch(() => undefined);
    this.registries.clear();
    await Promise.allSettled([...this.adapters.values()].map((a) => a.close()));
    await this.pipeline?.tracing?.close();
    await this.store?.close();
    this.accessSink?.flushSync?.();
  }
}
