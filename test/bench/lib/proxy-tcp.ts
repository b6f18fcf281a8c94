// Reference point for test/bench/proxy.ts, not an HTTP proxy: a bare TCP
// relay on node:net. Each client connection gets its own upstream connection
// (the instances in turn) and bytes are piped both ways, with no HTTP parsing
// at all. It shows what a Node process costs as one more hop (wake-ups, socket
// reads and writes, the event loop), the part of any Node proxy's latency that
// no HTTP code can remove.
//
//   node --import tsx test/bench/lib/proxy-tcp.ts PORT http://127.0.0.1:A [http://127.0.0.1:B ...]
import { connect, createServer } from 'node:net';

const [port, ...upstreams] = process.argv.slice(2);
if (!port || upstreams.length === 0) {
  process.stderr.write('usage: proxy-tcp PORT UPSTREAM_URL...\n');
  process.exit(2);
}
const targets = upstreams.map((u) => new URL(u));
let next = 0;
createServer({ noDelay: true }, (client) => {
  const t = targets[next++ % targets.length]!;
  const upstream = connect({ host: t.hostname, port: Number(t.port), noDelay: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
}).listen(Number(port), '127.0.0.1');
