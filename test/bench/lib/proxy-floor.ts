// Reference point for test/bench/proxy.ts, not a usable proxy: node:http in
// front of one undici Pool per upstream instance, alternating, passing
// headers through (no hop-by-hop stripping, no X-Forwarded-*, no
// request id, no timeouts, no cancellation, no metrics or logs). It shows
// what the Node HTTP server and undici cost on their own, the floor any
// proxy built on them starts from.
//
//   node --import tsx test/bench/lib/proxy-floor.ts PORT http://127.0.0.1:A [http://127.0.0.1:B ...]
import http from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const [port, ...upstreams] = process.argv.slice(2);
if (!port || upstreams.length === 0) {
  process.stderr.write('usage: proxy-floor PORT UPSTREAM_URL...\n');
  process.exit(2);
}
const pools = upstreams.map((u) => new Pool(u, { connections: 128, pipelining: 1 }));
let next = 0;
const server = http.createServer((req, res) => {
  const pool = pools[next++ % pools.length]!;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {},
    onResponseStart(_c, status, headers) {
      delete headers.connection;
      delete headers['keep-alive'];
      res.writeHead(status, headers as http.OutgoingHttpHeaders);
    },
    onResponseData(_c, chunk) {
      res.write(chunk);
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError(_c, err) {
      res.destroy(err);
    },
  };
  // undici refuses connection-level request headers; everything else passes as is.
  const raw = req.rawHeaders;
  const headers: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (n !== 'connection' && n !== 'keep-alive') headers.push(raw[i]!, raw[i + 1]!);
  }
  pool.dispatch({ path: req.url ?? '/', method: req.method ?? 'GET', headers, body: null }, handler);
});
server.keepAliveTimeout = 120_000;
server.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
