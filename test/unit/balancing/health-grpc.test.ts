// The gRPC health checking protocol probe against a real grpc-js server, and
// as the `grpc` health check type of the HealthChecker.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ClusterManager } from '../../../src/balancing/clusters.js';
import { HealthChecker } from '../../../src/balancing/health-check.js';
import { grpcHealthProbe, healthCheckRequestFrame, parseHealthCheckResponse } from '../../../src/balancing/health-grpc.js';
import { Instance } from '../../../src/balancing/instance.js';
import { HealthCheckSchema, ServiceSchema } from '../../../src/config/schema.js';
import type { Endpoint } from '../../../src/discovery/types.js';
import { waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/upstream.js';
import { startHealthServer } from '../../integration/grpc/helpers.js';

const inst = (port: number): Instance => new Instance({ host: '127.0.0.1', port, weight: 1, healthy: true, metadata: {} });

describe('gRPC health probe', () => {
  const statuses = new Map<string, 'SERVING' | 'NOT_SERVING'>([
    ['', 'SERVING'],
    ['orders.v1.Orders', 'SERVING'],
    ['billing.v1.Billing', 'NOT_SERVING'],
  ]);
  let hs: Awaited<ReturnType<typeof startHealthServer>>;
  let silent: net.Server;
  let silentPort: number;
  before(async () => {
    hs = await startHealthServer(statuses);
    // Accepts connections, never answers.
    silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    silentPort = (silent.address() as net.AddressInfo).port;
  });
  after(() => {
    hs?.close();
    silent?.close();
  });

  it('encodes the request and decodes the response', () => {
    assert.deepEqual(healthCheckRequestFrame(''), Buffer.from([0, 0, 0, 0, 0]));
    assert.deepEqual(healthCheckRequestFrame('ab'), Buffer.from([0, 0, 0, 0, 4, 0x0a, 2, 0x61, 0x62]));
    assert.equal(parseHealthCheckResponse(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
    assert.equal(parseHealthCheckResponse(Buffer.from([0, 0, 0, 0, 0])), 0);
    assert.equal(parseHealthCheckResponse(Buffer.from([0, 0, 0])), undefined);
  });

  it('SERVING is healthy; NOT_SERVING, an unknown service, a dead port and a silent server are not', async () => {
    const cfg = (grpcService: string) => HealthCheckSchema.parse({ type: 'grpc', grpcService, timeoutMs: 1_000 });
    assert.equal(await grpcHealthProbe(inst(hs.port), cfg('')), true);
    assert.equal(await grpcHealthProbe(inst(hs.port), cfg('orders.v1.Orders')), true);
    assert.equal(await grpcHealthProbe(inst(hs.port), cfg('billing.v1.Billing')), false);
    assert.equal(await grpcHealthProbe(inst(hs.port), cfg('nope.Nope')), false);
    assert.equal(await grpcHealthProbe(inst(await freePort()), cfg('')), false);
    const t = Date.now();
    assert.equal(await grpcHealthProbe(inst(silentPort), cfg('')), false);
    assert.ok(Date.now() - t < 5_000, 'a silent server fails the probe at its timeout');
  });

  it('is the `grpc` health check type: instances flip unhealthy and back', async () => {
    const source = Object.assign(new EventEmitter(), {
      eps: [] as Endpoint[],
      endpointsOf(): readonly Endpoint[] {
        return this.eps;
      },
    });
    source.eps = [{ host: '127.0.0.1', port: hs.port, weight: 1, healthy: true, metadata: {} }];
    const clusters = new ClusterManager(source);
    clusters.setServiceConfigs({
      'orders.static': ServiceSchema.parse({
        protocol: 'grpc',
        healthCheck: { type: 'grpc', grpcService: 'orders.v1.Orders', intervalMs: 50, timeoutMs: 1_000, unhealthyThreshold: 2, healthyThreshold: 2 },
      }),
    });
    const cluster = clusters.get('orders.static');
    const checker = new HealthChecker(clusters, { syncIntervalMs: 50 });
    checker.start();
    try {
      const i = cluster.instances[0]!;
      const before = hs.checks;
      await waitFor(() => hs.checks >= before + 2);
      assert.equal(i.checkHealthy, true);
      statuses.set('orders.v1.Orders', 'NOT_SERVING');
      await waitFor(() => !i.checkHealthy);
      statuses.set('orders.v1.Orders', 'SERVING');
      await waitFor(() => i.checkHealthy);
    } finally {
      checker.stop();
    }
  });
});
