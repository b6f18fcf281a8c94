// A gRPC upstream that ends a call with a grpc-status no client can use: not a
// number (`abc`), out of gRPC's range (17, 99, -1), or none at all (trailers
// without it, no trailers, a trailers-only response without it). The gateway
// hands the client a valid status instead: UNKNOWN for a status it cannot
// parse ("error parsing returned status" in gRPC's status code table), and for
// a missing one gRPC's HTTP-to-gRPC mapping (UNKNOWN for a 200, UNAVAILABLE for
// a 503), with a grpc-message saying what happened. Valid statuses, messages
// and other trailers pass unchanged. The upstream is a raw node:http2 server;
// the client a real @grpc/grpc-js client, and a raw http2 client to read the
// trailers on the wire.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway } from '../../helpers/gateway.js';
import { echoClient, unary, type EchoClientT } from '../grpc/helpers.js';

/** One gRPC message frame with a JSON body. */
function frame(v: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(v));
  const f = Buffer.alloc(5 + body.length);
  f.writeUInt32BE(body.length, 1);
  body.copy(f, 5);
  return f;
}

const GRPC_HEADERS = { ':status': 200, 'content-type': 'application/grpc' };

/** How the raw upstream ends the call, by the x-case metadata. */
function answer(stream: http2.ServerHttp2Stream, c: string): void {
  const withTrailers = (t: http2.OutgoingHttpHeaders): void => {
    stream.respond(GRPC_HEADERS, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers(t));
    stream.end(frame({ msg: 'hi' }));
  };
  switch (c) {
    case 'ok':
      return withTrailers({ 'grpc-status': '0' });
    case 'denied':
      return withTrailers({ 'grpc-status': '7', 'grpc-message': 'nope', 'x-keep': 'yes' });
    case 'abc':
      return withTrailers({ 'grpc-status': 'abc', 'grpc-message': 'bad', 'x-keep': 'yes' });
    case '17':
    case '99':
    case '-1':
      return withTrailers({ 'grpc-status': c });
    case 'missing':
      return withTrailers({ 'x-keep': 'yes' });
    case 'no-trailers':
      stream.respond(GRPC_HEADERS);
      stream.end(frame({ msg: 'hi' }));
      return;
    case 'only-abc':
      stream.respond({ ...GRPC_HEADERS, 'grpc-status': 'abc' }, { endStream: true });
      return;
    case 'only-missing':
      stream.respond(GRPC_HEADERS, { endStream: true });
      return;
    case 'only-503-missing':
      stream.respond({ ':status': 503, 'content-type': 'application/grpc' }, { endStream: true });
      return;
    case 'only-5':
      stream.respond({ ...GRPC_HEADERS, 'grpc-status': '5', 'grpc-message': 'not here' }, { endStream: true });
      return;
  }
  stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
}

describe('gRPC calls the upstream ends with a malformed or missing grpc-status', () => {
  let gw: Gateway;
  let up: http2.Http2Server;
  let client: EchoClientT;

  before(async () => {
    up = http2.createServer();
    up.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      // Read the request to its end, then answer as the case says.
      stream.on('data', () => undefined);
      stream.on('end', () => answer(stream, String(headers['x-case'])));
    });
    await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
    const port = (up.address() as AddressInfo).port;
    gw = await startGateway({
      registries: [{ name: 'g', type: 'static', endpoints: [`127.0.0.1:${port}`] }],
      services: { 'g.static': { protocol: 'grpc', timeoutMs: 5_000 } },
      routes: [{ name: 'g', match: { path: { prefix: '/' } }, backends: [{ service: 'g.static' }] }],
    });
    client = echoClient(gw.listenerUrl());
  });

  after(async () => {
    client?.close();
    await gw?.stop();
    await new Promise<void>((r) => up.close(() => r()));
  });

  const call = (c: string): ReturnType<typeof unary> => {
    const md = new grpc.Metadata();
    md.set('x-case', c);
    return unary(client, { msg: 'x' }, md);
  };

  it('(control) a valid OK and a valid error pass unchanged, with their message and trailers', async () => {
    const ok = await call('ok');
    assert.equal(ok.status?.code, grpc.status.OK);
    assert.deepEqual(ok.res, { msg: 'hi' });
    const denied = await call('denied');
    assert.equal(denied.status?.code, grpc.status.PERMISSION_DENIED);
    assert.equal(denied.status?.details, 'nope');
    assert.deepEqual(denied.status?.metadata.get('x-keep'), ['yes']);
    const only5 = await call('only-5');
    assert.equal(only5.status?.code, grpc.status.NOT_FOUND);
    assert.equal(only5.status?.details, 'not here');
  });

  for (const c of ['abc', '17', '99', '-1']) {
    it(`grpc-status: ${c} in the trailers reaches the client as UNKNOWN`, async () => {
      const r = await call(c);
      assert.equal(r.status?.code, grpc.status.UNKNOWN, `client saw code ${r.status?.code}`);
      assert.equal(r.err?.code, grpc.status.UNKNOWN);
      assert.match(r.status!.details, /invalid grpc-status/);
    });
  }

  it('the other trailers stay when the status is repaired', async () => {
    const r = await call('abc');
    assert.deepEqual(r.status?.metadata.get('x-keep'), ['yes']);
  });

  it('trailers without grpc-status: UNKNOWN, saying the status was missing', async () => {
    const r = await call('missing');
    assert.equal(r.status?.code, grpc.status.UNKNOWN);
    assert.match(r.status!.details, /without grpc-status/);
    assert.deepEqual(r.status?.metadata.get('x-keep'), ['yes']);
  });

  it('a response that ends with no trailers at all: UNKNOWN, saying the status was missing', async () => {
    const r = await call('no-trailers');
    assert.equal(r.status?.code, grpc.status.UNKNOWN);
    assert.match(r.status!.details, /without grpc-status/);
  });

  it('trailers-only with grpc-status: abc: UNKNOWN', async () => {
    const r = await call('only-abc');
    assert.equal(r.status?.code, grpc.status.UNKNOWN, `client saw code ${r.status?.code}`);
    assert.match(r.status!.details, /invalid grpc-status/);
  });

  it('trailers-only without grpc-status: UNKNOWN for a 200, UNAVAILABLE for a 503', async () => {
    const a = await call('only-missing');
    assert.equal(a.status?.code, grpc.status.UNKNOWN);
    assert.match(a.status!.details, /without grpc-status/);
    const b = await call('only-503-missing');
    assert.equal(b.status?.code, grpc.status.UNAVAILABLE);
    assert.match(b.status!.details, /without grpc-status/);
  });

  it('on the wire: the trailers the client gets carry a valid grpc-status', async () => {
    const session = http2.connect(gw.listenerUrl());
    session.on('error', () => undefined);
    try {
      for (const [c, want] of [
        ['abc', '2'],
        ['17', '2'],
        ['missing', '2'],
        ['no-trailers', '2'],
        ['ok', '0'],
      ] as const) {
        const got = await new Promise<{ trailers?: http2.IncomingHttpHeaders }>((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers', 'x-case': c });
          let trailers: http2.IncomingHttpHeaders | undefined;
          req.on('trailers', (t) => (trailers = t));
          req.on('data', () => undefined);
          req.on('error', reject);
          req.on('close', () => resolve({ trailers }));
          req.end(frame({ msg: 'x' }));
        });
        assert.equal(got.trailers?.['grpc-status'], want, `case ${c}: trailers ${JSON.stringify(got.trailers)}`);
      }
    } finally {
      session.close();
    }
  });
});
