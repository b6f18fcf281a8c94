// The HPACK decoder behind the HTTP/2 frame tap: Huffman codes and the
// examples of RFC 7541 (Appendices B and C), the verdicts it gives on fields
// node:http2 would drop, and agreement with nghttp2 on real traffic.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { BlockVerdict, FrameTap, HeaderBlockInspector, huffmanCode, huffmanDecode, ResetBudget } from '../../../src/server/h2-guard.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Huffman-encode with codes given as [code, bits] pairs (copied from RFC 7541 Appendix B, not from the module). */
function huffmanBits(codes: Array<[number, number]>): Buffer {
  let acc = 0n;
  let n = 0;
  for (const [code, bits] of codes) {
    acc = (acc << BigInt(bits)) | BigInt(code);
    n += bits;
  }
  const pad = (8 - (n % 8)) % 8;
  acc = (acc << BigInt(pad)) | BigInt((1 << pad) - 1);
  n += pad;
  const out = Buffer.alloc(n / 8);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(acc & 0xffn);
    acc >>= 8n;
  }
  return out;
}

/** A string literal: length prefix (7 bits, H flag) + bytes. Lengths here stay under 127. */
const lit = (b: Buffer, huffman = false): Buffer => Buffer.concat([Buffer.from([(huffman ? 0x80 : 0) | b.length]), b]);
const raw = (s: string): Buffer => lit(Buffer.from(s, 'latin1'));
/** Literal field, new name: without indexing (0x00) or with incremental indexing (0x40). */
const field = (name: Buffer, value: Buffer, indexing = false): Buffer => Buffer.concat([Buffer.from([indexing ? 0x40 : 0x00]), name, value]);

describe('Huffman code (RFC 7541 Appendix B)', () => {
  it('gives the table codes for symbols of every length group', () => {
    const expected: Array<[number, number, number]> = [
      [0, 0x1ff8, 13],
      [1, 0x7fffd8, 23],
      [9, 0xffffea, 24],
      [10, 0x3ffffffc, 30],
      [13, 0x3ffffffd, 30],
      [22, 0x3ffffffe, 30],
      [31, 0xffffffb, 28],
      [32, 0x14, 6],
      [47, 0x18, 6],
      [48, 0x0, 5],
      [97, 0x3, 5],
      [116, 0x9, 5],
      [88, 0xfc, 8],
      [92, 0x7fff0, 19],
      [127, 0xffffffc, 28],
      [128, 0xfffe6, 20],
      [153, 0x1fffdc, 21],
      [199, 0x1ffffec, 25],
      [192, 0x3ffffe0, 26],
      [203, 0x7ffffde, 27],
      [254, 0x7fffff0, 27],
      [255, 0x3ffffee, 26],
      [256, 0x3fffffff, 30],
    ];
    for (const [sym, code, bits] of expected) assert.deepEqual(huffmanCode(sym), { code, bits }, `symbol ${sym}`);
  });

  it('decodes the examples of Appendix C.4 and refuses bad padding and EOS', () => {
    const out = new Uint8Array(64);
    const dec = (b: Buffer): string => Buffer.from(out.subarray(0, huffmanDecode(b, 0, b.length, out))).toString('latin1');
    assert.equal(dec(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')), 'www.example.com');
    assert.equal(dec(hex('a8eb 1064 9cbf')), 'no-cache');
    assert.equal(dec(hex('25a8 49e9 5ba9 7d7f')), 'custom-key');
    assert.equal(dec(hex('25a8 49e9 5bb8 e8b4 bf')), 'custom-value');
    // "a" is 00011: padded with zeros instead of ones
    assert.equal(huffmanDecode(Buffer.from([0b00011000]), 0, 1, out), -1);
    // a whole byte of padding (more than 7 bits)
    assert.equal(huffmanDecode(Buffer.from([0b00011111, 0xff]), 0, 2, out), -1);
    // EOS spelled out
    assert.equal(huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff]), 0, 4, out), -1);
    // CR inside a value: a\rb
    const b = huffmanBits([[0x3, 5], [0x3ffffffd, 30], [0x23, 6]]);
    const n = huffmanDecode(b, 0, b.length, out);
    assert.deepEqual([...out.subarray(0, n)], [0x61, 0x0d, 0x62]);
  });
});

describe('HeaderBlockInspector', () => {
  it('follows the dynamic table through the requests of Appendix C.3 and C.4', () => {
    for (const blocks of [
      ['8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d', '8286 84be 5808 6e6f 2d63 6163 6865', '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65'],
      ['8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff', '8286 84be 5886 a8eb 1064 9cbf', '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf'],
    ]) {
      const insp = new HeaderBlockInspector();
      const sizes: number[] = [];
      for (const b of blocks) {
        assert.equal(insp.inspect(hex(b)), BlockVerdict.Ok);
        sizes.push(insp.dynamicTableSize);
      }
      assert.deepEqual(sizes, [57, 110, 164]);
    }
  });

  it('finds fields nghttp2 would drop or reset, literal or Huffman-coded', () => {
    const bad: Array<[string, Buffer]> = [
      ['CR in a value', field(raw('x-a'), raw('a\rb'))],
      ['LF in a value', field(raw('x-a'), raw('a\nb'))],
      ['NUL in a value', field(raw('x-a'), raw('a\0b'))],
      ['DEL in a value', field(raw('x-a'), raw('a\x7fb'))],
      ['leading space', field(raw('x-a'), raw(' a'))],
      ['trailing tab', field(raw('x-a'), raw('a\t'))],
      ['upper-case name', field(raw('X-A'), raw('a'))],
      ['space in a name', field(raw('x a'), raw('a'))],
      ['empty name', field(raw(''), raw('a'))],
      ['Host that is no authority', field(raw('host'), raw('a b'))],
      ['Host by static name index with a bad authority', Buffer.concat([Buffer.from([0x0f, 38 - 15]), raw('a"b')])],
      ['CR in a Huffman-coded value', field(raw('x-a'), lit(huffmanBits([[0x3, 5], [0x3ffffffd, 30], [0x23, 6]]), true))],
      ['LF in a Huffman-coded value', field(raw('x-a'), lit(huffmanBits([[0x3, 5], [0x3ffffffc, 30]]), true))],
      ['CR after a static name index', Buffer.concat([Buffer.from([0x0f, 58 - 15]), raw('ua\r')])], // user-agent
    ];
    for (const [what, block] of bad) assert.equal(new HeaderBlockInspector().inspect(block), BlockVerdict.Malformed, what);

    const good: Array<[string, Buffer]> = [
      ['tab inside a value', field(raw('x-a'), raw('a\tb'))],
      ['obs-text in a value', field(raw('x-a'), raw('caf\xe9'))],
      ['empty value', field(raw('x-a'), raw(''))],
      ['pseudo-header (nghttp2 checks those itself)', field(raw(':path'), raw('/a b'))],
      ['Host with a port', field(raw('host'), raw('example.com:8080'))],
    ];
    for (const [what, block] of good) assert.equal(new HeaderBlockInspector().inspect(block), BlockVerdict.Ok, what);
  });

  it('remembers a bad field put in the dynamic table, and forgets it once evicted', () => {
    const insp = new HeaderBlockInspector(100);
    assert.equal(insp.inspect(field(raw('x-a'), raw('a\rb'), true)), BlockVerdict.Malformed);
    // index 62: the newest dynamic entry
    assert.equal(insp.inspect(Buffer.from([0x80 | 62])), BlockVerdict.Malformed);
    // its name with a good value is fine; a good entry pushes the bad one out (100-byte table)
    assert.equal(insp.inspect(Buffer.concat([Buffer.from([0x00 | 0x0f, 62 - 15]), raw('ok')])), BlockVerdict.Ok);
    assert.equal(insp.inspect(field(raw('x-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'), raw('fine'), true)), BlockVerdict.Ok);
    assert.equal(insp.inspect(Buffer.from([0x80 | 62])), BlockVerdict.Ok);
    assert.equal(insp.inspect(Buffer.from([0x80 | 63])), BlockVerdict.Undecodable);
  });

  it('calls a block it cannot follow undecodable', () => {
    const insp = new HeaderBlockInspector();
    assert.equal(insp.inspect(Buffer.from([0x80])), BlockVerdict.Undecodable); // index 0
    assert.equal(insp.inspect(Buffer.from([0x82, 0x3f, 0xe1, 0x1f])), BlockVerdict.Undecodable); // size update after a field
    assert.equal(new HeaderBlockInspector().inspect(Buffer.from([0x3f, 0xe2, 0x1f])), BlockVerdict.Undecodable); // size update above 4096
    assert.equal(new HeaderBlockInspector().inspect(Buffer.from([0x00, 0x05, 0x61])), BlockVerdict.Undecodable); // string past the end
  });
});

describe('FrameTap in front of node:http2', () => {
  it('agrees with nghttp2 on real client traffic: every byte and header arrives, nothing is reported', async () => {
    const reported: number[] = [];
    const got: Array<Record<string, string | string[] | undefined>> = [];
    // The tap's dynamic table size next to nghttp2's after each request: they must move together.
    const sizes: Array<[number, number]> = [];
    let tap: FrameTap | undefined;
    const server = http2.createServer({ settings: { headerTableSize: 4096 } });
    server.on('stream', (stream, headers) => {
      got.push(headers);
      sizes.push([tap!.inspector.dynamicTableSize, stream.session!.state.inflateDynamicTableSize!]);
      stream.respond({ ':status': 200 });
      stream.end();
    });
    const front = net.createServer((socket) => server.emit('connection', (tap = new FrameTap(socket, undefined, (id) => reported.push(id)))));
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
    const client = http2.connect(`http://127.0.0.1:${(front.address() as AddressInfo).port}`);
    try {
      // Every octet a client may send in a value, in values that change (literals,
      // Huffman-coded when shorter) and repeat (dynamic table hits), enough to evict.
      const allowed = [0x09, ...Array.from({ length: 0x7f - 0x20 }, (_, i) => 0x20 + i), ...Array.from({ length: 0x80 }, (_, i) => 0x80 + i)];
      const values: string[] = [];
      for (let i = 0; i < 60; i++) {
        const v = Buffer.from(allowed.slice((i * 37) % allowed.length).concat(allowed).slice(0, 20 + (i % 50))).toString('latin1');
        values.push(`v${v.trim()}z`);
      }
      // Each allowed octet once inside a run of letters and digits, so that
      // nghttp2 Huffman-codes it (shorter than the raw string).
      const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyz';
      const huff = allowed.map((c) => `${alnum.slice(0, 40)}${String.fromCharCode(c)}${alnum.slice(40)}`);
      for (let i = 0; i < huff.length; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = client.request({ ':path': `/p/${i}?q=${'x'.repeat(i % 70)}`, 'x-rot': values[i % values.length]!, 'x-huff': huff[i]!, 'x-same': values[0]!, 'user-agent': `agent-${i % 3}`, cookie: `a=${i}; b=2` });
          req.on('response', () => undefined);
          req.resume();
          req.on('end', resolve);
          req.on('error', reject);
          req.end();
        });
      }
      assert.equal(got.length, huff.length);
      for (let i = 0; i < huff.length; i++) {
        assert.equal(got[i]!['x-rot'], values[i % values.length]);
        assert.equal(got[i]!['x-huff'], huff[i]);
        assert.equal(got[i]!['x-same'], values[0]);
      }
      assert.deepEqual(reported, []);
      assert.equal(tap!.inspecting, true, 'the tap followed every frame');
      for (const [i, [mine, theirs]] of sizes.entries()) assert.equal(mine, theirs, `dynamic table size after request ${i}`);
      // the table filled up and entries were evicted on the way
      assert.ok(Math.max(...sizes.map((x) => x[1])) > 3000);
    } finally {
      client.close();
      front.close();
      server.close();
    }
  });
});

describe('FrameTap framing', () => {
  /** A frame: 9-byte header and payload. */
  const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(9);
    h.writeUIntBE(payload.length, 0, 3);
    h[3] = type;
    h[4] = flags;
    h.writeUInt32BE(stream, 5);
    return Buffer.concat([h, payload]);
  };
  const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
  const good = field(raw('x-ok'), raw('fine'), true);
  const bad = field(raw('x-bad'), raw('a\x01b'));
  // stream 1: malformed in one HEADERS frame; 3: malformed across HEADERS + CONTINUATION;
  // 5: good, padded and with priority; 7: good, indexed from the dynamic table; 9: malformed in trailers-like second block after DATA
  const block3 = Buffer.concat([good, bad]);
  const padded = Buffer.concat([Buffer.from([3]), Buffer.from([0, 0, 0, 0, 16]), good, Buffer.alloc(3)]);
  const bytes = Buffer.concat([
    PREFACE,
    frame(0x4, 0, 0, Buffer.alloc(0)),
    frame(0x1, 0x5, 1, Buffer.concat([good, bad])),
    frame(0x1, 0x0, 3, block3.subarray(0, 4)),
    frame(0x9, 0x4, 3, block3.subarray(4)),
    frame(0x1, 0x4 | 0x8 | 0x20, 5, padded),
    frame(0x0, 0x0, 5, Buffer.from('body')),
    frame(0x1, 0x5, 7, Buffer.from([0x80 | 62])),
    frame(0x0, 0x0, 9, Buffer.from('data')),
    frame(0x1, 0x5, 9, bad),
  ]);
  /** A stand-in socket: the test emits its chunks. */
  const fakeSocket = (): net.Socket => {
    const s = new EventEmitter() as unknown as net.Socket & { pause(): void; resume(): void };
    Object.assign(s, { pause: () => s, resume: () => s, write: () => true, end: () => s, destroy: () => s });
    return s;
  };
  const feed = (chunks: Buffer[]): { reported: number[]; tap: FrameTap } => {
    const reported: number[] = [];
    const socket = fakeSocket();
    const tap = new FrameTap(socket, undefined, (id) => reported.push(id));
    tap.resume();
    for (const c of chunks) socket.emit('data', c);
    return { reported, tap };
  };
  const split = (b: Buffer, sizes: (i: number) => number): Buffer[] => {
    const out: Buffer[] = [];
    for (let p = 0, i = 0; p < b.length; i++) {
      const k = Math.max(1, sizes(i));
      out.push(b.subarray(p, p + k));
      p += k;
    }
    return out;
  };
  for (const [name, chunks] of [
    ['one chunk', [bytes]],
    ['byte by byte', split(bytes, () => 1)],
    ['chunks of 7', split(bytes, () => 7)],
    ['chunks of 5, 9, 13, ...', split(bytes, (i) => 5 + 4 * (i % 5))],
  ] as Array<[string, Buffer[]]>) {
    it(`reports the same streams however the bytes are split: ${name}`, () => {
      const { reported, tap } = feed(chunks);
      assert.deepEqual(reported, [1, 3, 9]);
      assert.equal(tap.inspecting, true);
      // x-ok: fine was added to the table by streams 1, 3 and 5
      assert.equal(tap.inspector.dynamicTableSize, 3 * (4 + 4 + 32));
      tap.destroy();
    });
  }
});

describe('ResetBudget', () => {
  it('allows max resets at once, refills over the window, and earns one back per completed stream', () => {
    let now = 0;
    const b = new ResetBudget(10, 1000, () => now);
    for (let i = 0; i < 10; i++) assert.equal(b.reset(), false);
    assert.equal(b.reset(), true);
    const c = new ResetBudget(10, 1000, () => now);
    for (let i = 0; i < 10; i++) c.reset();
    now += 500; // five back
    for (let i = 0; i < 5; i++) assert.equal(c.reset(), false, `reset ${i} after half a window`);
    c.completed();
    assert.equal(c.reset(), false);
    assert.equal(c.reset(), true);
  });
});
