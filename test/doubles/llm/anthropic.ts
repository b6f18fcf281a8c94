// A double of the Anthropic Messages API (POST /v1/messages), faithful to the
// wire the real API and @anthropic-ai/sdk use:
// - headers: a key required (401 authentication_error) as `x-api-key` or, as
//   @anthropic-ai/sdk 1.x sends it, `Authorization: Bearer`; anthropic-version
//   required (400), any version value accepted;
// - request checks the real API makes and a translator can get wrong:
//   max_tokens required, no `system` role inside messages, the first turn is
//   user, turns alternate, tool_result blocks answer a tool_use of the turn
//   before and come first in their user turn;
// - non-stream: a `message` object; stream: message_start (usage with
//   output_tokens 1), ping, content_block_start / *_delta / content_block_stop
//   per block (tool input as input_json_delta fragments, the first one empty),
//   message_delta with CUMULATIVE usage, message_stop;
// - errors in Anthropic's shape {type:"error", error:{type,message}, request_id},
//   529 overloaded_error, and `event: error` in the middle of a stream.
// Answers come from `script` (one entry per request, in order); with the
// script empty it echoes the last user text as "echo: <text>".
import type http from 'node:http';
import { type BaseServer, type Json, type Received, lastUserText, pieces, sendJson, startBase, writeStream } from './scripted-base.js';

export type { Received } from './scripted-base.js';

export type AnthropicReply =
  | {
      kind?: 'message';
      text?: string;
      thinking?: string;
      toolUses?: Array<{ name: string; input: Json; id?: string }>;
      stopReason?: string;
      /** Reported usage; by default derived from the sizes of request and answer. */
      usage?: { input: number; output: number; cacheRead?: number; cacheCreation?: number };
      /** Pause between stream events. */
      pauseMs?: number;
    }
  | { kind: 'error'; status: number; type: string; message?: string; headers?: Record<string, string> }
  /** 200 and a started stream, some text, then `event: error`. */
  | { kind: 'midStreamError'; text: string; type: string; message: string }
  /** 200 and a started stream, some text, then the connection is destroyed. */
  | { kind: 'cut'; text: string };

export interface AnthropicDouble {
  readonly port: number;
  /** What a user sets as the provider's baseUrl (no /v1: paths carry /v1/messages). */
  readonly baseUrl: string;
  readonly received: Received[];
  /** Answers for the next requests, in order. */
  script: AnthropicReply[];
  /** Valid keys (undefined: any non-empty key). */
  keys: string[] | undefined;
  readonly closedEarly: number;
  /** Requests to /v1/messages. */
  messageCount(): number;
  stop(): Promise<void>;
}

let seq = 0;
const nextId = (prefix: string) => `${prefix}${(++seq).toString(36).padStart(8, '0')}DOUBLE`;

function errorBody(type: string, message: string): Json {
  return { type: 'error', error: { type, message }, request_id: nextId('req_') };
}

function textOfMessage(m: Json): string {
  if (typeof m.content === 'string') return m.content;
  if (!Array.isArray(m.content)) return '';
  return (m.content as Json[]).filter((b) => b?.type === 'text').map((b) => String(b.text)).join('');
}

/** The checks the real API makes that a translating gateway could fail. Returns an error message or undefined. */
function validate(body: Json | undefined): string | undefined {
  if (!body) return 'request body must be JSON';
  if (typeof body.model !== 'string') return 'model: Field required';
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  const msgs = body.messages as Json[];
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    if (m.role !== 'user' && m.role !== 'assistant') return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    if (i === 0 && m.role !== 'user') return 'messages: first message must use the "user" role';
    if (i > 0 && msgs[i - 1]!.role === m.role) return 'messages: roles must alternate between "user" and "assistant"';
    const blocks = Array.isArray(m.content) ? (m.content as Json[]) : [];
    let seenOther = false;
    for (let j = 0; j < blocks.length; j++) {
      const b = blocks[j]!;
      if (b.type === 'text' && (typeof b.text !== 'string' || b.text.length === 0)) return `messages.${i}.content.${j}: text content blocks must be non-empty`;
      if (b.type === 'tool_use' && (typeof b.input !== 'object' || b.input === null || Array.isArray(b.input))) return `messages.${i}.content.${j}.tool_use.input: Input should be a valid dictionary`;
      if (b.type === 'tool_result') {
        if (m.role !== 'user') return `messages.${i}.content.${j}: tool_result blocks are only allowed in user messages`;
        if (seenOther) return `messages.${i}: tool_result blocks must come first in the content array`;
        const prev = msgs[i - 1];
        const ids = Array.isArray(prev?.content) ? (prev!.content as Json[]).filter((x) => x.type === 'tool_use').map((x) => x.id) : [];
        if (!ids.includes(b.tool_use_id)) return `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(b.tool_use_id)}`;
      } else seenOther = true;
    }
  }
  if (body.system !== undefined && typeof body.system !== 'string' && !Array.isArray(body.system)) return 'system: Input should be a valid string or list';
  return undefined;
}

export async function startAnthropicDouble(opts: { keys?: string[] } = {}): Promise<AnthropicDouble> {
  const script: AnthropicReply[] = [];
  let base!: BaseServer;
  const d: AnthropicDouble = {
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
    keys: opts.keys,
    messageCount: () => base.received.filter((r) => r.path === '/v1/messages').length,
    stop: () => base.stop(),
  };

  base = await startBase(async (req, res, server) => {
    if (req.method !== 'POST' || req.path !== '/v1/messages') return sendJson(res, 404, errorBody('not_found_error', `Not found: ${req.method} ${req.path}`));
    const key = req.headers['x-api-key'] ?? req.headers.authorization?.replace(/^Bearer /i, '');
    if (typeof key !== 'string' || key.length === 0) return sendJson(res, 401, errorBody('authentication_error', 'x-api-key header is required'));
    if (d.keys && !d.keys.includes(key)) return sendJson(res, 401, errorBody('authentication_error', 'invalid x-api-key'));
    if (typeof req.headers['anthropic-version'] !== 'string') return sendJson(res, 400, errorBody('invalid_request_error', 'anthropic-version: header is required'));
    const problem = validate(req.body);
    if (problem) return sendJson(res, 400, errorBody('invalid_request_error', problem));
    const body = req.body!;
    const reply: AnthropicReply = d.script.shift() ?? { text: `echo: ${lastUserText(body.messages, textOfMessage)}` };
    await answer(body, reply, res, server);
  });
  return d;
}

function usageFor(body: Json, reply: Extract<AnthropicReply, { kind?: 'message' }>): { input: number; output: number; cacheRead: number; cacheCreation: number } {
  if (reply.usage) return { cacheRead: 0, cacheCreation: 0, ...reply.usage };
  const input = Math.ceil(JSON.stringify(body.messages ?? []).length / 4) + Math.ceil(JSON.stringify(body.system ?? '').length / 4);
  const output = Math.ceil((reply.text ?? '').length / 4) + 12 * (reply.toolUses?.length ?? 0) + 1;
  return { input, output, cacheRead: 0, cacheCreation: 0 };
}

function frame(type: string, data: Json): string {
  return `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
}

async function answer(body: Json, reply: AnthropicReply, res: http.ServerResponse, server: BaseServer): Promise<void> {
  const id = nextId('msg_');
  const model = body.model as string;
  if (reply.kind === 'error') {
    const headers: Record<string, string> = { ...reply.headers };
    if (reply.status === 429 && !headers['retry-after']) headers['retry-after'] = '1';
    return sendJson(res, reply.status, errorBody(reply.type, reply.message ?? `double says ${reply.type}`), headers);
  }
  const startMsg = (input: number) => ({
    message: { id, type: 'message', role: 'assistant', content: [], model, stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } },
  });
  if (reply.kind === 'midStreamError' || reply.kind === 'cut') {
    if (body.stream !== true) return sendJson(res, 500, errorBody('api_error', 'this scripted failure needs a stream request'));
    const out: string[] = [
      frame('message_start', startMsg(10)),
      frame('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ...pieces(reply.text).map((t) => frame('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } })),
    ];
    if (reply.kind === 'midStreamError') out.push(frame('error', { error: { type: reply.type, message: reply.message } }));
    return writeStream(res, { contentType: 'text/event-stream; charset=utf-8', pieces: out, cut: reply.kind === 'cut' }, server);
  }

  const u = usageFor(body, reply);
  const toolUses = (reply.toolUses ?? []).map((t) => ({ id: t.id ?? nextId('toolu_'), name: t.name, input: t.input }));
  const stopReason = reply.stopReason ?? (toolUses.length > 0 ? 'tool_use' : 'end_turn');
  const usage = { input_tokens: u.input, output_tokens: u.output, cache_creation_input_tokens: u.cacheCreation, cache_read_input_tokens: u.cacheRead };

  if (body.stream !== true) {
    const content: Json[] = [];
    if (reply.thinking) content.push({ type: 'thinking', thinking: reply.thinking, signature: 'sig-double' });
    if (reply.text !== undefined && reply.text.length > 0) content.push({ type: 'text', text: reply.text });
    for (const t of toolUses) content.push({ type: 'tool_use', ...t });
    return sendJson(res, 200, { id, type: 'message', role: 'assistant', model, content, stop_reason: stopReason, stop_sequence: null, usage });
  }

  const out: Array<string | { pauseMs: number }> = [];
  const pause = () => {
    if (reply.pauseMs) out.push({ pauseMs: reply.pauseMs });
  };
  out.push(frame('message_start', { message: { ...startMsg(u.input).message, usage: { ...usage, output_tokens: 1 } } }));
  out.push(frame('ping', {}));
  let index = 0;
  if (reply.thinking) {
    out.push(frame('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } }));
    out.push(frame('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: reply.thinking } }));
    out.push(frame('content_block_delta', { index, delta: { type: 'signature_delta', signature: 'sig-double' } }));
    out.push(frame('content_block_stop', { index }));
    index++;
  }
  if (reply.text !== undefined && reply.text.length > 0) {
    out.push(frame('content_block_start', { index, content_block: { type: 'text', text: '' } }));
    for (const t of pieces(reply.text)) {
      pause();
      out.push(frame('content_block_delta', { index, delta: { type: 'text_delta', text: t } }));
    }
    out.push(frame('content_block_stop', { index }));
    index++;
  }
  for (const t of toolUses) {
    out.push(frame('content_block_start', { index, content_block: { type: 'tool_use', id: t.id, name: t.name, input: {} } }));
    out.push(frame('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
    for (const p of pieces(JSON.stringify(t.input), 3)) {
      pause();
      out.push(frame('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
    }
    out.push(frame('content_block_stop', { index }));
    out.push(frame('ping', {}));
    index++;
  }
  // Cumulative: the whole answer's output tokens, not the ones since message_start.
  out.push(frame('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: u.output } }));
  out.push(frame('message_stop', {}));
  return writeStream(res, { contentType: 'text/event-stream; charset=utf-8', pieces: out }, server);
}
