// Precompiled matchers: strings (exact | prefix | regex | contains | present), paths, hosts.
import { ensureLinearRegexEngine } from '../config/linear-regex.js';
import type { PathMatch, StringMatch } from '../config/schema.js';

// Route regexes are matched against client paths, headers and queries.
ensureLinearRegexEngine();

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

