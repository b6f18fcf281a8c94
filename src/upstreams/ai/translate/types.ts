// Wire types shared by the AI route handler and the translators. OpenAI's chat
// wire format is the lingua franca: every translator turns an OpenAI request
// into its provider's request and the provider's answers back into OpenAI
// objects. The records are kept loose (Json) on purpose: clients send fields
// we do not know, and a translator copies only what it understands.

export interface Usage {
  input: number;
  output: number;
  total: number;
  /** Counted by the gateway (tokenizer) rather than reported by the provider. */
  estimated?: boolean;
  /** Input tokens served from the provider's prompt cache (already included in input). */
  cachedInput?: number;
}

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

export type Json = Record<string, unknown>;

/** A request the gateway sends to a provider: path is appended to the provider's baseUrl (may carry a query). */
export interface ProviderRequest {
  path: string;
  body: Json;
  headers?: Record<string, string>;
  stream: boolean;
}

export interface StreamDecoder {
  /** Feed raw upstream bytes; returns OpenAI chat.completion.chunk objects (and error objects {error:{...}} for mid-stream errors) ready to send as `data: <json>`. */
  push(bytes: Buffer): Json[];
  /** Upstream ended: returns anything held back (e.g. a final chunk with finish_reason). Never returns [DONE]: the caller writes that. */
  end(): Json[];
  /** Usage as reported by the provider so far (undefined: none yet). */
  readonly usage: Usage | undefined;
}

/** A provider that does not speak OpenAI chat: translates both ways. */
export interface ChatTranslator {
  /** OpenAI chat request (already parsed; `model` already mapped to the provider's name) -> the provider's request. */
  request(body: Json, model: string, stream: boolean): ProviderRequest;
  /** The provider's non-stream JSON -> an OpenAI chat.completion object. */
  response(body: Json, model: string): Json;
  /** A decoder for the provider's stream; chunks carry this id/model/created. includeUsage: the client asked for the usage chunk (choices: []) before [DONE]. */
  stream(opts: { id: string; model: string; created: number; includeUsage: boolean }): StreamDecoder;
  /** The provider's error answer -> OpenAI's error shape and the status to send (e.g. Anthropic 529 -> 503). */
  error(status: number, body: Buffer): { status: number; body: OpenAIErrorBody };
  /** Usage from a non-stream response JSON. */
  usage(body: Json): Usage | undefined;
  /** Auth headers for a key (x-api-key, x-goog-api-key...). */
  authHeaders(apiKey: string): Record<string, string>;
}
