// Route table: compiled once per config, matched per request without allocation.
//
// Precedence (documented in README), as virtual hosts in nginx and Envoy:
//  1. Host picks one group of routes: the routes listing the exact host if
//     any; else those of the longest matching wildcard ("*.example.com");
//     else the routes without hosts (or with "*"). Other groups are not tried,
//     so a host's routes never leak into a catch-all.
//  2. Within the group: exact path, then prefix (longest first), then regex.
//  3. Then config order.
//
// Each group is indexed (PathIndex) so that matching does not walk every
// route: exact paths in a map; prefixes in a map by prefix, tried for each
// distinct prefix length, longest first (a path has one candidate prefix per
// length); regexes in config order, after those. With 10,000 exact or prefix
// routes a request looks at the routes whose path can match, plus one map
// lookup per distinct prefix length. Regexes are indexed the same way by the
// literal text every path they match starts with (`/api/v\d+/.*` starts with
// `/api/v`): a request tries only the regexes whose literal start it begins
// with, and those with none (`.*\.php`), in config order.
import type { Cluster } from '../balancing/cluster.js';
import type { RouteConfig } from '../config/schema.js';
import type { FilterInstance } from '../filters/types.js';
import type { Exchange } from '../exchange/exchange.js';
import { compileBackends, compileCanary, type BackendSet, type CompiledCanary } from './canary.js';
import { compileGrey, type CompiledGrey } from './grey.js';
import { compilePathMatch, compileStringMatch, hostMatches, parseHostPattern, type HostPattern, type PathMatcher, type StringMatcher } from './match.js';

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  readonly index: number;
  readonly path: PathMatcher;
  readonly hosts: readonly HostPattern[] | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly headers: ReadonlyArray<[string, StringMatcher]>;
  readonly query: ReadonlyArray<[string, StringMatcher]>;
  readonly main: BackendSet;
  readonly canary: CompiledCanary | undefined;
  /** Full-link grey (tag lanes), see grey.ts. */
  readonly grey: CompiledGrey | undefined;
  filters: FilterInstance[];
  /** The global filters this route's requests run: all, less those a route filter stands in for. */
  globalFilters: readonly FilterInstance[] | undefined;
  /** Upstream kind: proxy to backends, or a protocol-specific handler. */
  readonly kind: 'proxy' | 'dubbo' | 'ai' | 'direct';
  /** Opaque per-kind handler state (dubbo/ai compile their own). */
  handler?: unknown;
}

const PATH_RANK = { exact: 0, prefix: 1, regex: 2 } as const;

function pathOrder(a: CompiledRoute, b: CompiledRoute): number {
  const k = PATH_RANK[a.path.kind] - PATH_RANK[b.path.kind];
  if (k) return k;
  if (a.path.kind === 'prefix' && a.path.length !== b.path.length) return b.path.length - a.path.length;
  return a.index - b.index;
}

export function compileRoute(cfg: RouteConfig, index: number, cluster: (s: string) => Cluster): CompiledRoute {
  return {
    name: cfg.name,
    config: cfg,
    index,
    path: compilePathMatch(cfg.match.path),
    hosts: cfg.match.hosts?.map(parseHostPattern),
    methods: cfg.match.methods ? new Set(cfg.match.methods) : undefined,
    headers: Object.entries(cfg.match.headers ?? {}).map(([k, m]) => [k.toLowerCase(), compileStringMatch(m)]),
    query: Object.entries(cfg.match.query ?? {}).map(([k, m]) => [k, compileStringMatch(m)]),
    main: compileBackends(cfg.backends, cluster),
    canary: cfg.canary ? compileCanary(cfg.canary, cluster) : undefined,
    grey: cfg.grey ? compileGrey(cfg.grey, `routes[${index}].grey`) : undefined,
    filters: [],
    globalFilters: undefined,
    kind: cfg.dubbo ? 'dubbo' : cfg.ai ? 'ai' : cfg.directResponse ? 'direct' : 'proxy',
  };
}

function matchesRest(r: CompiledRoute, ex: Exchange): boolean {
  if (!r.path.test(ex.matchPath)) return false;
  if (r.methods !== undefined && !r.methods.has(ex.method)) return false;
  for (let i = 0; i < r.headers.length; i++) {
    const [name, m] = r.headers[i]!;
    if (!m(ex.header(name))) return false;
  }
  for (let i = 0; i < r.query.length; i++) {
    const [name, m] = r.query[i]!;
    if (!m(ex.query(name))) return false;
  }
  return true;
}

/**
 * One host group's routes, in precedence order (see the top of this file),
 * indexed by path: first() gives what walking them in order and taking the
 * first that matches would give.
 */
class PathIndex {
  private readonly exact = new Map<string, CompiledRoute[]>();
  private readonly prefix = new Map<string, CompiledRoute[]>();
  /** Distinct prefix lengths, longest first. */
  private readonly lengths: number[] = [];
  /** Regex routes by the literal start of their pattern, and the distinct lengths of those starts. */
  private readonly regexByStart = new Map<string, CompiledRoute[]>();
  private readonly regexLengths: number[] = [];
  /** Regex routes whose pattern has no literal start: tried for every path. */
  private readonly regexAny: CompiledRoute[] = [];
  private readonly hasRegex: boolean;

  constructor(readonly routes: readonly CompiledRoute[]) {
    const lengths = new Set<number>();
    const regexLengths = new Set<number>();
    for (const r of routes) {
      const p = r.config.match.path;
      if ('exact' in p) push(this.exact, p.exact, r);
      else if ('prefix' in p) {
        push(this.prefix, p.prefix, r);
        lengths.add(p.prefix.length);
      } else {
        const start = literalStart(p.regex);
        if (start === '') this.regexAny.push(r);
        else {
          push(this.regexByStart, start, r);
          regexLengths.add(start.length);
        }
      }
    }
    this.lengths = [...lengths].sort((a, b) => b - a);
    this.regexLengths = [...regexLengths].sort((a, b) => a - b);
    this.hasRegex = this.regexAny.length > 0 || this.regexByStart.size > 0;
  }

  /** The first regex route in config order (routes are kept in precedence order, so by `index`) that matches. */
  private firstRegex(ex: Exchange, path: string): CompiledRoute | undefined {
    let best = firstIn(this.regexAny, ex, undefined);
    const lengths = this.regexLengths;
    for (let k = 0; k < lengths.length; k++) {
      const n = lengths[k]!;
      if (n > path.length) break;
      const list = this.regexByStart.get(n === path.length ? path : path.slice(0, n));
      if (list !== undefined) best = firstIn(list, ex, best);
    }
    return best;
  }

  first(ex: Exchange): CompiledRoute | undefined {
    const path = ex.matchPath;
    const exact = this.exact.get(path);
    if (exact !== undefined) for (let i = 0; i < exact.length; i++) if (matchesRest(exact[i]!, ex)) return exact[i];
    const lengths = this.lengths;
    for (let k = 0; k < lengths.length; k++) {
      const n = lengths[k]!;
      if (n > path.length) continue;
      const list = this.prefix.get(n === path.length ? path : path.slice(0, n));
      if (list === undefined) continue;
      // The segment boundary (`/users` is not a prefix of `/usersx`) is the matcher's own test.
      for (let i = 0; i < list.length; i++) if (matchesRest(list[i]!, ex)) return list[i];
    }
    return this.hasRegex ? this.firstRegex(ex, path) : undefined;
  }
}

/**
 * The literal text every string a (fully anchored) pattern matches starts
 * with: the leading characters up to the first one with a meaning, less the
 * last if a quantifier follows it; '' when the pattern has an alternation
 * anywhere (`/a|/b` starts with neither) or begins with a special character.
 * `\/`, `\.` and other escaped punctuation count as the literal character.
 */
export function literalStart(pattern: string): string {
  if (pattern.includes('|')) return '';
  let out = '';
  for (let i = 0; i < pattern.length; i++) {
    let c = pattern[i]!;
    let width = 1;
    if (c === '\\') {
      const n = pattern[i + 1];
      // Only escaped punctuation is a plain character (\d, \w, \b, \1, \u.... are not).
      if (n === undefined || /[A-Za-z0-9]/.test(n)) break;
      c = n;
      width = 2;
    } else if ('^$.?*+()[]{}'.includes(c)) break;
    const next = pattern[i + width];
    if (next === '?' || next === '*' || next === '+' || next === '{') break; // this character may be absent or repeated
    out += c;
    i += width - 1;
  }
  return out;
}

/** The first route of `list` (in config order) that matches and comes before `best`, else `best`. */
function firstIn(list: readonly CompiledRoute[], ex: Exchange, best: CompiledRoute | undefined): CompiledRoute | undefined {
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    if (best !== undefined && r.index >= best.index) return best;
    if (matchesRest(r, ex)) return r;
  }
  return best;
}

function push(map: Map<string, CompiledRoute[]>, key: string, r: CompiledRoute): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [r]);
  else list.push(r);
}

/** Longest Host the router remembers its route group for (a DNS name is at most 253 chars, a port adds 6). */
const MAX_CACHED_HOST = 260;

export class Router {
  readonly routes: readonly CompiledRoute[];
  private readonly exact = new Map<string, PathIndex>();
  private readonly wildcard: Array<{ suffix: string; routes: PathIndex }> = [];
  private readonly anyHost: PathIndex;
  /** host -> the route group it selects, memoised. */
  private readonly cache = new Map<string, PathIndex>();

  constructor(routes: CompiledRoute[]) {
    this.routes = routes;
    const exact = new Map<string, CompiledRoute[]>();
    const wild = new Map<string, CompiledRoute[]>();
    const any: CompiledRoute[] = [];
    for (const r of routes) {
      if (!r.hosts || r.hosts.some((h) => h.kind === 'any')) {
        any.push(r);
        continue;
      }
      for (const h of r.hosts) {
        const map = h.kind === 'exact' ? exact : wild;
        const list = map.get(h.value) ?? [];
        if (!list.includes(r)) list.push(r);
        map.set(h.value, list);
      }
    }
    for (const [host, list] of exact) this.exact.set(host, new PathIndex(list.sort(pathOrder)));
    for (const [suffix, list] of wild) this.wildcard.push({ suffix, routes: new PathIndex(list.sort(pathOrder)) });
    this.wildcard.sort((a, b) => b.suffix.length - a.suffix.length);
    this.anyHost = new PathIndex(any.sort(pathOrder));
  }

  private candidates(host: string): PathIndex {
    let c = this.cache.get(host);
    if (c) return c;
    c = this.exact.get(host) ?? this.wildcard.find((w) => hostMatches({ kind: 'wildcard', value: w.suffix }, host))?.routes ?? this.anyHost;
    // Only names a DNS name can be are kept: 4,096 Host headers of 16 KiB would be 64 MB.
    if (host.length > MAX_CACHED_HOST) return c;
    if (this.cache.size >= 4096) this.cache.clear();
    this.cache.set(host, c);
    return c;
  }

  match(ex: Exchange): CompiledRoute | undefined {
    return this.candidates(ex.host).first(ex);
  }
}
