// A client may vanish at any byte of a request body. Each client behaviour
// below once ended the gateway process with an unhandled 'error' ("request
// aborted") on a request-body stream. Every case runs against a running
// gateway, over raw node:net sockets, closed with FIN and with RST, towards
// an HTTP/1.1 upstream and an HTTP/2 upstream; after each the same gateway
// (in this process: an unhandled 'error' fails the file) must still answer a
// normal request. An h2c client resetting its stream mid-body is covered too.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { addAbortSignal } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { orderService } from '../../doubles/dubbo/order-service.js';
import { DubboProviderDouble } from '../../doubles/dubbo/provider.js';
import { startGateway } from '../../helpers/gateway.js';
import { dubboRoute } from '../dubbo/routes.js';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.js';

type Close = 'fin' | 'rst';

interface Counters {
  /** Request heads the upstream saw. */
  heads: number;
  /** Body bytes the upstream read. */
  bodyBytes: number;
  /** Paths of the requests whose body reached the upstream complete. */
  complete: Set<string>;
}

let cutSeq = 0;
/** A path of its own for one cut request. */
const cutPath = (prefix: string): string => `${prefix}/cut-${++cutSeq}`;

/** A body the client cut must never reach the upstream looking complete. */
function neverComplete(c: Counters, path: string): void {
  assert.ok(!c.complete.has(path), `the upstream got the cut body of ${path} as a complete request`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A raw client: connect, then the steps, then close the way asked and wait for the socket to be gone. */
async function raw(port: number, steps: (s: Socket, received: () => string) => Promise<void>, how: Close): Promise<string> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => undefined);
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString('latin1')));
  await new Promise<void>((r, j) => {
    s.once('connect', () => r());
    s.once('error', j);
  });
  await steps(s, () => got);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  if (how === 'fin') s.end();
  else s.resetAndDestroy();
  await closed;
  return got;
}

/**
 * Errors nobody handled, in this process (where the gateway runs): each one
 * would have ended a gateway process. node:test fails the file on them too;
 * recording them here names the case that caused one.
 */
const unhandled: Error[] = [];
process.on('uncaughtException', (e) => unhandled.push(e));

/** The gateway still serves: nothing went unhandled, and a plain GET through it gets its 200. */
async function stillServes(gw: Gateway, path: string): Promise<void> {
  // Give a deferred 'error' from the abort time to surface first.
  await sleep(100);
  const errors = unhandled.splice(0);
  assert.deepEqual(
    errors.map((e) => `${e.name}: ${e.message}${process.env.ABORT_TEST_STACKS ? `\n${e.stack}` : ''}`),
    [],
    'no error went unhandled in the gateway process',
  );
  const r = await fetch(`${gw.listenerUrl()}${path}`);
  assert.equal(r.status, 200, `a request after the abort gets 200 (got ${r.status})`);
  await r.arrayBuffer();
}

describe('request bodies cut by the client: the gateway keeps serving', () => {
  let gw: Gateway;
  let h1up: TestUpstream;
  let h2up: http2.Http2Server;
  let dubbo: DubboProviderDouble;
  const h1c: Counters = { heads: 0, bodyBytes: 0, complete: new Set() };
  const h2c: Counters = { heads: 0, bodyBytes: 0, complete: new Set() };

  before(async () => {
    h1up = await startUpstream((req, res) => {
      h1c.heads++;
      req.on('data', (c: Buffer) => (h1c.bodyBytes += c.length));
      req.on('error', () => undefined);
      req.on('end', () => {
        h1c.complete.add(req.url!);
        res.end('ok');
      });
    });
    h2up = http2.createServer();
    h2up.on('stream', (stream, headers) => {
      h2c.heads++;
      stream.on('error', () => undefined);
      stream.on('data', (c: Buffer) => (h2c.bodyBytes += c.length));
      // node:http2 also ends a stream's readable side when RST_STREAM comes (and says
      // so only later): a body was complete when the stream then closes without an error code.
      let ended = false;
      stream.on('close', () => {
        if (ended && stream.rstCode === http2.constants.NGHTTP2_NO_ERROR) h2c.complete.add(String(headers[':path']));
      });
      stream.on('end', () => {
        ended = true;
        if (!stream.destroyed) {
          stream.respond({ ':status': 200 });
          stream.end('ok');
        }
      });
    });
    await new Promise<void>((r) => h2up.listen(0, '127.0.0.1', () => r()));
    const h2port = (h2up.address() as AddressInfo).port;
    dubbo = await DubboProviderDouble.start({ services: [orderService()] });
    gw = await startGateway({
      registries: [
        { name: 'h1', type: 'static', endpoints: [h1up.address] },
        { name: 'h2', type: 'static', endpoints: [`127.0.0.1:${h2port}`] },
        { name: 'dubbo', type: 'static', endpoints: [dubbo.address] },
      ],
      services: {
        'h1.static': { timeoutMs: 5_000 },
        'h2.static': { protocol: 'http2', timeoutMs: 5_000 },
      },
      routes: [
        dubboRoute('orders', '/orders', 'dubbo.static'),
        { name: 'h2', match: { path: { prefix: '/h2' } }, backends: [{ service: 'h2.static' }] },
        { name: 'h1', match: { path: { prefix: '/' } }, backends: [{ service: 'h1.static' }] },
      ],
    });
  });

  after(async () => {
    await gw?.stop();
    await dubbo?.stop();
    await h1up?.close();
    await new Promise<void>((r) => h2up.close(() => r()));
  });

  const port = (): number => Number(new URL(gw.listenerUrl()).port);

  it('(the check itself) a body sent whole is seen whole by both upstreams', async () => {
    for (const [prefix, counters] of [
      ['/h1', h1c],
      ['/h2', h2c],
    ] as const) {
      const path = cutPath(prefix);
      const r = await fetch(`${gw.listenerUrl()}${path}`, { method: 'POST', body: '1234567890' });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      await until(`the upstream marking ${path} complete`, () => counters.complete.has(path));
    }
  });

  for (const [upName, prefix, counters] of [
    ['HTTP/1.1 upstream', '/h1', h1c],
    ['HTTP/2 upstream', '/h2', h2c],
  ] as const) {
    for (const how of ['fin', 'rst'] as const) {
      describe(`${upName}, client closes with ${how.toUpperCase()}`, () => {
        const head = (path: string, extra: string): string => `POST ${path} HTTP/1.1\r\nhost: t\r\n${extra}\r\n`;

        it('content-length 10, 5 bytes sent, closed at once', async () => {
          const path = cutPath(prefix);
          await raw(port(), async (s) => void s.write(`${head(path, 'content-length: 10\r\n')}12345`), how);
          await stillServes(gw, `${prefix}/after`);
          neverComplete(counters, path);
        });

        it('content-length 10, 5 bytes sent, closed while the body streams to the upstream', async () => {
          const path = cutPath(prefix);
          const before = counters.bodyBytes;
          await raw(
            port(),
            async (s) => {
              s.write(`${head(path, 'content-length: 10\r\n')}12345`);
              await until('the upstream reading the first body bytes', () => counters.bodyBytes >= before + 5);
            },
            how,
          );
          await stillServes(gw, `${prefix}/after`);
          neverComplete(counters, path);
        });

        for (const size of [5, 256 * 1024]) {
          const pipelined = (): string => {
            const body = 'x'.repeat(size);
            let all = '';
            for (let i = 0; i < 5; i++) all += `${head(`${prefix}/p${i}`, `content-length: ${size}\r\n`)}${body}`;
            return all;
          };
          it(`five complete pipelined POSTs of ${size} bytes, then closed at once`, async () => {
            await raw(port(), async (s) => void s.write(pipelined()), how);
            await stillServes(gw, `${prefix}/after`);
          });

          it(`five complete pipelined POSTs of ${size} bytes, closed once the first reached the upstream`, async () => {
            const before = counters.heads;
            await raw(
              port(),
              async (s) => {
                s.write(pipelined());
                await until('the upstream seeing the first request', () => counters.heads > before);
              },
              how,
            );
            await stillServes(gw, `${prefix}/after`);
          });
        }

        it('Expect: 100-continue, closed before the 100', async () => {
          const path = cutPath(prefix);
          await raw(port(), async (s) => void s.write(head(path, 'content-length: 10\r\nexpect: 100-continue\r\n')), how);
          await stillServes(gw, `${prefix}/after`);
          neverComplete(counters, path);
        });

        it('Expect: 100-continue, closed after the 100 with no body', async () => {
          const path = cutPath(prefix);
          await raw(
            port(),
            async (s, got) => {
              s.write(head(path, 'content-length: 10\r\nexpect: 100-continue\r\n'));
              await until('100 Continue', () => got().includes('100 Continue'));
            },
            how,
          );
          await stillServes(gw, `${prefix}/after`);
          neverComplete(counters, path);
        });

        it('Expect: 100-continue, closed after the 100 and half the body', async () => {
          const path = cutPath(prefix);
          const before = counters.bodyBytes;
          await raw(
            port(),
            async (s, got) => {
              s.write(head(path, 'content-length: 10\r\nexpect: 100-continue\r\n'));
              await until('100 Continue', () => got().includes('100 Continue'));
              s.write('12345');
              await until('the upstream reading the first body bytes', () => counters.bodyBytes >= before + 5);
            },
            how,
          );
          await stillServes(gw, `${prefix}/after`);
          neverComplete(counters, path);
        });

        for (const [where, bytes] of [
          ['mid-chunk', 'a\r\n12345'],
          ['in a chunk-size line', '5\r\nhello\r\n1'],
          ['in the trailers', '5\r\nhello\r\n0\r\nx-trailer: ye'],
        ] as const) {
          it(`chunked body cut ${where}`, async () => {
            const path = cutPath(prefix);
            const before = counters.bodyBytes;
            await raw(
              port(),
              async (s) => {
                s.write(head(path, 'transfer-encoding: chunked\r\n'));
                s.write(bytes);
                await until('the upstream reading the first body bytes', () => counters.bodyBytes > before);
              },
              how,
            );
            await stillServes(gw, `${prefix}/after`);
            neverComplete(counters, path);
          });
        }
      });
    }
  }

  describe('HTTP-to-Dubbo route (the route handler reads the body itself)', () => {
    const post = (extra: string): string => `POST /orders HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n${extra}\r\n`;
    const order = '{"id":1,"item":"book","quantity":2}';
    const calls = (): number => dubbo.calls.filter((c) => c.method === 'createOrder').length;

    it('(the check itself) a whole body reaches the provider', async () => {
      const before = calls();
      const r = await fetch(`${gw.listenerUrl()}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: order });
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      assert.equal(calls(), before + 1);
    });

    for (const how of ['fin', 'rst'] as const) {
      for (const [what, bytes] of [
        ['content-length body cut', `${post(`content-length: ${order.length}\r\n`)}${order.slice(0, 10)}`],
        ['chunked body cut mid-chunk', `${post('transfer-encoding: chunked\r\n')}${order.length.toString(16)}\r\n${order.slice(0, 10)}`],
        ['chunked body cut in the trailers', `${post('transfer-encoding: chunked\r\n')}${order.length.toString(16)}\r\n${order}\r\n0\r\nx-t: 1`],
        ['Expect: 100-continue, closed before the body', post(`content-length: ${order.length}\r\nexpect: 100-continue\r\n`)],
      ] as const) {
        it(`${what}, closed with ${how.toUpperCase()}: no call, the gateway keeps serving`, async () => {
          const before = calls();
          await raw(
            port(),
            async (s) => {
              s.write(bytes);
              await sleep(30);
            },
            how,
          );
          await stillServes(gw, '/h1/after');
          assert.equal(calls(), before, 'the provider got no call for a cut body');
        });
      }

      it(`a body over the handler's limit, cut after the limit, closed with ${how.toUpperCase()}`, async () => {
        const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
        await raw(
          port(),
          async (s, got) => {
            s.write(post(`content-length: ${big.length + 100}\r\n`));
            s.write(big);
            // The gateway answers 413 once past its limit; the client then leaves mid-body.
            await until('the 413', () => got().includes(' 413 '), 10_000).catch(() => undefined);
          },
          how,
        );
        await stillServes(gw, '/h1/after');
      });
    }
  });

  it('an h2c client resets its stream mid-body (HTTP/1.1 and HTTP/2 upstreams, with and without content-length)', async () => {
    for (const [prefix, counters, length] of [
      ['/h1', h1c, '10'],
      ['/h1', h1c, undefined],
      ['/h2', h2c, '10'],
      ['/h2', h2c, undefined],
    ] as const) {
      const session = http2.connect(gw.listenerUrl());
      session.on('error', () => undefined);
      const before = counters.bodyBytes;
      const path = cutPath(prefix);
      const req = session.request({ ':method': 'POST', ':path': path, ...(length ? { 'content-length': length } : {}) });
      req.on('error', () => undefined);
      req.write('12345');
      await until('the upstream reading the first body bytes', () => counters.bodyBytes >= before + 5);
      // RST_STREAM(CANCEL) alone. (close(CANCEL) would first end the body with END_STREAM:
      // a complete body, then a reset.)
      addAbortSignal(AbortSignal.abort(), req);
      await sleep(30);
      session.destroy();
      await stillServes(gw, `${prefix}/after`);
      neverComplete(counters, path);
    }
  });

  it('an h2c client sends half a body and the connection drops', async () => {
    for (const [prefix, counters] of [
      ['/h1', h1c],
      ['/h2', h2c],
    ] as const) {
      let sock: Socket | undefined;
      const session = http2.connect(gw.listenerUrl(), {
        createConnection: () => {
          sock = connect(port(), '127.0.0.1');
          return sock;
        },
      });
      session.on('error', () => undefined);
      const before = counters.bodyBytes;
      const path = cutPath(prefix);
      const req = session.request({ ':method': 'POST', ':path': path });
      req.on('error', () => undefined);
      req.write('12345');
      await until('the upstream reading the first body bytes', () => counters.bodyBytes >= before + 5);
      sock!.resetAndDestroy();
      await stillServes(gw, `${prefix}/after`);
      neverComplete(counters, path);
    }
  });
});
