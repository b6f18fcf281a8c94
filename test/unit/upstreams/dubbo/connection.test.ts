// The provider connection against the provider double: multiplexing,
// timeouts, a provider dying mid-call, reconnect with backoff, heartbeats.
import assert from 'node:assert/strict';
import { after, afterEach, describe, it } from 'node:test';
import { Instance } from '../../../../src/balancing/instance.js';
import { DubboAdapter } from '../../../../src/upstreams/dubbo/adapter.js';
import { encodeRequest, genericInvocation } from '../../../../src/upstreams/dubbo/codec.js';
import { DubboConnection, type CallResult } from '../../../../src/upstreams/dubbo/connection.js';
import { orderService, ORDER_SERVICE } from '../../../doubles/dubbo/order-service.js';
import { DubboProviderDouble, type ProviderOptions } from '../../../doubles/dubbo/provider.js';

const providers: DubboProviderDouble[] = [];
const adapters: DubboAdapter[] = [];

async function provider(opts: Partial<ProviderOptions> = {}, port = 0): Promise<DubboProviderDouble> {
  const p = await DubboProviderDouble.start({ services: [orderService()], ...opts }, port);
  providers.push(p);
  return p;
}

function adapter(opts: ConstructorParameters<typeof DubboAdapter>[0] = {}): DubboAdapter {
  const a = new DubboAdapter(opts);
  adapters.push(a);
  return a;
}

function inst(p: { host: string; port: number }): Instance {
  return new Instance({ host: p.host, port: p.port, weight: 1, healthy: true, metadata: {} });
}

let ids = 0;
function call(conn: DubboConnection, method: string, types: string[], args: unknown[], timeoutMs = 5_000, signal?: AbortSignal): Promise<CallResult> {
  const id = ++ids;
  const inv = genericInvocation(ORDER_SERVICE, '1.0.0', '', method, types, args, { path: ORDER_SERVICE, version: '1.0.0', generic: 'true' });
  return conn.call(id, encodeRequest(id, inv), timeoutMs, signal);
}

function connOf(a: DubboAdapter, p: { host: string; port: number }): DubboConnection {
  const c = a.connection(inst(p), 2_000);
  if (!(c instanceof DubboConnection)) assert.fail(`expected a connection, got ${c.failure}: ${c.error.message}`);
  return c;
}

const poll = async (fn: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

afterEach(async () => {
  for (const a of adapters.splice(0)) await a.close();
  for (const p of providers.splice(0)) await p.stop();
});
after(() => undefined);

describe('dubbo provider connection', () => {
  it('multiplexes concurrent calls on one connection and matches answers by request id', async () => {
    const p = await provider();
    const a = adapter();
    const conn = connOf(a, p);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => call(conn, 'findByItem', ['java.lang.String'], [`item-${i}`])));
    results.forEach((r, i) => {
      assert.ok(r.ok, JSON.stringify(r));
      assert.deepEqual(r.result, { kind: 'value', value: `found:item-${i}`, attachments: { dubbo: '2.0.2' } });
    });
    assert.equal(p.connections, 1);
    assert.equal(connOf(a, p), conn, 'the same connection is reused');
  });

  it('times a call out without hurting the connection, and drops the late answer', async () => {
    const p = await provider();
    const conn = connOf(adapter(), p);
    const r = await call(conn, 'hang', ['java.lang.String'], ['x'], 200);
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.failure, 'timeout');
    assert.equal(conn.inflight, 0);
    const ok = await call(conn, 'findByItem', ['java.lang.String'], ['y']);
    assert.ok(ok.ok);
  });

  it('fails every call in flight at once when the provider dies mid-call', async () => {
    const p = await provider();
    const conn = connOf(adapter(), p);
    const started = Date.now();
    const inflight = [call(conn, 'hang', ['java.lang.String'], ['a'], 30_000), call(conn, 'crash', ['java.lang.String'], ['b'], 30_000)];
    const results = await Promise.all(inflight);
    for (const r of results) {
      assert.equal(r.ok, false);
      assert.equal(!r.ok && r.failure, 'reset');
      assert.equal(!r.ok && r.reachedUpstream, true);
    }
    assert.ok(Date.now() - started < 10_000, 'failed long before the 30 s timeout');
  });

  it('forgets an aborted call', async () => {
    const p = await provider();
    const conn = connOf(adapter(), p);
    const ac = new AbortController();
    const pending = call(conn, 'hang', ['java.lang.String'], ['a'], 30_000, ac.signal);
    ac.abort();
    const r = await pending;
    assert.equal(!r.ok && r.failure, 'aborted');
    assert.equal(conn.inflight, 0);
  });

  it('reports connect failures, backs off, and reconnects when the provider is back', async () => {
    const p = await provider();
    const port = p.port;
    await p.stop();
    providers.length = 0;
    const a = adapter({ reconnectBaseMs: 300, reconnectMaxMs: 300 });
    const target = { host: '127.0.0.1', port };
    const r = await call(connOf(a, target), 'findByItem', ['java.lang.String'], ['x']);
    assert.equal(!r.ok && r.failure, 'connect-failure');
    assert.equal(!r.ok && r.reachedUpstream, false);
    // Within the backoff: fail fast without dialing.
    const fast = a.connection(inst(target), 2_000);
    assert.ok(!(fast instanceof DubboConnection));
    assert.equal(fast.failure, 'connect-failure');
    assert.match(fast.error.message, /reconnecting in/);
    // Provider back on the same port; after the backoff the next call connects.
    await provider({}, port);
    await new Promise((res) => setTimeout(res, 350));
    const ok = await call(connOf(a, target), 'findByItem', ['java.lang.String'], ['back']);
    assert.ok(ok.ok, JSON.stringify(ok));
  });

  it('reconnects at once after an established connection drops', async () => {
    const p = await provider();
    const a = adapter();
    const first = connOf(a, p);
    assert.ok((await call(first, 'findByItem', ['java.lang.String'], ['1'])).ok);
    for (const s of (p as unknown as { sockets: Set<import('node:net').Socket> }).sockets) s.destroy();
    await poll(() => first.state === 'closed');
    const second = connOf(a, p);
    assert.notEqual(second, first);
    assert.ok((await call(second, 'findByItem', ['java.lang.String'], ['2'])).ok);
  });

  it('sends heartbeats on an idle connection', async () => {
    const p = await provider();
    const conn = connOf(adapter({ heartbeatMs: 100 }), p);
    assert.ok((await call(conn, 'findByItem', ['java.lang.String'], ['1'])).ok);
    await poll(() => p.heartbeatsReceived >= 2);
    assert.equal(conn.state, 'open', 'answered heartbeats keep the connection open');
  });

  it("answers the provider's heartbeats", async () => {
    const p = await provider({ heartbeatMs: 100 });
    const conn = connOf(adapter(), p);
    assert.ok((await call(conn, 'findByItem', ['java.lang.String'], ['1'])).ok);
    await poll(() => p.heartbeatRepliesReceived >= 2);
    assert.equal(p.heartbeatsReceived, 0, 'the gateway itself stays quiet within its 60 s interval');
  });

  it('closes a connection whose provider stops answering, failing calls in flight', async () => {
    const p = await provider({ ignoreHeartbeats: true });
    const conn = connOf(adapter({ heartbeatMs: 100 }), p);
    const r = await call(conn, 'hang', ['java.lang.String'], ['x'], 30_000);
    assert.equal(!r.ok && r.failure, 'reset');
    assert.match(!r.ok ? r.error.message : '', /heartbeat timeout/);
    assert.equal(conn.state, 'closed');
  });

  it('stops sending to a provider that announced shutdown (readonly)', async () => {
    const p = await provider();
    const a = adapter();
    const conn = connOf(a, p);
    assert.ok((await call(conn, 'findByItem', ['java.lang.String'], ['1'])).ok);
    p.sendReadonly();
    await poll(() => conn.state !== 'open');
    const callsBefore = p.calls.length;
    // New calls neither reuse the draining connection nor dial the provider again right away.
    const next = a.connection(inst(p), 2_000);
    assert.ok(!(next instanceof DubboConnection), 'no connection to a provider shutting down');
    assert.ok(next.failure === 'refused-stream' || next.failure === 'connect-failure');
    const refused = await call(conn, 'findByItem', ['java.lang.String'], ['2']);
    assert.equal(!refused.ok && refused.failure, 'refused-stream');
    assert.equal(!refused.ok && refused.reachedUpstream, false);
    assert.equal(p.calls.length, callsBefore);
  });
});
