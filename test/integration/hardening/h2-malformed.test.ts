// HTTP/2 requests that RFC 9113 8.2 / 8.3 calls malformed: the stream is
// reset with PROTOCOL_ERROR and nothing reaches the upstream, whether
// node:http2 would have refused the field itself or dropped it without a
// word. Frames are written by hand (test/integration/hardening/h2-wire.ts),
// since node's own client refuses to send these.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { CODE, dataFrame, headersFrame, headersFrameRaw, headerBlock, indexedField, literalField, RawH2, requestFields } from './h2-wire.js';
import { startRecordingUpstream, type RecordingUpstream } from './h2-upstream.js';

/** "a\rb" Huffman-coded with the codes of RFC 7541 Appendix B: a = 00011, CR = 0x3ffffffd (30 bits), b = 100011, then 7 padding ones. */
const HUFFMAN_A_CR_B = Buffer.from('1fffffffb1ff', 'hex');

function h2get(url: string, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on('error', reject);
    const req = session.request({ ':path': path, ...headers });
    let body = '';
    let status = 0;
    req.setEncoding('utf8');
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      session.close();
      resolve({ status, body });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP/2 malformed fields (RFC 9113 8.2)', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    up = await startRecordingUpstream();
    gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
    });
    port = Number(new URL(gw.listenerUrl('public')).port);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  const cases: Array<[string, Array<[string, string]>]> = [
    // node:http2 would drop these fields and forward the rest of the request
    ['CR in a value', [['x-a', 'a\rb']]],
    ['LF in a value', [['x-a', 'a\nb']]],
    ['NUL in a value', [['x-a', 'a\0b']]],
    ['CRLF and a second header line in a value', [['x-a', 'a\r\nx-injected: 1']]],
    ['another control character in a value', [['x-a', 'a\x01b']]],
    ['leading whitespace in a value', [['x-a', ' a']]],
    ['trailing whitespace in a value', [['x-a', 'a\t']]],
    ['a space in a name', [['x a', 'v']]],
    ['a colon inside a name', [['x:a', 'v']]],
    ['an empty name', [['', 'v']]],
    ['a Host that is not an authority', [['host', 'a b']]],
    // node:http2 refuses these itself
    ['an upper-case name', [['X-Up', 'v']]],
    ['connection', [['connection', 'close']]],
    ['keep-alive', [['keep-alive', 'timeout=5']]],
    ['proxy-connection', [['proxy-connection', 'keep-alive']]],
    ['transfer-encoding', [['transfer-encoding', 'chunked']]],
    ['upgrade', [['upgrade', 'websocket']]],
    ['te other than trailers', [['te', 'gzip']]],
  ];

  it('resets each with PROTOCOL_ERROR, forwards none of them, and keeps serving the connection', async () => {
    const c = await RawH2.connect(port);
    try {
      let id = 1;
      const codes: Record<string, number | undefined> = {};
      for (const [what, extra] of cases) {
        c.write(headersFrame(id, [...requestFields(`/bad/${id}`), ...extra], true));
        const o = await c.outcome(id);
        codes[what] = o.rst;
        id += 2;
      }
      assert.deepEqual(codes, Object.fromEntries(cases.map(([what]) => [what, CODE.PROTOCOL_ERROR])));
      // The same connection still serves a good request, and only that one reached the upstream.
      c.write(headersFrame(id, [...requestFields('/good'), ['te', 'trailers'], ['x-a', 'a\tb']], true));
      assert.deepEqual(await c.outcome(id), { status: 200 });
      assert.deepEqual(
        up.seen.map((r) => r.url),
        ['/good'],
      );
      assert.equal(up.seen[0]!.headers['x-a'], 'a\tb');
    } finally {
      c.close();
      up.seen.length = 0;
    }
  });

  it('finds a CR in a Huffman-coded value, and in a bad field the client put in the dynamic table and refers to later', async () => {
    const c = await RawH2.connect(port);
    try {
      const pseudo = (path: string): Buffer => headerBlock(requestFields(path));
      c.write(headersFrameRaw(1, Buffer.concat([pseudo('/huffman'), literalField('x-a', { huffman: HUFFMAN_A_CR_B })]), true));
      assert.equal((await c.outcome(1)).rst, CODE.PROTOCOL_ERROR);
      // The field enters the server's dynamic table (index 62) ...
      c.write(headersFrameRaw(3, Buffer.concat([pseudo('/insert'), literalField('x-b', 'a\nb', true)]), true));
      assert.equal((await c.outcome(3)).rst, CODE.PROTOCOL_ERROR);
      // ... and a later request that only refers to it by index is malformed too.
      c.write(headersFrameRaw(5, Buffer.concat([pseudo('/indexed'), indexedField(62)]), true));
      assert.equal((await c.outcome(5)).rst, CODE.PROTOCOL_ERROR);
      // A good entry in front of it (62 now, the bad one 63): referring to the good one is fine, to the bad one is not.
      c.write(headersFrameRaw(7, Buffer.concat([pseudo('/fine'), literalField('x-c', 'ok', true)]), true));
      assert.deepEqual(await c.outcome(7), { status: 200 });
      c.write(headersFrameRaw(9, Buffer.concat([pseudo('/fine-by-index'), indexedField(62)]), true));
      assert.deepEqual(await c.outcome(9), { status: 200 });
      c.write(headersFrameRaw(11, Buffer.concat([pseudo('/bad-by-index'), indexedField(62), indexedField(63)]), true));
      assert.equal((await c.outcome(11)).rst, CODE.PROTOCOL_ERROR);
      assert.deepEqual(
        up.seen.map((r) => [r.url, r.headers['x-c']]),
        [
          ['/fine', 'ok'],
          ['/fine-by-index', 'ok'],
        ],
      );
    } finally {
      c.close();
      up.seen.length = 0;
    }
  });

  it('resets a request whose trailers carry a CR, and the upstream sees its body cut off, not completed', async () => {
    const c = await RawH2.connect(port);
    try {
      c.write(headersFrame(1, requestFields('/trailers', 'POST'), false), dataFrame(1, 'hello', false));
      await waitFor(() => up.seen.length === 1 && up.seen[0]!.bytes === 5);
      c.write(headersFrame(1, [['x-trailer', 'a\rb']], true));
      assert.equal((await c.outcome(1)).rst, CODE.PROTOCOL_ERROR);
      await waitFor(() => up.seen[0]!.aborted);
      assert.equal(up.seen[0]!.complete, false);
      // Good trailers: the request completes.
      c.write(headersFrame(3, requestFields('/trailers-ok', 'POST'), false), dataFrame(3, 'hello', false));
      await waitFor(() => up.seen.length === 2);
      c.write(headersFrame(3, [['x-trailer', 'fine']], true));
      assert.deepEqual(await c.outcome(3), { status: 200 });
      assert.equal(up.seen[1]!.complete, true);
      assert.equal(up.seen[1]!.bytes, 5);
    } finally {
      c.close();
      up.seen.length = 0;
    }
  });

  it('passes good requests through unchanged, with the client address', async () => {
    const r = await h2get(gw.listenerUrl('public'), '/plain?x=1', { 'x-tab': 'a\tb', 'x-obs': 'caf\u00e9' });
    assert.equal(r.status, 200);
    const seen = up.seen.at(-1)!;
    assert.equal(seen.url, '/plain?x=1');
    assert.equal(seen.headers['x-tab'], 'a\tb');
    assert.equal(JSON.parse(r.body).xff, '127.0.0.1');
    up.seen.length = 0;
  });
});

describe('HTTP/2 content-length against DATA (RFC 9113 8.1.1)', () => {
  let up: RecordingUpstream;
  let gw: Gateway;
  let port: number;
  before(async () => {
    up = await startRecordingUpstream();
    gw = await startGateway({
      registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
      routes: [{ name: 'all', backends: [{ service: 'up.static' }] }],
    });
    port = Number(new URL(gw.listenerUrl('public')).port);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  it('refuses before the upstream a request whose whole body contradicts its content-length', async () => {
    const c = await RawH2.connect(port);
    try {
      const post = (id: number, length: string): Buffer => headersFrame(id, [...requestFields(`/cl/${id}`, 'POST'), ['content-length', length]], false);
      c.write(post(1, '10'), dataFrame(1, 'hello', true)); // shorter
      c.write(post(3, '3'), dataFrame(3, 'hello', true)); // longer
      c.write(headersFrame(5, [...requestFields('/cl/5', 'POST'), ['content-length', '5']], true)); // none at all
      c.write(post(7, '5'), dataFrame(7, 'hel', false), dataFrame(7, 'lo!', true)); // longer, in two frames
      for (const id of [1, 3, 5, 7]) assert.equal((await c.outcome(id)).rst, CODE.PROTOCOL_ERROR, `stream ${id}`);
      c.write(post(9, '5'), dataFrame(9, 'hello', true));
      assert.deepEqual(await c.outcome(9), { status: 200 });
      assert.deepEqual(
        up.seen.map((r) => [r.url, r.bytes, r.complete]),
        [['/cl/9', 5, true]],
      );
    } finally {
      c.close();
      up.seen.length = 0;
    }
  });

  it('resets the upstream request when the rest of the body contradicts content-length after it was sent upstream', async () => {
    const c = await RawH2.connect(port);
    try {
      // Too short: END_STREAM after 6 of 10 bytes.
      c.write(headersFrame(1, [...requestFields('/short', 'POST'), ['content-length', '10']], false), dataFrame(1, 'abcd', false));
      await waitFor(() => up.seen.length === 1 && up.seen[0]!.bytes === 4);
      c.write(dataFrame(1, 'ef', true));
      assert.equal((await c.outcome(1)).rst, CODE.PROTOCOL_ERROR);
      // Too long: 4 + 8 bytes of 10.
      c.write(headersFrame(3, [...requestFields('/long', 'POST'), ['content-length', '10']], false), dataFrame(3, 'abcd', false));
      await waitFor(() => up.seen.length === 2 && up.seen[1]!.bytes === 4);
      c.write(dataFrame(3, 'efghijkl', true));
      assert.equal((await c.outcome(3)).rst, CODE.PROTOCOL_ERROR);
      await waitFor(() => up.seen.every((r) => r.aborted));
      assert.deepEqual(
        up.seen.map((r) => [r.url, r.complete, r.bytes < 10]),
        [
          ['/short', false, true],
          ['/long', false, true],
        ],
      );
      // Nothing was retried: the upstream saw each request once.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(up.seen.length, 2);
    } finally {
      c.close();
      up.seen.length = 0;
    }
    // The gateway goes on serving.
    assert.equal((await h2get(gw.listenerUrl('public'), '/after')).status, 200);
  });
});
