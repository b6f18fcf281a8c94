// Raw HTTP/1.1 on node:net for attack tests: send exact bytes, read exact
// bytes back, and frame byte streams with llhttp, the parser inside node:http,
// as the reference reading of what a server behind the gateway would see.
//
// llhttp is reached through Node's internal `HTTPParser` binding
// (`_http_common`): undocumented, but it is the parser node:http runs, here in
// its strict (non-lenient) mode.
import { createRequire } from 'node:module';
import net from 'node:net';

const require = createRequire(import.meta.url);

interface ParserCtor {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}
type ParseError = Error & { code?: string; reason?: string; bytesParsed?: number };
interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(buf: Buffer): number | ParseError;
  finish(): undefined | ParseError;
  close(): void;
  [k: number]: unknown;
}

const { HTTPParser, methods } = require('_http_common') as { HTTPParser: ParserCtor; methods: string[] };

/** latin1 bytes of a string: every char code 0-255 becomes exactly one byte. */
export function b(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** One message as llhttp framed it. */
export interface FramedMsg {
  method?: string;
  url?: string;
  status?: number;
  versionMinor: number;
  /** [name, value, name, value, ...] as received. */
  headers: string[];
  body: Buffer;
  trailers: string[];
  /** A request asking to switch protocols, or a 101 response: framing stops after its head. */
  upgrade: boolean;
  /** The message ended (last body byte, or the head of a bodyless message). */
  complete: boolean;
}

/** The first value of a header in a [name, value, ...] list (case-insensitive). */
export function headerOf(list: string[], name: string): string | undefined {
  const n = name.toLowerCase();
  for (let i = 0; i + 1 < list.length; i += 2) if (list[i]!.toLowerCase() === n) return list[i + 1];
  return undefined;
}

/** Every value of a header in a [name, value, ...] list. */
export function headersOf(list: string[], name: string): string[] {
  const n = name.toLowerCase();
  const out: string[] = [];
  for (let i = 0; i + 1 < list.length; i += 2) if (list[i]!.toLowerCase() === n) out.push(list[i + 1]!);
  return out;
}

export interface LlhttpEvents {
  onHead?(m: FramedMsg): number | void;
  onBody?(m: FramedMsg, chunk: Buffer): void;
  onComplete?(m: FramedMsg): void;
}

/**
 * An incremental llhttp parser: feed bytes as they come. `feed` returns an
 * error string when llhttp refuses the input, `{ upgrade: rest }` when a
 * message switched protocols (rest: the bytes after its head), else undefined.
 */
export class LlhttpStream {
  readonly messages: FramedMsg[] = [];
  error: string | undefined;
  upgraded = false;
  private readonly parser: NativeParser;
  private cur: FramedMsg | undefined;
  private headersDone = false;
  private pendingHeaders: string[] = [];
  private pendingUrl = '';

  constructor(
    readonly kind: 'request' | 'response',
    private readonly events: LlhttpEvents = {},
    maxHeaderSize = 16 * 1024,
  ) {
    const p = new HTTPParser();
    this.parser = p;
    p.initialize(kind === 'response' ? HTTPParser.RESPONSE : HTTPParser.REQUEST, {}, maxHeaderSize, HTTPParser.kLenientNone);
    p[HTTPParser.kOnHeaders] = (headers: string[], url: string) => {
      // Called for heads of more than 32 fields, and for trailers.
      if (this.cur && this.headersDone) this.cur.trailers.push(...headers);
      else {
        this.pendingHeaders.push(...headers);
        this.pendingUrl += url;
      }
    };
    p[HTTPParser.kOnHeadersComplete] = (_major: number, minor: number, headers: string[] | undefined, method: number | undefined, url: string | undefined, status: number | undefined, _msg: string, upgrade: boolean) => {
      const m: FramedMsg = {
        method: kind === 'request' ? methods[method!] : undefined,
        url: kind === 'request' ? this.pendingUrl + (url ?? '') : undefined,
        status: kind === 'response' ? status : undefined,
        versionMinor: minor,
        headers: headers ? this.pendingHeaders.concat(headers) : this.pendingHeaders,
        body: Buffer.alloc(0),
        trailers: [],
        upgrade: Boolean(upgrade),
        complete: false,
      };
      this.cur = m;
      this.messages.push(m);
      this.pendingHeaders = [];
      this.pendingUrl = '';
      this.headersDone = true;
      if (upgrade) this.upgraded = true;
      return this.events.onHead?.(m) ?? 0;
    };
    p[HTTPParser.kOnBody] = (chunk: Buffer) => {
      const m = this.cur;
      if (!m) return;
      m.body = m.body.length ? Buffer.concat([m.body, chunk]) : Buffer.from(chunk);
      this.events.onBody?.(m, chunk);
    };
    p[HTTPParser.kOnMessageComplete] = () => {
      const m = this.cur;
      this.headersDone = false;
      if (!m) return;
      m.complete = true;
      this.events.onComplete?.(m);
    };
  }

  /** The message being read (or the last one). */
  get current(): FramedMsg | undefined {
    return this.cur;
  }

  feed(buf: Buffer): string | { upgrade: Buffer } | undefined {
    if (this.error !== undefined) return this.error;
    if (this.upgraded) return { upgrade: buf };
    const r = this.parser.execute(buf);
    if (typeof r !== 'number') {
      this.error = `${r.code ?? 'HPE'} ${r.reason ?? r.message}`;
      return this.error;
    }
    if (this.upgraded) return { upgrade: buf.subarray(r) };
    return undefined;
  }

  /** The stream ended: close-delimited bodies end here; returns an error for a message cut short. */
  finish(): string | undefined {
    if (this.error !== undefined || this.upgraded) return this.error;
    const r = this.parser.finish();
    if (r !== undefined && typeof r === 'object') this.error = `${r.code ?? 'HPE'} ${r.reason ?? r.message}`;
    return this.error;
  }

  close(): void {
    this.parser.close();
  }
}

export interface FrameOutcome {
  /** llhttp read every byte without an error. */
  ok: boolean;
  messages: FramedMsg[];
  /** `HPE_CODE reason` when llhttp refused the input. */
  error?: string;
  /** Bytes after the head of an upgrade request (the tunnel's first bytes). */
  rest?: Buffer;
}

export interface FrameOptions {
  response?: boolean;
  /** Responses: the answer with this index (final responses counted) has no body (it answers a HEAD). */
  bodyless?: (index: number) => boolean;
  /** The stream ended after these bytes. */
  eof?: boolean;
  /** Feed one byte at a time. */
  byteAtATime?: boolean;
}

/** Frame a whole byte string with llhttp (strict), as node:http would read it. */
export function frameWithLlhttp(input: Buffer | string, opts: FrameOptions = {}): FrameOutcome {
  const buf = typeof input === 'string' ? b(input) : input;
  let finals = 0;
  const s = new LlhttpStream(opts.response ? 'response' : 'request', {
    onHead: (m) => {
      if (!opts.response || (m.status ?? 0) < 200) return 0;
      return opts.bodyless?.(finals++) ? 1 : 0;
    },
  });
  const out: FrameOutcome = { ok: true, messages: s.messages };
  const steps = opts.byteAtATime ? Array.from({ length: buf.length }, (_, i) => buf.subarray(i, i + 1)) : [buf];
  for (const step of steps) {
    const r = s.feed(step);
    if (typeof r === 'string') break;
    if (r !== undefined) {
      out.rest = r.upgrade;
      break;
    }
  }
  if (opts.eof) s.finish();
  if (s.error !== undefined) {
    out.ok = false;
    out.error = s.error;
  }
  s.close();
  return out;
}

// ---------- a raw client ----------

/** A response a raw client read back. */
export interface RawResponse {
  status: number;
  /** Lower-case names; repeated fields joined with ", ". */
  headers: Record<string, string>;
  body: string;
  complete: boolean;
}

export interface RawResult {
  /** Every byte the server sent. */
  raw: Buffer;
  /** The bytes framed as responses (1xx included). */
  responses: RawResponse[];
  /** The non-1xx responses (101 included). */
  finals: RawResponse[];
  /** The server closed the connection before we stopped waiting. */
  closed: boolean;
  /** The connection ended in an error (ECONNRESET, EPIPE). */
  error?: string;
  /** The bytes did not frame as HTTP responses (llhttp's reason). */
  parseError?: string;
  ms: number;
}

export interface SendOptions {
  /** Half-close (FIN) after the last write. */
  end?: boolean;
  /** Stop once this many final responses have completed (then listen settleMs more). Default 1. */
  responses?: number;
  /** After the expected responses, keep listening this long for anything more. */
  settleMs?: number;
  /** Give up after this long. */
  timeoutMs?: number;
  /** A pause between the pieces. */
  gapMs?: number;
  /** Final responses with this index answer HEAD (no body). */
  bodyless?: (index: number) => boolean;
}

export function toResponses(raw: Buffer, eof: boolean, bodyless?: (i: number) => boolean): { responses: RawResponse[]; error?: string } {
  const f = frameWithLlhttp(raw, { response: true, eof, bodyless });
  const responses = f.messages.map((m) => {
    const headers: Record<string, string> = {};
    for (let i = 0; i + 1 < m.headers.length; i += 2) {
      const k = m.headers[i]!.toLowerCase();
      headers[k] = headers[k] === undefined ? m.headers[i + 1]! : `${headers[k]}, ${m.headers[i + 1]}`;
    }
    return { status: m.status ?? 0, headers, body: m.body.toString('latin1'), complete: m.complete };
  });
  return { responses, error: f.ok ? undefined : f.error };
}

/** The responses in bytes already collected (eof: the connection has closed). */
export function parseResponses(raw: Buffer, eof = true, bodyless?: (i: number) => boolean): RawResponse[] {
  return toResponses(raw, eof, bodyless).responses;
}

/** Open a connection, write the pieces, read until the expected answers arrived (or the server closed, or the timeout). */
export function sendRaw(port: number, pieces: Buffer | string | Array<Buffer | string>, opts: SendOptions = {}): Promise<RawResult> {
  const list = (Array.isArray(pieces) ? pieces : [pieces]).map((p) => (typeof p === 'string' ? b(p) : p));
  const want = opts.responses ?? 1;
  const settle = opts.settleMs ?? 150;
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let done = false;
    let settleTimer: NodeJS.Timeout | undefined;
    const sock = net.connect(port, '127.0.0.1');
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(settleTimer);
      const raw = Buffer.concat(chunks);
      const { responses, error: parseError } = toResponses(raw, closed, opts.bodyless);
      sock.destroy();
      resolve({ raw, responses, finals: responses.filter((r) => r.status >= 200 || r.status === 101), closed, error, parseError, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 3000);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (settleTimer) return;
      const { responses } = toResponses(Buffer.concat(chunks), false, opts.bodyless);
      const finals = responses.filter((r) => (r.status >= 200 || r.status === 101) && r.complete).length;
      if (finals >= want) settleTimer = setTimeout(() => finish(false), settle);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    sock.on('close', () => finish(true));
    sock.on('connect', async () => {
      for (let i = 0; i < list.length; i++) {
        if (done || sock.destroyed) return;
        sock.write(list[i]!);
        if (opts.gapMs && i + 1 < list.length) await new Promise((r) => setTimeout(r, opts.gapMs));
      }
      if (opts.end && !sock.destroyed) sock.end();
    });
  });
}

/** Connect; resolves with the socket once connected. */
export function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** What a socket receives until it closes, and how it closed. */
export function collect(sock: net.Socket): Promise<{ raw: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let error: string | undefined;
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    sock.on('close', () => resolve({ raw: Buffer.concat(chunks), error }));
  });
}

/** Resolve once `sock` has received bytes matching `re` (latin1), or reject after timeoutMs. */
export function waitForBytes(sock: net.Socket, re: RegExp, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (d: Buffer): void => {
      text += d.toString('latin1');
      if (re.test(text)) {
        cleanup();
        resolve(text);
      }
    };
    const onClose = (): void => {
      cleanup();
      reject(new Error(`closed before ${re}: ${JSON.stringify(text)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${re} within ${timeoutMs} ms: ${JSON.stringify(text)}`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onClose);
    };
    sock.on('data', onData);
    sock.on('close', onClose);
  });
}

/** A plain GET on a fresh connection (Connection: close). */
export function probeGet(port: number, path = '/probe', host = 'probe.local'): Promise<RawResult> {
  return sendRaw(port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, { settleMs: 0, timeoutMs: 5000 });
}

// ---------- process-level measures ----------

/** Open net.Sockets of this process whose local port is `port` (the server side of a listener's connections). */
export function serverSocketsOn(port: number): number {
  return activeSockets().filter((s) => s.localPort === port).length;
}

/** The server side of one connection to a listener on `port`: the open net.Socket of this process from the client's `clientPort`. */
export function serverSocketOf(port: number, clientPort: number): net.Socket | undefined {
  return activeSockets().find((s) => s.localPort === port && s.remotePort === clientPort);
}

/** Open net.Sockets of this process connected to `port` (the client side, e.g. a gateway's upstream pool). */
export function clientSocketsTo(port: number): number {
  return activeSockets().filter((s) => s.remotePort === port).length;
}

function activeSockets(): net.Socket[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h): h is net.Socket => h instanceof net.Socket && !h.destroyed);
}

/** Errors that escaped to the process (an 'error' nobody listened to, a throw in a socket handler). */
export function trackEscapes(): { errors: Error[]; since(mark: number): string[]; dispose(): void } {
  const errors: Error[] = [];
  const onErr = (e: unknown): void => {
    errors.push(e instanceof Error ? e : new Error(String(e)));
  };
  process.on('uncaughtException', onErr);
  process.on('unhandledRejection', onErr);
  return {
    errors,
    /** The first line and top frames of each error recorded after `mark` (an earlier errors.length). */
    since(mark: number) {
      return errors.slice(mark).map((e) => (e.stack ?? e.message).split('\n').slice(0, 4).join(' | '));
    },
    dispose() {
      process.off('uncaughtException', onErr);
      process.off('unhandledRejection', onErr);
    },
  };
}
