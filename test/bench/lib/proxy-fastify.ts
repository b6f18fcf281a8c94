// @fastify/http-proxy on one process, for test/bench/proxy.ts:
//
//   node --import tsx test/bench/lib/proxy-fastify.ts PORT http://127.0.0.1:A [http://127.0.0.1:B ...]
//
// With more than one upstream it balances over them with an undici
// BalancedPool, which @fastify/reply-from accepts as its `undici` dispatcher
// (http-proxy's `upstream` takes a single URL). Fastify's logger stays off
// (its default), so this proxy writes no access log.
import fastifyHttpProxy from '@fastify/http-proxy';
import Fastify from 'fastify';
import { BalancedPool } from 'undici';

const [port, ...upstreams] = process.argv.slice(2);
if (!port || upstreams.length === 0) {
  process.stderr.write('usage: proxy-fastify PORT UPSTREAM_URL...\n');
  process.exit(2);
}
const app = Fastify({ logger: false });
await app.register(fastifyHttpProxy, {
  upstream: upstreams[0]!,
  ...(upstreams.length > 1 ? { undici: new BalancedPool(upstreams) } : {}),
});
await app.listen({ host: '127.0.0.1', port: Number(port) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
