// The Nacos gRPC Payload codec against bytes derived by hand from
// nacos_grpc_service.proto, and the JSON bodies of the requests.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CodecError, decodePayload, encodePayload, jsonPayload, payloadJson } from '../../../registries/nacos/grpc/codec.js';
import { grpcAddress } from '../../../registries/nacos/grpc/watcher.js';
import { NacosRegistrySchema } from '../../../registries/nacos/schema.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('nacos grpc codec', () => {
  // Payload { metadata(2) { type(3)="A"; headers(7)={"k":"v"} }; body(3) Any { value(2)="{}" } }
  //   metadata: 1a 01 41 | 3a 06 (0a 01 6b 12 01 76)            = 11 bytes
  //   payload:  12 0b <metadata> | 1a 04 (12 02 7b 7d)
  const known = hex('12 0b 1a 01 41 3a 06 0a 01 6b 12 01 76 1a 04 12 02 7b 7d');

  test('encodes to the bytes derived from the proto', () => {
    assert.deepEqual(encodePayload({ type: 'A', clientIp: '', headers: { k: 'v' }, body: Buffer.from('{}') }), known);
  });

  test('decodes the same bytes', () => {
    const p = decodePayload(known);
    assert.equal(p.type, 'A');
    assert.deepEqual(p.headers, { k: 'v' });
    assert.equal(p.body.toString(), '{}');
    assert.equal(p.clientIp, '');
  });

  test('clientIp (8), Any.type_url (1) and unknown fields are read or skipped', () => {
    // metadata: clientIp(8)="1.2" -> 42 03 31 2e 32 ; unknown varint field 9 -> 48 05 ; type(3)="T" -> 1a 01 54
    const meta = hex('42 03 31 2e 32 48 05 1a 01 54');
    // Any: type_url(1)="x" -> 0a 01 78 ; value(2)="[]" -> 12 02 5b 5d
    const any = hex('0a 01 78 12 02 5b 5d');
    const buf = Buffer.concat([hex('12'), Buffer.from([meta.length]), meta, hex('1a'), Buffer.from([any.length]), any, hex('20 01')]);
    const p = decodePayload(buf);
    assert.equal(p.type, 'T');
    assert.equal(p.clientIp, '1.2');
    assert.equal(p.body.toString(), '[]');
  });

  test('round trip with long bodies (multi-byte lengths) and unicode', () => {
    const body = { serviceInfo: { name: 'svc-ü', hosts: Array.from({ length: 300 }, (_, i) => ({ ip: `10.0.${i >> 8}.${i & 255}`, port: 80 })) } };
    const p = jsonPayload('NotifySubscriberRequest', body, { accessToken: 'tok', app: 'x' }, '127.0.0.1');
    const back = decodePayload(encodePayload(p));
    assert.equal(back.type, 'NotifySubscriberRequest');
    assert.equal(back.clientIp, '127.0.0.1');
    assert.deepEqual(back.headers, { accessToken: 'tok', app: 'x' });
    assert.deepEqual(payloadJson(back), body);
  });

  test('truncated input is a CodecError, not garbage', () => {
    assert.throws(() => decodePayload(known.subarray(0, 8)), CodecError);
    assert.throws(() => decodePayload(hex('12 ff')), CodecError);
    assert.throws(() => payloadJson({ type: 'X', clientIp: '', headers: {}, body: Buffer.from('nope') }), CodecError);
    assert.throws(() => payloadJson({ type: 'X', clientIp: '', headers: {}, body: Buffer.from('[1]') }), CodecError);
  });

  test('empty payload decodes to empty fields', () => {
    assert.deepEqual(decodePayload(Buffer.alloc(0)), { type: '', clientIp: '', headers: {}, body: Buffer.alloc(0) });
  });
});

describe('nacos grpc config', () => {
  test('protocol defaults to http; grpc port = port + grpcPortOffset', () => {
    const c = NacosRegistrySchema.parse({ name: 'n', type: 'nacos', servers: ['127.0.0.1:8848'] });
    assert.equal(c.protocol, 'http');
    assert.equal(c.grpcPortOffset, 1000);
    assert.equal(grpcAddress('127.0.0.1:8848', c.grpcPortOffset), '127.0.0.1:9848');
    assert.equal(grpcAddress('[::1]:8848', 1001), '[::1]:9849');
    assert.throws(() => grpcAddress('h:65000', 1000));
    assert.equal(NacosRegistrySchema.parse({ name: 'n', type: 'nacos', servers: ['h:1'], protocol: 'grpc' }).protocol, 'grpc');
    assert.throws(() => NacosRegistrySchema.parse({ name: 'n', type: 'nacos', servers: ['h:1'], protocol: 'udp' }));
  });
});
