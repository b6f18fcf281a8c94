// The router's path index (PathIndex) must pick what the precedence rules
// say: within a host group, exact paths, then prefixes longest first, then
// regexes, config order breaking ties, the first route whose path, method,
// headers and query all match. A reference written straight from those rules
// walks every route; random route tables and requests must agree with it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { RouteSchema, type RouteConfig } from '../../../src/config/schema.js';
import { compileRoute, literalStart, Router, type CompiledRoute } from '../../../src/routing/router.js';
import { cluster, exchange } from './fixtures.js';
import { Exchange, type DownstreamRequest, type DownstreamResponse } from '../../../src/exchange/exchange.js';
import { seeded } from '../../helpers/random.js';

const svc = cluster('s', []);

function reference(routes: readonly CompiledRoute[], ex: ReturnType<typeof exchange>): CompiledRoute | undefined {
  const host = ex.host;
  const groupOf = (r: CompiledRoute): number => {
    if (!r.hosts || r.hosts.some((h) => h.kind === 'any')) return 0;
    if (r.hosts.some((h) => h.kind === 'exact' && h.value === host)) return 3;
    const w = r.hosts.filter((h) => h.kind === 'wildcard' && host.length > h.value.length && host.endsWith(h.value)).map((h) => h.value.length);
    return w.length ? 1 + Math.max(...w) / 1000 : -1;
  };
  // The host group: exact host, else the longest wildcard, else routes without hosts.
  const best = Math.max(...routes.map(groupOf), 0);
  const group = routes.filter((r) => groupOf(r) === best && (best === 3 || best === 0 || r.hosts!.some((h) => h.kind === 'wildcard' && 1 + h.value.length / 1000 === best)));
  const rank = (r: CompiledRoute): number[] => {
    const p = r.config.match.path;
    if ('exact' in p) return [0, 0, r.index];
    if ('prefix' in p) return [1, -p.prefix.length, r.index];
    return [2, 0, r.index];
  };
  const sorted = group.slice().sort((a, b) => {
    const x = rank(a);
    const y = rank(b);
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
  for (const r of sorted) {
    if (!r.path.test(ex.matchPath)) continue;
    if (r.methods && !r.methods.has(ex.method)) continue;
    if (r.headers.some(([n, m]) => !m(ex.header(n)))) continue;
    if (r.query.some(([n, m]) => !m(ex.query(n)))) continue;
    return r;
  }
  return undefined;
}

test('the indexed router picks what walking every route in precedence order picks', () => {
  const rnd = seeded(42);
  const segs = ['api', 'users', 'u', 'v1', 'v2', 'orders', 'a', 'ab'];
  const pathOf = (most = 4): string => '/' + Array.from({ length: rnd(most) }, () => segs[rnd(segs.length)]).join('/') + (rnd(5) === 0 ? '/' : '');
  const hosts = ['example.com', 'api.example.com', 'x.api.example.com', 'other.org'];
  let compared = 0;
  let matched = 0;
  let byRegex = 0;
  for (let round = 0; round < 60; round++) {
    const configs: RouteConfig[] = [];
    const n = 1 + rnd(round % 2 ? 40 : 12);
    for (let i = 0; i < n; i++) {
      const k = rnd(10);
      // Literal starts of every kind the index reads: plain, escaped punctuation, a quantified last character, alternations, none.
      const regexes = ['/api/.*', '/.*', '/u/[a-z]+', `/${segs[rnd(segs.length)]}/[a-z0-9/]+`, '\\/ab?/.*', '/ab+', '/v\\d/[a-z]+', '/u|/a/.*', '/(api|users)/.*', '/a{1,2}b?', '[/]u/.*', '/users/v1', '/or\\w*', '.*s'];
      // Prefixes of one or two segments ('/' only now and then, or it would catch everything before the regexes).
      const prefix = rnd(15) === 0 ? '/' : '/' + Array.from({ length: 1 + rnd(2) }, () => segs[rnd(segs.length)]).join('/') + (rnd(5) === 0 ? '/' : '');
      const path = k < 3 ? { exact: pathOf(3) } : k < 6 ? { prefix } : { regex: regexes[rnd(regexes.length)]! };
      const match: Record<string, unknown> = { path };
      if (rnd(12) === 0) match.hosts = [rnd(2) ? hosts[rnd(hosts.length)] : '*.example.com'];
      if (rnd(5) === 0) match.methods = [rnd(2) ? 'GET' : 'POST'];
      if (rnd(6) === 0) match.headers = { 'x-env': { exact: rnd(2) ? 'prod' : 'beta' } };
      if (rnd(8) === 0) match.query = { debug: { present: true } };
      configs.push(RouteSchema.parse({ name: `r${i}`, match, backends: [{ service: 's' }] }));
    }
    const routes = configs.map((c, i) => compileRoute(c, i, () => svc));
    const router = new Router(routes);
    for (let q = 0; q < 200; q++) {
      const headers: Record<string, string> = { host: rnd(3) ? 'unlisted.net' : hosts[rnd(hosts.length)]! };
      if (rnd(2)) headers['x-env'] = rnd(2) ? 'prod' : 'beta';
      const url = pathOf() + (rnd(4) === 0 ? '?debug=1' : '');
      const ex = exchange({ url, method: rnd(3) ? 'GET' : 'POST', headers });
      (ex as { host: string }).host = headers.host!;
      const want = reference(routes, ex);
      const got = router.match(ex);
      compared++;
      if (want) matched++;
      if (want && 'regex' in want.config.match.path) byRegex++;
      assert.equal(got?.name, want?.name, `${ex.method} ${headers.host}${url} among ${JSON.stringify(configs.map((c) => c.match))}`);
    }
  }
  assert.ok(matched > compared / 3, `only ${matched} of ${compared} requests matched a route`);
  assert.ok(byRegex > compared / 20, `only ${byRegex} of ${compared} requests went to a regex route`);
});

test('the literal start of a regex: what every path it matches begins with', () => {
  const cases: Array<[string, string]> = [
    ['/api/v\\d+/users', '/api/v'],
    ['/r12/[0-9]+', '/r12/'],
    ['\\/a\\.b/.*', '/a.b/'],
    ['/ab?c', '/a'],
    ['/ab*', '/a'],
    ['/ab+', '/a'],
    ['/ab{2}', '/a'],
    ['/a|/b', ''],
    ['(/a)', ''],
    ['.*\\.php', ''],
    ['^/x', ''],
    ['/x\\d', '/x'],
    ['/x\\b', '/x'],
    ['/plain', '/plain'],
  ];
  for (const [pattern, start] of cases) assert.equal(literalStart(pattern), start, pattern);
});

test('1,000 regex routes: a request tries only the regexes whose literal start it begins with', () => {
  const routes = Array.from({ length: 1000 }, (_, i) => compileRoute(RouteSchema.parse({ name: `r${i}`, match: { path: { regex: i === 999 ? '.*\\.php' : `/r${i}/[0-9]+` } }, backends: [{ service: 's' }] }), i, () => svc));
  let tested = 0;
  for (const r of routes) {
    const t = r.path.test;
    (r.path as { test: (p: string) => boolean }).test = (p) => {
      tested++;
      return t(p);
    };
  }
  const router = new Router(routes);
  assert.equal(router.match(exchange({ url: '/r500/42' }))?.name, 'r500');
  assert.equal(tested, 2, 'its own regex and the one without a literal start');
  tested = 0;
  assert.equal(router.match(exchange({ url: '/nothing/here' })), undefined);
  assert.equal(tested, 1);
  assert.equal(router.match(exchange({ url: '/r5/index.php' }))?.name, 'r999');
});

test('10,000 prefix routes: a request looks only at the routes its path can match', () => {
  const routes = Array.from({ length: 10_000 }, (_, i) => compileRoute(RouteSchema.parse({ name: `r${i}`, match: { path: { prefix: `/svc${i}` } }, backends: [{ service: 's' }] }), i, () => svc));
  let tested = 0;
  for (const r of routes) {
    const t = r.path.test;
    (r.path as { test: (p: string) => boolean }).test = (p) => {
      tested++;
      return t(p);
    };
  }
  const router = new Router(routes);
  const ex = exchange({ url: '/svc9876/items' });
  assert.equal(router.match(ex)?.name, 'r9876');
  assert.ok(tested <= 2, `${tested} routes tested`);
  tested = 0;
  assert.equal(router.match(exchange({ url: '/nowhere' })), undefined);
  assert.equal(tested, 0);
});

test('the router remembers route groups for host names, not for any Host a client sends', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const wild = compileRoute(RouteSchema.parse({ name: 'wild', match: { hosts: ['*.example.com'], path: { prefix: '/' } }, backends: [{ service: 's' }] }), 0, () => svc);
  const rest = compileRoute(RouteSchema.parse({ name: 'rest', match: { path: { prefix: '/' } }, backends: [{ service: 's' }] }), 1, () => svc);
  const router = new Router([wild, rest]);
  const hostEx = (host: string) => new Exchange({ url: '/', method: 'GET', headers: { host }, rawHeaders: ['host', host] } as unknown as DownstreamRequest, {} as DownstreamResponse, 'r', '127.0.0.1', host, 'http');
  assert.equal(router.match(hostEx('shop.example.com'))?.config.name, 'wild');
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < 2000; i++) {
    // A Host of 16 KiB, different every time (the default head limit lets it through).
    const host = `${i}-${'h'.repeat(16 * 1024)}${i % 2 ? '.example.com' : '.other.org'}`;
    assert.equal(router.match(hostEx(host))?.config.name, i % 2 ? 'wild' : 'rest');
  }
  gc();
  gc();
  const held = process.memoryUsage().heapUsed - before;
  // Remembered, they would be 32 MB.
  assert.ok(held < 4 * 1024 * 1024, `${(held / 1048576).toFixed(1)} MB held`);
});
