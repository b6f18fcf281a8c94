// OpenAI chat clients in front of the Anthropic Messages API.
// Request: system/developer turns become the top-level `system`, tool calls
// and tool results become tool_use / tool_result blocks, and consecutive turns
// of one role are merged because Anthropic wants user/assistant alternation.
// Stream: Anthropic's typed events become OpenAI chunks with one id and
// choice index 0 throughout; a tool call's index is the ordinal of its
// tool_use block among tool_use blocks (Anthropic's block index also counts
// text and thinking blocks, and clients key argument fragments on it).
import { SseParser } from './sse.js';
import {
  ChunkWriter,
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
  stopList,
  str,
  streamError,
  textOf,
} from './common.js';
import type { ChatTranslator, Json, OpenAIErrorBody, ProviderRequest, StreamDecoder, Usage } from './types.js';

export const ANTHROPIC_VERSION = '2023-06-01';
/** Anthropic requires max_tokens; used when the client set neither max_completion_tokens nor max_tokens. */
export const ANTHROPIC_DEFAULT_MAX_TOKENS = 4096;

const STOP_REASONS: Record<string, string> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};
/** Anthropic stop_reason -> OpenAI finish_reason; unknown future reasons read as a normal stop. */
export function anthropicFinishReason(reason: unknown): string {
  return (typeof reason === 'string' && STOP_REASONS[reason]) || 'stop';
}

/** Anthropic error type -> [status to send, OpenAI type, OpenAI code]. */
const ERROR_TYPES: Record<string, [number, string, string | null]> = {
  invalid_request_error: [400, 'invalid_request_error', null],
  authentication_error: [401, 'invalid_request_error', 'invalid_api_key'],
  billing_error: [402, 'insufficient_quota', 'insufficient_quota'],
  permission_error: [403, 'permission_error', null],
  not_found_error: [404, 'invalid_request_error', 'model_not_found'],
  conflict_error: [409, 'invalid_request_error', null],
  request_too_large: [413, 'invalid_request_error', 'request_too_large'],
  rate_limit_error: [429, 'rate_limit_error', 'rate_limit_exceeded'],
  api_error: [500, 'server_error', null],
  timeout_error: [504, 'server_error', 'timeout'],
  overloaded_error: [503, 'server_error', 'overloaded'],
};

function mapError(status: number, errType: string | undefined, message: string): { status: number; body: OpenAIErrorBody } {
  // 529 is Anthropic's own "overloaded"; OpenAI clients know 503.
  const out = status === 529 ? 503 : status;
  const known = errType !== undefined ? ERROR_TYPES[errType] : undefined;
  if (known) {
    const s = out >= 400 && out <= 599 ? out : known[0];
    return { status: s, body: { error: { message, type: known[1], param: null, code: known[2] } } };
  }
  const s = out >= 400 && out <= 599 ? out : 502;
  return { status: s, body: openAIErrorFor(s, message) };
}

// ---- request ----

function imageBlock(part: Json, param: string): Json {
  const url = imageUrlOf(part);
  if (url === undefined) throw new TranslationError(`${param}.image_url.url is required`, param);
  const data = parseDataUrl(url);
  // Anthropic knows image/jpeg, not the common alias image/jpg.
  if (data) return { type: 'image', source: { type: 'base64', media_type: data.mediaType === 'image/jpg' ? 'image/jpeg' : data.mediaType, data: data.data } };
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw new TranslationError(`${param}.image_url.url must be an http(s) URL or a base64 data: URL`, param);
}

/** OpenAI user content -> Anthropic content blocks. */
function userBlocks(content: unknown, param: string): Json[] {
  if (typeof content === 'string') return content.length > 0 ? [{ type: 'text', text: content }] : [];
  const out: Json[] = [];
  asArray(content).forEach((p, j) => {
    const pp = `${param}[${j}]`;
    if (!isObj(p)) throw new TranslationError(`${pp} must be an object`, pp);
    if (p.type === 'text') {
      if (typeof p.text === 'string' && p.text.length > 0) out.push({ type: 'text', text: p.text });
    } else if (p.type === 'image_url') out.push(imageBlock(p, pp));
    else if (p.type === 'file' && isObj(p.file) && typeof p.file.file_data === 'string') {
      const d = parseDataUrl(p.file.file_data);
      if (!d || d.mediaType !== 'application/pdf') throw new TranslationError(`${pp}.file.file_data must be a base64 PDF data: URL`, pp);
      out.push({ type: 'document', source: { type: 'base64', media_type: d.mediaType, data: d.data } });
    } else throw new TranslationError(`${pp}: content part type ${JSON.stringify(p.type)} is not supported by this provider`, pp);
  });
  return out;
}

interface Turn {
  role: 'user' | 'assistant';
  content: Json[];
}

function pushTurn(turns: Turn[], role: 'user' | 'assistant', blocks: Json[]): void {
  if (blocks.length === 0) return;
  const last = turns[turns.length - 1];
  if (last && last.role === role) {
    // Tool results must open the user turn that answers the tool calls.
    if (role === 'user' && blocks[0]!.type === 'tool_result' && last.content.some((b) => b.type !== 'tool_result')) {
      const results = last.content.filter((b) => b.type === 'tool_result');
      const rest = last.content.filter((b) => b.type !== 'tool_result');
      last.content = [...results, ...blocks, ...rest];
    } else last.content.push(...blocks);
  } else turns.push({ role, content: blocks });
}

function toolResultContent(content: unknown): string | Json[] {
  if (typeof content === 'string') return content;
  const blocks: Json[] = [];
  for (const p of asArray(content)) {
    if (isObj(p) && p.type === 'text' && typeof p.text === 'string') blocks.push({ type: 'text', text: p.text });
  }
  return blocks;
}

function toolChoice(choice: unknown, parallel: unknown): Json | undefined {
  let out: Json | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice === 'none') out = { type: 'none' };
  else if (isObj(choice) && isObj(choice.function) && typeof choice.function.name === 'string') out = { type: 'tool', name: choice.function.name };
  if (parallel === false) {
    out ??= { type: 'auto' };
    if (out.type !== 'none') out.disable_parallel_tool_use = true;
  }
  return out;
}

export function anthropicRequest(body: Json, model: string, stream: boolean): ProviderRequest {
  const messages = asArray(body.messages);
  const system: string[] = [];
  const turns: Turn[] = [];
  messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (!isObj(m)) throw new TranslationError(`${param} must be an object`, param);
    switch (m.role) {
      case 'system':
      case 'developer': {
        const t = textOf(m.content);
        if (t.length > 0) system.push(t);
        break;
      }
      case 'user':
        pushTurn(turns, 'user', userBlocks(m.content, `${param}.content`));
        break;
      case 'assistant': {
        const blocks: Json[] = [];
        const t = textOf(m.content);
        // Anthropic rejects empty text blocks; an assistant turn with only tool calls has none.
        if (t.length > 0) blocks.push({ type: 'text', text: t });
        asArray(m.tool_calls).forEach((tc, j) => {
          const tp = `${param}.tool_calls[${j}]`;
          if (!isObj(tc) || !isObj(tc.function) || typeof tc.function.name !== 'string')
            throw new TranslationError(`${tp}.function.name is required`, tp);
          blocks.push({
            type: 'tool_use',
            id: typeof tc.id === 'string' ? tc.id : randomId('toolu_'),
            name: tc.function.name,
            input: parseArguments(tc.function.arguments, `${tp}.function.arguments`),
          });
        });
        pushTurn(turns, 'assistant', blocks);
        break;
      }
      case 'tool': {
        if (typeof m.tool_call_id !== 'string') throw new TranslationError(`${param}.tool_call_id is required`, `${param}.tool_call_id`);
        pushTurn(turns, 'user', [{ type: 'tool_result', tool_use_id: m.tool_call_id, content: toolResultContent(m.content) }]);
        break;
      }
      default:
        throw new TranslationError(`${param}.role ${JSON.stringify(m.role)} is not supported by this provider`, `${param}.role`);
    }
  });

  const n = body.n;
  if (typeof n === 'number' && n !== 1) throw new TranslationError('n other than 1 is not supported by this provider', 'n');

  const out: Json = {
    model,
    max_tokens: maxTokensOf(body) ?? ANTHROPIC_DEFAULT_MAX_TOKENS,
    messages: turns,
  };
  if (system.length > 0) out.system = system.join('\n\n');
  const stops = stopList(body.stop);
  if (stops) out.stop_sequences = stops;
  if (typeof body.temperature === 'number') out.temperature = body.temperature;
  if (typeof body.top_p === 'number') out.top_p = body.top_p;
  if (typeof body.top_k === 'number') out.top_k = body.top_k;
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  const tools = asArray(body.tools);
  if (tools.length > 0) {
    out.tools = tools.map((t, i) => {
      if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string')
        throw new TranslationError(`tools[${i}] must be a function tool with a name`, `tools[${i}]`);
      const tool: Json = { name: t.function.name, input_schema: isObj(t.function.parameters) ? t.function.parameters : { type: 'object', properties: {} } };
      if (typeof t.function.description === 'string') tool.description = t.function.description;
      return tool;
    });
  }
  const tc = toolChoice(body.tool_choice, body.parallel_tool_calls);
  // Anthropic refuses tool_choice without tools; with none there is nothing to choose.
  if (tc && tools.length > 0) out.tool_choice = tc;
  if (stream) out.stream = true;
  return { path: '/v1/messages', body: out, headers: { 'anthropic-version': ANTHROPIC_VERSION }, stream };
}

// ---- responses ----

export function anthropicUsage(u: unknown): Usage | undefined {
  if (!isObj(u)) return undefined;
  const cacheRead = count(u.cache_read_input_tokens);
  const input = count(u.input_tokens) + cacheRead + count(u.cache_creation_input_tokens);
  const output = count(u.output_tokens);
  const usage: Usage = { input, output, total: input + output };
  if (cacheRead > 0) usage.cachedInput = cacheRead;
  return usage;
}

export function anthropicResponse(body: Json, model: string): Json {
  let text = '';
  let sawText = false;
  const toolCalls: Json[] = [];
  for (const b of asArray(body.content)) {
    if (!isObj(b)) continue;
    if (b.type === 'text' && typeof b.text === 'string') {
      text += b.text;
      sawText = true;
    } else if (b.type === 'tool_use') {
      toolCalls.push({
        id: str(b.id) ?? randomId('toolu_'),
        type: 'function',
        function: { name: str(b.name) ?? '', arguments: JSON.stringify(isObj(b.input) ? b.input : {}) },
      });
    }
    // thinking / redacted_thinking / server tool blocks have no OpenAI chat equivalent.
  }
  const message: Json = { role: 'assistant', content: sawText ? text : null, refusal: null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  const out: Json = {
    id: str(body.id) ?? randomId('msg_'),
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: anthropicFinishReason(body.stop_reason) }],
  };
  const u = anthropicUsage(body.usage);
  if (u) out.usage = openAIUsage(u);
  return out;
}

export function anthropicError(status: number, body: Buffer): { status: number; body: OpenAIErrorBody } {
  const j = parseJson(body.toString('utf8'));
  if (isObj(j) && isObj(j.error)) {
    const message = str(j.error.message) ?? `upstream error ${status}`;
    return mapError(status, str(j.error.type), message);
  }
  return mapError(status, undefined, `upstream error ${status}: ${excerpt(body)}`);
}

// ---- stream ----

class AnthropicStreamDecoder implements StreamDecoder {
  private readonly sse = new SseParser();
  private readonly w: ChunkWriter;
  private started = false;
  /** Anthropic block index -> OpenAI tool_calls index. */
  private readonly toolIndex = new Map<number, number>();
  private tools = 0;
  private finished = false;
  private stopped = false;
  private failed = false;
  private input = 0;
  private cacheRead = 0;
  private cacheCreate = 0;
  private output = 0;
  private sawUsage = false;

  constructor(opts: { id: string; model: string; created: number; includeUsage: boolean }) {
    this.w = new ChunkWriter(opts);
  }

  get usage(): Usage | undefined {
    if (!this.sawUsage) return undefined;
    const input = this.input + this.cacheRead + this.cacheCreate;
    const u: Usage = { input, output: this.output, total: input + this.output };
    if (this.cacheRead > 0) u.cachedInput = this.cacheRead;
    return u;
  }

  push(bytes: Buffer): Json[] {
    const out: Json[] = [];
    if (this.failed || this.stopped) return out;
    const events = this.sse.push(bytes);
    if (this.sse.overlong > 0) {
      this.failed = true;
      out.push(streamError('upstream sent a stream line over the size limit', 'server_error', 'bad_upstream_event'));
      return out;
    }
    for (const ev of events) this.onEvent(ev.event, ev.data, out);
    return out;
  }

  end(): Json[] {
    const out: Json[] = [];
    for (const ev of this.sse.end()) this.onEvent(ev.event, ev.data, out);
    if (this.failed || this.stopped) return out;
    if (!this.finished) {
      // The connection closed before message_delta: the answer is cut off, and
      // a client must not take it for a complete one.
      this.failed = true;
      out.push(streamError('upstream stream ended before the message was complete', 'server_error', 'stream_truncated'));
      return out;
    }
    this.stopped = true;
    out.push(...this.w.usage(this.usage));
    return out;
  }

  private takeUsage(u: unknown): void {
    if (!isObj(u)) return;
    // Every counter Anthropic sends is a running total: overwrite, never add
    // (message_start's output_tokens is already inside message_delta's).
    if (typeof u.input_tokens === 'number') this.input = count(u.input_tokens);
    if (typeof u.cache_read_input_tokens === 'number') this.cacheRead = count(u.cache_read_input_tokens);
    if (typeof u.cache_creation_input_tokens === 'number') this.cacheCreate = count(u.cache_creation_input_tokens);
    if (typeof u.output_tokens === 'number') this.output = count(u.output_tokens);
    this.sawUsage = true;
  }

  private start(out: Json[]): void {
    if (this.started) return;
    this.started = true;
    out.push(this.w.choice({ role: 'assistant', content: '' }));
  }

  private onEvent(name: string | undefined, data: string, out: Json[]): void {
    if (this.failed || this.stopped) return;
    const ev = parseJson(data);
    if (!isObj(ev)) {
      if (name === 'ping') return;
      this.failed = true;
      out.push(streamError('upstream sent an unreadable stream event', 'server_error', 'bad_upstream_event'));
      return;
    }
    const type = str(ev.type) ?? name;
    switch (type) {
      case 'message_start': {
        if (isObj(ev.message)) this.takeUsage(ev.message.usage);
        this.start(out);
        return;
      }
      case 'content_block_start': {
        this.start(out);
        const b = ev.content_block;
        const idx = typeof ev.index === 'number' ? ev.index : -1;
        if (!isObj(b)) return;
        if (b.type === 'text' && typeof b.text === 'string' && b.text.length > 0) out.push(this.w.choice({ content: b.text }));
        else if (b.type === 'tool_use') {
          const k = this.tools++;
          this.toolIndex.set(idx, k);
          // A block may arrive with its input already whole (no input_json_delta follows).
          const whole = isObj(b.input) && Object.keys(b.input).length > 0 ? JSON.stringify(b.input) : '';
          out.push(
            this.w.choice({
              tool_calls: [{ index: k, id: str(b.id) ?? randomId('toolu_'), type: 'function', function: { name: str(b.name) ?? '', arguments: whole } }],
            }),
          );
        }
        return;
      }
      case 'content_block_delta': {
        this.start(out);
        const d = ev.delta;
        if (!isObj(d)) return;
        if (d.type === 'text_delta' && typeof d.text === 'string') {
          if (d.text.length > 0) out.push(this.w.choice({ content: d.text }));
        } else if (d.type === 'input_json_delta' && typeof d.partial_json === 'string') {
          const k = this.toolIndex.get(typeof ev.index === 'number' ? ev.index : -1);
          if (k !== undefined && d.partial_json.length > 0) out.push(this.w.choice({ tool_calls: [{ index: k, function: { arguments: d.partial_json } }] }));
        }
        // thinking_delta, signature_delta, citations_delta: no OpenAI chat field.
        return;
      }
      case 'message_delta': {
        this.start(out);
        this.takeUsage(ev.usage);
        const d = isObj(ev.delta) ? ev.delta : {};
        if (!this.finished && d.stop_reason !== undefined && d.stop_reason !== null) {
          this.finished = true;
          out.push(this.w.choice({}, anthropicFinishReason(d.stop_reason)));
        }
        return;
      }
      case 'message_stop': {
        if (!this.finished) {
          this.finished = true;
          this.start(out);
          out.push(this.w.choice({}, 'stop'));
        }
        this.stopped = true;
        out.push(...this.w.usage(this.usage));
        return;
      }
      case 'error': {
        this.failed = true;
        const e = isObj(ev.error) ? ev.error : {};
        const mapped = mapError(200, str(e.type), str(e.message) ?? 'upstream stream error');
        out.push({ error: mapped.body.error });
        return;
      }
      default:
        // ping, content_block_stop, and event types added later.
        return;
    }
  }
}

export const anthropicTranslator: ChatTranslator = {
  request: anthropicRequest,
  response: anthropicResponse,
  stream: (opts) => new AnthropicStreamDecoder(opts),
  error: anthropicError,
  usage: (body) => anthropicUsage(body.usage),
  authHeaders: (apiKey) => ({ 'x-api-key': apiKey, 'anthropic-version': ANTHROPIC_VERSION }),
};
