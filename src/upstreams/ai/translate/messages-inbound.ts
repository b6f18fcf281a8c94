// Anthropic SDK clients (`POST /v1/messages`) on an AI route whose provider
// speaks OpenAI chat. The request becomes an OpenAI chat request, the answer
// an Anthropic message, and the stream the exact Anthropic event sequence:
//   message_start, (content_block_start, content_block_delta*, content_block_stop)*,
//   message_delta, message_stop
// with one block per text run and per tool call, indexes counted from 0.
// message_delta carries stop_reason and usage together; OpenAI sends usage in
// a separate last chunk (the caller forces include_usage upstream), so the
// stop reason is held until that chunk arrives or the stream ends.
import {
  TranslationError,
  asArray,
  count,
  isObj,
  parseJson,
  randomId,
  str,
} from './common.js';
import type { Json, OpenAIErrorBody } from './types.js';

const FINISH_TO_STOP: Record<string, string> = {
  stop: 'end_turn',
  length: 'max_tokens',
  tool_calls: 'tool_use',
  function_call: 'tool_use',
  content_filter: 'refusal',
};
export function stopReasonOf(finish: unknown): string {
  return (typeof finish === 'string' && FINISH_TO_STOP[finish]) || 'end_turn';
}

// ---- request ----

function imagePart(block: Json, param: string): Json {
  const src = block.source;
  if (isObj(src) && src.type === 'base64' && typeof src.media_type === 'string' && typeof src.data === 'string')
    return { type: 'image_url', image_url: { url: `data:${src.media_type};base64,${src.data}` } };
  // Anthropic fetches only http(s) image URLs; the same holds here, so no other scheme reaches a provider that fetches.
  if (isObj(src) && src.type === 'url' && typeof src.url === 'string' && /^https?:\/\//i.test(src.url)) return { type: 'image_url', image_url: { url: src.url } };
  throw new TranslationError(`${param}.source must be a base64 or url image source`, param);
}

function toolResultText(content: unknown): string {
  if (typeof content === 'string') return content;
  let out = '';
  for (const b of asArray(content)) if (isObj(b) && b.type === 'text' && typeof b.text === 'string') out += b.text;
  return out;
}

function systemText(system: unknown): string {
  if (typeof system === 'string') return system;
  return asArray(system)
    .filter((b): b is Json => isObj(b) && b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text as string)
    .join('\n\n');
}

/** Anthropic Messages request -> OpenAI chat request (the model name is left as the client sent it). */
export function messagesToOpenAI(body: Json): Json {
  const messages: Json[] = [];
  const sys = systemText(body.system);
  if (sys.length > 0) messages.push({ role: 'system', content: sys });

  asArray(body.messages).forEach((m, i) => {
    const param = `messages[${i}]`;
    if (!isObj(m) || (m.role !== 'user' && m.role !== 'assistant')) throw new TranslationError(`${param}.role must be user or assistant`, `${param}.role`);
    if (typeof m.content === 'string') {
      messages.push({ role: m.role, content: m.content });
      return;
    }
    if (m.role === 'assistant') {
      let text = '';
      const toolCalls: Json[] = [];
      asArray(m.content).forEach((b) => {
        if (!isObj(b)) return;
        if (b.type === 'text' && typeof b.text === 'string') text += b.text;
        else if (b.type === 'tool_use')
          toolCalls.push({
            id: str(b.id) ?? randomId('call_'),
            type: 'function',
            function: { name: str(b.name) ?? '', arguments: JSON.stringify(isObj(b.input) ? b.input : {}) },
          });
        // thinking blocks are the model's own; an OpenAI provider cannot take them back.
      });
      const msg: Json = { role: 'assistant', content: text.length > 0 ? text : null };
      if (toolCalls.length > 0) msg.tool_calls = toolCalls;
      messages.push(msg);
      return;
    }
    // A user turn: tool results become `tool` messages, which OpenAI wants
    // right after the assistant turn that called them, so they go first.
    const parts: Json[] = [];
    asArray(m.content).forEach((b, j) => {
      const bp = `${param}.content[${j}]`;
      if (!isObj(b)) throw new TranslationError(`${bp} must be an object`, bp);
      if (b.type === 'tool_result') {
        if (typeof b.tool_use_id !== 'string') throw new TranslationError(`${bp}.tool_use_id is required`, bp);
        messages.push({ role: 'tool', tool_call_id: b.tool_use_id, content: toolResultText(b.content) });
      } else if (b.type === 'text') {
        if (typeof b.text === 'string') parts.push({ type: 'text', text: b.text });
      } else if (b.type === 'image') parts.push(imagePart(b, bp));
      else if (b.type === 'document' && isObj(b.source) && b.source.type === 'base64' && typeof b.source.data === 'string')
        parts.push({ type: 'file', file: { filename: 'document.pdf', file_data: `data:${str(b.source.media_type) ?? 'application/pdf'};base64,${b.source.data}` } });
      else throw new TranslationError(`${bp}: block type ${JSON.stringify(b.type)} is not supported by this provider`, bp);
    });
    if (parts.length > 0) {
      const allText = parts.every((p) => p.type === 'text');
      messages.push({ role: 'user', content: allText ? parts.map((p) => p.text as string).join('') : parts });
    }
  });

  const out: Json = { model: body.model, messages };
  // max_tokens rather than max_completion_tokens: every OpenAI-compatible
  // server takes it, several (e.g. Zhipu) take nothing else.
  if (typeof body.max_tokens === 'number') out.max_tokens = body.max_tokens;
  if (Array.isArray(body.stop_sequences) && body.stop_sequences.length > 0) out.stop = body.stop_sequences;
  if (typeof body.temperature === 'number') out.temperature = body.temperature;
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  if (isObj(body.metadata) && typeof body.metadata.user_id === 'string') out.user = body.metadata.user_id;
  const tools = asArray(body.tools);
  if (tools.length > 0) {
    out.tools = tools.map((t, i) => {
      if (!isObj(t) || typeof t.name !== 'string') throw new TranslationError(`tools[${i}].name is required`, `tools[${i}]`);
      if (t.type !== undefined && t.type !== 'custom' && !isObj(t.input_schema))
        throw new TranslationError(`tools[${i}]: server tool ${JSON.stringify(t.type)} is not supported by this provider`, `tools[${i}]`);
      const fn: Json = { name: t.name, parameters: isObj(t.input_schema) ? t.input_schema : { type: 'object', properties: {} } };
      if (typeof t.description === 'string') fn.description = t.description;
      return { type: 'function', function: fn };
    });
  }
  const tc = body.tool_choice;
  if (isObj(tc)) {
    if (tc.type === 'auto') out.tool_choice = 'auto';
    else if (tc.type === 'any') out.tool_choice = 'required';
    else if (tc.type === 'none') out.tool_choice = 'none';
    else if (tc.type === 'tool' && typeof tc.name === 'string') out.tool_choice = { type: 'function', function: { name: tc.name } };
    if (tc.disable_parallel_tool_use === true && tools.length > 0) out.parallel_tool_calls = false;
  }
  if (body.stream === true) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  return out;
}

// ---- response ----

function messageId(openaiId: unknown): string {
  if (typeof openaiId === 'string' && openaiId.length > 0) return 'msg_' + openaiId.replace(/^chatcmpl-/, '');
  return randomId('msg_');
}

/** Tool arguments -> Anthropic `input` (an object). Arguments that are not a JSON object (a model's malformed output) become {}. */
function inputOf(args: unknown): Json {
  if (isObj(args)) return args;
  if (typeof args !== 'string') return {};
  const v = parseJson(args);
  return isObj(v) ? v : {};
}

/** OpenAI usage -> Anthropic usage: Anthropic's input_tokens excludes tokens read from the cache. */
function anthropicUsageOf(u: unknown): Json {
  const prompt = isObj(u) ? count(u.prompt_tokens) : 0;
  const cached = isObj(u) && isObj(u.prompt_tokens_details) ? Math.min(count(u.prompt_tokens_details.cached_tokens), prompt) : 0;
  return {
    input_tokens: prompt - cached,
    output_tokens: isObj(u) ? count(u.completion_tokens) : 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}

/** OpenAI chat.completion -> Anthropic message. */
export function openAIToMessage(completion: Json, model: string): Json {
  const choice = asArray(completion.choices).find(isObj) ?? {};
  const msg = isObj(choice.message) ? choice.message : {};
  const content: Json[] = [];
  const text = typeof msg.content === 'string' ? msg.content : typeof msg.refusal === 'string' ? msg.refusal : '';
  if (text.length > 0) content.push({ type: 'text', text });
  for (const tc of asArray(msg.tool_calls)) {
    if (!isObj(tc) || !isObj(tc.function)) continue;
    content.push({ type: 'tool_use', id: str(tc.id) ?? randomId('toolu_'), name: str(tc.function.name) ?? '', input: inputOf(tc.function.arguments) });
  }
  return {
    id: messageId(completion.id),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReasonOf(choice.finish_reason),
    stop_sequence: null,
    usage: anthropicUsageOf(completion.usage),
  };
}

// ---- stream ----

type Ev = { event: string; data: Json };

export class OpenAIToMessagesStream {
  private readonly model: string;
  private started = false;
  private done = false;
  /** Index of the next content block; the open block is `open`. */
  private next = 0;
  private open: { kind: 'text' } | { kind: 'tool'; toolIndex: number } | undefined;
  private openIndex = -1;
  /** OpenAI tool_calls[].index -> Anthropic block index. */
  private readonly toolBlocks = new Map<number, number>();
  private stopReason: string | undefined;
  private usage: Json | undefined;

  constructor(opts: { model: string }) {
    this.model = opts.model;
  }

  push(chunk: Json): Ev[] {
    const out: Ev[] = [];
    if (this.done) return out;
    if (isObj(chunk.error)) {
      this.fail(out, chunk.error);
      return out;
    }
    this.start(out, chunk.id);
    const choices = asArray(chunk.choices);
    // Only the first choice: an Anthropic message has one.
    const c = choices.find((x) => isObj(x) && (x.index === 0 || x.index === undefined));
    if (isObj(c)) {
      const d = isObj(c.delta) ? c.delta : {};
      const text = typeof d.content === 'string' ? d.content : typeof d.refusal === 'string' ? d.refusal : '';
      if (text.length > 0) {
        if (this.open?.kind !== 'text') this.openBlock(out, { kind: 'text' }, { type: 'text', text: '' });
        out.push(ev('content_block_delta', { type: 'content_block_delta', index: this.openIndex, delta: { type: 'text_delta', text } }));
      }
      for (const tc of asArray(d.tool_calls)) {
        if (!isObj(tc)) continue;
        const ti = typeof tc.index === 'number' ? tc.index : 0;
        const fn = isObj(tc.function) ? tc.function : {};
        let block = this.toolBlocks.get(ti);
        if (block === undefined) {
          block = this.openBlock(out, { kind: 'tool', toolIndex: ti }, { type: 'tool_use', id: str(tc.id) ?? randomId('toolu_'), name: str(fn.name) ?? '', input: {} });
          this.toolBlocks.set(ti, block);
        }
        if (typeof fn.arguments === 'string' && fn.arguments.length > 0)
          out.push(ev('content_block_delta', { type: 'content_block_delta', index: block, delta: { type: 'input_json_delta', partial_json: fn.arguments } }));
      }
      if (typeof c.finish_reason === 'string' && this.stopReason === undefined) {
        this.stopReason = stopReasonOf(c.finish_reason);
        this.closeBlock(out);
      }
      // Some providers put usage inside the choice of the finish chunk.
      if (isObj(c.usage)) this.usage = anthropicUsageOf(c.usage);
    }
    if (isObj(chunk.usage)) this.usage = anthropicUsageOf(chunk.usage);
    if (this.stopReason !== undefined && this.usage !== undefined) this.finish(out);
    return out;
  }

  end(): Ev[] {
    const out: Ev[] = [];
    if (this.done) return out;
    if (this.stopReason === undefined) {
      // No finish_reason: the upstream stream was cut off.
      this.start(out, undefined);
      this.fail(out, { type: 'api_error', message: 'upstream stream ended before the message was complete' });
      return out;
    }
    this.finish(out);
    return out;
  }

  private start(out: Ev[], id: unknown): void {
    if (this.started) return;
    this.started = true;
    out.push(
      ev('message_start', {
        type: 'message_start',
        message: {
          id: messageId(id),
          type: 'message',
          role: 'assistant',
          model: this.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          // OpenAI reports usage only at the end; message_delta carries the totals.
          usage: { input_tokens: 0, output_tokens: 0 },
        },
      }),
    );
  }

  private openBlock(out: Ev[], kind: NonNullable<OpenAIToMessagesStream['open']>, block: Json): number {
    this.closeBlock(out);
    const index = this.next++;
    this.open = kind;
    this.openIndex = index;
    out.push(ev('content_block_start', { type: 'content_block_start', index, content_block: block }));
    return index;
  }

  private closeBlock(out: Ev[]): void {
    if (this.open === undefined) return;
    out.push(ev('content_block_stop', { type: 'content_block_stop', index: this.openIndex }));
    this.open = undefined;
  }

  private finish(out: Ev[]): void {
    this.closeBlock(out);
    this.done = true;
    out.push(
      ev('message_delta', {
        type: 'message_delta',
        delta: { stop_reason: this.stopReason ?? 'end_turn', stop_sequence: null },
        usage: this.usage ?? { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      }),
    );
    out.push(ev('message_stop', { type: 'message_stop' }));
  }

  private fail(out: Ev[], err: Json): void {
    this.done = true;
    const type = anthropicErrorType(typeof err.type === 'string' ? err.type : '', 0, typeof err.code === 'string' ? err.code : null);
    out.push(ev('error', { type: 'error', error: { type, message: str(err.message) ?? 'upstream stream error' } }));
  }
}

function ev(event: string, data: Json): Ev {
  return { event, data };
}

function anthropicErrorType(openaiType: string, status: number, code: string | null): string {
  if (code === 'insufficient_quota' || openaiType === 'insufficient_quota') return 'billing_error';
  if (code === 'invalid_api_key' || status === 401) return 'authentication_error';
  if (status === 402) return 'billing_error';
  if (status === 403 || openaiType === 'permission_error') return 'permission_error';
  if (status === 404 || code === 'model_not_found') return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 413) return 'request_too_large';
  if (status === 429 || openaiType === 'rate_limit_error' || code === 'rate_limit_exceeded') return 'rate_limit_error';
  if (status === 503 || status === 529 || code === 'overloaded') return 'overloaded_error';
  if (status === 504 || code === 'timeout') return 'timeout_error';
  if (status >= 500 || openaiType === 'server_error') return 'api_error';
  if (status >= 400 || openaiType === 'invalid_request_error') return 'invalid_request_error';
  return 'api_error';
}

/** OpenAI error answer -> Anthropic's error shape (the status is sent unchanged). */
export function openAIErrorToAnthropic(status: number, body: OpenAIErrorBody): Json {
  const e = isObj(body) && isObj(body.error) ? body.error : ({} as Partial<OpenAIErrorBody['error']>);
  return {
    type: 'error',
    error: {
      type: anthropicErrorType(str(e.type) ?? '', status, str(e.code) ?? null),
      message: str(e.message) ?? `upstream error ${status}`,
    },
  };
}
