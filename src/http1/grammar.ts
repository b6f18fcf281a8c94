// RFC 9112 / RFC 9110 grammar pieces shared by meshgate's HTTP/1.1 server and
// client: tokens, methods, field values, request targets, Host. Everything
// here is at least as strict as llhttp (Node's parser) in its strict mode;
// where it is stricter the case is listed in DELIBERATE_DIFFERENCES (frame.ts).
import { METHODS as NODE_METHODS } from 'node:http';

/** Why a message was refused; `status` is the answer a server gives (4xx/5xx). */
export class WireError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A response head field a server refuses to send (HTTP/1.1 and HTTP/2 alike): thrown before anything is written. */
export function invalidHeader(name: string, what: string): Error {
  const e = new TypeError(`invalid response header ${JSON.stringify(name)}: ${what}`) as TypeError & { code: string };
  e.code = 'ERR_INVALID_HTTP_TOKEN';
  return e;
}

/** An HTTP token (RFC 9110 5.6.2): what a method or a field name must be. */
export const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** tchar as a byte table, for the byte-level parsers. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let i = 48; i <= 57; i++) TCHAR[i] = 1;
for (let i = 65; i <= 90; i++) TCHAR[i] = 1;
for (let i = 97; i <= 122; i++) TCHAR[i] = 1;

/**
 * Methods llhttp accepts on HTTP/1.x (node:http's list is llhttp's own). An
 * unknown method is refused, as llhttp refuses it: a method one parser knows
 * and another does not is a framing difference.
 */
export const METHODS: ReadonlySet<string> = new Set(NODE_METHODS);

/**
 * A field value (after OWS is trimmed): HTAB, SP, visible ASCII and obs-text
 * (RFC 9110 5.5). Refused: NUL, CR, LF, DEL and the other control characters.
 */
export const BAD_VALUE_RE = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * A request target in origin form: `/` then visible ASCII other than `#`.
 * Refused: bytes above 0x7E (raw UTF-8 must be percent-encoded), `#` (a
 * fragment is never sent), spaces and control characters.
 */
export const ORIGIN_FORM_RE = /^\/[\x21\x22\x24-\x7e]*$/;

/**
 * Host = uri-host [ ":" port ] (RFC 9110 7.2): a reg-name or IPv4 address
 * (unreserved, pct-encoded, sub-delims), or an IP literal in brackets. No
 * userinfo (`@`), no path, no spaces. Empty is allowed (RFC 9112 3.2 for
 * targets without an authority).
 */
const HOST_RE = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::\d{0,5})?$/;

export function validHost(value: string): boolean {
  return HOST_RE.test(value);
}

/** Trim OWS (SP and HTAB) from both ends of a slice of `s`. */
export function trimOws(s: string, start: number, end: number): string {
  while (start < end && (s.charCodeAt(start) === 32 || s.charCodeAt(start) === 9)) start++;
  while (end > start && (s.charCodeAt(end - 1) === 32 || s.charCodeAt(end - 1) === 9)) end--;
  return s.slice(start, end);
}

/** A content-length value: 1 to 15 digits (a body of up to 999 TB). */
export const DIGITS_RE = /^\d{1,15}$/;
