// Token usage: read from what the provider reported, wherever that provider
// puts it, or (when it reported none) estimated with an offline BPE
// tokenizer and marked estimated. An estimate is a count of the text the
// gateway saw with OpenAI's o200k encoding; for other vendors' models it is
// approximate by nature.
import type { Json, Usage } from './translate/types.js';

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/**
 * Usage from one OpenAI-shaped usage object: chat/embeddings
 * (prompt_tokens/completion_tokens) or Responses API (input_tokens/output_tokens).
 */
export function usageFromObject(u: unknown): Usage | undefined {
  if (u === null || typeof u !== 'object') return undefined;
  const o = u as Json;
  const input = num(o.prompt_tokens) ?? num(o.input_tokens);
  const output = num(o.completion_tokens) ?? num(o.output_tokens) ?? 0;
  if (input === undefined) return undefined;
  const total = num(o.total_tokens) ?? input + output;
  const out: Usage = { input, output, total };
  const details = (o.prompt_tokens_details ?? o.input_tokens_details) as Json | undefined;
  const cached = num(details?.cached_tokens) ?? num(o.prompt_cache_hit_tokens);
  if (cached !== undefined && cached > 0) out.cachedInput = cached;
  return out;
}

/**
 * Where an OpenAI-compatible provider put usage in a chunk or response: the
 * top-level `usage` (OpenAI, Qwen, DeepSeek, Mistral, vLLM...), `choices[0].usage`
 * (Moonshot's stream), or `x_groq.usage` (Groq's older stream). Returns the
 * raw object found, so a caller can relocate it.
 */
export function findUsageObject(chunk: Json): Json | undefined {
  const top = chunk.usage;
  if (top && typeof top === 'object') return top as Json;
  const choices = chunk.choices;
  if (Array.isArray(choices)) {
    for (const c of choices) {
      const u = (c as Json | null)?.usage;
      if (u && typeof u === 'object') return u as Json;
    }
  }
  const xg = (chunk.x_groq as Json | undefined)?.usage;
  if (xg && typeof xg === 'object') return xg as Json;
  return undefined;
}

/** Removes usage from wherever a provider put it in a content chunk; true when something was removed. */
export function stripUsage(chunk: Json): boolean {
  let changed = false;
  if ('usage' in chunk) {
    delete chunk.usage;
    changed = true;
  }
  const choices = chunk.choices;
  if (Array.isArray(choices)) {
    for (const c of choices) {
      if (c && typeof c === 'object' && 'usage' in (c as Json)) {
        delete (c as Json).usage;
        changed = true;
      }
    }
  }
  const xg = chunk.x_groq as Json | undefined;
  if (xg && typeof xg === 'object' && 'usage' in xg) {
    delete xg.usage;
    changed = true;
  }
  return changed;
}

/** The OpenAI usage object for a Usage (what a usage chunk carries). */
export function openAIUsage(u: Usage): Json {
  const o: Json = { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.total };
  if (u.cachedInput) o.prompt_tokens_details = { cached_tokens: u.cachedInput };
  return o;
}

// ---------- estimation ----------

type CountFn = (text: string) => number;
let counter: CountFn | undefined;
let loading: Promise<CountFn> | undefined;

/** The tokenizer, loaded on first need (its tables take a few hundred ms to load; most traffic never needs them). */
export function loadTokenizer(): Promise<CountFn> {
  if (counter) return Promise.resolve(counter);
  loading ??= import('gpt-tokenizer').then((m) => {
    counter = (text: string) => (text.length === 0 ? 0 : m.countTokens(text));
    return counter;
  });
  return loading;
}

/** Text of a content value: a string, or the text parts of an array of parts. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    let s = '';
    for (const p of content) {
      if (typeof p === 'string') s += p;
      else if (p && typeof p === 'object' && typeof (p as Json).text === 'string') s += (p as Json).text as string;
    }
    return s;
  }
  return '';
}

/** The text of a chat request the model reads (messages, tool definitions), for an input estimate. */
export function requestText(body: Json): string {
  const parts: string[] = [];
  if (typeof body.system === 'string') parts.push(body.system);
  else if (Array.isArray(body.system)) parts.push(contentText(body.system));
  if (Array.isArray(body.messages)) {
    for (const m of body.messages as Json[]) {
      if (!m || typeof m !== 'object') continue;
      parts.push(String(m.role ?? ''), contentText(m.content));
      if (Array.isArray(m.tool_calls)) parts.push(JSON.stringify(m.tool_calls));
    }
  }
  if (typeof body.input === 'string') parts.push(body.input);
  else if (Array.isArray(body.input)) for (const i of body.input) parts.push(typeof i === 'string' ? i : JSON.stringify(i));
  if (Array.isArray(body.tools)) parts.push(JSON.stringify(body.tools));
  return parts.join('\n');
}

/** An estimate of a call's usage from the text sent and received. */
export async function estimateUsage(inputText: string, outputText: string): Promise<Usage> {
  const count = await loadTokenizer();
  const input = count(inputText);
  const output = count(outputText);
  return { input, output, total: input + output, estimated: true };
}

/** The text of a non-stream chat completion's choices (content and tool-call arguments). */
export function completionText(body: Json): string {
  let s = '';
  if (!Array.isArray(body.choices)) return s;
  for (const c of body.choices as Json[]) {
    const m = c?.message as Json | undefined;
    if (!m) continue;
    s += contentText(m.content);
    if (typeof m.reasoning_content === 'string') s += m.reasoning_content;
    if (Array.isArray(m.tool_calls)) for (const t of m.tool_calls as Json[]) s += JSON.stringify((t?.function as Json | undefined) ?? {});
  }
  return s;
}

/** Text a stream chunk adds (delta content, reasoning and tool-call fragments). */
export function chunkText(chunk: Json): string {
  let s = '';
  if (!Array.isArray(chunk.choices)) return s;
  for (const c of chunk.choices as Json[]) {
    const d = c?.delta as Json | undefined;
    if (!d) continue;
    if (typeof d.content === 'string') s += d.content;
    if (typeof d.reasoning_content === 'string') s += d.reasoning_content;
    if (Array.isArray(d.tool_calls)) {
      for (const t of d.tool_calls as Json[]) {
        const f = t?.function as Json | undefined;
        if (typeof f?.name === 'string') s += f.name;
        if (typeof f?.arguments === 'string') s += f.arguments;
      }
    }
  }
  return s;
}
