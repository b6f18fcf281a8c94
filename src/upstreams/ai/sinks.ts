// Where a chat answer goes: straight to an OpenAI client, or (for an
// Anthropic client calling POST /v1/messages on a provider that speaks
// OpenAI) through the OpenAI -> Anthropic Messages converter.
//
// Stream writes respect backpressure: write() answers false when the
// client's socket buffer is full, and the caller pauses the provider read
// until 'drain'.
import type { Exchange } from '../../exchange/exchange.js';
import type { Frame } from './frames.js';
import { openAIErrorToAnthropic, openAIToMessage, OpenAIToMessagesStream } from './translate/messages-inbound.js';
import type { Json, OpenAIErrorBody } from './translate/types.js';

export interface ChatSink {
  /** A non-stream answer: an OpenAI chat.completion (raw: the provider's bytes, sent as they are when nothing changed). */
  completion(obj: Json, raw?: Buffer): void;
  /** An error answer, in the client's protocol's shape. */
  error(status: number, body: OpenAIErrorBody, headers?: Record<string, string>): void;
  /** The stream starts: the head goes out. */
  start(): void;
  write(frames: Frame[]): boolean;
  /** The stream ended well: the usage chunk (when due), the end marker, the end. */
  finish(usage: Frame | undefined): void;
  /** The stream failed after it started: an error event, then the end. */
  fail(err: Frame): void;
}

export const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' } as const;

function sendJson(ex: Exchange, status: number, body: string | Buffer, headers?: Record<string, string>): void {
  const res = ex.res;
  if (res.headersSent || res.destroyed) return;
  ex.status = status;
  const len = Buffer.byteLength(body);
  ex.bytesOut += len;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': len, 'x-request-id': ex.requestId, ...headers });
  res.end(body);
}

/** Sends an OpenAI-shaped error (the gateway's own, or a provider's normalised). */
export function sendOpenAIError(ex: Exchange, status: number, message: string, type: string, code: string | null = null, param: string | null = null, headers?: Record<string, string>): void {
  sendJson(ex, status, JSON.stringify({ error: { message, type, param, code } }), headers);
}

function writeText(ex: Exchange, text: string): boolean {
  ex.bytesOut += Buffer.byteLength(text);
  return ex.res.write(text);
}

export class OpenAISink implements ChatSink {
  constructor(private readonly ex: Exchange) {}

  completion(obj: Json, raw?: Buffer): void {
    sendJson(this.ex, 200, raw ?? JSON.stringify(obj));
  }

  error(status: number, body: OpenAIErrorBody, headers?: Record<string, string>): void {
    sendJson(this.ex, status, JSON.stringify(body), headers);
  }

  start(): void {
    this.ex.status = 200;
    this.ex.res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': this.ex.requestId });
  }

  write(frames: Frame[]): boolean {
    if (frames.length === 0) return true;
    let s = '';
    for (const f of frames) s += `data: ${f.data}\n\n`;
    return writeText(this.ex, s);
  }

  finish(usage: Frame | undefined): void {
    if (this.ex.res.destroyed) return;
    writeText(this.ex, `${usage ? `data: ${usage.data}\n\n` : ''}data: [DONE]\n\n`);
    this.ex.res.end();
  }

  fail(err: Frame): void {
    if (this.ex.res.destroyed) return;
    writeText(this.ex, `data: ${err.data}\n\n`);
    this.ex.res.end();
  }
}

/** An Anthropic client on an OpenAI-speaking provider. */
export class MessagesSink implements ChatSink {
  private readonly conv: OpenAIToMessagesStream;
  constructor(
    private readonly ex: Exchange,
    private readonly model: string,
  ) {
    this.conv = new OpenAIToMessagesStream({ model });
  }

  completion(obj: Json): void {
    sendJson(this.ex, 200, JSON.stringify(openAIToMessage(obj, this.model)));
  }

  error(status: number, body: OpenAIErrorBody, headers?: Record<string, string>): void {
    sendJson(this.ex, status, JSON.stringify(openAIErrorToAnthropic(status, body)), headers);
  }

  start(): void {
    this.ex.status = 200;
    this.ex.res.writeHead(200, { ...SSE_HEADERS, 'x-request-id': this.ex.requestId });
  }

  private events(evs: Array<{ event: string; data: Json }>): string {
    let s = '';
    for (const e of evs) s += `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
    return s;
  }

  write(frames: Frame[]): boolean {
    let s = '';
    for (const f of frames) s += this.events(this.conv.push(f.obj));
    return s.length === 0 ? true : writeText(this.ex, s);
  }

  finish(usage: Frame | undefined): void {
    if (this.ex.res.destroyed) return;
    let s = usage ? this.events(this.conv.push(usage.obj)) : '';
    s += this.events(this.conv.end());
    writeText(this.ex, s);
    this.ex.res.end();
  }

  fail(err: Frame): void {
    if (this.ex.res.destroyed) return;
    writeText(this.ex, this.events(this.conv.push(err.obj)));
    this.ex.res.end();
  }
}

/** Anthropic-shaped error for the gateway's own refusals on /v1/messages. */
export function anthropicErrorOf(status: number, body: OpenAIErrorBody): Json {
  return openAIErrorToAnthropic(status, body);
}
