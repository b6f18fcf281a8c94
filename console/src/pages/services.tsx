import { useState } from 'preact/hooks';
import type { BreakerView, Service } from '../api';
import { loadRegistries, loadServicePage } from '../data';
import { usePoll } from '../hooks';
import { breakerTone, brief, ErrorLine, fmtTime, href, KV, Loading, Pill, Search, instanceState, usable } from '../ui';

const PAGE = 200;

type Show = 'all' | 'problems' | 'routed';

export function ServicesPage({ name }: { name?: string }) {
  return name !== undefined ? <ServiceDetailPage name={name} /> : <ServiceList />;
}

function ServiceDetailPage({ name }: { name: string }) {
  const page = usePoll(() => loadServicePage({ names: [name], limit: 1 }), 1000, [name]);
  if (!page.data)
    return (
      <section>
        <h1>Service {name}</h1>
        <ErrorLine error={page.error} />
        <Loading what="service" />
      </section>
    );
  return <ServiceDetail service={page.data.services.find((s) => s.name === name)} name={name} error={page.error} />;
}

function ServiceList() {
  const [q, setQ] = useState('');
  const [registry, setRegistry] = useState('');
  const [show, setShow] = useState<Show>('all');
  const [limit, setLimit] = useState(PAGE);
  const needle = q.trim().toLowerCase();
  // The gateway filters and pages: a poll carries the rows shown, not every service.
  const page = usePoll(() => loadServicePage({ q: needle, registry, show, limit }), 1000, [needle, registry, show, limit]);
  const regs = usePoll(loadRegistries, 5000);
  const registries = [...(regs.data ?? []).map((r) => r.name), '(none)'];
  if (!page.data)
    return (
      <section>
        <h1>Services</h1>
        <ErrorLine error={page.error} />
        <Loading what="services" />
      </section>
    );
  const { services: rows, matched, total } = page.data;
  return (
    <section>
      <h1>
        Services <span class="count">{total}</span>
      </h1>
      <ErrorLine error={page.error} />
      <div class="toolbar">
        <Search
          value={q}
          onInput={(v) => {
            setQ(v);
            setLimit(PAGE);
          }}
          placeholder="Search services, addresses, metadata"
        />
        <select aria-label="registry" value={registry} onChange={(e) => setRegistry((e.target as HTMLSelectElement).value)}>
          <option value="">all registries</option>
          {registries.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
        <select aria-label="show" value={show} onChange={(e) => setShow((e.target as HTMLSelectElement).value as Show)}>
          <option value="all">all services</option>
          <option value="problems">with problems</option>
          <option value="routed">used by routes</option>
        </select>
        <span class="muted">{matched} shown</span>
      </div>
      <div class="table-wrap tall">
        <table class="grid" data-testid="services-table">
          <thead>
            <tr>
              <th>service</th>
              <th>registry</th>
              <th>instances</th>
              <th>state</th>
              <th>breakers</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((s) => (
              <ServiceRow key={s.name} s={s} />
            ))}
          </tbody>
        </table>
      </div>
      {matched > rows.length && (
        <button class="btn" onClick={() => setLimit(limit + PAGE)}>
          Show {Math.min(PAGE, matched - rows.length)} more of {matched - rows.length}
        </button>
      )}
    </section>
  );
}

function ServiceRow({ s }: { s: Service }) {
  const ok = s.endpoints.filter(usable).length;
  const shown = s.endpoints.slice(0, 8);
  return (
    <tr class={s.routed && ok === 0 ? 'row-bad' : ''} data-service={s.name}>
      <td>
        <a href={href('services', s.name)}>{s.name}</a>
        {!s.routed && <span class="muted small"> not routed</span>}
      </td>
      <td>{s.registry ?? <span class="muted">none</span>}</td>
      <td>
        {s.endpoints.length === 0 ? (
          <Pill tone={s.routed ? 'bad' : 'muted'}>no instances</Pill>
        ) : (
          <>
            <span class="num">
              {ok}/{s.endpoints.length}
            </span>{' '}
            {shown.map((e) => {
              const st = instanceState(e);
              return (
                <Pill key={`${e.host}:${e.port}`} tone={st.tone} title={`${st.label}, weight ${e.weight}, in flight ${e.active ?? 0}`}>
                  {e.host}:{e.port} {st.tone !== 'ok' ? st.label : ''}
                </Pill>
              );
            })}
            {s.endpoints.length > shown.length && <span class="muted"> +{s.endpoints.length - shown.length} more</span>}
          </>
        )}
      </td>
      <td>{s.endpoints.length === 0 ? <Pill tone={s.routed ? 'bad' : 'muted'}>empty</Pill> : ok === 0 ? <Pill tone="bad">none healthy</Pill> : ok < s.endpoints.length ? <Pill tone="warn">degraded</Pill> : <Pill tone="ok">healthy</Pill>}</td>
      <td>
        <BreakerPills list={s.breakers?.breakers} />
      </td>
    </tr>
  );
}

function BreakerPills({ list }: { list: BreakerView[] | undefined }) {
  if (!list || list.length === 0) return <span class="muted">—</span>;
  return (
    <>
      {list.map((b, i) => (
        <Pill key={i} tone={breakerTone(b.state)} title={`${b.strategy} threshold ${b.threshold}`}>
          {b.instance ? `${b.instance} ` : ''}
          {b.strategy} {b.state}
        </Pill>
      ))}
    </>
  );
}

function ServiceDetail({ service: s, name, error }: { service: Service | undefined; name: string; error: Error | undefined }) {
  return (
    <section>
      <p>
        <a href={href('services')}>← all services</a>
      </p>
      <h1>Service {name}</h1>
      <ErrorLine error={error} />
      {!s ? (
        <p class="error">No service named {name} is known to the gateway.</p>
      ) : (
        <>
          <div class="facts">
            <span>registry {s.registry ?? <span class="muted">none</span>}</span>
            <span>version {s.version}</span>
            <span>{s.routed ? 'used by routes' : 'not used by any route'}</span>
          </div>
          <h2>Instances</h2>
          {s.endpoints.length === 0 ? (
            <p class="error">No instances: requests to this service answer 503 UH.</p>
          ) : (
            <div class="table-wrap">
              <table class="grid" data-testid="instances-table">
                <thead>
                  <tr>
                    <th>address</th>
                    <th>state</th>
                    <th>weight</th>
                    <th>registry health</th>
                    <th>active check</th>
                    <th>outlier ejection</th>
                    <th>in flight</th>
                    <th>metadata</th>
                  </tr>
                </thead>
                <tbody>
                  {s.endpoints.map((e) => {
                    const st = instanceState(e);
                    return (
                      <tr key={`${e.host}:${e.port}`} data-instance={`${e.host}:${e.port}`}>
                        <td>
                          <code>
                            {e.host}:{e.port}
                          </code>
                        </td>
                        <td>
                          <Pill tone={st.tone}>{st.label}</Pill>
                        </td>
                        <td class="num">{e.weight}</td>
                        <td>{e.registryHealthy === undefined ? (e.healthy ? 'healthy' : 'unhealthy') : e.registryHealthy ? <Pill tone="ok">healthy</Pill> : <Pill tone="bad">unhealthy</Pill>}</td>
                        <td>{e.checkHealthy === undefined ? <span class="muted">—</span> : e.checkHealthy ? <Pill tone="ok">passing</Pill> : <Pill tone="bad">failing</Pill>}</td>
                        <td>{e.ejected ? <Pill tone="bad" title={e.ejectedUntil ? `until ${fmtTime(e.ejectedUntil)}` : undefined}>ejected{e.ejectedUntil ? ` until ${fmtTime(e.ejectedUntil)}` : ''}</Pill> : <span class="muted">no</span>}</td>
                        <td class="num">{e.active ?? 0}</td>
                        <td class="small">{brief(e.metadata) || <span class="muted">—</span>}</td>
                      </tr>
                    );
                  })}
                </tbody>
              </table>
            </div>
          )}
          <h2>Circuit breakers</h2>
          {!s.breakers || s.breakers.breakers.length === 0 ? (
            <p class="muted">No circuit breakers.</p>
          ) : (
            <table class="grid" data-testid="breakers-table">
              <thead>
                <tr>
                  <th>rule</th>
                  <th>strategy</th>
                  <th>scope</th>
                  <th>state</th>
                  <th>threshold</th>
                  <th>window</th>
                </tr>
              </thead>
              <tbody>
                {s.breakers.breakers.map((b, i) => (
                  <tr key={i}>
                    <td class="num">{b.rule}</td>
                    <td>{b.strategy}</td>
                    <td>{b.instance ?? b.scope ?? 'service'}</td>
                    <td>
                      <Pill tone={breakerTone(b.state)}>{b.state}</Pill>
                    </td>
                    <td class="num">{b.threshold}</td>
                    <td class="small">{brief(b.window)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Outlier detection</h2>
          {s.outlier ? <KV data={s.outlier} /> : <p class="muted">Off for this service.</p>}
        </>
      )}
    </section>
  );
}
