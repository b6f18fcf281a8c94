// Precompiled matchers: strings (exact | prefix | regex | contains | present), paths, hosts.
import type { PathMatch, StringMatch } from '../config/schema.js';

export type StringMatcher = (value: string | undefined) => boolean;

export function compileStringMatch(m: StringMatch): StringMatcher {
  if ('exact' in m) {
    const want = m.exact;
    return (v) => v === want;
  }
  if ('prefix' in m) {
    const want = m.prefix;
    return (v) => v !== undefined && v.startsWith(want);
  }
  if ('contains' in m) {
    const want = m.contains;
    return (v) => v !== undefined && v.includes(want);
  }
  if ('regex' in m) {
    // Full match, as Envoy and Higress header/query regex matching do.
    const re = new RegExp(`^(?:${m.regex})$`);
    return (v) => v !== undefined && re.test(v);
  }
  const present = m.present;
  return (v) => (v !== undefined) === present;
}

export type PathKind = 'exact' | 'prefix' | 'regex';

export interface PathMatcher {
  kind: PathKind;
  /** Length of the exact/prefix string (longer prefixes win). */
  length: number;
  test(path: string): boolean;
  /** For prefix routes: the matched prefix (used by rewrite). */
  prefix?: string;
}

/**
 * Prefix matching is segment-aware: prefix /users matches /users, /users/ and
 * /users/42, not /usersx. A prefix that ends with '/' matches anything under it.
 * Regex paths must match the whole path.
 */
export function compilePathMatch(m: PathMatch): PathMatcher {
  if ('exact' in m) {
    const want = m.exact;
    return { kind: 'exact', length: want.length, test: (p) => p === want };
  }
  if ('prefix' in m) {
    const want = m.prefix;
    if (want === '/' || want.endsWith('/')) return { kind: 'prefix', length: want.length, prefix: want, test: (p) => p.startsWith(want) };
    const n = want.length;
    return {
      kind: 'prefix',
      length: n,
      prefix: want,
      test: (p) => p.startsWith(want) && (p.length === n || p.charCodeAt(n) === 47 /* / */),
    };
  }
  const re = new RegExp(`^(?:${m.regex})$`);
  return { kind: 'regex', length: 0, test: (p) => re.test(p) };
}

/** Host patterns: exact ("api.example.com"), wildcard ("*.example.com"), or "*". Ports are ignored. */
export interface HostPattern {
  kind: 'exact' | 'wildcard' | 'any';
  value: string;
}

export function parseHostPattern(h: string): HostPattern {
  const v = h.toLowerCase();
  if (v === '*') return { kind: 'any', value: '' };
  if (v.startsWith('*.')) return { kind: 'wildcard', value: v.slice(1) }; // ".example.com"
  return { kind: 'exact', value: v };
}

export function hostMatches(p: HostPattern, host: string): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'exact':
      return host === p.value;
    case 'wildcard':
      return host.length > p.value.length && host.endsWith(p.value);
  }
}

/** "API.Example.com:8080" -> "api.example.com"; "[::1]:80" -> "[::1]" */
export function normalizeHost(raw: string | undefined): string {
  if (!raw) return '';
  let h = raw;
  if (h.charCodeAt(0) === 91 /* [ */) {
    const end = h.indexOf(']');
    h = end > 0 ? h.slice(0, end + 1) : h;
  } else {
    const c = h.indexOf(':');
    if (c >= 0) h = h.slice(0, c);
  }
  return h.toLowerCase();
}

/**
 * Remove dot segments and duplicate slashes (RFC 3986 5.2.4) so /a/../admin
 * cannot slip past a route. Returns the input when nothing needs changing.
 */
export function normalizePath(path: string): string {
  if (!path.includes('/.') && !path.includes('//') && !path.includes('%2e') && !path.includes('%2E')) return path;
  const segs = path.replace(/%2e/gi, '.').split('/');
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    if (s === '.' || (s === '' && i < segs.length - 1)) continue;
    if (s === '..') {
      out.pop();
      continue;
    }
    out.push(s);
  }
  const last = segs[segs.length - 1];
  if ((last === '.' || last === '..') && out[out.length - 1] !== '') out.push('');
  return '/' + out.join('/');
}
