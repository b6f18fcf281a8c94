// --workers N: one primary (control plane: config, registries, admin) and N
// worker processes (data plane) sharing the listener ports. The primary sends
// each worker the validated config and every endpoint change over IPC.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { startAdmin, type AdminServer } from '../admin/server.js';
import type { Config } from '../config/schema.js';
import type { Endpoint, RegistrySink } from '../discovery/types.js';
import { Gateway } from '../gateway.js';
import { applyHealthVerdict, type HealthVerdict } from '../balancing/health-check.js';
import { createLogger } from '../observability/logger.js';
import { Metrics } from '../observability/metrics.js';

type ToWorker =
  | { t: 'init'; config: Config; endpoints: Array<[string, readonly Endpoint[]]> }
  | { t: 'config'; config: Config }
  | { t: 'ep'; s: string; e: readonly Endpoint[] | null }
  | { t: 'view'; id: number; path: string }
  | { t: 'health'; v: HealthVerdict[] }
  | { t: 'stop' };

type ToPrimary = { t: 'hello' } | { t: 'ready' } | { t: 'view'; id: number; body: unknown } | { t: 'reload-failed'; error: string };

export interface PrimaryHandle {
  gateway: Gateway;
  admin: AdminServer;
  workers(): number;
  stop(): Promise<void>;
}

/** Run the primary: returns once every worker is listening. */
export async function runPrimary(opts: { config: Config; configPath?: string; workers: number; log?: Logger }): Promise<PrimaryHandle> {
  const log = opts.log ?? createLogger(opts.config.log.level);
  const metrics = new Metrics({ role: 'control', processMetrics: false });
  const gw = await Gateway.start({ config: opts.config, configPath: opts.configPath, log, dataPlane: false, admin: false, accessLog: false, metrics });
  const aggregator = new AggregatorRegistry();
  const live = new Map<number, Worker>();
  let stopping = false;
  let nextViewId = 1;
  const pendingViews = new Map<number, { results: unknown[]; left: number; resolve: (v: unknown[]) => void }>();

  const send = (w: Worker, m: ToWorker): void => {
    if (w.isConnected()) w.send(m);
  };
  const broadcast = (m: ToWorker): void => {
    for (const w of live.values()) send(w, m);
  };

  gw.table.on('endpoints', (s: string, e: readonly Endpoint[] | undefined) => broadcast({ t: 'ep', s, e: e ?? null }));
  gw.onApplied = (config) => broadcast({ t: 'config', config });
  // The primary runs active health checks once for all workers and sends them the verdicts.
  gw.onHealthVerdict = (v) => broadcast({ t: 'health', v: [v] });

  cluster.schedulingPolicy = cluster.SCHED_NONE; // the kernel spreads connections, as nginx's workers
  const fork = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork({ MESHGATE_ROLE: 'worker' });
      live.set(w.id, w);
      w.on('message', (m: ToPrimary) => {
        // The worker says hello once it listens for messages (earlier ones would be lost).
        if (m.t === 'hello') {
          send(w, { t: 'init', config: gw.config, endpoints: gw.table.services().map((s) => [s.name, s.endpoints]) });
          const known = gw.health?.snapshot() ?? [];
          if (known.length) send(w, { t: 'health', v: known });
        }
        else if (m.t === 'ready') resolve();
        else if (m.t === 'view') {
          const p = pendingViews.get(m.id);
          if (p) {
            p.results.push(m.body);
            if (--p.left === 0) {
              pendingViews.delete(m.id);
              p.resolve(p.results);
            }
          }
        } else if (m.t === 'reload-failed') log.error({ worker: w.process.pid, error: m.error }, 'worker refused a config the primary accepted');
      });
      w.once('exit', (code, signal) => {
        live.delete(w.id);
        if (stopping) return;
        log.error({ pid: w.process.pid, code, signal }, 'worker exited; starting a new one');
        setTimeout(() => void fork().catch((e) => log.error({ err: e }, 'worker restart failed')), 500).unref();
        reject(new Error(`worker exited during start (code ${code})`));
      });
    });

  await Promise.all(Array.from({ length: opts.workers }, () => fork()));

  const admin = await startAdmin(gw, opts.config.admin.address, {
    scope: () => ({ scope: 'cluster', workers: live.size, note: 'control-plane view; add ?live=1 for each worker\'s live instance state' }),
    metrics: async () => {
      const workersText = await aggregator.clusterMetrics();
      const own = await metrics.registry.metrics();
      return { contentType: aggregator.contentType, body: `# meshgate: request metrics summed over ${live.size} worker(s); registry metrics from the primary\n${own}\n${workersText}` };
    },
    workerViews: (path) =>
      new Promise((resolve) => {
        const id = nextViewId++;
        const timer = setTimeout(() => {
          const p = pendingViews.get(id);
          pendingViews.delete(id);
          resolve(p?.results ?? []);
        }, 2000);
        timer.unref();
        pendingViews.set(id, {
          results: [],
          left: live.size,
          resolve: (v) => {
            clearTimeout(timer);
            resolve(v);
          },
        });
        broadcast({ t: 'view', id, path });
      }),
  });
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

  const apply = (m: ToWorker): void => {
    if (!gw || !mirror) {
      early.push(m);
      return;
    }
    if (m.t === 'ep') {
      if (m.e) mirror.set(m.s, [...m.e]);
      else mirror.remove(m.s);
    } else if (m.t === 'config') {
      void gw.reload({ ...m.config, registries: [] }).then((r) => {
        if (!r.ok) process.send?.({ t: 'reload-failed', error: r.error ?? '' } satisfies ToPrimary);
      });
    } else if (m.t === 'health') {
      for (const v of m.v) applyHealthVerdict(gw.clusters, v, gw.metrics);
    } else if (m.t === 'view') {
      const g = gw;
      void Promise.all([import('../admin/views.js'), import('../resilience/index.js')]).then(([{ describeServices }, { describeResilience }]) => {
        const body =
          m.path === '/api/resilience'
            ? { pid: process.pid, ...(describeResilience(g.clusters.all(), g.state.globalFilters, g.state.router.routes) as object) }
            : { pid: process.pid, services: describeServices(g) };
        process.send?.({ t: 'view', id: m.id, body } satisfies ToPrimary);
      });
    } else if (m.t === 'stop') {
      void gw.stop(10_000).finally(() => process.exit(0));
    }
  };

  process.on('message', (m: ToWorker) => {
    if (m.t !== 'init') return apply(m);
    const metrics = new Metrics({ role: 'data' });
    // Constructing an AggregatorRegistry makes prom-client answer the primary's metric requests.
    new AggregatorRegistry();
    AggregatorRegistry.setRegistries([metrics.registry]);
    // Workers do not watch registries: the primary does and mirrors endpoints here.
    Gateway.start({ config: { ...m.config, registries: [] }, log, admin: false, metrics, healthChecks: false })
      .then((g) => {
        gw = g;
        mirror = g.table.sinkFor('primary', 'mirror', log);
        for (const [s, e] of m.endpoints) mirror.set(s, [...e]);
        mirror.synced();
        for (const q of early.splice(0)) apply(q);
        process.send?.({ t: 'ready' } satisfies ToPrimary);
      })
      .catch((e) => {
        log.fatal({ err: e }, 'worker failed to start');
        process.exit(1);
      });
  });
  process.send?.({ t: 'hello' } satisfies ToPrimary);
  process.on('SIGTERM', () => void (gw ? gw.stop(10_000) : Promise.resolve()).finally(() => process.exit(0)));
  process.on('SIGINT', () => undefined); // the primary coordinates shutdown
}
