// The compose file's demo service: an HTTP echo server that registers itself,
// under the name "demo", in every registry it is given, through each
// registry's own HTTP API (no client libraries, Node's built-ins only):
//   NACOS_ADDR=nacos:8848         POST /nacos/v1/ns/instance (persistent, no heartbeat needed)
//   CONSUL_ADDR=consul:8500       PUT  /v1/agent/service/register
//   EUREKA_URL=http://eureka:8761/eureka   POST /apps/DEMO, then a heartbeat every 30 s
// ZooKeeper has no HTTP API: the compose file's zk-register job writes the
// Spring Cloud (Curator) node with zkCli.sh. Registration retries until the
// registry answers (they start in any order). ADVERTISE is the address the
// gateway should use (the compose service name); PORT the port to listen on.
import { createServer } from 'node:http';

const PORT = Number(process.env.PORT ?? 9000);
const HOST = process.env.ADVERTISE ?? 'demo';
const ID = `demo-${HOST}-${PORT}`;
const log = (msg) => process.stdout.write(`${new Date().toISOString()} ${msg}\n`);

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({ service: 'demo', instance: `${HOST}:${PORT}`, method: req.method, path: req.url, registry: req.headers['x-registry'] ?? null });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});

async function call(method, url, body, headers = {}) {
  const res = await fetch(url, { method, body, headers, signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 200)}`);
  return text;
}

/** Runs `step` until it succeeds, every 2 s. */
async function retry(name, step) {
  for (;;) {
    try {
      await step();
      log(`registered in ${name}`);
      return;
    } catch (e) {
      log(`${name} not ready: ${e.message}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

function nacos(addr) {
  const q = new URLSearchParams({ serviceName: 'demo', groupName: 'DEFAULT_GROUP', namespaceId: 'public', ip: HOST, port: String(PORT), weight: '1', healthy: 'true', enabled: 'true', ephemeral: 'false' });
  return retry('nacos', () => call('POST', `http://${addr}/nacos/v1/ns/instance?${q}`));
}

function consul(addr) {
  const body = JSON.stringify({ ID, Name: 'demo', Address: HOST, Port: PORT, Meta: { version: 'v1' } });
  return retry('consul', () => call('PUT', `http://${addr}/v1/agent/service/register`, body, { 'content-type': 'application/json' }));
}

function eureka(base) {
  const instance = {
    instance: {
      instanceId: ID,
      hostName: HOST,
      app: 'DEMO',
      ipAddr: HOST,
      vipAddress: 'demo',
      status: 'UP',
      port: { $: PORT, '@enabled': 'true' },
      securePort: { $: 443, '@enabled': 'false' },
      dataCenterInfo: { '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo', name: 'MyOwn' },
    },
  };
  const root = base.replace(/\/$/, '');
  return retry('eureka', () => call('POST', `${root}/apps/DEMO`, JSON.stringify(instance), { 'content-type': 'application/json' })).then(() => {
    // Eureka drops instances that stop renewing their lease (90 s by default).
    setInterval(() => {
      call('PUT', `${root}/apps/DEMO/${encodeURIComponent(ID)}`).catch((e) => {
        log(`eureka heartbeat: ${e.message}; registering again`);
        void eureka(base);
      });
    }, Number(process.env.EUREKA_RENEW_MS ?? 30_000)).unref();
  });
}

server.listen(PORT, process.env.LISTEN ?? '0.0.0.0', () => {
  log(`demo listening on ${PORT}, advertised as ${HOST}:${PORT}`);
  if (process.env.NACOS_ADDR) void nacos(process.env.NACOS_ADDR);
  if (process.env.CONSUL_ADDR) void consul(process.env.CONSUL_ADDR);
  if (process.env.EUREKA_URL) void eureka(process.env.EUREKA_URL);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
