// A reload from 10 routes to 10,000 (and back) under load: how long the reload
// takes, whether any request fails meanwhile, and the heap the routes take.
// In process: `node --expose-gc --import tsx test/bench/routes-reload.ts [--routes 10000] [--concurrency 16]`.
import pino from 'pino';
import { Agent, request } from 'undici';
import { Gateway } from '../../src/gateway.js';
import { startUpstream } from '../helpers/upstream.js';
import { opt } from './lib/args.js';
import { report } from './lib/report.js';

const ROUTES = opt('routes', 10_000);
const CONCURRENCY = opt('concurrency', 16);

function config(n: number, upstream: string): Record<string, unknown> {
  const routes = [];
  for (let i = 0; i < n; i++) {
    const k = i % 10;
    const path = k < 4 ? { exact: `/svc${i}/items` } : k < 9 ? { prefix: `/svc${i}` } : { regex: `/r${i}/[0-9]+` };
    routes.push({ name: `r${i}`, match: { path }, backends: [{ service: 'up.static' }] });
  }
  // The route under load stays the same in both configs.
  routes.push({ name: 'live', match: { path: { prefix: '/live' } }, backends: [{ service: 'up.static' }] });
  return {
    listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
    admin: { address: '127.0.0.1:0' },
    log: { level: 'silent', access: false },
    registries: [{ name: 'up', type: 'static', endpoints: [upstream] }],
    routes,
  };
}

const heapMb = (): number => {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 1048576;
};

const up = await startUpstream('u');
const gw = await Gateway.start({ config: config(10, up.address) as never, log: pino({ level: 'silent' }), accessLog: false });
const agent = new Agent({ connections: CONCURRENCY });
const url = `${gw.listenerUrl()}/live/x`;
let ok = 0;
let failed = 0;
let running = true;
const workers = Array.from({ length: CONCURRENCY }, async () => {
  while (running) {
    try {
      const r = await request(url, { dispatcher: agent });
      await r.body.dump();
      if (r.statusCode === 200) ok++;
      else failed++;
    } catch {
      failed++;
    }
  }
});
await new Promise((r) => setTimeout(r, 1000));
const h0 = heapMb();
for (const [from, to] of [[10, ROUTES], [ROUTES, 10], [10, ROUTES]] as const) {
  const okBefore = ok;
  const t0 = performance.now();
  const res = await gw.reload(config(to, up.address) as never);
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`reload refused: ${res.error}`);
  await new Promise((r) => setTimeout(r, 500));
  console.log(`reload ${from} -> ${to} routes: ${ms.toFixed(0)} ms; requests answered meanwhile and 0.5 s after: ${ok - okBefore}, failed so far: ${failed}`);
  report({ bench: 'routes-reload', metric: `reload ${from} -> ${to} routes ms`, value: ms, unit: 'ms' });
}
const grown = heapMb() - h0;
console.log(`heap with ${ROUTES} routes: +${grown.toFixed(1)} MB over 10 routes`);
report({ bench: 'routes-reload', metric: `heap MB added by ${ROUTES} routes (over 10)`, value: grown, unit: 'MB' });
running = false;
await Promise.all(workers);
await agent.close();
await gw.stop();
await up.close();
console.log(`requests: ${ok} answered 200, ${failed} failed`);
report({ bench: 'routes-reload', metric: 'requests failed during the reloads (of answered)', value: failed, baseline: ok, unit: 'requests' });
process.exit(failed === 0 ? 0 : 1);
