// The `ai:` section of a route: an OpenAI-compatible API in front of LLM
// providers (src/upstreams/ai/). It lives on the config floor so that
// config/schema.ts can hold it; the handler compiles it.
import { z } from 'zod';

const strict = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);
const positiveInt = z.number().int().min(1);

export const AI_PROVIDER_TYPES = [
  'openai',
  'azure',
  'anthropic',
  'gemini',
  'qwen',
  'deepseek',
  'moonshot',
  'zhipu',
  'mistral',
  'groq',
  'openrouter',
  'ollama',
  'openai_compatible',
] as const;
export type AiProviderType = (typeof AI_PROVIDER_TYPES)[number];

/**
 * A model pattern (keys of `models:` and `modelMapping:`): an exact name,
 * a prefix ending in `*`, `~` then a regular expression, or `*` alone.
 */
const ModelPattern = z.string().min(1);

/**
 * Statuses that count as a failure: "429", "4xx", "5xx", "401"; also
 * "timeout" (no answer, or no first byte of a stream, in time) and "error"
 * (connection refused or reset).
 */
export const FailureClassSchema = z.string().regex(/^([1-5][0-9x]{2}|timeout|error)$/, 'must be a status ("429"), a class ("5xx"), "timeout" or "error"');

export const AiProviderSchema = strict({
  /** Names the provider in `models:`, `fallback:`, metrics and the access log. */
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-" only'),
  type: z.enum(AI_PROVIDER_TYPES),
  /** The base URL the provider's own SDK takes (openai: ends in /v1; anthropic: no /v1). Default: the provider's public endpoint. */
  baseUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL').optional(),
  /** openai_compatible: a discovered service (e.g. vllm.DEFAULT-GROUP.public.nacos), balanced by the service's load balancer. */
  service: z.string().min(1).optional(),
  /** With `service`: the path on each instance that plays the base URL (default /v1). */
  basePath: z.string().startsWith('/').optional(),
  /** API keys, rotated; a key that fails is taken out and probed back in. */
  apiKeys: z.array(z.string().min(1)).default([]),
  /** Requested model -> the provider's model (exact, prefix*, ~regex, *); "" keeps the requested name. */
  modelMapping: z.record(ModelPattern, z.string()).default({}),
  /** azure: the api-version query parameter. */
  apiVersion: z.string().min(1).optional(),
  /** ollama: its native /api/chat (NDJSON) or its OpenAI-compatible /v1. */
  api: z.enum(['native', 'openai']).optional(),
  /** Extra headers sent to the provider (e.g. OpenRouter's HTTP-Referer, X-Title). */
  headers: z.record(z.string(), z.string()).default({}),
  /** Per-provider override of the route's timeouts. */
  timeoutMs: positiveInt.optional(),
  firstByteTimeoutMs: positiveInt.optional(),
  /** Weight in a weighted fallback (default 1). */
  weight: z.number().int().min(0).default(1),
});

export const AiKeyFailoverSchema = strict({
  /** Answers that take a key out of rotation. */
  on: z.array(FailureClassSchema).default(['401', '403', '429', '5xx']),
  /** Consecutive failures that take a key out. */
  failureThreshold: positiveInt.default(1),
  /** How long a key stays out before it is probed (doubles while probes fail, up to maxCooldownMs). */
  cooldownMs: positiveInt.default(10_000),
  maxCooldownMs: positiveInt.default(300_000),
});

/** Rate-limit key syntax shared with cc rules: ip | consumer | {header} | {cookie} | {query}, or a list (combined). */
const RateKeyPart = z.union([
  z.literal('ip'),
  z.literal('consumer'),
  z.literal('route'),
  strict({ header: z.string().min(1) }),
  strict({ cookie: z.string().min(1) }),
  strict({ query: z.string().min(1) }),
]);
export const AiRateKeySchema = z.union([RateKeyPart, z.array(RateKeyPart).min(1)]);

export const AiTokenRateLimitSchema = strict({
  key: AiRateKeySchema.default('consumer'),
  tokensPerMinute: positiveInt.optional(),
  tokensPerHour: positiveInt.optional(),
  tokensPerDay: positiveInt.optional(),
  /** Where counts live: this gateway (its worker processes share them through the primary), or the shared store (Redis) for a fleet. */
  store: z.enum(['local', 'shared']).default('local'),
});

export const AiRouteSchema = strict({
  providers: z.array(AiProviderSchema).min(1),
  /** Requested model -> provider name (exact, prefix*, ~regex, *). Absent or no match: the first provider. */
  models: z.record(ModelPattern, z.string().min(1)).default({}),
  /** After the chosen provider fails with one of `on`: the next provider in `order` (or drawn by `weight` when strategy is weighted). */
  fallback: strict({
    on: z.array(FailureClassSchema).default(['429', '5xx', 'timeout', 'error']),
    order: z.array(z.string().min(1)).default([]),
    strategy: z.enum(['order', 'weighted']).default('order'),
  }).optional(),
  /** Non-streaming calls: further attempts with another key of the same provider after a failure in keyFailover.on. */
  retries: z.number().int().min(0).max(10).default(1),
  keyFailover: AiKeyFailoverSchema.default({ on: ['401', '403', '429', '5xx'], failureThreshold: 1, cooldownMs: 10_000, maxCooldownMs: 300_000 }),
  /** Whole call, non-streaming; for a stream, the longest pause between upstream reads. */
  timeoutMs: positiveInt.default(600_000),
  /** A stream whose first event does not arrive in time counts as failed ("timeout") and may fall back. */
  firstByteTimeoutMs: positiveInt.default(60_000),
  /** Largest request body read. */
  maxBodyBytes: positiveInt.default(8 * 1024 * 1024),
  tokenRateLimit: AiTokenRateLimitSchema.optional(),
});

export type AiRouteConfig = z.output<typeof AiRouteSchema>;
export type AiProviderConfig = z.output<typeof AiProviderSchema>;
export type AiTokenRateLimitConfig = z.output<typeof AiTokenRateLimitSchema>;
export type AiRateKey = z.output<typeof AiRateKeySchema>;
