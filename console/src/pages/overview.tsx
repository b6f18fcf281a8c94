import { useMemo, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import type { Overview, RouteView, Routes, Service, StatPoint } from '../api';
import { color, TimeChart } from '../charts';
import { loadOverview, loadRoutes, loadServicePage, pollStats } from '../data';
import { usePoll } from '../hooks';
import { ErrorLine, fmtAgo, fmtNum, fmtTime, href, Loading, Pill, Search, usable } from '../ui';
import { backendsOf, backendStatus, RouteMatch, useServicesNamed } from './routes';

function Charts({ points }: { points: StatPoint[] }) {
  const { rps, err, lat, flagSeries, last } = useMemo(() => {
    const xs = points.map((p) => p.t / 1000);
    const flags = [...new Set(points.flatMap((p) => Object.keys(p.byFlag ?? {}).filter((f) => f !== '')))].sort();
    const err: uPlot.AlignedData = [
      xs,
      points.map((p) => p.errorRate * 100),
      ...flags.map((f) => points.map((p) => (p.rps > 0 ? ((p.byFlag?.[f] ?? 0) / p.rps) * 100 : 0))),
    ];
    return {
      rps: [xs, points.map((p) => p.rps)] as uPlot.AlignedData,
      err,
      lat: [xs, points.map((p) => p.p50), points.map((p) => p.p99)] as uPlot.AlignedData,
      flagSeries: [{ label: 'all errors', color: color(1) }, ...flags.map((f, i) => ({ label: f, color: color(i + 2) }))],
      last: points[points.length - 1],
    };
  }, [points]);
  return (
    <>
      <div class="tiles">
        <Tile label="requests/s" value={fmtNum(last?.rps)} />
        <Tile label="error rate" value={last ? `${fmtNum(last.errorRate * 100, 2)}%` : '—'} tone={last && last.errorRate > 0.01 ? 'bad' : undefined} />
        <Tile label="p50 latency" value={last ? `${fmtNum(last.p50)} ms` : '—'} />
        <Tile label="p99 latency" value={last ? `${fmtNum(last.p99)} ms` : '—'} />
      </div>
      <div class="charts">
        <TimeChart title="Requests per second" unit="" series={[{ label: 'req/s', color: color(0) }]} data={rps} />
        <TimeChart title="Error rate by flag" unit="%" series={flagSeries} data={err} />
        <TimeChart title="Latency" unit="ms" series={[{ label: 'p50', color: color(4) }, { label: 'p99', color: color(3) }]} data={lat} />
      </div>
    </>
  );
}

/** Registries up/down: each one when there are few, else the count and the ones not up. */
function RegistryStrip({ registries }: { registries: Overview['registries'] }) {
  const bad = registries.filter((r) => !r.up || !r.synced);
  const shown = registries.length <= 12 ? registries : bad;
  return (
    <div class="registry-strip" data-testid="registry-strip">
      {registries.length > 12 && (
        <a href={href('registries')}>
          <Pill tone={bad.length ? 'warn' : 'ok'}>
            {registries.length} registries: {registries.length - bad.length} up{bad.length ? `, ${bad.length} down or syncing` : ''}
          </Pill>
        </a>
      )}
      {shown.map((r) => (
        <a href={href('registries')} key={r.name}>
          <Pill tone={r.up ? (r.synced ? 'ok' : 'warn') : 'bad'} title={r.lastError ?? (r.services !== undefined ? `${r.services} services` : undefined)}>
            {r.name} ({r.type}) {r.up ? (r.synced ? 'up' : 'syncing') : 'down'}
          </Pill>
        </a>
      ))}
    </div>
  );
}

function Tile({ label, value, tone }: { label: string; value: string; tone?: 'bad' }) {
  return (
    <div class={`tile${tone ? ` tile-${tone}` : ''}`}>
      <div class="tile-value">{value}</div>
      <div class="tile-label">{label}</div>
    </div>
  );
}

export function OverviewPage() {
  const ov = usePoll(loadOverview, 2000);
  const stats = usePoll(pollStats, 1000);
  const routes = usePoll(loadRoutes, 3000);
  const [q, setQ] = useState('');
  const needle = q.trim().toLowerCase();
  // The first rows matching the filter; the status of the services those routes use, asked by name.
  const services = usePoll(() => loadServicePage({ q: needle, limit: OVERVIEW_ROWS }), 2000, [needle]);
  const routesMatched = routes.data ? matchingRoutes(routes.data, needle) : undefined;
  const shownRoutes = routesMatched?.slice(0, OVERVIEW_ROWS);
  const backendNames = [...new Set((shownRoutes ?? []).flatMap((r) => backendsOf(r).map((b) => b.service)))].sort();
  const backends = useServicesNamed(backendNames, 2000);
  const o = ov.data;
  return (
    <section>
      <h1>Overview</h1>
      <ErrorLine error={ov.error} />
      {o && (
        <div class="facts">
          <span>
            config version <b data-testid="config-version">{o.version}</b>
          </span>
          <span>
            last reload{' '}
            {o.lastReload ? (
              <>
                <Pill tone={o.lastReload.ok ? 'ok' : 'bad'} title={o.lastReload.error}>
                  {o.lastReload.ok ? 'applied' : 'refused'}
                </Pill>{' '}
                <span title={fmtTime(o.lastReload.at)}>{fmtAgo(o.lastReload.at)}</span>
              </>
            ) : (
              <span class="muted">none since start</span>
            )}
          </span>
          {o.startedAt > 0 && <span>started {fmtAgo(o.startedAt)}</span>}
          <span>{o.workers > 0 ? `${o.workers} workers` : 'single process'}</span>
          {o.configPath && (
            <span>
              file <code>{o.configPath}</code>
            </span>
          )}
        </div>
      )}
      {o && <RegistryStrip registries={o.registries} />}
      {stats.error ? <p class="muted">Live statistics unavailable: {stats.error.message}</p> : <Charts points={stats.data ?? []} />}
      <div class="toolbar">
        <Search value={q} onInput={setQ} placeholder="Filter services and routes" />
      </div>
      <div class="two-col">
        <div>
          <h2>
            Services <span class="count">{services.data?.total ?? ''}</span>
          </h2>
          <ErrorLine error={services.error} />
          {services.data ? <ServiceSummary services={services.data.services} /> : <Loading what="services" />}
          {services.data && services.data.matched > services.data.services.length && (
            <p class="muted">
              The first {services.data.services.length} of {services.data.matched}: <a href={href('services')}>all services</a>
            </p>
          )}
        </div>
        <div>
          <h2>
            Routes <span class="count">{routes.data?.routes.length ?? ''}</span>
          </h2>
          <ErrorLine error={routes.error} />
          {shownRoutes && backends.data ? <RouteSummary routes={shownRoutes} services={backends.data} /> : <Loading what="routes" />}
          {routesMatched && shownRoutes && routesMatched.length > shownRoutes.length && (
            <p class="muted">
              The first {shownRoutes.length} of {routesMatched.length}: <a href={href('routes')}>all routes</a>
            </p>
          )}
        </div>
      </div>
    </section>
  );
}

/** Rows of each list the overview shows at most. */
const OVERVIEW_ROWS = 100;

function matchingRoutes(routes: Routes, needle: string): RouteView[] {
  return needle ? routes.routes.filter((r) => r.name.toLowerCase().includes(needle) || (r.backends ?? []).some((b) => b.service.toLowerCase().includes(needle))) : routes.routes;
}

function ServiceSummary({ services: list }: { services: Service[] }) {
  return (
    <div class="table-wrap">
      <table class="grid" data-testid="overview-services">
        <thead>
          <tr>
            <th>service</th>
            <th>instances</th>
            <th>health</th>
          </tr>
        </thead>
        <tbody>
          {list.map((s) => {
            const ok = s.endpoints.filter(usable).length;
            const ejected = s.endpoints.filter((e) => e.ejected).length;
            const open = s.breakers?.breakers.filter((b) => b.state === 'open').length ?? 0;
            return (
              <tr key={s.name} class={ok === 0 && s.routed ? 'row-bad' : ''}>
                <td>
                  <a href={href('services', s.name)}>{s.name}</a>
                </td>
                <td class="num">
                  {ok}/{s.endpoints.length}
                </td>
                <td>
                  {s.endpoints.length === 0 ? <Pill tone={s.routed ? 'bad' : 'muted'}>no instances</Pill> : ok === 0 ? <Pill tone="bad">none healthy</Pill> : <Pill tone={ok === s.endpoints.length ? 'ok' : 'warn'}>{ok === s.endpoints.length ? 'healthy' : 'degraded'}</Pill>}
                  {ejected > 0 && <Pill tone="bad">{ejected} ejected</Pill>}
                  {open > 0 && <Pill tone="bad">breaker open</Pill>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function RouteSummary({ routes: list, services }: { routes: RouteView[]; services: Service[] }) {
  return (
    <div class="table-wrap">
      <table class="grid" data-testid="overview-routes">
        <thead>
          <tr>
            <th>route</th>
            <th>match</th>
            <th>backends</th>
          </tr>
        </thead>
        <tbody>
          {list.map((r) => {
            const st = (r.backends ?? []).map((b) => backendStatus(b.service, services));
            const dead = st.some((x) => x.tone === 'bad');
            return (
              <tr key={r.name} class={dead ? 'row-bad' : ''}>
                <td>
                  <a href={href('routes', r.name)}>{r.name}</a>
                </td>
                <td>
                  <RouteMatch match={r.match} />
                </td>
                <td>
                  {(r.backends ?? []).map((b, i) => (
                    <Pill key={i} tone={st[i]!.tone} title={st[i]!.label}>
                      {b.service}
                    </Pill>
                  ))}
                  {r.kind !== 'proxy' && (r.backends ?? []).length === 0 && <span class="muted">{r.kind}</span>}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
