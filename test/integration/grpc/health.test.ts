// The gRPC health checking protocol as the active health check of a grpc
// service, end to end: calls go only to instances whose Health/Check says SERVING.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { echoClient, startEchoServer, unary, type EchoClientT, type EchoServer, type ServingStatus } from './helpers.js';

describe('gRPC health checks', () => {
  const healthA = new Map<string, ServingStatus>([['test.Echo', 'SERVING']]);
  const healthB = new Map<string, ServingStatus>([['test.Echo', 'NOT_SERVING']]);
  let a: EchoServer;
  let b: EchoServer;
  let gw: Gateway;
  let client: EchoClientT;

  before(async () => {
    a = await startEchoServer('a', healthA);
    b = await startEchoServer('b', healthB);
    gw = await startGateway({
      registries: [{ name: 'echo', type: 'static', endpoints: [a.address, b.address] }],
      services: {
        'echo.static': {
          protocol: 'grpc',
          healthCheck: { type: 'grpc', grpcService: 'test.Echo', intervalMs: 100, timeoutMs: 1_000, unhealthyThreshold: 1, healthyThreshold: 1 },
        },
      },
      routes: [{ name: 'echo', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'echo.static' }] }],
    });
    client = echoClient(gw.listenerUrl('public'));
  });
  after(async () => {
    client?.close();
    await gw?.stop();
    await a?.close();
    await b?.close();
  });

  const servedBy = async (n: number): Promise<Set<string>> => {
    const out = new Set<string>();
    for (let i = 0; i < n; i++) {
      const r = await unary(client, { msg: String(i) });
      assert.equal(r.err, undefined, r.err?.message);
      out.add(r.res.server);
    }
    return out;
  };
  const instanceHealthy = (addr: string): boolean | undefined => gw.clusters.get('echo.static').instance(addr)?.checkHealthy;

  it('routes only to SERVING instances, and follows status changes', async () => {
    await waitFor(() => instanceHealthy(b.address) === false);
    assert.deepEqual([...(await servedBy(6))], ['a']);

    healthA.set('test.Echo', 'NOT_SERVING');
    healthB.set('test.Echo', 'SERVING');
    await waitFor(() => instanceHealthy(a.address) === false && instanceHealthy(b.address) === true);
    assert.deepEqual([...(await servedBy(6))], ['b']);
  });

  it('an instance whose health service is gone (NOT_FOUND) counts as unhealthy', async () => {
    healthA.set('test.Echo', 'SERVING');
    healthB.delete('test.Echo');
    await waitFor(() => instanceHealthy(a.address) === true && instanceHealthy(b.address) === false);
    assert.deepEqual([...(await servedBy(4))], ['a']);
    assert.equal((await unary(client, { msg: 'x' })).status!.code, grpc.status.OK);
  });
});
