// Admin API, hot reload (file watch and POST /api/reload), access log.
import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { mkdtempSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { watchConfigFile } from '../../../src/config/watch.js';
import type { Gateway } from '../../../src/gateway.js';
import type { ConfigInput } from '../../../src/config/schema.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { startDns, type TestDns } from '../../helpers/dns-server.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

async function json(url: string, method = 'GET') {
  const r = await request(url, { method });
  return { status: r.statusCode, body: (await r.body.json()) as any };
}

describe('admin API, hot reload and access log', () => {
  let a: TestUpstream, b: TestUpstream, sse: TestUpstream;
  let dns: TestDns;
  let gw: Gateway;
  let file: string;
  const logLines: any[] = [];
  const releaseSse: Array<() => void> = [];

  const baseConfig = (routeTo: string, extra: Record<string, unknown> = {}): ConfigInput => ({
    listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http' }],
    admin: { address: '127.0.0.1:0' },
    registries: [
      { name: 'a', type: 'static', endpoints: [a.address] },
      { name: 'b', type: 'static', endpoints: [b.address] },
      { name: 'sse', type: 'static', endpoints: [sse.address] },
      { name: 'names', type: 'dns', domain: 'svc.test:' + a.port, resolvers: [dns.address], intervalMs: 200 },
    ],
    routes: [
      { name: 'sse', match: { path: { prefix: '/sse' } }, backends: [{ service: 'sse.static' }] },
      { name: 'dns', match: { path: { prefix: '/dns' } }, backends: [{ service: 'names.dns' }] },
      { name: 'main', match: { path: { prefix: '/' } }, backends: [{ service: routeTo }] },
    ],
    ...extra,
  }) as ConfigInput;

  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    sse = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      releaseSse.push(() => res.end('data: 2\n\n'));
    });
    dns = await startDns();
    dns.silent = true; // the DNS registry has not answered yet
    file = join(mkdtempSync(join(tmpdir(), 'meshgate-')), 'meshgate.yaml');
    writeFileSync(file, stringify(baseConfig('a.static')));
    const sink = new Writable({
      write(chunk, _enc, cb) {
        for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line));
        cb();
      },
    });
    gw = await startGateway(stringify(baseConfig('a.static')), { accessLog: sink, configPath: file });
  });

  after(async () => {
    await gw.stop();
    await Promise.all([a.close(), b.close(), sse.close(), dns.close()]);
  });

  it('/healthz is 200; /readyz is 503 until every registry answered once', async () => {
    assert.equal((await json(gw.adminUrl() + '/healthz')).status, 200);
    const notReady = await json(gw.adminUrl() + '/readyz');
    assert.equal(notReady.status, 503);
    assert.deepEqual(notReady.body.waitingFor, ['names']);
    dns.silent = false;
    dns.records.set('svc.test', ['127.0.0.1']);
    await waitFor(async () => (await json(gw.adminUrl() + '/readyz')).status === 200, 15_000);
  });

  it('DNS registry resolves A records into <name>.dns and follows changes', async () => {
    const r = await request(gw.listenerUrl() + '/dns/x');
    assert.equal(((await r.body.json()) as any).instance, 'a');
    const svc = (await json(gw.adminUrl() + '/api/services')).body.find((s: any) => s.name === 'names.dns');
    assert.deepEqual(svc.endpoints.map((e: any) => `${e.host}:${e.port}`), [`127.0.0.1:${a.port}`]);
    dns.records.delete('svc.test'); // NXDOMAIN: a valid "no instances" answer
    await waitFor(async () => (await request(gw.listenerUrl() + '/dns/x')).statusCode === 503, 10_000);
    dns.records.set('svc.test', ['127.0.0.1']);
    await waitFor(async () => (await request(gw.listenerUrl() + '/dns/x')).statusCode === 200, 10_000);
  });

  it('a DNS resolver that stops answering keeps the last known endpoints and shows the registry down', async () => {
    dns.silent = true;
    await waitFor(async () => (await json(gw.adminUrl() + '/api/registries')).body.find((r: any) => r.name === 'names').up === false, 20_000);
    const r = await request(gw.listenerUrl() + '/dns/x');
    assert.equal(r.statusCode, 200);
    await r.body.dump();
    const metrics = await (await request(gw.adminUrl() + '/metrics')).body.text();
    assert.match(metrics, /meshgate_registry_up\{registry="names"\} 0/);
    dns.silent = false;
    await waitFor(async () => (await json(gw.adminUrl() + '/api/registries')).body.find((r: any) => r.name === 'names').up === true, 20_000);
  });

  it('/api/routes, /api/services and /api/registries describe the running state', async () => {
    const routes = (await json(gw.adminUrl() + '/api/routes')).body;
    assert.deepEqual(routes.routes.map((r: any) => r.name), ['sse', 'dns', 'main']);
    const services = (await json(gw.adminUrl() + '/api/services')).body;
    const sa = services.find((s: any) => s.name === 'a.static');
    assert.equal(sa.registry, 'a');
    assert.deepEqual(Object.keys(sa.endpoints[0]).sort().filter((k) => ['host', 'port', 'weight', 'healthy', 'metadata'].includes(k)), ['healthy', 'host', 'metadata', 'port', 'weight']);
    const resilience = (await json(gw.adminUrl() + '/api/resilience')).body;
    assert.deepEqual({ breakers: resilience.breakers, filters: resilience.filters, scope: resilience.scope }, { breakers: [], filters: [], scope: 'process' });
    const regs = (await json(gw.adminUrl() + '/api/registries')).body;
    assert.deepEqual(regs.map((r: any) => r.name).sort(), ['a', 'b', 'names', 'sse']);
  });

  it('/metrics exposes request, upstream, endpoint and registry metrics', async () => {
    const r = await request(gw.listenerUrl() + '/m');
    await r.body.dump();
    const text = await (await request(gw.adminUrl() + '/metrics')).body.text();
    for (const m of [
      /meshgate_requests_total\{route="main",service="a.static",code="200",flag=""\} \d+/,
      /meshgate_request_duration_seconds_bucket/,
      /meshgate_upstream_requests_total\{service="a.static"/,
      /meshgate_endpoints\{service="a.static"\} 1/,
      /meshgate_registry_up\{registry="a"\} 1/,
      /process_cpu_user_seconds_total/,
    ])
      assert.match(text, m);
  });

  it('writes one JSON access log line per request with the documented fields', async () => {
    logLines.length = 0;
    const r = await request(gw.listenerUrl() + '/logged', { headers: { 'x-request-id': 'log-1' } });
    await r.body.dump();
    const line = await waitFor(() => logLines.find((l) => l.requestId === 'log-1'), 5000);
    for (const k of ['time', 'route', 'service', 'upstream', 'status', 'flag', 'durationMs', 'bytesIn', 'bytesOut', 'requestId']) assert.ok(k in line, k);
    assert.equal(line.route, 'main');
    assert.equal(line.upstream, a.address);
    assert.equal(line.status, 200);
  });

  it('a request refused as malformed is counted and logged with flag BR', async () => {
    const metric = async (): Promise<number> => {
      const text = await (await request(gw.adminUrl() + '/metrics')).body.text();
      const m = /^meshgate_requests_total\{route="",service="",code="400",flag="BR"\} (\d+)/m.exec(text);
      return m ? Number(m[1]) : 0;
    };
    const before = await metric();
    logLines.length = 0;
    const u = new URL(gw.listenerUrl());
    const sock = createConnection(Number(u.port), u.hostname);
    sock.write('GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n');
    let text = '';
    for await (const c of sock) text += c;
    assert.match(text, /^HTTP\/1.1 400 /);
    const line = await waitFor(() => logLines.find((l) => l.flag === 'BR'), 5000);
    assert.equal(line.status, 400);
    assert.equal(line.client, '127.0.0.1');
    assert.match(line.error, /content-length and transfer-encoding/);
    assert.equal(await metric(), before + 1);
  });

  it('POST /api/reload applies a changed file; a bad file is refused with the key named and the old config keeps serving', async () => {
    writeFileSync(file, stringify(baseConfig('b.static')));
    const ok = await json(gw.adminUrl() + '/api/reload', 'POST');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.ok, true);
    assert.equal(((await (await request(gw.listenerUrl() + '/x')).body.json()) as any).instance, 'b');

    const bad = baseConfig('a.static') as any;
    bad.routes[2].backends[0].weight = -1;
    writeFileSync(file, stringify(bad));
    const refused = await json(gw.adminUrl() + '/api/reload', 'POST');
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /routes\[2\]\.backends\[0\]\.weight: must be >= 0/);
    assert.equal(((await (await request(gw.listenerUrl() + '/x')).body.json()) as any).instance, 'b', 'old config still serves');
    const cfg = (await json(gw.adminUrl() + '/api/config')).body;
    assert.equal(cfg.lastReload.ok, false);
    const text = await (await request(gw.adminUrl() + '/metrics')).body.text();
    assert.match(text, /meshgate_config_reloads_total\{result="rejected"\} 1/);
  });

  it('a file change is picked up by the watcher (editor-style rename)', async () => {
    const w = watchConfigFile(file, () => void gw.reload(), 50);
    try {
      const tmp = file + '.tmp';
      writeFileSync(tmp, stringify(baseConfig('a.static')));
      renameSync(tmp, file);
      await waitFor(async () => ((await (await request(gw.listenerUrl() + '/x')).body.json()) as any).instance === 'a', 10_000);
    } finally {
      w.close();
    }
  });

  it('reloads do not cut streams in flight, and lose zero requests under load', { timeout: 120_000 }, async () => {
    const stream = await request(gw.listenerUrl() + '/sse');
    const it = stream.body[Symbol.asyncIterator]();
    assert.match(Buffer.from((await it.next()).value as Buffer).toString(), /data: 1/);

    const agent = new Agent({ connections: 16 });
    let stop = false;
    let okCount = 0;
    const failures: string[] = [];
    const worker = async () => {
      while (!stop) {
        try {
          const r = await request(gw.listenerUrl() + '/load', { dispatcher: agent });
          const body = (await r.body.json()) as any;
          if (r.statusCode === 200 && (body.instance === 'a' || body.instance === 'b')) okCount++;
          else failures.push(`${r.statusCode} ${JSON.stringify(body)}`);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    for (let i = 0; i < 20; i++) {
      const r = await gw.reload(baseConfig(i % 2 ? 'a.static' : 'b.static'));
      assert.ok(r.ok, r.error);
      await new Promise((res) => setTimeout(res, 50));
    }
    stop = true;
    await Promise.all(workers);
    await agent.close();
    assert.deepEqual(failures, []);
    assert.ok(okCount > 100, `only ${okCount} requests completed`);

    releaseSse.forEach((f) => f());
    let rest = '';
    for (let n = await it.next(); !n.done; n = await it.next()) rest += Buffer.from(n.value as Buffer).toString();
    assert.match(rest, /data: 2/, 'the stream opened before the reloads finished normally');
  });
});
