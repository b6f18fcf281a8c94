// Comparing meshgate's framing of an input with llhttp's, message by message,
// and naming the class of a difference so a report lists classes, not inputs.
//
// The rules (the issue's):
//   - every input llhttp refuses, meshgate refuses too: otherwise
//     'meshgate-laxer', a bug;
//   - every message both frame is framed identically (method, target,
//     version, fields, body bytes, trailers, upgrade) and, when both accept
//     the whole input, so is the count of messages and whether the input
//     ended inside one: otherwise 'framing-differs', a bug;
//   - meshgate refusing what llhttp frames is 'meshgate-stricter', allowed
//     only for a deliberate difference (a class in DELIBERATE_DIFFERENCES).
// When meshgate refuses at message k, the k messages before must agree.
import type { FrameResult, FramedMessage } from '../../src/http1/frame-types.js';
import { frameWithLlhttp, openMessageOf, versionMajorOf } from './llhttp-oracle.js';

export type Verdict = 'agree' | 'meshgate-stricter' | 'meshgate-laxer' | 'framing-differs';

export interface Comparison {
  verdict: Verdict;
  detail: string;
}

function show(s: string, max = 60): string {
  return escapeBytes(Buffer.from(s.length > max ? s.slice(0, max) : s, 'latin1')) + (s.length > max ? `...(${s.length})` : '');
}

function showBuf(b: Buffer, max = 60): string {
  return escapeBytes(b.subarray(0, max)) + (b.length > max ? `...(${b.length})` : '');
}

/** Printable ASCII as is; everything else as \r, \n, \t or \xNN; backslash doubled. */
export function escapeBytes(b: Buffer): string {
  let s = '';
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 13) s += '\\r';
    else if (c === 10) s += '\\n';
    else if (c === 9) s += '\\t';
    else if (c === 92) s += '\\\\';
    else if (c >= 32 && c < 127) s += String.fromCharCode(c);
    else s += `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return s;
}

function sameList(a: readonly string[], b: readonly string[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}

/** The first field in which two framed messages differ, described; undefined when they agree. */
export function diffMessage(mg: FramedMessage, ll: FramedMessage): string | undefined {
  if (mg.method !== ll.method) return `method: meshgate ${show(String(mg.method))}, llhttp ${show(String(ll.method))}`;
  if (mg.url !== ll.url) return `target: meshgate ${show(String(mg.url))}, llhttp ${show(String(ll.url))}`;
  if (mg.status !== ll.status) return `status: meshgate ${mg.status}, llhttp ${ll.status}`;
  const major = versionMajorOf(ll);
  if (major !== 1) return `version: llhttp read HTTP/${major}.${ll.versionMinor}, meshgate accepted it as HTTP/1.${mg.versionMinor}`;
  if (mg.versionMinor !== ll.versionMinor) return `version: meshgate 1.${mg.versionMinor}, llhttp 1.${ll.versionMinor}`;
  const h = sameList(mg.headers, ll.headers);
  if (h >= 0) {
    const i = h - (h % 2);
    return `${mg.headers.length === ll.headers.length ? '' : `field count meshgate ${mg.headers.length / 2}, llhttp ${ll.headers.length / 2}; `}field ${i / 2}: meshgate ${show(`${mg.headers[i]}: ${mg.headers[i + 1]}`)}, llhttp ${show(`${ll.headers[i]}: ${ll.headers[i + 1]}`)}`;
  }
  if (!mg.body.equals(ll.body)) return `body: meshgate ${mg.body.length} bytes "${showBuf(mg.body)}", llhttp ${ll.body.length} bytes "${showBuf(ll.body)}"`;
  const t = sameList(mg.trailers, ll.trailers);
  if (t >= 0) {
    const i = t - (t % 2);
    return `trailer ${i / 2}: meshgate ${show(`${mg.trailers[i]}: ${mg.trailers[i + 1]}`)}, llhttp ${show(`${ll.trailers[i]}: ${ll.trailers[i + 1]}`)}`;
  }
  if (mg.upgrade !== ll.upgrade) return `upgrade: meshgate ${mg.upgrade}, llhttp ${ll.upgrade}`;
  return undefined;
}

/** Compare meshgate's result for an input with llhttp's. */
export function compare(meshgate: FrameResult, llhttp: FrameResult): Comparison {
  const mg = meshgate;
  const ll = llhttp;
  const common = Math.min(mg.messages.length, ll.messages.length);
  for (let i = 0; i < common; i++) {
    const d = diffMessage(mg.messages[i]!, ll.messages[i]!);
    if (d !== undefined) return { verdict: 'framing-differs', detail: `message ${i}: ${d}` };
  }
  const nm = mg.messages.length;
  const nl = ll.messages.length;
  if (ll.ok && mg.ok) {
    if (nm !== nl) return { verdict: 'framing-differs', detail: `message count: meshgate ${nm}${mg.partial ? ' (+ partial)' : ''}, llhttp ${nl}${ll.partial ? ' (+ partial)' : ''}` };
    if (mg.partial !== ll.partial) return { verdict: 'framing-differs', detail: `input ends inside a message: meshgate ${mg.partial}, llhttp ${ll.partial}` };
    return { verdict: 'agree', detail: '' };
  }
  if (ll.ok && !mg.ok) {
    if (nm > nl) return { verdict: 'framing-differs', detail: `meshgate framed ${nm} messages before refusing (${mg.error}); llhttp framed ${nl}${ll.partial ? ' and was inside the next' : ''}` };
    return { verdict: 'meshgate-stricter', detail: `message ${nm}: meshgate refused (${mg.error}), llhttp accepted it` };
  }
  if (!ll.ok && mg.ok) {
    return { verdict: 'meshgate-laxer', detail: `llhttp refused after ${nl} message(s) (${ll.error}); meshgate accepted ${nm}${mg.partial ? ' and was inside another' : ''}` };
  }
  // Both refused.
  if (!ll.ok && !mg.ok) {
    if (nm > nl) return { verdict: 'meshgate-laxer', detail: `meshgate framed message ${nl}, which llhttp refused (${ll.error}); meshgate refused later (${mg.error})` };
    if (nm < nl) return { verdict: 'meshgate-stricter', detail: `message ${nm}: meshgate refused (${mg.error}); llhttp framed it and refused message ${nl} (${ll.error})` };
  }
  return { verdict: 'agree', detail: '' };
}

// ---------- classes ----------

export interface ClassifyInput {
  kind: 'request' | 'response';
  input: Buffer;
  requestMethod?: string;
  meshgate: FrameResult;
  llhttp: FrameResult;
}

/**
 * Where message `k` starts in `input` (as llhttp frames it): the shortest
 * prefix llhttp frames k messages of. Only for k messages llhttp framed.
 */
export function messageStart(kind: 'request' | 'response', input: Buffer, k: number, requestMethod?: string): number {
  if (k === 0) return 0;
  const count = (n: number): number => {
    const r = frameWithLlhttp(kind, input.subarray(0, n), requestMethod === undefined ? {} : { requestMethod });
    return r.messages.length;
  };
  let lo = 0;
  let hi = input.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (count(mid) >= k) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** uri-host [ ":" port ]: reg-name (unreserved, pct-encoded, sub-delims), IPv4, or an IP literal in brackets; a port of at most 5 digits. No userinfo. */
const HOST_OK = /^(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{0,5})?$/;

function fieldValues(m: FramedMessage, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < m.headers.length; i += 2) if (m.headers[i]!.toLowerCase() === name) out.push(m.headers[i + 1]!);
  return out;
}

function hasCtl(s: string): boolean {
  return /[\x00-\x08\x0a-\x1f\x7f]/.test(s);
}

/** The start line of the text at `from` (skipping empty lines), and what preceded it. */
function startLine(text: string, from: number): { lead: string; line: string; rest: string } {
  let i = from;
  while (i < text.length && (text[i] === '\r' || text[i] === '\n')) i++;
  const lead = text.slice(from, i);
  let e = i;
  while (e < text.length && text[e] !== '\r' && text[e] !== '\n') e++;
  return { lead, line: text.slice(i, e), rest: text.slice(e) };
}

/** Every deliberate-difference class whose feature a request line has. */
function requestLineFeatures(line: string, out: string[]): void {
  if (/^ |  | $/.test(line)) out.push('extra spaces in the request line');
  const parts = line.split(' ').filter((p) => p !== '');
  if (parts.length < 3 || (parts[2] !== 'HTTP/1.1' && parts[2] !== 'HTTP/1.0')) out.push('HTTP version other than 1.0 and 1.1');
  const method = parts[0] ?? '';
  const target = parts[1] ?? '';
  if (/[\x80-\xff]/.test(target)) out.push('obs-text in request target');
  if (target.includes('#')) out.push('fragment in request target');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) out.push('absolute-form request target');
  else if (target === '*' && method !== 'OPTIONS') out.push('asterisk-form other than OPTIONS');
  else if (!target.startsWith('/') && target !== '*') out.push('target not in origin form');
  if (method === 'CONNECT') out.push('CONNECT method');
  // llhttp waits for the rest of an HTTP/2 preface; node:http's method list has no PRI.
  if (method === 'PRI') out.push('PRI method (HTTP/2 preface)');
}

function connectionUpgrade(m: FramedMessage): boolean {
  return fieldValues(m, 'upgrade').length > 0 && fieldValues(m, 'connection').some((v) => v.split(',').some((t) => t.trim().toLowerCase() === 'upgrade'));
}

function headFeatures(m: FramedMessage, request: boolean, out: string[]): void {
  if (request) {
    const hosts = fieldValues(m, 'host');
    if (hosts.length > 1 || (m.versionMinor === 1 && hosts.length === 0) || (hosts.length === 1 && !HOST_OK.test(hosts[0]!))) out.push('Host missing, repeated or malformed');
  }
  const te = fieldValues(m, 'transfer-encoding');
  if (te.length > 0) {
    if (m.versionMinor === 0) out.push('transfer-encoding in HTTP/1.0');
    const codings = te.join(',').split(',').map((c) => c.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== 'chunked') out.push('transfer coding other than chunked');
  }
  if (request && m.method === 'CONNECT') out.push('CONNECT method');
  const expect = fieldValues(m, 'expect');
  if (request && expect.length > 0 && (expect.length > 1 || expect[0]!.toLowerCase() !== '100-continue')) out.push('Expect other than 100-continue');
  const cl = fieldValues(m, 'content-length');
  if (cl.some((v) => v.length > 15)) out.push('content-length over 15 digits');
  if (m.headers.length / 2 > 1000) out.push('head field count over 1000');
  if (request && connectionUpgrade(m) && (te.length > 0 || cl.some((v) => Number(v) > 0))) out.push('upgrade request with a body');
}

function statusLineFeatures(line: string, out: string[]): void {
  const sp = line.indexOf(' ');
  const version = sp < 0 ? line : line.slice(0, sp);
  if (version !== 'HTTP/1.1' && version !== 'HTTP/1.0') out.push('HTTP version other than 1.0 and 1.1');
  const code = sp < 0 ? '' : line.slice(sp + 1, sp + 4);
  if (/^0\d\d$/.test(code)) out.push('status code below 100');
  const after = sp < 0 ? '' : line.slice(sp + 4);
  if (!/^\d{3}$/.test(code) || (after !== '' && after[0] !== ' ')) out.push('malformed status code');
  if (hasCtl(after)) out.push('control character in reason phrase');
}

/** Chunk size lines of the chunked body in `text` (bytes after a head), as far as they can be followed. */
function chunkLines(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (let guard = 0; guard < 10_000 && i < text.length; guard++) {
    const e = text.indexOf('\r\n', i);
    if (e < 0) {
      out.push(text.slice(i));
      break;
    }
    const line = text.slice(i, e);
    out.push(line);
    const size = parseInt(/^[0-9a-fA-F]+/.exec(line)?.[0] ?? 'x', 16);
    if (!Number.isFinite(size) || size === 0) break;
    i = e + 2 + size + 2;
  }
  return out;
}

function chunkedFeatures(body: string, out: string[]): void {
  for (const line of chunkLines(body)) {
    const size = /^[0-9a-fA-F]*/.exec(line)![0];
    if (size.replace(/^0+/, '').length > 12) out.push('chunk size over 12 hex digits');
    const ext = line.slice(size.length);
    if (/"[^"]*\\/.test(ext)) out.push('backslash in a quoted chunk extension');
    if (/;[;=]/.test(ext.replace(/"[^"]*"/g, '""'))) out.push('chunk extension without a name');
  }
}

/**
 * Which class goes with which of meshgate's refusals: a class is picked only
 * when the input has its feature and meshgate's error is about that topic, so
 * a message with two oddities is filed under the one meshgate refused.
 */
const TOPIC: ReadonlyArray<[string, RegExp]> = [
  ['extra spaces in the request line', /request line/i],
  // Also: llhttp takes RTSP/1.0 (and ICE/1.0 answers) for version 1.0, and a request line without a version (HTTP/0.9) may end in a bare LF.
  ['HTTP version other than 1.0 and 1.1', /version|request line|status line|method .* not supported|50[15]|bare LF/i],
  ['obs-text in request target', /target|request line/i],
  ['fragment in request target', /target|request line/i],
  ['absolute-form request target', /absolute|target/i],
  ['asterisk-form other than OPTIONS', /target|asterisk/i],
  ['target not in origin form', /target/i],
  ['CONNECT method', /CONNECT|405/],
  ['Host missing, repeated or malformed', /host/i],
  ['transfer-encoding in HTTP/1.0', /transfer-encoding|transfer coding/i],
  ['transfer coding other than chunked', /transfer-encoding|transfer coding|501/i],
  ['Expect other than 100-continue', /expect|417/i],
  ['content-length over 15 digits', /content-length/i],
  ['head field count over 1000', /fields|431/i],
  ['upgrade request with a body', /upgrade/i],
  ['status code below 100', /status/i],
  ['malformed status code', /status/i],
  ['control character in reason phrase', /status|control/i],
  ['chunk size over 12 hex digits', /chunk size/i],
  ['backslash in a quoted chunk extension', /quoted/i],
  ['chunk extension without a name', /extension/i],
  ['bare LF before the request line', /bare LF|LF/i],
  ['bare CR before the request line', /bare CR|CR/i],
  ['empty line before a status line', /status line|bare|CR|LF/i],
  ['bare CR or LF before a status line', /status line|bare|CR|LF/i],
  ['bare CR in a status line', /bare CR|CR/],
  // llhttp does not see "chunked\t" as chunked: meshgate's chunk or trailer errors come from reading a body llhttp does not.
  ['HTAB after a framing field value', /transfer-encoding|content-length|connection|tab|whitespace|chunk|trailer|header name|header line/i],
  ['PRI method (HTTP/2 preface)', /PRI|method/],
  ['bytes after a response', /after the response/],
  ['content-length or transfer-encoding in trailers', /in trailers/],
  ['repeated or empty transfer-encoding', /transfer-encoding/],
  ['DEL in a field value', /control character/],
];
const TOPIC_OF = new Map(TOPIC);

/**
 * The class of a difference, for a report that lists classes with one example
 * each. For 'meshgate-stricter' the class says what meshgate refused (the
 * names of DELIBERATE_DIFFERENCES where one fits); for 'meshgate-laxer' it is
 * llhttp's error; for 'framing-differs' the field that differs.
 */
export function classify(c: ClassifyInput, verdict?: Verdict, detail?: string): string {
  const { kind, input, meshgate: mg, llhttp: ll } = c;
  const v = verdict ?? compare(mg, ll).verdict;
  if (v === 'agree') return 'agree';
  if (v === 'meshgate-laxer') {
    if (ll.ok) return 'llhttp accepted';
    // llhttp's error code and reason, without the offset.
    return `llhttp: ${ll.error.replace(/ at \d+$/, '')}`;
  }
  if (v === 'framing-differs') {
    const d = detail ?? compare(mg, ll).detail;
    const m = /^message (\d+): (\w+(?: \w+)?)/.exec(d);
    let what: string;
    let k = Math.min(mg.messages.length, ll.messages.length);
    if (m) {
      what = m[2]!.replace(/ \d+$/, '').replace(/^field count.*/, 'fields');
      k = Number(m[1]);
    } else if (d.startsWith('input ends inside')) what = 'whether the input ended inside a message';
    else if (d.startsWith('message count')) what = 'message count';
    else what = d.replace(/\d+/g, 'N').slice(0, 60);
    // A hint at the cause, from the head of the message in question.
    const from = k <= ll.messages.length ? messageStart(kind, input, k, c.requestMethod) : 0;
    const text = input.toString('latin1', from).replace(/^[\r\n]+/, '');
    const headEnd = text.indexOf('\r\n\r\n');
    const head = headEnd >= 0 ? text.slice(0, headEnd + 2) : text;
    const hints: string[] = [];
    if (/\r\n(transfer-encoding|content-length|connection)[ \t]*:[^\r\n]*\t *\r\n/i.test(head)) hints.push('HTAB after a framing field value');
    if (/\r\nupgrade[ \t]*:[ \t]*\r\n/i.test(head)) hints.push('empty Upgrade');
    if (what.startsWith('whether') && (input[input.length - 1] === 13 || input[input.length - 1] === 10)) hints.push('CR or LF after the last message');
    return `differs in ${what}${hints.length ? ` (${hints.join(', ')})` : ''}`;
  }
  // meshgate-stricter: what is there about message k (the one meshgate refused)?
  const k = mg.messages.length;
  const llMsg: FramedMessage | undefined = ll.messages[k] ?? openMessageOf(ll);
  const start = k <= ll.messages.length ? messageStart(kind, input, k, c.requestMethod) : 0;
  const text = input.toString('latin1', start);
  const { lead, line, rest } = startLine(text, 0);
  const mgError = mg.ok ? '' : mg.error;
  const features: string[] = [];
  if (kind === 'request') {
    if (!/^(\r\n)*$/.test(lead)) features.push(/(^|[^\r])\n/.test(lead) ? 'bare LF before the request line' : 'bare CR before the request line');
    requestLineFeatures(line, features);
  } else {
    if (/^(\r\n)+$/.test(lead)) features.push('empty line before a status line');
    else if (lead.length > 0) features.push('bare CR or LF before a status line');
    statusLineFeatures(line, features);
    // llhttp ends a status line at CR CR (and takes what follows for the head's end).
    if (rest.startsWith('\r\r')) features.push('bare CR in a status line');
  }
  if (llMsg) headFeatures(llMsg, kind === 'request', features);
  if (/\r\n(content-length|transfer-encoding)[ \t]*:/i.test(text) && /\r\n0[^\r]*\r\n[^\r]/.test(text)) features.push('content-length or transfer-encoding in trailers');
  const teFields = text.match(/\r\ntransfer-encoding[ \t]*:[ \t]*([^\r]*)/gi) ?? [];
  if (teFields.length > 1 || teFields.some((f) => /:[ \t]*$/.test(f))) features.push('repeated or empty transfer-encoding');
  if (/\r\ncontent-length[ \t]*:[ \t]*\d{16,}/i.test(text)) features.push('content-length over 15 digits');
  // The client reads one final response per request: anything after it closes the connection.
  if (kind === 'response' && k > 0) features.push('bytes after a response');
  if (llMsg && llMsg.headers.some((v, i) => i % 2 === 1 && v.includes('\x7f'))) features.push('DEL in a field value');
  const headEnd = rest.indexOf('\r\n\r\n');
  // llhttp does not see a framing token followed by HTAB (node:http hands the value trimmed).
  if (/\r\n(transfer-encoding|content-length|connection)[ \t]*:[ \t]*[^\r\n\t]+\t/i.test(headEnd >= 0 ? rest.slice(0, headEnd + 2) : rest)) features.push('HTAB after a framing field value');
  if (headEnd >= 0 && llMsg && fieldValues(llMsg, 'transfer-encoding').length > 0) chunkedFeatures(rest.slice(headEnd + 4), features);
  for (const f of features) if (TOPIC_OF.get(f)?.test(mgError)) return f;
  if (/too large/.test(mgError)) return 'head size counted differently';
  const seen = features.length ? `; input has: ${features.join(', ')}` : '';
  return `unclassified (meshgate: ${mgError.replace(/\d+/g, 'N').replace(/"[^"]*"/g, '"…"')}${seen})`;
}
