import { loadRegistries } from '../data';
import { usePoll } from '../hooks';
import { brief, ErrorLine, fmtAgo, fmtTime, Loading, Pill } from '../ui';

export function RegistriesPage() {
  const regs = usePoll(loadRegistries, 2000);
  return (
    <section>
      <h1>
        Registries <span class="count">{regs.data?.length ?? ''}</span>
      </h1>
      <ErrorLine error={regs.error} />
      {!regs.data ? (
        <Loading what="registries" />
      ) : regs.data.length === 0 ? (
        <p class="muted">No registries configured.</p>
      ) : (
        <div class="table-wrap">
          <table class="grid" data-testid="registries-table">
            <thead>
              <tr>
                <th>registry</th>
                <th>type</th>
                <th>status</th>
                <th>synced</th>
                <th>services</th>
                <th>last change</th>
                <th>error</th>
                <th>details</th>
              </tr>
            </thead>
            <tbody>
              {regs.data.map((r) => (
                <tr key={r.name} class={r.up ? '' : 'row-bad'} data-registry={r.name}>
                  <td>{r.name}</td>
                  <td>{r.type}</td>
                  <td>
                    <Pill tone={r.up ? 'ok' : 'bad'}>{r.up ? 'up' : 'down'}</Pill>
                  </td>
                  <td>{r.synced ? <Pill tone="ok">synced</Pill> : <Pill tone="warn">waiting</Pill>}</td>
                  <td class="num">{r.services}</td>
                  <td title={fmtTime(r.lastChangeAt)}>{fmtAgo(r.lastChangeAt)}</td>
                  <td class="error-cell">{r.error ?? r.lastError ?? ''}</td>
                  <td class="small">{brief(r.details)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
