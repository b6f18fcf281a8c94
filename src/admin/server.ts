// Admin API on its own port: health, readiness, metrics, and the gateway's
// view of routes, services and registries; POST /api/reload (200 with the new
// version once the config serves, 400 with the problems when it was refused:
// then /api/config still shows the version that serves). The web console is
// served at / (assets.ts), with what only it needs: /api/whoami,
// /api/overview, /api/stats (stats.ts) and the config editor under
// /api/config/ (config-edit.ts).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseHostPort } from '../discovery/types.js';
import { readWholeBody } from '../exchange/body.js';
import { describeResilience } from '../resilience/index.js';
import { serveAsset } from './assets.js';
import { adminGuard, type Decision, type Principal } from './auth.js';
import { ConfigEditor } from './config-edit.js';
import { StatsSampler, type Totals } from './stats.js';
import { writeJson, writeJsonArray } from './json-stream.js';
import {
  describeFilters,
  describeOverview,
  describeRoutes,
  describeService,
  matchServices,
  parseServiceQuery,
  redactConfig,
  serviceHasProblem,
  sortedServiceNames,
  type AdminTarget,
  type ServiceQuery,
} from './views.js';

export interface AdminServer {
  url: string;
  close(): Promise<void>;
}

/** What the admin API needs; in worker mode the primary supplies cluster-wide metrics. */
export interface AdminHooks {
  /** Prometheus text for /metrics (default: this process's registry). */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Extra fields for /api/* answers (e.g. which workers they cover). */
  scope?(): Record<string, unknown>;
  /** Live per-worker views (instance state, breakers) for /api/services?live=1: of the services `names` lists, or (with `problems`) the names of those with a problem. */
  workerViews?(path: string, ask?: { names?: string[]; problems?: boolean }): Promise<unknown[]>;
  /**
   * The request counters for the console's live figures (default: this
   * process's Metrics.requestTotals). A --workers primary sums each worker's
   * own: rendering every worker's metrics (/metrics) for two counters took
   * 0.5 s at 2,000 routes, in the workers that serve requests.
   */
  statsTotals?(): Promise<Totals>;
  /** Whether something serves the listeners (default: this process's listeners are bound), with details for /readyz. */
  serving?(): { ok: boolean } & Record<string, unknown>;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/** Largest request body the admin API reads (a config draft). */
const MAX_BODY = 4 * 1024 * 1024;

/** A JSON body (an object), or a string saying what is wrong with it. */
async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown> | string> {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    req.resume();
    return 'the body must be JSON (content-type: application/json)';
  }
  const body = await readWholeBody(req, MAX_BODY);
  if (body === 'too-large') return `the body is larger than ${MAX_BODY} bytes`;
  if (body === 'aborted') return 'the request body could not be read';
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : 'the body must be a JSON object';
  } catch {
    return 'the body is not valid JSON';
  }
}

/**
 * A write from a browser must come from the console's own page: a request
 * whose Origin is another site is refused (a Basic login the browser keeps
 * would otherwise be sent along with another site's form). Clients that are
 * not browsers send no Origin.
 */
function foreignOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const host = req.headers.host;
  return host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`);
}

export async function startAdmin(gw: AdminTarget, address: string, hooks: AdminHooks = {}): Promise<AdminServer> {
  const scope = (): Record<string, unknown> => hooks.scope?.() ?? { scope: 'process', pid: process.pid };
  const editor = new ConfigEditor(gw);
  const stats = new StatsSampler(hooks.statsTotals ?? (async () => gw.metrics.requestTotals()));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    // The console's page and assets hold no data: served to anyone, so the page can ask for a login.
    if ((req.method === 'GET' || req.method === 'HEAD') && serveAsset(req, res, url.pathname)) return;
    if (req.method === 'POST' && foreignOrigin(req)) {
      gw.log?.warn({ client: req.socket.remoteAddress, origin: req.headers.origin, path: url.pathname }, 'admin API: write from another origin refused');
      return json(res, 403, { error: 'a write from another origin is refused' });
    }
    // admin.auth / admin.readOnly (auth.ts): read from the config that serves, so a reload changes them.
    const decided = adminGuard(gw.config.admin).check(req, url.pathname);
    const go = (d: Decision): void => {
      if (!d.ok) {
        if (d.status === 401) gw.log?.warn({ client: req.socket.remoteAddress, method: req.method, path: url.pathname }, 'admin API: request without valid credentials');
        for (const [k, v] of Object.entries(d.headers ?? {})) res.setHeader(k, v);
        // The console asks for credentials with its own form: no Basic challenge, which would open the browser's dialog.
        if (d.status === 401 && req.headers['x-meshgate-console']) res.setHeader('www-authenticate', 'Bearer realm="meshgate-admin"');
        json(res, d.status, { error: d.error });
        return;
      }
      serve(req, res, url, d.principal);
    };
    if (decided instanceof Promise) decided.then(go, (e: unknown) => json(res, 500, { error: (e as Error).message }));
    else go(decided);
  });
  const serve = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, who: Principal): void => {
    const route = `${req.method} ${url.pathname}`;
    const fail = (e: unknown): void => json(res, 500, { error: (e as Error).message });
    // A streamed answer that fails mid-way has sent its status: a cut connection is the only honest signal left.
    const failStreamed = (e: unknown): void => {
      if (res.headersSent) res.destroy(e as Error);
      else fail(e);
    };
    /**
     * A page of /api/services: the matching names are picked here (worker mode:
     * with each worker's problems for show=problems), and only the page is
     * described, by the workers too. The count of matches before paging and of
     * every service are in x-total-count and x-service-count.
     */
    const servicePage = async (query: ServiceQuery, views: AdminHooks['workerViews']): Promise<void> => {
      let workerProblems: Set<string> | undefined;
      if (query.show === 'problems' && views) {
        workerProblems = new Set();
        for (const v of await views('/api/services', { problems: true })) for (const n of (v as { problems?: string[] }).problems ?? []) workerProblems.add(n);
      }
      const now = Date.now();
      const { matched, total } = matchServices(gw, query, (n) => workerProblems?.has(n) === true || serviceHasProblem(gw, n, now));
      const page = matched.slice(query.offset, query.offset + query.limit);
      const headers = { 'x-total-count': String(matched.length), 'x-service-count': String(total) };
      if (views) {
        const list = await views('/api/services', { names: page });
        await writeJson(res, 200, { ...scope(), workers: list }, 4, undefined, headers).catch(failStreamed);
        return;
      }
      await writeJsonArray(res, 200, page, (name) => describeService(gw, name), undefined, headers).catch(failStreamed);
    };
    const whoName = who.name ?? '(admin API without auth)';
    /** A console write: a JSON body, logged with who asked. */
    const edit = (what: string, run: (body: Record<string, unknown>) => Promise<{ status: number; body: Record<string, unknown> }>): void => {
      void readJson(req).then(async (body) => {
        if (typeof body === 'string') return json(res, 400, { ok: false, error: body });
        gw.log?.info({ admin: whoName, client: req.socket.remoteAddress }, `admin API: config ${what} requested`);
        const r = await run(body);
        gw.log?.[r.status === 200 ? 'info' : 'warn']({ admin: whoName, status: r.status, version: r.body.version, problems: r.body.problems }, `admin API: config ${what} ${r.status === 200 ? 'applied' : 'not applied'}`);
        json(res, r.status, r.body);
      }).catch(fail);
    };
    const draft = (run: (text: string) => unknown): void => {
      void readJson(req).then(async (body) => {
        if (typeof body === 'string') return json(res, 400, { error: body });
        if (typeof body.text !== 'string') return json(res, 400, { error: 'text: the draft (a string) is required' });
        json(res, 200, await run(body.text));
      }).catch(fail);
    };
    switch (route) {
      case 'GET /api/whoami': {
        const g = adminGuard(gw.config.admin);
        return json(res, 200, { name: who.name ?? null, role: g.readOnly ? 'read' : who.role, readOnly: g.readOnly, authEnabled: g.enabled });
      }
      case 'GET /api/overview':
        return json(res, 200, describeOverview(gw, typeof scope().workers === 'number' ? (scope().workers as number) : 0));
      case 'GET /api/stats': {
        const since = Number(url.searchParams.get('since') ?? 0);
        return json(res, 200, { intervalMs: stats.intervalMs, points: stats.since(Number.isFinite(since) ? since : 0) });
      }
      case 'GET /api/config/source':
        return json(res, 200, editor.source(who.role === 'admin'));
      case 'POST /api/config/validate':
        return draft((text) => editor.validate(text));
      case 'POST /api/config/diff':
        return draft((text) => editor.diff(text));
      case 'POST /api/config/apply':
        return edit('apply', (b) => (typeof b.text === 'string' ? editor.apply(b.text, b.baseHash as string | undefined, whoName) : Promise.resolve({ status: 400, body: { ok: false, error: 'text: the draft (a string) is required' } })));
      case 'POST /api/config/rollback':
        return edit('rollback', (b) => editor.rollback(b.baseHash as string | undefined, whoName));
      case 'GET /healthz':
        return json(res, 200, { status: 'ok', uptimeSec: Math.round((Date.now() - gw.startedAt) / 1000) });
      case 'GET /readyz': {
        // Ready: every registry answered once, and the listeners serve (in worker mode: at least one worker does).
        const pending = gw.table.registryStates().filter((r) => !r.synced).map((r) => r.name);
        const serving = hooks.serving?.() ?? { ok: true };
        const ready = pending.length === 0 && serving.ok;
        const { ok: _ok, ...detail } = serving;
        return json(res, ready ? 200 : 503, { ready, waitingFor: pending, ...detail });
      }
      case 'GET /metrics': {
        const get = hooks.metrics ?? (async () => ({ contentType: gw.metrics.registry.contentType, body: await gw.metrics.registry.metrics() }));
        get().then((m) => {
          res.writeHead(200, { 'content-type': m.contentType });
          res.end(m.body);
        }, fail);
        return;
      }
      case 'GET /api/waf':
        return json(res, 200, { ...scope(), filters: describeFilters(gw.state, 'waf') });
      case 'GET /api/routes':
        return json(res, 200, describeRoutes(gw.state));
      case 'GET /api/services': {
        const query = parseServiceQuery(url.searchParams);
        if (typeof query === 'string') return json(res, 400, { error: query });
        if (query !== undefined) {
          servicePage(query, url.searchParams.get('live') ? hooks.workerViews : undefined).catch(fail);
          return;
        }
        if (url.searchParams.get('live') && hooks.workerViews) {
          // Streamed as well: every worker's services (the root, workers, a worker, its services: 4 levels walked).
          hooks.workerViews('/api/services').then((views) => writeJson(res, 200, { ...scope(), workers: views }, 4).catch(failStreamed), fail);
          return;
        }
        // Streamed: at 100,000 endpoints one JSON.stringify would hold the proxy's event loop for a few hundred ms.
        void writeJsonArray(res, 200, sortedServiceNames(gw), (name) => describeService(gw, name)).catch(failStreamed);
        return;
      }
      case 'GET /api/resilience':
        if (url.searchParams.get('live') && hooks.workerViews) {
          hooks.workerViews('/api/resilience').then((views) => json(res, 200, { ...scope(), workers: views }), fail);
          return;
        }
        return json(res, 200, { ...scope(), ...(describeResilience(gw.clusters.all(), gw.state.globalFilters, gw.state.router.routes) as object) });
      case 'GET /api/registries':
        return json(
          res,
          200,
          gw.table.registryStates().map((r) => ({
            ...r,
            lastChangeAt: r.lastChangeAt ? new Date(r.lastChangeAt).toISOString() : undefined,
            details: gw.registryWatchers().find((w) => w.name === r.name)?.watcher.describe?.(),
          })),
        );
      case 'GET /api/config':
        return json(res, 200, { version: gw.state.version, lastReload: gw.lastReload, config: redactConfig(gw.config) });
      case 'POST /api/reload':
        // Changes are logged with who made them (the token's or user's name).
        gw.log?.info({ admin: whoName, client: req.socket.remoteAddress }, 'admin API: reload requested');
        gw.reload(undefined, { by: whoName }).then((r) => json(res, r.ok ? 200 : 400, r), fail);
        return;
      default:
        return json(res, 404, { error: `no admin endpoint ${route}` });
    }
  };
  const { host, port } = parseHostPort(address);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        stats.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
