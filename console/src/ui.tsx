// Small shared pieces: status pills, an error line, a search box, formatting.
import type { ComponentChildren } from 'preact';
import type { Endpoint } from './api';

export type Tone = 'ok' | 'bad' | 'warn' | 'muted' | 'info';

export function Pill({ tone, children, title }: { tone: Tone; children: ComponentChildren; title?: string }) {
  return (
    <span class={`pill pill-${tone}`} title={title}>
      {children}
    </span>
  );
}

export function ErrorLine({ error }: { error: Error | undefined }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {error.message}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p class="muted">Loading {what}…</p>;
}

export function Search({ value, onInput, placeholder }: { value: string; onInput: (v: string) => void; placeholder: string }) {
  return <input class="search" type="search" value={value} placeholder={placeholder} aria-label={placeholder} onInput={(e) => onInput((e.target as HTMLInputElement).value)} />;
}

export const href = (...parts: string[]): string => `#/${parts.map(encodeURIComponent).join('/')}`;

export function fmtTime(v: number | string | undefined | null): string {
  if (v === undefined || v === null || v === '') return '—';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return String(v);
  return d.toLocaleString(undefined, { hour12: false });
}

export function fmtAgo(v: number | string | undefined | null): string {
  if (v === undefined || v === null || v === '') return '—';
  const t = new Date(v).getTime();
  if (Number.isNaN(t)) return String(v);
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function fmtNum(n: number | undefined, digits = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '—';
  if (Math.abs(n) >= 1000) return n.toFixed(0);
  return n.toFixed(digits).replace(/\.0+$/, '');
}

/** An instance's one-word state, worst first. */
export function instanceState(e: Endpoint): { tone: Tone; label: string } {
  if (e.ejected) return { tone: 'bad', label: 'ejected' };
  if (e.registryHealthy === false) return { tone: 'bad', label: 'down' };
  if (e.checkHealthy === false) return { tone: 'bad', label: 'check failing' };
  if (!e.healthy) return { tone: 'bad', label: 'down' };
  if (e.weight === 0) return { tone: 'muted', label: 'weight 0' };
  return { tone: 'ok', label: 'up' };
}

export const usable = (e: Endpoint): boolean => instanceState(e).tone === 'ok';

export function breakerTone(state: string): Tone {
  if (state === 'open') return 'bad';
  if (state === 'half_open' || state === 'half-open' || state === 'halfOpen') return 'warn';
  return 'ok';
}

/** A compact one-line rendering of a small JSON value. */
export function brief(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return v.map(brief).join(', ');
  return Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .map(([k, x]) => (x !== null && typeof x === 'object' ? `${k}: {${brief(x)}}` : `${k}: ${String(x)}`))
    .join(', ');
}

export function KV({ data }: { data: unknown }) {
  if (data === undefined || data === null) return <span class="muted">—</span>;
  if (typeof data !== 'object') return <span>{String(data)}</span>;
  return <pre class="kv">{JSON.stringify(data, null, 2)}</pre>;
}
