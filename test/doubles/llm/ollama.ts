// A double of Ollama's HTTP API, both faces:
// - native POST /api/chat: streams by default (stream absent = true) as NDJSON
//   (`application/x-ndjson`, one JSON object per line), the last line
//   `done: true` with done_reason, prompt_eval_count, eval_count and durations;
//   `stream: false` gives one JSON object; tool calls arrive whole with object
//   arguments; errors are {"error": "<text>"} (404 for an unknown model), and a
//   failure mid-stream is an {"error": ...} line;
// - OpenAI-compatible POST /v1/chat/completions (SSE, data: [DONE], the usage
//   chunk only with stream_options.include_usage).
// Checks Ollama's Go decoder makes: tool-call arguments must be objects,
// images must be bare base64 (a data: URL prefix is "illegal base64 data").
// No auth. Model names starting with `missing` are unknown models.
import type http from 'node:http';
import { type BaseServer, type Json, type Received, lastUserText, pieces, sendJson, startBase, writeStream } from './scripted-base.js';

export type { Received } from './scripted-base.js';

export type OllamaReply =
  | {
      kind?: 'chat';
      text?: string;
      toolCalls?: Array<{ name: string; arguments: Json }>;
      doneReason?: string;
      usage?: { prompt: number; eval: number };
      pauseMs?: number;
    }
  | { kind: 'error'; status: number; message: string }
  | { kind: 'midStreamError'; text: string; message: string }
  | { kind: 'cut'; text: string };

export interface OllamaDouble {
  readonly port: number;
  /** Native API base (no /v1); the OpenAI-compatible base is baseUrl + '/v1'. */
  readonly baseUrl: string;
  readonly received: Received[];
  script: OllamaReply[];
  readonly closedEarly: number;
  chatCount(): number;
  stop(): Promise<void>;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function validateNative(body: Json | undefined): string | undefined {
  if (!body) return 'invalid request body';
  if (typeof body.model !== 'string' || body.model.length === 0) return 'model is required';
  if (!Array.isArray(body.messages)) return 'messages is required';
  for (const m of body.messages as Json[]) {
    if (!['system', 'user', 'assistant', 'tool'].includes(m.role)) return `invalid role: ${String(m.role)}`;
    if (m.content !== undefined && typeof m.content !== 'string') return 'json: cannot unmarshal array into Go struct field Message.messages.content of type string';
    for (const img of (m.images as unknown[]) ?? []) if (typeof img !== 'string' || !BASE64.test(img)) return 'illegal base64 data at input byte 4';
    for (const tc of (m.tool_calls as Json[]) ?? []) {
      const a = tc?.function?.arguments;
      if (typeof a !== 'object' || a === null || Array.isArray(a))
        return 'json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.arguments of type api.ToolCallFunctionArguments';
    }
  }
  if (body.options !== undefined && (typeof body.options !== 'object' || Array.isArray(body.options))) return 'options must be an object';
  if (body.options?.num_predict !== undefined && typeof body.options.num_predict !== 'number') return 'options.num_predict must be a number';
  return undefined;
}

function textOfMessage(m: Json): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content)) return (m.content as Json[]).filter((p) => p?.type === 'text').map((p) => String(p.text)).join('');
  return '';
}

export async function startOllamaDouble(): Promise<OllamaDouble> {
  const script: OllamaReply[] = [];
  let base!: BaseServer;
  const d: OllamaDouble = {
    get port() {
      return base.port;
    },
    get baseUrl() {
      return `http://127.0.0.1:${base.port}`;
    },
    get received() {
      return base.received;
    },
    get closedEarly() {
      return base.closedEarly;
    },
    script,
    chatCount: () => base.received.filter((r) => r.path === '/api/chat' || r.path === '/v1/chat/completions').length,
    stop: () => base.stop(),
  };
  base = await startBase(async (req, res, server) => {
    if (req.method === 'POST' && req.path === '/api/chat') {
      const problem = validateNative(req.body);
      if (problem) return sendJson(res, 400, { error: problem });
      const body = req.body!;
      if (String(body.model).startsWith('missing')) return sendJson(res, 404, { error: `model "${String(body.model)}" not found, try pulling it first` });
      const reply = d.script.shift() ?? { text: `echo: ${lastUserText(body.messages, textOfMessage)}` };
      return native(body, reply, res, server);
    }
    if (req.method === 'POST' && req.path === '/v1/chat/completions') {
      const body = req.body;
      if (!body || typeof body.model !== 'string') return sendJson(res, 400, { error: { message: 'model is required', type: 'invalid_request_error', param: null, code: null } });
      if (body.model.startsWith('missing'))
        return sendJson(res, 404, { error: { message: `model "${body.model}" not found, try pulling it first`, type: 'api_error', param: null, code: null } });
      const reply = d.script.shift() ?? { text: `echo: ${lastUserText(body.messages, textOfMessage)}` };
      return compat(body, reply, res, server);
    }
    return sendJson(res, 404, { error: `404 page not found` });
  });
  return d;
}

function usageOf(body: Json, reply: Extract<OllamaReply, { kind?: 'chat' }>): { prompt: number; eval: number } {
  return reply.usage ?? { prompt: Math.ceil(JSON.stringify(body.messages).length / 4), eval: Math.ceil((reply.text ?? '').length / 4) + 6 * (reply.toolCalls?.length ?? 0) + 1 };
}

async function native(body: Json, reply: OllamaReply, res: http.ServerResponse, server: BaseServer): Promise<void> {
  const model = body.model as string;
  const at = new Date().toISOString();
  if (reply.kind === 'error') return sendJson(res, reply.status, { error: reply.message });
  const stream = body.stream !== false;
  const line = (o: Json) => JSON.stringify(o) + '\n';
  if (reply.kind === 'midStreamError' || reply.kind === 'cut') {
    if (!stream) return sendJson(res, 500, { error: 'this scripted failure needs a stream request' });
    const out = pieces(reply.text).map((t) => line({ model, created_at: at, message: { role: 'assistant', content: t }, done: false }));
    if (reply.kind === 'midStreamError') out.push(line({ error: reply.message }));
    return writeStream(res, { contentType: 'application/x-ndjson', pieces: out, cut: reply.kind === 'cut' }, server);
  }
  const u = usageOf(body, reply);
  const calls = (reply.toolCalls ?? []).map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
  const doneReason = reply.doneReason ?? 'stop';
  const stats = { total_duration: 1200000, load_duration: 100000, prompt_eval_count: u.prompt, prompt_eval_duration: 300000, eval_count: u.eval, eval_duration: 800000 };
  if (!stream) {
    const message: Json = { role: 'assistant', content: reply.text ?? '' };
    if (calls.length > 0) message.tool_calls = calls;
    return sendJson(res, 200, { model, created_at: at, message, done_reason: doneReason, done: true, ...stats });
  }
  const out: Array<string | { pauseMs: number }> = [];
  for (const t of pieces(reply.text ?? '')) {
    if (reply.pauseMs) out.push({ pauseMs: reply.pauseMs });
    out.push(line({ model, created_at: at, message: { role: 'assistant', content: t }, done: false }));
  }
  if (calls.length > 0) out.push(line({ model, created_at: at, message: { role: 'assistant', content: '', tool_calls: calls }, done: false }));
  out.push(line({ model, created_at: at, message: { role: 'assistant', content: '' }, done_reason: doneReason, done: true, ...stats }));
  return writeStream(res, { contentType: 'application/x-ndjson', pieces: out }, server);
}

async function compat(body: Json, reply: OllamaReply, res: http.ServerResponse, server: BaseServer): Promise<void> {
  const model = body.model as string;
  const id = `chatcmpl-${Math.floor(Math.random() * 1000)}`;
  const created = Math.floor(Date.now() / 1000);
  if (reply.kind === 'error') return sendJson(res, reply.status, { error: { message: reply.message, type: 'api_error', param: null, code: null } });
  if (reply.kind === 'midStreamError' || reply.kind === 'cut') return sendJson(res, 500, { error: { message: 'scripted stream failures are native-only here', type: 'api_error', param: null, code: null } });
  const u = usageOf(body, reply);
  const usage = { prompt_tokens: u.prompt, completion_tokens: u.eval, total_tokens: u.prompt + u.eval };
  const toolCalls = (reply.toolCalls ?? []).map((c, i) => ({ id: `call_${i}${id.slice(-3)}`, index: i, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } }));
  const finish = toolCalls.length > 0 ? 'tool_calls' : reply.doneReason === 'length' ? 'length' : 'stop';
  if (body.stream !== true) {
    const message: Json = { role: 'assistant', content: reply.text ?? '' };
    if (toolCalls.length > 0) message.tool_calls = toolCalls.map(({ index: _i, ...rest }) => rest);
    return sendJson(res, 200, { id, object: 'chat.completion', created, model, system_fingerprint: 'fp_ollama', choices: [{ index: 0, message, finish_reason: finish }], usage });
  }
  const chunk = (delta: Json, fr: string | null): string => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_ollama', choices: [{ index: 0, delta, finish_reason: fr }] })}\n\n`;
  const out: string[] = [];
  const ps = pieces(reply.text ?? '');
  if (ps.length === 0) out.push(chunk({ role: 'assistant', content: '' }, null));
  for (const t of ps) out.push(chunk({ role: 'assistant', content: t }, null));
  if (toolCalls.length > 0) out.push(chunk({ role: 'assistant', content: '', tool_calls: toolCalls }, null));
  out.push(chunk({ role: 'assistant', content: '' }, finish));
  if (body.stream_options?.include_usage === true) out.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_ollama', choices: [], usage })}\n\n`);
  out.push('data: [DONE]\n\n');
  return writeStream(res, { contentType: 'text/event-stream', pieces: out }, server);
}
