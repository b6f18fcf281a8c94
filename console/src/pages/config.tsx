// Config: the file as on disk, a draft editor validated as you type, the diff
// against the file, apply and roll back. A 409 (the file changed on disk since
// the draft's base) is shown and never overwritten silently.
import { useEffect, useRef, useState } from 'preact/hooks';
import { post, type ConfigSource, type Validation, type Whoami } from '../api';
import { loadSource } from '../data';
import { useDebounced, usePoll } from '../hooks';
import { ErrorLine, fmtTime, Loading, Pill } from '../ui';

type Outcome =
  | { kind: 'applied'; version: number; what: 'apply' | 'rollback' }
  | { kind: 'refused'; problems: string[]; what: 'apply' | 'rollback' }
  | { kind: 'conflict'; error: string; current: { text: string; hash: string }; mine: string }
  | { kind: 'error'; message: string };

interface ApplyAnswer {
  ok?: boolean;
  version?: number;
  hash?: string;
  problems?: string[];
  error?: string;
  current?: { text: string; hash: string };
}

function readOnlyReason(who: Whoami | undefined, src: ConfigSource): string | undefined {
  if (who?.readOnly) return 'The admin API is read-only (admin.readOnly): changes are off.';
  if (who && who.role !== 'admin') return `You are signed in${who.name ? ` as ${who.name}` : ''} with the read role: changes need the admin role.`;
  if (src.path === null) return 'The gateway started without a config file: there is no file to edit.';
  if (src.error) return src.error;
  if (!src.writable) return src.notWritable ? `The config file cannot be changed from here: ${src.notWritable}.` : `The config file ${src.path} is not writable by the gateway (e.g. a mounted ConfigMap): edit it at its source.`;
  return undefined;
}

async function copy(text: string, fallback: HTMLTextAreaElement | null): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (plain http on another host): select the text and use the old command.
    fallback?.select();
    document.execCommand('copy');
  }
}

export function ConfigPage({ who }: { who: Whoami | undefined }) {
  const src = usePoll(loadSource, 5000);
  const [base, setBase] = useState<{ text: string; hash: string | null } | undefined>(undefined);
  const [draft, setDraft] = useState('');
  const [validation, setValidation] = useState<Validation | { error: string } | undefined>(undefined);
  const [validating, setValidating] = useState(false);
  const [diff, setDiff] = useState<{ changed: boolean; diff: string } | undefined>(undefined);
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [confirmRollback, setConfirmRollback] = useState(false);
  const [saved, setSaved] = useState<string | undefined>(undefined);
  const savedBox = useRef<HTMLTextAreaElement>(null);
  const seq = useRef(0);

  // The first answer sets the draft's base; later polls only report that the file moved.
  useEffect(() => {
    if (src.data && base === undefined) {
      setBase({ text: src.data.text, hash: src.data.hash });
      setDraft(src.data.text);
    }
  }, [src.data]);

  const typed = useDebounced(draft, 350);
  useEffect(() => {
    // Only the settled draft is checked (not the empty text before the file loaded, nor a stale one).
    // Nothing to check when the draft cannot change (read role, no file): a masked file would not validate anyway.
    if (base === undefined || typed !== draft || src.data === undefined || readOnlyReason(who, src.data) !== undefined) return;
    const n = ++seq.current;
    setValidating(true);
    Promise.all([post<Validation>('/api/config/validate', { text: typed }), typed === base.text ? Promise.resolve(undefined) : post<{ changed: boolean; diff: string }>('/api/config/diff', { text: typed })]).then(
      ([v, d]) => {
        if (n !== seq.current) return;
        setValidating(false);
        setValidation(v.status === 200 ? v.body : { error: (v.body as unknown as { error?: string })?.error ?? `validation failed: HTTP ${v.status}` });
        setDiff(d && d.status === 200 ? d.body : undefined);
      },
      (e: Error) => {
        if (n !== seq.current) return;
        setValidating(false);
        setValidation({ error: e.message });
      },
    );
  }, [typed, base?.hash]);

  if (!src.data || base === undefined)
    return (
      <section>
        <h1>Config</h1>
        <ErrorLine error={src.error} />
        <Loading what="the config file" />
      </section>
    );

  const s = src.data;
  const reason = readOnlyReason(who, s);
  const dirty = draft !== base.text;
  const pending = draft !== typed || validating;
  const valid = validation !== undefined && 'ok' in validation && validation.ok;
  const movedOnDisk = s.hash !== base.hash;

  const finish = async (what: 'apply' | 'rollback', a: { status: number; body: ApplyAnswer }): Promise<void> => {
    const b = a.body ?? {};
    if (a.status === 200 && b.ok) {
      // The editor shows the file as written before the success message does.
      const fresh = await loadSource().catch(() => undefined);
      if (fresh) {
        setBase({ text: fresh.text, hash: fresh.hash });
        setDraft(fresh.text);
      }
      setSaved(undefined);
      setOutcome({ kind: 'applied', version: b.version ?? 0, what });
      src.refresh();
    } else if (a.status === 409 && b.current) {
      setOutcome({ kind: 'conflict', error: b.error ?? 'the config file changed on disk; nothing was written', current: b.current, mine: draft });
      setSaved(draft);
      src.refresh();
    } else if (a.status === 400) {
      setOutcome({ kind: 'refused', problems: b.problems ?? [b.error ?? 'refused'], what });
      src.refresh();
    } else {
      setOutcome({ kind: 'error', message: b.error ?? `HTTP ${a.status}` });
    }
  };

  const apply = async (): Promise<void> => {
    setBusy(true);
    setOutcome(undefined);
    try {
      await finish('apply', await post<ApplyAnswer>('/api/config/apply', { text: draft, baseHash: base.hash }));
    } catch (e) {
      setOutcome({ kind: 'error', message: (e as Error).message });
    } finally {
      setBusy(false);
    }
  };

  const rollback = async (): Promise<void> => {
    setConfirmRollback(false);
    setBusy(true);
    setOutcome(undefined);
    try {
      await finish('rollback', await post<ApplyAnswer>('/api/config/rollback', { baseHash: base.hash }));
    } catch (e) {
      setOutcome({ kind: 'error', message: (e as Error).message });
    } finally {
      setBusy(false);
    }
  };

  const loadCurrent = (current: { text: string; hash: string | null }): void => {
    // The user's edits are never dropped silently: they stay in the saved-draft box.
    if (draft !== base.text && draft !== current.text) setSaved(draft);
    setBase(current);
    setDraft(current.text);
    setOutcome(undefined);
  };

  const applyBlocked = reason ?? (!dirty ? 'The draft is the same as the file.' : pending ? 'Validating…' : !valid ? 'The draft has problems: fix them first.' : busy ? 'Working…' : undefined);

  return (
    <section class="config-page">
      <h1>Config</h1>
      <ErrorLine error={src.error} />
      <div class="facts">
        <span>
          file <code data-testid="config-path">{s.path ?? '(none: started without a file)'}</code>
        </span>
        <span>
          running version <b data-testid="running-version">{s.runningVersion}</b>
        </span>
        <span>
          file hash <code>{s.hash ? s.hash.slice(0, 12) : '—'}</code>
        </span>
        {s.path === null ? null : s.fileMatchesRunning ? <Pill tone="ok">file is what runs</Pill> : <Pill tone="warn">the file differs from the running config</Pill>}
        {s.masked && <Pill tone="muted">secret values shown as ***</Pill>}
      </div>
      {reason && (
        <p class="notice" data-testid="readonly-reason">
          {reason}
        </p>
      )}
      {movedOnDisk && outcome?.kind !== 'conflict' && (
        <p class="notice warn" data-testid="moved-notice">
          The file changed on disk since this draft was loaded. Applying will be refused until you load its current text (your draft stays visible).{' '}
          <button class="btn" onClick={() => loadCurrent({ text: s.text, hash: s.hash })}>
            Load the file's current text
          </button>
        </p>
      )}

      {outcome?.kind === 'applied' && (
        <p class="notice ok" role="status" data-testid="apply-result">
          {outcome.what === 'apply' ? 'Applied' : 'Rolled back'}: version {outcome.version} serves and the file was written.
        </p>
      )}
      {outcome?.kind === 'refused' && (
        <div class="notice bad" role="alert" data-testid="apply-result">
          <b>{outcome.what === 'apply' ? 'Apply' : 'Roll back'} refused; nothing was written and the running config is unchanged.</b>
          <ul class="problems">
            {outcome.problems.map((p, i) => (
              <li key={i}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      {outcome?.kind === 'error' && (
        <p class="notice bad" role="alert" data-testid="apply-result">
          {outcome.message}
        </p>
      )}
      {outcome?.kind === 'conflict' && (
        <div class="notice bad conflict" role="alert" data-testid="conflict">
          <b>Conflict: {outcome.error.replace(/\.?$/, '.')}</b>
          <p>Your draft is kept below. Load the file's current text to see the other edit, then redo your change on top of it.</p>
          <div class="row">
            <button class="btn primary" onClick={() => loadCurrent(outcome.current)} data-testid="load-current">
              Load the file's current text
            </button>
            <button class="btn" onClick={() => copy(outcome.mine, savedBox.current)}>
              Copy my draft
            </button>
          </div>
        </div>
      )}
      {saved !== undefined && (
        <details class="saved" open>
          <summary>Your earlier draft (not applied): copy what you need from it</summary>
          <textarea ref={savedBox} readOnly class="code small-editor" value={saved} data-testid="saved-draft" />
          <button class="btn" onClick={() => copy(saved, savedBox.current)}>
            Copy
          </button>{' '}
          <button class="btn" onClick={() => setSaved(undefined)}>
            Dismiss
          </button>
        </details>
      )}

      <div class="editor-grid">
        <div>
          <div class="editor-head">
            <b>{reason ? 'Config file (read-only)' : 'Draft'}</b>
            {dirty && <Pill tone="warn">edited</Pill>}
          </div>
          <textarea
            class="code editor"
            spellcheck={false}
            aria-label="config draft"
            data-testid="editor"
            readOnly={reason !== undefined}
            value={draft}
            onInput={(e) => setDraft((e.target as HTMLTextAreaElement).value)}
          />
          <div class="row actions">
            <button class="btn primary" disabled={applyBlocked !== undefined} title={applyBlocked} onClick={apply} data-testid="apply">
              Apply
            </button>
            <button class="btn" disabled={!dirty || busy} onClick={() => setDraft(base.text)}>
              Discard changes
            </button>
            {confirmRollback ? (
              <>
                <span>Roll back to the previous version?</span>
                <button class="btn danger" onClick={rollback} data-testid="rollback-confirm">
                  Yes, roll back
                </button>
                <button class="btn" onClick={() => setConfirmRollback(false)}>
                  Cancel
                </button>
              </>
            ) : (
              <button class="btn" disabled={reason !== undefined || !s.canRollback || busy} title={reason ?? (!s.canRollback ? 'No previous applied version to roll back to.' : undefined)} onClick={() => setConfirmRollback(true)} data-testid="rollback">
                Roll back
              </button>
            )}
            {applyBlocked && reason === undefined && dirty && <span class="muted small">{applyBlocked}</span>}
          </div>
          {reason && <p class="muted small">Apply and roll back are disabled: {reason}</p>}
        </div>
        {reason === undefined && (
          <div>
            <div class="editor-head">
              <b>Validation</b>
              {pending ? <Pill tone="muted">checking…</Pill> : validation && 'ok' in validation ? validation.ok ? <Pill tone="ok">valid</Pill> : <Pill tone="bad">invalid</Pill> : null}
            </div>
            <div class="validation" data-testid="validation" data-checked={pending || !validation ? 'pending' : 'ok' in validation ? (validation.ok ? 'valid' : 'invalid') : 'error'} aria-live="polite">
              {validation && 'error' in validation && <p class="error">{validation.error}</p>}
              {validation && 'ok' in validation && validation.ok && <p class="ok-text">ok ({validation.summary})</p>}
              {validation && 'ok' in validation && !validation.ok && (
                <ul class="problems" data-testid="problems">
                  {validation.problems.map((p, i) => (
                    <li key={i}>{p}</li>
                  ))}
                </ul>
              )}
              {validation && 'warnings' in validation && validation.warnings.length > 0 && (
                <ul class="warnings">
                  {validation.warnings.map((w, i) => (
                    <li key={i}>warning: {w}</li>
                  ))}
                </ul>
              )}
            </div>
            <div class="editor-head">
              <b>Diff against the file</b>
            </div>
            {!dirty ? <p class="muted">No changes.</p> : diff ? <Diff text={diff.diff} /> : <p class="muted">…</p>}
          </div>
        )}
      </div>

      <h2>Applied versions</h2>
      {s.history.length === 0 ? (
        <p class="muted">None applied from the console since start.</p>
      ) : (
        <table class="grid" data-testid="history">
          <thead>
            <tr>
              <th>version</th>
              <th>when</th>
              <th>by</th>
              <th>hash</th>
            </tr>
          </thead>
          <tbody>
            {s.history.map((h, i) => (
              <tr key={i}>
                <td class="num">{h.version}</td>
                <td>{fmtTime(h.at)}</td>
                <td>{h.by ?? <span class="muted">—</span>}</td>
                <td>
                  <code>{h.hash ? h.hash.slice(0, 12) : '—'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Diff({ text }: { text: string }) {
  return (
    <pre class="diff" data-testid="diff">
      {text.split('\n').map((l, i) => (
        <div key={i} class={l.startsWith('+++') || l.startsWith('---') ? 'd-file' : l.startsWith('@@') ? 'd-hunk' : l.startsWith('+') ? 'd-add' : l.startsWith('-') ? 'd-del' : ''}>
          {l || ' '}
        </div>
      ))}
    </pre>
  );
}
