// Message heads, read in one pass as their bytes arrive.
//
// The scan refuses, as soon as the byte arrives: a LF not preceded by CR, a
// CR not followed by LF, and control characters other than HTAB. Each line
// is checked as soon as its CRLF arrives (the start line; each field line,
// with the framing fields' syntax, repeats and conflicts), and a line still
// arriving is refused as soon as no ending could make it valid (an unknown
// method, a field name with a space). So a head is refused at about the byte
// where llhttp refuses it, not when it ends.
import { BAD_VALUE_RE, DIGITS_RE, METHODS, ORIGIN_FORM_RE, TOKEN_RE, trimOws, validHost, WireError } from './grammar.js';
import { connectionHasToken } from './fields.js';

const enum Scan {
  /** Empty lines before a request line are skipped (RFC 9112 2.2). */
  Leading,
  StartLine,
  Fields,
}

/** Bytes of a line still arriving that are checked before its end (beyond: checked when it ends). */
const PARTIAL_CHECK_BYTES = 1024;
/** Refuses a line with a control character other than HTAB. */
function checkControls(line: string, status: number): void {
  // The field-value set (HTAB allowed; DEL refused) holds for every line of a head; a CR here is one not followed by LF.
  if (BAD_VALUE_RE.test(line)) throw new WireError(status, line.includes('\r') ? 'bare CR in head' : 'control character in head');
}

/** What a request target, an HTTP version and a status line may begin with. */
const PARTIAL_TARGET_RE = /^(?:\/[\x21\x22\x24-\x7e]*|\*)$/;
const PARTIAL_VERSION_RE = /^(?:H(?:T(?:T(?:P(?:\/(?:\d(?:\.\d?)?)?)?)?)?)?)?$/;
const PARTIAL_STATUS_RE = /^(?:H(?:T(?:T(?:P(?:\/(?:1(?:\.(?:[01](?: (?:[1-9](?:\d(?:\d(?: [\t\x20-\x7e\x80-\xff]*)?)?)?)?)?)?)?)?)?)?)?)?)?$/;

/** Every prefix of a method llhttp knows: a request line is refused at its first byte that cannot continue one. */
const METHOD_PREFIXES = new Set<string>();
for (const m of METHODS) for (let i = 1; i <= m.length; i++) METHOD_PREFIXES.add(m.slice(0, i));

/**
 * Reads a head in a growing buffer, validating each byte once as it arrives
 * and each line as soon as its CRLF arrives: the start line, then every field
 * line (name, value, and the framing fields' syntax, repeats and conflicts).
 * One per connection; `reset()` between heads.
 */
export class HeadScanner {
  private phase: Scan;
  /** Bytes of the buffer checked so far. */
  private checked = 0;
  /** Where the current line begins. */
  private lineStart = 0;
  /** Where the start line begins (after leading empty lines). */
  start = 0;
  /** The start line, once complete. */
  startLine = '';
  fields: Fields = { raw: [], lower: [] };
  /** The framing fields seen so far. */
  contentLength = -1;
  transferEncoding: string | undefined;
  connection: string | undefined;
  hosts = 0;
  host: string | undefined;
  expect: string | undefined;
  /** A non-empty Upgrade field. */
  upgradeField = false;
  /** The start line, parsed once complete. */
  parsedRequestLine: RequestLine | undefined;
  parsedStatusLine: RegExpExecArray | undefined;

  constructor(
    private readonly request: boolean,
    private readonly maxBytes: number,
  ) {
    this.phase = request ? Scan.Leading : Scan.StartLine;
  }

  /** Fresh state for the next head. */
  reset(): void {
    this.phase = this.request ? Scan.Leading : Scan.StartLine;
    this.checked = 0;
    this.lineStart = 0;
    this.start = 0;
    this.startLine = '';
    this.fields = { raw: [], lower: [] };
    this.contentLength = -1;
    this.transferEncoding = undefined;
    this.connection = undefined;
    this.hosts = 0;
    this.host = undefined;
    this.expect = undefined;
    this.upgradeField = false;
    this.parsedRequestLine = undefined;
    this.parsedStatusLine = undefined;
  }

  /** Only empty lines so far (nothing of a message has begun). */
  get empty(): boolean {
    return this.phase === Scan.Leading;
  }

  private get status(): number {
    return this.request ? 400 : 502;
  }

  /**
   * Scans `buf` (the head's bytes so far, from its first byte) from where the
   * last call stopped. Returns the offset just past the head's final CRLFCRLF,
   * or -1 when more bytes are needed. Throws WireError.
   */
  scan(buf: Buffer): number {
    const n = buf.length;
    let i = this.checked;
    if (this.phase === Scan.Leading) {
      for (;;) {
        if (i >= n) {
          this.checked = i;
          return -1;
        }
        const c = buf[i]!;
        if (c !== 13) {
          if (c === 10) throw new WireError(400, 'bare LF before the request line');
          this.phase = Scan.StartLine;
          break;
        }
        if (i + 1 >= n) {
          this.checked = i;
          return -1;
        }
        if (buf[i + 1] !== 10) throw new WireError(400, 'bare CR before the request line');
        i += 2;
        this.start = this.lineStart = i;
      }
    }
    // Line by line: the LF is found natively, the line checked as one string.
    for (let lf = buf.indexOf(10, i); lf >= 0; lf = buf.indexOf(10, i)) {
      const ls = this.lineStart;
      if (lf === ls || buf[lf - 1] !== 13) throw new WireError(this.status, 'bare LF in head');
      const end = lf - 1;
      if (lf + 1 - this.start > this.maxBytes) throw new WireError(431, 'head too large');
      if (this.phase === Scan.StartLine) {
        if (end === this.start) throw new WireError(this.status, this.request ? 'bare CR before the request line' : 'empty line or CR before the status line');
        const line = buf.toString('latin1', ls, end);
        checkControls(line, this.status);
        this.startLine = line;
        if (this.request) this.parsedRequestLine = requestLine(line);
        else this.parsedStatusLine = statusLine(line);
        this.phase = Scan.Fields;
      } else if (end === ls) {
        // CRLF CRLF: the head ends here.
        this.checked = 0;
        return lf + 1;
      } else {
        const line = buf.toString('latin1', ls, end);
        checkControls(line, this.status);
        this.fieldLine(line);
      }
      i = this.lineStart = lf + 1;
    }
    this.checked = n;
    if (n - this.start > this.maxBytes) throw new WireError(431, 'head too large');
    const ls = this.lineStart;
    // A line still arriving (up to a bound, so a client dripping a long line costs no more than linear work).
    if (n > ls && n - ls <= PARTIAL_CHECK_BYTES) {
      const crPending = buf[n - 1] === 13;
      const partEnd = crPending ? n - 1 : n;
      if (crPending && this.phase === Scan.StartLine && partEnd === this.start) {
        throw new WireError(this.status, this.request ? 'bare CR before the request line' : 'empty line or CR before the status line');
      }
      const line = buf.toString('latin1', ls, partEnd);
      checkControls(line, this.status);
      this.partialLine(line);
      // Only its LF missing: the line is complete as far as its validity goes.
      if (crPending) {
        if (this.phase === Scan.StartLine) {
          if (this.request) requestLine(line);
          else statusLine(line);
        } else if (line.length > 0 && line.indexOf(':') < 0) throw new WireError(this.status, 'malformed header line');
      }
    }
    return -1;
  }

  /** A line not complete yet: refused now if no ending can make it valid. */
  private partialLine(line: string): void {
    if (this.phase === Scan.Fields) {
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      if (colon === 0 || (name.length > 0 && !TOKEN_RE.test(name))) throw new WireError(this.status, name.charCodeAt(0) === 32 || name.charCodeAt(0) === 9 ? 'folded header line' : 'malformed header name');
      if (colon > 0) partialValue(name.toLowerCase(), line, colon, this.request);
      return;
    }
    if (this.request) {
      const sp = line.indexOf(' ');
      const method = sp < 0 ? line : line.slice(0, sp);
      if (!METHOD_PREFIXES.has(method) || (sp >= 0 && !METHODS.has(method))) throw new WireError(TOKEN_RE.test(method) ? 501 : 400, 'unknown method');
      if (sp < 0) return;
      if (line.includes('  ')) throw new WireError(400, 'malformed request line');
      const sp2 = line.indexOf(' ', sp + 1);
      const target = sp2 < 0 ? line.slice(sp + 1) : line.slice(sp + 1, sp2);
      if (target.length > 0 && !PARTIAL_TARGET_RE.test(target)) throw new WireError(400, 'malformed request target');
      if (sp2 >= 0 && !PARTIAL_VERSION_RE.test(line.slice(sp2 + 1))) throw new WireError(400, 'malformed HTTP version');
    } else if (!PARTIAL_STATUS_RE.test(line)) throw new WireError(502, 'malformed status line');
  }

  /** One complete field line: parsed, and the framing fields checked. */
  private fieldLine(l: string): void {
    const status = this.status;
    const name = fieldName(l, status);
    const colon = name.length;
    // Control characters were refused for the whole line (checkControls).
    const value = trimOws(l, colon + 1, l.length);
    const lower = name.toLowerCase();
    this.fields.raw.push(name, value);
    this.fields.lower.push(lower);
    switch (lower.length) {
      case 4:
        if (lower === 'host') {
          this.hosts++;
          this.host = value;
        }
        break;
      case 6:
        if (lower === 'expect') this.expect = this.expect === undefined ? value : `${this.expect}, ${value}`;
        break;
      case 7:
        if (lower === 'upgrade' && value !== '') this.upgradeField = true;
        break;
      case 10:
        if (lower === 'connection') {
          if (tabInValue(l, colon)) throw new WireError(status, 'HTAB in a Connection value');
          this.connection = this.connection === undefined ? value : `${this.connection}, ${value}`;
        }
        break;
      case 14:
        if (lower === 'content-length') {
          if (this.contentLength >= 0) throw new WireError(status, 'more than one content-length');
          if (!DIGITS_RE.test(value) || tabInValue(l, colon)) throw new WireError(status, 'malformed content-length');
          if (this.transferEncoding !== undefined) throw new WireError(status, 'both content-length and transfer-encoding');
          this.contentLength = Number(value);
        }
        break;
      case 17:
        if (lower === 'transfer-encoding') {
          if (this.transferEncoding !== undefined) throw new WireError(status, 'more than one transfer-encoding');
          if (this.contentLength >= 0) throw new WireError(status, 'both content-length and transfer-encoding');
          if (tabInValue(l, colon)) throw new WireError(status, 'HTAB in a Transfer-Encoding value');
          if (this.request && /(?:^|,)[ \t]*chunked[ \t]*,/i.test(value)) throw new WireError(400, 'transfer-encoding must end in chunked, once');
          this.transferEncoding = value;
        }
        break;
    }
  }
}

/** An HTAB after the first byte of a framing field's value: llhttp reads such a value as another token, or refuses it. */
function tabInValue(l: string, colon: number): boolean {
  let i = colon + 1;
  while (i < l.length && (l.charCodeAt(i) === 32 || l.charCodeAt(i) === 9)) i++;
  return l.indexOf('\t', i) >= 0;
}

/** A framing field's value still arriving: refused when no ending can make it valid. */
function partialValue(lower: string, l: string, colon: number, request: boolean): void {
  const status = request ? 400 : 502;
  if (lower === 'content-length') {
    if (!/^[ \t]*\d* *$/.test(l.slice(colon + 1)) || tabInValue(l, colon)) throw new WireError(status, 'malformed content-length');
  } else if (lower === 'transfer-encoding' || lower === 'connection') {
    if (tabInValue(l, colon)) throw new WireError(status, `HTAB in a ${lower} value`);
    if (request && lower === 'transfer-encoding' && /(?:^|,)[ \t]*chunked[ \t]*,/i.test(l.slice(colon + 1))) throw new WireError(400, 'transfer-encoding must end in chunked, once');
  }
}

/** `method SP request-target SP HTTP-version`. */
interface RequestLine {
  method: string;
  url: string;
  minor: number;
}

function requestLine(line: string): RequestLine {
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
  const method = sp1 < 0 ? line : line.slice(0, sp1);
  if (!METHODS.has(method)) throw new WireError(TOKEN_RE.test(method) ? 501 : 400, TOKEN_RE.test(method) ? `method ${method} is not supported` : 'malformed method');
  if (sp1 <= 0 || sp2 < 0 || line.indexOf(' ', sp2 + 1) !== -1) throw new WireError(400, 'malformed request line');
  const url = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  let minor: number;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else if (/^HTTP\/\d\.\d$/.test(version)) throw new WireError(505, `${version} is not supported`);
  else throw new WireError(400, 'malformed HTTP version');
  if (method === 'CONNECT') throw new WireError(405, 'CONNECT is not supported');
  if (method === 'PRI') throw new WireError(400, 'PRI is the HTTP/2 preface, not a request');
  if (!ORIGIN_FORM_RE.test(url)) {
    if (url === '*' && method === 'OPTIONS') return { method, url, minor };
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(url)) throw new WireError(400, 'absolute-form request targets are not served (send the path, and the host in Host)');
    throw new WireError(400, 'malformed request target');
  }
  return { method, url, minor };
}

/** `HTTP/1.x SP 3DIGIT [SP reason-phrase]`, status 100-999; the reason is HTAB, SP, VCHAR, obs-text. */
const STATUS_LINE_RE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/;

function statusLine(line: string): RegExpExecArray {
  const m = STATUS_LINE_RE.exec(line);
  if (m === null) throw new WireError(502, `malformed status line ${JSON.stringify(line.slice(0, 64))}`);
  return m;
}

/** A field line's name (its colon follows it): a token; a line starting with whitespace is obs-fold. */
function fieldName(l: string, status: number): string {
  const colon = l.indexOf(':');
  if (colon <= 0) throw new WireError(status, l.charCodeAt(0) === 32 || l.charCodeAt(0) === 9 ? 'folded header line' : 'malformed header line');
  const name = l.slice(0, colon);
  if (!TOKEN_RE.test(name)) throw new WireError(status, 'malformed header name');
  return name;
}

/** Field lines of a head or a trailer section, parsed. */
export interface Fields {
  /** [name, value, ...] as received, values without surrounding OWS. */
  raw: string[];
  /** The lower-case names, one per pair. */
  lower: string[];
}

/**
 * Parses `name: value` lines (CRLF already removed; the scan has refused bare
 * CR, LF and control characters other than HTAB). Refused: a name that is not
 * a token (which covers whitespace before the colon and obs-fold), a missing
 * colon.
 */
export function parseFieldLines(lines: readonly string[], from: number, status: number): Fields {
  const raw: string[] = [];
  const lower: string[] = [];
  for (let i = from; i < lines.length; i++) {
    const l = lines[i]!;
    const name = fieldName(l, status);
    const value = trimOws(l, name.length + 1, l.length);
    if (BAD_VALUE_RE.test(value)) throw new WireError(status, 'control character in header value');
    raw.push(name, value);
    lower.push(name.toLowerCase());
  }
  return { raw, lower };
}

export interface RequestHead extends Fields {
  method: string;
  url: string;
  minor: number;
  /** Body: -1 none, else its content-length (chunked: see `chunked`). */
  contentLength: number;
  chunked: boolean;
  connection: string | undefined;
  /** The client asks to switch protocols (a non-empty Upgrade, and Connection lists upgrade). */
  upgrade: boolean;
  expect: string | undefined;
}

/**
 * The request head a scanner has read whole (scan() returned its end): the
 * request's own rules on top of the field checks. Throws WireError with the
 * status to answer.
 */
export function parseRequestHead(h: HeadScanner, maxFields: number): RequestHead {
  const { method, url, minor } = h.parsedRequestLine ?? requestLine(h.startLine);
  const f = h.fields;
  const lower = f.lower;
  if (lower.length > maxFields) throw new WireError(431, 'too many header fields');
  const { hosts, host, expect, upgradeField } = h;
  if (hosts > 1) throw new WireError(400, 'more than one Host header');
  if (minor === 1 && hosts === 0) throw new WireError(400, 'missing Host header');
  if (host !== undefined && !validHost(host)) throw new WireError(400, 'malformed Host header');
  let chunked = false;
  const te = h.transferEncoding;
  if (te !== undefined) {
    if (minor === 0) throw new WireError(400, 'transfer-encoding in an HTTP/1.0 request');
    const codings = te.split(',').map((c) => c.trim().toLowerCase());
    if (codings[codings.length - 1] !== 'chunked' || codings.indexOf('chunked') !== codings.length - 1) {
      throw new WireError(400, 'transfer-encoding must end in chunked, once');
    }
    if (codings.length > 1) throw new WireError(501, `transfer coding ${codings[0]} is not supported`);
    chunked = true;
  }
  if (expect !== undefined && expect.toLowerCase() !== '100-continue') throw new WireError(417, 'only Expect: 100-continue is supported');
  const upgrade = upgradeField && connectionHasToken(h.connection, 'upgrade');
  return { method, url, minor, raw: f.raw, lower, contentLength: h.contentLength, chunked, connection: h.connection, upgrade, expect };
}

export interface ResponseHead extends Fields {
  status: number;
  minor: number;
  contentLength: number;
  chunked: boolean;
  connection: string | undefined;
}

/** The response head a scanner has read whole. Throws WireError (status 502). */
export function parseResponseHead(h: HeadScanner, maxFields: number): ResponseHead {
  const m = h.parsedStatusLine ?? statusLine(h.startLine);
  const f = h.fields;
  if (f.lower.length > maxFields) throw new WireError(502, 'too many header fields');
  const minor = m[1] === '1' ? 1 : 0;
  let chunked = false;
  const te = h.transferEncoding;
  if (te !== undefined) {
    if (minor === 0) throw new WireError(502, 'transfer-encoding in an HTTP/1.0 response');
    if (te.trim().toLowerCase() !== 'chunked') throw new WireError(502, `transfer-encoding ${JSON.stringify(te)} is not supported`);
    chunked = true;
  }
  return { status: Number(m[2]), minor, raw: f.raw, lower: f.lower, contentLength: h.contentLength, chunked, connection: h.connection };
}

/** Whether the connection stays open after this message (HTTP/1.1 unless `close`; HTTP/1.0 only with `keep-alive`). */
export function keepsAlive(minor: number, connection: string | undefined): boolean {
  return minor === 1 ? !connectionHasToken(connection, 'close') : connectionHasToken(connection, 'keep-alive');
}
