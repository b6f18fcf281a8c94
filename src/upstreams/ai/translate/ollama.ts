// OpenAI chat clients in front of Ollama's native API (`POST /api/chat`).
// Ollama also serves an OpenAI-compatible /v1 (use provider type
// openai_compatible for that); the native API is for servers where only it is
// exposed or where its options matter. Differences handled here: sampling
// options live under `options` (max tokens is `num_predict`), images are bare
// base64 strings in `images`, tool arguments are objects, tool calls arrive
// whole, and streams are NDJSON — one JSON object per line, the last with
// `done: true`, `done_reason` and the token counts.
import {
  ChunkWriter,
  LineSplitter,
  TranslationError,
  asArray,
  count,
  excerpt,
  imageUrlOf,
  isObj,
  maxTokensOf,
  nowSeconds,
  openAIErrorFor,
  openAIUsage,
  parseArguments,
  parseDataUrl,
  parseJson,
  randomId,
  stableId,
  stopList,
  str,
  streamError,
  textOf,
  toolNamesById,
} from './common.js';
import type { ChatTranslator, Json, OpenAIErrorBody, ProviderRequest, StreamDecoder, Usage } from './types.js';

export function ollamaFinishReason(reason: unknown, madeCalls: boolean): string {
  if (reason === 'length') return 'length';
  return madeCalls ? 'tool_calls' : 'stop';
}

function userMessage(content: unknown, param: string): Json {
  if (typeof content === 'string') return { role: 'user', content };
  let text = '';
  const images: string[] = [];
  asArray(content).forEach((p, j) => {
    const pp = `${param}[${j}]`;
    if (!isObj(p)) throw new TranslationError(`${pp} must be an object`, pp);
    if (p.type === 'text') text += str(p.text) ?? '';
    else if (p.type === 'image_url') {
      const d = parseDataUrl(imageUrlOf(p) ?? '');
      // Ollama takes image bytes only; it does not fetch URLs.
      if (!d) throw new TranslationError(`${pp}.image_url.url must be a base64 data: URL for this provider`, pp);
      images.push(d.data);
    } else throw new TranslationError(`${pp}: content part type ${JSON.stringify(p.type)} is not supported by this provider`, pp);
  });
  const m: Json = { role: 'user', content: text };
  if (images.length > 0) m.images = images;
  return m;
}

export function ollamaRequest(body: Json, model: string, stream: boolean): ProviderRequest {
  const messages = asArray(body.messages);
  const names = toolNamesById(messages);
  const out: Json[] = messages.map((m, i) => {
    const param = `messages[${i}]`;
    if (!isObj(m)) throw new TranslationError(`${param} must be an object`, param);
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textOf(m.content) };
      case 'user':
        return userMessage(m.content, `${param}.content`);
      case 'assistant': {
        const msg: Json = { role: 'assistant', content: textOf(m.content) };
        const calls = asArray(m.tool_calls).map((tc, j) => {
          const tp = `${param}.tool_calls[${j}]`;
          if (!isObj(tc) || !isObj(tc.function) || typeof tc.function.name !== 'string') throw new TranslationError(`${tp}.function.name is required`, tp);
          return { function: { name: tc.function.name, arguments: parseArguments(tc.function.arguments, `${tp}.function.arguments`) } };
        });
        if (calls.length > 0) msg.tool_calls = calls;
        return msg;
      }
      case 'tool': {
        const msg: Json = { role: 'tool', content: textOf(m.content) };
        const id = str(m.tool_call_id);
        const name = (id !== undefined ? names.get(id) : undefined) ?? str(m.name);
        if (name !== undefined) msg.tool_name = name;
        return msg;
      }
      default:
        throw new TranslationError(`${param}.role ${JSON.stringify(m.role)} is not supported by this provider`, `${param}.role`);
    }
  });

  const n = body.n;
  if (typeof n === 'number' && n !== 1) throw new TranslationError('n other than 1 is not supported by this provider', 'n');

  const req: Json = { model, messages: out, stream };
  const options: Json = {};
  if (typeof body.temperature === 'number') options.temperature = body.temperature;
  if (typeof body.top_p === 'number') options.top_p = body.top_p;
  if (typeof body.top_k === 'number') options.top_k = body.top_k;
  if (typeof body.seed === 'number') options.seed = body.seed;
  if (typeof body.presence_penalty === 'number') options.presence_penalty = body.presence_penalty;
  if (typeof body.frequency_penalty === 'number') options.frequency_penalty = body.frequency_penalty;
  const max = maxTokensOf(body);
  if (max !== undefined) options.num_predict = max;
  const stops = stopList(body.stop);
  if (stops) options.stop = stops;
  if (Object.keys(options).length > 0) req.options = options;
  const tools = asArray(body.tools);
  if (tools.length > 0 && body.tool_choice !== 'none') {
    req.tools = tools.map((t, i) => {
      if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string')
        throw new TranslationError(`tools[${i}] must be a function tool with a name`, `tools[${i}]`);
      return { type: 'function', function: t.function };
    });
  }
  const rf = body.response_format;
  if (isObj(rf)) {
    if (rf.type === 'json_object') req.format = 'json';
    else if (rf.type === 'json_schema' && isObj(rf.json_schema) && isObj(rf.json_schema.schema)) req.format = rf.json_schema.schema;
  }
  return { path: '/api/chat', body: req, stream };
}

export function ollamaUsage(body: Json): Usage | undefined {
  if (body.prompt_eval_count === undefined && body.eval_count === undefined) return undefined;
  const input = count(body.prompt_eval_count);
  const output = count(body.eval_count);
  return { input, output, total: input + output };
}

function toolCallsOf(msg: Json, idOf: (name: string, args: string, k: number) => string, first: number): Json[] {
  return asArray(msg.tool_calls).flatMap((tc, j) => {
    if (!isObj(tc) || !isObj(tc.function)) return [];
    const name = str(tc.function.name) ?? '';
    const a = tc.function.arguments;
    const args = typeof a === 'string' ? a : JSON.stringify(isObj(a) ? a : {});
    return [{ id: str(tc.id) ?? idOf(name, args, first + j), type: 'function', function: { name, arguments: args } }];
  });
}

export function ollamaResponse(body: Json, model: string): Json {
  const id = randomId('chatcmpl-');
  const msg = isObj(body.message) ? body.message : {};
  const calls = toolCallsOf(msg, (name, args, k) => stableId('call_', id, String(k), name, args), 0);
  const content = str(msg.content) ?? '';
  const message: Json = { role: 'assistant', content: content.length > 0 || calls.length === 0 ? content : null, refusal: null };
  if (calls.length > 0) message.tool_calls = calls;
  const out: Json = {
    id,
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: ollamaFinishReason(body.done_reason, calls.length > 0) }],
  };
  const u = ollamaUsage(body);
  if (u) out.usage = openAIUsage(u);
  return out;
}

export function ollamaError(status: number, body: Buffer): { status: number; body: OpenAIErrorBody } {
  const s = status >= 400 && status <= 599 ? status : 502;
  const j = parseJson(body.toString('utf8'));
  // Ollama's errors are {"error": "<text>"}; its /v1 endpoints use OpenAI's shape.
  let message: string | undefined;
  if (isObj(j) && typeof j.error === 'string') message = j.error;
  else if (isObj(j) && isObj(j.error)) message = str(j.error.message);
  return { status: s, body: openAIErrorFor(s, message ?? `upstream error ${status}: ${excerpt(body)}`) };
}

class OllamaStreamDecoder implements StreamDecoder {
  private readonly lines = new LineSplitter();
  private readonly w: ChunkWriter;
  private readonly id: string;
  private started = false;
  private calls = 0;
  private done = false;
  private failed = false;
  private lastUsage: Usage | undefined;

  constructor(opts: { id: string; model: string; created: number; includeUsage: boolean }) {
    this.w = new ChunkWriter(opts);
    this.id = opts.id;
  }

  get usage(): Usage | undefined {
    return this.lastUsage;
  }

  push(bytes: Buffer): Json[] {
    const out: Json[] = [];
    if (this.failed || this.done) return out;
    let lines: string[];
    try {
      lines = this.lines.push(bytes);
    } catch (e) {
      this.failed = true;
      out.push(streamError((e as Error).message, 'server_error', 'bad_upstream_event'));
      return out;
    }
    for (const line of lines) this.onLine(line, out);
    return out;
  }

  end(): Json[] {
    const out: Json[] = [];
    for (const line of this.lines.end()) this.onLine(line, out);
    if (!this.done && !this.failed) {
      this.failed = true;
      out.push(streamError('upstream stream ended before the answer was complete', 'server_error', 'stream_truncated'));
    }
    return out;
  }

  private onLine(line: string, out: Json[]): void {
    if (this.done || this.failed) return;
    const j = parseJson(line);
    if (!isObj(j)) {
      this.failed = true;
      out.push(streamError('upstream sent an unreadable stream line', 'server_error', 'bad_upstream_event'));
      return;
    }
    if (j.error !== undefined) {
      this.failed = true;
      const message = typeof j.error === 'string' ? j.error : isObj(j.error) ? (str(j.error.message) ?? 'upstream stream error') : 'upstream stream error';
      out.push(streamError(message, 'server_error'));
      return;
    }
    const msg = isObj(j.message) ? j.message : {};
    const text = str(msg.content) ?? '';
    if (!this.started) {
      this.started = true;
      out.push(this.w.choice({ role: 'assistant', content: text }));
    } else if (text.length > 0) out.push(this.w.choice({ content: text }));
    const calls = toolCallsOf(msg, (name, args, k) => stableId('call_', this.id, String(k), name, args), this.calls);
    if (calls.length > 0) {
      out.push(this.w.choice({ tool_calls: calls.map((c, j2) => ({ index: this.calls + j2, ...c })) }));
      this.calls += calls.length;
    }
    if (j.done === true) {
      this.done = true;
      this.lastUsage = ollamaUsage(j);
      out.push(this.w.choice({}, ollamaFinishReason(j.done_reason, this.calls > 0)));
      out.push(...this.w.usage(this.lastUsage));
    }
  }
}

export const ollamaNativeTranslator: ChatTranslator = {
  request: ollamaRequest,
  response: ollamaResponse,
  stream: (opts) => new OllamaStreamDecoder(opts),
  error: ollamaError,
  usage: ollamaUsage,
  // Ollama itself takes no key; a key configured anyway is for a proxy in front of it.
  authHeaders: (apiKey): Record<string, string> => (apiKey.length > 0 ? { authorization: `Bearer ${apiKey}` } : {}),
};
