// The one source of truth for meshgate's configuration.
// TypeScript types, validation (with messages that name the bad key) and the
// JSON Schema printed by `meshgate schema` all come from the zod schemas here.
import { isIP } from 'node:net';
import { z } from 'zod';
import { REGISTRY_PLUGINS, type AnyRegistryPlugin } from '../../registries/index.js';
import { AiRouteSchema } from './ai-schema.js';

export const strict = <T extends z.ZodRawShape>(shape: T) => z.strictObject(shape);

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be host:port');

const nonNegInt = z.number().int().min(0);
export const positiveInt = z.number().int().min(1);

// ---------- listeners and admin ----------

export const TlsCertificateSchema = strict({
  hosts: z.array(z.string().min(1)).min(1),
  cert: z.string().min(1),
  key: z.string().min(1),
});

/** An IPv4 or IPv6 address, or a CIDR (a.b.c.d/n, x::y/n); IPv4-mapped IPv6 counts as IPv4. */
function isIpOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const family = addr.includes('%') ? 0 : isIP(addr);
  if (family === 0 || slash < 0) return family !== 0;
  const bits = s.slice(slash + 1);
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
export const IpOrCidrSchema = z.string().refine(isIpOrCidr, 'not an IP address or CIDR');

export const ListenerSchema = strict({
  name: z.string().min(1),
  address: hostPort,
  protocol: z.enum(['http', 'https']).default('http'),
  tls: strict({ certificates: z.array(TlsCertificateSchema).min(1) }).optional(),
  /** Trust X-Forwarded-For from the client (false: the gateway sets it from the socket). */
  trustForwarded: z.boolean().default(false),
  /**
   * Peers (addresses, CIDRs) whose X-Forwarded-For names the client: for a
   * request from one of them, the client IP (IP restriction, access log,
   * rate-limit keys) is read from X-Forwarded-For, right to left, past every
   * trusted hop. Any other peer is the client itself, whatever it sends.
   */
  trustedProxies: z.array(IpOrCidrSchema).default([]),
  /** Server-side keep-alive timeout for downstream connections. */
  keepAliveTimeoutMs: positiveInt.default(65_000),
  /** Maximum request header size in bytes. */
  maxHeaderBytes: positiveInt.default(16_384),
  /** An HTTP/1.1 request head must arrive within this long of its first byte (408 otherwise). */
  headersTimeoutMs: positiveInt.default(60_000),
  /** Longest pause between HTTP/1.1 request body bytes while the gateway reads them (408, or the connection closes). */
  bodyTimeoutMs: positiveInt.default(60_000),
  /**
   * A connection whose client has not taken any of the bytes waiting for it
   * for this long is closed (a client that stopped reading; nginx's send_timeout).
   */
  sendTimeoutMs: positiveInt.default(60_000),
  /** Open connections (HTTP/1.1 and HTTP/2 together, per worker process) this listener keeps; a connection over the cap is closed as soon as it is accepted. */
  maxConnections: positiveInt.default(10_000),
  /** HTTP/2 limits (h2c and h2 over TLS), per connection. */
  http2: strict({
    /** SETTINGS_MAX_CONCURRENT_STREAMS: streams a client may have open at once. */
    maxConcurrentStreams: positiveInt.default(100),
    /**
     * Streams a client may reset before their response completed (RST_STREAM,
     * CVE-2023-44487 "rapid reset") within resetWindowMs; the allowance refills
     * evenly over the window and each stream that completes gives one back.
     * Over it: GOAWAY ENHANCE_YOUR_CALM and the connection closes.
     */
    maxResetStreams: positiveInt.default(100),
    resetWindowMs: positiveInt.default(10_000),
    /** node:http2 maxSessionMemory in MiB: over it, new streams are refused (ENHANCE_YOUR_CALM). */
    maxSessionMemoryMb: positiveInt.default(64),
    /**
     * Reset with PROTOCOL_ERROR a request whose header block (or trailers) has a
     * field node:http2 would otherwise drop silently: CR, LF, NUL or another
     * control character in a value, leading or trailing whitespace, a name outside
     * the token characters, a Host that is not an authority. Costs a pass over
     * each HTTP/2 connection's incoming frames in JavaScript.
     */
    rejectMalformedFields: z.boolean().default(true),
  }).prefault({}),
});

/** scrypt$N$r$p$salt$hash (meshgate hash-password); the hash itself is checked when the admin server or a filter compiles it. */
const storedPassword = z.string().regex(/^scrypt\$/, 'must be a scrypt hash (scrypt$N$r$p$salt$hash; make one with `meshgate hash-password`), not a password in clear');

export const AdminAuthSchema = strict({
  /** Bearer tokens, named so that every change made with one is logged with its name. */
  tokens: z
    .array(strict({ name: z.string().min(1), token: z.string().min(16, 'an admin token needs at least 16 characters'), role: z.enum(['admin', 'read']).default('admin') }))
    .default([]),
  /** Basic-auth users (passwords stored hashed). */
  basic: z.array(strict({ name: z.string().min(1).refine((u) => !u.includes(':'), 'no ":" in a Basic username'), password: storedPassword, role: z.enum(['admin', 'read']).default('admin') })).default([]),
  /** Paths served without credentials besides /healthz and /readyz (always open: kubelet probes), e.g. /metrics. */
  openPaths: z.array(z.string().startsWith('/')).default([]),
}).refine((a) => a.tokens.length + a.basic.length > 0, 'auth needs at least one token or basic user');

export const AdminSchema = strict({
  address: hostPort.default('127.0.0.1:8001'),
  /** Credentials the admin API asks for (keep it off public interfaces all the same). */
  auth: AdminAuthSchema.optional(),
  /** Refuse every change through the API (reload...), whoever asks. */
  readOnly: z.boolean().optional(),
});

// ---------- registries ----------
// Each kind declares its own keys (registries/<kind>/schema.ts); the union is
// composed from the one list of registry plug-ins.

type PluginSchemas<P extends readonly AnyRegistryPlugin[]> = { -readonly [K in keyof P]: P[K]['schema'] };

export const RegistrySchema = z.discriminatedUnion(
  'type',
  REGISTRY_PLUGINS.map((p) => p.schema) as PluginSchemas<typeof REGISTRY_PLUGINS>,
);

// Each kind's schema under its old name, for existing callers (tests, benches).
// New code imports registries/<kind>/schema.js.
export { StaticRegistrySchema } from '../../registries/static/schema.js';
export { DnsRegistrySchema } from '../../registries/dns/schema.js';
export { ZookeeperRegistrySchema } from '../../registries/zookeeper/schema.js';
export { NacosRegistrySchema } from '../../registries/nacos/schema.js';
export { ConsulRegistrySchema } from '../../registries/consul/schema.js';
export { EurekaRegistrySchema } from '../../registries/eureka/schema.js';

// ---------- services (upstream policy) ----------

export const HashKeySchema = z.union([
  strict({ header: z.string().min(1) }),
  strict({ cookie: z.string().min(1) }),
  strict({ query: z.string().min(1) }),
  strict({ sourceIp: z.literal(true) }),
]);

export const LoadBalancerSchema = z.discriminatedUnion('type', [
  strict({ type: z.literal('round_robin') }),
  strict({ type: z.literal('random') }),
  strict({ type: z.literal('least_request'), choices: z.number().int().min(2).default(2) }),
  strict({
    type: z.literal('consistent_hash'),
    key: HashKeySchema,
    algorithm: z.enum(['ring', 'maglev']).default('ring'),
    ringSize: z.number().int().min(1024).default(1024),
  }),
  strict({
    type: z.literal('sticky'),
    cookie: z.string().min(1).default('meshgate-sticky'),
    ttlSec: positiveInt.optional(),
    /** The balancer used for the first pick, before a cookie is set. */
    fallback: z.enum(['round_robin', 'random', 'least_request']).default('round_robin'),
  }),
]);

export const RetryOnSchema = z.union([
  z.enum(['connect-failure', 'refused-stream', 'reset', 'gateway-error', '5xx', 'timeout']),
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]\d\d$/, 'must be a retry condition or a status code').transform(Number),
]);

export const RetriesSchema = strict({
  attempts: nonNegInt.default(0),
  on: z.array(RetryOnSchema).default(['connect-failure', 'refused-stream']),
  perTryTimeoutMs: positiveInt.optional(),
  backoff: strict({ baseMs: positiveInt.default(25), maxMs: positiveInt.default(250) }).default({ baseMs: 25, maxMs: 250 }),
  /** Retry budget: retries in flight may be at most this share of active requests. */
  budgetPercent: z.number().min(0).max(100).default(20),
  minRetriesConcurrency: nonNegInt.default(3),
  /** Retry non-idempotent requests (POST, PATCH) even after they reached the upstream. */
  retryNonIdempotent: z.boolean().default(false),
});

export const OutlierDetectionSchema = strict({
  consecutive5xx: positiveInt.default(5),
  consecutiveGatewayFailure: positiveInt.optional(),
  consecutiveConnectFailure: positiveInt.optional(),
  intervalMs: positiveInt.default(10_000),
  baseEjectionMs: positiveInt.default(30_000),
  maxEjectionMs: positiveInt.default(300_000),
  maxEjectionPercent: z.number().min(0).max(100).default(10),
});

export const HealthCheckSchema = strict({
  type: z.enum(['http', 'tcp', 'grpc']).default('http'),
  path: z.string().startsWith('/').default('/health'),
  expectedStatuses: z.array(z.number().int().min(100).max(599)).default([200]),
  grpcService: z.string().default(''),
  intervalMs: positiveInt.default(5_000),
  timeoutMs: positiveInt.default(1_000),
  unhealthyThreshold: positiveInt.default(3),
  healthyThreshold: positiveInt.default(2),
});

export const ErrorKindSchema = z.union([
  z.enum(['connect-failure', 'timeout', 'reset', '5xx', '4xx']),
  z.number().int().min(100).max(599),
]);

export const FallbackSchema = z.union([
  strict({
    response: strict({
      status: z.number().int().min(100).max(599).default(503),
      body: z.string().default(''),
      headers: z.record(z.string(), z.string()).default({}),
    }),
  }),
  strict({ service: z.string().min(1) }),
]);

export const CircuitBreakerSchema = strict({
  strategy: z.enum(['slow_ratio', 'error_ratio', 'error_count']),
  /** slow_ratio: a call slower than this is slow */
  maxRtMs: positiveInt.optional(),
  /** ratio (0..1) for slow_ratio/error_ratio, count for error_count */
  threshold: z.number().min(0),
  minRequests: positiveInt.default(5),
  statIntervalMs: positiveInt.default(1_000),
  openMs: positiveInt.default(10_000),
  /** A half-open probe still running after this is counted as failed. */
  probeTimeoutMs: positiveInt.optional(),
  /** What counts as an error (default: connect-failure, timeout, reset, 5xx). */
  errors: z.array(ErrorKindSchema).optional(),
  scope: z.enum(['service', 'instance']).default('service'),
  fallback: FallbackSchema.optional(),
});

/** Upstream TLS: how the gateway connects to a service's instances over TLS. */
export const UpstreamTlsSchema = strict({
  /** Name sent as SNI and checked against the certificate; default: the instance host when it is a DNS name. */
  sni: z.string().min(1).optional(),
  /** PEM file of the CAs trusted (default: Node's bundled roots). */
  ca: z.string().min(1).optional(),
  /** Client certificate (PEM file, with its chain) for mutual TLS; needs `key`. */
  cert: z.string().min(1).optional(),
  key: z.string().min(1).optional(),
  /** false: accept any certificate (tests only; logged as a warning). */
  verify: z.boolean().default(true),
});

export const ServiceSchema = strict({
  protocol: z.enum(['http', 'http2', 'grpc', 'dubbo']).optional(),
  /** Connect to the instances over TLS (instances with `secure: "true"` metadata use TLS without it). */
  tls: UpstreamTlsSchema.optional(),
  timeoutMs: positiveInt.default(15_000),
  connectTimeoutMs: positiveInt.default(5_000),
  loadBalancer: LoadBalancerSchema.default({ type: 'round_robin' }),
  retries: RetriesSchema.optional(),
  outlierDetection: OutlierDetectionSchema.optional(),
  healthCheck: HealthCheckSchema.optional(),
  circuitBreakers: z.array(CircuitBreakerSchema).default([]),
  /** Max idle keep-alive connections per instance */
  maxConnectionsPerInstance: positiveInt.default(128),
  /** Host header sent upstream: keep the client's, or rewrite to this value, or to the instance's host:port ("upstream"). */
  host: z.union([z.literal('keep'), z.literal('upstream'), z.string().min(1)]).default('keep'),
});

// ---------- matching ----------

export const StringMatchSchema = z.union([
  strict({ exact: z.string() }),
  strict({ prefix: z.string() }),
  strict({ regex: z.string() }),
  strict({ contains: z.string() }),
  strict({ present: z.boolean() }),
]);

export const PathMatchSchema = z.union([
  strict({ exact: z.string().startsWith('/') }),
  strict({ prefix: z.string().startsWith('/') }),
  strict({ regex: z.string() }),
]);

export const MatchSchema = strict({
  hosts: z.array(z.string().min(1)).optional(),
  path: PathMatchSchema.default({ prefix: '/' }),
  methods: z.array(z.string().min(1).transform((m) => m.toUpperCase())).optional(),
  headers: z.record(z.string(), StringMatchSchema).optional(),
  query: z.record(z.string(), StringMatchSchema).optional(),
});

export const BackendSchema = strict({
  service: z.string().min(1),
  weight: nonNegInt.default(1),
  /** Instance metadata must match every key */
  subset: z.record(z.string(), z.string()).optional(),
  /** When the subset has no instances: fall back to all instances, or answer 503 */
  subsetFallback: z.enum(['all', 'none']).default('all'),
});

export const CanarySchema = strict({
  byHeader: z.string().min(1).optional(),
  byHeaderValue: z.string().optional(),
  byHeaderPattern: z.string().optional(),
  byCookie: z.string().min(1).optional(),
  /** Authenticated consumers sent to the canary (checked after header and cookie, before weight). */
  byConsumer: z.array(z.string().min(1)).min(1).optional(),
  weight: nonNegInt.optional(),
  weightTotal: positiveInt.default(100),
  backends: z.array(BackendSchema).min(1),
});

// ---------- filters ----------

export const KeySourceSchema = z.union([
  strict({ ip: z.literal(true) }),
  strict({ host: z.literal(true) }),
  strict({ header: z.string().min(1) }),
  strict({ query: z.string().min(1) }),
  strict({ cookie: z.string().min(1) }),
  /** The authenticated consumer (auth filters run before traffic filters; unauthenticated requests have no key). */
  strict({ consumer: z.literal(true) }),
]);

export const FlowRuleSchema = strict({
  metric: z.enum(['qps', 'concurrency']).default('qps'),
  count: z.number().min(0),
  behavior: z.enum(['reject', 'warm_up', 'queue']).default('reject'),
  coldFactor: z.number().gt(1).default(3),
  warmUpSec: positiveInt.default(10),
  maxQueueingMs: nonNegInt.default(500),
  key: KeySourceSchema.optional(),
  /** Only keys whose value matches are limited (each key separately). */
  match: StringMatchSchema.optional(),
  burst: nonNegInt.default(0),
  intervalSec: positiveInt.default(1),
});

/**
 * A `filters:` entry: its `type` names a filter kind (src/filters/catalog.ts);
 * the rest of its keys are that kind's own settings, checked by the kind's
 * schema when the config compiles.
 */
export const FILTER_ENTRY_TITLE = 'meshgate filter entry';
export const FilterEntrySchema = z.looseObject({ type: z.string().min(1) }).meta({ title: FILTER_ENTRY_TITLE });

// ---------- protocol-specific route sections ----------

export const DubboParamSchema = strict({
  paramKey: z.string().min(1),
  paramSource: z.enum(['QUERY', 'HEADER', 'PATH', 'BODY']),
  paramType: z.string().min(1),
});

export const DubboMethodSchema = strict({
  serviceMethod: z.string().min(1),
  httpPath: z.string().startsWith('/'),
  httpMethods: z.array(z.string().transform((m) => m.toUpperCase())).default(['GET', 'POST']),
  headersAttach: z.string().default(''),
  params: z.array(DubboParamSchema).default([]),
  paramFromEntireBody: strict({ paramType: z.string().min(1) }).optional(),
});

export const DubboRouteSchema = strict({
  service: z.string().min(1),
  version: z.string().default(''),
  group: z.string().default(''),
  timeoutMs: positiveInt.optional(),
  methods: z.array(DubboMethodSchema).min(1),
});

export const GreySchema = strict({
  /** The tag header (Higress: x-mse-tag) */
  header: z.string().min(1).default('x-mse-tag'),
  /** Instance metadata key that carries the tag (default: same as header name, and "tag") */
  metadataKey: z.string().min(1).optional(),
  /** Set the tag from conditions, first match wins (Higress traffic-tag). */
  setTag: z
    .array(
      strict({
        tag: z.string().min(1),
        header: z.record(z.string(), StringMatchSchema).optional(),
        query: z.record(z.string(), StringMatchSchema).optional(),
        cookie: z.record(z.string(), StringMatchSchema).optional(),
        percentage: z.number().min(0).max(100).optional(),
      }),
    )
    .optional(),
});

export const RouteSchema = strict({
  name: z.string().min(1),
  match: MatchSchema.default({ path: { prefix: '/' } }),
  backends: z.array(BackendSchema).default([]),
  canary: CanarySchema.optional(),
  grey: GreySchema.optional(),
  filters: z.array(FilterEntrySchema).default([]),
  timeoutMs: positiveInt.optional(),
  dubbo: DubboRouteSchema.optional(),
  /** An OpenAI-compatible API in front of LLM providers (src/upstreams/ai/). */
  ai: AiRouteSchema.optional(),
  /** Which consumers the route admits (after authentication), and who an unauthenticated client counts as. */
  auth: strict({
    allow: z.array(z.string().min(1)).optional(),
    /** A consumer (declared under consumers:) that a request with no credentials counts as; admitted on this route. */
    anonymous: z.string().min(1).optional(),
  }).optional(),
  /** Respond directly without an upstream */
  directResponse: strict({ status: z.number().int().min(100).max(599), body: z.string().default('') }).optional(),
});

/**
 * A named client and its credentials. Each credential is { type, ... } with
 * the keys of its kind (key_auth | basic_auth | jwt_auth | hmac_auth), checked
 * when the config compiles (src/filters/auth/consumers.ts).
 */
export const CREDENTIAL_ENTRY_TITLE = 'meshgate consumer credential';
export const ConsumerSchema = strict({
  name: z.string().min(1),
  credentials: z.array(z.looseObject({ type: z.string().min(1) }).meta({ title: CREDENTIAL_ENTRY_TITLE })).default([]),
});

export const StoreSchema = z.discriminatedUnion('type', [
  strict({ type: z.literal('memory') }),
  strict({ type: z.literal('redis'), redis: strict({ url: z.string().min(1), prefix: z.string().default('meshgate:') }) }),
]);

/** Query parameters the access log redacts unless `log.redactQuery` says otherwise: the usual places for credentials. */
export const DEFAULT_REDACTED_QUERY = ['key', 'apikey', 'api_key', 'token', 'access_token', 'id_token', 'password', 'secret', 'signature', 'sig', 'code'] as const;

export const ConfigSchema = strict({
  listeners: z.array(ListenerSchema).min(1).default([{ name: 'public', address: '127.0.0.1:8080', protocol: 'http', trustForwarded: false, trustedProxies: [], keepAliveTimeoutMs: 65_000, maxHeaderBytes: 16_384, headersTimeoutMs: 60_000, bodyTimeoutMs: 60_000, sendTimeoutMs: 60_000, maxConnections: 10_000, http2: { maxConcurrentStreams: 100, maxResetStreams: 100, resetWindowMs: 10_000, maxSessionMemoryMb: 64, rejectMalformedFields: true } }]),
  admin: AdminSchema.default({ address: '127.0.0.1:8001' }),
  registries: z.array(RegistrySchema).default([]),
  services: z.record(z.string(), ServiceSchema).default({}),
  routes: z.array(RouteSchema).default([]),
  filters: z.array(FilterEntrySchema).default([]),
  consumers: z.array(ConsumerSchema).default([]),
  store: StoreSchema.default({ type: 'memory' }),
  log: strict({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    access: z.boolean().default(true),
    /** Query parameters whose values the access log replaces with "REDACTED" (names compared ignoring case). */
    redactQuery: z.array(z.string().min(1)).default([...DEFAULT_REDACTED_QUERY]),
  }).default({ level: 'info', access: true, redactQuery: [...DEFAULT_REDACTED_QUERY] }),
  /**
   * Which answers carry the request id (`x-request-id`). Gateway-made answers
   * (errors, WAF and auth refusals) always do. `auto`: proxied responses too,
   * except over HTTP/2, where a unique value per response defeats HPACK's
   * header table; `always`; `errors`: gateway-made answers only.
   */
  requestId: strict({
    response: z.enum(['auto', 'always', 'errors']).default('auto'),
  }).default({ response: 'auto' }),
  /** OpenTelemetry traces over OTLP/HTTP; absent: no tracing (and no cost). */
  tracing: strict({
    /** The collector's OTLP/HTTP traces URL, e.g. http://otel-collector:4318/v1/traces */
    endpoint: z.url({ protocol: /^https?$/ }),
    headers: z.record(z.string(), z.string()).default({}),
    serviceName: z.string().min(1).default('meshgate'),
    /** Share of new traces recorded; a client's sampled flag decides for its own traces. */
    sampleRatio: z.number().min(0).max(1).default(1),
    exportDelayMs: positiveInt.default(1000),
    timeoutMs: positiveInt.default(5000),
  }).optional(),
});

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type ListenerConfig = z.output<typeof ListenerSchema>;
export type RegistryConfig = z.output<typeof RegistrySchema>;
export type ServiceConfig = z.output<typeof ServiceSchema>;
export type RouteConfig = z.output<typeof RouteSchema>;
export type AdminConfig = z.output<typeof AdminSchema>;
export type ConsumerConfig = z.output<typeof ConsumerSchema>;
export type BackendConfig = z.output<typeof BackendSchema>;
export type CanaryConfig = z.output<typeof CanarySchema>;
export type FilterConfig = z.output<typeof FilterEntrySchema>;
export type StringMatch = z.output<typeof StringMatchSchema>;
export type PathMatch = z.output<typeof PathMatchSchema>;
export type LoadBalancerConfig = z.output<typeof LoadBalancerSchema>;
export type HashKey = z.output<typeof HashKeySchema>;
export type RetriesConfig = z.output<typeof RetriesSchema>;
export type OutlierDetectionConfig = z.output<typeof OutlierDetectionSchema>;
export type HealthCheckConfig = z.output<typeof HealthCheckSchema>;
export type CircuitBreakerConfig = z.output<typeof CircuitBreakerSchema>;
export type FlowRuleConfig = z.output<typeof FlowRuleSchema>;
export type KeySource = z.output<typeof KeySourceSchema>;
export type DubboRouteConfig = z.output<typeof DubboRouteSchema>;
export type GreyConfig = z.output<typeof GreySchema>;
export type StoreConfig = z.output<typeof StoreSchema>;

export const DEFAULT_SERVICE: ServiceConfig = ServiceSchema.parse({});
