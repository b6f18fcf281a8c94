// The HTTP/1.1 wire codec (src/http1/): the inputs the hardening issue found
// accepted, now refused; framing that does not depend on how bytes are split
// into reads; trailers that cannot smuggle framing or routing fields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChunkedDecoder } from '../../../src/http1/chunked.js';
import { frameMessages } from '../../../src/http1/frame.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const CHUNKED_POST = 'POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';

describe('HTTP/1.1 wire codec', () => {
  it('refuses chunk size lines llhttp refuses', () => {
    for (const line of ['2 erfrferferf', '2;', 'a ', '5 xyz', '2 ;a', '2; a', '2;a = b', '2;a=b ', '0x2', '+2', '-2', '2;a="x', '2;a="b" ']) {
      const r = frameMessages('request', b(`${CHUNKED_POST}${line}\r\naa\r\n0\r\n\r\n`));
      assert.equal(r.ok, false, `accepted chunk line ${JSON.stringify(line)}`);
      assert.equal(r.messages.length, 0);
    }
  });

  it('accepts the chunk extensions RFC 9112 and llhttp both accept', () => {
    for (const line of ['2;a', '2;a=b', '2;a=b;c', '2;a="b c"', '2;a=', '0002', '2;a="\xff"']) {
      const r = frameMessages('request', b(`${CHUNKED_POST}${line}\r\naa\r\n0\r\n\r\n`));
      assert.ok(r.ok, `refused ${JSON.stringify(line)}`);
      assert.equal(r.messages[0]!.body.toString(), 'aa');
    }
  });

  it('an unterminated quoted extension cannot hide a second request', () => {
    const smuggle = `${CHUNKED_POST}0;a="x\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nHost: b\r\n\r\n"\r\n\r\n`;
    const r = frameMessages('request', b(smuggle));
    assert.equal(r.ok, false);
    assert.equal(r.messages.length, 0);
  });

  it('refuses request lines and targets that could be read two ways', () => {
    const bad: Array<[string, number]> = [
      ['ANNOUNCE /x HTTP/1.0\r\n\r\n', 501],
      ['GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n', 400],
      ['GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
      ['GET http://evil.example/a HTTP/1.1\r\nHost: a\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: user@evil.example\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: a/b\r\n\r\n', 400],
      ['GET / HTTP/1.1\nHost: a\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: a\r\nX : a\r\n\r\n', 400],
      ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na', 400],
      ['POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', 400],
      ['GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nab', 400],
    ];
    for (const [input, status] of bad) {
      const r = frameMessages('request', b(input));
      assert.equal(r.ok, false, `accepted ${JSON.stringify(input)}`);
      if (!r.ok) assert.equal(r.error.split(' ')[0], String(status), `${JSON.stringify(input)}: ${r.error}`);
    }
  });

  it('the client reads one response per request: bytes after it are refused, never a second response', () => {
    const r = frameMessages('response', b('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 204 No Content\r\n\r\n'));
    assert.equal(r.ok, false);
    assert.equal(r.messages.length, 1);
    assert.equal(r.messages[0]!.body.toString(), 'abc');
  });

  it('refuses a chunk size line with trailing spaces in a response, as llhttp does', () => {
    const r = frameMessages('response', b('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0  \r\n\r\n'));
    assert.equal(r.ok, false);
  });

  it('frames the same messages however the bytes are split into reads', () => {
    const inputs: Array<['request' | 'response', string]> = [
      ['request', `\r\n${CHUNKED_POST}3;ext="q v"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\nGET /next HTTP/1.1\r\nHost: a\r\n\r\n`],
      ['request', 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.0\r\n\r\n'],
      ['response', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n'],
      ['response', 'HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc'],
    ];
    for (const [kind, text] of inputs) {
      const whole = frameMessages(kind, b(text));
      assert.ok(whole.ok && !whole.partial, `${kind} ${JSON.stringify(text)}`);
      for (let i = 1; i < text.length; i++) {
        for (const j of [i + 1, i + 7]) {
          const split = frameMessages(kind, b(text), { splits: [i, j] });
          assert.deepEqual(split, whole, `split at ${i},${j}`);
        }
      }
    }
  });

  it('an input cut short is partial, never a message', () => {
    const text = 'POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello';
    for (let i = 1; i < text.length; i++) {
      const r = frameMessages('request', b(text.slice(0, i)));
      assert.ok(r.ok);
      assert.equal(r.messages.length, 0, `cut at ${i}`);
      assert.equal(r.partial, true, `cut at ${i}`);
    }
  });

  it('trailers are parsed as fields and refused when malformed', () => {
    const d = new ChunkedDecoder(1024, 400);
    const body: Buffer[] = [];
    const end = d.feed(b('1\r\na\r\n0\r\nHost: evil\r\nX-Sum: 1\r\n\r\nrest'), (x) => body.push(x));
    assert.equal(Buffer.concat(body).toString(), 'a');
    assert.deepEqual(d.trailers, ['Host', 'evil', 'X-Sum', '1']);
    assert.equal(end, b('1\r\na\r\n0\r\nHost: evil\r\nX-Sum: 1\r\n\r\n').length);
    for (const t of ['Content-Length: 5\r\n\r\n', 'Transfer-Encoding: chunked\r\n\r\n', 'X : 1\r\n\r\n', 'X: 1\nY: 2\r\n\r\n', ' X: 1\r\n\r\n', 'X: a\x01\r\n\r\n', 'X\r\n\r\n']) {
      assert.throws(() => new ChunkedDecoder(1024, 400).feed(b(`0\r\n${t}`), () => undefined), /./, JSON.stringify(t));
    }
  });

  it('bounds chunk extensions and trailers', () => {
    assert.throws(() => new ChunkedDecoder(64, 400).feed(b(`1;${'a'.repeat(17_000)}\r\n`), () => undefined), /too long/);
    assert.throws(() => new ChunkedDecoder(64, 400).feed(b(`0\r\nX: ${'a'.repeat(100)}\r\n`), () => undefined), /too large/);
    assert.throws(() => new ChunkedDecoder(64, 400).feed(b('1000000000000\r\n'), () => undefined), /too large/);
  });
});
