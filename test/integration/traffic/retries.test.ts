// Retries through the gateway: conditions, other instance, per-try and route
// timeouts, budget, and never duplicating a non-idempotent request.
import assert from 'node:assert/strict';
import type http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { REFUSED_PORT, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

async function call(gw: Gateway, path: string, opts: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  const t0 = Date.now();
  const res = await request(gw.listenerUrl('public') + path, { method: (opts.method ?? 'GET') as 'GET', body: opts.body, headers: opts.headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, ms: Date.now() - t0 };
}

/** Upstream that answers each request with `status` after reading the body. */
function answer(status: number, name: string): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      res.writeHead(status, { 'x-instance': name, 'content-type': 'application/json' });
      res.end(JSON.stringify({ instance: name, bodyBytes: bytes }));
    });
  };
}

describe('retries', () => {
  const ups: TestUpstream[] = [];
  let ok: TestUpstream, fail503: TestUpstream, fail500: TestUpstream, reset: TestUpstream, hang: TestUpstream, slowThenOk: TestUpstream;
  let dead: number;
  let gw: Gateway;

  before(async () => {
    ok = await startUpstream(answer(200, 'ok'));
    fail503 = await startUpstream(answer(503, 'f503'));
    fail500 = await startUpstream(answer(500, 'f500'));
    // Reads the request, then drops the connection without answering.
    reset = await startUpstream((req) => {
      req.resume();
      req.on('end', () => req.socket.destroy());
    });
    hang = await startUpstream((req) => req.resume());
    slowThenOk = await startUpstream((_req, res) => setTimeout(() => res.end('slow'), 1500));
    ups.push(ok, fail503, fail500, reset, hang, slowThenOk);
    dead = REFUSED_PORT;
    const svc = (name: string, endpoints: string[]) => ({ name, type: 'static' as const, endpoints });
    gw = await startGateway({
      registries: [
        svc('deadok', [`127.0.0.1:${dead}`, ok.address]),
        svc('f503ok', [fail503.address, ok.address]),
        svc('f503', [fail503.address]),
        svc('f500ok', [fail500.address, ok.address]),
        svc('reset', [reset.address, ok.address]),
        svc('hang', [hang.address]),
        svc('slowok', [slowThenOk.address, ok.address]),
        svc('nobudget', [fail503.address, ok.address]),
        svc('nonidem', [fail503.address, ok.address]),
        svc('deadonly', [`127.0.0.1:${dead}`]),
        svc('deadnobudget', [`127.0.0.1:${dead}`, ok.address]),
      ],
      services: {
        'deadok.static': { retries: { attempts: 2, on: ['connect-failure'] } },
        'f503ok.static': { retries: { attempts: 2, on: [503] } },
        'f503.static': { retries: { attempts: 3, on: ['gateway-error'], backoff: { baseMs: 10, maxMs: 20 } } },
        'f500ok.static': { retries: { attempts: 2, on: [503] } },
        'reset.static': { retries: { attempts: 3, on: ['reset', '5xx', 'gateway-error'] } },
        'hang.static': { timeoutMs: 10_000, retries: { attempts: 10, on: ['timeout', '5xx'], perTryTimeoutMs: 400 } },
        'slowok.static': { retries: { attempts: 2, on: ['timeout'], perTryTimeoutMs: 300 } },
        'nobudget.static': { retries: { attempts: 2, on: [503], budgetPercent: 0, minRetriesConcurrency: 0 } },
        'nonidem.static': { retries: { attempts: 2, on: [503], retryNonIdempotent: true } },
        'deadonly.static': { retries: { attempts: 2, on: ['connect-failure'], backoff: { baseMs: 5, maxMs: 10 } } },
        'deadnobudget.static': { loadBalancer: { type: 'round_robin' }, retries: { attempts: 1, on: ['connect-failure'], budgetPercent: 0, minRetriesConcurrency: 0 } },
      },
      routes: [
        ...['deadok', 'f503ok', 'f503', 'f500ok', 'reset', 'slowok', 'nobudget', 'nonidem', 'deadonly', 'deadnobudget'].map((s) => ({
          name: s,
          match: { path: { prefix: `/${s}` } },
          backends: [{ service: `${s}.static` }],
        })),
        { name: 'hang', match: { path: { prefix: '/hang' } }, backends: [{ service: 'hang.static' }], timeoutMs: 1000 },
      ],
    });
  });

  after(async () => {
    await gw?.stop();
    await Promise.all(ups.map((u) => u.close()));
  });

  const reset$ = () => ups.forEach((u) => (u.seen.length = 0));

  it('connect failure: retried on the other instance, every request succeeds', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await call(gw, '/deadok');
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-instance'], 'ok');
    }
  });

  it('a listed status (503) is retried on another instance; the held 503 never reaches the client', async () => {
    reset$();
    for (let i = 0; i < 10; i++) assert.equal((await call(gw, '/f503ok')).status, 200);
    assert.equal(ok.seen.length, 10);
    assert.ok(fail503.seen.length >= 3, 'the failing instance was tried');
  });

  it('a status not listed is answered as is, without retry', async () => {
    reset$();
    const statuses = new Set<number>();
    for (let i = 0; i < 10; i++) statuses.add((await call(gw, '/f500ok')).status);
    assert.ok(statuses.has(500));
    assert.equal(fail500.seen.length + ok.seen.length, 10, 'one attempt per request');
  });

  it('when every try fails, the client gets the last upstream answer after attempts + 1 tries', async () => {
    reset$();
    const r = await call(gw, '/f503');
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-instance'], 'f503', 'the upstream response, not a gateway error');
    assert.equal(fail503.seen.length, 4);
  });

  it('only one instance: a connect failure is retried on it, then answered UF', async () => {
    const r = await call(gw, '/deadonly');
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-meshgate-flag'], 'UF');
  });

  it('a GET that was reset is retried (idempotent)', async () => {
    reset$();
    for (let i = 0; i < 6; i++) assert.equal((await call(gw, '/reset')).status, 200);
    assert.equal(ok.seen.length, 6);
  });

  it('a POST that reached the upstream is never sent twice (reset, no body)', async () => {
    reset$();
    for (let i = 0; i < 6; i++) {
      const r = await call(gw, '/reset', { method: 'POST' });
      assert.ok(r.status === 200 || r.status === 502, `status ${r.status}`);
    }
    const posts = [...reset.seen, ...ok.seen].filter((s) => s.method === 'POST');
    assert.equal(posts.length, 6, 'each POST reached an upstream exactly once');
  });

  it('a POST with a body that reached the upstream is never sent twice (reset)', async () => {
    reset$();
    for (let i = 0; i < 6; i++) await call(gw, '/reset', { method: 'POST', body: 'x'.repeat(1000), headers: { 'content-type': 'text/plain' } });
    assert.equal([...reset.seen, ...ok.seen].length, 6);
  });

  it('a POST answered 503 is passed through, not retried', async () => {
    reset$();
    for (let i = 0; i < 6; i++) await call(gw, '/f503ok', { method: 'POST' });
    assert.equal(fail503.seen.length + ok.seen.length, 6);
  });

  it('a POST that timed out is not retried', async () => {
    reset$();
    const r = await call(gw, '/hang', { method: 'POST' });
    assert.equal(r.status, 504);
    assert.equal(hang.seen.length, 1);
  });

  it('a POST that failed to connect is retried elsewhere with its body intact', async () => {
    reset$();
    for (let i = 0; i < 6; i++) {
      const r = await call(gw, '/deadok', { method: 'POST', body: 'y'.repeat(5000), headers: { 'content-type': 'text/plain' } });
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.text).bodyBytes, 5000);
    }
    assert.equal(ok.seen.length, 6);
  });

  it('retryNonIdempotent: a bodiless POST answered 503 is retried', async () => {
    reset$();
    for (let i = 0; i < 6; i++) assert.equal((await call(gw, '/nonidem', { method: 'POST' })).status, 200);
  });

  it('per-try timeout: a slow instance is abandoned for another one', async () => {
    reset$();
    for (let i = 0; i < 4; i++) {
      const r = await call(gw, '/slowok');
      assert.equal(r.status, 200);
      assert.equal(r.text.includes('slow'), false);
    }
  });

  it('the route timeout covers all tries', async () => {
    reset$();
    const r = await call(gw, '/hang');
    assert.equal(r.status, 504);
    // 11 tries x 400 ms would take 4.4 s; the 1 s route timeout ends it.
    assert.ok(r.ms < 3000, `took ${r.ms} ms`);
    assert.ok(hang.seen.length <= 4, `${hang.seen.length} tries`);
  });

  it('an exhausted retry budget stops retries', async () => {
    reset$();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call(gw, '/nobudget')).status);
    assert.ok(statuses.includes(503));
    assert.equal(fail503.seen.length + ok.seen.length, 10, 'no request was retried');
  });

  it('the budget never holds back a retry of a request that never reached the upstream (a connect failure)', async () => {
    reset$();
    // Budget 0: a retry of a request the dead instance answered would be refused;
    // a connection that never opened sent nothing, so retrying it adds no load.
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call(gw, '/deadnobudget')).status);
    assert.deepEqual(statuses, new Array(10).fill(200));
    assert.equal(ok.seen.length, 10);
  });
});
