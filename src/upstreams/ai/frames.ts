// Chat stream decoding into frames the client gets as `data: <json>`.
//
// OpenAI-compatible providers: each event's data is passed on as the bytes
// the provider sent unless the gateway must change it, so most chunks cost a
// JSON.parse (to see usage and errors) and no re-serialisation. What changes:
//  - usage, wherever the provider put it (top level, choices[0].usage on
//    Moonshot, x_groq.usage on Groq, a content chunk on Mistral/Zhipu), is
//    taken out of content chunks, and the usage-only chunk (choices: []) is
//    held back; the client gets one usage chunk before [DONE] if it asked
//    (stream_options.include_usage) and none otherwise — OpenAI's contract,
//    whatever the gateway forced upstream;
//  - `data: {"error": ...}` events become OpenAI's error shape;
//  - SSE comments (`: keep-alive`, `: OPENROUTER PROCESSING`) are dropped by the parser.
// Translated providers: the translator's decoder does the work; this wraps it.
import { SseParser } from './translate/sse.js';
import type { Json, StreamDecoder, Usage } from './translate/types.js';
import { chunkText, findUsageObject, openAIUsage, stripUsage, usageFromObject } from './usage.js';

export interface Frame {
  /** JSON text sent as the event's data. */
  data: string;
  /** The parsed chunk (an OpenAI chat.completion.chunk, or {error}). */
  obj: Json;
  isError: boolean;
}

export interface ChatFrames {
  push(bytes: Buffer): Frame[];
  end(): Frame[];
  /** Usage reported by the provider (undefined: none). */
  readonly usage: Usage | undefined;
  /** Text generated so far (content, reasoning, tool-call fragments), for an estimate when no usage arrives. */
  readonly outputText: string;
  /** The usage chunk for a client that asked for one, when the decoder leaves that to the caller (undefined: the decoder already sent it). */
  usageChunk(u: Usage): Frame | undefined;
}

/** Normalises any error payload a provider streams to OpenAI's shape. */
export function normaliseError(e: unknown, fallbackType = 'server_error'): Json {
  const o = (e && typeof e === 'object' ? e : { message: String(e) }) as Json;
  const code = o.code;
  return {
    error: {
      message: typeof o.message === 'string' ? o.message : JSON.stringify(o),
      type: typeof o.type === 'string' ? o.type : fallbackType,
      param: typeof o.param === 'string' ? o.param : null,
      code: typeof code === 'string' ? code : typeof code === 'number' ? String(code) : null,
    },
  };
}

function frameOf(obj: Json): Frame {
  return { data: JSON.stringify(obj), obj, isError: 'error' in obj && !('choices' in obj) };
}

export class OpenAIFrames implements ChatFrames {
  private readonly parser = new SseParser();
  usage: Usage | undefined;
  outputText = '';
  private heldUsage: Json | undefined;
  private last: { id: unknown; created: unknown; model: unknown } | undefined;
  /** The provider sent [DONE]: a stream that ends without it was cut. */
  sawDone = false;

  constructor(
    private readonly includeUsage: boolean,
    private readonly estimateText: boolean,
  ) {}

  push(bytes: Buffer): Frame[] {
    return this.events(this.parser.push(bytes));
  }

  end(): Frame[] {
    return this.events(this.parser.end());
  }

  private events(events: Array<{ data: string }>): Frame[] {
    const out: Frame[] = [];
    for (const ev of events) {
      const data = ev.data;
      if (data.startsWith('[DONE]')) {
        this.sawDone = true;
        continue;
      }
      let obj: Json;
      try {
        const v = JSON.parse(data) as unknown;
        if (!v || typeof v !== 'object' || Array.isArray(v)) continue;
        obj = v as Json;
      } catch {
        continue; // not JSON: no OpenAI client could use it
      }
      if ('error' in obj && !Array.isArray(obj.choices)) {
        const f = frameOf(normaliseError(obj.error));
        f.isError = true;
        out.push(f);
        continue;
      }
      this.last = { id: obj.id, created: obj.created, model: obj.model };
      const u = findUsageObject(obj);
      const choices = obj.choices;
      const hasChoices = Array.isArray(choices) && choices.length > 0;
      if (this.estimateText && hasChoices) this.outputText += chunkText(obj);
      if (u) {
        const parsed = usageFromObject(u);
        if (parsed) this.usage = parsed;
        if (!hasChoices) {
          // The usage-only chunk: held, sent (once) by usageChunk() if the client asked.
          this.heldUsage = { ...obj, usage: u };
          continue;
        }
        stripUsage(obj);
        out.push({ data: JSON.stringify(obj), obj, isError: false });
        continue;
      }
      out.push({ data, obj, isError: false });
    }
    return out;
  }

  usageChunk(u: Usage): Frame | undefined {
    if (!this.includeUsage) return undefined;
    let obj: Json;
    if (this.heldUsage && this.usage && !u.estimated) {
      obj = this.heldUsage;
      obj.choices = [];
      if (obj.x_groq && typeof obj.x_groq === 'object') delete (obj.x_groq as Json).usage;
    } else {
      obj = { id: this.last?.id ?? 'chatcmpl-gateway', object: 'chat.completion.chunk', created: this.last?.created ?? Math.floor(Date.now() / 1000), model: this.last?.model ?? '', choices: [], usage: openAIUsage(u) };
    }
    return frameOf(obj);
  }
}

/** A translator's decoder as ChatFrames: it emits OpenAI chunks (and the usage chunk when asked) itself. */
export class TranslatedFrames implements ChatFrames {
  outputText = '';
  constructor(
    private readonly dec: StreamDecoder,
    private readonly estimateText: boolean,
  ) {}

  get usage(): Usage | undefined {
    return this.dec.usage;
  }

  push(bytes: Buffer): Frame[] {
    return this.wrap(this.dec.push(bytes));
  }

  end(): Frame[] {
    return this.wrap(this.dec.end());
  }

  private wrap(objs: Json[]): Frame[] {
    const out: Frame[] = [];
    for (const o of objs) {
      if (this.estimateText) this.outputText += chunkText(o);
      const isError = 'error' in o && !Array.isArray(o.choices);
      out.push({ data: JSON.stringify(isError ? normaliseError(o.error) : o), obj: o, isError });
    }
    return out;
  }

  usageChunk(): Frame | undefined {
    return undefined;
  }
}
