// gRPC through meshgate with real @grpc/grpc-js clients and servers: every
// call kind, metadata (text and -bin) both ways, trailers and trailers-only
// responses, deadlines (enforced here and passed on), cancellation, and the
// gRPC statuses of gateway errors (unreachable upstream, no route).
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { REFUSED_PORT } from '../../helpers/upstream.js';
import { echoClient, startEchoServer, unary, type EchoClientT, type EchoServer } from './helpers.js';

/** One gRPC message frame with a JSON body. */
function frame(v: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(v));
  const f = Buffer.alloc(5 + body.length);
  f.writeUInt32BE(body.length, 1);
  body.copy(f, 5);
  return f;
}

describe('gRPC proxy', () => {
  let gw: Gateway;
  let up: EchoServer;
  let client: EchoClientT;
  let deadPort: number;

  before(async () => {
    up = await startEchoServer('e1');
    deadPort = REFUSED_PORT;
    gw = await startGateway({
      registries: [
        { name: 'echo', type: 'static', endpoints: [up.address] },
        { name: 'tri', type: 'static', endpoints: [`${up.address} protocol=tri`] },
        { name: 'dead', type: 'static', endpoints: [`127.0.0.1:${deadPort}`] },
      ],
      services: {
        'echo.static': { protocol: 'grpc', timeoutMs: 10_000 },
        'dead.static': { protocol: 'grpc' },
      },
      routes: [
        { name: 'tri', match: { path: { prefix: '/test.Echo/' }, headers: { 'x-via': { exact: 'tri' } } }, backends: [{ service: 'tri.static' }] },
        { name: 'dead', match: { path: { prefix: '/test.Echo/' }, headers: { 'x-via': { exact: 'dead' } } }, backends: [{ service: 'dead.static' }] },
        { name: 'echo', match: { path: { prefix: '/test.Echo/' } }, backends: [{ service: 'echo.static' }] },
      ],
    });
    client = echoClient(gw.listenerUrl('public'));
  });

  after(async () => {
    client?.close();
    await gw?.stop();
    await up?.close();
  });

  it('unary: the response, metadata both ways (text and -bin) and trailers pass unchanged', async () => {
    const md = new grpc.Metadata();
    md.set('x-user', 'alice');
    md.set('x-blob-bin', Buffer.from([0, 255, 10, 13]));
    const r = await unary(client, { msg: 'hello' }, md);
    assert.equal(r.err, undefined);
    assert.equal(r.res.msg, 'hello');
    assert.equal(r.res.metadata['x-user'], 'alice');
    assert.equal(r.res.metadata['x-blob-bin'], `bin:${Buffer.from([0, 255, 10, 13]).toString('base64')}`);
    // initial metadata from the server
    assert.equal(r.head!.get('x-served-by')[0], 'e1');
    assert.deepEqual(r.head!.get('x-head-bin')[0], Buffer.from([0, 1, 2, 255]));
    // trailers
    assert.equal(r.status!.code, grpc.status.OK);
    assert.equal(r.status!.metadata.get('x-trailer')[0], 'from-e1');
    assert.deepEqual(r.status!.metadata.get('x-trailer-bin')[0], Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  });

  it('an error status answered trailers-only keeps its code, message and metadata', async () => {
    const r = await unary(client, { fail: { code: grpc.status.NOT_FOUND, details: 'no such order: 42 ✓' } });
    assert.equal(r.err?.code, grpc.status.NOT_FOUND);
    assert.equal(r.err?.details, 'no such order: 42 ✓');
    assert.equal(r.status!.metadata.get('x-error-detail')[0], 'detail');
    assert.deepEqual(r.status!.metadata.get('x-error-bin')[0], Buffer.from([1, 2, 3]));

    // On the wire: one HEADERS frame with END_STREAM carrying grpc-status.
    const s = http2.connect(gw.listenerUrl('public'));
    try {
      const st = s.request({ ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' });
      st.end(frame({ fail: { code: 5, details: 'x' } }));
      const [headers, flags] = await new Promise<[http2.IncomingHttpHeaders, number]>((resolve) => st.once('response', (h, f) => resolve([h, f])));
      assert.equal(headers['grpc-status'], '5');
      assert.ok(flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 'trailers-only response ends the stream with its HEADERS frame');
    } finally {
      s.close();
    }
  });

  it('server streaming: every message in order, then the trailers', async () => {
    const got: number[] = [];
    const status = await new Promise<grpc.StatusObject>((resolve, reject) => {
      const call = client.serverStream({ count: 200, size: 100 });
      call.on('data', (m: { i: number }) => got.push(m.i));
      call.on('status', resolve);
      call.on('error', (e: Error) => reject(e));
    });
    assert.equal(status.code, grpc.status.OK);
    assert.equal(got.length, 200);
    assert.deepEqual(got, [...Array(200).keys()]);
    assert.equal(status.metadata.get('x-trailer')[0], 'from-e1');
  });

  it('client streaming: all messages reach the server, one response comes back', async () => {
    const res = await new Promise<any>((resolve, reject) => {
      const call = client.clientStream((err: Error | null, r: any) => (err ? reject(err) : resolve(r)));
      for (let i = 0; i < 25; i++) call.write({ msg: `m${i}` });
      call.end();
    });
    assert.equal(res.count, 25);
    assert.equal(res.joined, [...Array(25).keys()].map((i) => `m${i}`).join(','));
  });

  it('client streaming: an upstream that answers before the client finished ends the call with its status', async () => {
    const err = await new Promise<grpc.ServiceError>((resolve, reject) => {
      const call = client.clientStream((e: grpc.ServiceError | null) => (e ? resolve(e) : reject(new Error('expected an error'))));
      call.write({ msg: 'first', fail: { code: grpc.status.FAILED_PRECONDITION, details: 'stop here' } });
      // The client keeps streaming for a while; the answer must not wait for it.
      let n = 0;
      const t = setInterval(() => {
        if (++n > 50) {
          clearInterval(t);
          call.end();
        } else call.write({ msg: `more${n}` });
      }, 20);
      call.on('status', () => clearInterval(t));
    });
    assert.equal(err.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(err.details, 'stop here');
  });

  it('bidi streaming: request and response messages interleave (nothing is buffered)', async () => {
    const call = client.bidi();
    const replies: any[] = [];
    let wake: (() => void) | undefined;
    call.on('data', (m: any) => {
      replies.push(m);
      wake?.();
    });
    for (let i = 0; i < 10; i++) {
      call.write({ msg: `ping${i}` });
      // The reply to each message must arrive before the next one is sent.
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no reply to ping${i}`)), 10_000);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
        if (replies.length > i) wake();
      });
      assert.equal(replies[i].echo, `ping${i}`);
    }
    const status = await new Promise<grpc.StatusObject>((resolve) => {
      call.on('status', resolve);
      call.end();
    });
    assert.equal(status.code, grpc.status.OK);
    assert.equal(status.metadata.get('x-trailer')[0], 'from-e1');
  });

  it('grpc-timeout is passed on (what is left of it) and the upstream call is cancelled when it expires', async () => {
    const md = new grpc.Metadata();
    md.set('x-test-id', 'deadline-1');
    const r = await unary(client, { msg: 'slow', sleepMs: 5_000 }, md, { deadline: Date.now() + 1_500 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
    const seen = up.deadlines.get('deadline-1');
    assert.ok(seen !== undefined && seen > 0 && seen <= 1_500, `upstream saw a deadline of ${seen} ms`);
    await waitFor(() => up.cancelled.has('deadline-1'));
  });

  it('the gateway itself enforces grpc-timeout: DEADLINE_EXCEEDED for a client that does not', async () => {
    const s = http2.connect(gw.listenerUrl('public'));
    try {
      const started = Date.now();
      const st = s.request({ ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m', 'x-test-id': 'deadline-2' });
      st.end(frame({ msg: 'slow', sleepMs: 8_000 }));
      const status = await new Promise<string | undefined>((resolve, reject) => {
        let st0: string | undefined;
        st.on('response', (h) => (st0 = h['grpc-status'] as string | undefined));
        st.on('trailers', (t) => (st0 = t['grpc-status'] as string | undefined));
        st.on('end', () => resolve(st0));
        st.on('error', reject);
        st.resume();
      });
      assert.equal(status, String(grpc.status.DEADLINE_EXCEEDED));
      assert.ok(Date.now() - started < 7_000, 'answered at the deadline, not when the upstream finished');
      await waitFor(() => up.cancelled.has('deadline-2'));
    } finally {
      s.close();
    }
  });

  it('a client that cancels a call cancels it upstream', async () => {
    const md = new grpc.Metadata();
    md.set('x-test-id', 'cancel-1');
    const call = client.serverStream({ count: 1_000, delayMs: 20 }, md);
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    call.on('error', () => undefined);
    call.cancel();
    await waitFor(() => up.cancelled.has('cancel-1'));
  });

  it('an unreachable upstream answers UNAVAILABLE (trailers-only), not an HTTP error', async () => {
    const md = new grpc.Metadata();
    md.set('x-via', 'dead');
    const r = await unary(client, { msg: 'x' }, md);
    assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(r.status!.metadata.get('x-meshgate-flag')[0], 'UF');
  });

  it('a method no route matches answers UNIMPLEMENTED', async () => {
    const other = new (grpc.makeGenericClientConstructor(
      {
        m: {
          path: '/other.Service/Method',
          requestStream: false,
          responseStream: false,
          requestSerialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (v: Buffer) => v,
          responseDeserialize: (b: Buffer) => b,
        },
      },
      'Other',
    ))(gw.listenerUrl('public').slice(7), grpc.credentials.createInsecure(), { 'grpc.enable_http_proxy': 0 }) as any;
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) => other.m({}, (e: grpc.ServiceError) => resolve(e)));
      assert.equal(err.code, grpc.status.UNIMPLEMENTED);
    } finally {
      other.close();
    }
  });

  it('instances registered with protocol=tri (Dubbo Triple) are called over gRPC', async () => {
    const md = new grpc.Metadata();
    md.set('x-via', 'tri');
    const r = await unary(client, { msg: 'triple' }, md);
    assert.equal(r.err, undefined);
    assert.equal(r.res.msg, 'triple');
    assert.equal(r.res.metadata['x-via'], 'tri');
  });
});
