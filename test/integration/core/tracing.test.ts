// OpenTelemetry tracing through the gateway, exported over OTLP/HTTP to an
// in-process receiver: a server span per request (child of the client's
// traceparent), a client span per upstream attempt (retries visible), the
// upstream's traceparent naming the attempt's span, the trace id in the access
// log; and with tracing off, traceparent passes untouched and nothing is sent.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import type { Gateway } from '../../../src/gateway.js';
import type { AccessLogSink } from '../../../src/observability/logger.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { REFUSED_PORT, startUpstream, type TestUpstream } from '../../helpers/upstream.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string | number } }>;
  status?: { code?: number };
}

/** An OTLP/HTTP collector: keeps every span it is sent (JSON, gzip or not). */
async function collector(): Promise<{ url: string; spans: OtlpSpan[]; posts: number; close(): Promise<void> }> {
  const c = { spans: [] as OtlpSpan[], posts: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      c.posts++;
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      assert.equal(req.url, '/v1/traces');
      assert.match(String(req.headers['content-type']), /application\/json/);
      const doc = JSON.parse(body.toString()) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const rs of doc.resourceSpans) for (const ss of rs.scopeSpans) c.spans.push(...ss.spans);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(c, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
}

const attr = (s: OtlpSpan, k: string): string | number | undefined => {
  const v = s.attributes.find((a) => a.key === k)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
};

describe('tracing', () => {
  let otlp: Awaited<ReturnType<typeof collector>>;
  let up: TestUpstream;
  let gw: Gateway;
  let dead: number;
  const lines: string[] = [];
  const sink: AccessLogSink = { write: (l: string) => void lines.push(l) } as AccessLogSink;

  before(async () => {
    otlp = await collector();
    up = await startUpstream('traced');
    dead = REFUSED_PORT;
    gw = await startGateway(
      {
        tracing: { endpoint: otlp.url, exportDelayMs: 50 },
        registries: [
          { name: 'app', type: 'static', endpoints: [up.address] },
          { name: 'flaky', type: 'static', endpoints: [`127.0.0.1:${dead}`, up.address] },
        ],
        services: { 'flaky.static': { loadBalancer: { type: 'round_robin' }, retries: { attempts: 1, on: ['connect-failure'] } } },
        routes: [
          { name: 'flaky', match: { path: { prefix: '/flaky' } }, backends: [{ service: 'flaky.static' }] },
          { name: 'app', match: { path: { prefix: '/' } }, backends: [{ service: 'app.static' }] },
        ],
      },
      { accessLog: sink },
    );
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
    await otlp?.close();
  });

  it("a request continues the client's trace: server span child of its traceparent, client span child of the server span, upstream gets the client span", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    up.seen.length = 0;
    const res = await request(`${gw.listenerUrl('public')}/orders/1`, { headers: { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=abc' } });
    await res.body.text();
    assert.equal(res.statusCode, 200);
    const sent = String(up.seen[0]!.headers.traceparent);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(sent);
    assert.ok(m, sent);
    assert.equal(m[1], traceId, 'same trace upstream');
    assert.notEqual(m[2], parent, 'the upstream is a child of the gateway, not of the client');
    assert.equal(up.seen[0]!.headers.tracestate, 'vendor=abc');

    const spans = await waitFor(() => {
      const s = otlp.spans.filter((x) => x.traceId === traceId);
      return s.length >= 2 ? s : undefined;
    });
    const server = spans!.find((s) => s.kind === 2)!;
    const client = spans!.find((s) => s.kind === 3)!;
    assert.equal(server.parentSpanId, parent);
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(client.spanId, m[2], "the upstream's parent is the client span");
    assert.equal(server.name, 'GET app');
    assert.equal(attr(server, 'http.route'), 'app');
    assert.equal(attr(server, 'http.response.status_code'), 200);
    assert.equal(attr(server, 'url.path'), '/orders/1');
    assert.equal(attr(client, 'server.port'), up.port);
    assert.equal(attr(client, 'http.response.status_code'), 200);
    // The access log line names the trace.
    assert.ok(lines.some((l) => l.includes(`"traceId":"${traceId}"`) && l.includes('"path":"/orders/1"')), lines.join(''));
  });

  it('a retry is its own client span: the failed connect, then the try that answered', async () => {
    // Round robin over [dead, up]: some request hits the dead instance first; find its trace.
    let traceId = '';
    for (let i = 0; i < 4 && !traceId; i++) {
      const res = await request(`${gw.listenerUrl('public')}/flaky/${i}`);
      await res.body.text();
      assert.equal(res.statusCode, 200);
      const line = lines.find((l) => l.includes(`"path":"/flaky/${i}"`) && l.includes('"attempts":2'));
      if (line) traceId = /"traceId":"([0-9a-f]{32})"/.exec(line)![1]!;
    }
    assert.ok(traceId, 'a request was retried');
    const clients = await waitFor(() => {
      const s = otlp.spans.filter((x) => x.traceId === traceId && x.kind === 3);
      return s.length >= 2 ? s : undefined;
    });
    const byAttempt = clients!.sort((a, b) => Number(attr(a, 'http.request.resend_count')) - Number(attr(b, 'http.request.resend_count')));
    assert.equal(attr(byAttempt[0]!, 'server.port'), dead);
    assert.equal(attr(byAttempt[0]!, 'error.type'), 'connect-failure');
    assert.equal(byAttempt[0]!.status?.code, 2, 'ERROR');
    assert.equal(attr(byAttempt[1]!, 'server.port'), up.port);
    assert.equal(attr(byAttempt[1]!, 'http.request.resend_count'), 1);
    const server = otlp.spans.find((x) => x.traceId === traceId && x.kind === 2)!;
    for (const c of byAttempt) assert.equal(c.parentSpanId, server.spanId);
  });

  it('a request without traceparent starts a trace; an invalid one is ignored, not forwarded', async () => {
    up.seen.length = 0;
    await (await request(`${gw.listenerUrl('public')}/fresh`)).body.text();
    await (await request(`${gw.listenerUrl('public')}/bad`, { headers: { traceparent: 'zz-not-a-trace' } })).body.text();
    for (const seen of up.seen) assert.match(String(seen.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('with tracing off (removed by a reload), traceparent passes through untouched and no span is sent', async () => {
    const cfg = gw.config;
    const { tracing: _drop, ...rest } = cfg;
    const r = await gw.reload(rest);
    assert.ok(r.ok, r.error);
    await new Promise((res) => setTimeout(res, 200));
    const before = otlp.spans.length;
    up.seen.length = 0;
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await (await request(`${gw.listenerUrl('public')}/off`, { headers: { traceparent: tp } })).body.text();
    assert.equal(up.seen[0]!.headers.traceparent, tp);
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(otlp.spans.length, before);
    assert.ok(!lines.at(-1)!.includes('traceId'));
  });
});
