import { useState } from 'preact/hooks';
import type { Backend, FilterView, RouteView, Service } from '../api';
import { loadRoutes, loadServicePage, loadServicesNamed } from '../data';
import { usePoll } from '../hooks';
import { brief, ErrorLine, href, KV, Loading, Pill, Search, usable, type Tone } from '../ui';

/** Which service a backend resolves to and whether it has instances to send to. */
export function backendStatus(name: string, services: Service[]): { tone: Tone; label: string } {
  const s = services.find((x) => x.name === name);
  if (!s) return { tone: 'bad', label: 'unknown service: no registry gives it' };
  if (s.endpoints.length === 0) return { tone: 'bad', label: 'no instances' };
  const ok = s.endpoints.filter(usable).length;
  if (ok === 0) return { tone: 'bad', label: `0/${s.endpoints.length} healthy` };
  return { tone: ok === s.endpoints.length ? 'ok' : 'warn', label: `${ok}/${s.endpoints.length} healthy` };
}

export function RouteMatch({ match }: { match: Record<string, unknown> }) {
  const path = match.path as Record<string, string> | undefined;
  const parts: string[] = [];
  if (match.hosts) parts.push(`host ${(match.hosts as string[]).join(' | ')}`);
  if (path) parts.push(path.exact ? `= ${path.exact}` : path.prefix !== undefined ? `${path.prefix}*` : path.regex ? `~ ${path.regex}` : brief(path));
  if (match.methods) parts.push((match.methods as string[]).join(','));
  if (match.headers) parts.push(`headers {${brief(match.headers)}}`);
  if (match.query) parts.push(`query {${brief(match.query)}}`);
  return <code class="match">{parts.join('  ') || 'any'}</code>;
}

function Backends({ list, services }: { list: Backend[] | undefined; services: Service[] }) {
  if (!list || list.length === 0) return <span class="muted">—</span>;
  const total = list.reduce((n, b) => n + (b.weight ?? 1), 0);
  return (
    <ul class="backends">
      {list.map((b, i) => {
        const st = backendStatus(b.service, services);
        return (
          <li key={i}>
            <a href={href('services', b.service)}>{b.service}</a>
            {list.length > 1 && <span class="muted"> {Math.round(((b.weight ?? 1) / (total || 1)) * 100)}% (w {b.weight ?? 1})</span>}
            {b.subset && <span class="muted"> subset {brief(b.subset)}</span>} <Pill tone={st.tone}>{st.label}</Pill>
          </li>
        );
      })}
    </ul>
  );
}

function Filters({ list }: { list: FilterView[] }) {
  if (list.length === 0) return <span class="muted">—</span>;
  return (
    <span>
      {list.map((f, i) => (
        <Pill key={i} tone="info" title={f.phase}>
          {f.type}
        </Pill>
      ))}
    </span>
  );
}

function canaryRule(c: RouteView['canary']): string {
  if (!c) return '';
  const { backends: _b, ...rest } = c;
  return brief(rest);
}

/**
 * The services `names` lists, polled; undefined until the answer for these
 * names is in (a stale answer for other names would show their backends as
 * unknown services).
 */
export function useServicesNamed(names: string[], everyMs: number): { data: Service[] | undefined; error: Error | undefined } {
  const key = names.join(',');
  const p = usePoll(() => loadServicesNamed(names).then((list) => ({ key, list })), everyMs, [key]);
  return { data: p.data?.key === key ? p.data.list : undefined, error: p.error };
}

/** Routes the table shows before "show more". */
const PAGE = 200;

/** A route's backends and its canary's. */
export const backendsOf = (r: RouteView): Backend[] => [...(r.backends ?? []), ...(r.canary?.backends ?? [])];

export function RoutesPage({ name }: { name?: string }) {
  const routes = usePoll(loadRoutes, 3000);
  const [q, setQ] = useState('');
  const [problems, setProblems] = useState(false);
  const [limit, setLimit] = useState(PAGE);
  // With the problems filter: every service with a problem, from the gateway (a short list when most are well).
  const troubled = usePoll(() => (problems ? loadServicePage({ show: 'problems', limit: 10_000 }).then((p) => p.services) : Promise.resolve([])), 2000, [problems]);
  const needle = q.trim().toLowerCase();
  const all = routes.data?.routes ?? [];
  const troubledByName = new Map((troubled.data ?? []).map((s) => [s.name, s]));
  const bad = (r: RouteView): boolean =>
    backendsOf(r).some((b) => {
      const s = troubledByName.get(b.service);
      return s !== undefined && backendStatus(b.service, [s]).tone === 'bad';
    });
  const rows = all.filter((r) => {
    if (needle && !(r.name.toLowerCase().includes(needle) || JSON.stringify(r.match).toLowerCase().includes(needle) || (r.backends ?? []).some((b) => b.service.toLowerCase().includes(needle)))) return false;
    if (problems && !bad(r)) return false;
    return true;
  });
  const detail = name !== undefined ? all.find((r) => r.name === name) : undefined;
  const shown = name !== undefined ? (detail ? [detail] : []) : rows.slice(0, limit);
  // The status of the services the rows shown use, asked by name.
  const names = [...new Set(shown.flatMap((r) => backendsOf(r).map((b) => b.service)))].sort();
  const services = useServicesNamed(names, 2000);
  if (!routes.data || !services.data)
    return (
      <section>
        <h1>Routes</h1>
        <ErrorLine error={routes.error ?? services.error} />
        <Loading what="routes" />
      </section>
    );
  const svc = services.data;
  if (name !== undefined) return <RouteDetail route={detail} name={name} services={svc} />;
  return (
    <section>
      <h1>
        Routes <span class="count">{routes.data.routes.length}</span> <span class="muted small">config version {routes.data.version}</span>
      </h1>
      <ErrorLine error={routes.error} />
      <div class="toolbar">
        <Search value={q} onInput={setQ} placeholder="Search routes, paths, services" />
        <label>
          <input type="checkbox" checked={problems} onChange={(e) => setProblems((e.target as HTMLInputElement).checked)} /> only routes with a backend without healthy instances
        </label>
        <span class="muted">{rows.length} shown</span>
        <ErrorLine error={troubled.error} />
      </div>
      <div class="table-wrap tall">
        <table class="grid" data-testid="routes-table">
          <thead>
            <tr>
              <th>route</th>
              <th>kind</th>
              <th>match</th>
              <th>backends</th>
              <th>canary</th>
              <th>grey</th>
              <th>filters</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((r) => {
              const dead = (r.backends ?? []).some((b) => backendStatus(b.service, svc).tone === 'bad');
              return (
                <tr key={r.name} class={dead ? 'row-bad' : ''} data-route={r.name}>
                  <td>
                    <a href={href('routes', r.name)}>{r.name}</a>
                  </td>
                  <td>{r.kind}</td>
                  <td>
                    <RouteMatch match={r.match} />
                  </td>
                  <td>
                    <Backends list={r.backends} services={svc} />
                  </td>
                  <td>
                    {r.canary ? (
                      <>
                        <div class="muted small">{canaryRule(r.canary)}</div>
                        <Backends list={r.canary.backends} services={svc} />
                      </>
                    ) : (
                      <span class="muted">—</span>
                    )}
                  </td>
                  <td>{r.grey ? <span class="small">{brief(r.grey)}</span> : <span class="muted">—</span>}</td>
                  <td>
                    <Filters list={r.filters} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {rows.length > shown.length && (
        <button class="btn" onClick={() => setLimit(limit + PAGE)}>
          Show {Math.min(PAGE, rows.length - shown.length)} more of {rows.length - shown.length}
        </button>
      )}
      <h2>Global filters</h2>
      <Filters list={routes.data.globalFilters} />
    </section>
  );
}

function RouteDetail({ route, name, services }: { route: RouteView | undefined; name: string; services: Service[] }) {
  return (
    <section>
      <p>
        <a href={href('routes')}>← all routes</a>
      </p>
      <h1>Route {name}</h1>
      {!route ? (
        <p class="error">No route named {name} in the running config.</p>
      ) : (
        <dl class="detail">
          <dt>kind</dt>
          <dd>{route.kind}</dd>
          <dt>match</dt>
          <dd>
            <RouteMatch match={route.match} />
          </dd>
          <dt>backends</dt>
          <dd>
            <Backends list={route.backends} services={services} />
          </dd>
          <dt>canary</dt>
          <dd>
            {route.canary ? (
              <>
                <KV data={{ ...route.canary, backends: undefined }} />
                <Backends list={route.canary.backends} services={services} />
              </>
            ) : (
              '—'
            )}
          </dd>
          <dt>grey</dt>
          <dd>
            <KV data={route.grey} />
          </dd>
          <dt>filters</dt>
          <dd>
            {route.filters.length === 0
              ? '—'
              : route.filters.map((f, i) => (
                  <div key={i} class="filter-block">
                    <b>{f.type}</b> <span class="muted">phase {f.phase}</span>
                    {f.state !== undefined && <KV data={f.state} />}
                  </div>
                ))}
          </dd>
        </dl>
      )}
    </section>
  );
}
