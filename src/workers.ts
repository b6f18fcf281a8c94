// --workers N: one primary (control plane: config, registries, admin) and N
// worker processes (data plane) sharing the listener ports. The primary sends
// each worker the validated config and every endpoint change over IPC.
// A reload is two-phase: every serving worker prepares it (compiles, binds
// its new addresses) and answers; only when all could does the primary commit
// (its own state, then the workers'); otherwise all abort and the reload is
// refused with the workers' errors.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { startAdmin, type AdminServer } from './admin/server.js';
import { sumTotals, type Totals } from './admin/stats.js';
import type { Config } from './config/schema.js';
import type { Endpoint, RegistrySink } from './discovery/types.js';
import { ConfigError } from './config/load.js';
import { Gateway, type PendingReload } from './gateway.js';
import { applyHealthVerdict, type HealthVerdict } from './balancing/health-check.js';
import { createLogger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { serveRateChecks } from './filters/cc/limiter.js';
import { serveFlowChecks } from './resilience/flow/primary.js';
import { servePrimaryChannel } from './store/primary-channel.js';

type EndpointChange = [service: string, endpoints: readonly Endpoint[] | null];

type ToWorker =
  | { t: 'init'; config: Config; endpoints: Array<[string, readonly Endpoint[]]> }
  /** Phase one of a reload: compile, bind new addresses, check settings; answer 'prepared'. */
  | { t: 'prepare'; id: number; config: Config }
  /** Phase two: serve the prepared config (a worker that did not prepare it, being new, reloads to it); answer 'committed'. */
  | { t: 'commit'; id: number; config: Config }
  | { t: 'abort'; id: number }
  /** Endpoint changes of one moment, applied together. */
  | { t: 'eps'; list: EndpointChange[] }
  /** A worker's view of `path`; for /api/services only the services `names` lists when given, or with `problems` only the names of those with a problem. */
  | { t: 'view'; id: number; path: string; names?: string[]; problems?: boolean }
  | { t: 'health'; v: HealthVerdict[] }
  | { t: 'stop' };

type ToPrimary =
  | { t: 'hello' }
  | { t: 'ready' }
  /** The worker could not start (its config would not bind or compile): said once, by the primary. */
  | { t: 'failed'; error: string }
  /** A worker's view; /api/services comes as 'view-part' messages of services first, the rest in the last. */
  | { t: 'view'; id: number; body: unknown }
  | { t: 'view-part'; id: number; services: unknown[] }
  | { t: 'prepared'; id: number; error?: string }
  | { t: 'committed'; id: number; error?: string };

/** The 'view' a worker answers with its request counters summed (admin/stats.ts Totals), for the console's live figures. */
const STATS_TOTALS = 'stats-totals';

/** How long a worker may take to compile and bind a config. */
const PREPARE_TIMEOUT_MS = 15_000;
/** How long the primary waits for workers to confirm they serve a committed config. */
const COMMIT_TIMEOUT_MS = 10_000;

export interface PrimaryHandle {
  gateway: Gateway;
  admin: AdminServer;
  workers(): number;
  stop(): Promise<void>;
}

/** Run the primary: returns once every worker is listening. */
export async function runPrimary(opts: { config: Config; configText?: string; configPath?: string; workers: number; log?: Logger }): Promise<PrimaryHandle> {
  const log = opts.log ?? createLogger(opts.config.log.level);
  const metrics = new Metrics({ role: 'control', processMetrics: false });
  const gw = await Gateway.start({ config: opts.config, configText: opts.configText, configPath: opts.configPath, log, dataPlane: false, admin: false, accessLog: false, metrics });
  const aggregator = new AggregatorRegistry();
  const live = new Map<number, Worker>();
  /** Workers that finished starting and serve. */
  const serving = new Set<Worker>();
  let stopping = false;
  let nextViewId = 1;
  let nextReloadId = 1;
  const pendingViews = new Map<number, { results: unknown[]; left: number; resolve: (v: unknown[]) => void; parts: Map<number, unknown[]>; progress: () => void }>();
  /** Answers awaited from workers, by `${kind}:${id}:${worker id}`. */
  const replies = new Map<string, (error: string | undefined) => void>();

  // Endpoint changes are batched per moment and always sent before any later
  // message, so a worker sees a service's new list as one update, and before a
  // config that needs it.
  let batch = new Map<string, readonly Endpoint[] | null>();
  let flushQueued = false;
  const flush = (): void => {
    flushQueued = false;
    if (batch.size === 0) return;
    const m: ToWorker = { t: 'eps', list: [...batch] };
    batch = new Map();
    for (const w of live.values()) if (w.isConnected()) w.send(m);
  };
  const send = (w: Worker, m: ToWorker): void => {
    flush();
    if (w.isConnected()) w.send(m);
  };
  const broadcast = (m: ToWorker): void => {
    flush();
    for (const w of live.values()) if (w.isConnected()) w.send(m);
  };
  const ask = (w: Worker, m: ToWorker & { id: number }, kind: 'prepared' | 'committed', timeoutMs: number): Promise<string | undefined> =>
    new Promise((resolve) => {
      const key = `${kind}:${m.id}:${w.id}`;
      const timer = setTimeout(() => answer(`no answer within ${timeoutMs} ms`), timeoutMs);
      const answer = (error: string | undefined): void => {
        clearTimeout(timer);
        replies.delete(key);
        resolve(error);
      };
      replies.set(key, answer);
      if (!w.isConnected()) return answer('worker is gone');
      send(w, m);
    });

  gw.table.on('endpoints', (s: string, e: readonly Endpoint[] | undefined) => {
    batch.set(s, e ?? null);
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  });
  // The primary runs active health checks once for all workers and sends them the verdicts.
  gw.onHealthVerdict = (v) => broadcast({ t: 'health', v: [v] });

  // Each reload is prepared in every serving worker and committed only when all of them could.
  gw.remote = {
    async prepare(config) {
      const id = nextReloadId++;
      const targets = [...serving];
      const answers = await Promise.all(
        targets.map(async (w) => ({ pid: w.process.pid, error: await ask(w, { t: 'prepare', id, config }, 'prepared', PREPARE_TIMEOUT_MS) })),
      );
      const failed = answers.filter((a) => a.error !== undefined);
      if (failed.length) {
        for (const w of targets) send(w, { t: 'abort', id });
        const byError = new Map<string, number[]>();
        for (const f of failed) byError.set(f.error!, [...(byError.get(f.error!) ?? []), f.pid ?? 0]);
        throw new ConfigError('workers', [...byError].map(([error, pids]) => `${error} (worker${pids.length > 1 ? 's' : ''} ${pids.join(', ')})`));
      }
      return {
        async commit() {
          // Workers still starting got the config of their start; they move to this one when it arrives.
          for (const w of live.values()) if (!serving.has(w)) send(w, { t: 'commit', id, config });
          const errors = await Promise.all(
            [...serving].map(async (w) => ({ pid: w.process.pid, error: await ask(w, { t: 'commit', id, config }, 'committed', COMMIT_TIMEOUT_MS) })),
          );
          const bad = errors.filter((e) => e.error !== undefined);
          if (bad.length) throw new Error(bad.map((b) => `worker ${b.pid}: ${b.error}`).join('; '));
        },
        async abort() {
          for (const w of targets) send(w, { t: 'abort', id });
        },
      };
    },
  };

  serveRateChecks();
  serveFlowChecks();
  cluster.schedulingPolicy = cluster.SCHED_NONE; // the kernel spreads connections, as nginx's workers
  let started = false;
  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ MESHGATE_ROLE: 'worker' });
      let failure: string | undefined;
      live.set(w.id, w);
      // A worker that dies while a message is on its way (a reload, endpoint changes) fails that write
      // with EPIPE, emitted here: without a listener it would end the primary. Its 'exit' below restarts it.
      w.on('error', (e: Error) => log.warn({ workerPid: w.process.pid, reason: e.message }, 'worker channel failed'));
      // CC and flow_control limits in the memory store are counted here, once for all workers.
      servePrimaryChannel(w);
      w.on('message', (m: ToPrimary) => {
        // The worker says hello once it listens for messages (earlier ones would be lost).
        if (m.t === 'hello') {
          send(w, { t: 'init', config: gw.config, endpoints: gw.table.services().map((s) => [s.name, s.endpoints]) });
          const known = gw.health?.snapshot() ?? [];
          if (known.length) send(w, { t: 'health', v: known });
        } else if (m.t === 'ready') {
          serving.add(w);
          resolve();
        } else if (m.t === 'failed') {
          failure = m.error;
        } else if (m.t === 'prepared' || m.t === 'committed') replies.get(`${m.t}:${m.id}:${w.id}`)?.(m.error);
        else if (m.t === 'view-part') {
          const p = pendingViews.get(m.id);
          if (p) {
            const got = p.parts.get(w.id);
            if (got) for (const x of m.services) got.push(x);
            else p.parts.set(w.id, m.services);
            p.progress();
          }
        } else if (m.t === 'view') {
          const p = pendingViews.get(m.id);
          if (p) {
            const before = p.parts.get(w.id);
            if (before) {
              p.parts.delete(w.id);
              const body = m.body as { services?: unknown[] };
              if (Array.isArray(body.services)) body.services = before.concat(body.services);
            }
            p.results.push(m.body);
            if (--p.left === 0) {
              pendingViews.delete(m.id);
              p.resolve(p.results);
            }
          }
        }
      });
      w.once('exit', (code, signal) => {
        live.delete(w.id);
        serving.delete(w);
        for (const [key, answer] of replies) if (key.endsWith(`:${w.id}`)) answer(`worker exited (code ${code})`);
        if (stopping) return;
        if (!started) {
          // During start every worker fails the same way: the start fails, once, with the worker's reason; nothing is restarted.
          reject(new Error(failure ?? `a worker exited during start (code ${code ?? signal})`));
          return;
        }
        log.error({ workerPid: w.process.pid, code, signal, reason: failure }, 'worker exited; starting a new one');
        setTimeout(() => void fork().catch((e: Error) => log.error({ reason: e.message }, 'worker restart failed')), 500).unref();
      });
    });

  /** Each worker's answer to a 'view' message (see ToWorker). */
  const workerViews = (path: string, ask?: { names?: string[]; problems?: boolean }): Promise<unknown[]> =>
    new Promise((resolve) => {
      const id = nextViewId++;
      // Workers that do not answer within 2 s are left out; a worker still sending its parts is waited for.
      const giveUp = (): void => {
        const p = pendingViews.get(id);
        pendingViews.delete(id);
        resolve(p?.results ?? []);
      };
      let timer = setTimeout(giveUp, 2000);
      timer.unref();
      pendingViews.set(id, {
        results: [],
        left: live.size,
        parts: new Map(),
        progress: () => {
          clearTimeout(timer);
          timer = setTimeout(giveUp, 2000);
          timer.unref();
        },
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      });
      broadcast({ t: 'view', id, path, names: ask?.names, problems: ask?.problems });
    });

  // The admin listens before the workers are forked: it answers as soon as the
  // listeners do (its /readyz says 503 until every worker has started), and a
  // taken admin port fails the start before any worker runs.
  const admin = await startAdmin(gw, opts.config.admin.address, {
    scope: () => ({ scope: 'cluster', workers: live.size, note: 'control-plane view; add ?live=1 for each worker\'s live instance state' }),
    // Ready once the start is over (every worker listened once; until then it can still fail) and a worker serves.
    serving: () => ({ ok: started && serving.size > 0, workers: { serving: serving.size, of: opts.workers } }),
    metrics: async () => {
      const workersText = await aggregator.clusterMetrics();
      const own = await metrics.registry.metrics();
      return { contentType: aggregator.contentType, body: `# meshgate: request metrics summed over ${live.size} worker(s); registry metrics from the primary\n${own}\n${workersText}` };
    },
    statsTotals: async () => sumTotals((await workerViews(STATS_TOTALS)).map((v) => (v as { totals: Totals }).totals)),
    workerViews,
  });
  try {
    await Promise.all(Array.from({ length: opts.workers }, () => fork()));
  } catch (e) {
    stopping = true;
    for (const w of live.values()) w.kill('SIGKILL');
    await admin.close().catch(() => undefined);
    await gw.stop(0).catch(() => undefined);
    throw e;
  }
  started = true;

  log.info({ workers: opts.workers, admin: admin.url }, 'meshgate primary ready');

  return {
    gateway: gw,
    admin,
    workers: () => live.size,
    async stop() {
      stopping = true;
      const exits = [...live.values()].map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once('exit', () => r()))));
      broadcast({ t: 'stop' });
      await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 15_000).unref())]);
      for (const w of live.values()) w.kill('SIGKILL');
      await admin.close();
      await gw.stop();
    },
  };
}

/** Run a worker: waits for the primary's init message, then serves. */
export function runWorker(): void {
  const log = createLogger(process.env.MESHGATE_LOG_LEVEL ?? 'info').child({ worker: cluster.worker?.id });
  let gw: Gateway | undefined;
  let mirror: RegistrySink | undefined;
  const early: ToWorker[] = [];
  /** Reloads prepared here, waiting for the primary's commit or abort. */
  const prepared = new Map<number, PendingReload>();
  /** Aborts that came before their prepare finished (the primary gave up waiting). */
  const aborted = new Set<number>();
  // A primary that is gone (stopped mid-start, killed) closes the channel: nothing to tell it, and no EPIPE trace
  // (the send's callback takes the error). Resolves once the message is written, or failed to be.
  const reply = (m: ToPrimary): Promise<void> =>
    new Promise<void>((sent) => {
      if (!process.send) return sent();
      process.send(m, undefined, undefined, () => sent());
    });
  process.on('disconnect', () => process.exit(0));
  // Workers do not watch registries: the primary does and mirrors endpoints here.
  const own = (config: Config): Config => ({ ...config, registries: [] });

  const apply = (m: ToWorker): void => {
    if (!gw || !mirror) {
      early.push(m);
      return;
    }
    const g = gw;
    if (m.t === 'eps') {
      for (const [s, e] of m.list) {
        if (e) mirror.set(s, [...e]);
        else mirror.remove(s);
      }
    } else if (m.t === 'prepare') {
      g.begin(own(m.config)).then(
        (p) => {
          if (aborted.delete(m.id)) return void p.abort();
          prepared.set(m.id, p);
          void reply({ t: 'prepared', id: m.id });
        },
        (e: unknown) => reply({ t: 'prepared', id: m.id, error: (e as Error).message }),
      );
    } else if (m.t === 'commit') {
      const p = prepared.get(m.id);
      prepared.delete(m.id);
      void (p ? p.commit() : g.reload(own(m.config))).then(
        (r) => reply({ t: 'committed', id: m.id, error: r.ok ? undefined : r.error }),
        (e: unknown) => reply({ t: 'committed', id: m.id, error: (e as Error).message }),
      );
    } else if (m.t === 'abort') {
      const p = prepared.get(m.id);
      prepared.delete(m.id);
      if (p) void p.abort();
      else aborted.add(m.id);
    } else if (m.t === 'health') {
      for (const v of m.v) applyHealthVerdict(g.clusters, v, g.metrics);
    } else if (m.t === 'view') {
      void Promise.all([import('./admin/views.js'), import('./resilience/index.js'), import('./admin/json-stream.js')]).then(([views, { describeResilience }, { describeInParts }]) => {
        if (m.path === STATS_TOTALS) {
          void reply({ t: 'view', id: m.id, body: { pid: process.pid, totals: g.metrics.requestTotals() } });
          return;
        }
        if (m.path === '/api/resilience') {
          void reply({ t: 'view', id: m.id, body: { pid: process.pid, ...(describeResilience(g.clusters.all(), g.state.globalFilters, g.state.router.routes) as object) } });
          return;
        }
        if (m.problems) {
          const now = Date.now();
          void reply({ t: 'view', id: m.id, body: { pid: process.pid, problems: views.sortedServiceNames(g).filter((n) => views.serviceHasProblem(g, n, now)) } });
          return;
        }
        // A part at a time, each sent before the next is described: at 100,000 endpoints one
        // message would hold this worker's event loop (and its requests) for hundreds of ms.
        const names = m.names ?? views.sortedServiceNames(g);
        void describeInParts(names, (name) => views.describeService(g, name), (services, last) =>
          reply(last ? { t: 'view', id: m.id, body: { pid: process.pid, services } } : { t: 'view-part', id: m.id, services }),
        );
      });
    } else if (m.t === 'stop') {
      void g.stop(10_000).finally(() => process.exit(0));
    }
  };

  process.on('message', (m: ToWorker) => {
    if (m.t !== 'init') return apply(m);
    const metrics = new Metrics({ role: 'data' });
    // Constructing an AggregatorRegistry makes prom-client answer the primary's metric requests.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
    Gateway.start({ config: own(m.config), log, admin: false, metrics, healthChecks: false })
      .then((g) => {
        gw = g;
        mirror = g.table.sinkFor('primary', 'mirror', log);
        for (const [s, e] of m.endpoints) mirror.set(s, [...e]);
        mirror.synced();
        for (const q of early.splice(0)) apply(q);
        void reply({ t: 'ready' });
      })
      .catch((e: Error) => {
        // The primary says it, once for all workers; the worker only reports and leaves.
        process.send?.({ t: 'failed', error: e.message } satisfies ToPrimary, undefined, undefined, () => process.exit(1));
      });
  });
  void reply({ t: 'hello' });
  process.on('SIGTERM', () => void (gw ? gw.stop(10_000) : Promise.resolve()).finally(() => process.exit(0)));
  process.on('SIGINT', () => undefined); // the primary coordinates shutdown
}
