// Route matching cost as the table grows: 10, 1,000 and 10,000 routes (exact
// paths, prefixes, a few hosts and regexes, mixed), the time per match of a
// request that hits a route late in config order and of one that matches
// nothing. In process: `npx tsx test/bench/routes.ts [--n 200000]`.
import { RouteSchema } from '../../src/config/schema.js';
import { Cluster } from '../../src/balancing/cluster.js';
import { DEFAULT_SERVICE } from '../../src/config/schema.js';
import { Exchange, type DownstreamRequest, type DownstreamResponse } from '../../src/exchange/exchange.js';
import { compileRoute, Router } from '../../src/routing/router.js';
import { opt } from './lib/args.js';
import { report } from './lib/report.js';

const N = opt('n', 200_000);
const svc = new Cluster('s', DEFAULT_SERVICE);

function table(size: number): Router {
  const configs = [];
  for (let i = 0; i < size; i++) {
    const k = i % 10;
    const path = k < 4 ? { exact: `/svc${i}/items` } : k < 9 ? { prefix: `/svc${i}` } : { regex: `/r${i}/[0-9]+` };
    const match: Record<string, unknown> = { path };
    if (i % 50 === 7) match.hosts = [`h${i}.example.com`];
    configs.push(RouteSchema.parse({ name: `r${i}`, match, backends: [{ service: 's' }] }));
  }
  return new Router(configs.map((c, i) => compileRoute(c, i, () => svc)));
}

function exchange(url: string): Exchange {
  const req = { url, method: 'GET', headers: { host: 'api.example.com' }, rawHeaders: ['host', 'api.example.com'] } as unknown as DownstreamRequest;
  return new Exchange(req, {} as DownstreamResponse, 'id', '127.0.0.1', 'api.example.com', 'http');
}

const at10: Record<string, number> = {};
for (const size of [10, 1_000, 10_000]) {
  const router = table(size);
  const late = size - 5; // a prefix route near the end of the table
  const hit = exchange(`/svc${late}/orders/42`);
  const miss = exchange('/nothing/here');
  if (router.match(hit)?.name !== `r${late}`) throw new Error(`expected r${late}, got ${router.match(hit)?.name}`);
  for (const [what, ex] of [['hit', hit], ['miss', miss]] as const) {
    for (let i = 0; i < 20_000; i++) router.match(ex);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) router.match(ex);
    const ns = Number(process.hrtime.bigint() - t0) / N;
    console.log(`${String(size).padStart(6)} routes, ${what}: ${ns.toFixed(0)} ns per match`);
    if (size === 10) at10[what] = ns;
    else report({ bench: 'routes', metric: `ns per match, ${size} routes, ${what} (vs 10 routes)`, value: ns, baseline: at10[what], unit: 'ns' });
  }
}
