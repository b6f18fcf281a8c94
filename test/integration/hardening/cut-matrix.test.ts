// Clients and upstreams that vanish at every byte.
//
// Requests: for each message below, a client sends its first k bytes, for
// every k from 0 to its length, and then half-closes (FIN); for a sampled
// subset of k it resets instead (RST). After each cut:
//   - the gateway closes its side of the connection (it never holds a
//     half-closed client);
//   - the upstream framed at most the requests the prefix held whole, each
//     one exactly as sent (a request cut in its body never reaches the
//     upstream whole: its upstream request is aborted);
//   - the gateway still answers a normal request.
// Responses: an upstream closes at every byte offset of its response (head,
// content-length body, chunked body with its size lines and trailers). The
// client gets a 502 while no head was sent, otherwise the head and a broken
// connection, never a response that looks complete.
// At the end: no error escaped to the process, the gateway holds no client
// socket, and its heap after a full GC is within a stated slack of where it
// started.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Gateway } from '../../../src/gateway.js';
import { startCountingUpstream, type CountingUpstream } from '../../helpers/counting-upstream.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { b, clientSocketsTo, connect, frameWithLlhttp, probeGet, sendRaw, serverSocketsOn, toResponses, trackEscapes, waitForBytes } from '../../helpers/raw-http.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap growth allowed over the whole matrix, after a full GC (about 1,700 cut connections, plus as many probes). */
const HEAP_SLACK = 8 * 1024 * 1024;
/** How long the gateway may take to close its side after a client's FIN. */
const CLOSE_WITHIN_MS = 2000;

const HOST = 'cut.example';
const H = `Host: ${HOST}\r\n`;
const PROBE = '/__probe';

let up: CountingUpstream;
let cutUp: CountingUpstream;
let gw: Gateway;
let port: number;
const escapes = trackEscapes();
let heapBefore = 0;
/** Connections cut over the whole file (requests and responses). */
let totalCuts = 0;

function heapNow(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

// ---------- canned responses the cutting upstream sends part of ----------

const RESPONSES: Record<string, Buffer> = {
  cl: b(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 64\r\nx-up: cut\r\n\r\n${'0123456789abcdef'.repeat(4)}`),
  chunked: b(`HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\nx-up: cut\r\n\r\n10\r\n0123456789abcdef\r\n5;ext="v"\r\nhello\r\n0\r\nx-trailer: t\r\n\r\n`),
};

before(async () => {
  up = await startCountingUpstream();
  cutUp = await startCountingUpstream({
    onRequest: (req, reply) => {
      const u = new URL(req.url, 'http://x');
      const whole = RESPONSES[u.searchParams.get('kind') ?? 'cl']!;
      const at = Number(u.searchParams.get('at'));
      const part = whole.subarray(0, at);
      if (u.searchParams.get('how') === 'rst') {
        if (part.length) reply.write(part);
        setTimeout(() => reply.reset(), 5);
      } else reply.close(part);
    },
  });
  gw = await startGateway({
    registries: [
      { name: 'up', type: 'static', endpoints: [up.address] },
      { name: 'cut', type: 'static', endpoints: [cutUp.address] },
    ],
    routes: [
      { name: 'rcut', match: { path: { prefix: '/rcut' } }, backends: [{ service: 'cut.static' }] },
      { name: 'all', backends: [{ service: 'up.static' }] },
    ],
  });
  port = Number(new URL(gw.listenerUrl()).port);
  // Warm up (JIT, pools, lazily built state) before the heap baseline.
  for (let i = 0; i < 200; i++) await probeGet(port, PROBE, HOST);
  heapBefore = heapNow();
});

after(async () => {
  await gw?.stop();
  await up?.close();
  await cutUp?.close();
  escapes.dispose();
});

// ---------- the request side ----------

interface Want {
  method: string;
  url: string;
  body: string;
}

/** Requests the upstream framed, the gateway's own probes left out. */
function seen(): Array<{ method: string; url: string; body: string; complete: boolean; aborted: boolean }> {
  return up.requests.filter((r) => r.url !== PROBE).map((r) => ({ method: r.method, url: r.url, body: r.body.toString('latin1'), complete: r.complete, aborted: r.aborted }));
}

/** Wait for a socket's 'close'; false if it did not come in time. */
function closedWithin(sock: net.Socket, ms: number): Promise<boolean> {
  if (sock.destroyed && sock.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    sock.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Offsets to cut at: every one up to `everyUpTo`, then every `step`-th of the rest (0 and the full length always). */
function offsets(len: number, opts: { everyUpTo?: number; step?: number } = {}): number[] {
  const full = opts.everyUpTo ?? len;
  const out: number[] = [];
  for (let k = 0; k <= len; k++) if (k <= full || k === len || (k - full) % (opts.step ?? 7) === 0) out.push(k);
  return out;
}

interface CutReport {
  problems: string[];
  cuts: number;
}

/**
 * Send the first k bytes of `bytes` then FIN or RST, for each k; check the
 * gateway's side after each. `setup.run` may send `setup.sent` first (and
 * wait for an answer) on the same connection.
 */
async function cutMatrix(
  name: string,
  bytes: Buffer,
  want: Want[],
  ks: { fin: number[]; rst: number[] },
  setup?: { run(sock: net.Socket): Promise<void>; sent: Buffer },
): Promise<CutReport> {
  const report: CutReport = { problems: [], cuts: 0 };
  let hangs = 0;
  for (const how of ['fin', 'rst'] as const) {
    for (const k of ks[how]) {
      if (hangs >= 5) break;
      up.clear();
      const tunnelsBefore = up.tunnels;
      const escapesBefore = escapes.errors.length;
      report.cuts++;
      totalCuts++;
      const where = `${name} k=${k}/${bytes.length} ${how.toUpperCase()}`;
      let sock: net.Socket;
      try {
        sock = await connect(port);
      } catch (e) {
        report.problems.push(`${where}: connect failed: ${(e as Error).message}`);
        continue;
      }
      sock.on('error', () => undefined);
      sock.on('data', () => undefined);
      if (setup) {
        try {
          await setup.run(sock);
        } catch (e) {
          report.problems.push(`${where}: setup: ${(e as Error).message}`);
          sock.destroy();
          continue;
        }
      }
      if (k > 0) await new Promise<void>((r) => sock.write(bytes.subarray(0, k), () => r()));
      if (how === 'fin') {
        sock.end();
        if (!(await closedWithin(sock, CLOSE_WITHIN_MS))) {
          hangs++;
          report.problems.push(`${where}: the gateway did not close its side within ${CLOSE_WITHIN_MS} ms of the client's FIN`);
          sock.destroy();
        }
      } else {
        // Let the bytes reach the gateway before the reset discards them.
        await sleep(3);
        sock.resetAndDestroy();
      }
      // The gateway must still answer; by the time it has, whatever it was
      // going to forward for the cut connection has reached the upstream.
      const p = await probeGet(port, PROBE, HOST);
      if (p.finals[0]?.status !== 200) report.problems.push(`${where}: the next request got ${p.finals[0]?.status ?? `nothing (${p.error ?? 'no answer'})`}`);
      try {
        await waitFor(() => up.inProgress === 0, 3000, 5);
      } catch {
        report.problems.push(`${where}: an upstream request is still half-sent 3 s after the client left (never aborted): ${JSON.stringify(seen())}`);
      }
      try {
        await waitFor(() => up.tunnels <= tunnelsBefore, 2000, 5);
      } catch {
        report.problems.push(`${where}: the upstream side of a tunnel is still open 2 s after the client left (${up.tunnels - tunnelsBefore} leaked)`);
      }
      const prefix = setup ? Buffer.concat([setup.sent, bytes.subarray(0, k)]) : bytes.subarray(0, k);
      const whole = frameWithLlhttp(prefix).messages.filter((m) => m.complete).length;
      const got = seen();
      const complete = got.filter((r) => r.complete);
      if (complete.length > whole) report.problems.push(`${where}: the upstream framed ${complete.length} whole request(s), the client sent ${whole}: ${JSON.stringify(got)}`);
      complete.forEach((r, i) => {
        const w = want[i];
        if (!w || r.method !== w.method || r.url !== w.url || r.body !== w.body) report.problems.push(`${where}: upstream request ${i} is ${JSON.stringify(r)}, the client sent ${JSON.stringify(w)}`);
      });
      if (escapes.errors.length > escapesBefore) report.problems.push(`${where}: an error escaped to the process (it would end a gateway process): ${escapes.since(escapesBefore).join('; ')}`);
      if (up.parseErrors.length) report.problems.push(`${where}: the upstream could not frame what the gateway sent: ${up.parseErrors.join('; ')}`);
    }
  }
  if (hangs >= 5) report.problems.push(`${name}: stopped after 5 connections the gateway held open`);
  return report;
}

/** Problems grouped by kind (offsets and numbers folded), each with a count and where it first happened. */
function summarize(problems: string[]): string {
  const kinds = new Map<string, { n: number; first: string }>();
  for (const p of problems) {
    const colon = p.indexOf(': ');
    const where = p.slice(0, colon);
    const kind = p
      .slice(colon + 2)
      .replace(/\/tmp\/[^ )]*|\/work\/[^ )]*/g, '<path>')
      .replace(/\b\d+\b/g, '#')
      .replace(/\[\{.*$/, '[...]')
      .slice(0, 200);
    const k = kinds.get(kind);
    if (k) k.n++;
    else kinds.set(kind, { n: 1, first: where });
  }
  return [...kinds].map(([kind, { n, first }]) => `  ${n} x ${kind} (first: ${first})`).join('\n');
}

function assertClean(report: CutReport): void {
  assert.ok(report.cuts > 0);
  assert.deepEqual(
    report.problems.slice(0, 15),
    [],
    `${report.problems.length} problem(s) in ${report.cuts} cuts${report.problems.length > 15 ? ' (first 15 shown)' : ''}; by kind:\n${summarize(report.problems)}`,
  );
}

async function gatewaySocketsBackToZero(): Promise<void> {
  try {
    await waitFor(() => serverSocketsOn(port) === 0, 5000);
  } catch {
    assert.fail(`the gateway still holds ${serverSocketsOn(port)} client socket(s) 5 s after every client left`);
  }
}

const GET = b(`GET /cut/get?q=1 HTTP/1.1\r\n${H}User-Agent: cutter\r\nAccept: */*\r\n\r\n`);
const POST_BODY = 'p'.repeat(100) + 'q'.repeat(100) + 'r'.repeat(100);
const POST_HEAD = `POST /cut/post HTTP/1.1\r\n${H}Content-Type: text/plain\r\nContent-Length: ${POST_BODY.length}\r\n\r\n`;
const POST = b(POST_HEAD + POST_BODY);
const CHUNKED = b(`POST /cut/chunked HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n5;name=val\r\nhello\r\n6;q="a b"\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n`);
const PIPE = [
  `GET /cut/p1 HTTP/1.1\r\n${H}\r\n`,
  `POST /cut/p2 HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello`,
  `POST /cut/p3 HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n`,
];
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const UPGRADE = b(`GET /cut/ws HTTP/1.1\r\n${H}Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
const EXPECT_BODY = '0123456789';
const EXPECT_HEAD = `POST /cut/expect HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: ${EXPECT_BODY.length}\r\n\r\n`;

describe('clients that vanish at every byte of a request', () => {
  it('a GET', async () => {
    const r = await cutMatrix('GET', GET, [{ method: 'GET', url: '/cut/get?q=1', body: '' }], { fin: offsets(GET.length), rst: offsets(GET.length, { everyUpTo: 0, step: 5 }) });
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('a POST with a content-length body (every head byte, body sampled)', async () => {
    const headLen = POST_HEAD.length;
    const r = await cutMatrix('POST content-length', POST, [{ method: 'POST', url: '/cut/post', body: POST_BODY }], {
      fin: offsets(POST.length, { everyUpTo: headLen + 2, step: 9 }),
      rst: offsets(POST.length, { everyUpTo: 0, step: 11 }),
    });
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('a chunked POST with chunk extensions and trailers (cut in size lines, data, extensions and trailers)', async () => {
    const r = await cutMatrix('POST chunked', CHUNKED, [{ method: 'POST', url: '/cut/chunked', body: 'hello world' }], {
      fin: offsets(CHUNKED.length),
      rst: offsets(CHUNKED.length, { everyUpTo: 0, step: 6 }),
    });
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('three pipelined requests (GET, content-length POST, chunked POST) in one stream', async () => {
    const bytes = b(PIPE.join(''));
    const r = await cutMatrix(
      'pipelined',
      bytes,
      [
        { method: 'GET', url: '/cut/p1', body: '' },
        { method: 'POST', url: '/cut/p2', body: 'hello' },
        { method: 'POST', url: '/cut/p3', body: 'abc' },
      ],
      { fin: offsets(bytes.length), rst: offsets(bytes.length, { everyUpTo: 0, step: 9 }) },
    );
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('five complete pipelined POSTs (every declared byte sent) followed at once by FIN, then by RST', async () => {
    const posts = Array.from({ length: 5 }, (_, i) => `POST /cut/five${i} HTTP/1.1\r\n${H}Content-Length: 6\r\n\r\nbody-${i}`);
    const bytes = b(posts.join(''));
    const want = posts.map((_, i) => ({ method: 'POST', url: `/cut/five${i}`, body: `body-${i}` }));
    const r = await cutMatrix('five POSTs', bytes, want, { fin: [bytes.length], rst: [bytes.length] });
    // Repeated: the race between the FIN/RST and the responses lands differently each time.
    for (let i = 0; i < 20; i++) {
      const again = await cutMatrix(`five POSTs #${i}`, bytes, want, { fin: [bytes.length], rst: [bytes.length] });
      r.problems.push(...again.problems);
      r.cuts += again.cuts;
    }
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('Expect: 100-continue, cut before the 100 (every byte of the head)', async () => {
    const bytes = b(EXPECT_HEAD + EXPECT_BODY);
    const headLen = EXPECT_HEAD.length;
    const r = await cutMatrix('expect, before 100', bytes, [{ method: 'POST', url: '/cut/expect', body: EXPECT_BODY }], {
      fin: offsets(headLen),
      rst: offsets(headLen, { everyUpTo: 0, step: 5 }),
    });
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('Expect: 100-continue, cut after the 100 arrived (at every byte of the body)', async () => {
    const body = b(EXPECT_BODY);
    const setup = {
      sent: b(EXPECT_HEAD),
      async run(sock: net.Socket): Promise<void> {
        const got = waitForBytes(sock, /^HTTP\/1\.1 100 [^\r\n]*\r\n\r\n/, 3000);
        sock.write(EXPECT_HEAD);
        await got;
      },
    };
    const r = await cutMatrix('expect, after 100', body, [{ method: 'POST', url: '/cut/expect', body: EXPECT_BODY }], { fin: offsets(body.length), rst: offsets(body.length) }, setup);
    assertClean(r);
    await gatewaySocketsBackToZero();
  });

  it('an Upgrade: websocket request, cut at every byte, and an open tunnel cut from the client side', async () => {
    const r = await cutMatrix('upgrade', UPGRADE, [{ method: 'GET', url: '/cut/ws', body: '' }], {
      fin: offsets(UPGRADE.length),
      rst: offsets(UPGRADE.length, { everyUpTo: 0, step: 7 }),
    });
    // A tunnel that was set up and then cut: the upstream side closes too.
    for (const how of ['fin', 'rst'] as const) {
      for (let i = 0; i < 2; i++) {
        const tunnelsBefore = up.tunnels;
        const sock = await connect(port);
        sock.on('error', () => undefined);
        const got = waitForBytes(sock, /^HTTP\/1\.1 101 [^]*\r\n\r\n/, 3000).catch((e: Error) => e);
        sock.write(UPGRADE);
        const head = await got;
        if (head instanceof Error) r.problems.push(`tunnel ${how}: no 101: ${head.message}`);
        const escapesBefore = escapes.errors.length;
        sock.write(b('\x81\x02hi'));
        await sleep(5);
        if (how === 'fin') {
          sock.end();
          if (!(await closedWithin(sock, CLOSE_WITHIN_MS))) {
            r.problems.push(`tunnel FIN: the gateway did not close the client side`);
            sock.destroy();
          }
        } else sock.resetAndDestroy();
        try {
          await waitFor(() => up.tunnels <= tunnelsBefore, 2000, 5);
        } catch {
          r.problems.push(`open tunnel cut by ${how.toUpperCase()}: the upstream side of the tunnel is still open 2 s after the client left`);
        }
        if (escapes.errors.length > escapesBefore) r.problems.push(`open tunnel cut by ${how.toUpperCase()}: an error escaped to the process: ${escapes.since(escapesBefore).join('; ')}`);
      }
    }
    assertClean(r);
    await gatewaySocketsBackToZero();
  });
});

// ---------- the response side ----------

describe('upstreams that vanish at every byte of a response', () => {
  for (const kind of Object.keys(RESPONSES)) {
    it(`${kind} response: 502 before the head is complete, a broken connection after it, never a complete-looking response`, async () => {
      const whole = RESPONSES[kind]!;
      const headLen = whole.indexOf('\r\n\r\n') + 4;
      const problems: string[] = [];
      const mark = escapes.errors.length;
      const plan: Array<{ at: number; how: 'fin' | 'rst' }> = [];
      for (let at = 0; at <= whole.length; at++) plan.push({ at, how: 'fin' });
      for (let at = 0; at < whole.length; at += 5) plan.push({ at, how: 'rst' });
      for (const { at, how } of plan) {
        cutUp.clear();
        totalCuts++;
        const escapesBefore = escapes.errors.length;
        const where = `${kind} response cut at ${at}/${whole.length} (head ${headLen}) by ${how.toUpperCase()}`;
        // Keep-alive: a broken response must close the client's connection by itself.
        const r = await sendRaw(port, `GET /rcut?kind=${kind}&at=${at}&how=${how} HTTP/1.1\r\n${H}\r\n`, { settleMs: 0, timeoutMs: 3000 });
        const fr = toResponses(r.raw, r.closed);
        const first = fr.responses[0];
        const text = JSON.stringify(r.raw.toString('latin1').slice(0, 200));
        if (at === whole.length) {
          if (!(first?.status === 200 && first.complete)) problems.push(`${where}: the whole response did not arrive whole: ${text}`);
        } else if (at < headLen) {
          if (!(first?.status === 502 && first.complete)) problems.push(`${where}: expected a 502, got ${text}${r.closed ? ' then close' : ''}`);
        } else if (first?.status === 502 && first.complete) {
          // The head arrived upstream but the gateway had not committed it yet: a 502 is right.
        } else if (!first || first.status !== 200) problems.push(`${where}: expected the head (200) then a broken connection, or a 502; got ${text}`);
        else if (first.complete) problems.push(`${where}: the client got a response that looks complete from a response cut short: ${text}`);
        else if (!r.closed) problems.push(`${where}: the client connection stayed open under a broken response`);
        if (cutUp.requests.length !== 1) problems.push(`${where}: the upstream got ${cutUp.requests.length} attempts (no retry policy: 1)`);
        const p = await probeGet(port, PROBE, HOST);
        if (p.finals[0]?.status !== 200) problems.push(`${where}: the next request got ${p.finals[0]?.status ?? 'nothing'}`);
        if (escapes.errors.length > escapesBefore) problems.push(`${where}: an error escaped to the process: ${escapes.since(escapesBefore).join('; ')}`);
      }
      assert.deepEqual(problems.slice(0, 15), [], `${problems.length} problem(s) in ${plan.length} cuts; by kind:\n${summarize(problems)}`);
      assert.deepEqual(escapes.since(mark), [], 'no error escaped to the process');
      await gatewaySocketsBackToZero();
    });
  }
});

describe('after the matrix', () => {
  it('the gateway holds no client socket, few upstream sockets, and its heap is back within the slack', async () => {
    await gatewaySocketsBackToZero();
    const pooled = clientSocketsTo(up.port) + clientSocketsTo(cutUp.port);
    const heapAfter = heapNow();
    const growth = heapAfter - heapBefore;
    console.log(`MEASURE: cut-matrix heap before ${(heapBefore / 1048576).toFixed(1)} MiB, after ${(heapAfter / 1048576).toFixed(1)} MiB, growth ${(growth / 1024).toFixed(0)} KiB over ${totalCuts} cut connections, ${(growth / Math.max(1, totalCuts)).toFixed(0)} B per cut (slack ${HEAP_SLACK / 1024} KiB)`);
    console.log(`MEASURE: cut-matrix gateway sockets: ${serverSocketsOn(port)} client-side, ${pooled} to upstreams (pooled); upstream connections accepted: ${up.connections} + ${cutUp.connections}`);
    assert.ok(pooled <= 16, `at most a few idle pooled upstream connections remain, not one per cut: ${pooled}`);
    assert.ok(growth < HEAP_SLACK, `heap grew ${(growth / 1048576).toFixed(1)} MiB over the matrix`);
    console.log(`MEASURE: cut-matrix errors that escaped to the process over the whole file: ${escapes.errors.length}`);
    assert.equal(escapes.errors.length, 0, `errors escaped to the process: ${escapes.since(0).slice(0, 3).join('; ')}`);
  });
});
