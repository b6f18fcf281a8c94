// Inputs for the HTTP/1.1 differential fuzz: a corpus of valid requests and
// responses (single and pipelined), mutated structurally (header, length,
// chunk and line-ending variants that parsers are known to read differently)
// and byte by byte (every byte class at every position class). Everything is
// derived from (seed, index) by a small PRNG, so one case can be rebuilt from
// its two numbers without generating the ones before it.

export type Kind = 'request' | 'response';

export interface FuzzCase {
  kind: Kind;
  input: Buffer;
  /** Responses: the method of the request they answer. */
  requestMethod?: string;
  /** Offsets where the input is cut into separate reads. */
  splits?: number[];
  seed: number;
  index: number;
  /** What was done to the corpus message (for reading a failure). */
  ops: string[];
}

// ---------- PRNG ----------

/** A 32-bit mix of two integers (splitmix-style finaliser). */
function mix(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** xorshift128 with a seeded state; deterministic, no Math.random. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    this.a = mix(seed, stream) || 1;
    this.b = mix(this.a, 0x51ed27) || 2;
    this.c = mix(this.b, 0x2545f491) || 3;
    this.d = mix(this.c, 0x68e31da4) || 4;
    for (let i = 0; i < 8; i++) this.next();
  }

  /** Uniform uint32. */
  next(): number {
    let t = this.d;
    const s = this.a;
    this.d = this.c;
    this.c = this.b;
    this.b = s;
    t ^= t << 11;
    t ^= t >>> 8;
    this.a = (t ^ s ^ (s >>> 19)) >>> 0;
    return this.a;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return n <= 1 ? 0 : this.next() % n;
  }

  /** Integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() / 4294967296 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

// ---------- byte classes ----------

const ch = (c: number): string => String.fromCharCode(c);
const rangeChars = (lo: number, hi: number): string[] => Array.from({ length: hi - lo + 1 }, (_, i) => ch(lo + i));

export const BYTE_CLASSES: Readonly<Record<string, readonly string[]>> = {
  ctl: [...rangeChars(1, 8), ch(11), ch(12), ...rangeChars(14, 31)],
  sp: [' '],
  htab: ['\t'],
  cr: ['\r'],
  lf: ['\n'],
  nul: ['\0'],
  del: ['\x7f'],
  obsText: rangeChars(0x80, 0xff),
  tchar: [..."!#$%&'*+-.^_`|~", ...rangeChars(48, 57), ...rangeChars(65, 90), ...rangeChars(97, 122)],
  delimiter: [...'"(),/:;<=>?@[\\]{}'],
  digit: rangeChars(48, 57),
  hex: [...'0123456789abcdefABCDEF'],
};
const BYTE_CLASS_NAMES = Object.keys(BYTE_CLASSES);

// ---------- the message model ----------

interface Field {
  name: string;
  /** What sits between the name and the value: ":" with optional whitespace around it. */
  colon: string;
  pre: string;
  value: string;
  post: string;
  eol: string;
}

interface Chunk {
  size: string;
  ext: string;
  eol: string;
  data: string;
  dataEol: string;
}

type Body =
  | { type: 'none' }
  | { type: 'raw'; data: string }
  | { type: 'chunked'; chunks: Chunk[]; last: { size: string; ext: string; eol: string }; trailers: Field[]; end: string };

interface Msg {
  kind: Kind;
  lead: string;
  // request line / status line
  method: string;
  target: string;
  version: string;
  status: string;
  reason: string;
  sp1: string;
  sp2: string;
  lineEol: string;
  fields: Field[];
  headEnd: string;
  body: Body;
}

/** Position classes: where a byte mutation lands. */
type Pos =
  | 'lead'
  | 'method'
  | 'sp'
  | 'target'
  | 'version'
  | 'status'
  | 'reason'
  | 'eol'
  | 'hname'
  | 'colon'
  | 'ows'
  | 'hvalue'
  | 'headEnd'
  | 'body'
  | 'csize'
  | 'cext'
  | 'cdata'
  | 'trname'
  | 'trvalue';

interface Seg {
  pos: Pos;
  s: string;
}

const field = (name: string, value: string): Field => ({ name, colon: ':', pre: ' ', value, post: '', eol: '\r\n' });
const chunk = (data: string, ext = ''): Chunk => ({ size: data.length.toString(16), ext, eol: '\r\n', data, dataEol: '\r\n' });

function getField(m: Msg, name: string): Field | undefined {
  const l = name.toLowerCase();
  return m.fields.find((f) => f.name.toLowerCase() === l);
}

function setOrAdd(m: Msg, name: string, value: string): void {
  const f = getField(m, name);
  if (f) f.value = value;
  else m.fields.push(field(name, value));
}

function removeField(m: Msg, name: string): void {
  const l = name.toLowerCase();
  m.fields = m.fields.filter((f) => f.name.toLowerCase() !== l);
}

// ---------- corpus ----------

const PATHS = ['/', '/api/v1/users', '/search?q=a%20b&x=1', '/a/b/c.json', '/%7Euser/', '/p;param=1', '/x?y=z&w=', "/items('id')", '/a-b_c.d~e', '/?'];
const HOSTS = ['example.com', 'api.internal:8080', '127.0.0.1', '[::1]:9000', 'svc.namespace.svc.cluster.local'];
const WORDS = ['hello', 'a', '{"k":"v"}', 'x'.repeat(40), 'line1\r\nline2', '0\r\n\r\n', 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\u00e9\u00ff\u0000\u007f'];

function baseRequest(r: Rng): Msg {
  return {
    kind: 'request',
    lead: '',
    method: 'GET',
    target: r.pick(PATHS),
    version: 'HTTP/1.1',
    status: '',
    reason: '',
    sp1: ' ',
    sp2: ' ',
    lineEol: '\r\n',
    fields: [field('Host', r.pick(HOSTS))],
    headEnd: '\r\n',
    body: { type: 'none' },
  };
}

function baseResponse(status: number, reason: string): Msg {
  return {
    kind: 'response',
    lead: '',
    method: '',
    target: '',
    version: 'HTTP/1.1',
    status: String(status),
    reason,
    sp1: ' ',
    sp2: ' ',
    lineEol: '\r\n',
    fields: [],
    headEnd: '\r\n',
    body: { type: 'none' },
  };
}

function rawBody(m: Msg, data: string): void {
  m.body = { type: 'raw', data };
  setOrAdd(m, 'Content-Length', String(data.length));
}

function chunkedBody(r: Rng, m: Msg): void {
  const n = r.range(1, 3);
  const chunks: Chunk[] = [];
  for (let i = 0; i < n; i++) {
    const data = r.chance(0.2) ? 'z'.repeat(r.range(16, 300)) : r.pick(WORDS);
    chunks.push(chunk(data, r.chance(0.3) ? r.pick([';a=b', ';name', ';q="quoted value"', ';a=1;b=2', ';ext=tok-en']) : ''));
  }
  const trailers = r.chance(0.35) ? [field(r.pick(['X-Checksum', 'Server-Timing', 'X-T']), r.pick(['abc', '1', 'db;dur=53']))] : [];
  m.body = { type: 'chunked', chunks, last: { size: r.pick(['0', '0', '0', '000']), ext: r.chance(0.1) ? ';last' : '', eol: '\r\n' }, trailers, end: '\r\n' };
  setOrAdd(m, 'Transfer-Encoding', 'chunked');
}

function corpusRequest(r: Rng): Msg {
  const m = baseRequest(r);
  switch (r.int(12)) {
    case 0:
      m.fields.push(field('User-Agent', 'fuzz/1.0'), field('Accept', '*/*'));
      break;
    case 1:
      m.method = r.pick(['POST', 'PUT', 'PATCH']);
      m.fields.push(field('Content-Type', 'application/json'));
      rawBody(m, r.pick(WORDS));
      break;
    case 2:
      m.method = r.pick(['POST', 'PUT']);
      chunkedBody(r, m);
      break;
    case 3:
      m.version = 'HTTP/1.0';
      if (r.chance(0.5)) m.fields = [];
      if (r.chance(0.5)) m.fields.push(field('Connection', 'keep-alive'));
      break;
    case 4:
      m.method = 'POST';
      m.fields.push(field('Expect', '100-continue'));
      rawBody(m, 'expect body');
      break;
    case 5:
      m.fields.push(field('Upgrade', 'websocket'), field('Connection', 'Upgrade'), field('Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='), field('Sec-WebSocket-Version', '13'));
      break;
    case 6:
      m.method = r.pick(['HEAD', 'DELETE', 'OPTIONS', 'TRACE']);
      if (m.method === 'OPTIONS' && r.chance(0.5)) m.target = '*';
      break;
    case 7:
      m.fields.push(field('Cookie', 'a=b; c=d'), field('Accept-Encoding', 'gzip, deflate'), field('X-Forwarded-For', '10.0.0.1, 10.0.0.2'));
      break;
    case 8:
      m.method = 'POST';
      m.fields.push(field('Connection', 'keep-alive'), field('Content-Type', 'application/x-www-form-urlencoded'));
      rawBody(m, 'a=1&b=2');
      break;
    case 9:
      m.method = r.pick(['GET', 'POST']);
      m.fields.push(field('Content-Length', '0'));
      break;
    case 10:
      m.method = 'QUERY';
      rawBody(m, 'select *');
      break;
    default:
      m.method = r.pick(['PROPFIND', 'M-SEARCH', 'PURGE', 'MKCOL', 'LINK']);
      break;
  }
  return m;
}

function corpusResponse(r: Rng, head: boolean): Msg {
  let m: Msg;
  const body = (data: string): void => {
    if (head) setOrAdd(m, 'Content-Length', String(data.length));
    else rawBody(m, data);
  };
  switch (r.int(11)) {
    case 0:
      m = baseResponse(200, 'OK');
      m.fields.push(field('Content-Type', 'text/plain'), field('Date', 'Thu, 04 Dec 2025 21:00:00 GMT'));
      body(r.pick(WORDS));
      break;
    case 1:
      m = baseResponse(200, 'OK');
      if (head) setOrAdd(m, 'Transfer-Encoding', 'chunked');
      else chunkedBody(r, m);
      break;
    case 2:
      m = baseResponse(204, 'No Content');
      if (r.chance(0.3)) m.fields.push(field('Content-Length', '0'));
      break;
    case 3:
      m = baseResponse(304, 'Not Modified');
      m.fields.push(field('ETag', '"abc"'));
      if (r.chance(0.4)) m.fields.push(field('Content-Length', '42'));
      break;
    case 4:
      m = baseResponse(404, 'Not Found');
      body('not found');
      break;
    case 5:
      m = baseResponse(r.pick([301, 302, 307]), 'Moved');
      m.fields.push(field('Location', '/elsewhere'));
      body('');
      break;
    case 6:
      m = baseResponse(500, 'Internal Server Error');
      m.fields.push(field('Connection', 'keep-alive'));
      body('oops');
      break;
    case 7:
      m = baseResponse(200, 'OK');
      m.version = 'HTTP/1.0';
      m.fields.push(field('Connection', 'keep-alive'));
      body('ten bytes!');
      break;
    case 8:
      m = baseResponse(200, r.pick(['OK', '', 'Okay then', 'OK\t']));
      m.fields.push(field('Set-Cookie', 'a=1'), field('Set-Cookie', 'b=2'), field('Vary', 'Accept-Encoding'));
      body('cookies');
      break;
    case 9:
      m = baseResponse(201, 'Created');
      m.fields.push(field('Content-Length', '0'));
      break;
    default:
      m = baseResponse(502, 'Bad Gateway');
      body('upstream');
      break;
  }
  return m;
}

/** A final message that may end the stream (close-delimited, upgrade, Connection: close). */
function corpusLast(r: Rng, kind: Kind, head: boolean): Msg {
  if (kind === 'request') {
    const m = corpusRequest(r);
    if (r.chance(0.3)) m.fields.push(field('Connection', 'close'));
    return m;
  }
  switch (r.int(5)) {
    case 0: {
      const m = baseResponse(200, 'OK');
      if (r.chance(0.5)) m.version = 'HTTP/1.0';
      // No length: the body runs until the connection closes.
      if (!head) m.body = { type: 'raw', data: r.pick(WORDS) };
      return m;
    }
    case 1: {
      const m = baseResponse(101, 'Switching Protocols');
      m.fields.push(field('Upgrade', 'websocket'), field('Connection', 'Upgrade'));
      m.body = { type: 'raw', data: r.pick(['', '\x81\x05hello', 'GET / HTTP/1.1\r\n\r\n']) };
      return m;
    }
    case 2: {
      const m = corpusResponse(r, head);
      m.fields.push(field('Connection', 'close'));
      return m;
    }
    default:
      return corpusResponse(r, head);
  }
}

// ---------- structural mutations ----------

const METHOD_VARIANTS = ['get', 'Get', 'FOO', 'ANNOUNCE', 'DESCRIBE', 'PRI', 'QUERY', 'CONNECT', 'M-SEARCH', 'SOURCE', 'G\x80T', 'GE T', '', 'GET\t', 'POST/', 'HEAD', 'OPTIONS', 'X'.repeat(40)];
const TARGET_VARIANTS = [
  '*',
  'http://evil.example/a',
  'https://h.example:8443/x?y',
  'http://user@evil.example/',
  'evil.example:443',
  '//double/slash',
  '/a#b',
  '/a?b#c',
  '#',
  '/caf\xc3\xa9',
  '/\xff',
  '/a b',
  '',
  '/%00',
  '/\x7f',
  '/a\tb',
  "/a'b",
  '/a"b',
  '/a{b}',
  '/a|b',
  '/a\\b',
  '/a^b',
  '/a`b',
  '/a<b>',
  '/[::1]',
  'a',
  '/a\x00b',
  '/?q=\x01',
  `/${'p'.repeat(3000)}`,
];
const VERSION_VARIANTS = ['HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.9', 'http/1.1', 'HTTP/1.1 ', 'HTTP/1', 'HTTP/11', 'HTTP/1.10', 'HTTP/1.01', 'HTTP/3.0', 'HTTP /1.1', 'HTTP/1.x', 'RTSP/1.0', 'ICE/1.0', 'HTTP/9.9', ''];
const STATUS_VARIANTS = ['099', '000', '1000', '20', '2000', 'abc', '2OO', ' 200', '600', '999', '101', '204', '304', '100', '103', '199', '0200', '-200', '+200', '2 0'];
const REASON_VARIANTS = ['', ' ', 'OK ', 'O\x01K', 'O\x00K', 'caf\xe9', 'O\x7fK', 'O\tK', 'OK\r', 'A  B', 'x'.repeat(2000)];
const CL_VARIANTS = (n: number): string[] => [
  `0${n}`,
  `00${n}`,
  `+${n}`,
  `-${n}`,
  `${n},${n}`,
  `${n}, ${n}`,
  ` ${n}`,
  `${n} `,
  `${n}\t`,
  `0x${n.toString(16)}`,
  `${n}.0`,
  '',
  '99999999999999999999',
  '18446744073709551616',
  '1000000000000000',
  '999999999999999',
  String(n + 1),
  String(Math.max(0, n - 1)),
  `${n} ${n}`,
  `${n}a`,
  `"${n}"`,
];
const TE_VARIANTS = [
  'chunked',
  'CHUNKED',
  'Chunked',
  'gzip, chunked',
  'chunked, gzip',
  'chunked, chunked',
  'identity',
  'identity, chunked',
  'gzip',
  ' chunked',
  'chunked ',
  '\tchunked',
  'x-chunked',
  'chunked;q=1',
  '"chunked"',
  'chunk',
  'chunked,',
  ',chunked',
  'gzip,chunked',
  'chunked\x0b',
  '',
];
const HOST_VARIANTS = ['user@evil.example', 'user:pw@evil.example', 'evil.example:8080', 'evil.example:99999', 'evil.example:', '[::1]', '[::1]:80', '[zz]', '', 'a b', 'a/b', 'a?b', 'a#b', 'ex\tample', 'a,b', 'h\x80st', '%65vil.example', 'evil.example.', '-a.example', 'a_b.example', 'EVIL.EXAMPLE', 'a:b:c'];
const EXPECT_VARIANTS = ['100-continue', '100-Continue', '101-switch', 'foo', '', '100-continue, foo'];
const CONNECTION_VARIANTS = ['close', 'keep-alive', 'Upgrade', 'close, upgrade', 'keep-alive, upgrade', 'CLOSE', 'closed', 'te, close', 'upgrade'];
const SIZE_VARIANTS = (n: number): string[] => {
  const h = n.toString(16);
  return [`0${h}`, `000000${h}`, h.toUpperCase(), `0x${h}`, `+${h}`, `-${h}`, `${h} `, `${h}\t`, ` ${h}`, '', 'ffffffffffffffffff', '1000000000000', 'fffffffffffff', `${h}g`, (n + 1).toString(16), Math.max(0, n - 1).toString(16), `${h};`, `${h} ;a`];
};
const EXT_VARIANTS = [
  ';',
  ';a',
  ';a=',
  ';a=b',
  ';a="b"',
  ';a="b',
  ';a="b\\"c"',
  ';a="b\\\\c"',
  '; a',
  ' ;a',
  ';a =b',
  ';a= b',
  ';a=b;c',
  ';a=b c',
  ';a="\x01"',
  ';a="\x80"',
  ';a=\x80',
  ';\x00',
  ';=b',
  ';a==b',
  ';a=b;',
  ';a,b',
  '\t;a',
  ';a=(b)',
  ';a="b"c',
  ';a=""',
  ';a="\t"',
  ';a=b\t',
  ';;a',
  `;${'e'.repeat(17000)}`,
];
const TRAILER_VARIANTS: ReadonlyArray<[string, string]> = [
  ['Content-Length', '5'],
  ['Transfer-Encoding', 'chunked'],
  ['Host', 'evil.example'],
  ['X-Ok', 'yes'],
  ['X-Obs', 'caf\xe9'],
  ['X-Ctl', 'a\x01b'],
  ['X-Del', 'a\x7fb'],
  ['Bad Name', 'v'],
  ['', 'v'],
  ['X-Empty', ''],
];
const FIELD_NAME_VARIANTS = ['X Y', 'X\tY', 'X\x80', '', 'X"Y', 'X(Y)', 'X/Y', 'X@Y', 'X{Y}', 'X=Y', 'X;Y', 'X,Y', 'X?Y', 'X[Y]', 'X\\Y', 'X<Y>', 'X\x7f', 'X\x00', "X!#$%&'*+-.^_`|~"];
const FIELD_VALUE_VARIANTS = ['caf\xe9', '\xff\xfe', 'a\x00b', 'a\x01b', 'a\x7fb', 'a\tb', '   ', '\t', 'a  b', '"quoted"', 'x'.repeat(6000), 'a\x0bb', 'a\x1fb', 'a\x0cb'];
const EOL_VARIANTS = ['\n', '\r', '\r\r\n', '\n\r', '', ' \r\n', '\t\r\n', '\r\n\r\n', '\r \n', '\r\n '];

function pickMsg(r: Rng, msgs: Msg[]): Msg {
  return r.pick(msgs);
}

function allEolRefs(m: Msg): Array<{ get: () => string; set: (v: string) => void; name: string }> {
  const refs: Array<{ get: () => string; set: (v: string) => void; name: string }> = [];
  refs.push({ name: 'start-line', get: () => m.lineEol, set: (v) => (m.lineEol = v) });
  m.fields.forEach((f, i) => refs.push({ name: `field ${i}`, get: () => f.eol, set: (v) => (f.eol = v) }));
  refs.push({ name: 'head end', get: () => m.headEnd, set: (v) => (m.headEnd = v) });
  const b = m.body;
  if (b.type === 'chunked') {
    b.chunks.forEach((c, i) => {
      refs.push({ name: `chunk ${i} size line`, get: () => c.eol, set: (v) => (c.eol = v) });
      refs.push({ name: `chunk ${i} data end`, get: () => c.dataEol, set: (v) => (c.dataEol = v) });
    });
    refs.push({ name: 'last chunk line', get: () => b.last.eol, set: (v) => (b.last.eol = v) });
    b.trailers.forEach((f, i) => refs.push({ name: `trailer ${i}`, get: () => f.eol, set: (v) => (f.eol = v) }));
    refs.push({ name: 'trailer end', get: () => b.end, set: (v) => (b.end = v) });
  }
  return refs;
}

/** One structural mutation of a message in `msgs`; returns its description. */
function structural(r: Rng, msgs: Msg[], head: boolean): string {
  const m = pickMsg(r, msgs);
  const isReq = m.kind === 'request';
  const op = r.int(24);
  switch (op) {
    case 0: {
      if (isReq) {
        m.method = r.pick(METHOD_VARIANTS);
        return `method=${JSON.stringify(m.method)}`;
      }
      m.status = r.pick(STATUS_VARIANTS);
      return `status=${JSON.stringify(m.status)}`;
    }
    case 1: {
      if (isReq) {
        m.target = r.pick(TARGET_VARIANTS);
        return `target=${JSON.stringify(m.target.slice(0, 40))}`;
      }
      m.reason = r.pick(REASON_VARIANTS);
      return `reason=${JSON.stringify(m.reason.slice(0, 40))}`;
    }
    case 2:
      m.version = r.pick(VERSION_VARIANTS);
      return `version=${JSON.stringify(m.version)}`;
    case 3: {
      const which = r.int(4);
      const v = r.pick(['', '  ', '\t', ' \t', '\x0b', '\x00']);
      if (which === 0) m.sp1 = v;
      else if (which === 1) m.sp2 = v;
      else if (which === 2) m.sp1 = ' '.repeat(r.range(2, 3));
      else {
        // No version at all (an HTTP/0.9 request line).
        m.sp2 = '';
        m.version = '';
      }
      return `start-line spaces ${which} ${JSON.stringify(v)}`;
    }
    case 4: {
      // Duplicate a framing or routing header.
      const name = r.pick(isReq ? ['Host', 'Content-Length', 'Transfer-Encoding', 'host'] : ['Content-Length', 'Transfer-Encoding', 'content-length']);
      const existing = getField(m, name);
      const value = existing && r.chance(0.5) ? existing.value : r.pick(name.toLowerCase() === 'host' ? HOST_VARIANTS : name.toLowerCase() === 'content-length' ? ['0', '1', '5', '10'] : ['chunked', 'gzip']);
      m.fields.splice(r.int(m.fields.length + 1), 0, field(name, value));
      return `duplicate ${name}: ${JSON.stringify(value)}`;
    }
    case 5: {
      // Content-Length and Transfer-Encoding together.
      if (m.body.type === 'chunked') {
        const n = m.body.chunks.reduce((a, c) => a + c.data.length, 0);
        m.fields.splice(r.int(m.fields.length + 1), 0, field('Content-Length', String(n)));
        return 'CL added to chunked';
      }
      m.fields.splice(r.int(m.fields.length + 1), 0, field('Transfer-Encoding', r.pick(TE_VARIANTS)));
      return 'TE added to a CL body';
    }
    case 6: {
      const f = getField(m, 'Content-Length');
      const n = m.body.type === 'raw' ? m.body.data.length : 3;
      const v = r.pick(CL_VARIANTS(n));
      if (f) f.value = v;
      else m.fields.push(field('Content-Length', v));
      return `content-length=${JSON.stringify(v)}`;
    }
    case 7: {
      const v = r.pick(TE_VARIANTS);
      if (m.body.type !== 'chunked' && r.chance(0.5)) {
        // Make it a chunked body first, then vary the coding.
        m.fields = m.fields.filter((f) => f.name.toLowerCase() !== 'content-length');
        if (!(m.kind === 'response' && head)) chunkedBody(r, m);
      }
      setOrAdd(m, 'Transfer-Encoding', v);
      return `transfer-encoding=${JSON.stringify(v)}`;
    }
    case 8: {
      // obs-fold: a continuation line.
      const at = r.int(m.fields.length + 1);
      const f = field('', `${r.pick([' ', '\t', '  '])}continued`);
      f.colon = '';
      f.pre = '';
      m.fields.splice(at, 0, f);
      return `obs-fold at ${at}`;
    }
    case 9: {
      if (m.fields.length === 0) m.fields.push(field('X-A', 'b'));
      const f = r.pick(m.fields);
      f.colon = r.pick([' :', '\t:', ' : ', '::', ': :', '']);
      return `colon of ${f.name}=${JSON.stringify(f.colon)}`;
    }
    case 10: {
      if (!isReq) {
        setOrAdd(m, 'Connection', r.pick(CONNECTION_VARIANTS));
        return 'response connection';
      }
      const v = r.pick(HOST_VARIANTS);
      if (r.chance(0.15)) {
        removeField(m, 'Host');
        return 'host removed';
      }
      setOrAdd(m, 'Host', v);
      return `host=${JSON.stringify(v)}`;
    }
    case 11: {
      const v = r.pick(CONNECTION_VARIANTS);
      setOrAdd(m, 'Connection', v);
      if (/upgrade/i.test(v) && r.chance(0.7)) setOrAdd(m, 'Upgrade', r.pick(['websocket', 'h2c', 'foo/1']));
      return `connection=${JSON.stringify(v)}`;
    }
    case 12: {
      if (!isReq) {
        m.fields.push(field('Upgrade', 'websocket'), field('Connection', 'upgrade'));
        return 'response upgrade fields';
      }
      const v = r.pick(EXPECT_VARIANTS);
      setOrAdd(m, 'Expect', v);
      return `expect=${JSON.stringify(v)}`;
    }
    case 13: {
      if (m.body.type !== 'chunked') {
        if (m.kind === 'response' && head) return 'noop';
        m.fields = m.fields.filter((f) => f.name.toLowerCase() !== 'content-length');
        chunkedBody(r, m);
      }
      const b = m.body as Extract<Body, { type: 'chunked' }>;
      const target = r.chance(0.25) ? b.last : r.pick(b.chunks);
      const n = target === b.last ? 0 : (target as Chunk).data.length;
      target.size = r.pick(SIZE_VARIANTS(n));
      return `chunk size=${JSON.stringify(target.size)}`;
    }
    case 14: {
      if (m.body.type !== 'chunked') {
        if (m.kind === 'response' && head) return 'noop';
        m.fields = m.fields.filter((f) => f.name.toLowerCase() !== 'content-length');
        chunkedBody(r, m);
      }
      const b = m.body as Extract<Body, { type: 'chunked' }>;
      const target = r.chance(0.25) ? b.last : r.pick(b.chunks);
      target.ext = r.pick(EXT_VARIANTS);
      return `chunk ext=${JSON.stringify(target.ext.slice(0, 30))}`;
    }
    case 15: {
      if (m.body.type !== 'chunked') {
        if (m.kind === 'response' && head) return 'noop';
        m.fields = m.fields.filter((f) => f.name.toLowerCase() !== 'content-length');
        chunkedBody(r, m);
      }
      const b = m.body as Extract<Body, { type: 'chunked' }>;
      const [name, value] = r.pick(TRAILER_VARIANTS);
      const f = field(name, value);
      if (r.chance(0.2)) {
        f.colon = ' :';
      }
      b.trailers.push(f);
      if (r.chance(0.15)) {
        const fold = field('', ' folded');
        fold.colon = '';
        fold.pre = '';
        b.trailers.push(fold);
      }
      return `trailer ${JSON.stringify(name)}`;
    }
    case 16: {
      // The body's length and its declared length disagree.
      if (m.body.type === 'raw') {
        const d = m.body.data;
        m.body.data = r.chance(0.5) ? d + r.pick(['x', 'xyz', 'GET / HTTP/1.1\r\nHost: s\r\n\r\n', '\r\n']) : d.slice(0, Math.max(0, d.length - r.range(1, 3)));
        return 'raw body length changed';
      }
      if (m.body.type === 'chunked' && m.body.chunks.length) {
        const c = r.pick(m.body.chunks);
        c.data = r.chance(0.5) ? `${c.data}x` : c.data.slice(0, -1);
        return 'chunk data length changed';
      }
      if (!(m.kind === 'response' && head)) m.body = { type: 'raw', data: r.pick(['x', 'abc', '\r\n']) };
      return 'bytes after a body-less head';
    }
    case 17: {
      const refs = allEolRefs(m);
      const ref = r.pick(refs);
      const v = r.pick(EOL_VARIANTS);
      ref.set(v);
      return `eol of ${ref.name}=${JSON.stringify(v)}`;
    }
    case 18: {
      m.lead = r.pick(['\r\n', '\r\n\r\n', '\n', '\r', ' ', '\t', '\0']);
      return `lead=${JSON.stringify(m.lead)}`;
    }
    case 19: {
      // Many fields: llhttp's binding flushes more than 32 through another callback.
      const n = r.pick([33, 40, 70, 1001]);
      for (let i = 0; i < n; i++) m.fields.push(field(`X-F${i}`, `v${i}`));
      return `${n} extra fields`;
    }
    case 20: {
      // A big head: under or over the header limit.
      const size = r.pick([6000, 12000, 15000, 17000, 30000, 70000]);
      m.fields.push(field('X-Big', 'b'.repeat(size)));
      return `big field ${size}`;
    }
    case 21: {
      const name = r.pick(FIELD_NAME_VARIANTS);
      m.fields.splice(r.int(m.fields.length + 1), 0, field(name, 'v'));
      return `field name ${JSON.stringify(name)}`;
    }
    case 22: {
      const value = r.pick(FIELD_VALUE_VARIANTS);
      if (m.fields.length > 0 && r.chance(0.5)) {
        const f = r.pick(m.fields);
        f.value = value;
        return `value of ${f.name}=${JSON.stringify(value.slice(0, 20))}`;
      }
      m.fields.push(field('X-V', value));
      return `field value ${JSON.stringify(value.slice(0, 20))}`;
    }
    default: {
      // Whitespace around a value.
      if (m.fields.length === 0) m.fields.push(field('X-A', 'b'));
      const f = r.pick(m.fields);
      if (r.chance(0.5)) f.pre = r.pick(['', '  ', '\t', ' \t ', '\x0b']);
      else f.post = r.pick([' ', '\t', '  \t', '\x0b', '\x0c']);
      return `ows of ${f.name}`;
    }
  }
}

// ---------- serialisation and byte mutations ----------

function segments(m: Msg): Seg[] {
  const out: Seg[] = [];
  if (m.lead) out.push({ pos: 'lead', s: m.lead });
  if (m.kind === 'request') {
    out.push({ pos: 'method', s: m.method }, { pos: 'sp', s: m.sp1 }, { pos: 'target', s: m.target }, { pos: 'sp', s: m.sp2 }, { pos: 'version', s: m.version });
  } else {
    out.push({ pos: 'version', s: m.version }, { pos: 'sp', s: m.sp1 }, { pos: 'status', s: m.status }, { pos: 'sp', s: m.sp2 }, { pos: 'reason', s: m.reason });
  }
  out.push({ pos: 'eol', s: m.lineEol });
  const fields = (fs: Field[], nameP: Pos, valueP: Pos): void => {
    for (const f of fs) out.push({ pos: nameP, s: f.name }, { pos: 'colon', s: f.colon }, { pos: 'ows', s: f.pre }, { pos: valueP, s: f.value }, { pos: 'ows', s: f.post }, { pos: 'eol', s: f.eol });
  };
  fields(m.fields, 'hname', 'hvalue');
  out.push({ pos: 'headEnd', s: m.headEnd });
  const b = m.body;
  if (b.type === 'raw') out.push({ pos: 'body', s: b.data });
  else if (b.type === 'chunked') {
    for (const c of b.chunks) out.push({ pos: 'csize', s: c.size }, { pos: 'cext', s: c.ext }, { pos: 'eol', s: c.eol }, { pos: 'cdata', s: c.data }, { pos: 'eol', s: c.dataEol });
    out.push({ pos: 'csize', s: b.last.size }, { pos: 'cext', s: b.last.ext }, { pos: 'eol', s: b.last.eol });
    fields(b.trailers, 'trname', 'trvalue');
    out.push({ pos: 'eol', s: b.end });
  }
  return out;
}

function randomByte(r: Rng): { cls: string; b: string } {
  const cls = r.pick(BYTE_CLASS_NAMES);
  return { cls, b: r.pick(BYTE_CLASSES[cls]!) };
}

/** One byte-level mutation at a position class; returns its description. */
function byteMutation(r: Rng, segs: Seg[]): string {
  // Pick a position class first (uniform over those present), then a segment of it.
  const classes = [...new Set(segs.map((s) => s.pos))];
  const pos = r.pick(classes);
  const candidates = segs.filter((s) => s.pos === pos);
  const seg = r.pick(candidates);
  const op = r.int(5);
  const { cls, b } = randomByte(r);
  const at = r.int(seg.s.length + 1);
  switch (op) {
    case 0:
    case 1:
      seg.s = seg.s.slice(0, at) + b + seg.s.slice(at);
      return `insert ${cls} ${JSON.stringify(b)} in ${pos}@${at}`;
    case 2:
      if (seg.s.length === 0) {
        seg.s = b;
        return `fill ${pos} with ${cls} ${JSON.stringify(b)}`;
      }
      seg.s = seg.s.slice(0, Math.min(at, seg.s.length - 1)) + b + seg.s.slice(Math.min(at, seg.s.length - 1) + 1);
      return `replace in ${pos} with ${cls} ${JSON.stringify(b)}`;
    case 3:
      if (seg.s.length === 0) return `noop delete in empty ${pos}`;
      seg.s = seg.s.slice(0, Math.min(at, seg.s.length - 1)) + seg.s.slice(Math.min(at, seg.s.length - 1) + 1);
      return `delete in ${pos}`;
    default:
      // Before or after the whole segment: the boundary between two position classes.
      seg.s = r.chance(0.5) ? b + seg.s : seg.s + b;
      return `edge ${cls} ${JSON.stringify(b)} at ${pos}`;
  }
}

// ---------- cases ----------

function messagesFor(r: Rng, kind: Kind, head: boolean): Msg[] {
  const n = r.pick([1, 1, 1, 2, 2, 3]);
  const msgs: Msg[] = [];
  for (let i = 0; i < n - 1; i++) {
    if (kind === 'request') msgs.push(corpusRequest(r));
    else {
      // 1xx answers before a final one.
      msgs.push(r.chance(0.25) ? baseResponse(r.pick([100, 102, 103]), r.pick(['Continue', 'Processing', 'Early Hints'])) : corpusResponse(r, head));
      if (msgs[i]!.status === '103') msgs[i]!.fields.push(field('Link', '</s.css>; rel=preload'));
    }
  }
  // Messages before the last keep the connection open (an HTTP/1.0 message closes it unless it says keep-alive).
  for (const m of msgs) if (m.version === 'HTTP/1.0' && !getField(m, 'Connection')) m.fields.push(field('Connection', 'keep-alive'));
  msgs.push(corpusLast(r, kind, head));
  return msgs;
}

/** Case `index` of the stream `seed`. */
export function generateOne(seed: number, index: number): FuzzCase {
  const r = new Rng(seed, index);
  const kind: Kind = r.chance(0.6) ? 'request' : 'response';
  const requestMethod = kind === 'response' ? r.pick(['GET', 'GET', 'POST', 'HEAD']) : undefined;
  const head = requestMethod === 'HEAD';
  const msgs = messagesFor(r, kind, head);
  const ops: string[] = [];
  // How many mutations: some inputs stay valid, so agreement on framing is tested too.
  const roll = r.int(100);
  const nStruct = roll < 30 ? 0 : roll < 75 ? 1 : roll < 92 ? 2 : r.range(3, 5);
  for (let i = 0; i < nStruct; i++) ops.push(structural(r, msgs, head));
  const segs = msgs.flatMap(segments);
  const nBytes = r.chance(0.3) ? (r.chance(0.75) ? 1 : r.range(2, 3)) : 0;
  for (let i = 0; i < nBytes; i++) ops.push(byteMutation(r, segs));
  let text = '';
  for (const s of segs) text += s.s;
  const input = Buffer.from(text, 'latin1');
  const c: FuzzCase = { kind, input, seed, index, ops };
  if (requestMethod !== undefined) c.requestMethod = requestMethod;
  const s = r.int(100);
  if (s < 4 && input.length <= 600) {
    // Every byte in its own read.
    c.splits = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
  } else if (s < 35 && input.length > 1) {
    const k = r.range(1, 5);
    const set = new Set<number>();
    for (let i = 0; i < k; i++) set.add(r.range(1, input.length - 1));
    c.splits = [...set].sort((a, b) => a - b);
  }
  return c;
}

/** `count` cases of the stream `seed`, from `start`. */
export function* generate(seed: number, count: number, start = 0): Generator<FuzzCase> {
  for (let i = start; i < start + count; i++) yield generateOne(seed, i);
}
