// Framing a whole byte stream into messages with the wire codec, as the
// server (requests) and the client (responses) frame it. Used by the
// differential tests against llhttp; the server and client run the same
// pieces (HeadScanner, parse*Head, ChunkedDecoder) under their connection
// lifecycles.
import { ChunkedDecoder } from './chunked.js';
import type { FramedMessage, FrameResult } from './frame-types.js';
import { HeadScanner, keepsAlive, parseRequestHead, parseResponseHead } from './head.js';
import { WireError } from './grammar.js';

export type { FramedMessage, FrameResult } from './frame-types.js';

/** Most header fields in one head. */
export const MAX_FIELDS = 1000;

/**
 * Where meshgate refuses what llhttp accepts, by class, with one example and
 * the reason. The differential tests allow exactly these classes.
 */
export const DELIBERATE_DIFFERENCES: ReadonlyArray<{ class: string; example: string; why: string }> = [
  { class: 'obs-text in request target', example: 'GET /caf\\xe9 HTTP/1.1', why: 'RFC 9112 3.2: raw bytes above 0x7E are not allowed in a target; servers behind decode them differently' },
  { class: 'fragment in request target', example: 'GET /a#b HTTP/1.1', why: 'a client never sends a fragment; servers disagree on whether it is part of the path' },
  { class: 'absolute-form request target', example: 'GET http://evil.example/a HTTP/1.1', why: 'the authority would replace Host (RFC 9112 3.2.2); the gateway routes by Host and refuses rather than guess' },
  { class: 'asterisk-form other than OPTIONS', example: 'GET * HTTP/1.1', why: 'RFC 9112 3.2.4: only OPTIONS has an asterisk form' },
  { class: 'target not in origin form', example: 'GET a HTTP/1.1', why: 'a target must start with /' },
  { class: 'HTTP version other than 1.0 and 1.1', example: 'GET / HTTP/2.0 (505); GET / (HTTP/0.9)', why: 'an HTTP/1.x server speaks HTTP/1.0 and 1.1 only' },
  { class: 'extra spaces in the request line', example: 'GET  / HTTP/1.1', why: 'RFC 9112 3: exactly one SP between the parts' },
  { class: 'Host missing, repeated or malformed', example: 'Host: user@evil.example', why: 'RFC 9112 3.2: exactly one Host, uri-host [":" port], no userinfo' },
  { class: 'transfer-encoding in HTTP/1.0', example: 'POST / HTTP/1.0 + Transfer-Encoding: chunked', why: 'RFC 9112 6.1: an HTTP/1.0 recipient cannot be trusted with chunked framing' },
  { class: 'transfer coding other than chunked', example: 'Transfer-Encoding: gzip, chunked (501); in a response: until close', why: 'the gateway decodes only chunked; a response framed by close after a coding is refused as ambiguous' },
  { class: 'HTAB after a framing field value', example: 'Connection: upgrade\\t; Transfer-Encoding: chunked\\t in a response', why: 'llhttp then reads the value as another token (no upgrade; not chunked); refusing keeps both readings out' },
  { class: 'CONNECT method', example: 'CONNECT a:443 HTTP/1.1', why: 'not a forward proxy (405)' },
  { class: 'PRI method (HTTP/2 preface)', example: 'PRI * HTTP/2.0 on an HTTP/1.1 connection', why: 'the HTTP/2 preface is sniffed before HTTP/1.1 parsing; as a request it is malformed' },
  { class: 'Expect other than 100-continue', example: 'Expect: 101-switch', why: 'RFC 9110 10.1.1: 417' },
  { class: 'upgrade request with a body', example: 'Upgrade: websocket + Content-Length: 2', why: 'after an upgrade the bytes belong to the new protocol; a body before it is ambiguous' },
  { class: 'bare LF before the request line', example: '\\nGET / HTTP/1.1', why: 'RFC 9112 2.2: only CRLF may precede a request line' },
  { class: 'bare CR before the request line', example: '\\rGET / HTTP/1.1', why: 'RFC 9112 2.2: only CRLF may precede a request line' },
  { class: 'bytes after a response', example: 'HTTP/1.1 204\\r\\n\\r\\n\\r\\n, or a second response', why: 'the client reads one final response per request; anything more on the connection closes it' },
  { class: 'empty line before a status line', example: '\\r\\nHTTP/1.1 200 OK', why: 'a response starts at its status line' },
  { class: 'bare CR or LF before a status line', example: '\\nHTTP/1.1 200 OK', why: 'a response starts at its status line' },
  { class: 'malformed status code', example: 'HTTP/1.1 20x', why: 'RFC 9112 4: three digits, then SP or the end of the line' },
  { class: 'control character in reason phrase', example: 'HTTP/1.1 404 \\x01', why: 'RFC 9112 4: HTAB, SP, VCHAR and obs-text only' },
  { class: 'status code below 100', example: 'HTTP/1.1 099', why: 'RFC 9110 15: status codes are 100-599 (up to 999 accepted)' },
  { class: 'bare CR in a status line', example: 'HTTP/1.1 200 OK\\r\\r\\r\\n', why: 'RFC 9112 2.2: a CR only before LF' },
  { class: 'chunk extension without a name', example: '0;=b, 1;;a', why: 'RFC 9112 7.1.1: an extension is a token name' },
  { class: 'backslash in a quoted chunk extension', example: '2;a="b\\\\c"', why: 'quoted-pair escapes are not accepted in chunk extensions' },
  { class: 'chunk size over 12 hex digits', example: '1000000000000 (2^48)', why: 'a chunk over 256 TiB is refused' },
  { class: 'content-length over 15 digits', example: 'Content-Length: 1000000000000000', why: 'a body over 999 TB is refused' },
  { class: 'head size counted differently', example: 'a 16,360-byte field value with a 16 KiB limit', why: 'maxHeaderBytes bounds every byte of the head, llhttp only the target, names and values' },
  { class: 'content-length or transfer-encoding in trailers', example: '0\\r\\nTransfer-Encoding:\\r\\n\\r\\n', why: 'framing fields never come in trailers (RFC 9110 6.5.1); llhttp refuses them with a value' },
  { class: 'repeated or empty transfer-encoding', example: 'Transfer-Encoding:\\r\\nTransfer-Encoding:', why: 'one transfer-encoding field, naming chunked, is the only framing both sides read alike' },
  { class: 'DEL in a field value', example: 'X: a\\x7fb', why: 'RFC 9110 5.5: DEL is not field-vchar; llhttp refuses it in some positions' },
  { class: 'head field count over 1000', example: '1001 header lines', why: '431: too many fields' },
];

interface Options {
  /** For responses: the request's method (HEAD answers have no body). */
  requestMethod?: string;
  /** Offsets at which the input arrives in separate reads. */
  splits?: number[];
  maxHeaderBytes?: number;
}

/** Frames `input` as the server (requests) or the client (responses) would. */
export function frameMessages(kind: 'request' | 'response', input: Buffer, opts: Options = {}): FrameResult {
  const messages: FramedMessage[] = [];
  const request = kind === 'request';
  const max = opts.maxHeaderBytes ?? (request ? 16_384 : 65_536);
  const scanner = new HeadScanner(request, max);
  let head: Buffer | undefined;
  let msg: FramedMessage | undefined;
  let left = 0;
  let untilClose = false;
  /** The last message ended the connection's use: later bytes are never framed. */
  let last = false;
  let keepAlive = true;
  let chunks: ChunkedDecoder | undefined;
  let body: Buffer[] = [];
  const reads: Buffer[] = [];
  let at = 0;
  for (const s of [...(opts.splits ?? []).filter((x) => x > 0 && x < input.length).sort((a, b) => a - b), input.length]) {
    if (s > at) reads.push(input.subarray(at, s));
    at = Math.max(at, s);
  }
  const finishMessage = (): void => {
    msg!.body = Buffer.concat(body);
    if (chunks) msg!.trailers = chunks.trailers;
    // The client reads one final response per request; a server answers a request that closes the connection and reads no more.
    if (!keepAlive || (!request && (msg!.status ?? 0) >= 200)) last = true;
    messages.push(msg!);
    msg = undefined;
    body = [];
    chunks = undefined;
    untilClose = false;
  };
  try {
    for (let d of reads) {
      while (d.length > 0) {
        if (last) {
          for (const c of d) if (c !== 13 && c !== 10) throw new WireError(request ? 400 : 502, request ? 'bytes after a request that closes the connection' : 'bytes after the response');
          if (!request) throw new WireError(502, 'bytes after the response');
          d = d.subarray(d.length);
          continue;
        }
        if (msg === undefined) {
          head = head === undefined ? d : Buffer.concat([head, d]);
          const end = scanner.scan(head);
          if (end < 0) {
            d = d.subarray(d.length);
            continue;
          }
          d = head.subarray(end);
          head = undefined;
          if (request) {
            const h = parseRequestHead(scanner, MAX_FIELDS);
            keepAlive = keepsAlive(h.minor, h.connection);
            msg = { method: h.method, url: h.url, versionMinor: h.minor, headers: h.raw, body: Buffer.alloc(0), trailers: [], upgrade: h.upgrade };
            scanner.reset();
            if (h.upgrade) {
              if (h.chunked || h.contentLength > 0) throw new WireError(400, 'upgrade request with a body');
              finishMessage();
              return { ok: true, messages, partial: false };
            }
            if (h.chunked) chunks = new ChunkedDecoder(max, 400);
            else if (h.contentLength > 0) left = h.contentLength;
            else finishMessage();
          } else {
            const h = parseResponseHead(scanner, MAX_FIELDS);
            scanner.reset();
            keepAlive = keepsAlive(h.minor, h.connection);
            msg = { status: h.status, versionMinor: h.minor, headers: h.raw, body: Buffer.alloc(0), trailers: [], upgrade: h.status === 101 };
            if (h.status === 101) {
              finishMessage();
              return { ok: true, messages, partial: false };
            }
            const noBody = h.status < 200 || h.status === 204 || h.status === 304 || opts.requestMethod === 'HEAD';
            if (noBody) finishMessage();
            else if (h.chunked) chunks = new ChunkedDecoder(max, 502);
            else if (h.contentLength >= 0) {
              if (h.contentLength === 0) finishMessage();
              else left = h.contentLength;
            } else untilClose = true;
          }
          continue;
        }
        if (chunks) {
          const end = chunks.feed(d, (b) => body.push(Buffer.from(b)));
          if (end < 0) break;
          d = d.subarray(end);
          finishMessage();
        } else if (untilClose) {
          body.push(Buffer.from(d));
          break;
        } else {
          const take = Math.min(left, d.length);
          body.push(Buffer.from(d.subarray(0, take)));
          left -= take;
          d = d.subarray(take);
          if (left === 0) finishMessage();
        }
      }
    }
  } catch (e) {
    if (e instanceof WireError) return { ok: false, messages, error: `${e.status} ${e.message}` };
    throw e;
  }
  if (msg !== undefined && untilClose) {
    finishMessage();
    return { ok: true, messages, partial: false };
  }
  const partial = msg !== undefined || (head !== undefined && !(request && scanner.empty));
  return { ok: true, messages, partial };
}
