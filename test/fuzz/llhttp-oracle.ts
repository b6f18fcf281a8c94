// The oracle of the HTTP/1.1 differential fuzz: llhttp, the parser inside
// node:http, driven directly through Node's internal HTTPParser binding
// (`_http_common`), in strict mode (no lenient flags). It frames a byte
// stream into the same FrameResult shape meshgate's own codec produces
// (src/http1/frame-types.ts), so the two can be compared message by message.
//
// What the binding does, and what this file relies on (Node 20):
//   - kOnHeadersComplete(versionMajor, versionMinor, headers, method, url,
//     statusCode, statusMessage, upgrade, shouldKeepAlive) fires once a head is
//     complete. `method` is llhttp's method number. `headers` and `url` are
//     undefined when the binding flushed them earlier through kOnHeaders (more
//     than 32 fields in one head; once that happened on a parser, every later
//     head on it arrives through kOnHeaders too). Header values come with
//     trailing SP/HTAB already trimmed; strings are latin1 (one byte, one char).
//     Its return value steers llhttp: 0 = normal, 1 = skip the body (a HEAD
//     answer, a 1xx), 2 = skip the body and treat as upgrade.
//   - kOnHeaders(headers, url) also carries a chunked message's trailer fields
//     (flushed right before kOnMessageComplete).
//   - kOnBody(buffer) and kOnMessageComplete() as the names say.
//   - execute(buf) returns the number of bytes parsed, or an Error (code
//     HPE_*, reason) for a refused input. After an upgrade (Upgrade +
//     Connection: upgrade on a request, CONNECT, a 101 answer) llhttp stops
//     after that message and execute returns fewer bytes than given. Careful:
//     once llhttp's upgrade flag is set, the binding reports a later parse
//     error as "bytes parsed" with no Error, so completion is tracked here.
//   - finish() returns an Error when the input ended inside a message
//     (HPE_INVALID_EOF_STATE); for a response read until close it completes the
//     message instead.
//   - The header size limit counts the bytes of the target, status reason,
//     field names and values (not CRLFs, colons, method or version); a head
//     is refused when the count reaches the limit.
//
// Responses: the parser must be told how the request was answered; this does
// what node:http's client does: a CONNECT request's answer and a 101 with
// Upgrade are upgrades (2), any other 1xx or the answer to HEAD has no body
// (1). Requests: node:http's server returns 2 for an upgrade it has a listener
// for; here llhttp's own default (0) is kept, so a request that upgrades with
// a body (rare) has its body framed before framing stops, as llhttp does.
import { createRequire } from 'node:module';
import type { FrameResult, FramedMessage } from '../../src/http1/frame-types.js';

interface ParserLike {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(buf: Buffer): number | Error;
  finish(): Error | undefined;
  close(): void;
  [index: number]: unknown;
}
interface ParserCtor {
  new (): ParserLike;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}

const require = createRequire(import.meta.url);
const common = require('_http_common') as { HTTPParser: ParserCtor; methods: string[] };
const { HTTPParser, methods } = common;

/** llhttp's method numbers run 0..33 in the order of Node's `methods`; QUERY is 46 (Node's list has it at index 34). */
function methodName(n: number | undefined, input: Buffer, start: number): string {
  if (n === undefined) return '';
  if (n >= 0 && n <= 33 && methods[n] !== undefined) return methods[n]!;
  if (n === 46) return 'QUERY';
  // Unknown number: read it from the request line itself.
  let i = start;
  while (i < input.length && (input[i] === 13 || input[i] === 10)) i++;
  const sp = input.indexOf(32, i);
  return input.toString('latin1', i, sp < 0 ? input.length : sp);
}

/** A message as llhttp framed it: the contract's fields plus the major version, which the contract leaves out. */
export interface OracleMessage extends FramedMessage {
  versionMajor: number;
}

export const REQUEST_MAX_HEADER = 16 * 1024;
export const RESPONSE_MAX_HEADER = 64 * 1024;

export interface OracleOptions {
  requestMethod?: string;
  splits?: number[];
  /** The header size limit; 16 KiB for requests, 64 KiB for responses unless given. */
  maxHeaderSize?: number;
}

const EMPTY = Buffer.alloc(0);
const RESOURCE = {};

/** One parser per kind, re-initialised for each input (llhttp_init resets every state). */
let reqParser: ParserLike | undefined;
let resParser: ParserLike | undefined;

// Per-input state the callbacks write to; module-level so the callbacks are installed once.
let cur: {
  kind: 'request' | 'response';
  requestMethod: string;
  input: Buffer;
  messages: OracleMessage[];
  /** The message whose head is complete and whose end has not come yet. */
  open: OracleMessage | undefined;
  openBody: Buffer[];
  /** Fields and target flushed before the head completed. */
  pendingHeaders: string[];
  pendingUrl: string;
  /** The last completed message switched protocols: framing stops. */
  stopped: boolean;
  /** Where in the input the current execute() chunk starts (for reading a method name). */
  chunkStart: number;
} = {
  kind: 'request',
  requestMethod: 'GET',
  input: EMPTY,
  messages: [],
  open: undefined,
  openBody: [],
  pendingHeaders: [],
  pendingUrl: '',
  stopped: false,
  chunkStart: 0,
};

function onMessageBegin(): void {
  cur.pendingHeaders = [];
  cur.pendingUrl = '';
}

function onHeaders(headers: string[], url: string): void {
  if (cur.open !== undefined) {
    // After the head: trailer fields of a chunked body.
    for (let i = 0; i < headers.length; i++) cur.open.trailers.push(headers[i]!);
    return;
  }
  for (let i = 0; i < headers.length; i++) cur.pendingHeaders.push(headers[i]!);
  if (url) cur.pendingUrl += url;
}

function onHeadersComplete(
  versionMajor: number,
  versionMinor: number,
  headers: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number | undefined,
  _statusMessage: string | undefined,
  upgrade: boolean,
): number {
  const all = cur.pendingHeaders;
  if (headers !== undefined) for (let i = 0; i < headers.length; i++) all.push(headers[i]!);
  const m: OracleMessage = {
    versionMajor,
    versionMinor,
    headers: all,
    body: EMPTY,
    trailers: [],
    upgrade: false,
  };
  let ret = 0;
  if (cur.kind === 'request') {
    m.method = methodName(method, cur.input, cur.chunkStart);
    m.url = (url ?? '') === '' ? cur.pendingUrl : cur.pendingUrl + url;
    m.upgrade = upgrade;
  } else {
    const status = statusCode ?? 0;
    m.status = status;
    if (cur.requestMethod === 'CONNECT' || (upgrade && status === 101)) {
      // node:http's client: the answer to CONNECT, or a 101 that upgrades.
      ret = 2;
      m.upgrade = true;
    } else if (status >= 100 && status < 200) {
      ret = 1;
      // llhttp stops after any 101, Upgrade header or not.
      m.upgrade = status === 101;
    } else if (cur.requestMethod === 'HEAD') ret = 1;
  }
  cur.pendingHeaders = [];
  cur.pendingUrl = '';
  cur.open = m;
  cur.openBody = [];
  return ret;
}

function onBody(b: Buffer): void {
  // The binding hands a copy; keep it.
  cur.openBody.push(b);
}

function onMessageComplete(): void {
  const m = cur.open;
  if (m === undefined) return;
  const parts = cur.openBody;
  m.body = parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  cur.messages.push(m);
  cur.open = undefined;
  cur.openBody = [];
  if (m.upgrade) cur.stopped = true;
}

function parserFor(kind: 'request' | 'response'): ParserLike {
  let p = kind === 'request' ? reqParser : resParser;
  if (p === undefined) {
    p = new HTTPParser();
    p[HTTPParser.kOnMessageBegin] = onMessageBegin;
    p[HTTPParser.kOnHeaders] = onHeaders;
    p[HTTPParser.kOnHeadersComplete] = onHeadersComplete;
    p[HTTPParser.kOnBody] = onBody;
    p[HTTPParser.kOnMessageComplete] = onMessageComplete;
    if (kind === 'request') reqParser = p;
    else resParser = p;
  }
  return p;
}

function errorText(e: Error & { code?: string; reason?: string; bytesParsed?: number }, offset: number): string {
  return `${e.code ?? 'HPE'} ${e.reason ?? e.message} at ${offset + (e.bytesParsed ?? 0)}`;
}

/**
 * Frame `input` with llhttp in strict mode. `splits` are offsets where the
 * input is cut into separate execute() calls (incremental parsing).
 */
export function frameWithLlhttp(kind: 'request' | 'response', input: Buffer, opts: OracleOptions = {}): FrameResult {
  const p = parserFor(kind);
  const max = opts.maxHeaderSize ?? (kind === 'request' ? REQUEST_MAX_HEADER : RESPONSE_MAX_HEADER);
  p.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, RESOURCE, max, HTTPParser.kLenientNone);
  cur = {
    kind,
    requestMethod: (opts.requestMethod ?? 'GET').toUpperCase(),
    input,
    messages: [],
    open: undefined,
    openBody: [],
    pendingHeaders: [],
    pendingUrl: '',
    stopped: false,
    chunkStart: 0,
  };
  const state = cur;
  try {
    const cuts = opts.splits ?? [];
    let from = 0;
    for (let s = 0; s <= cuts.length; s++) {
      const to = s < cuts.length ? Math.min(Math.max(cuts[s]!, from), input.length) : input.length;
      if (to === from && s < cuts.length) continue;
      const chunk = input.subarray(from, to);
      state.chunkStart = from;
      const r = p.execute(chunk);
      if (r instanceof Error) {
        const out: FrameResult & { open?: OracleMessage } = { ok: false, messages: state.messages, error: errorText(r, from) };
        if (state.open !== undefined) out.open = state.open;
        return out;
      }
      if (state.stopped) return { ok: true, messages: state.messages, partial: false };
      if (r < chunk.length) {
        // Bytes left over without an Error and without a completed upgrade:
        // the binding hides errors once llhttp's upgrade flag is set.
        return { ok: false, messages: state.messages, error: `HPE (error after an upgrade head) at ${from + r}` };
      }
      from = to;
    }
    const f = p.finish();
    if (state.stopped) return { ok: true, messages: state.messages, partial: false };
    const partial = f instanceof Error || state.open !== undefined;
    const out: FrameResult & { open?: OracleMessage } = { ok: true, messages: state.messages, partial };
    // Not part of the contract: the head of a message cut short, for classifying differences.
    if (state.open !== undefined) out.open = state.open;
    return out;
  } finally {
    state.input = EMPTY;
  }
}

/** The head llhttp had read of the message the input ended in, or failed in (not part of the contract). */
export function openMessageOf(r: FrameResult): OracleMessage | undefined {
  return (r as { open?: OracleMessage }).open;
}

/** The major HTTP version llhttp read for a message it framed (1 unless the message says otherwise). */
export function versionMajorOf(m: FramedMessage): number {
  const v = (m as Partial<OracleMessage>).versionMajor;
  return v === undefined ? 1 : v;
}
