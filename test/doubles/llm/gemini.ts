// A double of Google's Gemini API (generativelanguage v1beta), faithful to
// the wire the gateway's translator must handle:
// - POST /v1beta/models/{model}:generateContent and
//   /v1beta/models/{model}:streamGenerateContent?alt=sse;
// - key in `x-goog-api-key` or `?key=`: none -> 403 PERMISSION_DENIED, a wrong
//   one -> 400 INVALID_ARGUMENT with reason API_KEY_INVALID (as Google does);
// - the strict request parsing Google does: unknown fields are rejected
//   ("Invalid JSON payload received. Unknown name ..."), roles are user|model,
//   functionCall only in model turns, functionResponse only in user turns and
//   as many as the function calls of the turn before;
// - streams: every `data:` is a whole GenerateContentResponse, frames end in
//   CRLF CRLF, no [DONE]; function calls arrive whole; usageMetadata on every
//   frame as a running total; the last frame has finishReason;
// - errors {error:{code,message,status}} (also mid-stream).
// Model names starting with `missing` answer 404 NOT_FOUND. Models starting
// with `thinking` sign their first function call of a turn (thoughtSignature)
// and, as Gemini 3 does, refuse a later request whose model turn with function
// calls does not carry that signature back.
import type http from 'node:http';
import { type BaseServer, type Json, type Received, lastUserText, pieces, sendJson, startBase, writeStream } from './scripted-base.js';

export type { Received } from './scripted-base.js';

export type GeminiReply =
  | {
      kind?: 'content';
      text?: string;
      functionCalls?: Array<{ name: string; args: Json }>;
      finishReason?: string;
      usage?: { prompt: number; candidates: number; thoughts?: number; cached?: number };
      pauseMs?: number;
    }
  | { kind: 'error'; status: number; rpcStatus: string; message?: string; reason?: string }
  /** The prompt is blocked: no candidates, promptFeedback.blockReason. */
  | { kind: 'blocked' }
  | { kind: 'midStreamError'; text: string; status: number; rpcStatus: string; message: string }
  | { kind: 'cut'; text: string };

export interface GeminiDouble {
  readonly port: number;
  /** https://generativelanguage.googleapis.com stands here: no /v1beta (paths carry it). */
  readonly baseUrl: string;
  readonly received: Received[];
  script: GeminiReply[];
  keys: string[] | undefined;
  readonly closedEarly: number;
  generateCount(): number;
  stop(): Promise<void>;
}

const TOP_LEVEL = new Set(['contents', 'systemInstruction', 'system_instruction', 'generationConfig', 'generation_config', 'tools', 'toolConfig', 'tool_config', 'safetySettings', 'safety_settings', 'cachedContent', 'cached_content', 'labels']);
const GEN_CONFIG = new Set(['temperature', 'topP', 'topK', 'maxOutputTokens', 'stopSequences', 'candidateCount', 'responseMimeType', 'responseSchema', 'responseJsonSchema', 'seed', 'presencePenalty', 'frequencyPenalty', 'thinkingConfig', 'responseLogprobs', 'logprobs', 'responseModalities']);

function gErr(code: number, status: string, message: string, reason?: string): Json {
  const e: Json = { code, message, status };
  if (reason) e.details = [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'googleapis.com' }];
  return { error: e };
}

function validate(body: Json | undefined, model: string, signatures: Set<string>): string | undefined {
  if (!body) return 'Invalid JSON payload received.';
  for (const k of Object.keys(body)) if (!TOP_LEVEL.has(k)) return `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`;
  const gc = body.generationConfig ?? body.generation_config;
  if (gc) for (const k of Object.keys(gc)) if (!GEN_CONFIG.has(k)) return `Invalid JSON payload received. Unknown name "${k}" at 'generation_config': Cannot find field.`;
  if (!Array.isArray(body.contents) || body.contents.length === 0) return '* GenerateContentRequest.contents: contents is not specified';
  const contents = body.contents as Json[];
  for (let i = 0; i < contents.length; i++) {
    const c = contents[i]!;
    if (c.role !== 'user' && c.role !== 'model') return `* GenerateContentRequest.contents[${i}].role: Please use a valid role: user, model.`;
    const parts = Array.isArray(c.parts) ? (c.parts as Json[]) : [];
    if (parts.length === 0) return `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`;
    const responses = parts.filter((p) => p.functionResponse).length;
    const firstCall = parts.find((p) => p.functionCall);
    if (model.startsWith('thinking') && c.role === 'model' && firstCall && !signatures.has(firstCall.thoughtSignature))
      return `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call \`default_api:${String(firstCall.functionCall.name)}\` , position ${i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details.`;
    if (parts.some((p) => p.functionCall) && c.role !== 'model') return `* GenerateContentRequest.contents[${i}]: functionCall parts are only allowed in model turns`;
    if (responses > 0) {
      if (c.role !== 'user') return `* GenerateContentRequest.contents[${i}]: functionResponse parts are only allowed in user turns`;
      const prev = contents[i - 1];
      const calls = prev && Array.isArray(prev.parts) ? (prev.parts as Json[]).filter((p) => p.functionCall).length : 0;
      if (calls !== responses)
        return 'Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.';
      for (const p of parts) if (p.functionResponse && (typeof p.functionResponse.response !== 'object' || p.functionResponse.response === null)) return `* contents[${i}]: functionResponse.response must be an object`;
    }
  }
  return undefined;
}

function textOfContent(c: Json): string {
  return Array.isArray(c.parts) ? (c.parts as Json[]).filter((p) => typeof p.text === 'string').map((p) => p.text as string).join('') : '';
}

export async function startGeminiDouble(opts: { keys?: string[] } = {}): Promise<GeminiDouble> {
  const script: GeminiReply[] = [];
  const signatures = new Set<string>();
  let base!: BaseServer;
  const d: GeminiDouble = {
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
    generateCount: () => base.received.filter((r) => /:(stream)?[gG]enerateContent$/.test(r.path)).length,
    stop: () => base.stop(),
  };
  base = await startBase(async (req, res, server) => {
    const m = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(req.path);
    if (req.method !== 'POST' || !m) return sendJson(res, 404, gErr(404, 'NOT_FOUND', `The requested URL ${req.path} was not found on this server.`));
    const key = (req.headers['x-goog-api-key'] as string | undefined) ?? req.query.get('key') ?? undefined;
    if (!key) return sendJson(res, 403, gErr(403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."));
    if (d.keys && !d.keys.includes(key)) return sendJson(res, 400, gErr(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', 'API_KEY_INVALID'));
    const model = decodeURIComponent(m[1]!);
    if (model.startsWith('missing')) return sendJson(res, 404, gErr(404, 'NOT_FOUND', `models/${model} is not found for API version v1beta, or is not supported for generateContent.`));
    const stream = m[2] === 'streamGenerateContent';
    if (stream && req.query.get('alt') !== 'sse') return sendJson(res, 400, gErr(400, 'INVALID_ARGUMENT', 'this double streams only with alt=sse'));
    const problem = validate(req.body, model, signatures);
    if (problem) return sendJson(res, 400, gErr(400, 'INVALID_ARGUMENT', problem));
    const body = req.body!;
    const reply = d.script.shift() ?? { text: `echo: ${lastUserText(body.contents, textOfContent)}` };
    await answer(body, model, stream, reply, res, server, signatures);
  });
  return d;
}

function frame(o: Json): string {
  return `data: ${JSON.stringify(o)}\r\n\r\n`;
}

async function answer(body: Json, model: string, stream: boolean, reply: GeminiReply, res: http.ServerResponse, server: BaseServer, signatures: Set<string>): Promise<void> {
  const responseId = `resp-${Math.random().toString(36).slice(2, 12)}`;
  if (reply.kind === 'error') return sendJson(res, reply.status, gErr(reply.status, reply.rpcStatus, reply.message ?? `double says ${reply.rpcStatus}`, reply.reason));
  if (reply.kind === 'blocked') {
    const b = { promptFeedback: { blockReason: 'SAFETY' }, usageMetadata: { promptTokenCount: 5, totalTokenCount: 5 }, modelVersion: model, responseId };
    return stream ? writeStream(res, { contentType: 'text/event-stream', pieces: [frame(b)] }, server) : sendJson(res, 200, b);
  }
  if (reply.kind === 'midStreamError' || reply.kind === 'cut') {
    if (!stream) return sendJson(res, 500, gErr(500, 'INTERNAL', 'this scripted failure needs a stream request'));
    const out = pieces(reply.text).map((t) => frame({ candidates: [{ content: { role: 'model', parts: [{ text: t }] }, index: 0 }], modelVersion: model, responseId }));
    if (reply.kind === 'midStreamError') out.push(frame(gErr(reply.status, reply.rpcStatus, reply.message)));
    return writeStream(res, { contentType: 'text/event-stream', pieces: out, cut: reply.kind === 'cut' }, server);
  }
  const prompt = reply.usage?.prompt ?? Math.ceil(JSON.stringify(body.contents).length / 4);
  const candTotal = reply.usage?.candidates ?? Math.ceil((reply.text ?? '').length / 4) + 8 * (reply.functionCalls?.length ?? 0) + 1;
  const meta = (cands: number | undefined): Json => {
    const u: Json = { promptTokenCount: prompt, totalTokenCount: prompt + (cands ?? 0) + (cands === candTotal ? (reply.usage?.thoughts ?? 0) : 0) };
    if (cands !== undefined) u.candidatesTokenCount = cands;
    if (cands === candTotal && reply.usage?.thoughts) u.thoughtsTokenCount = reply.usage.thoughts;
    if (reply.usage?.cached) u.cachedContentTokenCount = reply.usage.cached;
    return u;
  };
  const calls: Json[] = (reply.functionCalls ?? []).map((f) => ({ functionCall: { name: f.name, args: f.args } }));
  if (model.startsWith('thinking') && calls.length > 0) {
    // An opaque base64 blob, as Gemini's are (with + and / in it).
    const sig = Buffer.from(`sig:${responseId}:\u00ff\u00fe>?`).toString('base64');
    signatures.add(sig);
    calls[0]!.thoughtSignature = sig;
  }
  const finishReason = reply.finishReason ?? 'STOP';
  const text = reply.text ?? '';
  if (!stream) {
    const parts: Json[] = [];
    if (text.length > 0) parts.push({ text });
    parts.push(...calls);
    return sendJson(res, 200, { candidates: [{ content: { role: 'model', parts }, finishReason, index: 0 }], usageMetadata: meta(candTotal), modelVersion: model, responseId });
  }
  const textPieces = pieces(text);
  const out: Array<string | { pauseMs: number }> = [];
  const nFrames = textPieces.length + (calls.length > 0 ? 1 : 0);
  let sent = 0;
  textPieces.forEach((t, i) => {
    const last = i === nFrames - 1;
    sent = last ? candTotal : Math.min(candTotal, Math.ceil(((i + 1) * candTotal) / nFrames));
    if (reply.pauseMs && i > 0) out.push({ pauseMs: reply.pauseMs });
    const cand: Json = { content: { role: 'model', parts: [{ text: t }] }, index: 0 };
    if (last) cand.finishReason = finishReason;
    out.push(frame({ candidates: [cand], usageMetadata: meta(last ? candTotal : sent), modelVersion: model, responseId }));
  });
  if (calls.length > 0 || nFrames === 0) {
    out.push(frame({ candidates: [{ content: { role: 'model', parts: calls.length > 0 ? calls : [{ text: '' }] }, finishReason, index: 0 }], usageMetadata: meta(candTotal), modelVersion: model, responseId }));
  }
  return writeStream(res, { contentType: 'text/event-stream', pieces: out }, server);
}
