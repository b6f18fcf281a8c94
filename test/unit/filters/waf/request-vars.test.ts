import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  addBodyVars,
  bodyProcessorFor,
  buildHeadVars,
  DEFAULT_VAR_LIMITS,
  type HeadInput,
} from '../../../../src/filters/waf/request-vars.js';
import type { RequestVars } from '../../../../src/filters/waf/types.js';

function head(over: Partial<HeadInput> = {}): RequestVars {
  return buildHeadVars({
    method: 'GET',
    target: '/',
    httpVersion: 'HTTP/1.1',
    headers: [['Host', 'localhost']],
    remoteAddr: '127.0.0.1',
    ...over,
  });
}

/** [name, value] pairs of a collection, in order. */
function pairs(v: RequestVars, coll: string): [string, string][] {
  return (v.collections.get(coll) ?? []).map((e) => [e.name, e.value]);
}

function values(v: RequestVars, coll: string, name: string): string[] {
  return (v.collections.get(coll) ?? []).filter((e) => e.name.toLowerCase() === name.toLowerCase()).map((e) => e.value);
}

function sc(v: RequestVars, name: string): string | undefined {
  return v.scalars.get(name);
}

function post(contentType: string, body: string | Buffer, opts: { truncated?: boolean; processor?: 'URLENCODED' | 'JSON' | 'MULTIPART' | 'XML'; target?: string } = {}): RequestVars {
  const h = head({ method: 'POST', target: opts.target ?? '/upload', headers: [['Host', 'localhost'], ['Content-Type', contentType]] });
  const buf = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  return addBodyVars(h, buf, { truncated: opts.truncated ?? false, processor: opts.processor });
}

/** Multipart body with CRLF line ends from lines. */
function crlf(lines: string[]): string {
  return lines.join('\r\n');
}

describe('request line variables', () => {
  it('keeps REQUEST_URI as sent and decodes REQUEST_FILENAME, without the query', () => {
    const v = head({ method: 'POST', target: '/a%2fb/c%20d.php?x=%27or%201=1--&y=2' });
    assert.equal(sc(v, 'REQUEST_METHOD'), 'POST');
    assert.equal(sc(v, 'REQUEST_PROTOCOL'), 'HTTP/1.1');
    assert.equal(sc(v, 'REQUEST_LINE'), 'POST /a%2fb/c%20d.php?x=%27or%201=1--&y=2 HTTP/1.1');
    assert.equal(sc(v, 'REQUEST_URI'), '/a%2fb/c%20d.php?x=%27or%201=1--&y=2');
    assert.equal(sc(v, 'REQUEST_URI_RAW'), '/a%2fb/c%20d.php?x=%27or%201=1--&y=2');
    assert.equal(sc(v, 'REQUEST_FILENAME'), '/a/b/c d.php');
    assert.equal(sc(v, 'REQUEST_BASENAME'), 'c d.php');
    assert.equal(sc(v, 'QUERY_STRING'), 'x=%27or%201=1--&y=2');
  });

  it('strips scheme and host of an absolute-form target from REQUEST_URI but not from REQUEST_URI_RAW', () => {
    const v = head({ target: 'http://evil.example:8080/admin/../etc/passwd?q=1' });
    assert.equal(sc(v, 'REQUEST_URI'), '/admin/../etc/passwd?q=1');
    assert.equal(sc(v, 'REQUEST_URI_RAW'), 'http://evil.example:8080/admin/../etc/passwd?q=1');
    assert.equal(sc(v, 'REQUEST_FILENAME'), '/admin/../etc/passwd');
    assert.equal(sc(v, 'REQUEST_BASENAME'), 'passwd');
    assert.deepEqual(pairs(v, 'ARGS_GET'), [['q', '1']]);
  });

  it('writes a request line without a version as METHOD target (what CRS 905100 compares)', () => {
    const v = head({ target: '/', httpVersion: '' });
    assert.equal(sc(v, 'REQUEST_LINE'), 'GET /');
    assert.equal(sc(v, 'REQUEST_PROTOCOL'), '');
    assert.equal(sc(head({ httpVersion: '2.0' }), 'REQUEST_PROTOCOL'), 'HTTP/2.0');
    assert.equal(sc(head({ httpVersion: 'HTTP/2.0' }), 'REQUEST_LINE'), 'GET / HTTP/2.0');
  });

  it('takes the basename after the last slash or backslash', () => {
    assert.equal(sc(head({ target: '/dir\\shell.php' }), 'REQUEST_BASENAME'), 'shell.php');
    assert.equal(sc(head({ target: '/dir/' }), 'REQUEST_BASENAME'), '');
  });

  it('keeps raw bytes above 0x7F and decodes %FF to the byte 0xFF', () => {
    const v = head({ target: '/caf\xe9/%FF?n=%e9t%C3%A9' });
    assert.equal(sc(v, 'REQUEST_URI'), '/caf\xe9/%FF?n=%e9t%C3%A9');
    assert.equal(sc(v, 'REQUEST_FILENAME'), '/caf\xe9/\xff');
    assert.deepEqual(pairs(v, 'ARGS'), [['n', '\xe9t\xc3\xa9']]);
  });

  it('sets REMOTE_ADDR, REMOTE_PORT and UNIQUE_ID (generated when not given)', () => {
    const v = head({ remoteAddr: '::1', remotePort: 54321, uniqueId: 'abc123' });
    assert.equal(sc(v, 'REMOTE_ADDR'), '::1');
    assert.equal(sc(v, 'REMOTE_PORT'), '54321');
    assert.equal(sc(v, 'UNIQUE_ID'), 'abc123');
    const a = sc(head(), 'UNIQUE_ID');
    const b = sc(head(), 'UNIQUE_ID');
    assert.match(a ?? '', /^[0-9a-f]{24}$/);
    assert.notEqual(a, b);
  });
});

describe('query arguments', () => {
  it('URL-decodes names and values, + as space, and keeps invalid escapes as sent', () => {
    const v = head({ target: '/?a=1+2&b=%3Cscript%3E&c=%zz&d%5B%5D=x' });
    assert.deepEqual(pairs(v, 'ARGS'), [['a', '1 2'], ['b', '<script>'], ['c', '%zz'], ['d[]', 'x']]);
    assert.deepEqual(pairs(v, 'ARGS_GET'), pairs(v, 'ARGS'));
    assert.deepEqual(pairs(v, 'ARGS_NAMES'), [['a', 'a'], ['b', 'b'], ['c', 'c'], ['d[]', 'd[]']]);
    assert.deepEqual(pairs(v, 'ARGS_GET_NAMES'), pairs(v, 'ARGS_NAMES'));
    assert.deepEqual(pairs(v, 'ARGS_POST'), []);
  });

  it('gives a parameter without = an empty value and keeps duplicate names as separate entries', () => {
    const v = head({ target: '/?flag&id=1&id=2&=anon' });
    assert.deepEqual(pairs(v, 'ARGS'), [['flag', ''], ['id', '1'], ['id', '2'], ['', 'anon']]);
  });

  it('sums name and value lengths into ARGS_COMBINED_SIZE', () => {
    assert.equal(sc(head({ target: '/?ab=cde&f=%41' }), 'ARGS_COMBINED_SIZE'), String(2 + 3 + 1 + 1));
  });

  it('stops at the argument cap and reports it through REQBODY_ERROR', () => {
    const q = Array.from({ length: 1500 }, (_, i) => `p${i}=1`).join('&');
    const v = head({ target: `/?${q}` });
    assert.equal(v.collections.get('ARGS')?.length, DEFAULT_VAR_LIMITS.maxArgs);
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /Argument limit exceeded/);
    // The error survives the body phase.
    const after = addBodyVars(v, Buffer.alloc(0), { truncated: false });
    assert.equal(sc(after, 'REQBODY_ERROR'), '1');
  });
});

describe('headers and cookies', () => {
  it('keeps header names as sent, in order, duplicates included', () => {
    const v = head({ headers: [['Host', 'a'], ['X-Forwarded-For', '1.1.1.1'], ['x-forwarded-for', '2.2.2.2'], ['User-Agent', 'sqlmap/1.0']] });
    assert.deepEqual(pairs(v, 'REQUEST_HEADERS'), [['Host', 'a'], ['X-Forwarded-For', '1.1.1.1'], ['x-forwarded-for', '2.2.2.2'], ['User-Agent', 'sqlmap/1.0']]);
    assert.deepEqual(pairs(v, 'REQUEST_HEADERS_NAMES').map(([n]) => n), ['Host', 'X-Forwarded-For', 'x-forwarded-for', 'User-Agent']);
    assert.deepEqual(values(v, 'REQUEST_HEADERS', 'X-FORWARDED-FOR'), ['1.1.1.1', '2.2.2.2']);
  });

  it('splits cookies on ; at the first =, trims leading name space, skips empty names, never decodes', () => {
    const v = head({ headers: [['Cookie', 'sid=a%20b; theme=dark=blue;  flag ; =orphan;;last=x  '], ['cookie', 'second=2']] });
    assert.deepEqual(pairs(v, 'REQUEST_COOKIES'), [
      ['sid', 'a%20b'], ['theme', 'dark=blue'], ['flag ', ''], ['last', 'x'], ['second', '2'],
    ]);
    assert.deepEqual(pairs(v, 'REQUEST_COOKIES_NAMES').map(([n]) => n), ['sid', 'theme', 'flag ', 'last', 'second']);
  });

  it('uses :authority as Host for HTTP/2 and drops the other pseudo-headers', () => {
    const v = head({ httpVersion: 'HTTP/2.0', headers: [[':method', 'GET'], [':authority', 'api.example'], [':path', '/'], ['accept', '*/*']] });
    assert.deepEqual(pairs(v, 'REQUEST_HEADERS'), [['Host', 'api.example'], ['accept', '*/*']]);
    const both = head({ headers: [[':authority', 'x'], ['host', 'y']] });
    assert.deepEqual(pairs(both, 'REQUEST_HEADERS'), [['host', 'y']]);
  });
});

describe('body processor selection', () => {
  it('picks the processor from Content-Type', () => {
    const cases: [string, string | undefined][] = [
      ['application/x-www-form-urlencoded; charset=UTF-8', 'URLENCODED'],
      ['Multipart/Form-Data; boundary=x', 'MULTIPART'],
      ['application/json', 'JSON'],
      ['application/vnd.api+json; charset=utf-8', 'JSON'],
      ['text/xml', 'XML'],
      ['application/soap+xml', 'XML'],
      ['text/plain', undefined],
      ['application/jsonp', undefined],
    ];
    for (const [ct, want] of cases) assert.equal(bodyProcessorFor(ct), want, ct);
    assert.equal(sc(head({ headers: [['Content-Type', 'application/problem+json']] }), 'REQBODY_PROCESSOR'), 'JSON');
    assert.equal(sc(head({ headers: [['Content-Type', 'text/plain']] }), 'REQBODY_PROCESSOR'), '');
  });

  it('leaves an unknown body type to REQUEST_BODY only', () => {
    const v = post('text/plain', 'a=1&b=<script>');
    assert.equal(sc(v, 'REQUEST_BODY'), 'a=1&b=<script>');
    assert.equal(sc(v, 'REQUEST_BODY_LENGTH'), '14');
    assert.deepEqual(pairs(v, 'ARGS_POST'), []);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
  });

  it('parses with the processor forced by ctl:requestBodyProcessor', () => {
    const v = post('text/plain', 'a=1&b=%3Cscript%3E', { processor: 'URLENCODED' });
    assert.equal(sc(v, 'REQBODY_PROCESSOR'), 'URLENCODED');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['a', '1'], ['b', '<script>']]);
  });

  it('parses XML into the XML collection (not ARGS) and keeps the body in REQUEST_BODY', () => {
    const v = post('application/xml', '<a><b>1 OR 1=1</b></a>');
    assert.equal(sc(v, 'REQBODY_PROCESSOR'), 'XML');
    assert.deepEqual(pairs(v, 'ARGS_POST'), []);
    assert.deepEqual(pairs(v, 'XML'), [['/*', '1 OR 1=1']]);
    assert.equal(sc(v, 'REQUEST_BODY'), '<a><b>1 OR 1=1</b></a>');
  });
});

describe('XML body', () => {
  it('gives the root text content as XML:/* and every attribute value as XML://@*', () => {
    const v = post('text/xml', '<?xml version="1.0"?>\n<!-- c --><root id="r"><a probe="/etc/passwd" x=\'y\'>one <b>two</b></a><?pi data?><!-- no -->three<e/></root>\n');
    assert.deepEqual(pairs(v, 'XML'), [
      ['/*', 'one twothree'],
      ['//@*', 'r'],
      ['//@*', '/etc/passwd'],
      ['//@*', 'y'],
    ]);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
  });

  it('decodes references and CDATA, normalizes line ends and attribute white space', () => {
    const v = post('application/xml', '<r a="&lt;script&gt;&#x7B;&#65;&quot;\tz\r\n">&amp;&#8217;<![CDATA[<b>&lt;]]>l1\r\nl2\rl3</r>');
    assert.deepEqual(pairs(v, 'XML'), [
      ['/*', '&\xe2\x80\x99<b>&lt;l1\nl2\nl3'],
      ['//@*', '<script>{A" z '],
    ]);
  });

  it('expands internal entities of the DOCTYPE and leaves external ones empty (never loaded)', () => {
    const v = post('application/xml', '<!DOCTYPE r [<!ENTITY i "in&#65;"><!ENTITY x SYSTEM "file:///etc/passwd">]><r q="&i;">&i;&x;</r>');
    assert.deepEqual(pairs(v, 'XML'), [['/*', 'inA'], ['//@*', 'inA']]);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
  });

  it('reports a document libxml2 refuses as REQBODY_ERROR and keeps what it read', () => {
    for (const [body, msg] of [
      ['<a><b>x</a>', /tag mismatch/],
      ['<a/><b/>', /Extra content/],
      ['', /empty/],
      ['not xml', /Start tag expected/],
      ['<a x="1" x="2"/>', /redefined/],
      ['<a>&nope;</a>', /not defined/],
      ['<a><b>', /Premature end/],
      ['<a x="<"/>', /Unescaped '<'/],
      ['<a>]]></a>', /not allowed in content/],
      ['<a>' + '<b>'.repeat(300), /Excessive depth/],
    ] as const) {
      const v = post('application/xml', body);
      assert.equal(sc(v, 'REQBODY_ERROR'), '1', body);
      assert.match(sc(v, 'REQBODY_ERROR_MSG')!, /^XML parsing error: /);
      assert.match(sc(v, 'REQBODY_ERROR_MSG')!, msg, body);
    }
    assert.deepEqual(pairs(post('application/xml', '<a p="1 OR 1=1">t<b>'), 'XML'), [['/*', 't'], ['//@*', '1 OR 1=1']]);
  });

  it('stops entity expansion past a budget (billion laughs)', () => {
    const decls = ['<!ENTITY l0 "lollollollollollollollollollol">'];
    for (let k = 1; k < 8; k++) decls.push(`<!ENTITY l${k} "${`&l${k - 1};`.repeat(10)}">`);
    const v = post('application/xml', `<!DOCTYPE r [${decls.join('')}]><r>&l7;</r>`);
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG')!, /amplification/);
  });

  it('reads a UTF-16 document by its byte order mark', () => {
    const doc = '<r a="é">1 OR 1=1</r>';
    for (const body of [Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(doc, 'utf16le')]), Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(doc, 'utf16le').swap16()])]) {
      const v = post('application/xml', body);
      assert.equal(sc(v, 'REQBODY_ERROR'), '0');
      assert.deepEqual(pairs(v, 'XML'), [['/*', '1 OR 1=1'], ['//@*', '\xc3\xa9']]);
    }
  });

  it('does not refuse a body cut at the inspection limit for ending early', () => {
    const v = post('application/xml', '<r><a k="v">some text', { truncated: true });
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(v, 'XML'), [['/*', 'some text'], ['//@*', 'v']]);
  });
});

describe('urlencoded body', () => {
  it('adds ARGS_POST after the query arguments and leaves the head vars untouched', () => {
    const h = head({ method: 'POST', target: '/login?next=%2Fhome', headers: [['Content-Type', 'application/x-www-form-urlencoded']] });
    const v = addBodyVars(h, Buffer.from("user=admin'--&pass=x+y"), { truncated: false });
    assert.deepEqual(pairs(v, 'ARGS'), [['next', '/home'], ['user', "admin'--"], ['pass', 'x y']]);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['user', "admin'--"], ['pass', 'x y']]);
    assert.deepEqual(pairs(v, 'ARGS_POST_NAMES'), [['user', 'user'], ['pass', 'pass']]);
    assert.deepEqual(pairs(v, 'ARGS_GET'), [['next', '/home']]);
    assert.equal(sc(v, 'ARGS_COMBINED_SIZE'), String(4 + 5 + 4 + 8 + 4 + 3));
    assert.equal(sc(v, 'REQBODY_PROCESSOR'), 'URLENCODED');
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(h, 'ARGS'), [['next', '/home']]);
    assert.equal(h.scalars.has('REQUEST_BODY'), false);
  });

  it('inspects the partial last pair of a truncated body without an error', () => {
    const v = post('application/x-www-form-urlencoded', 'a=1&q=union%20sel', { truncated: true });
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['a', '1'], ['q', 'union sel']]);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.equal(sc(v, 'INBOUND_DATA_ERROR'), '1');
  });

  it('keeps non-UTF-8 bytes byte for byte', () => {
    const v = post('application/x-www-form-urlencoded', Buffer.from([0x6e, 0x3d, 0xff, 0xfe, 0x25, 0x38, 0x30]));
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['n', '\xff\xfe\x80']]);
  });
});

describe('JSON body', () => {
  it('names leaves json.<path>, array elements .array_N, as ModSecurity v3 does', () => {
    const body = JSON.stringify({ a: { b: 1 }, c: [true, { d: null }, [1.5e3, 'x']], '': 'e', s: "' or 1=1" });
    const v = post('application/json', body);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [
      ['json.a.b', '1'],
      ['json.c.array_0', 'true'],
      ['json.c.array_1.d', ''],
      ['json.c.array_2.array_0', '1500'],
      ['json.c.array_2.array_1', 'x'],
      ['json.empty-key', 'e'],
      ['json.s', "' or 1=1"],
    ]);
    assert.deepEqual(pairs(v, 'ARGS_NAMES').map(([n]) => n), pairs(v, 'ARGS_POST').map(([n]) => n));
    assert.equal(sc(v, 'REQBODY_PROCESSOR'), 'JSON');
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
  });

  it('names leaves the same way from one body to the next, whatever shape a path takes in each', () => {
    // Names are remembered across bodies (a tree of members and elements): a
    // path that was an object, then an array, then longer, must still be named
    // from the body at hand.
    const bodies: [string, [string, string][]][] = [
      ['{"a":{"b":1,"c":[2,3]},"d":"x"}', [['json.a.b', '1'], ['json.a.c.array_0', '2'], ['json.a.c.array_1', '3'], ['json.d', 'x']]],
      ['{"a":[{"b":4},5,[6]],"":7}', [['json.a.array_0.b', '4'], ['json.a.array_1', '5'], ['json.a.array_2.array_0', '6'], ['json.empty-key', '7']]],
      ['{"a":{"c":[8,9,10,11],"b":12},"empty-key":13}', [['json.a.c.array_0', '8'], ['json.a.c.array_1', '9'], ['json.a.c.array_2', '10'], ['json.a.c.array_3', '11'], ['json.a.b', '12'], ['json.empty-key', '13']]],
      ['[{"d":"y"},"z"]', [['json.array_0.d', 'y'], ['json.array_1', 'z']]],
      ['"w"', [['json', 'w']]],
    ];
    for (let round = 0; round < 3; round++) {
      for (const [body, want] of bodies) {
        const v = post('application/json', body);
        assert.deepEqual(pairs(v, 'ARGS_POST'), want, `${body} (round ${round})`);
        assert.deepEqual(pairs(v, 'ARGS_NAMES').map(([n]) => n), want.map(([n]) => n));
      }
    }
  });

  it('names leaves right after 40,000 keys that never repeat (the remembered names start again when full)', () => {
    for (let b = 0; b < 40; b++) {
      const obj: Record<string, number> = {};
      for (let k = 0; k < 1000; k++) obj[`k${b}_${k}`] = k;
      const v = post('application/json', JSON.stringify({ batch: obj }));
      const got = pairs(v, 'ARGS_POST');
      assert.equal(got.length, 1000);
      assert.deepEqual(got[999], [`json.batch.k${b}_999`, '999']);
    }
    assert.deepEqual(pairs(post('application/json', '{"a":{"b":[1]}}'), 'ARGS_POST'), [['json.a.b.array_0', '1']]);
  });

  it('names a root scalar json and root array elements json.array_N; numbers keep their text', () => {
    assert.deepEqual(pairs(post('application/json', '"<script>"'), 'ARGS_POST'), [['json', '<script>']]);
    assert.deepEqual(pairs(post('application/json', '[1, -0.50E+2, false]'), 'ARGS_POST'), [
      ['json.array_0', '1'], ['json.array_1', '-0.50E+2'], ['json.array_2', 'false'],
    ]);
    assert.deepEqual(pairs(post('application/json', '{}'), 'ARGS_POST'), []);
  });

  it('decodes escapes to UTF-8 bytes and passes raw non-UTF-8 bytes through', () => {
    const raw = Buffer.concat([Buffer.from('{"k":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" '), Buffer.from([0xff, 0xc0]), Buffer.from('"}')]);
    const v = post('application/json', raw);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['json.k', 'caf\xc3\xa9 \xf0\x9f\x98\x80 "q" \xff\xc0']]);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
  });

  it('reads long strings (searched natively past their first chars) as JSON.parse does, escapes and errors wherever they fall', () => {
    // Random documents of strings from 0 to 300 chars with escapes, quotes and
    // non-ASCII chars at random places; JSON.parse is the oracle for the value
    // (ours is UTF-8 bytes as latin1 chars).
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const pieces = ['a', 'b', ' ', '<', '/', '\\"', '\\\\', '\\n', '\\u0041', '\\u00e9', '\\ud83d\\ude00', 'é', '中'];
    for (let doc = 0; doc < 300; doc++) {
      const values: string[] = [];
      for (let k = 0; k < 4; k++) {
        const len = [0, 5, 31, 32, 33, 40, 120, 300][rnd(8)]!;
        let v = '';
        // Mostly plain chars, so a special one lands anywhere in a long string.
        while (v.length < len) v += rnd(12) === 0 ? pieces[rnd(pieces.length)] : 'x';
        values.push(v);
      }
      const body = `{${values.map((v, k) => `"k${k}":"${v}"`).join(',')}}`;
      const got = pairs(post('application/json', Buffer.from(body, 'utf8')), 'ARGS_POST').map(([n, v]) => [n, Buffer.from(v, 'latin1').toString('utf8')]);
      const want = Object.entries(JSON.parse(body) as Record<string, string>).map(([n, v]) => [`json.${n}`, v]);
      assert.deepEqual(got, want, body);
    }
    // A control char, or an invalid escape, past the first 32 chars is still an error; a backslash after the closing quote is not.
    const long = 'y'.repeat(40);
    assert.equal(sc(post('application/json', `{"a":"${long}\x01"}`), 'REQBODY_ERROR'), '1');
    assert.equal(sc(post('application/json', `{"a":"${long}\\q"}`), 'REQBODY_ERROR'), '1');
    const v = post('application/json', `{"a":"${long}","b":"\\n${long}"}`);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['json.a', long], ['json.b', `\n${long}`]]);
    // Cut inside a long string: the part that arrived, no error.
    assert.deepEqual(pairs(post('application/json', `{"a":"${long}<scr`, { truncated: true }), 'ARGS_POST'), [['json.a', `${long}<scr`]]);
  });

  it('reports malformed JSON in REQBODY_ERROR and keeps the leaves read before the error', () => {
    const v = post('application/json', '{"a":"1","b":2,}');
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /^JSON parsing error: /);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['json.a', '1'], ['json.b', '2']]);
    for (const bad of ['{"a":01}', "{'a':1}", '[1] [2]', '{"a":tru}', '{"a":"x\ny"}', 'test', '{"a":1']) {
      assert.equal(sc(post('application/json', bad), 'REQBODY_ERROR'), '1', bad);
    }
    assert.equal(sc(post('application/json', ''), 'REQBODY_ERROR'), '0');
  });

  it('parses a truncated body up to the cut, inspecting a value cut in half, with no error', () => {
    const body = '{"a":"ok","b":["<script>alert(1)</scr';
    const cut = post('application/json', body, { truncated: true });
    assert.equal(sc(cut, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(cut, 'ARGS_POST'), [['json.a', 'ok'], ['json.b.array_0', '<script>alert(1)</scr']]);
    assert.equal(sc(post('application/json', body), 'REQBODY_ERROR'), '1');
    // Cut inside a key or a literal: nothing invented, no error.
    assert.deepEqual(pairs(post('application/json', '{"a":1,"lo', { truncated: true }), 'ARGS_POST'), [['json.a', '1']]);
    assert.equal(sc(post('application/json', '[tr', { truncated: true }), 'REQBODY_ERROR'), '0');
    // A real syntax error before the cut is still an error.
    assert.equal(sc(post('application/json', '{"a" 1, "b":"x', { truncated: true }), 'REQBODY_ERROR'), '1');
  });

  it('refuses a 5,000-deep document at the depth cap without exhausting the stack', () => {
    const deep = '['.repeat(5000) + '"x"' + ']'.repeat(5000);
    const v = post('application/json', deep);
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /depth limit exceeded \(more than 512/);
    const objs = '{"a":'.repeat(5000) + '1' + '}'.repeat(5000);
    assert.equal(sc(post('application/json', objs), 'REQBODY_ERROR'), '1');
  });

  it('parses 5,000 levels iteratively when the depth cap allows it', () => {
    const deep = '['.repeat(5000) + '"x"' + ']'.repeat(5000);
    const h = head({ method: 'POST', headers: [['Content-Type', 'application/json']] });
    const v = addBodyVars(h, Buffer.from(deep), { truncated: false, limits: { maxJsonDepth: 10_000, maxArgNameBytes: 1 << 20 } });
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['json' + '.array_0'.repeat(5000), 'x']]);
  });

  it('caps the number of leaves and the bytes of their names', () => {
    const many = post('application/json', '[' + Array(5000).fill('1').join(',') + ']');
    assert.equal(many.collections.get('ARGS_POST')?.length, 1000);
    assert.equal(sc(many, 'REQBODY_ERROR'), '1');
    assert.match(sc(many, 'REQBODY_ERROR_MSG') ?? '', /Argument limit exceeded/);

    // Long keys nested deep make names grow quadratically; the name budget stops it.
    const key = 'k'.repeat(4000);
    let doc = '1';
    for (let i = 0; i < 400; i++) doc = `{"v":1,"${key}":${doc}}`;
    const t0 = performance.now();
    const long = post('application/json', doc);
    assert.ok(performance.now() - t0 < 2000);
    assert.equal(sc(long, 'REQBODY_ERROR'), '1');
    assert.match(sc(long, 'REQBODY_ERROR_MSG') ?? '', /name bytes limit/);
    const total = (long.collections.get('ARGS_POST') ?? []).reduce((n, e) => n + e.name.length, 0);
    assert.ok(total <= DEFAULT_VAR_LIMITS.maxArgNameBytes);
  });
});

describe('multipart body', () => {
  const CT = 'multipart/form-data; boundary=----WebKitFormBoundary7MA4';
  const B = '------WebKitFormBoundary7MA4';

  it('puts fields in ARGS_POST and files in FILES, FILES_NAMES and FILES_SIZES', () => {
    const body = crlf([
      B,
      'Content-Disposition: form-data; name="comment"',
      '',
      "line1\r\n' OR 1=1 --",
      B,
      'Content-Disposition: form-data; name="avatar"; filename="shell.php"',
      'Content-Type: application/x-php',
      '',
      '<?php system($_GET[c]); ?>',
      B + '--',
      '',
    ]);
    const v = post(CT, body);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['comment', "line1\r\n' OR 1=1 --"]]);
    assert.deepEqual(pairs(v, 'FILES'), [['avatar', 'shell.php']]);
    assert.deepEqual(pairs(v, 'FILES_NAMES'), [['avatar', 'avatar']]);
    assert.deepEqual(pairs(v, 'FILES_SIZES'), [['avatar', '26']]);
    assert.equal(sc(v, 'FILES_COMBINED_SIZE'), '26');
    assert.deepEqual(pairs(v, 'MULTIPART_PART_HEADERS'), [
      ['comment', 'Content-Disposition: form-data; name="comment"'],
      ['avatar', 'Content-Disposition: form-data; name="avatar"; filename="shell.php"'],
      ['avatar', 'Content-Type: application/x-php'],
    ]);
    assert.deepEqual(pairs(v, 'MULTIPART_NAME').map(([n]) => n), ['comment', 'avatar']);
    assert.deepEqual(pairs(v, 'MULTIPART_FILENAME').map(([n]) => n), ['shell.php']);
    assert.equal(sc(v, 'MULTIPART_STRICT_ERROR'), '0');
    assert.equal(sc(v, 'MULTIPART_UNMATCHED_BOUNDARY'), '0');
    assert.equal(sc(v, 'REQBODY_PROCESSOR'), 'MULTIPART');
  });

  it('accepts LF-only lines (as the CRS tests send them) and flags them', () => {
    const body = '--boundary\nContent-disposition: form-data; name="_charset_"\n\nutf-7\n--boundary\nContent-disposition: form-data; name="positive"\nContent-Type: text/plain\n\nLet me see.\n--boundary--\n';
    const v = post('multipart/form-data; boundary=boundary', body);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['_charset_', 'utf-7'], ['positive', 'Let me see.']]);
    // CRS 922100 counts &MULTIPART_PART_HEADERS:_charset_.
    assert.equal(values(v, 'MULTIPART_PART_HEADERS', '_charset_').length, 1);
    assert.deepEqual(values(v, 'MULTIPART_PART_HEADERS', 'positive'), ['Content-disposition: form-data; name="positive"', 'Content-Type: text/plain']);
    assert.equal(sc(v, 'MULTIPART_LF_LINE'), '1');
    assert.equal(sc(v, 'MULTIPART_CRLF_LF_LINES'), '0');
    assert.equal(sc(v, 'MULTIPART_STRICT_ERROR'), '1');
  });

  it('keeps a header name with a control character so CRS 922130 sees it, and reports the error', () => {
    const body = '--boundary\r\n\x0eContent-Disposition: form-data; name="file"; filename="1.php"\r\nContent-Disposition: form-data; name="post"\r\n\r\n<?php ?>\r\n--boundary--';
    const v = post('multipart/form-data; boundary=boundary', body);
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /^Multipart parsing error: Multipart: Invalid part header \(contains invalid character\)/);
    assert.ok(values(v, 'MULTIPART_PART_HEADERS', 'post').some((l) => /[^\x21-\x7E][\x21-\x39\x3B-\x7E]*:/.test(l)));
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['post', '<?php ?>']]);
  });

  it('keeps backslashes that are not escapes in filename and name (CRS 920120)', () => {
    const body = crlf(['--b', 'Content-Disposition: form-data; name="cv.p\\d\\f"; filename="1.j\\s\\p"', '', 'x', '--b--', '']);
    const v = post('multipart/form-data; boundary=b', body);
    assert.deepEqual(pairs(v, 'FILES'), [['cv.p\\d\\f', '1.j\\s\\p']]);
    const esc = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data; name="a\\"b"', '', 'x', '--b--', '']));
    assert.deepEqual(pairs(esc, 'ARGS_POST'), [['a"b', 'x']]);
  });

  it('treats an empty filename as a field, and flags single quotes', () => {
    const v = post('multipart/form-data; boundary=b', crlf(['--b', "Content-Disposition: form-data; name='n'; filename=\"\"", '', 'v', '--b--', '']));
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['n', 'v']]);
    assert.deepEqual(pairs(v, 'FILES'), []);
    assert.equal(sc(v, 'MULTIPART_INVALID_QUOTING'), '1');
  });

  it('flags the Content-Type oddities: quoted boundary, missing semicolon, whitespace', () => {
    const body = crlf(['--abc', 'Content-Disposition: form-data; name="a"', '', '1', '--abc--', '']);
    const quoted = post('multipart/form-data; boundary="abc"', body);
    assert.equal(sc(quoted, 'MULTIPART_BOUNDARY_QUOTED'), '1');
    assert.deepEqual(pairs(quoted, 'ARGS_POST'), [['a', '1']]);
    const noSemi = post('multipart/form-data boundary=abc', body);
    assert.equal(sc(noSemi, 'MULTIPART_MISSING_SEMICOLON'), '1');
    assert.deepEqual(pairs(noSemi, 'ARGS_POST'), [['a', '1']]);
    const ws = post('multipart/form-data; boundary =abc', body);
    assert.equal(sc(ws, 'MULTIPART_BOUNDARY_WHITESPACE'), '1');
    // Parameters after the boundary are an error for the checks but the body still parses.
    const trailing = post('multipart/form-data; boundary=abc; charset=utf-8', body);
    assert.equal(sc(trailing, 'REQBODY_ERROR'), '1');
    assert.deepEqual(pairs(trailing, 'ARGS_POST'), [['a', '1']]);
    const none = post('multipart/form-data', body);
    assert.equal(sc(none, 'REQBODY_ERROR'), '1');
    assert.match(sc(none, 'REQBODY_ERROR_MSG') ?? '', /Boundary not found in C-T/);
    assert.deepEqual(pairs(none, 'ARGS_POST'), []);
  });

  it('flags data before the first and after the last boundary', () => {
    const v = post('multipart/form-data; boundary=b', crlf(['preamble', '--b', 'Content-Disposition: form-data; name="a"', '', '1', '--b--', 'epilogue']));
    assert.equal(sc(v, 'MULTIPART_DATA_BEFORE'), '1');
    assert.equal(sc(v, 'MULTIPART_DATA_AFTER'), '1');
    assert.equal(sc(v, 'MULTIPART_STRICT_ERROR'), '1');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['a', '1']]);
  });

  it('flags a line that looks like a boundary but is not', () => {
    const v = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data; name="a"', '', '--bogus', 'x --b y', '--b--', '']));
    assert.equal(sc(v, 'MULTIPART_UNMATCHED_BOUNDARY'), '1');
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['a', '--bogus\r\nx --b y']]);
    const inline = post('multipart/form-data; boundary=bnd', crlf(['--bnd', 'Content-Disposition: form-data; name="a"', '', 'text--bnd more', '--bnd--', '']));
    assert.equal(sc(inline, 'MULTIPART_UNMATCHED_BOUNDARY'), '1');
  });

  it('joins folded header lines and flags folding (invalid when not SP/HT)', () => {
    const v = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data;', '\tname="folded"', '', 'v', '--b--', '']));
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['folded', 'v']]);
    assert.deepEqual(values(v, 'MULTIPART_PART_HEADERS', 'folded'), ['Content-Disposition: form-data; name="folded"']);
    assert.equal(sc(v, 'MULTIPART_HEADER_FOLDING'), '1');
    assert.equal(sc(v, 'MULTIPART_INVALID_HEADER_FOLDING'), '0');
    const bad = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data;', '\x0bname="f"', '', 'v', '--b--', '']));
    assert.equal(sc(bad, 'MULTIPART_INVALID_HEADER_FOLDING'), '1');
  });

  it('skips parts without Content-Disposition or name and reports them', () => {
    const noCd = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Type: text/plain', '', 'hidden', '--b--', '']));
    assert.equal(sc(noCd, 'REQBODY_ERROR'), '1');
    assert.match(sc(noCd, 'REQBODY_ERROR_MSG') ?? '', /Part missing Content-Disposition header/);
    assert.equal(sc(noCd, 'MULTIPART_INVALID_PART'), '1');
    assert.deepEqual(pairs(noCd, 'ARGS_POST'), []);
    const noName = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data; name=""; filename=""', '', 'x', '--b--', '']));
    assert.match(sc(noName, 'REQBODY_ERROR_MSG') ?? '', /missing name field/);
    const noHeaders = post('multipart/form-data; boundary=b', '--b\ntest\n--b\nyet another\n--b--\n');
    assert.equal(sc(noHeaders, 'REQBODY_ERROR'), '1');
    assert.deepEqual(pairs(noHeaders, 'MULTIPART_PART_HEADERS'), []);
  });

  it('reports duplicate part headers and nul bytes, using the first Content-Disposition', () => {
    const dup = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data; name="first"', 'content-disposition: form-data; name="second"', '', 'v', '--b--', '']));
    assert.match(sc(dup, 'REQBODY_ERROR_MSG') ?? '', /Duplicate part header/);
    assert.deepEqual(pairs(dup, 'ARGS_POST'), [['first', 'v']]);
    const nul = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data; name="a"\0', '', 'v', '--b--', '']));
    assert.match(sc(nul, 'REQBODY_ERROR_MSG') ?? '', /Nul byte in part headers/);
  });

  it('caps header lines per part, folded continuations included', () => {
    const lines = ['--b', 'Content-Disposition: form-data; name="a"'];
    for (let i = 0; i < 50; i++) lines.push(`X-H${i}: v`, ' folded');
    const v = post('multipart/form-data; boundary=b', crlf([...lines, '', 'data', '--b--', '']));
    // Content-Disposition, X-H0..X-H7 and seven folds make the 16 lines kept.
    assert.equal(values(v, 'MULTIPART_PART_HEADERS', 'a').length, 9);
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /Too many part header lines \(more than 16\)/);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['a', 'data']]);
  });

  it('reports a missing final boundary but still inspects the last part', () => {
    const v = post('multipart/form-data; boundary=b', crlf(['--b', 'Content-Disposition: form-data; name="a"', '', "1' union select"]));
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /Final boundary missing/);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['a', "1' union select"]]);
    const none = post('multipart/form-data; boundary=b', 'no boundary here');
    assert.match(sc(none, 'REQBODY_ERROR_MSG') ?? '', /No boundaries found in payload/);
  });

  it('parses a truncated body up to the cut without a parse error', () => {
    const full = crlf(['--b', 'Content-Disposition: form-data; name="a"', '', '1', '--b', 'Content-Disposition: form-data; name="big"', '', '<script>alert(1)</script>', '--b--', '']);
    const inData = post('multipart/form-data; boundary=b', full.slice(0, full.indexOf('</script>')), { truncated: true });
    assert.equal(sc(inData, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(inData, 'ARGS_POST'), [['a', '1'], ['big', '<script>alert(1)']]);
    assert.equal(sc(inData, 'MULTIPART_STRICT_ERROR'), '0');

    const inHeaders = post('multipart/form-data; boundary=b', full.slice(0, full.indexOf('name="big"')), { truncated: true });
    assert.equal(sc(inHeaders, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(inHeaders, 'ARGS_POST'), [['a', '1']]);
    assert.equal(sc(inHeaders, 'MULTIPART_INVALID_PART'), '0');

    const inBoundary = post('multipart/form-data; boundary=b', full.slice(0, full.lastIndexOf('--b--') + 2), { truncated: true });
    assert.equal(sc(inBoundary, 'REQBODY_ERROR'), '0');
    assert.deepEqual(pairs(inBoundary, 'ARGS_POST'), [['a', '1'], ['big', '<script>alert(1)</script>']]);
    assert.equal(sc(inBoundary, 'MULTIPART_UNMATCHED_BOUNDARY'), '0');
  });

  it('stops at the part cap on a 10,000-part body', () => {
    const parts: string[] = [];
    for (let i = 0; i < 10_000; i++) parts.push(`--b\r\nContent-Disposition: form-data; name="f${i}"\r\n\r\nv${i}\r\n`);
    const body = parts.join('') + '--b--\r\n';
    const t0 = performance.now();
    const v = post('multipart/form-data; boundary=b', body);
    const ms = performance.now() - t0;
    assert.equal(v.collections.get('ARGS_POST')?.length, DEFAULT_VAR_LIMITS.maxMultipartParts);
    assert.equal(v.collections.get('MULTIPART_PART_HEADERS')?.length, DEFAULT_VAR_LIMITS.maxMultipartParts);
    assert.equal(sc(v, 'REQBODY_ERROR'), '1');
    assert.match(sc(v, 'REQBODY_ERROR_MSG') ?? '', /Too many parts|Argument limit/);
    assert.equal(sc(v, 'MULTIPART_FILE_LIMIT_EXCEEDED'), '1');
    assert.ok(ms < 2000, `${ms} ms`);
  });

  it('keeps non-UTF-8 bytes in field values, names and file names', () => {
    const body = Buffer.concat([
      Buffer.from('--b\r\nContent-Disposition: form-data; name="n\xe9"; filename="f\xff.txt"\r\n\r\n', 'latin1'),
      Buffer.from([0x00, 0xff, 0x80]),
      Buffer.from('\r\n--b\r\nContent-Disposition: form-data; name="t"\r\n\r\n', 'latin1'),
      Buffer.from([0xc3, 0x28, 0xa0]),
      Buffer.from('\r\n--b--\r\n', 'latin1'),
    ]);
    const v = post('multipart/form-data; boundary=b', body);
    assert.deepEqual(pairs(v, 'FILES'), [['n\xe9', 'f\xff.txt']]);
    assert.deepEqual(pairs(v, 'FILES_SIZES'), [['n\xe9', '3']]);
    assert.deepEqual(pairs(v, 'ARGS_POST'), [['t', '\xc3\x28\xa0']]);
    assert.equal(sc(v, 'REQBODY_ERROR'), '0');
  });
});

describe('hostile input', () => {
  it('never throws and always reports REQBODY_ERROR as 0 or 1 on random bytes', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed % n;
    };
    const alphabet = Buffer.from('{}[]":,\\u0aZ-e.+ \r\n\t--b;=&%\x00\xff\'tfn1');
    const cts = ['application/json', 'multipart/form-data; boundary=b', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary="b"'];
    for (let i = 0; i < 3000; i++) {
      const len = rnd(200);
      const buf = Buffer.alloc(len);
      for (let j = 0; j < len; j++) buf[j] = rnd(4) === 0 ? rnd(256) : alphabet[rnd(alphabet.length)];
      const v = post(cts[i % cts.length], buf, { truncated: rnd(2) === 0 });
      assert.ok(sc(v, 'REQBODY_ERROR') === '0' || sc(v, 'REQBODY_ERROR') === '1');
      assert.equal(sc(v, 'REQUEST_BODY'), buf.toString('latin1'));
    }
  });

  it('stays linear on large adversarial bodies', () => {
    const mb = 1 << 20;
    const bodies: [string, string][] = [
      ['multipart/form-data; boundary=' + 'x'.repeat(60), '--b' + '-'.repeat(mb) + '\r\n' + ('--' + 'x'.repeat(59) + 'y\r\n').repeat(8000)],
      ['multipart/form-data; boundary=b', '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n' + 'z--b'.repeat(mb / 4)],
      ['application/json', '["' + '\\u00e9'.repeat(mb / 6) + '"]'],
      ['application/json', '[' + '['.repeat(511) + ']'.repeat(511) + ','.repeat(mb)],
      ['application/x-www-form-urlencoded', '%41'.repeat(mb / 3) + '=' + '+'.repeat(mb)],
    ];
    for (const [ct, body] of bodies) {
      const t0 = performance.now();
      const v = post(ct, body);
      const ms = performance.now() - t0;
      assert.ok(ms < 3000, `${ct}: ${ms} ms`);
      assert.ok(sc(v, 'REQBODY_ERROR') === '0' || sc(v, 'REQBODY_ERROR') === '1');
    }
  });

  it('does not rescan the body for the boundary on every line', () => {
    // 600,000 data lines before the closing boundary: searching afresh from
    // each line would read 360 GB.
    const body = '--b\nContent-Disposition: form-data; name="a"\n\n' + 'x\n'.repeat(600_000) + '--b--\n';
    const t0 = performance.now();
    const v = post('multipart/form-data; boundary=b', body);
    const ms = performance.now() - t0;
    assert.equal(v.collections.get('ARGS_POST')?.[0]?.value.length, 1_199_999);
    assert.equal(sc(v, 'MULTIPART_UNMATCHED_BOUNDARY'), '0');
    assert.ok(ms < 3000, `${ms} ms`);
  });

  it('does not rescan the body for every pair without =', () => {
    // 100,000 pairs before one '=' 2 MiB away: a fresh search per pair
    // would read 200 GB.
    const h = head({ method: 'POST', headers: [['Content-Type', 'application/x-www-form-urlencoded']] });
    const body = Buffer.from('a&'.repeat(100_000) + 'x'.repeat(2 << 20) + '=1');
    const t0 = performance.now();
    const v = addBodyVars(h, body, { truncated: false, limits: { maxArgs: 200_000, maxArgNameBytes: 4 << 20 } });
    const ms = performance.now() - t0;
    assert.equal(v.collections.get('ARGS_POST')?.length, 100_001);
    assert.equal(v.collections.get('ARGS_POST')?.at(-1)?.value, '1');
    assert.ok(ms < 3000, `${ms} ms`);
  });
});
