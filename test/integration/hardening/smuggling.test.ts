// Request smuggling and malformed framing, sent as an attacker would: exact
// bytes on a raw socket to a running gateway, with an upstream that frames
// everything it receives with llhttp (strict, as node:http would) and counts.
//
// Each probe states three things:
//   - what RFC 9112 (and RFC 9110 for fields) says a server must do with it;
//   - what llhttp does with the same bytes (checked here, by feeding them to
//     Node's own parser: a test fails if that note is wrong);
//   - what the gateway must answer, and what the upstream may have framed.
// The gateway must be at least as strict as llhttp (security.md 1): where
// llhttp refuses a message, a server behind the gateway would read it
// differently from a gateway that accepts it.
//
// The core invariant: the upstream frames exactly the requests the client
// sent whole, in order, never one the gateway built out of another request's
// body, and never a request whose framing the gateway refused.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Gateway } from '../../../src/gateway.js';
import { startCountingUpstream, type CountingUpstream, type SeenRequest } from '../../helpers/counting-upstream.js';
import { startGateway, waitFor } from '../../helpers/gateway.js';
import { frameWithLlhttp, sendRaw, trackEscapes, type RawResult } from '../../helpers/raw-http.js';

const HOST = 'app.example';
const H = `Host: ${HOST}\r\n`;
const SMUGGLED = `GET /SMUGGLED HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`;
const hex = (n: number): string => n.toString(16);

let up: CountingUpstream;
let gw: Gateway;
let port: number;
const escapes = trackEscapes();

before(async () => {
  up = await startCountingUpstream();
  gw = await startGateway({
    registries: [{ name: 'up', type: 'static', endpoints: [up.address] }],
    // The route answers only its own host: a request routed by a host the
    // client smuggled in (absolute-form, userinfo, a second Host) is visible.
    routes: [{ name: 'app', match: { hosts: [HOST] }, backends: [{ service: 'up.static' }] }],
  });
  port = Number(new URL(gw.listenerUrl()).port);
});
after(async () => {
  await gw?.stop();
  await up?.close();
  escapes.dispose();
});
beforeEach(() => up.clear());

/** What llhttp (strict) does with the bytes: 'refuses' or 'accepts', and how many complete messages it frames. */
function llhttp(bytes: string): { verdict: 'refuses' | 'accepts'; complete: number; error?: string } {
  const f = frameWithLlhttp(bytes);
  return { verdict: f.ok ? 'accepts' : 'refuses', complete: f.messages.filter((m) => m.complete).length, error: f.error };
}

/** Wait until no upstream request is half-received (the gateway finished or aborted each). */
async function upstreamSettled(): Promise<void> {
  await waitFor(() => up.inProgress === 0, 3000).catch(() => undefined);
}

function describeResult(r: RawResult): string {
  const first = r.raw.toString('latin1').slice(0, 300);
  return `client got ${JSON.stringify(first)}${r.closed ? ' then close' : ' (connection left open)'}; upstream framed ${JSON.stringify(
    up.requests.map((q) => ({ m: q.method, u: q.url, body: q.body.toString('latin1'), complete: q.complete, aborted: q.aborted })),
  )}${up.parseErrors.length ? ` parse errors ${up.parseErrors.join('; ')}` : ''}`;
}

/**
 * The gateway refuses the message with `status` and closes the connection.
 * `stage` says what may have reached the upstream first:
 *   - 'head': the head itself is wrong, so nothing at all;
 *   - 'body': the head was fine and may have been forwarded, but the upstream
 *     must never see that request complete (its body broke), and the
 *     gateway must abort it.
 */
async function expectRefused(bytes: string, status: number | number[], stage: 'head' | 'body'): Promise<RawResult> {
  const r = await sendRaw(port, bytes, { timeoutMs: 3000 });
  await upstreamSettled();
  const ctx = describeResult(r);
  const statuses = Array.isArray(status) ? status : [status];
  assert.ok(r.finals.length >= 1, `expected ${statuses.join(' or ')}, got no answer within 3 s: ${ctx}`);
  assert.ok(statuses.includes(r.finals[0]!.status), `expected ${statuses.join(' or ')}: ${ctx}`);
  assert.equal(r.finals.length, 1, `one answer only: ${ctx}`);
  assert.ok(r.closed, `the connection is closed after a refused message: ${ctx}`);
  if (stage === 'head') assert.equal(up.requests.length, 0, `nothing reaches the upstream: ${ctx}`);
  assert.equal(up.complete.length, 0, `no request reaches the upstream whole: ${ctx}`);
  assert.equal(up.inProgress, 0, `the upstream request is aborted: ${ctx}`);
  assert.ok(!up.requests.some((q) => q.url.includes('SMUGGLED')), `no smuggled request: ${ctx}`);
  assert.deepEqual(up.parseErrors, [], `the upstream never receives bytes it cannot frame: ${ctx}`);
  return r;
}

interface Want {
  method: string;
  url: string;
  body: string;
}

/** The gateway answers each request 200, in order, and the upstream framed exactly `want`, whole. */
async function expectForwarded(bytes: string, want: Want[]): Promise<{ r: RawResult; seen: SeenRequest[] }> {
  const r = await sendRaw(port, bytes, { responses: want.length, settleMs: 200 });
  await upstreamSettled();
  const ctx = describeResult(r);
  assert.deepEqual(
    r.finals.map((x) => x.status),
    want.map(() => 200),
    `${want.length} answer(s), all 200: ${ctx}`,
  );
  assert.deepEqual(
    up.requests.map((q) => ({ method: q.method, url: q.url, body: q.body.toString('latin1') })),
    want,
    `the upstream framed exactly these requests: ${ctx}`,
  );
  assert.ok(
    up.requests.every((q) => q.complete),
    `each arrived whole: ${ctx}`,
  );
  assert.deepEqual(up.parseErrors, [], `the upstream framed every byte: ${ctx}`);
  // Forwarded framing is the gateway's own: one Transfer-Encoding: chunked, or one Content-Length, never both.
  for (const q of up.requests) {
    const te = q.headerAll('transfer-encoding');
    const cl = q.headerAll('content-length');
    assert.ok(te.length + cl.length <= 1 && te.every((v) => v === 'chunked'), `re-framed: ${JSON.stringify(q.headers)}`);
  }
  // Answers come back in request order: each echo names the upstream's sequence number.
  assert.deepEqual(
    r.finals.map((x) => (JSON.parse(x.body) as { seq: number }).seq),
    up.requests.map((q) => q.seq),
    `answers in request order: ${ctx}`,
  );
  return { r, seen: up.requests };
}

const post = (extra: string, body: string): string => `POST /p HTTP/1.1\r\n${H}${extra}\r\n${body}`;
const chunkedPost = (te: string, body = '5\r\nhello\r\n0\r\n\r\n'): string => post(`${te}\r\n`, body);

describe('control: ordinary requests pass', () => {
  it('a GET and a chunked POST with a quoted extension are forwarded whole', async () => {
    assert.equal(llhttp(`GET /a HTTP/1.1\r\n${H}\r\n`).verdict, 'accepts');
    await expectForwarded(`GET /a?x=1 HTTP/1.1\r\n${H}\r\n`, [{ method: 'GET', url: '/a?x=1', body: '' }]);
    up.clear();
    // chunk-ext = ;name=quoted-string; a ';' inside quotes is part of the value.
    const bytes = chunkedPost('Transfer-Encoding: chunked', '5;a="x;y";b=c\r\nhello\r\n0\r\n\r\n');
    assert.equal(llhttp(bytes).verdict, 'accepts');
    const { seen } = await expectForwarded(bytes, [{ method: 'POST', url: '/p', body: 'hello' }]);
    // Re-framed: the upstream gets chunked or a length, never the client's extension bytes as data.
    const te = seen[0]!.headerAll('transfer-encoding');
    assert.ok(te.length === 0 ? seen[0]!.header('content-length') === '5' : te.join() === 'chunked', `framing forwarded: ${JSON.stringify(seen[0]!.headers)}`);
  });
});

describe('CL.TE and TE.CL: Content-Length and Transfer-Encoding together', () => {
  // RFC 9112 6.1: a sender MUST NOT send Content-Length with Transfer-Encoding;
  // 6.3: TE overrides CL, and such a message "ought to be handled as an error"
  // by a server; a proxy that forwards it would hand the next hop two framings.
  // llhttp: HPE_INVALID_TRANSFER_ENCODING / HPE_INVALID_CONTENT_LENGTH.
  it('CL.TE (Content-Length first): 400, nothing forwarded', async () => {
    const tail = `0\r\n\r\n${SMUGGLED}`;
    const bytes = post(`Content-Length: ${tail.length}\r\nTransfer-Encoding: chunked\r\n`, tail);
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('TE.CL (Transfer-Encoding first): 400, nothing forwarded', async () => {
    const chunk = SMUGGLED;
    const body = `${hex(chunk.length)}\r\n${chunk}\r\n0\r\n\r\n`;
    const bytes = post(`Transfer-Encoding: chunked\r\nContent-Length: 4\r\n`, body);
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });
});

describe('TE.TE: obfuscated Transfer-Encoding', () => {
  // RFC 9112 6.3 (4): Transfer-Encoding present and chunked not the final
  // coding: the server MUST respond 400 and close. Field values lose leading
  // and trailing OWS (RFC 9110 5.5), so " chunked" is chunked.
  it('Transfer-Encoding: xchunked: 400 (not chunked; llhttp refuses), nothing forwarded', async () => {
    const bytes = chunkedPost('Transfer-Encoding: xchunked');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('Transfer-Encoding:  chunked (extra leading space): chunked (RFC: OWS; llhttp accepts), forwarded re-framed', async () => {
    const bytes = chunkedPost('Transfer-Encoding:  chunked');
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectForwarded(bytes, [{ method: 'POST', url: '/p', body: 'hello' }]);
  });

  it('Transfer-Encoding: chunked<SP> (trailing space): chunked (RFC: OWS; llhttp accepts), forwarded re-framed', async () => {
    const bytes = chunkedPost('Transfer-Encoding: chunked ');
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectForwarded(bytes, [{ method: 'POST', url: '/p', body: 'hello' }]);
  });

  it('Transfer-Encoding: chunked<HTAB><SP> (trailing tab): 400, as llhttp (which refuses it although RFC OWS allows it)', async () => {
    const bytes = chunkedPost('Transfer-Encoding: chunked\t ');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    assert.equal(llhttp(chunkedPost('Transfer-Encoding: chunked\t')).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('Transfer-Encoding:<HTAB>chunked: chunked (RFC: OWS; llhttp accepts), forwarded re-framed', async () => {
    const bytes = chunkedPost('Transfer-Encoding:\tchunked');
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectForwarded(bytes, [{ method: 'POST', url: '/p', body: 'hello' }]);
  });

  it('two Transfer-Encoding fields, chunked then identity: 400 (chunked not final; llhttp refuses)', async () => {
    const bytes = chunkedPost('Transfer-Encoding: chunked\r\nTransfer-Encoding: identity');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('two Transfer-Encoding fields, both chunked: 400 (chunked applied twice, RFC 9112 6.1; llhttp refuses)', async () => {
    const bytes = chunkedPost('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('two Transfer-Encoding fields, identity then chunked: refused, 501 or 400 (llhttp accepts it)', async () => {
    // RFC 9112 6.1: a coding the server does not understand SHOULD get 501;
    // a parser that refuses a repeated Transfer-Encoding outright answers 400.
    // Either way it is never forwarded: the next hop would have to undo a
    // coding the gateway did not.
    const bytes = chunkedPost('Transfer-Encoding: identity\r\nTransfer-Encoding: chunked');
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectRefused(bytes, [501, 400], 'head');
  });

  it('Transfer-Encoding: chunked, identity: 400 (chunked not final; llhttp refuses)', async () => {
    const bytes = chunkedPost('Transfer-Encoding: chunked, identity');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('Transfer-Encoding : chunked (space before the colon): 400 (RFC 9112 5.1 MUST reject; llhttp refuses)', async () => {
    const bytes = chunkedPost('Transfer-Encoding : chunked');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('Transfer-Encoding folded onto a continuation line (obs-fold): 400 (RFC 9112 5.2: reject or unfold; llhttp refuses)', async () => {
    const bytes = chunkedPost('Transfer-Encoding:\r\n chunked');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('obs-fold on another field, hiding a Content-Length: 400, nothing forwarded', async () => {
    const bytes = `POST /p HTTP/1.1\r\n${H}X-Note: a\r\n Content-Length: 5\r\n\r\nhello`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('Transfer-Encoding in an HTTP/1.0 request: 400 (RFC 9112 6.1: framing is faulty; llhttp accepts it)', async () => {
    const bytes = `POST /p HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectRefused(bytes, 400, 'head');
  });
});

describe('Content-Length that two parsers could read differently', () => {
  // RFC 9112 6.3 (5): an invalid Content-Length is unrecoverable: 400 and close.
  for (const [name, field] of [
    ['signed (+5)', 'Content-Length: +5'],
    ['repeated with the same value', 'Content-Length: 5\r\nContent-Length: 5'],
    ['a list (5, 5)', 'Content-Length: 5, 5'],
    ['a space before the colon', 'Content-Length : 5'],
  ] as const) {
    it(`Content-Length ${name}: 400 (llhttp refuses), nothing forwarded`, async () => {
      const bytes = post(`${field}\r\n`, 'hello');
      assert.equal(llhttp(bytes).verdict, 'refuses');
      await expectRefused(bytes, 400, 'head');
    });
  }
});

describe('chunk extensions and chunk-size lines', () => {
  // chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF; chunk-size = 1*HEXDIG;
  // chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] ); ext-val =
  // token / quoted-string. A quoted-string cannot contain CR or LF.
  it('an unterminated quoted extension value hiding a request: 400, and never a second upstream request', async () => {
    // A gateway that ends the extension at CRLF reads a last chunk, an empty
    // trailer section and then GET /SMUGGLED as a second request; a server
    // that honours the quotes reads one request. Either way the two disagree.
    const bytes = post('Transfer-Encoding: chunked\r\n', `0;a="x\r\n\r\n${SMUGGLED}"`);
    const l = llhttp(bytes);
    assert.equal(l.verdict, 'refuses');
    assert.match(l.error ?? '', /HPE_STRICT/);
    await expectRefused(bytes, 400, 'body');
  });

  for (const [line, note] of [
    ['2 erfrferferf', 'a space and junk after the size'],
    ['2;', 'a ";" with no extension name'],
    ['a ', 'a space after the size and no ";"'],
    ['5 xyz', 'junk after a space'],
    ['0x5', 'a 0x prefix'],
    ['+5', 'a sign'],
    ['-5', 'a minus sign'],
  ] as const) {
    it(`chunk-size line ${JSON.stringify(line)} (${note}): 400, the upstream never sees the request whole`, async () => {
      const size = parseInt(line.replace(/^0x/, ''), 16) || 5;
      const data = 'x'.repeat(Math.abs(size));
      const bytes = post('Transfer-Encoding: chunked\r\n', `${line}\r\n${data}\r\n0\r\n\r\n`);
      assert.equal(llhttp(bytes).verdict, 'refuses', `llhttp: ${llhttp(bytes).error}`);
      await expectRefused(bytes, 400, 'body');
    });
  }

  it('a chunk size that overflows 64 bits (ffffffffffffffffff): 400, nothing forwarded whole', async () => {
    const bytes = post('Transfer-Encoding: chunked\r\n', 'ffffffffffffffffff\r\nab');
    assert.match(llhttp(bytes).error ?? '', /overflow/);
    await expectRefused(bytes, 400, 'body');
  });

  it('a chunk size of exactly 2^64 (10000000000000000): 400, not read as 0 (a wrapped size would end the body)', async () => {
    const bytes = post('Transfer-Encoding: chunked\r\n', `10000000000000000\r\n\r\n${SMUGGLED}`);
    assert.match(llhttp(bytes).error ?? '', /overflow/);
    await expectRefused(bytes, 400, 'body');
  });

  it('chunk data longer than its size: 400 (llhttp refuses)', async () => {
    const bytes = post('Transfer-Encoding: chunked\r\n', '5\r\nhelloXX\r\n0\r\n\r\n');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'body');
  });

  it('a control character in an extension value: 400 (llhttp refuses)', async () => {
    const bytes = post('Transfer-Encoding: chunked\r\n', '5;a=\x01\r\nhello\r\n0\r\n\r\n');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'body');
  });
});

describe('line endings', () => {
  // RFC 9112 2.2: a recipient MAY take a bare LF as a line end, but llhttp
  // (strict) refuses it, so a gateway that accepts it reads lines a server
  // behind it does not. A bare CR MUST be treated as invalid (or replaced
  // by SP before processing): never a line end.
  it('bare LF ending the request line and fields: 400', async () => {
    const bytes = `GET /lf HTTP/1.1\n${H.replace('\r\n', '\n')}\n`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('bare LF inside the head, hiding a field: 400', async () => {
    const bytes = `GET /lf HTTP/1.1\r\nHost: ${HOST}\nContent-Length: 5\r\n\r\nhello`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('bare LF ending a chunk-size line: 400', async () => {
    const bytes = post('Transfer-Encoding: chunked\r\n', '5\nhello\r\n0\r\n\r\n');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'body');
  });

  it('bare LF after chunk data: 400', async () => {
    const bytes = post('Transfer-Encoding: chunked\r\n', '5\r\nhello\n0\r\n\r\n');
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'body');
  });

  it('bare CR between fields: 400', async () => {
    const bytes = `GET /cr HTTP/1.1\r\nHost: ${HOST}\rContent-Length: 5\r\n\r\nhello`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('bare CR ending the request line: 400', async () => {
    const bytes = `GET /cr HTTP/1.1\r${H}\r\n`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });
});

describe('bytes that do not belong in a head', () => {
  it('NUL in a field value: 400 (RFC 9110 5.5 MUST reject or replace; llhttp refuses)', async () => {
    const bytes = `GET /nul HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('NUL in the request target: 400 (llhttp refuses)', async () => {
    const bytes = `GET /a\0b HTTP/1.1\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('raw UTF-8 bytes (0x80-0xff) in the request target: 400 (not URI characters, RFC 3986; llhttp refuses)', async () => {
    const bytes = `GET /caf\xc3\xa9 HTTP/1.1\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, 400, 'head');
  });

  it('"#" in the request target: 400 (a fragment is never sent, RFC 9112 3.2; llhttp accepts it)', async () => {
    const bytes = `GET /a#frag HTTP/1.1\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectRefused(bytes, 400, 'head');
  });
});

describe('the target and Host decide the route: no second opinion', () => {
  it('absolute-form with a foreign host (GET http://evil.example/a, Host: the route host): 400, never forwarded as /evil.example/a', async () => {
    // RFC 9112 3.2.2: the absolute-form authority replaces Host. The gateway
    // either routes by evil.example (no route here) or refuses; it must never
    // route by Host and forward the scheme and authority as part of the path.
    const bytes = `GET http://evil.example/a HTTP/1.1\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectRefused(bytes, 400, 'head');
  });

  it('absolute-form with the route host: 400, or served with the path from the URI (/a)', async () => {
    const bytes = `GET http://${HOST}/a HTTP/1.1\r\n${H}\r\n`;
    const r = await sendRaw(port, bytes);
    await upstreamSettled();
    const ctx = describeResult(r);
    assert.ok(r.finals.length === 1, ctx);
    if (r.finals[0]!.status === 400) assert.equal(up.requests.length, 0, ctx);
    else {
      assert.equal(r.finals[0]!.status, 200, ctx);
      assert.deepEqual(
        up.requests.map((q) => q.url),
        ['/a'],
        ctx,
      );
    }
  });

  it('Host with userinfo (user@evil.example): 400 (uri-host [":" port] has no userinfo, RFC 9110 7.2; llhttp accepts)', async () => {
    const bytes = `GET /u HTTP/1.1\r\nHost: user@evil.example\r\n\r\n`;
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectRefused(bytes, 400, 'head');
  });

  it('Host with userinfo naming the route host (user@app.example): 400, not routed', async () => {
    const bytes = `GET /u HTTP/1.1\r\nHost: evil@${HOST}\r\n\r\n`;
    await expectRefused(bytes, 400, 'head');
  });

  it('two Host fields: 400 (RFC 9112 3.2 MUST; llhttp accepts)', async () => {
    const bytes = `GET /h HTTP/1.1\r\n${H}Host: evil.example\r\n\r\n`;
    assert.equal(llhttp(bytes).verdict, 'accepts');
    await expectRefused(bytes, 400, 'head');
  });

  it('a method llhttp refuses (ANNOUNCE /x HTTP/1.0): refused (400, or 501 for an unknown method), nothing forwarded', async () => {
    // RFC 9110 9.1: method is a token, and an unknown one gets 501 from an
    // origin; llhttp refuses the request outright (HPE_INVALID_CONSTANT), so a
    // node:http server behind the gateway would read it as garbage.
    const bytes = `ANNOUNCE /x HTTP/1.0\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).verdict, 'refuses');
    await expectRefused(bytes, [400, 501], 'head');
  });
});

describe('message boundaries', () => {
  it('a POST with a correct Content-Length and a GET in the same write: two upstream requests, in order, both answered', async () => {
    const bytes = `POST /p HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhelloGET /g HTTP/1.1\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).complete, 2);
    await expectForwarded(bytes, [
      { method: 'POST', url: '/p', body: 'hello' },
      { method: 'GET', url: '/g', body: '' },
    ]);
  });

  it('a chunked POST with trailers and a GET in the same write: two upstream requests, in order', async () => {
    const bytes = `POST /c HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\nGET /g2 HTTP/1.1\r\n${H}\r\n`;
    assert.equal(llhttp(bytes).complete, 2);
    await expectForwarded(bytes, [
      { method: 'POST', url: '/c', body: 'abc' },
      { method: 'GET', url: '/g2', body: '' },
    ]);
  });

  it('a GET with a body declared by Content-Length: the body goes with it, never as a second request', async () => {
    const bytes = `GET /g HTTP/1.1\r\n${H}Content-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`;
    assert.equal(llhttp(bytes).complete, 1);
    await expectForwarded(bytes, [{ method: 'GET', url: '/g', body: SMUGGLED }]);
  });

  it('trailers carrying Content-Length, Transfer-Encoding and Host are never merged into the forwarded request', async () => {
    // RFC 9110 6.5.1: a trailer field is not merged into the header section
    // unless its definition allows it; framing and routing fields never are.
    // llhttp refuses Content-Length and Transfer-Encoding trailers (it reads
    // them as framing), and accepts a Host trailer. The gateway may drop such
    // trailers and serve the request (200, the upstream framed one request
    // whose head and trailers lack them) or refuse it (400, nothing whole
    // upstream); it must never forward them.
    const base = `POST /t HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n`;
    assert.equal(llhttp(`${base}Content-Length: 50\r\n\r\n`).verdict, 'refuses');
    assert.equal(llhttp(`${base}Transfer-Encoding: chunked\r\n\r\n`).verdict, 'refuses');
    assert.equal(llhttp(`${base}Host: evil.example\r\n\r\n`).verdict, 'accepts');
    for (const trailer of ['Content-Length: 50', 'Transfer-Encoding: chunked', 'Host: evil.example', `Content-Length: 50\r\nTransfer-Encoding: chunked\r\nHost: evil.example`]) {
      up.clear();
      const bytes = `${base}${trailer}\r\n\r\n`;
      const r = await sendRaw(port, bytes);
      await upstreamSettled();
      const ctx = `trailer ${JSON.stringify(trailer)}: ${describeResult(r)}`;
      assert.equal(r.finals.length, 1, ctx);
      assert.deepEqual(up.parseErrors, [], `the upstream framed every byte: ${ctx}`);
      if (r.finals[0]!.status === 400) {
        assert.equal(up.complete.length, 0, ctx);
        continue;
      }
      assert.equal(r.finals[0]!.status, 200, ctx);
      assert.equal(up.requests.length, 1, ctx);
      const q = up.requests[0]!;
      assert.equal(q.body.toString(), 'ab', ctx);
      assert.deepEqual(q.headerAll('host'), [HOST], `Host unchanged: ${ctx}`);
      assert.equal(q.header('content-length') === '50', false, ctx);
      assert.ok(q.headerAll('transfer-encoding').every((v) => v === 'chunked'), ctx);
      const names = [];
      for (let i = 0; i < q.trailers.length; i += 2) names.push(q.trailers[i]!.toLowerCase());
      for (const n of ['content-length', 'transfer-encoding', 'host']) assert.ok(!names.includes(n), `no ${n} trailer forwarded: ${ctx}`);
    }
  });
});

describe('the gateway process', () => {
  it('no error escaped to the process while probing', () => {
    assert.deepEqual(escapes.since(0), []);
  });

  it('still answers an ordinary request on a new connection', async () => {
    await expectForwarded(`GET /still HTTP/1.1\r\n${H}Connection: close\r\n\r\n`, [{ method: 'GET', url: '/still', body: '' }]);
  });
});
