// The request as the rules see it: the variables CRS request rules read,
// built from the head (line, headers, cookies, query) and from the body
// (urlencoded, JSON, multipart and XML processors). Semantics follow the SecLang
// reference (ModSecurity v3 / Coraza); where this module parses more
// leniently it says so, and every oddity it tolerates is still reported
// through REQBODY_ERROR / MULTIPART_* so the rules can refuse the request.
//
// All values are byte strings (one char per byte). Nothing here throws on
// request input; every loop is linear in the input and every collection
// built from the body is capped (VarLimits).

import { randomBytes } from 'node:crypto';
import { ownString } from '../../exchange/strings.js';
import type { RequestVars, VarEntry } from './types.js';

export type BodyProcessor = 'URLENCODED' | 'JSON' | 'MULTIPART' | 'XML';

export interface HeadInput {
  method: string;
  /** Raw request-target as received (origin-form, absolute-form, `*`, authority-form). */
  target: string;
  /** e.g. 'HTTP/1.1', 'HTTP/2.0'; '' for a request line without a version. */
  httpVersion: string;
  /** Raw pairs in order, names as received (latin1). */
  headers: readonly [string, string][];
  remoteAddr: string;
  remotePort?: number;
  uniqueId?: string;
  limits?: Partial<VarLimits>;
}

export interface BodyOptions {
  /** The body was cut at the inspection limit. */
  truncated: boolean;
  /** Forced by ctl:requestBodyProcessor; otherwise chosen from Content-Type. */
  processor?: BodyProcessor;
  limits?: Partial<VarLimits>;
}

export interface VarLimits {
  /** ARGS entries, query and body together. */
  maxArgs: number;
  /** Total bytes of all ARGS names (JSON paths grow with depth). */
  maxArgNameBytes: number;
  /** Open objects/arrays at once. */
  maxJsonDepth: number;
  maxMultipartParts: number;
  /** Header lines per multipart part. */
  maxPartHeaders: number;
}

// maxArgs and maxJsonDepth are the values ModSecurity's recommended
// configuration uses (SecArgumentsLimit 1000, SecRequestBodyJsonDepthLimit 512).
export const DEFAULT_VAR_LIMITS: Readonly<VarLimits> = Object.freeze({
  maxArgs: 1000,
  maxArgNameBytes: 1024 * 1024,
  maxJsonDepth: 512,
  maxMultipartParts: 1000,
  maxPartHeaders: 16,
});

/** Part header lines longer than this are a parse error (ModSecurity's MULTIPART_BUF_SIZE). */
const MAX_PART_HEADER_LINE = 4096;

/** Collections that always exist, so `&ARGS` and friends count 0 rather than being absent. */
const HEAD_COLLECTIONS = [
  'ARGS', 'ARGS_GET', 'ARGS_POST', 'ARGS_NAMES', 'ARGS_GET_NAMES', 'ARGS_POST_NAMES',
  'REQUEST_HEADERS', 'REQUEST_HEADERS_NAMES', 'REQUEST_COOKIES', 'REQUEST_COOKIES_NAMES',
  'FILES', 'FILES_NAMES', 'FILES_SIZES', 'MULTIPART_PART_HEADERS', 'MULTIPART_FILENAME', 'MULTIPART_NAME',
] as const;

// ---------------------------------------------------------------------------
// Builder shared by the head and the body

class VarsBuilder {
  readonly collections = new Map<string, VarEntry[]>();
  readonly scalars = new Map<string, string>();
  // Arrays still shared with the head vars; copied on first write so the
  // head object handed in is never changed.
  private readonly shared = new Set<string>();

  constructor(base?: RequestVars) {
    if (!base) return;
    for (const [k, v] of base.collections) {
      this.collections.set(k, v as VarEntry[]);
      this.shared.add(k);
    }
    for (const [k, v] of base.scalars) this.scalars.set(k, v);
  }

  list(name: string): VarEntry[] {
    let a = this.collections.get(name);
    if (a === undefined) {
      a = [];
      this.collections.set(name, a);
    } else if (this.shared.has(name)) {
      a = a.slice();
      this.collections.set(name, a);
      this.shared.delete(name);
    }
    return a;
  }

  add(collection: string, name: string, value: string): void {
    this.list(collection).push({ name, value, memo: null });
  }

  build(): RequestVars {
    return { collections: this.collections, scalars: this.scalars };
  }
}

/** Adds ARGS entries while keeping the count and name-byte caps. */
class ArgSink {
  count: number;
  nameBytes: number;
  combined: number;
  /** Set once a cap was hit; later arguments are dropped. */
  limitError: string | undefined;
  // The six target lists, fetched once (per-argument map lookups dominate
  // the cost of small arguments otherwise).
  private all: [VarEntry[], VarEntry[]] | undefined;
  private get: [VarEntry[], VarEntry[]] | undefined;
  private post: [VarEntry[], VarEntry[]] | undefined;

  constructor(private readonly b: VarsBuilder, private readonly limits: VarLimits) {
    const args = b.collections.get('ARGS') ?? [];
    this.count = args.length;
    let names = 0;
    for (const e of args) names += e.name.length;
    this.nameBytes = names;
    this.combined = Number(b.scalars.get('ARGS_COMBINED_SIZE') ?? '0') || 0;
  }

  add(kind: 'GET' | 'POST', name: string, value: string): boolean {
    return this.addEntry(kind, { name, value, memo: null }, { name, value: name, memo: null });
  }

  /** As add, with the two entries made (or kept from an earlier body) by the caller: `entry` for ARGS, `nameEntry` for ARGS_NAMES. */
  addEntry(kind: 'GET' | 'POST', entry: VarEntry, nameEntry: VarEntry): boolean {
    if (this.limitError !== undefined) return false;
    const name = entry.name;
    if (this.count >= this.limits.maxArgs) {
      this.limitError = `Argument limit exceeded (more than ${this.limits.maxArgs} arguments)`;
      return false;
    }
    if (this.nameBytes + name.length > this.limits.maxArgNameBytes) {
      this.limitError = `Argument name bytes limit exceeded (more than ${this.limits.maxArgNameBytes} bytes)`;
      return false;
    }
    this.count++;
    this.nameBytes += name.length;
    this.combined += name.length + entry.value.length;
    const b = this.b;
    const all = (this.all ??= [b.list('ARGS'), b.list('ARGS_NAMES')]);
    const own = kind === 'GET'
      ? (this.get ??= [b.list('ARGS_GET'), b.list('ARGS_GET_NAMES')])
      : (this.post ??= [b.list('ARGS_POST'), b.list('ARGS_POST_NAMES')]);
    all[0].push(entry);
    all[1].push(nameEntry);
    own[0].push(entry);
    own[1].push(nameEntry);
    return true;
  }
}

function limitsOf(partial: Partial<VarLimits> | undefined): VarLimits {
  return partial ? { ...DEFAULT_VAR_LIMITS, ...partial } : DEFAULT_VAR_LIMITS;
}

/** Below this length V8 copies a slice; from it on, a slice is a view that keeps its whole parent string alive. */
const MIN_VIEW_LENGTH = 13;
/** A piece this close to its parent's length is cut as a plain slice: what else it keeps is at most this many chars. */
const VIEW_SLACK = 256;

/**
 * A request string (the body, the request target, a Cookie header) that
 * hands out its pieces as strings of their own. A plain slice of 13 chars or
 * more is a view that keeps the whole parent alive, and the engine keeps the
 * values it has seen, and what it derived from them, across requests
 * (engine.ts SlotCache, up to 8,192 strings): values cut from 128 KiB bodies
 * would keep a gigabyte of bodies (2,000 requests with one new 25-byte JSON
 * value each held 240 MB before). So a piece much shorter than its parent is
 * copied out of the parent's bytes: a flat string, which also hashes and
 * compares faster as a cache key than a view does.
 */
export class Text {
  /** The bytes `s` was read from (one char per byte); null: `s` has chars above 0xff. */
  private bytes: Buffer | null | undefined;

  constructor(
    readonly s: string,
    bytes?: Buffer,
  ) {
    this.bytes = bytes;
  }

  /** Where the last nextSpecial() search started, and what it found (-1: nothing after it). */
  private specialFrom = -1;
  private special = -1;

  /**
   * The index of the first backslash or control char (below 0x20) at or
   * after `from`, or -1. Searches only when `from` is past the last answer,
   * so a parser asking with growing offsets reads the text once.
   */
  nextSpecial(from: number): number {
    if (this.specialFrom !== -1 && this.specialFrom <= from && (this.special === -1 || this.special >= from)) return this.special;
    SPECIAL.lastIndex = from;
    const m = SPECIAL.exec(this.s);
    this.specialFrom = from;
    this.special = m === null ? -1 : m.index;
    return this.special;
  }

  /** `s.slice(a, b)`, keeping nothing of `s` but the piece (a few hundred chars at most). */
  cut(a: number, b: number): string {
    const n = b - a;
    if (n < MIN_VIEW_LENGTH || this.s.length - n <= VIEW_SLACK) return this.s.slice(a, b);
    let bytes = this.bytes;
    if (bytes === undefined) bytes = this.bytes = BEYOND_LATIN1.test(this.s) ? null : Buffer.from(this.s, 'latin1');
    // Not a byte string (never so for what the gateway reads): a copy by other means.
    if (bytes === null) return ownString(this.s.slice(a, b));
    return bytes.toString('latin1', a, b);
  }
}

const BEYOND_LATIN1 = /[^\x00-\xff]/;
const SPECIAL = /[\\\x00-\x1f]/g;

// ---------------------------------------------------------------------------
// Decoding helpers

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Percent-decoding as ModSecurity's non-strict urldecode: valid %XX becomes
 * the byte, anything else stays as it is; `+` becomes a space only for
 * arguments (plusAsSpace), never for the path.
 */
function percentDecode(s: string, plusAsSpace: boolean): string {
  if (s.indexOf('%') < 0 && (!plusAsSpace || s.indexOf('+') < 0)) return s;
  // Decoded bytes are never more than the input: write them into one buffer
  // (building the string piece by piece is quadratic in practice on long input).
  const n = s.length;
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b && plusAsSpace) {
      out[o++] = 0x20;
    } else if (c === 0x25 && i + 2 < n) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) {
        out[o++] = (h << 4) | l;
        i += 2;
      } else {
        out[o++] = c;
      }
    } else {
      out[o++] = c;
    }
  }
  return out.toString('latin1', 0, o);
}

/** `&`-separated name=value pairs; a pair without `=` has an empty value. */
function parseUrlEncoded(t: Text, kind: 'GET' | 'POST', sink: ArgSink): void {
  const s = t.s;
  const n = s.length;
  let start = 0;
  // Next '=' at or after start, kept across pairs: searching afresh from each
  // pair would rescan the rest of the input for every pair without '='.
  let eq = -2;
  while (start <= n) {
    let amp = s.indexOf('&', start);
    if (amp < 0) amp = n;
    if (amp > start) {
      if (eq !== -1 && eq < start) eq = s.indexOf('=', start);
      const hasEq = eq >= 0 && eq < amp;
      const name = percentDecode(t.cut(start, hasEq ? eq : amp), true);
      const value = hasEq ? percentDecode(t.cut(eq + 1, amp), true) : '';
      if (!sink.add(kind, name, value)) return;
    }
    start = amp + 1;
  }
}

function isCSpace(c: number): boolean {
  // C isspace(): space, \t, \n, \v, \f, \r
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/**
 * Cookie header split as ModSecurity v3 does: on `;` only, each pair at its
 * first `=` (a pair without `=` is a name with an empty value), leading
 * whitespace dropped from the name, trailing whitespace dropped from the
 * last pair, pairs with an empty name skipped. Values are not decoded.
 */
function parseCookies(value: string, b: VarsBuilder): void {
  const t = new Text(value);
  // Trailing whitespace is dropped from the last pair only.
  let end = value.length;
  while (end > 0 && isCSpace(value.charCodeAt(end - 1))) end--;
  let start = 0;
  // The next '=' at or after start, kept across pairs (searching afresh from
  // each pair would rescan the rest for every pair without one).
  let nextEq = -2;
  while (start <= end) {
    let semi = value.indexOf(';', start);
    if (semi < 0 || semi > end) semi = end;
    if (nextEq !== -1 && nextEq < start) nextEq = value.indexOf('=', start);
    const eq = nextEq >= 0 && nextEq < semi ? nextEq : -1;
    let k = start;
    const keyEnd = eq < 0 ? semi : eq;
    while (k < keyEnd && isCSpace(value.charCodeAt(k))) k++;
    if (k < keyEnd) {
      const key = t.cut(k, keyEnd);
      b.add('REQUEST_COOKIES', key, eq < 0 ? '' : t.cut(eq + 1, semi));
      b.add('REQUEST_COOKIES_NAMES', key, key);
    }
    start = semi + 1;
  }
}

/** Drops `scheme://authority` from an absolute-form target. */
function originForm(target: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(target);
  if (!m) return target;
  let i = m[0].length;
  while (i < target.length) {
    const c = target.charCodeAt(i);
    if (c === 0x2f || c === 0x3f || c === 0x23) break;
    i++;
  }
  const rest = target.slice(i);
  return rest.startsWith('/') ? rest : '/' + rest;
}

/**
 * The body processor ModSecurity's recommended configuration picks for a
 * Content-Type: urlencoded and multipart by prefix (as v3 does), JSON for
 * application/json and application/*+json, XML for text/xml,
 * application/xml and application/*+xml.
 */
export function bodyProcessorFor(contentType: string | undefined): BodyProcessor | undefined {
  if (contentType === undefined) return undefined;
  const l = contentType.trim().toLowerCase();
  if (l.startsWith('application/x-www-form-urlencoded')) return 'URLENCODED';
  if (l.startsWith('multipart/form-data')) return 'MULTIPART';
  const semi = l.indexOf(';');
  const media = (semi < 0 ? l : l.slice(0, semi)).trim();
  if (media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media)) return 'JSON';
  if (media === 'text/xml' || media === 'application/xml' || /^application\/[a-z0-9.+-]+\+xml$/.test(media)) return 'XML';
  return undefined;
}

function firstHeader(vars: RequestVars, lowerName: string): string | undefined {
  const headers = vars.collections.get('REQUEST_HEADERS');
  if (!headers) return undefined;
  for (const h of headers) if (h.name.toLowerCase() === lowerName) return h.value;
  return undefined;
}

// ---------------------------------------------------------------------------
// Head

export function buildHeadVars(input: HeadInput): RequestVars {
  const limits = limitsOf(input.limits);
  const b = new VarsBuilder();
  for (const c of HEAD_COLLECTIONS) b.list(c);
  const sink = new ArgSink(b, limits);
  const { method, target } = input;

  let protocol = input.httpVersion;
  if (protocol !== '' && !/^HTTP\//i.test(protocol)) protocol = 'HTTP/' + protocol;
  b.scalars.set('REQUEST_METHOD', method);
  b.scalars.set('REQUEST_PROTOCOL', protocol);
  b.scalars.set('REQUEST_LINE', protocol === '' ? `${method} ${target}` : `${method} ${target} ${protocol}`);
  b.scalars.set('REQUEST_URI_RAW', target);

  const q = target.indexOf('?');
  const whole = new Text(target);
  const rawPath = q < 0 ? target : whole.cut(0, q);
  const query = q < 0 ? '' : whole.cut(q + 1, target.length);
  const path = originForm(rawPath);
  // REQUEST_URI keeps the bytes as sent (only the scheme and host of an
  // absolute-form target go); REQUEST_FILENAME is the decoded path.
  b.scalars.set('REQUEST_URI', q < 0 ? path : `${path}?${query}`);
  const filename = percentDecode(path, false);
  b.scalars.set('REQUEST_FILENAME', filename);
  let cut = -1;
  for (let i = filename.length - 1; i >= 0; i--) {
    const c = filename.charCodeAt(i);
    if (c === 0x2f || c === 0x5c) {
      cut = i;
      break;
    }
  }
  b.scalars.set('REQUEST_BASENAME', filename.slice(cut + 1));
  b.scalars.set('QUERY_STRING', query);
  if (query !== '') parseUrlEncoded(new Text(query), 'GET', sink);

  let hasHost = false;
  for (const [name] of input.headers) if (name.toLowerCase() === 'host') hasHost = true;
  let contentType: string | undefined;
  for (const [rawName, value] of input.headers) {
    let name = rawName;
    if (name.startsWith(':')) {
      // HTTP/2 pseudo-headers are not request headers; :authority stands in
      // for a missing Host the way HTTP/2 front ends hand it to ModSecurity.
      if (name.toLowerCase() !== ':authority' || hasHost) continue;
      name = 'Host';
      hasHost = true;
    }
    b.add('REQUEST_HEADERS', name, value);
    b.add('REQUEST_HEADERS_NAMES', name, name);
    const lower = name.toLowerCase();
    if (lower === 'cookie') parseCookies(value, b);
    else if (lower === 'content-type' && contentType === undefined) contentType = value;
  }

  b.scalars.set('REQBODY_PROCESSOR', bodyProcessorFor(contentType) ?? '');
  b.scalars.set('REMOTE_ADDR', input.remoteAddr);
  if (input.remotePort !== undefined) b.scalars.set('REMOTE_PORT', String(input.remotePort));
  b.scalars.set('UNIQUE_ID', input.uniqueId ?? randomBytes(12).toString('hex'));
  b.scalars.set('ARGS_COMBINED_SIZE', String(sink.combined));
  if (sink.limitError !== undefined) {
    // Arguments past the cap were not collected: say so where the rules
    // look for a request they could not read in full.
    b.scalars.set('REQBODY_ERROR', '1');
    b.scalars.set('REQBODY_ERROR_MSG', sink.limitError);
  }
  return b.build();
}

// ---------------------------------------------------------------------------
// Body

export function addBodyVars(head: RequestVars, body: Buffer, opts: BodyOptions): RequestVars {
  const limits = limitsOf(opts.limits);
  const b = new VarsBuilder(head);
  const sink = new ArgSink(b, limits);
  let s = '';
  let error: string | undefined;
  try {
    s = body.toString('latin1');
  } catch {
    // Longer than a JS string can be: nothing of it can be inspected.
    error = `Request body too large to inspect (${body.length} bytes)`;
  }
  const processor = opts.processor ?? (bodyProcessorFor(firstHeader(head, 'content-type')) || undefined);

  b.scalars.set('REQUEST_BODY', s);
  b.scalars.set('REQUEST_BODY_LENGTH', String(s.length));
  b.scalars.set('INBOUND_DATA_ERROR', opts.truncated ? '1' : '0');
  b.scalars.set('REQBODY_PROCESSOR', processor ?? '');

  // Values are cut from the body's own bytes (see Text).
  const text = new Text(s, body);
  try {
    if (processor === 'URLENCODED') {
      parseUrlEncoded(text, 'POST', sink);
    } else if (processor === 'JSON') {
      const e = parseJson(text, opts.truncated, limits.maxJsonDepth, (leaf, v, plain) => sink.addEntry('POST', leafEntry(leaf, v, plain), leafNameEntry(leaf)));
      if (e !== undefined) error ??= `JSON parsing error: ${e}`;
    } else if (processor === 'MULTIPART') {
      const e = parseMultipart(text, firstHeader(head, 'content-type') ?? '', opts.truncated, limits, b, sink);
      if (e !== undefined) error ??= `Multipart parsing error: ${e}`;
    } else if (processor === 'XML') {
      // The XML collection under the two keys CRS reads (XML:/* and XML://@*).
      const x = parseXml(text, opts.truncated);
      if (x.root !== undefined) b.add('XML', '/*', x.root);
      for (const a of x.attrs) b.add('XML', '//@*', a);
      if (x.error !== undefined) error ??= `XML parsing error: ${x.error}`;
    }
  } catch (err) {
    // Defensive: a parser bug must not let a request through uninspected.
    error ??= `Request body parsing failed: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (sink.limitError !== undefined) error ??= sink.limitError;

  // An error found in the head (argument cap on the query) stays the one reported.
  if (head.scalars.get('REQBODY_ERROR') === '1') error = head.scalars.get('REQBODY_ERROR_MSG') ?? error;
  b.scalars.set('REQBODY_ERROR', error === undefined ? '0' : '1');
  b.scalars.set('REQBODY_ERROR_MSG', error ?? '');
  b.scalars.set('REQBODY_PROCESSOR_ERROR', error === undefined ? '0' : '1');
  b.scalars.set('REQBODY_PROCESSOR_ERROR_MSG', error ?? '');
  b.scalars.set('ARGS_COMBINED_SIZE', String(sink.combined));
  if (!b.scalars.has('FILES_COMBINED_SIZE')) b.scalars.set('FILES_COMBINED_SIZE', '0');
  return b.build();
}

// ---------------------------------------------------------------------------
// XML
//
// The XML collection as ModSecurity v3 fills it from libxml2's tree, for the
// two XPath expressions CRS uses: `XML:/*` is the text content of the root
// element (xmlNodeGetContent: every text and CDATA node below it, in document
// order, without attributes, comments or processing instructions) and
// `XML://@*` is the value of every attribute in the document. Entries are
// named by their expression (`/*`, `//@*`), which is the key the rules select.
// References are decoded as libxml2 decodes them (the predefined entities,
// character references as UTF-8, internal entities declared in the DOCTYPE's
// internal subset; external entities are never loaded and read as empty);
// line ends become LF and attribute values get XML's whitespace normalization.
// Well-formedness errors that make libxml2 refuse a document are reported
// (mismatched or unclosed tags, a second root, text after the root, a bad
// attribute, an undeclared entity, nesting past libxml2's 256 levels, entity
// expansion past a budget); the declared encoding is not applied (the bytes
// are kept), and entity replacement text is taken as text, not parsed for
// markup.

/** libxml2's default nesting limit (without XML_PARSE_HUGE). */
const XML_MAX_DEPTH = 256;
/** Attribute values collected at most (each is a `//@*` entry). */
const XML_MAX_ATTRS = 100_000;
const XML_PREDEFINED: ReadonlyMap<string, string> = new Map([
  ['lt', '<'],
  ['gt', '>'],
  ['amp', '&'],
  ['quot', '"'],
  ['apos', "'"],
]);

export interface XmlContent {
  /** Text content of the root element (`XML:/*`); undefined when no root element was read. */
  root: string | undefined;
  /** Attribute values in document order (`XML://@*`). */
  attrs: string[];
  error?: string;
}

function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a || c >= 0x80;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
}

/** A code point as UTF-8 bytes (one char per byte). */
function utf8Chars(cp: number): string {
  if (cp < 0x80) return String.fromCharCode(cp);
  const b = Buffer.alloc(4);
  const n = putUtf8(b, 0, cp);
  return b.toString('latin1', 0, n);
}

/** `\r\n` and lone `\r` become `\n`, as an XML processor normalizes line ends. */
function xmlLineEnds(s: string): string {
  return s.indexOf('\r') < 0 ? s : s.replace(/\r\n?/g, '\n');
}

class XmlError extends Error {}

class XmlParser {
  private i = 0;
  private readonly entities = new Map<string, string | null>();
  private hasDoctype = false;
  /** Bytes entity expansion may still produce (billion laughs). */
  private budget: number;
  readonly attrs: string[] = [];
  root: string | undefined;

  private readonly s: string;

  constructor(private readonly t: Text) {
    this.s = t.s;
    this.budget = 4 * t.s.length + 65536;
  }

  private fail(msg: string): never {
    throw new XmlError(msg);
  }

  private eof(what: string): never {
    throw new XmlError(`Premature end of data in ${what}`);
  }

  private skipSpace(): void {
    const s = this.s;
    while (this.i < s.length && isXmlSpace(s.charCodeAt(this.i))) this.i++;
  }

  private name(): string {
    const s = this.s;
    const start = this.i;
    if (start >= s.length) this.eof('name');
    if (!isNameStart(s.charCodeAt(start))) this.fail(`name expected at offset ${start}`);
    let j = start + 1;
    while (j < s.length && isNameChar(s.charCodeAt(j))) j++;
    this.i = j;
    return this.t.cut(start, j);
  }

  /** Skips to just after `end`. */
  private skipPast(end: string, what: string): string {
    const j = this.s.indexOf(end, this.i);
    if (j < 0) this.eof(what);
    const body = this.t.cut(this.i, j);
    this.i = j + end.length;
    return body;
  }

  private quoted(what: string): string {
    const q = this.s[this.i];
    if (q !== '"' && q !== "'") this.fail(`quote expected in ${what}`);
    const j = this.s.indexOf(q, this.i + 1);
    if (j < 0) this.eof(what);
    const v = this.t.cut(this.i + 1, j);
    this.i = j + 1;
    return v;
  }

  /** Decodes the references in `raw` (attribute value or entity text). */
  private decode(raw: string, depth: number): string {
    if (raw.indexOf('&') < 0) return raw;
    let out = '';
    let i = 0;
    for (;;) {
      const amp = raw.indexOf('&', i);
      if (amp < 0) return out + raw.slice(i);
      out += raw.slice(i, amp);
      const semi = raw.indexOf(';', amp + 1);
      if (semi < 0) this.fail("'&' not followed by a reference");
      out += this.reference(raw.slice(amp + 1, semi), depth);
      i = semi + 1;
    }
  }

  /** The replacement of `&ref;` (ref without `&` and `;`). */
  private reference(ref: string, depth: number): string {
    if (ref.charCodeAt(0) === 0x23) {
      const hex = ref[1] === 'x';
      const digits = ref.slice(hex ? 2 : 1);
      if (digits === '' || !(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) this.fail(`invalid character reference &${ref};`);
      const cp = parseInt(digits, hex ? 16 : 10);
      const ok = cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
      if (!ok) this.fail(`invalid character reference &${ref};`);
      return utf8Chars(cp);
    }
    if (ref === '' || !isNameStart(ref.charCodeAt(0))) this.fail(`invalid entity reference &${ref};`);
    const pre = XML_PREDEFINED.get(ref);
    if (pre !== undefined) return pre;
    const decl = this.entities.get(ref);
    if (decl === undefined) {
      if (!this.hasDoctype) this.fail(`Entity '${ref}' not defined`);
      return '';
    }
    if (decl === null) return ''; // external: not loaded
    if (depth >= 8) this.fail(`entity '${ref}' nested too deep`);
    const v = this.decode(decl, depth + 1);
    this.budget -= v.length;
    if (this.budget < 0) this.fail('entity expansion beyond the amplification limit');
    return v;
  }

  private doctype(): void {
    const s = this.s;
    this.hasDoctype = true;
    this.i += 9; // <!DOCTYPE
    this.skipSpace();
    this.name();
    for (;;) {
      this.skipSpace();
      if (this.i >= s.length) this.eof('DOCTYPE');
      const c = s[this.i]!;
      if (c === '>') {
        this.i++;
        return;
      }
      if (c === '"' || c === "'") this.quoted('DOCTYPE');
      else if (c === '[') {
        this.i++;
        this.internalSubset();
      } else if (isNameStart(c.charCodeAt(0))) this.name();
      else this.fail('malformed DOCTYPE');
    }
  }

  private internalSubset(): void {
    const s = this.s;
    for (;;) {
      this.skipSpace();
      if (this.i >= s.length) this.eof('DOCTYPE internal subset');
      if (s[this.i] === ']') {
        this.i++;
        return;
      }
      if (s.startsWith('<!--', this.i)) {
        this.i += 4;
        this.skipPast('-->', 'comment');
      } else if (s.startsWith('<?', this.i)) {
        this.i += 2;
        this.skipPast('?>', 'processing instruction');
      } else if (s.startsWith('<!ENTITY', this.i)) {
        this.i += 8;
        this.entityDecl();
      } else if (s.startsWith('<!', this.i)) {
        // ELEMENT, ATTLIST, NOTATION: skipped, quotes respected.
        this.i += 2;
        this.declRest();
      } else if (s[this.i] === '%') {
        this.skipPast(';', 'parameter entity reference');
      } else this.fail('malformed DOCTYPE internal subset');
    }
  }

  /** Skips the rest of a markup declaration up to its `>`. */
  private declRest(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === '>') {
        this.i++;
        return;
      }
      if (c === '"' || c === "'") this.quoted('markup declaration');
      else this.i++;
    }
    this.eof('markup declaration');
  }

  private entityDecl(): void {
    const s = this.s;
    this.skipSpace();
    let parameter = false;
    if (s[this.i] === '%') {
      parameter = true;
      this.i++;
      this.skipSpace();
    }
    const name = this.name();
    this.skipSpace();
    let value: string | null = null;
    if (s[this.i] === '"' || s[this.i] === "'") value = xmlLineEnds(this.quoted('entity value'));
    this.declRest();
    // The first declaration of a name binds (XML 1.0 4.2).
    if (!parameter && !this.entities.has(name)) this.entities.set(name, value);
  }

  /** Comments, PIs and white space (before the root, after it); false at anything else. */
  private misc(): boolean {
    const s = this.s;
    this.skipSpace();
    if (s.startsWith('<!--', this.i)) {
      this.i += 4;
      this.skipPast('-->', 'comment');
      return true;
    }
    if (s.startsWith('<?', this.i)) {
      this.i += 2;
      const target = this.name();
      if (target.toLowerCase() === 'xml') this.fail('XML declaration allowed only at the start of the document');
      this.skipPast('?>', 'processing instruction');
      return true;
    }
    return false;
  }

  parse(): void {
    const s = this.s;
    if (s.startsWith('\xef\xbb\xbf')) this.i = 3;
    if (s.startsWith('<?xml', this.i) && (this.i + 5 >= s.length || isXmlSpace(s.charCodeAt(this.i + 5)) || s[this.i + 5] === '?')) {
      this.i += 5;
      this.skipPast('?>', 'XML declaration');
    }
    while (this.misc());
    if (s.startsWith('<!DOCTYPE', this.i)) {
      this.doctype();
      while (this.misc());
    }
    if (this.i >= s.length) this.fail(this.i === 0 ? 'Document is empty' : 'Start tag expected');
    if (s[this.i] !== '<' || !isNameStart(s.charCodeAt(this.i + 1))) this.fail("Start tag expected, '<' not found");
    this.element();
    while (this.misc());
    if (this.i < s.length) this.fail('Extra content at the end of the document');
  }

  /** The root element and everything in it (an explicit stack: depth costs heap, not call stack). */
  private element(): void {
    const s = this.s;
    const stack: string[] = [];
    let text = '';
    this.root = '';
    try {
      do {
        const lt = s.indexOf('<', this.i);
        if (stack.length > 0) {
          const end = lt < 0 ? s.length : lt;
          if (end > this.i) {
            const chunk = this.t.cut(this.i, end);
            if (chunk.includes(']]>')) this.fail("Sequence ']]>' not allowed in content");
            if (chunk.includes('&')) {
              let out = '';
              let k = 0;
              for (;;) {
                const amp = chunk.indexOf('&', k);
                if (amp < 0) break;
                out += chunk.slice(k, amp);
                const semi = chunk.indexOf(';', amp + 1);
                if (semi < 0) {
                  if (lt < 0) this.eof('reference');
                  this.fail("'&' not followed by a reference");
                }
                out += xmlLineEnds(this.reference(chunk.slice(amp + 1, semi), 0));
                k = semi + 1;
              }
              text += xmlLineEnds(out) + xmlLineEnds(chunk.slice(k));
            } else text += xmlLineEnds(chunk);
          }
          if (lt < 0) {
            this.i = s.length;
            this.eof(`element ${stack[stack.length - 1]}`);
          }
        }
        this.i = lt;
        if (s.startsWith('</', lt)) {
          this.i += 2;
          const name = this.name();
          this.skipSpace();
          if (this.i >= s.length) this.eof('end tag');
          if (s[this.i] !== '>') this.fail(`malformed end tag ${name}`);
          this.i++;
          const open = stack.pop();
          if (open !== name) this.fail(`Opening and ending tag mismatch: ${open} and ${name}`);
        } else if (s.startsWith('<!--', lt)) {
          this.i += 4;
          this.skipPast('-->', 'comment');
        } else if (s.startsWith('<![CDATA[', lt)) {
          this.i += 9;
          text += xmlLineEnds(this.skipPast(']]>', 'CDATA section'));
        } else if (s.startsWith('<?', lt)) {
          this.i += 2;
          this.skipPast('?>', 'processing instruction');
        } else {
          this.i++;
          const name = this.name();
          const empty = this.attributes(name);
          if (!empty) {
            if (stack.length >= XML_MAX_DEPTH) this.fail(`Excessive depth in document: ${XML_MAX_DEPTH}`);
            stack.push(name);
          }
        }
      } while (stack.length > 0);
    } finally {
      this.root = text;
    }
  }

  /** Attributes of a start tag up to `>` or `/>`; true for an empty-element tag. */
  private attributes(element: string): boolean {
    const s = this.s;
    const seen = new Set<string>();
    for (;;) {
      const before = this.i;
      this.skipSpace();
      if (this.i >= s.length) this.eof(`start tag ${element}`);
      const c = s[this.i];
      if (c === '>') {
        this.i++;
        return false;
      }
      if (c === '/') {
        if (this.i + 1 >= s.length) this.eof(`start tag ${element}`);
        if (s[this.i + 1] !== '>') this.fail(`malformed start tag ${element}`);
        this.i += 2;
        return true;
      }
      if (this.i === before) this.fail(`attributes construct error in ${element}`);
      const name = this.name();
      this.skipSpace();
      if (this.i >= s.length) this.eof(`attribute ${name}`);
      if (s[this.i] !== '=') this.fail(`Specification mandates value for attribute ${name}`);
      this.i++;
      this.skipSpace();
      if (this.i >= s.length) this.eof(`attribute ${name}`);
      const raw = this.quoted(`attribute ${name}`);
      if (raw.includes('<')) this.fail(`Unescaped '<' not allowed in attribute value of ${name}`);
      if (seen.has(name)) this.fail(`Attribute ${name} redefined`);
      seen.add(name);
      // Literal white space becomes a space; what references produce is kept.
      const value = this.decode(xmlLineEnds(raw).replace(/[\t\n]/g, ' '), 0);
      if (this.attrs.length >= XML_MAX_ATTRS) this.fail(`more than ${XML_MAX_ATTRS} attributes`);
      this.attrs.push(value);
    }
  }
}

/** Parses an XML body into what `XML:/*` and `XML://@*` read (see above). */
export function parseXml(text: Text, truncated = false): XmlContent {
  const s = text.s;
  let t = text;
  // A UTF-16 document (libxml2 reads it by its byte order mark) is read as the UTF-8 it stands for.
  if (s.startsWith('\xff\xfe') || s.startsWith('\xfe\xff')) {
    const bytes = Buffer.from(s.slice(2, 2 + ((s.length - 2) & ~1)), 'latin1');
    if (s.charCodeAt(0) === 0xfe) bytes.swap16();
    t = new Text(Buffer.from(bytes.toString('utf16le'), 'utf8').toString('latin1'));
  }
  const p = new XmlParser(t);
  try {
    p.parse();
    return { root: p.root, attrs: p.attrs };
  } catch (err) {
    if (!(err instanceof XmlError)) throw err;
    // A body cut at the inspection limit ends early by construction: what was read is kept, not refused.
    if (truncated && err.message.startsWith('Premature end of data')) return { root: p.root, attrs: p.attrs };
    return { root: p.root, attrs: p.attrs, error: err.message };
  }
}

// ---------------------------------------------------------------------------
// JSON
//
// Leaves become ARGS_POST entries named the way ModSecurity v3 names them:
// the root is `json`, object members append `.key`, array elements append
// `.array_N`; an empty key is `empty-key`; a scalar at the root is `json`.
// {"a":{"b":1},"c":[true,{"d":null}]} gives json.a.b=1, json.c.array_0=true,
// json.c.array_1.d= (null is the empty string, numbers keep their text).
// The parser is iterative (an explicit stack, capped at maxJsonDepth), so
// nesting depth costs heap, never call stack.

interface JFrame {
  isArray: boolean;
  /** The container: its name is the base its members' names extend. */
  node: JName;
  counter: number;
}

/**
 * The leaf and container names of JSON bodies, kept across requests as a
 * tree (members by key, array elements by index). An API's bodies have the
 * same shape from one request to the next, so a name is found by walking
 * the tree instead of being built, and it is the same string object every
 * time: the WAF's per-string memo (engine.ts SlotCache) then finds it by
 * identity instead of flattening a concatenation and hashing it (about 0.3
 * µs per name, 80 names in a 2 KiB order). Names are own copies (they
 * outlive the body); the tree holds at most JSON_NAMES_MAX names, then
 * starts again empty, so keys that never repeat cost what building the
 * names did, and memory stays bounded.
 *
 * A leaf also keeps its ARGS_NAMES entry and the ARGS entry of its last
 * value: when the next body has the same value there, its chars are compared
 * with the kept value's instead of being cut into a new string, and the same
 * entry is handed out again, with what the engine learnt about the value on
 * it (types.ts VarEntry.memo): no hashing, no cache lookup. An object also
 * keeps its members in the order the last body gave them, so a key is
 * compared with the one expected at its place before it is read.
 */
class JName {
  members: Map<string, JName> | undefined = undefined;
  elements: JName[] | undefined = undefined;
  /** An object's members in the order the last body gave them: the next key is compared with the one there before it is read. */
  order: JName[] | undefined = undefined;
  /** As a leaf: the ARGS entry of the last value it had (up to JSON_VALUE_KEPT_LENGTH chars), and its ARGS_NAMES entry (within JSON_ENTRIES_MAX). */
  entry: VarEntry | undefined = undefined;
  nameEntry: VarEntry | undefined = undefined;
  constructor(
    readonly name: string,
    /** Whether it is in the tree (its children may be added to it). */
    readonly kept: boolean,
    /** As a member of an object: its key (cut from the name). */
    readonly key = '',
  ) {}
}

const JSON_NAMES_MAX = 16384;
/** Names longer than this are built per request, not kept. */
const JSON_NAME_KEPT_LENGTH = 256;
/** A leaf keeps its last value's entry up to this length (see JName.entry). */
const JSON_VALUE_KEPT_LENGTH = 256;
/**
 * Entries the tree keeps (values and names together). An entry carries what
 * the engine learnt about its value, several KiB with the transformed
 * copies (about 6 KiB for a short value): 2,048 of them held 12 MB at the
 * most in a test (hostile-requests.test.ts), 82 MB without this bound. Leaves
 * seen once the budget is spent keep their names only.
 */
const JSON_ENTRIES_MAX = 2048;
let jsonRoot = new JName('json', true);
let jsonNames = 0;
let jsonEntries = 0;

function newJName(parent: JName, name: string, key: string | undefined): JName {
  if (!parent.kept || name.length > JSON_NAME_KEPT_LENGTH) return new JName(name, false, key);
  if (jsonNames >= JSON_NAMES_MAX) {
    // Full: a fresh tree; what is being parsed goes on with names that are not kept.
    jsonRoot = new JName('json', true);
    jsonNames = 0;
    jsonEntries = 0;
    return new JName(name, false, key);
  }
  jsonNames++;
  const own = ownString(name);
  // The key as part of the kept name (a view of it keeps nothing the tree does not keep anyway).
  return new JName(own, true, key === undefined || key === '' ? '' : own.slice(parent.name.length + 1));
}

/** The name of member `key` (the empty key is `empty-key`) of object `o`. */
function memberName(o: JName, key: string): JName {
  let m = o.members;
  if (m !== undefined) {
    const c = m.get(key);
    if (c !== undefined) return c;
  }
  const c = newJName(o, `${o.name}.${key === '' ? 'empty-key' : key}`, key);
  if (c.kept) {
    if (m === undefined) m = o.members = new Map();
    m.set(c.key, c);
  }
  return c;
}

/** Whether s[start, end) is `like`. */
function sameChars(s: string, start: number, end: number, like: string): boolean {
  if (end - start !== like.length) return false;
  for (let k = 0; k < like.length; k++) if (s.charCodeAt(start + k) !== like.charCodeAt(k)) return false;
  return true;
}

/**
 * Leaf `jn`'s ARGS entry for `value`: the one kept from an earlier body when
 * the value is the same (the engine's memo on it then serves again), else a
 * new one, kept in turn when `plain` (read without escapes, see readJsonString).
 */
function leafEntry(jn: JName, value: string, plain: boolean): VarEntry {
  const e = jn.entry;
  if (e !== undefined && e.value === value) return e;
  const made: VarEntry = { name: jn.name, value, memo: null };
  if (plain && jn.kept && value.length <= JSON_VALUE_KEPT_LENGTH && (e !== undefined || jsonEntries < JSON_ENTRIES_MAX)) {
    if (e === undefined) jsonEntries++;
    jn.entry = made;
  }
  return made;
}

/** Leaf `jn`'s ARGS_NAMES entry (its value is its name). */
function leafNameEntry(jn: JName): VarEntry {
  let e = jn.nameEntry;
  if (e === undefined) {
    e = { name: jn.name, value: jn.name, memo: null };
    if (jn.kept && jsonEntries < JSON_ENTRIES_MAX) {
      jsonEntries++;
      jn.nameEntry = e;
    }
  }
  return e;
}

/** The name of element `i` of array `a`. */
function elementName(a: JName, i: number): JName {
  let e = a.elements;
  if (e !== undefined && i < e.length) return e[i]!;
  const c = newJName(a, `${a.name}.array_${i}`, undefined);
  if (c.kept) {
    if (e === undefined) e = a.elements = [];
    // Indices arrive in order; one after an element the full tree could not keep is not kept either.
    if (i === e.length) e.push(c);
  }
  return c;
}

/** Writes cp as UTF-8 at out[o]; returns the new offset. */
function putUtf8(out: Buffer, o: number, cp: number): number {
  if (cp < 0x80) {
    out[o++] = cp;
  } else if (cp < 0x800) {
    out[o++] = 0xc0 | (cp >> 6);
    out[o++] = 0x80 | (cp & 0x3f);
  } else if (cp < 0x10000) {
    out[o++] = 0xe0 | (cp >> 12);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  } else {
    out[o++] = 0xf0 | (cp >> 18);
    out[o++] = 0x80 | ((cp >> 12) & 0x3f);
    out[o++] = 0x80 | ((cp >> 6) & 0x3f);
    out[o++] = 0x80 | (cp & 0x3f);
  }
  return o;
}

function hex4(s: string, at: number): number {
  let v = 0;
  for (let k = 0; k < 4; k++) {
    const h = hexVal(s.charCodeAt(at + k));
    if (h < 0) return -1;
    v = (v << 4) | h;
  }
  return v;
}

/** What readJsonString found besides the string: where the parse goes on (-1: the input ended inside the string), whether the string had no escape, or its error. */
let jNext = 0;
let jPlain = true;
let jError = '';

/**
 * Reads a JSON string whose opening quote is at start - 1; undefined on an
 * error (jError). Escapes are decoded to UTF-8 bytes; raw bytes (including
 * invalid UTF-8) pass through unchanged so the rules see what the client sent.
 * `like`, when given, is the string an earlier body had at this place, plain
 * (no quote, backslash or control char: only plain strings are kept, see
 * leafEntry): when the same chars and the closing quote follow, it is
 * returned itself, read once and not copied into a new string.
 */
function readJsonString(t: Text, start: number, like: string | undefined): string | undefined {
  const s = t.s;
  const n = s.length;
  jPlain = true;
  if (like !== undefined) {
    const end = start + like.length;
    if (end < n && s.charCodeAt(end) === 0x22 && sameChars(s, start, end, like)) {
      jNext = end + 1;
      return like;
    }
  }
  // First find the end; most strings have no escape and are a plain slice.
  let j = start;
  let escapes = false;
  // The first chars one by one; past them (a long string) the closing quote
  // is found natively and the chars up to it are known plain when the next
  // backslash or control char of the text lies beyond it (see Text.nextSpecial).
  const head = Math.min(n, start + JSON_SCAN_CHARS);
  while (j < head) {
    const c = s.charCodeAt(j);
    if (c === 0x22 || c === 0x5c || c < 0x20) break;
    j++;
  }
  if (j === head && j < n) {
    const q = s.indexOf('"', j);
    const special = t.nextSpecial(j);
    if (special === -1 || (q !== -1 && special > q)) {
      jNext = q === -1 ? -1 : q + 1;
      return t.cut(start, q === -1 ? n : q);
    }
  }
  while (j < n) {
    const c = s.charCodeAt(j);
    if (c === 0x22) break;
    if (c === 0x5c) {
      escapes = true;
      j += 2;
      continue;
    }
    if (c < 0x20) {
      jError = `control character 0x${c.toString(16).padStart(2, '0')} in string at offset ${j}`;
      return undefined;
    }
    j++;
  }
  const closed = j < n;
  const end = Math.min(j, n);
  jNext = closed ? end + 1 : -1;
  if (!escapes) return t.cut(start, end);
  jPlain = false;

  // Every escape decodes to fewer bytes than its text.
  const out = Buffer.allocUnsafe(end - start);
  let o = 0;
  let k = start;
  while (k < end) {
    const c = s.charCodeAt(k);
    if (c !== 0x5c) {
      out[o++] = c;
      k++;
      continue;
    }
    if (k + 1 >= end) break; // cut right after the backslash
    const e = s.charCodeAt(k + 1);
    let adv = 2;
    switch (e) {
      case 0x22: out[o++] = 0x22; break;
      case 0x5c: out[o++] = 0x5c; break;
      case 0x2f: out[o++] = 0x2f; break;
      case 0x62: out[o++] = 0x08; break;
      case 0x66: out[o++] = 0x0c; break;
      case 0x6e: out[o++] = 0x0a; break;
      case 0x72: out[o++] = 0x0d; break;
      case 0x74: out[o++] = 0x09; break;
      case 0x75: {
        if (k + 6 > end) {
          if (closed) {
            jError = `invalid \\u escape at offset ${k}`;
            return undefined;
          }
          k = end; // cut inside the escape
          continue;
        }
        let cp = hex4(s, k + 2);
        if (cp < 0) {
          jError = `invalid \\u escape at offset ${k}`;
          return undefined;
        }
        adv = 6;
        if (cp >= 0xd800 && cp <= 0xdbff && k + 12 <= end && s.charCodeAt(k + 6) === 0x5c && s.charCodeAt(k + 7) === 0x75) {
          const lo = hex4(s, k + 8);
          if (lo >= 0xdc00 && lo <= 0xdfff) {
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            adv = 12;
          }
        }
        // A lone surrogate is kept as its three-byte form rather than dropped.
        o = putUtf8(out, o, cp);
        break;
      }
      default:
        jError = `invalid escape '\\${String.fromCharCode(e)}' at offset ${k}`;
        return undefined;
    }
    k += adv;
  }
  return out.toString('latin1', 0, o);
}

/** Chars of a JSON string read one by one before the rest is searched natively (readJsonString). */
const JSON_SCAN_CHARS = 32;

const JSON_NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * Parses s, calling emit for every leaf. Returns an error description, or
 * undefined when the body parsed (or, when truncated, parsed up to the cut).
 * emit returning false stops the parse (a cap was hit; the caller reports it).
 */
function parseJson(t: Text, truncated: boolean, maxDepth: number, emit: (leaf: JName, value: string, plain: boolean) => boolean): string | undefined {
  const s = t.s;
  const VALUE = 0, VALUE_OR_CLOSE = 1, KEY = 2, KEY_OR_CLOSE = 3, COLON = 4, AFTER = 5;
  const n = s.length;
  const stack: JFrame[] = [];
  /** The member whose key was read last (in an object, the value that follows is its). */
  let member = jsonRoot;
  let state = VALUE;
  let i = 0;

  const root = jsonRoot;
  const leaf = (): JName => {
    const top = stack[stack.length - 1];
    if (top === undefined) return root;
    if (top.isArray) return elementName(top.node, top.counter++);
    return member;
  };
  const push = (isArray: boolean): boolean => {
    if (stack.length >= maxDepth) return false;
    const top = stack[stack.length - 1];
    let node: JName;
    if (top === undefined) node = root;
    else if (top.isArray) node = elementName(top.node, top.counter);
    else node = member;
    stack.push({ isArray, node, counter: 0 });
    return true;
  };
  const pop = (): void => {
    stack.pop();
    const top = stack[stack.length - 1];
    if (top !== undefined && top.isArray) top.counter++;
  };
  const show = (c: number): string => (c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `0x${c.toString(16).padStart(2, '0')}`);

  for (;;) {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    if (i >= n) break;
    const c = s.charCodeAt(i);
    switch (state) {
      case VALUE:
      case VALUE_OR_CLOSE: {
        if (c === 0x5d && state === VALUE_OR_CLOSE) {
          i++;
          pop();
          state = AFTER;
          break;
        }
        if (c === 0x7b || c === 0x5b) {
          if (!push(c === 0x5b)) return `depth limit exceeded (more than ${maxDepth} nested objects/arrays)`;
          i++;
          state = c === 0x5b ? VALUE_OR_CLOSE : KEY_OR_CLOSE;
          break;
        }
        if (c === 0x22) {
          const jn = leaf();
          const v = readJsonString(t, i + 1, jn.entry?.value);
          if (v === undefined) return jError;
          if (jNext < 0) {
            if (!truncated) return 'premature end of input inside a string';
            // Cut inside a value: the part that arrived is still inspected.
            emit(jn, v, false);
            return undefined;
          }
          i = jNext;
          if (!emit(jn, v, jPlain)) return undefined;
          state = AFTER;
          break;
        }
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
          let j = i + 1;
          while (j < n) {
            const d = s.charCodeAt(j);
            if ((d >= 0x30 && d <= 0x39) || d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) j++;
            else break;
          }
          const jn = leaf();
          const like = jn.entry?.value;
          const text = like !== undefined && sameChars(s, i, j, like) ? like : t.cut(i, j);
          if (!JSON_NUMBER.test(text)) {
            if (truncated && j === n) {
              emit(jn, text, false);
              return undefined;
            }
            return `invalid number at offset ${i}`;
          }
          i = j;
          if (!emit(jn, text, true)) return undefined;
          state = AFTER;
          break;
        }
        if (c === 0x74 || c === 0x66 || c === 0x6e) {
          const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null';
          if (s.startsWith(word, i)) {
            i += word.length;
            if (!emit(leaf(), word === 'null' ? '' : word, true)) return undefined;
            state = AFTER;
            break;
          }
          if (truncated && word.startsWith(s.slice(i))) return undefined;
          return `invalid literal at offset ${i}`;
        }
        return `unexpected ${show(c)} at offset ${i}`;
      }
      case KEY:
      case KEY_OR_CLOSE: {
        if (c === 0x7d && state === KEY_OR_CLOSE) {
          i++;
          pop();
          state = AFTER;
          break;
        }
        if (c !== 0x22) return `object key must be a string (${show(c)} at offset ${i})`;
        // The member an earlier body had at this place: its key is compared, not read into a new string.
        const top = stack[stack.length - 1]!;
        const o = top.node;
        const was = o.order?.[top.counter];
        const k = readJsonString(t, i + 1, was?.key);
        if (k === undefined) return jError;
        if (jNext < 0) return truncated ? undefined : 'premature end of input inside a key';
        member = was !== undefined && k === was.key ? was : memberName(o, k);
        // Only a plain key is compared in place (see readJsonString).
        if (o.kept && member !== was && member.kept && jPlain) {
          const order = (o.order ??= []);
          if (top.counter <= order.length) order[top.counter] = member;
        }
        top.counter++;
        i = jNext;
        state = COLON;
        break;
      }
      case COLON:
        if (c !== 0x3a) return `expected ':' (${show(c)} at offset ${i})`;
        i++;
        state = VALUE;
        break;
      default: {
        const top = stack[stack.length - 1];
        if (top === undefined) return `trailing garbage at offset ${i}`;
        if (c === 0x2c) {
          i++;
          state = top.isArray ? VALUE : KEY;
        } else if ((c === 0x7d && !top.isArray) || (c === 0x5d && top.isArray)) {
          i++;
          pop();
        } else {
          return `expected ',' or '${top.isArray ? ']' : '}'}' (${show(c)} at offset ${i})`;
        }
      }
    }
  }
  if (truncated) return undefined;
  if (state === AFTER && stack.length === 0) return undefined;
  return n === 0 ? undefined : 'premature end of input';
}

// ---------------------------------------------------------------------------
// Multipart
//
// ModSecurity v3's multipart semantics, read line by line over the whole
// buffer: form fields go to ARGS_POST, parts with a non-empty filename to
// FILES (field name -> file name), FILES_NAMES (field name) and FILES_SIZES;
// every part header line, as sent (folded lines joined with a space), goes
// to MULTIPART_PART_HEADERS under the part's name. Where ModSecurity stops at
// the first problem, this parser records the problem and goes on, so the
// rules still see the rest of the body.

interface MpFlags {
  boundaryQuoted: number;
  boundaryWhitespace: number;
  dataBefore: number;
  dataAfter: number;
  headerFolding: number;
  lfLine: number;
  crlfLine: number;
  missingSemicolon: number;
  invalidQuoting: number;
  invalidPart: number;
  invalidHeaderFolding: number;
  fileLimitExceeded: number;
  unmatchedBoundary: number;
}

interface MpHeader {
  value: string;
  line: number;
}

interface MpPart {
  lines: string[];
  headers: Map<string, MpHeader>;
  last: MpHeader | undefined;
  /** Header lines seen, folded continuations included. */
  lineCount: number;
  headerLimitHit: boolean;
  inData: boolean;
  dataStart: number;
  name: string | undefined;
  filename: string | undefined;
  isFile: boolean;
  skip: boolean;
}

function clip(s: string): string {
  return s.length > 120 ? s.slice(0, 120) + '...' : s;
}

function isTokenChar(c: number): boolean {
  if (c <= 32 || c >= 127) return false;
  switch (c) {
    case 0x28: case 0x29: case 0x3c: case 0x3e: case 0x40: case 0x2c: case 0x3b: case 0x3a:
    case 0x5c: case 0x22: case 0x2f: case 0x5b: case 0x5d: case 0x3f: case 0x3d:
      return false;
  }
  return true;
}

/** RFC 2046 bchars; a space is allowed but not as the last character. */
function boundaryCharsValid(b: string): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b.charCodeAt(i);
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
      (c === 0x20 && i < b.length - 1) ||
      c === 0x27 || c === 0x28 || c === 0x29 || c === 0x2b || c === 0x5f || c === 0x2c ||
      c === 0x2d || c === 0x2e || c === 0x2f || c === 0x3a || c === 0x3d || c === 0x3f;
    if (!ok) return false;
  }
  return true;
}

/** "boundary" occurrences (any case) that have a '=' somewhere after them. */
function countBoundaryParams(s: string): number {
  const l = s.toLowerCase();
  const lastEq = l.lastIndexOf('=');
  let count = 0;
  let at = l.indexOf('boundary');
  while (at >= 0) {
    if (lastEq > at + 7) count++;
    at = l.indexOf('boundary', at + 8);
  }
  return count;
}

/**
 * The boundary from the Content-Type, with ModSecurity's checks reported
 * through fail/flags. The boundary used for parsing is the parameter value
 * with quotes, surrounding whitespace and any later parameters removed, so
 * a header the checks reject is still parsed the way a backend would.
 */
function multipartBoundary(ct: string, flags: MpFlags, fail: (m: string) => void): string | undefined {
  if (ct.length > 1024) fail('Invalid boundary in C-T (length).');
  if (!ct.toLowerCase().startsWith('multipart/form-data')) fail('Invalid MIME type.');
  if (countBoundaryParams(ct) > 1) fail('Multiple boundary parameters in C-T.');
  let at = ct.indexOf('boundary');
  if (at < 0) {
    at = ct.toLowerCase().indexOf('boundary');
    if (at < 0) {
      fail('Boundary not found in C-T.');
      return undefined;
    }
    fail('Invalid boundary in C-T (case sensitivity).');
  }
  let semicolons = 0;
  for (let p = Math.min(19, at); p < at; p++) {
    const c = ct.charCodeAt(p);
    if (isCSpace(c)) continue;
    if (c === 0x3b && semicolons === 0) semicolons++;
    else {
      fail('Invalid boundary in C-T (malformed).');
      break;
    }
  }
  if (semicolons === 0) flags.missingSemicolon = 1;
  const eq = ct.indexOf('=', at + 8);
  if (eq < 0) {
    fail('Invalid boundary in C-T (malformed).');
    return undefined;
  }
  for (let p = at + 8; p < eq; p++) {
    if (isCSpace(ct.charCodeAt(p))) flags.boundaryWhitespace = 1;
    else {
      fail('Invalid boundary in C-T (parameter name).');
      break;
    }
  }
  const raw = ct.slice(eq + 1);
  if (raw.length > 0 && isCSpace(raw.charCodeAt(0))) flags.boundaryWhitespace = 1;
  let boundary: string;
  if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
    flags.boundaryQuoted = 1;
    boundary = raw.slice(1, -1);
  } else {
    if (raw.startsWith('"') || (raw.length >= 2 && raw.endsWith('"'))) fail('Invalid boundary in C-T (quote).');
    boundary = raw;
  }
  if (countBoundaryParams(boundary) !== 0) fail('Invalid boundary in C-T (content).');
  if (!boundaryCharsValid(boundary)) fail('Invalid boundary in C-T (characters).');

  // What a backend takes as the boundary.
  let v = raw.replace(/^[ \t]+/, '');
  if (v.startsWith('"')) {
    const close = v.indexOf('"', 1);
    v = close < 0 ? v.slice(1) : v.slice(1, close);
  } else {
    const semi = v.indexOf(';');
    if (semi >= 0) v = v.slice(0, semi);
    v = v.replace(/[ \t\r\n]+$/, '');
  }
  if (v === '') {
    fail('Invalid boundary in C-T (empty).');
    return undefined;
  }
  return v;
}

/** Content-Disposition: form-data; name="..."; filename="..." (ModSecurity's return codes in errors). */
function parseContentDisposition(
  v: string,
  flags: MpFlags,
  b: VarsBuilder,
): { code: number; name: string | undefined; filename: string | undefined } {
  let code = 1;
  let name: string | undefined;
  let filename: string | undefined;
  const err = (c: number): void => {
    if (code > 0) code = c;
  };
  const done = () => ({ code, name, filename });
  const n = v.length;
  if (!v.startsWith('form-data')) {
    if (v.slice(0, 9).toLowerCase() !== 'form-data') return { code: -1, name, filename };
    err(-1);
  }
  const ws = (p: number): number => {
    while (p < n && (v.charCodeAt(p) === 0x20 || v.charCodeAt(p) === 0x09)) p++;
    return p;
  };
  let p = ws(9);
  if (p >= n) return done();
  if (v.charCodeAt(p) !== 0x3b) {
    err(-2);
    return done();
  }
  p++;
  while (p < n) {
    p = ws(p);
    if (p >= n) {
      err(-3);
      break;
    }
    const start = p;
    while (p < n) {
      const c = v.charCodeAt(p);
      if (c === 0x3d || c === 0x20 || c === 0x09) break;
      p++;
    }
    if (p >= n) {
      err(-4);
      break;
    }
    const pname = v.slice(start, p);
    p = ws(p);
    if (p >= n) {
      err(-5);
      break;
    }
    if (v.charCodeAt(p) !== 0x3d) {
      err(-13);
      break;
    }
    p = ws(p + 1);
    if (p >= n) {
      err(-6);
      break;
    }
    let value: string;
    const q = v.charCodeAt(p);
    if (q === 0x22 || q === 0x27) {
      // Single quotes are accepted as some backends do, and flagged.
      if (q === 0x27) flags.invalidQuoting = 1;
      p++;
      if (p >= n) {
        err(-7);
        break;
      }
      const pieces: string[] = [];
      let seg = p;
      while (p < n) {
        const c = v.charCodeAt(p);
        if (c === 0x5c) {
          if (p + 1 >= n) {
            err(-8);
            break;
          }
          // Only the quote and the backslash are escapes; any other
          // backslash stays in the value.
          const nx = v.charCodeAt(p + 1);
          if (nx === q || nx === 0x5c) {
            pieces.push(v.slice(seg, p));
            p++;
            seg = p;
          }
        } else if (c === q) {
          break;
        }
        p++;
      }
      pieces.push(v.slice(seg, Math.min(p, n)));
      value = pieces.join('');
      p++;
    } else {
      const s0 = p;
      while (p < n && isTokenChar(v.charCodeAt(p))) p++;
      value = v.slice(s0, p);
    }
    const lower = pname.toLowerCase();
    if (lower === 'name' || lower === 'filename') {
      // ModSecurity matches the parameter names case-sensitively; other
      // spellings are reported but still used, as backends accept them.
      if (pname !== lower) err(-11);
      if (value.includes("'")) flags.invalidQuoting = 1;
      if (lower === 'name') {
        b.add('MULTIPART_NAME', value, value);
        if (name !== undefined) err(-14);
        else name = value;
      } else {
        b.add('MULTIPART_FILENAME', value, value);
        if (filename !== undefined) err(-15);
        else filename = value;
      }
    } else {
      err(-11);
    }
    if (p < n) {
      p = ws(p);
      if (p >= n) break;
      if (v.charCodeAt(p) !== 0x3b) {
        const prev = v.charCodeAt(p - 1);
        if (prev === 0x27 || prev === 0x22) flags.invalidQuoting = 1;
        err(-12);
        break;
      }
      p++;
    }
  }
  return done();
}

/** Returns the parse error (without the "Multipart parsing error: " prefix), or undefined. */
function parseMultipart(
  t: Text,
  contentType: string,
  truncated: boolean,
  limits: VarLimits,
  b: VarsBuilder,
  sink: ArgSink,
): string | undefined {
  const s = t.s;
  const flags: MpFlags = {
    boundaryQuoted: 0, boundaryWhitespace: 0, dataBefore: 0, dataAfter: 0, headerFolding: 0,
    lfLine: 0, crlfLine: 0, missingSemicolon: 0, invalidQuoting: 0, invalidPart: 0,
    invalidHeaderFolding: 0, fileLimitExceeded: 0, unmatchedBoundary: 0,
  };
  let error: string | undefined;
  const fail = (m: string): void => {
    if (error === undefined) error = `Multipart: ${m}`;
  };
  let filesSize = Number(b.scalars.get('FILES_COMBINED_SIZE') ?? '0') || 0;

  const boundary = multipartBoundary(contentType, flags, fail);
  if (boundary !== undefined) {
    const dash = '--' + boundary;
    const n = s.length;
    let part: MpPart | undefined;
    let parts = 0;
    let boundaries = 0;
    let complete = false;
    let stopped = false;
    // Next occurrence of "--boundary" at or after the current line, for the
    // unmatched-boundary check; one forward scan over the body in total.
    let occ = n === 0 ? -1 : s.indexOf(dash);

    const finishPart = (end: number, stripNewline: boolean): void => {
      const p = part;
      part = undefined;
      if (p === undefined) return;
      if (!p.inData) {
        // Boundary (or the end) before the blank line: no name, no data.
        flags.invalidPart = 1;
        for (const line of p.lines) b.add('MULTIPART_PART_HEADERS', '', line);
        return;
      }
      if (p.skip) {
        flags.invalidPart = 1;
        return;
      }
      let e = end;
      if (stripNewline && e > p.dataStart && s.charCodeAt(e - 1) === 0x0a) {
        e--;
        if (e > p.dataStart && s.charCodeAt(e - 1) === 0x0d) e--;
      }
      const name = p.name as string;
      if (p.isFile) {
        const size = Math.max(0, e - p.dataStart);
        filesSize += size;
        b.add('FILES', name, p.filename as string);
        b.add('FILES_NAMES', name, name);
        b.add('FILES_SIZES', name, String(size));
      } else if (!sink.add('POST', name, t.cut(p.dataStart, Math.max(e, p.dataStart)))) {
        stopped = true;
      }
    };

    const endHeaders = (p: MpPart, dataStart: number): void => {
      p.inData = true;
      p.dataStart = dataStart;
      const cd = p.headers.get('content-disposition');
      if (cd === undefined) {
        fail('Part missing Content-Disposition header.');
        p.skip = true;
      } else {
        const r = parseContentDisposition(cd.value, flags, b);
        if (r.code < 0) fail(`Invalid Content-Disposition header (${r.code}): ${clip(cd.value)}`);
        p.name = r.name;
        p.filename = r.filename;
        if (r.name === undefined || r.name === '') {
          fail('Content-Disposition header missing name field.');
          p.skip = true;
        } else if (r.filename !== undefined && r.filename !== '') {
          if (!cd.value.includes('filename=')) fail('Invalid Content-Disposition header (filename).');
          p.isFile = true;
        }
      }
      const key = p.name ?? '';
      for (const line of p.lines) b.add('MULTIPART_PART_HEADERS', key, line);
    };

    const headerLine = (p: MpPart, line: string): void => {
      if (p.lineCount >= limits.maxPartHeaders) {
        if (!p.headerLimitHit) fail(`Too many part header lines (more than ${limits.maxPartHeaders}).`);
        p.headerLimitHit = true;
        return;
      }
      p.lineCount++;
      if (line.indexOf('\0') >= 0) fail('Nul byte in part headers.');
      if (line.length > MAX_PART_HEADER_LINE) fail(`Part header line over ${MAX_PART_HEADER_LINE} bytes long`);
      if (isCSpace(line.charCodeAt(0))) {
        // Folding: RFC 2557 allows SP/HTAB; other whitespace is accepted and flagged.
        flags.headerFolding = 1;
        let k = 0;
        while (k < line.length && isCSpace(line.charCodeAt(k))) {
          const c = line.charCodeAt(k);
          if (c !== 0x20 && c !== 0x09) flags.invalidHeaderFolding = 1;
          k++;
        }
        if (p.last === undefined) {
          fail('Invalid part header (folding error).');
          return;
        }
        const more = ' ' + line.slice(k);
        p.last.value += more;
        p.lines[p.last.line] += more;
        return;
      }
      const colon = line.indexOf(':');
      if (colon < 0) {
        fail(`Invalid part header (colon missing): ${clip(line)}`);
        return;
      }
      if (colon === 0) {
        fail('Invalid part header (header name missing).');
        return;
      }
      const hname = line.slice(0, colon);
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(hname)) fail('Invalid part header (contains invalid character).');
      let v = colon + 1;
      while (v < line.length && (line.charCodeAt(v) === 0x20 || line.charCodeAt(v) === 0x09)) v++;
      const h: MpHeader = { value: line.slice(v), line: p.lines.push(line) - 1 };
      const lower = hname.toLowerCase();
      if (p.headers.has(lower)) fail(`Duplicate part header: ${clip(hname)}.`);
      else p.headers.set(lower, h);
      p.last = h;
    };

    let pos = 0;
    while (pos < n && !stopped) {
      const nl = s.indexOf('\n', pos);
      const terminated = nl >= 0;
      const lineEnd = terminated ? nl + 1 : n;
      const hasCR = terminated && nl > pos && s.charCodeAt(nl - 1) === 0x0d;
      const contentEnd = terminated ? (hasCR ? nl - 1 : nl) : n;
      const lineFlag = (): void => {
        if (!terminated) return;
        if (hasCR) flags.crlfLine = 1;
        else flags.lfLine = 1;
      };

      if (!terminated && truncated) {
        // The cut line: a partial boundary ends the current part there;
        // anything else is data the open part keeps (or a header it loses).
        if ((dash + '--').startsWith(s.slice(pos, Math.min(n, pos + dash.length + 2)))) {
          if (part !== undefined && !part.inData) part = undefined;
          else finishPart(pos, true);
          complete = true;
        }
        break;
      }

      let isBoundary = false;
      if (lineEnd - pos > 3 && s.charCodeAt(pos) === 0x2d && s.charCodeAt(pos + 1) === 0x2d) {
        if (s.startsWith(dash, pos)) {
          let p = pos + dash.length;
          let final = false;
          if (p + 2 <= contentEnd && s.charCodeAt(p) === 0x2d && s.charCodeAt(p + 1) === 0x2d) {
            final = true;
            p += 2;
          }
          let q = p;
          while (q < contentEnd && (s.charCodeAt(q) === 0x20 || s.charCodeAt(q) === 0x09)) q++;
          if (q === contentEnd) {
            // Transport padding after the boundary is an error for ModSecurity;
            // it is still the boundary a backend sees.
            if (q !== p) fail(`Invalid boundary: ${clip(s.slice(pos, contentEnd))}`);
            if (!terminated && !final) {
              // "--boundary" as the very last bytes: the part ends, the body is incomplete.
              finishPart(pos, true);
              break;
            }
            isBoundary = true;
            lineFlag();
            finishPart(pos, true);
            boundaries++;
            if (final) {
              complete = true;
              if (lineEnd < n) flags.dataAfter = 1;
              break;
            }
            parts++;
            if (parts > limits.maxMultipartParts) {
              fail(`Too many parts (more than ${limits.maxMultipartParts}).`);
              flags.fileLimitExceeded = 1;
              stopped = true;
              break;
            }
            part = {
              lines: [], headers: new Map(), last: undefined, lineCount: 0, headerLimitHit: false, inData: false,
              dataStart: 0, name: undefined, filename: undefined, isFile: false, skip: false,
            };
          } else {
            fail(`Invalid boundary: ${clip(s.slice(pos, contentEnd))}`);
          }
        } else {
          if (flags.boundaryQuoted && s.startsWith('"' + boundary, pos + 2)) {
            fail('Invalid boundary (quotes).');
          } else {
            let p = pos + 2;
            while (p < contentEnd && isCSpace(s.charCodeAt(p))) p++;
            if (p !== pos + 2 && s.startsWith(boundary, p)) fail('Invalid boundary (whitespace).');
          }
          flags.unmatchedBoundary = 1;
        }
      } else if (occ >= 0) {
        if (occ < pos) occ = s.indexOf(dash, pos);
        if (occ >= 0 && occ < lineEnd) flags.unmatchedBoundary = 1;
      }

      if (!isBoundary) {
        if (part === undefined) {
          flags.dataBefore = 1;
        } else if (!part.inData) {
          lineFlag();
          if (contentEnd === pos) endHeaders(part, lineEnd);
          else headerLine(part, t.cut(pos, contentEnd));
        }
      }
      pos = lineEnd;
    }

    if (!complete && !stopped) {
      if (truncated) {
        // Cut before the closing boundary: a part whose headers arrived keeps
        // the data that arrived; one cut inside its headers is dropped.
        if (part !== undefined && (part as MpPart).inData) finishPart(n, false);
        else part = undefined;
      } else if (boundaries > 0) {
        fail('Final boundary missing.');
        finishPart(n, false);
      } else if (n > 0) {
        fail('No boundaries found in payload.');
      }
    }
  }

  if (sink.limitError !== undefined) {
    fail(sink.limitError);
  }
  b.scalars.set('FILES_COMBINED_SIZE', String(filesSize));
  const strict =
    error !== undefined || flags.boundaryQuoted || flags.boundaryWhitespace || flags.dataBefore ||
    flags.dataAfter || flags.headerFolding || flags.lfLine || flags.missingSemicolon ||
    flags.invalidQuoting || flags.invalidPart || flags.invalidHeaderFolding || flags.fileLimitExceeded;
  const set = (k: string, v: number | boolean): void => {
    b.scalars.set(k, v ? '1' : '0');
  };
  set('MULTIPART_STRICT_ERROR', strict);
  set('MULTIPART_UNMATCHED_BOUNDARY', flags.unmatchedBoundary);
  set('MULTIPART_BOUNDARY_QUOTED', flags.boundaryQuoted);
  set('MULTIPART_BOUNDARY_WHITESPACE', flags.boundaryWhitespace);
  set('MULTIPART_DATA_BEFORE', flags.dataBefore);
  set('MULTIPART_DATA_AFTER', flags.dataAfter);
  set('MULTIPART_HEADER_FOLDING', flags.headerFolding);
  set('MULTIPART_LF_LINE', flags.lfLine);
  set('MULTIPART_CRLF_LF_LINES', flags.crlfLine && flags.lfLine);
  set('MULTIPART_MISSING_SEMICOLON', flags.missingSemicolon);
  set('MULTIPART_SEMICOLON_MISSING', flags.missingSemicolon);
  set('MULTIPART_INVALID_QUOTING', flags.invalidQuoting);
  set('MULTIPART_INVALID_PART', flags.invalidPart);
  set('MULTIPART_INVALID_HEADER_FOLDING', flags.invalidHeaderFolding);
  set('MULTIPART_FILE_LIMIT_EXCEEDED', flags.fileLimitExceeded);
  return error;
}
