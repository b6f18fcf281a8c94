// The SSE parser every AI translator reads upstream streams with. Streams are
// cut at every byte position and fed byte by byte because TCP delivers them in
// arbitrary pieces: between \r and \n, inside a UTF-8 character, inside "data:".
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SseParser, type SseEvent } from '../../../src/upstreams/ai/translate/sse.js';

function parseWhole(text: string | Buffer): SseEvent[] {
  const p = new SseParser();
  return [...p.push(Buffer.from(text)), ...p.end()];
}

/** Parses `text` cut at every single position, and asserts every cut gives `expected`. */
function assertEveryCut(text: string, expected: SseEvent[]): void {
  const buf = Buffer.from(text);
  assert.deepEqual(parseWhole(buf), expected, 'whole');
  for (let i = 0; i <= buf.length; i++) {
    const p = new SseParser();
    const got = [...p.push(buf.subarray(0, i)), ...p.push(buf.subarray(i)), ...p.end()];
    assert.deepEqual(got, expected, `cut at byte ${i}`);
  }
  // One byte at a time.
  const p = new SseParser();
  const got: SseEvent[] = [];
  for (let i = 0; i < buf.length; i++) got.push(...p.push(buf.subarray(i, i + 1)));
  got.push(...p.end());
  assert.deepEqual(got, expected, 'byte by byte');
}

describe('SseParser', () => {
  it('reads LF, CRLF and CR line ends alike, cut anywhere', () => {
    const expected = [
      { event: undefined, data: 'a' },
      { event: 'message_start', data: '{"x":1}' },
    ];
    assertEveryCut('data: a\n\nevent: message_start\ndata: {"x":1}\n\n', expected);
    assertEveryCut('data: a\r\n\r\nevent: message_start\r\ndata: {"x":1}\r\n\r\n', expected);
    assertEveryCut('data: a\r\revent: message_start\rdata: {"x":1}\r\r', expected);
    assertEveryCut('data: a\r\n\nevent: message_start\rdata: {"x":1}\n\r\n', expected);
  });

  it('a CRLF split between its \\r and \\n does not end the event early', () => {
    // If the \n after a \r at a chunk end counted as an empty line, the event
    // would be dispatched with only its first data line.
    const p = new SseParser();
    assert.deepEqual(p.push(Buffer.from('data: one\r')), []);
    assert.deepEqual(p.push(Buffer.from('\ndata: two\r')), []);
    assert.deepEqual(p.push(Buffer.from('\n\r')), [{ event: undefined, data: 'one\ntwo' }]);
    assert.deepEqual(p.push(Buffer.from('\n')), []);
    assert.deepEqual(p.end(), []);
  });

  it('joins multi-line data with \\n and strips exactly one space after the colon', () => {
    assertEveryCut('data:first\ndata:  second\ndata\ndata: \n\n', [{ event: undefined, data: 'first\n second\n\n' }]);
  });

  it('skips comment lines and unknown fields, and ignores id/retry', () => {
    assertEveryCut(': keep-alive\n\n: OPENROUTER PROCESSING\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n', [{ event: undefined, data: 'x' }]);
  });

  it('an event without data is not dispatched, and its name does not leak into the next event', () => {
    assertEveryCut('event: ping\n\ndata: y\n\n', [{ event: undefined, data: 'y' }]);
  });

  it('an empty event name counts as no name', () => {
    assert.deepEqual(parseWhole('event:\ndata: z\n\n'), [{ event: undefined, data: 'z' }]);
  });

  it('keeps multi-byte UTF-8 intact when a character is split across pushes', () => {
    assertEveryCut('data: 你好 🌍 café\n\n', [{ event: undefined, data: '你好 🌍 café' }]);
  });

  it('holds a partial frame until its blank line arrives', () => {
    const p = new SseParser();
    assert.deepEqual(p.push(Buffer.from('event: content_block_delta\ndata: {"a"')), []);
    assert.deepEqual(p.push(Buffer.from(':1}\n')), []);
    assert.deepEqual(p.push(Buffer.from('\n')), [{ event: 'content_block_delta', data: '{"a":1}' }]);
  });

  it('at the end, delivers an event whose lines ended but drops a cut-off last line', () => {
    // The last frame without its blank line is still whole...
    assert.deepEqual(parseWhole('data: a\n\ndata: last\n'), [
      { event: undefined, data: 'a' },
      { event: undefined, data: 'last' },
    ]);
    // ...but a line the connection cut mid-way may be a fragment.
    assert.deepEqual(parseWhole('data: a\n\ndata: {"trunc'), [{ event: undefined, data: 'a' }]);
  });

  it('drops a leading byte-order mark', () => {
    assert.deepEqual(parseWhole('\ufeffdata: b\n\n'), [{ event: undefined, data: 'b' }]);
  });

  it('a field named data with no colon adds an empty data line', () => {
    assert.deepEqual(parseWhole('data\n\n'), [{ event: undefined, data: '' }]);
  });

  it('reads a long stream of many events cut into random pieces exactly', () => {
    const frames: string[] = [];
    const expected: SseEvent[] = [];
    for (let i = 0; i < 300; i++) {
      const ends = ['\n', '\r\n', '\r'][i % 3]!;
      frames.push(`event: e${i}${ends}data: {"i":${i},"s":"ü${'x'.repeat(i % 17)}"}${ends}${ends}`);
      expected.push({ event: `e${i}`, data: `{"i":${i},"s":"ü${'x'.repeat(i % 17)}"}` });
    }
    const buf = Buffer.from(frames.join(''));
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
    for (let round = 0; round < 20; round++) {
      const p = new SseParser();
      const got: SseEvent[] = [];
      let at = 0;
      while (at < buf.length) {
        const n = 1 + (rnd() % 40);
        got.push(...p.push(buf.subarray(at, at + n)));
        at += n;
      }
      got.push(...p.end());
      assert.deepEqual(got, expected, `round ${round}`);
    }
  });
});
