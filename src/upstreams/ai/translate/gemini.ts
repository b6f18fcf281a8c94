// OpenAI chat clients in front of Google Gemini's native API
// (generativelanguage v1beta: `models/{model}:generateContent`, and
// `:streamGenerateContent?alt=sse` for streams).
// Gemini has no tool-call ids: a functionResponse names the function instead.
// Responses get ids that are stable for the same call (hash of position, name
// and arguments), and tool results are mapped back to a name through the
// assistant turns the client sends back (their tool_calls carry id and name).
// Thinking models sign their function calls (a part's `thoughtSignature`) and
// want the signature back with that call in the next turn; an OpenAI client
// keeps only the tool call id, so the signature travels inside it
// (`<id>__thought__<base64url signature>`) and is restored from there.
// A stream is a series of whole GenerateContentResponse frames with no [DONE];
// function calls arrive whole, and usageMetadata is a running total.
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
  stableId,
  stopList,
  str,
  streamError,
  textOf,
  toolNamesById,
} from './common.js';
import type { ChatTranslator, Json, OpenAIErrorBody, ProviderRequest, StreamDecoder, Usage } from './types.js';

const FINISH: Record<string, string> = {
  STOP: 'stop',
  FINISH_REASON_UNSPECIFIED: 'stop',
  MALFORMED_FUNCTION_CALL: 'stop',
  MAX_TOKENS: 'length',
  SAFETY: 'content_filter',
  RECITATION: 'content_filter',
  BLOCKLIST: 'content_filter',
  PROHIBITED_CONTENT: 'content_filter',
  SPII: 'content_filter',
  LANGUAGE: 'content_filter',
  IMAGE_SAFETY: 'content_filter',
  OTHER: 'content_filter',
};
/** Gemini finishReason -> one of OpenAI's reasons (never a lowercased Gemini name). A stop that made function calls is `tool_calls`. */
export function geminiFinishReason(reason: unknown, madeCalls: boolean): string {
  const r = (typeof reason === 'string' && FINISH[reason]) || 'stop';
  return r === 'stop' && madeCalls ? 'tool_calls' : r;
}

/** google.rpc status -> HTTP status, for errors whose code is missing or not HTTP. */
const RPC_STATUS: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  OUT_OF_RANGE: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  UNKNOWN: 500,
  DATA_LOSS: 500,
  NOT_IMPLEMENTED: 501,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

// ---- request ----

const SIGNATURE_MARK = '__thought__';

function withSignature(id: string, signature: unknown): string {
  if (typeof signature !== 'string' || signature.length === 0) return id;
  return id + SIGNATURE_MARK + Buffer.from(signature, 'base64').toString('base64url');
}

/** The thoughtSignature a tool call id carries, as Gemini's base64. */
function signatureOf(id: unknown): string | undefined {
  if (typeof id !== 'string') return undefined;
  const at = id.indexOf(SIGNATURE_MARK);
  if (at < 0) return undefined;
  const sig = id.slice(at + SIGNATURE_MARK.length);
  return sig.length > 0 ? Buffer.from(sig, 'base64url').toString('base64') : undefined;
}

/** JSON Schema -> the OpenAPI subset Gemini's `parameters` accepts: drop the keywords it rejects. Property names are left alone. */
function cleanSchema(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(cleanSchema);
  if (!isObj(s)) return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === '$schema' || k === 'additionalProperties' || k === 'strict' || k === '$id') continue;
    if (k === 'properties' && isObj(v)) {
      const props: Json = {};
      for (const [name, sub] of Object.entries(v)) props[name] = cleanSchema(sub);
      out[k] = props;
    } else out[k] = cleanSchema(v);
  }
  return out;
}

function userParts(content: unknown, param: string): Json[] {
  if (typeof content === 'string') return content.length > 0 ? [{ text: content }] : [];
  const out: Json[] = [];
  asArray(content).forEach((p, j) => {
    const pp = `${param}[${j}]`;
    if (!isObj(p)) throw new TranslationError(`${pp} must be an object`, pp);
    if (p.type === 'text') {
      if (typeof p.text === 'string' && p.text.length > 0) out.push({ text: p.text });
    } else if (p.type === 'image_url') {
      const url = imageUrlOf(p) ?? '';
      const d = parseDataUrl(url);
      // Gemini takes image bytes inline; it does not fetch arbitrary URLs.
      if (!d) throw new TranslationError(`${pp}.image_url.url must be a base64 data: URL for this provider`, pp);
      out.push({ inlineData: { mimeType: d.mediaType, data: d.data } });
    } else if (p.type === 'input_audio' && isObj(p.input_audio) && typeof p.input_audio.data === 'string') {
      out.push({ inlineData: { mimeType: `audio/${str(p.input_audio.format) ?? 'wav'}`, data: p.input_audio.data } });
    } else if (p.type === 'file' && isObj(p.file) && typeof p.file.file_data === 'string') {
      const d = parseDataUrl(p.file.file_data);
      if (!d) throw new TranslationError(`${pp}.file.file_data must be a base64 data: URL`, pp);
      out.push({ inlineData: { mimeType: d.mediaType, data: d.data } });
    } else throw new TranslationError(`${pp}: content part type ${JSON.stringify(p.type)} is not supported by this provider`, pp);
  });
  return out;
}

/** A tool's answer -> functionResponse.response (an object, as Gemini requires). */
function responseObject(content: unknown): Json {
  const text = textOf(content);
  const v = parseJson(text);
  return isObj(v) ? v : { content: text };
}

interface Content {
  role: 'user' | 'model';
  parts: Json[];
}

function pushContent(contents: Content[], role: 'user' | 'model', parts: Json[]): void {
  if (parts.length === 0) return;
  const last = contents[contents.length - 1];
  // Gemini wants turns to alternate, and all answers to one turn's function calls in one turn.
  if (last && last.role === role) last.parts.push(...parts);
  else contents.push({ role, parts });
}

function modelPath(model: string): string {
  // The model comes from the client (after mapping). Encoding keeps `/`, `?`
  // and `..` in it from reaching another path or query of the provider.
  const name = model.startsWith('models/') ? model.slice('models/'.length) : model;
  return `/v1beta/models/${encodeURIComponent(name)}`;
}

export function geminiRequest(body: Json, model: string, stream: boolean): ProviderRequest {
  const messages = asArray(body.messages);
  const names = toolNamesById(messages);
  const system: string[] = [];
  const contents: Content[] = [];
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
        pushContent(contents, 'user', userParts(m.content, `${param}.content`));
        break;
      case 'assistant': {
        const parts: Json[] = [];
        const t = textOf(m.content);
        if (t.length > 0) parts.push({ text: t });
        asArray(m.tool_calls).forEach((tc, j) => {
          const tp = `${param}.tool_calls[${j}]`;
          if (!isObj(tc) || !isObj(tc.function) || typeof tc.function.name !== 'string') throw new TranslationError(`${tp}.function.name is required`, tp);
          const part: Json = { functionCall: { name: tc.function.name, args: parseArguments(tc.function.arguments, `${tp}.function.arguments`) } };
          const sig = signatureOf(tc.id);
          if (sig !== undefined) part.thoughtSignature = sig;
          parts.push(part);
        });
        pushContent(contents, 'model', parts);
        break;
      }
      case 'tool': {
        const id = str(m.tool_call_id);
        const name = (id !== undefined ? names.get(id) : undefined) ?? str(m.name);
        if (name === undefined)
          throw new TranslationError(`${param}.tool_call_id does not match a tool call of an earlier assistant message`, `${param}.tool_call_id`);
        pushContent(contents, 'user', [{ functionResponse: { name, response: responseObject(m.content) } }]);
        break;
      }
      default:
        throw new TranslationError(`${param}.role ${JSON.stringify(m.role)} is not supported by this provider`, `${param}.role`);
    }
  });

  const out: Json = { contents };
  if (system.length > 0) out.systemInstruction = { parts: [{ text: system.join('\n\n') }] };
  const gc: Json = {};
  if (typeof body.temperature === 'number') gc.temperature = body.temperature;
  if (typeof body.top_p === 'number') gc.topP = body.top_p;
  if (typeof body.top_k === 'number') gc.topK = body.top_k;
  const max = maxTokensOf(body);
  if (max !== undefined) gc.maxOutputTokens = max;
  const stops = stopList(body.stop);
  if (stops) gc.stopSequences = stops;
  if (typeof body.n === 'number') gc.candidateCount = body.n;
  if (typeof body.seed === 'number') gc.seed = body.seed;
  if (typeof body.presence_penalty === 'number') gc.presencePenalty = body.presence_penalty;
  if (typeof body.frequency_penalty === 'number') gc.frequencyPenalty = body.frequency_penalty;
  const rf = body.response_format;
  if (isObj(rf) && (rf.type === 'json_object' || rf.type === 'json_schema')) {
    gc.responseMimeType = 'application/json';
    if (rf.type === 'json_schema' && isObj(rf.json_schema) && isObj(rf.json_schema.schema)) gc.responseSchema = cleanSchema(rf.json_schema.schema);
  }
  if (Object.keys(gc).length > 0) out.generationConfig = gc;

  const tools = asArray(body.tools);
  if (tools.length > 0) {
    const decls = tools.map((t, i) => {
      if (!isObj(t) || t.type !== 'function' || !isObj(t.function) || typeof t.function.name !== 'string')
        throw new TranslationError(`tools[${i}] must be a function tool with a name`, `tools[${i}]`);
      const d: Json = { name: t.function.name };
      if (typeof t.function.description === 'string') d.description = t.function.description;
      if (isObj(t.function.parameters)) d.parameters = cleanSchema(t.function.parameters);
      return d;
    });
    out.tools = [{ functionDeclarations: decls }];
  }
  const tc = body.tool_choice;
  let mode: Json | undefined;
  if (tc === 'none') mode = { mode: 'NONE' };
  else if (tc === 'auto') mode = { mode: 'AUTO' };
  else if (tc === 'required') mode = { mode: 'ANY' };
  else if (isObj(tc) && isObj(tc.function) && typeof tc.function.name === 'string') mode = { mode: 'ANY', allowedFunctionNames: [tc.function.name] };
  if (mode) out.toolConfig = { functionCallingConfig: mode };

  const path = modelPath(model) + (stream ? ':streamGenerateContent?alt=sse' : ':generateContent');
  return { path, body: out, stream };
}

// ---- responses ----

export function geminiUsage(meta: unknown): Usage | undefined {
  if (!isObj(meta)) return undefined;
  const input = count(meta.promptTokenCount) + count(meta.toolUsePromptTokenCount);
  // OpenAI's completion_tokens include reasoning; Gemini counts thoughts apart.
  const output = count(meta.candidatesTokenCount) + count(meta.thoughtsTokenCount);
  const total = count(meta.totalTokenCount) || input + output;
  const u: Usage = { input, output, total };
  const cached = count(meta.cachedContentTokenCount);
  if (cached > 0) u.cachedInput = cached;
  return u;
}

interface PartsOut {
  text: string;
  sawText: boolean;
  calls: Json[];
}

/** Text and function calls of one candidate's parts. Thought parts (thought: true) are the model's reasoning and are not answer text. */
function readParts(parts: unknown[], callId: (name: string, args: string, k: number) => string, firstCall: number): PartsOut {
  const out: PartsOut = { text: '', sawText: false, calls: [] };
  for (const p of parts) {
    if (!isObj(p) || p.thought === true) continue;
    if (typeof p.text === 'string') {
      out.text += p.text;
      out.sawText = true;
    } else if (isObj(p.functionCall)) {
      const name = str(p.functionCall.name) ?? '';
      const args = JSON.stringify(isObj(p.functionCall.args) ? p.functionCall.args : {});
      const k = firstCall + out.calls.length;
      const id = withSignature(str(p.functionCall.id) ?? callId(name, args, k), p.thoughtSignature);
      out.calls.push({ id, type: 'function', function: { name, arguments: args } });
    }
  }
  return out;
}

function responseIdOf(body: Json): string {
  const rid = str(body.responseId);
  return rid !== undefined && rid.length > 0 ? `chatcmpl-${rid}` : randomId('chatcmpl-');
}

export function geminiResponse(body: Json, model: string): Json {
  const id = responseIdOf(body);
  const choices: Json[] = [];
  asArray(body.candidates).forEach((c, i) => {
    if (!isObj(c)) return;
    const index = typeof c.index === 'number' ? c.index : i;
    const parts = isObj(c.content) ? asArray(c.content.parts) : [];
    const r = readParts(parts, (name, args, k) => stableId('call_', id, String(index), String(k), name, args), 0);
    const message: Json = { role: 'assistant', content: r.sawText ? r.text : null, refusal: null };
    if (r.calls.length > 0) message.tool_calls = r.calls;
    choices.push({ index, message, logprobs: null, finish_reason: geminiFinishReason(c.finishReason, r.calls.length > 0) });
  });
  if (choices.length === 0) {
    // The prompt itself was blocked (promptFeedback.blockReason): no candidates at all.
    choices.push({ index: 0, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'content_filter' });
  }
  const out: Json = { id, object: 'chat.completion', created: nowSeconds(), model, choices };
  const u = geminiUsage(body.usageMetadata);
  if (u) out.usage = openAIUsage(u);
  return out;
}

function mapGeminiError(status: number, j: unknown): { status: number; body: OpenAIErrorBody } | undefined {
  // Errors come as {error:{...}}, and from some endpoints as [{error:{...}}].
  const obj = Array.isArray(j) ? j.find(isObj) : j;
  if (!isObj(obj) || !isObj(obj.error)) return undefined;
  const e = obj.error;
  const rpc = str(e.status);
  let s = status >= 400 && status <= 599 ? status : (typeof e.code === 'number' && e.code >= 400 && e.code <= 599 ? e.code : undefined) ?? (rpc ? RPC_STATUS[rpc] : undefined) ?? 502;
  const message = str(e.message) ?? `upstream error ${s}`;
  // A bad key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID; clients know it as 401.
  const reasons = asArray(e.details).map((d) => (isObj(d) ? str(d.reason) : undefined));
  if (reasons.includes('API_KEY_INVALID')) s = 401;
  return { status: s, body: openAIErrorFor(s, message) };
}

export function geminiError(status: number, body: Buffer): { status: number; body: OpenAIErrorBody } {
  const mapped = mapGeminiError(status, parseJson(body.toString('utf8')));
  if (mapped) return mapped;
  const s = status >= 400 && status <= 599 ? status : 502;
  return { status: s, body: openAIErrorFor(s, `upstream error ${status}: ${excerpt(body)}`) };
}

// ---- stream ----

interface CandidateState {
  started: boolean;
  calls: number;
  finished: boolean;
}

class GeminiStreamDecoder implements StreamDecoder {
  private readonly sse = new SseParser();
  private readonly w: ChunkWriter;
  private readonly id: string;
  private readonly cands = new Map<number, CandidateState>();
  private lastUsage: Usage | undefined;
  private failed = false;
  private ended = false;

  constructor(opts: { id: string; model: string; created: number; includeUsage: boolean }) {
    this.w = new ChunkWriter(opts);
    this.id = opts.id;
  }

  get usage(): Usage | undefined {
    return this.lastUsage;
  }

  push(bytes: Buffer): Json[] {
    const out: Json[] = [];
    if (this.failed || this.ended) return out;
    const events = this.sse.push(bytes);
    if (this.sse.overlong > 0) {
      this.failed = true;
      out.push(streamError('upstream sent a stream line over the size limit', 'server_error', 'bad_upstream_event'));
      return out;
    }
    for (const ev of events) this.onFrame(ev.data, out);
    return out;
  }

  end(): Json[] {
    const out: Json[] = [];
    for (const ev of this.sse.end()) this.onFrame(ev.data, out);
    if (this.failed || this.ended) return out;
    this.ended = true;
    const finished = [...this.cands.values()].some((c) => c.finished);
    if (!finished) {
      // Gemini's last frame carries finishReason; without it the answer was cut off.
      this.failed = true;
      out.push(streamError('upstream stream ended before the answer was complete', 'server_error', 'stream_truncated'));
      return out;
    }
    out.push(...this.w.usage(this.lastUsage));
    return out;
  }

  private onFrame(data: string, out: Json[]): void {
    if (this.failed || this.ended) return;
    const frame = parseJson(data);
    if (!isObj(frame)) {
      this.failed = true;
      out.push(streamError('upstream sent an unreadable stream frame', 'server_error', 'bad_upstream_event'));
      return;
    }
    if (isObj(frame.error)) {
      this.failed = true;
      const m = mapGeminiError(0, frame);
      out.push(m ? { error: m.body.error } : streamError('upstream stream error', 'server_error'));
      return;
    }
    // usageMetadata is a running total in each frame: the last one wins.
    const u = geminiUsage(frame.usageMetadata);
    if (u) this.lastUsage = u;
    const candidates = asArray(frame.candidates);
    if (candidates.length === 0 && isObj(frame.promptFeedback) && frame.promptFeedback.blockReason !== undefined) {
      const st = this.state(0);
      if (!st.started) {
        st.started = true;
        out.push(this.w.choice({ role: 'assistant', content: '' }));
      }
      st.finished = true;
      out.push(this.w.choice({}, 'content_filter'));
      return;
    }
    candidates.forEach((c, i) => {
      if (!isObj(c)) return;
      const index = typeof c.index === 'number' ? c.index : i;
      const st = this.state(index);
      if (st.finished) return;
      const parts = isObj(c.content) ? asArray(c.content.parts) : [];
      const r = readParts(parts, (name, args, k) => stableId('call_', this.id, String(index), String(k), name, args), st.calls);
      if (!st.started) {
        st.started = true;
        out.push(this.w.choice({ role: 'assistant', content: r.text }, null, index));
      } else if (r.text.length > 0) out.push(this.w.choice({ content: r.text }, null, index));
      if (r.calls.length > 0) {
        const tcs = r.calls.map((call, j) => ({ index: st.calls + j, ...call }));
        st.calls += r.calls.length;
        out.push(this.w.choice({ tool_calls: tcs }, null, index));
      }
      if (c.finishReason !== undefined && c.finishReason !== null) {
        st.finished = true;
        out.push(this.w.choice({}, geminiFinishReason(c.finishReason, st.calls > 0), index));
      }
    });
  }

  private state(index: number): CandidateState {
    let st = this.cands.get(index);
    if (!st) {
      st = { started: false, calls: 0, finished: false };
      this.cands.set(index, st);
    }
    return st;
  }
}

export const geminiTranslator: ChatTranslator = {
  request: geminiRequest,
  response: geminiResponse,
  stream: (opts) => new GeminiStreamDecoder(opts),
  error: geminiError,
  usage: (body) => geminiUsage(body.usageMetadata),
  authHeaders: (apiKey) => ({ 'x-goog-api-key': apiKey }),
};
