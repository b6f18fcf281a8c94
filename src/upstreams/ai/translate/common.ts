// Helpers the translators share: reading loose JSON safely, OpenAI chunk and
// error builders, data: URL parsing, and the request-side error a translator
// throws when a client sent something the provider cannot be asked.
import { createHash, randomBytes } from 'node:crypto';
import type { Json, OpenAIErrorBody, Usage } from './types.js';

/**
 * A client request the target provider cannot express (an image by URL for a
 * provider that needs bytes, n > 1 where there is no such option, tool
 * arguments that are not JSON). The route handler answers it with `status`
 * and `body` as they are; `param` names the offending field.
 */
export class TranslationError extends Error {
  readonly status = 400;
  readonly body: OpenAIErrorBody;
  constructor(message: string, param: string | null = null) {
    super(message);
    this.name = 'TranslationError';
    this.body = { error: { message, type: 'invalid_request_error', param, code: null } };
  }
}

export function isObj(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function asArray(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
/** A non-negative whole token count, or 0. Providers have sent null, strings and floats. */
export function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
export function randomId(prefix: string): string {
  return prefix + randomBytes(12).toString('base64url');
}
/** An id that is the same every time the same inputs are hashed (tool calls of a replayed response keep their ids). */
export function stableId(prefix: string, ...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return prefix + h.digest('base64url').slice(0, 24);
}

/** OpenAI message content (string or parts) -> plain text; non-text parts are skipped. */
export function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  let out = '';
  for (const p of asArray(content)) {
    if (isObj(p) && (p.type === 'text' || p.type === 'input_text' || p.type === 'output_text') && typeof p.text === 'string') out += p.text;
    else if (isObj(p) && p.type === 'refusal' && typeof p.refusal === 'string') out += p.refusal;
  }
  return out;
}

/** `max_completion_tokens` supersedes the deprecated `max_tokens` (it also counts reasoning tokens). */
export function maxTokensOf(body: Json): number | undefined {
  return num(body.max_completion_tokens) ?? num(body.max_tokens);
}

/** OpenAI `stop`: a string or up to 4 strings. */
export function stopList(stop: unknown): string[] | undefined {
  if (typeof stop === 'string') return stop.length > 0 ? [stop] : undefined;
  if (Array.isArray(stop)) {
    const out = stop.filter((s): s is string => typeof s === 'string' && s.length > 0);
    return out.length > 0 ? out : undefined;
  }
  return undefined;
}

export interface DataUrl {
  mediaType: string;
  data: string;
}
/** `data:image/png;base64,AAAA` -> parts; undefined for anything else (http URLs, non-base64 data URLs). */
export function parseDataUrl(url: string): DataUrl | undefined {
  const m = /^data:([\w.+-]+\/[\w.+-]+)((?:;[\w.+-]+=[^;,]*)*);base64,(.*)$/s.exec(url);
  if (!m) return undefined;
  return { mediaType: m[1]!.toLowerCase(), data: m[3]! };
}

/** The image URL of an OpenAI `image_url` part (`{image_url:{url}}` or the older `{image_url: "..."}`). */
export function imageUrlOf(part: Json): string | undefined {
  const iu = part.image_url;
  if (typeof iu === 'string') return iu;
  if (isObj(iu) && typeof iu.url === 'string') return iu.url;
  return undefined;
}

/** Tool call arguments (a JSON string) -> the object a provider wants; throws TranslationError naming the field. */
export function parseArguments(args: unknown, param: string): Json {
  if (isObj(args)) return args;
  if (args === undefined || args === null || args === '') return {};
  if (typeof args !== 'string') throw new TranslationError(`${param} must be a JSON string`, param);
  const v = parseJson(args);
  if (!isObj(v)) throw new TranslationError(`${param} is not a JSON object`, param);
  return v;
}

/** tool_call_id -> function name, from the assistant turns of an OpenAI conversation (tool results name their call only by id). */
export function toolNamesById(messages: unknown[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of messages) {
    if (!isObj(m) || m.role !== 'assistant') continue;
    for (const tc of asArray(m.tool_calls)) {
      if (isObj(tc) && typeof tc.id === 'string' && isObj(tc.function) && typeof tc.function.name === 'string') out.set(tc.id, tc.function.name);
    }
  }
  return out;
}

export function openAIUsage(u: Usage): Json {
  const out: Json = { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.total };
  if (u.cachedInput !== undefined) out.prompt_tokens_details = { cached_tokens: u.cachedInput };
  return out;
}

/** Builds chat.completion.chunk objects that all carry one id/model/created (clients stitch chunks by id). */
export class ChunkWriter {
  constructor(
    private readonly opts: { id: string; model: string; created: number; includeUsage: boolean },
  ) {}

  choice(delta: Json, finishReason: string | null = null, index = 0): Json {
    const c: Json = {
      id: this.opts.id,
      object: 'chat.completion.chunk',
      created: this.opts.created,
      model: this.opts.model,
      choices: [{ index, delta, logprobs: null, finish_reason: finishReason }],
    };
    // With include_usage OpenAI sends `usage: null` on every chunk but the last.
    if (this.opts.includeUsage) c.usage = null;
    return c;
  }

  /** The usage chunk: `choices` is always empty. Only when the client asked (stream_options.include_usage). */
  usage(u: Usage | undefined): Json[] {
    if (!this.opts.includeUsage || u === undefined) return [];
    return [
      {
        id: this.opts.id,
        object: 'chat.completion.chunk',
        created: this.opts.created,
        model: this.opts.model,
        choices: [],
        usage: openAIUsage(u),
      },
    ];
  }
}

/** The stream object for a mid-stream error (the OpenAI SDK throws on a `data:` object with an `error` key). */
export function streamError(message: string, type: string, code: string | null = null): Json {
  return { error: { message, type, param: null, code } };
}

/** OpenAI error type and code for a status when the provider's own error does not say more. */
export function openAIErrorFor(status: number, message: string, code: string | null = null): OpenAIErrorBody {
  let type = 'invalid_request_error';
  if (status === 401) code ??= 'invalid_api_key';
  else if (status === 403) type = 'permission_error';
  else if (status === 404) code ??= 'model_not_found';
  else if (status === 429) {
    type = 'rate_limit_error';
    code ??= 'rate_limit_exceeded';
  } else if (status >= 500) type = 'server_error';
  return { error: { message, type, param: null, code } };
}

/** A short printable excerpt of an error body that is not the expected JSON. */
export function excerpt(body: Buffer): string {
  const t = body.subarray(0, 512).toString('utf8').replace(/\s+/g, ' ').trim();
  return t.length > 0 ? t : 'empty response body';
}

/** Splits NDJSON across arbitrary chunk boundaries (inside a line or a UTF-8 sequence). */
export class LineSplitter {
  private readonly decoder = new TextDecoder('utf-8');
  /** Pieces of the unfinished line (joined once its newline arrives, so a long line is not rescanned per push). */
  private rest: string[] = [];
  private restLength = 0;
  constructor(private readonly maxLine = 16 * 1024 * 1024) {}
  push(bytes: Buffer): string[] {
    return this.split(this.decoder.decode(bytes, { stream: true }));
  }
  /** The last line may come without its newline. */
  end(): string[] {
    let out: string[];
    try {
      out = this.split(this.decoder.decode());
    } catch {
      out = [];
    }
    const last = this.rest.join('').replace(/\r$/, '');
    this.rest = [];
    this.restLength = 0;
    if (last.trim().length > 0) out.push(last);
    return out;
  }
  private split(text: string): string[] {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      let line = text.slice(start, nl);
      if (this.rest.length > 0) {
        line = this.rest.join('') + line;
        this.rest = [];
        this.restLength = 0;
      }
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line.trim().length > 0) out.push(line);
      start = nl + 1;
    }
    if (start < text.length) {
      this.rest.push(text.slice(start));
      this.restLength += text.length - start;
      if (this.restLength > this.maxLine) {
        this.rest = [];
        this.restLength = 0;
        throw new RangeError(`upstream stream line exceeds ${this.maxLine} characters`);
      }
    }
    return out;
  }
}
