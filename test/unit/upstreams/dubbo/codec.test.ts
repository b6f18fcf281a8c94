import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import hessian from 'hessian.js';
import {
  decodeResponse,
  encodeHeartbeat,
  encodeRequest,
  FrameReader,
  genericInvocation,
  GENERIC_DESCRIPTOR,
  ProtocolError,
  type Frame,
} from '../../../../src/upstreams/dubbo/codec.js';
import { descriptorTypes, encode as hess, frame as header } from '../../../doubles/dubbo/provider.js';

function frames(buf: Buffer): Frame[] {
  const out: Frame[] = [];
  new FrameReader().push(buf, (f) => out.push(f));
  return out;
}

function response(status: number, ...values: unknown[]): Frame {
  return { flags: 0x02, status, id: 7, body: hess(...values) };
}

describe('dubbo codec: requests', () => {
  it('encodes a generic call the way a Java provider reads it', () => {
    const inv = genericInvocation(
      'com.example.OrderService',
      '1.0.0',
      'g1',
      'getOrder',
      ['java.lang.Long', 'com.example.Order'],
      [{ $class: 'java.lang.Long', $: 42 }, { class: 'com.example.Order', item: 'book' }],
      { path: 'com.example.OrderService', version: '1.0.0', group: 'g1', timeout: '3000' },
    );
    const buf = encodeRequest(2 ** 40 + 5, inv);
    assert.equal(buf.readUInt16BE(0), 0xdabb);
    assert.equal(buf[2], 0xc2, 'request, two-way, hessian2');
    assert.equal(buf.readBigInt64BE(4), BigInt(2 ** 40 + 5));
    assert.equal(buf.readInt32BE(12), buf.length - 16);

    const d = new hessian.DecoderV2(buf.subarray(16));
    assert.equal(d.read(), '2.0.2');
    assert.equal(d.read(), 'com.example.OrderService');
    assert.equal(d.read(), '1.0.0');
    assert.equal(d.read(), '$invoke');
    const desc = d.read() as string;
    assert.equal(desc, GENERIC_DESCRIPTOR);
    assert.deepEqual(descriptorTypes(desc), ['java.lang.String', 'java.lang.String[]', 'java.lang.Object[]']);
    assert.equal(d.read(), 'getOrder');
    assert.deepEqual(d.read(), ['java.lang.Long', 'com.example.Order']);
    assert.deepEqual(d.read(), [42, { class: 'com.example.Order', item: 'book' }]);
    assert.deepEqual(d.read(), { path: 'com.example.OrderService', version: '1.0.0', group: 'g1', timeout: '3000' });
  });

  it('writes a Long argument as a hessian long, also beyond 2^53', () => {
    const inv = genericInvocation('S', '', '', 'm', ['java.lang.Long', 'java.lang.Long'], [{ $class: 'java.lang.Long', $: 5 }, { $class: 'java.lang.Long', $: '9223372036854775807' }], {});
    const body = encodeRequest(1, inv).subarray(16);
    const d = new hessian.DecoderV2(body);
    for (let i = 0; i < 7; i++) d.read();
    assert.deepEqual(d.read(), [5, '9223372036854775807']);
    // 0xe5 is the compact hessian long 5 (an int would be 0x95); 'L' + 8 bytes is a full long.
    const list = body.indexOf(Buffer.from('[object'));
    assert.equal(body[list + 7], 0xe5);
    assert.equal(body.subarray(list + 8, list + 17).toString('hex'), '4c7fffffffffffffff');
  });

  it('writes the service version 0.0.0 when none is configured', () => {
    const d = new hessian.DecoderV2(encodeRequest(1, genericInvocation('S', '', '', 'm', [], [], {})).subarray(16));
    d.read();
    d.read();
    assert.equal(d.read(), '0.0.0');
  });

  it('encodes heartbeats as event requests with a null body', () => {
    const [f] = frames(encodeHeartbeat(9));
    assert.equal(f!.flags, 0xe2);
    assert.equal(f!.id, 9);
    assert.deepEqual([...f!.body], [0x4e]);
  });
});

describe('dubbo codec: frames', () => {
  it('reassembles frames fed one byte at a time and splits back-to-back frames', () => {
    const a = header(0x02, 20, 1, hess(1, 'one'));
    const b = header(0x02, 20, 2, hess(2));
    const all = Buffer.concat([a, b]);
    const reader = new FrameReader();
    const got: Frame[] = [];
    for (let i = 0; i < all.length; i++) reader.push(all.subarray(i, i + 1), (f) => got.push(f));
    assert.deepEqual(
      got.map((f) => f.id),
      [1, 2],
    );
    assert.deepEqual(frames(all).map((f) => f.id), [1, 2]);
  });

  it('joins a large frame that arrives in many chunks', () => {
    const big = 'x'.repeat(300_000);
    const all = Buffer.concat([header(0x02, 20, 3, hess(1, big)), header(0x02, 20, 4, hess(2))]);
    const reader = new FrameReader();
    const got: Frame[] = [];
    for (let i = 0; i < all.length; i += 7_001) reader.push(all.subarray(i, i + 7_001), (f) => got.push(f));
    assert.deepEqual(got.map((f) => f.id), [3, 4]);
    assert.deepEqual(decodeResponse(got[0]!), { kind: 'value', value: big, attachments: undefined });
  });

  it('rejects a stream that is not Dubbo and a body over the limit', () => {
    assert.throws(() => new FrameReader().push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), () => undefined), ProtocolError);
    const big = Buffer.alloc(16);
    big.writeUInt16BE(0xdabb, 0);
    big.writeInt32BE(1024, 12);
    assert.throws(() => new FrameReader(100).push(big, () => undefined), /exceeds the limit/);
  });
});

describe('dubbo codec: responses', () => {
  it('decodes value, null and exception flags with and without attachments', () => {
    assert.deepEqual(decodeResponse(response(20, 1, { class: 'com.example.Order', id: 1 })), {
      kind: 'value',
      value: { class: 'com.example.Order', id: 1 },
      attachments: undefined,
    });
    assert.deepEqual(decodeResponse(response(20, 4, 'hi', { dubbo: '2.0.2' })), { kind: 'value', value: 'hi', attachments: { dubbo: '2.0.2' } });
    assert.deepEqual(decodeResponse(response(20, 2)), { kind: 'value', value: null, attachments: undefined });
    assert.deepEqual(decodeResponse(response(20, 5, { dubbo: '2.0.2' })), { kind: 'value', value: null, attachments: { dubbo: '2.0.2' } });
    const plain = { $class: 'java.lang.IllegalStateException', $: { detailMessage: 'boom', cause: null, stackTrace: [], suppressedExceptions: null } };
    (plain.$ as Record<string, unknown>).cause = plain;
    assert.deepEqual(decodeResponse(response(20, 0, plain)), {
      kind: 'exception',
      error: { exception: 'java.lang.IllegalStateException', message: 'boom' },
      attachments: undefined,
    });
    assert.deepEqual(decodeResponse(response(20, 3, plain, { a: 'b' })), {
      kind: 'exception',
      error: { exception: 'java.lang.IllegalStateException', message: 'boom' },
      attachments: { a: 'b' },
    });
  });

  it("reports a GenericException's original class and message", () => {
    const fields: Record<string, unknown> = {
      exceptionClass: 'com.example.OrderNotFoundException',
      exceptionMessage: 'no order 9',
      detailMessage: 'com.example.OrderNotFoundException: no order 9\n\tat ...',
      cause: null,
      stackTrace: [],
      suppressedExceptions: [],
    };
    const ge = { $class: 'org.apache.dubbo.rpc.service.GenericException', $: fields };
    fields.cause = ge;
    const r = decodeResponse(response(20, 3, ge, {}));
    assert.deepEqual(r.kind === 'exception' && r.error, { exception: 'com.example.OrderNotFoundException', message: 'no order 9' });
  });

  it('turns a non-OK status into its error text', () => {
    assert.deepEqual(decodeResponse(response(60, 'Not found exported service')), { kind: 'status', status: 60, message: 'Not found exported service' });
    assert.deepEqual(decodeResponse(response(31, 'Waiting server-side response timeout')), {
      kind: 'status',
      status: 31,
      message: 'Waiting server-side response timeout',
    });
  });

  it('gives JSON-ready values: typed objects as plain fields, bytes as base64, longs beyond 2^53 as strings', () => {
    const pojo = { $class: 'com.example.Order', $: { id: { $class: 'java.lang.Long', $: '9007199254740993' }, data: Buffer.from('hi'), when: new Date(0) } };
    const r = decodeResponse(response(20, 1, pojo));
    assert.equal(r.kind, 'value');
    assert.equal(JSON.stringify(r.kind === 'value' && r.value), '{"id":"9007199254740993","data":"aGk=","when":"1970-01-01T00:00:00.000Z"}');
  });

  it('rejects an unknown response flag', () => {
    assert.throws(() => decodeResponse(response(20, 9, 'x')), /unknown response flag 9/);
  });
});
