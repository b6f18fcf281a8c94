// The access log line of a proxied request: the query as sent with credential
// parameters redacted (log.redactQuery), the protocol, the user agent and the
// upstream's time to headers.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import type { AccessLogSink } from '../../../src/observability/logger.js';
import { startGateway } from '../../helpers/gateway.js';
import { startUpstream } from '../../helpers/upstream.js';

test('the access log has the query (secrets redacted), protocol, user agent and upstream time', async () => {
  const up = await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 30));
  const lines: string[] = [];
  const sink = { write: (l: string) => void lines.push(l) } as AccessLogSink;
  const gw = await startGateway(
    {
      log: { level: 'silent', access: true, redactQuery: ['token', 'session'] },
      registries: [{ name: 'app', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'app', match: { path: { prefix: '/' } }, backends: [{ service: 'app.static' }] }],
    },
    { accessLog: sink },
  );
  try {
    const res = await request(`${gw.listenerUrl('public')}/search?q=shoes&Token=s3cret&session=abc&page=2`, { headers: { 'user-agent': 'tester/1.0' } });
    await res.body.text();
    const line = JSON.parse(lines.find((l) => l.includes('"path":"/search"'))!) as Record<string, unknown>;
    assert.equal(line.query, 'q=shoes&Token=REDACTED&session=REDACTED&page=2');
    assert.ok(!lines.join('').includes('s3cret'));
    assert.equal(line.protocol, 'HTTP/1.1');
    assert.equal(line.userAgent, 'tester/1.0');
    assert.ok(typeof line.upstreamMs === 'number' && line.upstreamMs >= 25 && line.upstreamMs <= (line.durationMs as number), JSON.stringify(line));
  } finally {
    await gw.stop();
    await up.close();
  }
});
