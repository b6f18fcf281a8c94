// Slow and idle clients: what a client that takes its time costs the
// gateway, and when the gateway stops waiting.
//
//   - listeners[].headersTimeoutMs: a head dripped a byte at a time is cut
//     with 408 once the head has taken longer than the limit (checked by a
//     sweep about once a second, so within limit + ~1 s);
//   - listeners[].keepAliveTimeoutMs: an idle keep-alive connection is closed
//     after it; so is a connection that never sends a byte;
//   - listeners[].bodyTimeoutMs: the longest pause between request body bytes
//     while the gateway reads them: 408 when nothing was answered yet, else
//     the connection closes; the upstream request is aborted either way; a
//     body that is slow but steady is not cut;
//   - 5,000 idle keep-alive connections at once: a new connection is still
//     served promptly, and each idle connection costs the gateway a bounded
//     amount of heap (measured and printed as a MEASURE: line).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Gateway } from '../../../src/gateway.js';
import { startCountingUpstream, type CountingUpstream } from '../../helpers/counting-upstream.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { b, collect, connect, parseResponses, probeGet, sendRaw, serverSocketsOn, trackEscapes, waitForBytes } from '../../helpers/raw-http.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const HOST = 'slow.example';
const H = `Host: ${HOST}\r\n`;
/** The sweep that enforces the timeouts runs about once a second: allowed lateness. */
const SWEEP_SLACK_MS = 1500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const escapes = trackEscapes();
after(() => escapes.dispose());

function portOf(gw: Gateway): number {
  return Number(new URL(gw.listenerUrl()).port);
}

describe('head and keep-alive timeouts (headersTimeoutMs 1000, keepAliveTimeoutMs 1000)', () => {
  let up: CountingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    up = await startCountingUpstream();
    gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http', headersTimeoutMs: 1000, keepAliveTimeoutMs: 1000 }],
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
    } as never);
    port = portOf(gw);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('a head dripped one byte per 100 ms is cut with 408 after the timeout, and nothing reaches the upstream', async () => {
    const head = b(`GET /drip HTTP/1.1\r\n${H}X-Pad: ${'a'.repeat(60)}\r\n\r\n`);
    const sock = await connect(port);
    const done = collect(sock);
    let answered = false;
    sock.once('data', () => (answered = true));
    const started = Date.now();
    // The whole head would take ~9 s: far past the limit.
    for (let i = 0; i < head.length && !answered && !sock.destroyed; i++) {
      sock.write(head.subarray(i, i + 1));
      await sleep(100);
    }
    const { raw } = await done;
    const took = Date.now() - started;
    const text = raw.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 408 /, `got ${JSON.stringify(text)}`);
    assert.ok(took >= 1000 && took < 1000 + SWEEP_SLACK_MS + 500, `cut after ${took} ms (limit 1000 ms from the first byte)`);
    assert.equal(up.requests.length, 0);
  });

  it('an idle keep-alive connection is closed after keepAliveTimeoutMs, with nothing more written', async () => {
    const sock = await connect(port);
    const done = collect(sock);
    const first = waitForBytes(sock, /\r\n\r\n[^]*\}$/, 3000);
    sock.write(`GET /ka HTTP/1.1\r\n${H}\r\n`);
    await first;
    const answeredAt = Date.now();
    const { raw } = await Promise.race([done, sleep(6000).then(() => ({ raw: Buffer.from('TIMEOUT') }))]);
    const idleFor = Date.now() - answeredAt;
    const responses = parseResponses(raw);
    assert.equal(responses.length, 1, `one answer, nothing written when idling out: ${JSON.stringify(raw.toString('latin1'))}`);
    assert.equal(responses[0]!.status, 200);
    assert.match(responses[0]!.headers['keep-alive'] ?? '', /timeout=1\b/, 'the answer announces the idle timeout');
    assert.ok(idleFor >= 900 && idleFor < 1000 + SWEEP_SLACK_MS + 500, `closed after ${idleFor} ms idle (limit 1000 ms)`);
    sock.destroy();
  });

  it('a connection that never sends a byte is closed no later than an idle keep-alive one', async () => {
    const sock = await connect(port);
    const started = Date.now();
    const { raw } = await Promise.race([collect(sock), sleep(8000).then(() => ({ raw: Buffer.from('STILL OPEN') }))]);
    const took = Date.now() - started;
    sock.destroy();
    assert.ok(took < 1000 + SWEEP_SLACK_MS + 500, `closed after ${took} ms (${JSON.stringify(raw.toString('latin1'))}); keepAliveTimeoutMs and headersTimeoutMs are 1000 ms`);
    assert.equal(raw.length, 0, 'a silent connection gets no answer (there was no request)');
  });

  it('keeps serving while timing out', async () => {
    const r = await probeGet(port, '/after', HOST);
    assert.equal(r.finals[0]?.status, 200);
    assert.deepEqual(escapes.since(0), [], 'no error escaped to the process');
  });
});

describe('a request body that stalls (bodyTimeoutMs 1000)', () => {
  let up: CountingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    // /early answers as soon as the head arrives, before reading the body.
    up = await startCountingUpstream({
      onHead: (req, reply) => {
        if (req.url.startsWith('/early')) {
          reply.send(200, 'early', { 'content-type': 'text/plain' });
          return true;
        }
        return false;
      },
      onRequest: (req, reply) => {
        if (req.url.startsWith('/early')) return;
        reply.send(200, JSON.stringify({ url: req.url, body: req.body.toString('latin1') }), { 'content-type': 'application/json' });
      },
    });
    gw = await startGateway({
      listeners: [{ name: 'public', address: '127.0.0.1:0', protocol: 'http', bodyTimeoutMs: 1000 }],
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
    } as never);
    port = portOf(gw);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  async function stall(head: string, firstBody: string): Promise<{ raw: Buffer; stalledFor: number; sock: net.Socket }> {
    up.clear();
    const sock = await connect(port);
    const done = collect(sock);
    sock.write(head + firstBody);
    const stalledAt = Date.now();
    const { raw } = await Promise.race([done, sleep(6000).then(() => ({ raw: Buffer.from('STILL OPEN') }))]);
    return { raw, stalledFor: Date.now() - stalledAt, sock };
  }

  async function upstreamAborted(path: string): Promise<void> {
    try {
      await waitFor(() => up.requests.some((r) => r.url === path && r.aborted), 3000);
    } catch {
      assert.fail(`the upstream request ${path} was not aborted: ${JSON.stringify(up.requests.map((r) => ({ url: r.url, complete: r.complete, aborted: r.aborted, body: r.body.length })))}`);
    }
    assert.ok(!up.requests.some((r) => r.url === path && r.complete), 'the upstream never sees the stalled request whole');
  }

  it('a content-length body that stops after 10 of 100 bytes: 408, connection closed, upstream request aborted', async () => {
    const { raw, stalledFor, sock } = await stall(`POST /cl HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n`, '0123456789');
    sock.destroy();
    const text = raw.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 408 /, `got ${JSON.stringify(text)} after ${stalledFor} ms`);
    assert.ok(stalledFor >= 1000 && stalledFor < 1000 + SWEEP_SLACK_MS + 500, `cut after ${stalledFor} ms of silence (limit 1000 ms)`);
    await upstreamAborted('/cl');
  });

  it('a chunked body that stops mid-chunk: 408, connection closed, upstream request aborted', async () => {
    const { raw, stalledFor, sock } = await stall(`POST /ch HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n`, 'a\r\n01234');
    sock.destroy();
    const text = raw.toString('latin1');
    assert.match(text, /^HTTP\/1\.1 408 /, `got ${JSON.stringify(text)} after ${stalledFor} ms`);
    assert.ok(stalledFor >= 1000 && stalledFor < 1000 + SWEEP_SLACK_MS + 500, `cut after ${stalledFor} ms of silence`);
    await upstreamAborted('/ch');
  });

  it('a body that stalls after the upstream already answered: the 200 arrives, then the connection closes (no second answer), upstream request aborted', async () => {
    const { raw, stalledFor, sock } = await stall(`POST /early HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n`, '0123456789');
    sock.destroy();
    const responses = parseResponses(raw);
    assert.equal(responses.length, 1, `exactly one answer: ${JSON.stringify(raw.toString('latin1'))}`);
    assert.equal(responses[0]!.status, 200);
    assert.equal(responses[0]!.body, 'early');
    assert.ok(stalledFor < 1000 + SWEEP_SLACK_MS + 500, `closed after ${stalledFor} ms of silence`);
    await upstreamAborted('/early');
  });

  it('a body that is slow but steady (a byte every 300 ms, 12 bytes: 3.6 s in all) is not cut', async () => {
    up.clear();
    const body = 'abcdefghijkl';
    const pieces = [`POST /steady HTTP/1.1\r\n${H}Content-Length: ${body.length}\r\n\r\n`, ...body.split('')];
    const r = await sendRaw(port, pieces, { gapMs: 300, timeoutMs: 8000, settleMs: 0 });
    assert.equal(r.finals[0]?.status, 200, `got ${JSON.stringify(r.raw.toString('latin1'))}`);
    assert.equal((JSON.parse(r.finals[0]!.body) as { body: string }).body, body);
    assert.ok(r.ms > 3000, 'the whole body took longer than the idle limit');
  });

  it('keeps serving', async () => {
    const r = await probeGet(port, '/after', HOST);
    assert.equal(r.finals[0]?.status, 200);
    assert.deepEqual(escapes.since(0), [], 'no error escaped to the process');
  });
});

describe('5,000 idle keep-alive connections', () => {
  const COUNT = 5000;
  const PER_CONN_LIMIT = 20 * 1024;
  let up: CountingUpstream;
  let gw: Gateway;
  let port: number;
  let child: ChildProcessWithoutNullStreams | undefined;
  before(async () => {
    up = await startCountingUpstream();
    gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [
        // The idle connections' one request is answered by the gateway itself: the measure is the connection, not an upstream pool.
        { name: 'idle', match: { hosts: ['idle.example'] }, directResponse: { status: 200, body: 'ok' } },
        { name: 'all', backends: [{ service: 'up.static' }] },
      ],
    });
    port = portOf(gw);
  });
  after(async () => {
    if (child && child.exitCode === null) child.kill();
    await gw?.stop();
    await up?.close();
  });

  function heapNow(): number {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  }

  it('a new connection is served promptly while they are open, and each costs the gateway a bounded heap', async () => {
    const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim());
    assert.ok(Number.isNaN(limit) || limit >= COUNT + 1000, `this process may open ${limit} descriptors; ${COUNT} connections need more (raise ulimit -n)`);
    // Warm up the paths the idle connections take, then take the baseline.
    for (let i = 0; i < 300; i++) await sendRaw(port, `GET /warm HTTP/1.1\r\nHost: idle.example\r\nConnection: close\r\n\r\n`, { settleMs: 0 });
    await probeGet(port, '/warm', HOST);
    await waitFor(() => serverSocketsOn(port) === 0, 5000);
    const heapBefore = heapNow();
    const rssBefore = process.memoryUsage().rss;

    // The clients live in another process (its descriptor limit raised to the hard limit), so this heap holds only the gateway's side.
    const script = fileURLToPath(new URL('../../helpers/idle-clients.mjs', import.meta.url));
    child = spawn('sh', ['-c', `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "${process.execPath}" "${script}" ${port} ${COUNT} idle.example`]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor(() => /READY \d+ \d+ \d+/.test(out), 120_000, 50);
    const [, open, failed, tookMs] = /READY (\d+) (\d+) (\d+)/.exec(out)!.map(Number);
    await sleep(200);
    const held = serverSocketsOn(port);
    const heapAfter = heapNow();
    const rssAfter = process.memoryUsage().rss;
    const perConn = (heapAfter - heapBefore) / COUNT;
    console.log(`MEASURE: idle keep-alive connections: ${open} open (${failed} failed) in ${tookMs} ms; gateway holds ${held} sockets`);
    console.log(`MEASURE: gateway heap per idle connection: ${(perConn / 1024).toFixed(2)} KiB (heap ${(heapBefore / 1048576).toFixed(1)} -> ${(heapAfter / 1048576).toFixed(1)} MiB; rss ${(rssBefore / 1048576).toFixed(0)} -> ${(rssAfter / 1048576).toFixed(0)} MiB, ${((rssAfter - rssBefore) / COUNT / 1024).toFixed(1)} KiB per connection)`);

    // Normal traffic on a new connection, through an upstream.
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = Date.now();
      const r = await probeGet(port, `/normal/${i}`, HOST);
      latencies.push(Date.now() - t);
      assert.equal(r.finals[0]?.status, 200, `request ${i} with ${held} idle connections open: ${JSON.stringify(r.raw.toString('latin1').slice(0, 200))}`);
    }
    const worst = Math.max(...latencies);
    console.log(`MEASURE: new-connection requests with ${held} idle connections open: median ${latencies.sort((x, y) => x - y)[10]} ms, worst ${worst} ms`);

    assert.equal(failed, 0, `every idle client got its answer: ${out}`);
    assert.equal(open, COUNT, `the gateway kept all ${COUNT} idle connections (default keepAliveTimeoutMs 65 s)`);
    assert.ok(worst < 1000, `a new connection is served within 1 s (worst ${worst} ms)`);
    assert.ok(perConn < PER_CONN_LIMIT, `heap per idle connection ${(perConn / 1024).toFixed(2)} KiB, limit ${PER_CONN_LIMIT / 1024} KiB`);

    child.stdin.end();
    child.kill();
    await waitFor(() => serverSocketsOn(port) === 0, 10_000);
    assert.deepEqual(escapes.since(0), [], 'no error escaped to the process');
  });
});
