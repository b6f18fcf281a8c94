// The provider table: for each provider type, its public endpoint, how a key
// is sent, where each call goes and the quirks its wire format has (see the
// README's provider table). Providers that speak OpenAI chat are called
// directly; the others (anthropic, gemini, ollama native) through a
// translator from ./translate/.
import type { AiProviderConfig, AiProviderType } from '../../config/ai-schema.js';
import type { ChatTranslator, Json } from './translate/types.js';
import { translatorFor } from './translators.js';

export interface ProviderKind {
  /** The base URL the provider's own SDK takes; undefined: the config must give one. */
  readonly defaultBaseUrl: string | undefined;
  /** Headers that carry a key. */
  auth(key: string): Record<string, string>;
  /** Path (after the base URL) of a chat completion for a model. */
  chatPath(model: string): string;
  /** Path of an embeddings call; undefined: the provider has none the gateway can reach. */
  embeddingsPath?(model: string): string;
  /** Path of the Responses API; undefined: not offered. */
  responsesPath?: string;
  /** A cheap authenticated GET that answers 2xx when a key works (key probes). */
  probePath: string;
  /** OpenAI-chat request quirks, applied to the body sent. */
  adjust?(body: Json, stream: boolean): void;
  /** The provider takes `stream_options.include_usage` (forced on for every stream). */
  readonly streamUsageOption: boolean;
  /** Translator for providers that do not speak OpenAI chat. */
  readonly translator?: ChatTranslator;
  /** Speaks Anthropic Messages natively (POST /v1/messages passes through). */
  readonly anthropicNative?: boolean;
}

const bearer = (key: string): Record<string, string> => (key ? { authorization: `Bearer ${key}` } : {});

function openaiLike(defaultBaseUrl: string | undefined, extra: Partial<ProviderKind> = {}): ProviderKind {
  return {
    defaultBaseUrl,
    auth: bearer,
    chatPath: () => '/chat/completions',
    embeddingsPath: () => '/embeddings',
    probePath: '/models',
    streamUsageOption: true,
    ...extra,
  };
}

/** The Azure api-version used when the config names none (a GA version). */
export const AZURE_DEFAULT_API_VERSION = '2024-10-21';

export function providerKind(cfg: AiProviderConfig): ProviderKind {
  const type: AiProviderType = cfg.type;
  switch (type) {
    case 'openai':
      return openaiLike('https://api.openai.com/v1', { responsesPath: '/responses' });
    case 'openai_compatible':
      // vLLM, LM Studio, llama.cpp server, Together...: /v1 on the instance when discovered.
      return openaiLike(undefined, { responsesPath: '/responses' });
    case 'azure': {
      // baseUrl is what the AzureOpenAI SDK builds: https://{resource}.openai.azure.com/openai.
      // The deployment (the mapped model) goes in the path; api-key header; api-version query.
      const v = encodeURIComponent(cfg.apiVersion ?? AZURE_DEFAULT_API_VERSION);
      return {
        defaultBaseUrl: undefined,
        auth: (key): Record<string, string> => (key ? { 'api-key': key } : {}),
        chatPath: (m) => `/deployments/${encodeURIComponent(m)}/chat/completions?api-version=${v}`,
        embeddingsPath: (m) => `/deployments/${encodeURIComponent(m)}/embeddings?api-version=${v}`,
        probePath: `/models?api-version=${v}`,
        streamUsageOption: true,
      };
    }
    case 'qwen':
      return openaiLike('https://dashscope.aliyuncs.com/compatible-mode/v1');
    case 'deepseek':
      // The SDK base has no /v1 (api.deepseek.com/chat/completions); no embeddings.
      return openaiLike('https://api.deepseek.com', { embeddingsPath: undefined });
    case 'moonshot':
      // Stream usage arrives in choices[0].usage of the finish chunk (relocated by the stream decoder).
      return openaiLike('https://api.moonshot.cn/v1');
    case 'zhipu':
      // No /v1 in the path; rejects stream_options; knows max_tokens only.
      return openaiLike('https://open.bigmodel.cn/api/paas/v4', {
        streamUsageOption: false,
        adjust(body) {
          delete body.stream_options;
          if (body.max_completion_tokens !== undefined) {
            body.max_tokens ??= body.max_completion_tokens;
            delete body.max_completion_tokens;
          }
        },
      });
    case 'mistral':
      return openaiLike('https://api.mistral.ai/v1');
    case 'groq':
      // Older streams put usage in x_groq.usage of the last chunk (read there too).
      return openaiLike('https://api.groq.com/openai/v1', { responsesPath: '/responses' });
    case 'openrouter':
      return openaiLike('https://openrouter.ai/api/v1', { responsesPath: '/responses' });
    case 'ollama': {
      if (cfg.api === 'openai') return openaiLike('http://localhost:11434', { chatPath: () => '/v1/chat/completions', embeddingsPath: () => '/v1/embeddings', probePath: '/v1/models' });
      return translated('http://localhost:11434', type, '/api/tags');
    }
    case 'anthropic':
      return { ...translated('https://api.anthropic.com', type, '/v1/models'), anthropicNative: true };
    case 'gemini':
      return translated('https://generativelanguage.googleapis.com', type, '/v1beta/models');
  }
}

function translated(defaultBaseUrl: string, type: 'anthropic' | 'gemini' | 'ollama', probePath: string): ProviderKind {
  const t = translatorFor(type);
  if (!t) throw new Error(`provider type ${type} is not available in this build`);
  return {
    defaultBaseUrl,
    auth: (key) => (key ? t.authHeaders(key) : {}),
    chatPath: () => '',
    probePath,
    streamUsageOption: false,
    translator: t,
  };
}
