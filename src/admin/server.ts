// Admin API on its own port: health, readiness, metrics, and the gateway's
// view of routes, services and registries; POST /api/reload (200 with the new
// version once the config serves, 400 with the problems when it was refused:
// then /api/config still shows the version that serves).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseHostPort } from '../discovery/types.js';
import { describeResilience } from '../resilience/index.js';
import { adminGuard, type Decision, type Principal } from './auth.js';
import { describeFilters, describeRoutes, describeServices, redactConfig, type AdminTarget } from './views.js';

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
  /** Live per-worker views (instance state, breakers) for /api/services?live=1. */
  workerViews?(path: string): Promise<unknown[]>;
  /** Whether something serves the listeners (default: this process's listeners are bound), with details for /readyz. */
  serving?(): { ok: boolean } & Record<string, unknown>;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startAdmin(gw: AdminTarget, address: string, hooks: AdminHooks = {}): Promise<AdminServer> {
  const scope = (): Record<string, unknown> => hooks.scope?.() ?? { scope: 'process', pid: process.pid };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    // admin.auth / admin.readOnly (auth.ts): read from the config that serves, so a reload changes them.
    const decided = adminGuard(gw.config.admin).check(req, url.pathname);
    const go = (d: Decision): void => {
      if (!d.ok) {
        if (d.status === 401) gw.log?.warn({ client: req.socket.remoteAddress, method: req.method, path: url.pathname }, 'admin API: request without valid credentials');
        for (const [k, v] of Object.entries(d.headers ?? {})) res.setHeader(k, v);
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
    switch (route) {
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
      case 'GET /api/services':
        if (url.searchParams.get('live') && hooks.workerViews) {
          hooks.workerViews('/api/services').then((views) => json(res, 200, { ...scope(), workers: views }), fail);
          return;
        }
        return json(res, 200, describeServices(gw));
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
        gw.log?.info({ admin: who.name ?? '(admin API without auth)', client: req.socket.remoteAddress }, 'admin API: reload requested');
        gw.reload().then((r) => json(res, r.ok ? 200 : 400, r), fail);
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
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
