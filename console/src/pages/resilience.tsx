import { get, type BreakerView } from '../api';
import { usePoll } from '../hooks';
import { breakerTone, brief, ErrorLine, href, KV, Loading, Pill } from '../ui';

interface ScopedFilter {
  scope: string;
  route?: string;
  type: string;
  state?: { rules?: Array<Record<string, unknown>>; [k: string]: unknown };
}

interface Resilience {
  breakers?: Array<{ service: string; breakers: BreakerView[] }>;
  filters?: ScopedFilter[];
  [k: string]: unknown;
}

interface Waf {
  filters: Array<Record<string, unknown>>;
}

async function load(): Promise<{ res: Resilience; waf: Waf | undefined; live: boolean }> {
  const res = await get<Resilience>('/api/resilience');
  let live = false;
  let merged = res;
  // Worker mode: counters live in the workers; show each worker's breakers, open if any is.
  if (typeof res.workers === 'number' && (res.workers as number) > 0) {
    try {
      const l = await get<{ workers: Resilience[] }>('/api/resilience?live=1');
      if (Array.isArray(l.workers) && l.workers.length) {
        live = true;
        merged = { ...res, breakers: l.workers[0]!.breakers ?? [], filters: l.workers.flatMap((w, i) => (w.filters ?? []).map((f) => ({ ...f, scope: `${f.scope} (worker ${i + 1})` }))) };
        for (const w of l.workers.slice(1))
          for (const s of w.breakers ?? [])
            for (const b of s.breakers) {
              const m = merged.breakers?.find((x) => x.service === s.service)?.breakers.find((x) => x.rule === b.rule && x.instance === b.instance);
              if (m && b.state !== 'closed') m.state = b.state;
            }
      }
    } catch {
      // Fall back to the control plane's view.
    }
  }
  const waf = await get<Waf>('/api/waf').catch(() => undefined);
  return { res: merged, waf, live };
}

export function ResiliencePage() {
  const d = usePoll(load, 1000);
  if (!d.data)
    return (
      <section>
        <h1>Resilience</h1>
        <ErrorLine error={d.error} />
        <Loading what="resilience" />
      </section>
    );
  const { res, waf } = d.data;
  const breakers = (res.breakers ?? []).flatMap((s) => s.breakers.map((b) => ({ service: s.service, ...b })));
  const filters = res.filters ?? [];
  return (
    <section>
      <h1>Resilience</h1>
      <ErrorLine error={d.error} />
      <h2>Circuit breakers</h2>
      {breakers.length === 0 ? (
        <p class="muted">No circuit breakers configured.</p>
      ) : (
        <div class="table-wrap">
          <table class="grid" data-testid="resilience-breakers">
            <thead>
              <tr>
                <th>service</th>
                <th>rule</th>
                <th>strategy</th>
                <th>state</th>
                <th>threshold</th>
                <th>window</th>
              </tr>
            </thead>
            <tbody>
              {breakers.map((b, i) => (
                <tr key={i} class={b.state === 'open' ? 'row-bad' : ''} data-breaker={b.service}>
                  <td>
                    <a href={href('services', b.service)}>{b.service}</a>
                    {b.instance ? <span class="muted"> {b.instance}</span> : null}
                  </td>
                  <td class="num">{b.rule}</td>
                  <td>{b.strategy}</td>
                  <td>
                    <Pill tone={breakerTone(b.state)}>{b.state}</Pill>
                  </td>
                  <td class="num">{b.threshold}</td>
                  <td class="small">{brief(b.window)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h2>Flow control, CC and system protection</h2>
      {filters.length === 0 ? (
        <p class="muted">No flow-control, CC or system-protection filters.</p>
      ) : (
        filters.map((f, i) => <FilterCounters key={i} f={f} />)
      )}
      <h2>WAF</h2>
      {!waf || waf.filters.length === 0 ? (
        <p class="muted">No WAF filters.</p>
      ) : (
        waf.filters.map((w, i) => (
          <div class="card" key={i}>
            <h3>
              {String(w.scope)} {w.route ? `route ${String(w.route)}` : ''}
            </h3>
            <KV data={w} />
          </div>
        ))
      )}
    </section>
  );
}

function FilterCounters({ f }: { f: ScopedFilter }) {
  const rules = Array.isArray(f.state?.rules) ? f.state!.rules : undefined;
  const { rules: _r, type: _t, ...rest } = f.state ?? {};
  return (
    <div class="card">
      <h3>
        {f.type} <span class="muted small">{f.scope === 'global' ? 'global' : `route ${f.route ?? ''}`}</span>
      </h3>
      {Object.keys(rest).length > 0 && <p class="small">{brief(rest)}</p>}
      {rules && (
        <table class="grid">
          <thead>
            <tr>
              <th>rule</th>
              <th>what</th>
              <th>passed</th>
              <th>rejected</th>
              <th>state</th>
            </tr>
          </thead>
          <tbody>
            {rules.map((r, i) => {
              const { rule, passed, rejected, state, ...what } = r;
              return (
                <tr key={i}>
                  <td class="num">{String(rule ?? i)}</td>
                  <td class="small">{brief(what)}</td>
                  <td class="num">{String(passed ?? '—')}</td>
                  <td class={`num${Number(rejected) > 0 ? ' bad-text' : ''}`}>{String(rejected ?? '—')}</td>
                  <td class="small">{brief(state)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
