// The access-log sink: batched writes that still reach the file promptly.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ACCESS_LOG_FLUSH_MS, accessLogLine, BatchedAccessLog, createAccessLogSink, isoAt, redactQuery } from '../../../src/observability/logger.js';
import type { Exchange } from '../../../src/exchange/exchange.js';
import { waitUntil } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'meshgate-access-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// The destination opens the file asynchronously: until then there is no file.
const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

describe('access log sink', () => {
  it('a single line under light traffic reaches the file within the flush interval', async () => {
    const file = join(dir, 'one.log');
    const sink = createAccessLogSink(file);
    const t0 = Date.now();
    sink.write('{"n":1}\n');
    await waitUntil('the line is in the file', () => lines(file).length === 1, 5_000, 5);
    // Not written per line, but not held back until a buffer fills either.
    assert.ok(Date.now() - t0 < ACCESS_LOG_FLUSH_MS + 1_000, `took ${Date.now() - t0} ms`);
    sink.flushSync?.();
  });

  it('many lines go out as few writes, in order, and flushSync writes what is waiting', () => {
    const writes: string[] = [];
    const sink = new BatchedAccessLog({ write: (b) => writes.push(b.toString()) }, 60_000);
    for (let i = 0; i < 5_000; i++) sink.write(`{"n":${i},"pad":"${'x'.repeat(40)}"}\n`);
    // 5,000 lines of ~58 bytes: a write per 64 KiB, the rest waits for the timer.
    assert.ok(writes.length >= 3 && writes.length <= 6, `${writes.length} writes`);
    assert.ok(writes.every((w) => w.endsWith('\n')), 'a batch ends with a whole line');
    sink.flushSync();
    const all = writes.join('').split('\n').filter(Boolean);
    assert.equal(all.length, 5_000);
    assert.deepEqual(
      all.map((l) => (JSON.parse(l) as { n: number }).n),
      Array.from({ length: 5_000 }, (_, i) => i),
    );
    sink.flushSync();
    assert.equal(writes.join('').split('\n').filter(Boolean).length, 5_000, 'nothing written twice');
  });

  it('keeps multi-byte characters and lines longer than a batch whole and in order', async () => {
    const file = join(dir, 'wide.log');
    const sink = createAccessLogSink(file);
    const wide = `{"path":"/ünïcödé/€/😀","n":0}\n`;
    const huge = `{"path":"/${'é'.repeat(40_000)}","n":1}\n`;
    const after = `{"path":"/après","n":2}\n`;
    sink.write(wide);
    sink.write(huge);
    sink.write(after);
    sink.flushSync?.();
    await waitUntil('three lines in the file', () => lines(file).length === 3, 5_000, 5);
    assert.deepEqual(lines(file), [wide.trim(), huge.trim(), after.trim()]);
  });

  it('a line is valid JSON whatever the request carried (quotes, backslashes, control characters, lone surrogates)', () => {
    const nasty = ['plain', 'quo"te', 'back\\slash', 'tab\tnew\nline', 'bell\u0007', 'lone \ud800 surrogate', 'pair \ud83d\ude00', 'ünïcödé', ''];
    for (const v of nasty) {
      const ex = {
        startMs: Date.UTC(2026, 10, 22, 1, 2, 3, 4),
        requestId: 'r-1',
        clientIp: '127.0.0.1',
        method: 'GET',
        host: v,
        matchPath: `/p/${v}`,
        routeName: 'r',
        service: v,
        upstreamAddr: '127.0.0.1:1',
        flag: '',
        attempts: 1,
        bytesIn: 0,
        bytesOut: 2,
        upstreamMs: 0.75,
        req: { httpVersion: '1.1', headers: { 'user-agent': `agent ${v}` } },
      } as unknown as Exchange;
      const line = accessLogLine(ex, 200, 1.5, `q=${v}`);
      assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'), `one line for ${JSON.stringify(v)}`);
      const o = JSON.parse(line) as Record<string, unknown>;
      assert.equal(o.host, v);
      assert.equal(o.path, `/p/${v}`);
      assert.equal(o.service, v);
      assert.equal(o.time, '2026-11-22T01:02:03.004Z');
      assert.equal(o.status, 200);
      assert.equal(o.query, `q=${v}`);
      assert.equal(o.userAgent, `agent ${v}`);
      assert.equal(o.protocol, 'HTTP/1.1');
      assert.equal(o.upstreamMs, 0.75);
    }
  });

  it('redacts the values of credential-like query parameters, whatever their case or encoding, and keeps the rest as sent', () => {
    const names = new Set(['token', 'api_key', 'password']);
    assert.equal(redactQuery('page=2&token=abc&q=a%20b', names), 'page=2&token=REDACTED&q=a%20b');
    assert.equal(redactQuery('TOKEN=x&Api_Key=y&api%5Fkey=z', names), 'TOKEN=REDACTED&Api_Key=REDACTED&api%5Fkey=REDACTED');
    assert.equal(redactQuery('password&token=', names), 'password&token=REDACTED');
    assert.equal(redactQuery('q=token', names), 'q=token');
    assert.equal(redactQuery('', names), '');
    assert.equal(redactQuery('a=1', new Set()), 'a=1');
  });

  it('formats times as toISOString does, across seconds, days and years', () => {
    const starts = [Date.UTC(2026, 10, 22, 1, 2, 3, 990), Date.UTC(2026, 11, 31, 23, 59, 58, 0), 0];
    for (const start of starts) {
      for (let ms = start; ms < start + 2_100; ms += 7) assert.equal(isoAt(ms), new Date(ms).toISOString());
    }
    // out of order, as requests finishing late log their start
    for (const ms of [starts[0]! + 5, starts[0]! - 1_000, starts[0]! + 5]) assert.equal(isoAt(ms), new Date(ms).toISOString());
  });
});
