import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterManager } from '../../../src/balancing/clusters.js';
import { HealthChecker, applyHealthVerdict, registerHealthProbe, type HealthVerdict } from '../../../src/balancing/health-check.js';
import { DEFAULT_SERVICE, HealthCheckSchema, type HealthCheckConfig } from '../../../src/config/schema.js';
import type { Endpoint } from '../../../src/discovery/types.js';
import { Metrics } from '../../../src/observability/metrics.js';

class Source extends EventEmitter {
  readonly map = new Map<string, Endpoint[]>();
  endpointsOf(s: string): Endpoint[] | undefined {
    return this.map.get(s);
  }
  set(s: string, eps: Endpoint[]): void {
    this.map.set(s, eps);
    this.emit('endpoints', s, eps);
  }
}

const ep = (port: number, host = '127.0.0.1'): Endpoint => ({ host, port, weight: 1, healthy: true, metadata: {} });

async function until(cond: () => boolean | Promise<boolean>, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

/** An HTTP server whose /health status the test controls; counts probes. */
async function healthServer(): Promise<{ server: Server; port: number; status: { code: number; hang: boolean }; hits: string[] }> {
  const status = { code: 200, hang: false };
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    if (status.hang) return; // never answers: the probe must time out
    res.writeHead(status.code);
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, status, hits };
}

function setup(service: string, endpoints: Endpoint[], hc: Partial<HealthCheckConfig>) {
  const source = new Source();
  source.map.set(service, endpoints);
  const clusters = new ClusterManager(source);
  clusters.setServiceConfigs({ [service]: { ...DEFAULT_SERVICE, healthCheck: HealthCheckSchema.parse({ intervalMs: 20, timeoutMs: 200, unhealthyThreshold: 2, healthyThreshold: 2, ...hc }) } });
  const c = clusters.get(service);
  const verdicts: HealthVerdict[] = [];
  const metrics = new Metrics({ processMetrics: false });
  const checker = new HealthChecker(clusters, { metrics, onVerdict: (v) => verdicts.push(v), syncIntervalMs: 20 });
  return { source, clusters, c, verdicts, metrics, checker };
}

const servers: Array<Server | TcpServer> = [];
after(() => {
  for (const s of servers) s.close();
});

describe('active health checks', () => {
  it('HTTP: marks an instance unhealthy after the threshold and healthy again after recovery', async () => {
    const h = await healthServer();
    servers.push(h.server);
    const { c, verdicts, metrics, checker } = setup('http-svc', [ep(h.port)], { path: '/ready', expectedStatuses: [200, 204] });
    checker.start();
    try {
      const inst = c.instances[0]!;
      await until(() => h.hits.length >= 2);
      assert.equal(inst.checkHealthy, true);
      assert.equal(h.hits[0], '/ready');
      h.status.code = 500;
      await until(() => !inst.checkHealthy);
      assert.deepEqual(verdicts, [{ service: 'http-svc', instance: inst.id, healthy: false }]);
      assert.equal(inst.available(Date.now()), false, 'balancers skip it');
      assert.equal((await metrics.instanceHealthy.get()).values.find((v) => v.labels.endpoint === inst.id)?.value, 0);
      assert.equal(inst.toJSON().checkHealthy, false);
      h.status.code = 204;
      await until(() => inst.checkHealthy);
      assert.deepEqual(verdicts.at(-1), { service: 'http-svc', instance: inst.id, healthy: true });
      assert.equal(verdicts.length, 2);
      assert.equal((await metrics.instanceHealthy.get()).values.find((v) => v.labels.endpoint === inst.id)?.value, 1);
    } finally {
      checker.stop();
    }
  });

  it('HTTP: a probe that times out counts as a failure', async () => {
    const h = await healthServer();
    servers.push(h.server);
    h.status.hang = true;
    const { c, checker } = setup('slow-svc', [ep(h.port)], { timeoutMs: 50 });
    checker.start();
    try {
      await until(() => !c.instances[0]!.checkHealthy);
    } finally {
      checker.stop();
    }
  });

  it('one failure below the threshold does not mark the instance', async () => {
    const h = await healthServer();
    servers.push(h.server);
    const { c, checker, verdicts } = setup('flaky-svc', [ep(h.port)], { unhealthyThreshold: 3 });
    checker.start();
    try {
      await until(() => h.hits.length >= 1);
      h.status.code = 503;
      const n = h.hits.length;
      await until(() => h.hits.length >= n + 2);
      h.status.code = 200;
      const m = h.hits.length;
      await until(() => h.hits.length >= m + 3);
      assert.equal(c.instances[0]!.checkHealthy, true);
      assert.equal(verdicts.length, 0);
    } finally {
      checker.stop();
    }
  });

  it('TCP: a closed port is unhealthy, a listening one healthy', async () => {
    const tcp = createTcpServer((s) => s.destroy());
    servers.push(tcp);
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const open = (tcp.address() as AddressInfo).port;
    // a port that was free a moment ago: nothing listens there
    const probe = createTcpServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closed = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const { c, checker } = setup('tcp-svc', [ep(open), ep(closed)], { type: 'tcp' });
    checker.start();
    try {
      const [up, down] = c.instances;
      await until(() => !down!.checkHealthy);
      assert.equal(up!.checkHealthy, true);
      assert.deepEqual(checker.snapshot(), [{ service: 'tcp-svc', instance: down!.id, healthy: false }]);
    } finally {
      checker.stop();
    }
  });

  it('other probe types plug in (the gRPC hook)', async () => {
    let answer = true;
    registerHealthProbe('grpc', async () => answer);
    const { c, checker } = setup('grpc-svc', [ep(1)], { type: 'grpc' });
    checker.start();
    try {
      await sleep(60);
      assert.equal(c.instances[0]!.checkHealthy, true);
      answer = false;
      await until(() => !c.instances[0]!.checkHealthy);
    } finally {
      checker.stop();
    }
  });

  it('new instances are picked up; removing the policy releases unhealthy instances', async () => {
    const h = await healthServer();
    servers.push(h.server);
    h.status.code = 500;
    const { source, clusters, c, checker, verdicts } = setup('dyn-svc', [ep(h.port)], {});
    checker.start();
    try {
      await until(() => !c.instances[0]!.checkHealthy);
      source.set('dyn-svc', [ep(h.port), ep(h.port, '127.0.0.2')]);
      await until(() => c.instances.length === 2 && !c.instances[1]!.checkHealthy);
      clusters.setServiceConfigs({ 'dyn-svc': DEFAULT_SERVICE });
      await until(() => c.instances.every((i) => i.checkHealthy));
      assert.equal(verdicts.filter((v) => v.healthy).length, 2);
    } finally {
      checker.stop();
    }
  });

  it('a service no route uses any more stops being probed; one that comes back is probed again', async () => {
    const h = await healthServer();
    servers.push(h.server);
    const { clusters, checker } = setup('gone-svc', [ep(h.port)], {});
    checker.start();
    try {
      await until(() => h.hits.length >= 2);
      clusters.retain(new Set());
      await sleep(100); // the sync timer (20 ms) has run since
      const after = h.hits.length;
      await sleep(150);
      assert.ok(h.hits.length <= after + 1, `probes went on after the service was dropped: ${after} -> ${h.hits.length}`);
      clusters.get('gone-svc');
      await until(() => h.hits.length >= after + 3);
    } finally {
      checker.stop();
    }
  });

  it('a verdict from another process applies to the same instance', () => {
    const source = new Source();
    source.map.set('w', [ep(1234)]);
    const clusters = new ClusterManager(source);
    const inst = clusters.get('w').instances[0]!;
    assert.equal(applyHealthVerdict(clusters, { service: 'w', instance: inst.id, healthy: false }), true);
    assert.equal(inst.checkHealthy, false);
    assert.equal(applyHealthVerdict(clusters, { service: 'w', instance: '10.9.9.9:1', healthy: false }), false);
    assert.equal(applyHealthVerdict(clusters, { service: 'nope', instance: inst.id, healthy: false }), false);
  });
});
