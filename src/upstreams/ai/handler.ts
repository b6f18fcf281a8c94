// The `ai` route handler: an OpenAI-compatible API (chat completions,
// embeddings, models, responses) and Anthropic's Messages API in front of
// LLM providers.
//
// One call's life: read and parse the body; pick the provider for the model
// (`models:`), check the token rate limit; then attempts. An attempt is one
// provider, one key (rotated; see keys.ts) and, for a discovered service, one
// instance picked by the service's load balancer. A failed attempt (a status
// or "timeout"/"error") may be retried with another key of the same provider
// (non-streaming calls, `retries`), then falls back to the next provider
// (`fallback`). A stream is committed to a provider when its first event
// arrives — the client's head goes out then and not before — so a fallback
// can only happen before the client saw a byte: no client ever gets half of
// one provider's stream followed by another's. After that, a failure is an
// error event and the end of the stream.
//
// Afterwards: usage (reported, or estimated and marked so), metrics, the
// access log's `ai` object, and the real token count charged to the limit.
import type { Cluster } from '../../balancing/cluster.js';
import type { Instance } from '../../balancing/instance.js';
import type { AiProviderConfig, AiRouteConfig } from '../../config/ai-schema.js';
import { readWholeBody } from '../../exchange/body.js';
import type { Cancellation } from '../../exchange/cancel.js';
import type { Exchange } from '../../exchange/exchange.js';
import type { Metrics } from '../../observability/metrics.js';
import type { CompiledRoute } from '../../routing/router.js';
import type { CompileDeps, RouteHandler } from '../route-handlers.js';
import { OpenAIFrames, TranslatedFrames, normaliseError, type ChatFrames, type Frame } from './frames.js';
import { KeyPool } from './keys.js';
import { compileModelMapping, compilePatterns, type PatternTable } from './patterns.js';
import { providerKind, type ProviderKind } from './providers.js';
import { MessagesSink, OpenAISink, SSE_HEADERS, anthropicErrorOf, sendOpenAIError, type ChatSink } from './sinks.js';
import { compileTokenLimit, type TokenLimit } from './token-limit.js';
import { TranslationError } from './translate/common.js';
import { messagesToOpenAI } from './translate/messages-inbound.js';
import { SseParser } from './translate/sse.js';
import type { Json, OpenAIErrorBody, Usage } from './translate/types.js';
import { callProvider, parseBaseUrl, readAll, type CallResult, type Target } from './upstream.js';
import { completionText, estimateUsage, findUsageObject, requestText, usageFromObject } from './usage.js';

/** Largest provider answer read whole (non-stream). */
const MAX_ANSWER_BYTES = 64 * 1024 * 1024;
/** Largest provider error body read. */
const MAX_ERROR_BYTES = 256 * 1024;
/** Distinct model label values per route before the rest count as "other" (the model name comes from clients). */
const MAX_MODEL_LABELS = 200;
/** A longer model name is no model anyone serves: it counts as "other". */
const MAX_MODEL_LABEL_CHARS = 128;

export interface Provider {
  readonly name: string;
  readonly cfg: AiProviderConfig;
  readonly kind: ProviderKind;
  readonly map: (model: string) => string;
  readonly keys: KeyPool;
  /** Fixed endpoint (baseUrl), or undefined for a discovered service. */
  readonly target: Target | undefined;
  readonly service: string | undefined;
  readonly basePath: string;
  readonly timeoutMs: number;
  readonly firstByteTimeoutMs: number;
}

type Failure =
  | { kind: 'status'; status: number; body: Buffer; provider: Provider; headers: Record<string, string> }
  | { kind: 'timeout' | 'error'; message: string; provider: Provider | undefined };

/** What one call records for metrics and the access log. */
class CallRecord {
  provider: Provider | undefined;
  upstreamModel = '';
  attempts = 0;
  providersTried: string[] = [];
  ttftMs: number | undefined;
  /** performance.now() when the current attempt was sent: a stream's first event is due firstByteTimeoutMs after it. */
  attemptStart = 0;
  private used: Usage | undefined;

  constructor(
    readonly model: string,
    readonly stream: boolean,
    readonly api: string,
    /** Charges the token limit; called once, as soon as the usage is known (before the answer ends, so the next call sees it). */
    private charge: ((u: Usage) => void) | undefined,
  ) {}

  get usage(): Usage | undefined {
    return this.used;
  }

  set usage(u: Usage | undefined) {
    this.used = u;
    if (u && this.charge) {
      const c = this.charge;
      this.charge = undefined;
      c(u);
    }
  }
}

/** Does a failure fall in a list like ["429", "5xx", "timeout"]? */
export function failureMatches(list: readonly string[], f: Failure | { kind: 'status'; status: number } | { kind: 'timeout' | 'error' }): boolean {
  if (f.kind !== 'status') return list.includes(f.kind);
  const s = String(f.status);
  for (const e of list) {
    if (e === s) return true;
    if (e.length === 3 && e.endsWith('xx') && e[0] === s[0]) return true;
  }
  return false;
}

function headerText(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

/** The provider's error answer in OpenAI's shape (already in it: kept; otherwise wrapped). */
export function openAIErrorFrom(status: number, body: Buffer): OpenAIErrorBody {
  const text = body.toString('utf8');
  try {
    const j = JSON.parse(text) as Json;
    if (j && typeof j === 'object' && j.error !== undefined) {
      const e = j.error;
      if (typeof e === 'string') return { error: { message: e, type: errorType(status), param: null, code: null } };
      return normaliseError(e, errorType(status)) as unknown as OpenAIErrorBody;
    }
    if (typeof j.message === 'string') return { error: { message: j.message, type: errorType(status), param: null, code: null } };
  } catch {
    /* not JSON */
  }
  return { error: { message: text.trim().slice(0, 1000) || `provider answered ${status}`, type: errorType(status), param: null, code: null } };
}

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Base64 of float32 little-endian values (OpenAI's encoding_format: base64). */
export function floatsToBase64(v: readonly number[]): string {
  const buf = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) buf.writeFloatLE(v[i]!, i * 4);
  return buf.toString('base64');
}

export function base64ToFloats(s: string): number[] {
  const buf = Buffer.from(s, 'base64');
  const out: number[] = [];
  for (let i = 0; i + 4 <= buf.length; i += 4) out.push(buf.readFloatLE(i));
  return out;
}

function weightedOrder(ps: Provider[]): Provider[] {
  const left = ps.filter((p) => p.cfg.weight > 0);
  const out: Provider[] = [];
  while (left.length > 0) {
    const total = left.reduce((s, p) => s + p.cfg.weight, 0);
    let r = Math.random() * total;
    let i = 0;
    for (; i < left.length - 1; i++) {
      r -= left[i]!.cfg.weight;
      if (r < 0) break;
    }
    out.push(left.splice(i, 1)[0]!);
  }
  return out;
}

type Api = 'chat' | 'embeddings' | 'responses' | 'messages';

/** The newest key pool of each provider (route, name, type, endpoint), for the next config to adopt. */
const pools = new Map<string, KeyPool>();

export class AiRouteHandler implements RouteHandler {
  readonly providers: Provider[];
  private readonly byName = new Map<string, Provider>();
  private readonly models: PatternTable<string>;
  private readonly cfg: AiRouteConfig;
  private readonly fallbackOrder: Provider[];
  private readonly metrics: Metrics;
  private readonly clusters: CompileDeps['clusters'];
  private readonly tokenLimit: TokenLimit | undefined;
  private readonly routeName: string;
  private readonly modelLabels = new Set<string>();
  private readonly poolIds: Array<[string, KeyPool]> = [];

  constructor(route: CompiledRoute, deps: CompileDeps) {
    const cfg = route.config.ai!;
    this.cfg = cfg;
    this.routeName = route.name;
    this.metrics = deps.metrics;
    this.clusters = deps.clusters;
    if (route.config.backends.length > 0 || route.config.dubbo || route.config.directResponse) throw new Error('an ai route takes its providers only (no backends, dubbo or directResponse)');
    const log = deps.log;
    this.providers = cfg.providers.map((p, i) => {
      const where = `providers[${i}]`;
      if (this.byName.has(p.name)) throw new Error(`${where}.name: "${p.name}" is used twice`);
      let kind: ProviderKind;
      try {
        kind = providerKind(p);
      } catch (e) {
        throw new Error(`${where}.type: ${(e as Error).message}`);
      }
      if (p.service && p.type !== 'openai_compatible') throw new Error(`${where}.service: only openai_compatible providers take a discovered service`);
      if (p.service && p.baseUrl) throw new Error(`${where}: give baseUrl or service, not both`);
      if (!p.service && !p.baseUrl && !kind.defaultBaseUrl) throw new Error(`${where}.baseUrl: required for type ${p.type}`);
      if (p.api && p.type !== 'ollama') throw new Error(`${where}.api: only ollama providers take api`);
      if (p.apiVersion && p.type !== 'azure') throw new Error(`${where}.apiVersion: only azure providers take apiVersion`);
      const map = compileModelMapping(p.modelMapping, `${where}.modelMapping`);
      let target: Target | undefined;
      if (!p.service) {
        try {
          target = parseBaseUrl(p.baseUrl ?? kind.defaultBaseUrl!);
        } catch {
          throw new Error(`${where}.baseUrl: not a URL`);
        }
      }
      const prov: Provider = {
        name: p.name,
        cfg: p,
        kind,
        map,
        target,
        service: p.service,
        basePath: (p.basePath ?? '/v1').replace(/\/+$/, ''),
        timeoutMs: p.timeoutMs ?? cfg.timeoutMs,
        firstByteTimeoutMs: p.firstByteTimeoutMs ?? cfg.firstByteTimeoutMs,
        keys: new KeyPool(
          p.apiKeys,
          cfg.keyFailover,
          (key) => this.probe(prov, key),
          (key, out) => log.warn({ route: route.name, provider: p.name, key: maskKey(key), out }, out ? 'AI provider key taken out of rotation' : 'AI provider key back in rotation'),
        ),
      };
      // A reload keeps what the previous config learnt about these keys.
      const poolId = `${route.name}\0${p.name}\0${p.type}\0${p.baseUrl ?? p.service ?? ''}`;
      const prev = pools.get(poolId);
      if (prev) prov.keys.adopt(prev);
      pools.set(poolId, prov.keys);
      this.poolIds.push([poolId, prov.keys]);
      this.byName.set(p.name, prov);
      return prov;
    });
    for (const [k, v] of Object.entries(cfg.models)) if (!this.byName.has(v)) throw new Error(`models["${k}"]: no provider named "${v}"`);
    this.models = compilePatterns(cfg.models, 'models');
    for (const p of this.providers) compilePatterns(p.cfg.modelMapping, `providers[${this.providers.indexOf(p)}].modelMapping`);
    const order = cfg.fallback?.order ?? [];
    order.forEach((n, i) => {
      if (!this.byName.has(n)) throw new Error(`fallback.order[${i}]: no provider named "${n}"`);
    });
    this.fallbackOrder = cfg.fallback ? (order.length > 0 ? order.map((n) => this.byName.get(n)!) : this.providers) : [];
    try {
      this.tokenLimit = cfg.tokenRateLimit ? compileTokenLimit(cfg.tokenRateLimit, route.name, deps.store) : undefined;
    } catch (e) {
      throw new Error(`tokenRateLimit: ${(e as Error).message}`);
    }
  }

  close(): void {
    for (const p of this.providers) p.keys.close();
    for (const [id, pool] of this.poolIds) if (pools.get(id) === pool) pools.delete(id);
    this.tokenLimit?.close();
  }

  /** Providers to try for a model, in order: the one `models:` names (else the first), then the fallbacks. */
  candidates(model: string): Provider[] {
    const name = this.models.lookup(model);
    const first = (name !== undefined ? this.byName.get(name) : undefined) ?? this.providers[0]!;
    if (!this.cfg.fallback) return [first];
    const rest = this.cfg.fallback.strategy === 'weighted' ? weightedOrder(this.fallbackOrder) : this.fallbackOrder;
    return [first, ...rest.filter((p) => p !== first)];
  }

  /** Names GET /v1/models lists: the exact names in models: and in each provider's modelMapping. */
  modelList(): Array<{ id: string; owned_by: string }> {
    const seen = new Map<string, string>();
    for (const id of this.models.exactNames) seen.set(id, this.models.lookup(id)!);
    for (const p of this.providers) for (const id of compilePatterns(p.cfg.modelMapping, '').exactNames) if (!seen.has(id)) seen.set(id, p.name);
    return [...seen].map(([id, owner]) => ({ id, owned_by: owner }));
  }

  async handle(ex: Exchange, _route: CompiledRoute, signal: Cancellation): Promise<void> {
    const path = ex.matchPath;
    const method = ex.method;
    if (path.endsWith('/models') && method === 'GET') return this.listModels(ex);
    const mi = path.lastIndexOf('/models/');
    if (mi >= 0 && method === 'GET') return this.oneModel(ex, path.slice(mi + '/models/'.length));
    let api: Api | undefined;
    if (path.endsWith('/chat/completions')) api = 'chat';
    else if (path.endsWith('/embeddings')) api = 'embeddings';
    else if (path.endsWith('/responses')) api = 'responses';
    else if (path.endsWith('/messages')) api = 'messages';
    if (!api) {
      ex.flag = 'NR';
      sendOpenAIError(ex, 404, `no AI API at ${path} (POST /v1/chat/completions, /v1/embeddings, /v1/responses, /v1/messages; GET /v1/models)`, 'invalid_request_error', 'unknown_url');
      return;
    }
    if (method !== 'POST') {
      sendOpenAIError(ex, 405, `${method} is not allowed for ${path}`, 'invalid_request_error', 'method_not_allowed', null, { allow: 'POST' });
      return;
    }
    const refuse = (status: number, message: string, code: string | null = null, param: string | null = null): void => {
      const body: OpenAIErrorBody = { error: { message, type: status === 429 ? 'rate_limit_error' : 'invalid_request_error', param, code } };
      if (api === 'messages') sendRaw(ex, status, JSON.stringify(anthropicErrorOf(status, body)));
      else sendRaw(ex, status, JSON.stringify(body));
    };
    const raw = await readWholeBody(ex.body, this.cfg.maxBodyBytes, (n) => (ex.bytesIn += n));
    if (raw === 'aborted') {
      ex.flag = 'DC';
      ex.status = 499;
      return;
    }
    if (raw === 'too-large') {
      refuse(413, `request body larger than ${this.cfg.maxBodyBytes} bytes`, 'request_too_large');
      return;
    }
    let body: Json;
    try {
      const v = JSON.parse(raw.toString('utf8')) as unknown;
      if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
      body = v as Json;
    } catch {
      refuse(400, 'request body is not a JSON object', 'invalid_json');
      return;
    }
    if (typeof body.model !== 'string' || body.model === '') {
      refuse(400, 'you must provide a model parameter', 'missing_model', 'model');
      return;
    }
    const consumer = ex.consumer ?? '';
    const limitKey = this.tokenLimit?.keyOf(ex);
    if (this.tokenLimit && limitKey !== undefined) {
      const d = await this.tokenLimit.check(limitKey);
      if (!d.allowed) {
        ex.flag = 'RL';
        const retry = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
        const headers = { 'retry-after': String(retry), 'x-ratelimit-limit-tokens': String(d.limit), 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': `${Math.ceil(d.resetMs)}ms` };
        const b: OpenAIErrorBody = { error: { message: `token rate limit reached for this ${this.tokenLimit.describe}; try again in ${retry}s`, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } };
        sendRaw(ex, 429, JSON.stringify(api === 'messages' ? anthropicErrorOf(429, b) : b), headers);
        this.metrics.aiRequests.inc({ route: this.routeName, provider: '', model: this.modelLabel(body.model), consumer, code: '429' });
        return;
      }
    }
    const limit = this.tokenLimit;
    const charge = limit && limitKey !== undefined ? (u: Usage) => void (u.total > 0 ? limit.charge(limitKey, u.total) : undefined) : undefined;
    const rec = new CallRecord(body.model, body.stream === true, api, charge);
    try {
      if (api === 'chat') await this.chat(ex, signal, body, new OpenAISink(ex), rec, body.stream === true && (body.stream_options as Json | undefined)?.include_usage === true);
      else if (api === 'embeddings') await this.embeddings(ex, signal, body, rec);
      else if (api === 'responses') await this.passthrough(ex, signal, body, rec, 'responses');
      else await this.messages(ex, signal, body, rec);
    } catch (e) {
      if (!(e instanceof TranslationError)) throw e;
      if (api === 'messages') sendRaw(ex, e.status, JSON.stringify(anthropicErrorOf(e.status, e.body)));
      else sendRaw(ex, e.status, JSON.stringify(e.body));
    }
    this.finishRecord(ex, rec, consumer);
  }

  private listModels(ex: Exchange): void {
    const created = Math.floor(Date.now() / 1000);
    const data = this.modelList().map((m) => ({ id: m.id, object: 'model', created, owned_by: m.owned_by }));
    sendRaw(ex, 200, JSON.stringify({ object: 'list', data }));
  }

  /** GET /v1/models/{id}: a model the route lists, or 404 as OpenAI answers it. */
  private oneModel(ex: Exchange, raw: string): void {
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      id = raw;
    }
    const m = this.modelList().find((x) => x.id === id);
    if (!m) {
      sendOpenAIError(ex, 404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
      return;
    }
    sendRaw(ex, 200, JSON.stringify({ id: m.id, object: 'model', created: Math.floor(Date.now() / 1000), owned_by: m.owned_by }));
  }

  private modelLabel(model: string): string {
    if (this.modelLabels.has(model)) return model;
    if (model.length > MAX_MODEL_LABEL_CHARS) return 'other';
    if (this.modelLabels.size >= MAX_MODEL_LABELS) return 'other';
    this.modelLabels.add(model);
    return model;
  }

  private finishRecord(ex: Exchange, rec: CallRecord, consumer: string): void {
    const provider = rec.provider?.name ?? '';
    const model = this.modelLabel(rec.upstreamModel || rec.model);
    const labels = { route: this.routeName, provider, model, consumer };
    this.metrics.aiRequests.inc({ ...labels, code: String(ex.status) });
    const u = rec.usage;
    if (u) {
      this.metrics.aiTokens.inc({ ...labels, kind: 'input' }, u.input);
      this.metrics.aiTokens.inc({ ...labels, kind: 'output' }, u.output);
      if (u.estimated) this.metrics.aiEstimatedUsage.inc({ route: this.routeName, provider });
    }
    if (rec.ttftMs !== undefined) this.metrics.aiTimeToFirstToken.observe(labels, rec.ttftMs / 1000);
    if (rec.provider) this.metrics.aiDuration.observe(labels, ex.elapsedMs() / 1000);
    ex.service = provider;
    ex.attempts = rec.attempts;
    ex.vars.ai = {
      api: rec.api,
      provider,
      model: rec.model.length > 256 ? `${rec.model.slice(0, 256)}…` : rec.model,
      upstreamModel: rec.upstreamModel.length > 256 ? `${rec.upstreamModel.slice(0, 256)}…` : rec.upstreamModel,
      stream: rec.stream,
      consumer,
      inputTokens: u?.input ?? 0,
      outputTokens: u?.output ?? 0,
      totalTokens: u?.total ?? 0,
      ...(u?.estimated ? { estimated: true } : {}),
      ...(u?.cachedInput ? { cachedInputTokens: u.cachedInput } : {}),
      ...(rec.ttftMs !== undefined ? { ttftMs: Math.round(rec.ttftMs * 1000) / 1000 } : {}),
      ...(rec.providersTried.length > 1 ? { providersTried: rec.providersTried } : {}),
    };
  }

  // ---------- attempts ----------

  /** Picks the instance of a discovered provider (or the fixed target). */
  private targetOf(p: Provider, ex: Exchange, tried: Set<Instance>): { target: Target; inst?: Instance; cluster?: Cluster } | undefined {
    if (p.target) return { target: p.target };
    const cluster = this.clusters.get(p.service!);
    const inst = cluster.pick(ex, undefined, tried);
    if (!inst) return undefined;
    tried.add(inst);
    return { target: { https: false, host: inst.host, port: inst.port, basePath: p.basePath }, inst, cluster };
  }

  /**
   * Runs attempts across keys and providers until one answers 2xx (then
   * `onSuccess` owns the answer) or every option is spent (then the last
   * failure is answered with `onFail`).
   */
  private async attempts(
    ex: Exchange,
    signal: Cancellation,
    rec: CallRecord,
    stream: boolean,
    providers: Provider[],
    build: (p: Provider, upstreamModel: string, key: string) => { path: string; body: Buffer; headers: Record<string, string> },
    onSuccess: (p: Provider, r: Extract<CallResult, { ok: true }>, upstreamModel: string) => Promise<Failure | 'done' | 'aborted'>,
    onFail: (f: Failure) => void,
  ): Promise<void> {
    let last: Failure | undefined;
    for (const p of providers) {
      const upstreamModel = p.map(rec.model);
      rec.providersTried.push(p.name);
      rec.provider = p;
      rec.upstreamModel = upstreamModel;
      const tries = stream ? 1 : 1 + this.cfg.retries;
      const triedKeys = new Set<string>();
      const triedInst = new Set<Instance>();
      for (let t = 0; t < tries; t++) {
        // Keys not tried yet first; a connection failure or timeout may retry with a tried key (another instance, or the same one again).
        const key = p.keys.pick(triedKeys) ?? (last && last.provider === p && last.kind !== 'status' ? p.keys.pick() : undefined);
        if (key === undefined) break;
        triedKeys.add(key);
        const where = this.targetOf(p, ex, triedInst);
        if (!where) {
          // Every instance tried: the last real failure stands.
          if (triedInst.size === 0) last = { kind: 'error', message: `no available instance of ${p.service}`, provider: p };
          break;
        }
        const req = build(p, upstreamModel, key);
        rec.attempts++;
        rec.attemptStart = performance.now();
        ex.upstreamAddr = `${where.target.host}:${where.target.port}`;
        if (where.inst) where.inst.active++;
        const r = await callProvider(
          where.target,
          { method: 'POST', path: req.path, headers: { ...p.cfg.headers, ...p.kind.auth(key), ...req.headers, 'content-type': 'application/json', 'user-agent': 'meshgate' }, body: req.body, headTimeoutMs: stream ? p.firstByteTimeoutMs : p.timeoutMs },
          signal,
        );
        let f: Failure | undefined;
        if (!r.ok) {
          if (where.inst) where.inst.active--;
          if (r.failure === 'aborted') return this.clientGone(ex);
          f = { kind: r.failure, message: r.message, provider: p };
        } else if (r.status < 200 || r.status >= 300) {
          let errBody: Buffer;
          try {
            errBody = await readAll(r.res, MAX_ERROR_BYTES, p.timeoutMs);
          } catch {
            errBody = Buffer.alloc(0);
          }
          if (where.inst) where.inst.active--;
          const headers: Record<string, string> = {};
          const ra = headerText(r.headers['retry-after']);
          if (ra) headers['retry-after'] = ra;
          f = { kind: 'status', status: r.status, body: errBody, provider: p, headers };
        } else {
          const out = await onSuccess(p, r, upstreamModel).finally(() => {
            if (where.inst) where.inst.active--;
          });
          if (out === 'done') {
            p.keys.success(key);
            return;
          }
          if (out === 'aborted') return this.clientGone(ex);
          f = out;
        }
        if (failureMatches(this.cfg.keyFailover.on, f)) p.keys.failure(key);
        last = f;
        if (signal.aborted) return this.clientGone(ex);
        // Another key of this provider helps with key-level failures and transient ones.
        if (!(failureMatches(this.cfg.keyFailover.on, f) || f.kind !== 'status')) break;
      }
      if (!last || !this.cfg.fallback || !failureMatches(this.cfg.fallback.on, last)) break;
    }
    onFail(last ?? { kind: 'error', message: 'no provider could be tried', provider: undefined });
  }

  private clientGone(ex: Exchange): void {
    ex.flag = 'DC';
    if (!ex.res.headersSent) ex.status = 499;
  }

  /** The error a failure becomes, in OpenAI's shape. */
  private failureAnswer(f: Failure): { status: number; body: OpenAIErrorBody; headers?: Record<string, string> } {
    if (f.kind === 'status') {
      const t = f.provider.kind.translator;
      if (t) {
        const e = t.error(f.status, f.body);
        return { status: e.status, body: e.body, headers: f.headers };
      }
      return { status: f.status, body: openAIErrorFrom(f.status, f.body), headers: f.headers };
    }
    if (f.kind === 'timeout') return { status: 504, body: { error: { message: f.message, type: 'timeout', param: null, code: 'upstream_timeout' } } };
    return { status: 502, body: { error: { message: f.message, type: 'server_error', param: null, code: 'upstream_unavailable' } } };
  }

  // ---------- chat ----------

  /** The OpenAI chat request a provider gets: mapped model, usage forced on for streams, the provider's quirks. */
  private chatRequest(p: Provider, body: Json, upstreamModel: string, stream: boolean): { path: string; body: Buffer; headers: Record<string, string> } {
    const t = p.kind.translator;
    if (t) {
      const pr = t.request(body, upstreamModel, stream);
      return { path: pr.path, body: Buffer.from(JSON.stringify(pr.body)), headers: pr.headers ?? {} };
    }
    const out: Json = { ...body, model: upstreamModel };
    if (stream) {
      // Whatever the client asked: usage is needed for metrics and limits; the extra chunk is removed for clients that did not ask.
      if (p.kind.streamUsageOption) out.stream_options = { ...((body.stream_options as Json | undefined) ?? {}), include_usage: true };
    }
    p.kind.adjust?.(out, stream);
    return { path: p.kind.chatPath(upstreamModel), body: Buffer.from(JSON.stringify(out)), headers: {} };
  }

  private async chat(ex: Exchange, signal: Cancellation, body: Json, sink: ChatSink, rec: CallRecord, includeUsage: boolean): Promise<void> {
    const stream = body.stream === true;
    const providers = this.candidates(rec.model);
    let frames: ChatFrames | undefined;
    await this.attempts(
      ex,
      signal,
      rec,
      stream,
      providers,
      (p, m) => this.chatRequest(p, body, m, stream),
      async (p, r, upstreamModel) => {
        if (!stream) return this.chatOnce(ex, p, r, body, sink, rec, upstreamModel);
        const t = p.kind.translator;
        frames = t ? new TranslatedFrames(t.stream({ id: `chatcmpl-${ex.requestId}`, model: upstreamModel, created: Math.floor(Date.now() / 1000), includeUsage }), true) : new OpenAIFrames(includeUsage, true);
        return this.pump(ex, signal, p, r, frames, sink, rec, body);
      },
      (f) => {
        const a = this.failureAnswer(f);
        ex.flag = f.kind === 'timeout' ? 'UT' : f.kind === 'error' ? 'UF' : '';
        sink.error(a.status, a.body, a.headers);
      },
    );
  }

  private async chatOnce(ex: Exchange, p: Provider, r: Extract<CallResult, { ok: true }>, reqBody: Json, sink: ChatSink, rec: CallRecord, upstreamModel: string): Promise<Failure | 'done'> {
    let raw: Buffer;
    try {
      raw = await readAll(r.res, MAX_ANSWER_BYTES, p.timeoutMs);
    } catch (e) {
      const failure = (e as { failure?: 'timeout' | 'error' }).failure ?? 'error';
      return { kind: failure, message: (e as Error).message, provider: p };
    }
    let parsed: Json;
    try {
      parsed = JSON.parse(raw.toString('utf8')) as Json;
    } catch {
      return { kind: 'error', message: 'provider answered with invalid JSON', provider: p };
    }
    const t = p.kind.translator;
    const completion = t ? t.response(parsed, upstreamModel) : parsed;
    rec.usage = (t ? t.usage(parsed) : usageFromObject(findUsageObject(parsed))) ?? (await estimateUsage(requestText(reqBody), completionText(completion)));
    sink.completion(completion, t ? undefined : raw);
    return 'done';
  }

  /**
   * Streams a provider's answer to the client. Before the first event the
   * stream is not committed: failures return to attempts() (fallback). After
   * it, the provider's pace is the client's: a full client socket pauses the
   * provider read until it drains.
   */
  private pump(ex: Exchange, signal: Cancellation, p: Provider, r: Extract<CallResult, { ok: true }>, frames: ChatFrames, sink: ChatSink, rec: CallRecord, reqBody: Json): Promise<Failure | 'done' | 'aborted'> {
    const up = r.res;
    return new Promise((resolve) => {
      let committed = false;
      let settled = false;
      /** The client's stream was ended (error event or end): nothing more is read or written. */
      let finished = false;
      let idle: NodeJS.Timeout | undefined;
      const first = setTimeout(() => fail({ kind: 'timeout', message: `no first event from ${p.name} within ${p.firstByteTimeoutMs} ms`, provider: p }), firstByteLeft(p, rec));
      const armIdle = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => fail({ kind: 'timeout', message: `${p.name} stopped sending for ${p.timeoutMs} ms`, provider: p }), p.timeoutMs);
      };
      const cleanup = (): void => {
        clearTimeout(first);
        clearTimeout(idle);
        up.off('data', onData);
        up.off('end', onEnd);
        up.off('close', onClose);
        ex.res.off('drain', onDrain);
      };
      const done = (v: Failure | 'done' | 'aborted'): void => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve(v);
      };
      // Before commit: back to attempts(); after: an error event ends the stream.
      const fail = (f: Failure): void => {
        if (settled || finished) return;
        finished = true;
        r.abort();
        if (!committed) return done(f);
        const a = this.failureAnswer(f);
        sink.fail({ data: JSON.stringify(a.body), obj: a.body as unknown as Json, isError: true });
        ex.flag = f.kind === 'timeout' ? 'UT' : 'UF';
        void this.streamUsage(frames, reqBody, rec).then(() => done('done'));
      };
      const commit = (): void => {
        committed = true;
        clearTimeout(first);
        rec.ttftMs = ex.elapsedMs();
        sink.start();
      };
      const onDrain = (): void => {
        up.resume();
      };
      const send = (fs: Frame[]): boolean => {
        const errAt = fs.findIndex((f) => f.isError);
        if (errAt < 0) {
          if (!sink.write(fs)) {
            up.pause();
            ex.res.once('drain', onDrain);
          }
          return true;
        }
        // A mid-stream error from the provider: what came before it, the error event, the end.
        finished = true;
        sink.write(fs.slice(0, errAt));
        sink.fail(fs[errAt]!);
        ex.flag = 'UF';
        r.abort();
        void this.streamUsage(frames, reqBody, rec).then(() => done('done'));
        return false;
      };
      const onData = (chunk: Buffer): void => {
        if (settled || finished) return;
        const fs = frames.push(chunk);
        if (fs.length === 0) return;
        if (!committed) {
          // An error as the very first event is a failed attempt, not a stream: it may still fall back.
          if (fs[0]!.isError) {
            const e = (fs[0]!.obj.error ?? {}) as Json;
            const code = Number(e.code);
            return fail({ kind: 'status', status: code >= 400 && code < 600 ? code : 502, body: Buffer.from(fs[0]!.data), provider: p, headers: {} });
          }
          commit();
        }
        armIdle();
        send(fs);
      };
      const onEnd = (): void => {
        if (settled || finished) return;
        const fs = frames.end();
        if (!committed) {
          if (fs.length === 0 || fs[0]!.isError) return fail({ kind: 'error', message: `${p.name} ended the stream without an event`, provider: p });
          commit();
        }
        if (!send(fs)) return;
        finished = true;
        if (frames instanceof OpenAIFrames && !frames.sawDone) {
          const e = { error: { message: `${p.name} ended the stream early (no [DONE])`, type: 'server_error', param: null, code: 'stream_incomplete' } };
          sink.fail({ data: JSON.stringify(e), obj: e, isError: true });
          ex.flag = 'UF';
          void this.streamUsage(frames, reqBody, rec).then(() => done('done'));
          return;
        }
        void this.streamUsage(frames, reqBody, rec).then((u) => {
          sink.finish(frames.usageChunk(u));
          done('done');
        });
      };
      const onClose = (): void => {
        if (settled || finished) return;
        if (signal.aborted) {
          finished = true;
          void this.streamUsage(frames, reqBody, rec).then(() => done('aborted'));
          return;
        }
        if (!up.complete) fail({ kind: 'error', message: `${p.name} closed the stream early`, provider: p });
      };
      up.on('data', onData);
      up.once('end', onEnd);
      up.once('close', onClose);
    });
  }

  private async streamUsage(frames: ChatFrames, reqBody: Json, rec: CallRecord): Promise<Usage> {
    const u = frames.usage ?? (await estimateUsage(requestText(reqBody), frames.outputText));
    rec.usage = u;
    return u;
  }

  // ---------- messages (Anthropic clients) ----------

  private async messages(ex: Exchange, signal: Cancellation, body: Json, rec: CallRecord): Promise<void> {
    const first = this.candidates(rec.model)[0]!;
    if (first.kind.anthropicNative) return this.passthrough(ex, signal, body, rec, 'messages');
    const chatBody = messagesToOpenAI(body);
    // The converter needs usage with the last chunk, so it is asked for whatever the client is.
    await this.chat(ex, signal, chatBody, new MessagesSink(ex, rec.model), rec, true);
  }

  // ---------- embeddings ----------

  private async embeddings(ex: Exchange, signal: Cancellation, body: Json, rec: CallRecord): Promise<void> {
    const providers = this.candidates(rec.model).filter((p) => p.kind.embeddingsPath);
    if (providers.length === 0) {
      sendOpenAIError(ex, 400, `no provider of this route serves embeddings for ${rec.model}`, 'invalid_request_error', 'unsupported_model', 'model');
      return;
    }
    const wantBase64 = body.encoding_format === 'base64';
    await this.attempts(
      ex,
      signal,
      rec,
      false,
      providers,
      (p, m) => {
        // Floats upstream (not every provider knows base64); encoded here for the client that asked.
        const out: Json = { ...body, model: m };
        delete out.encoding_format;
        return { path: p.kind.embeddingsPath!(m), body: Buffer.from(JSON.stringify(out)), headers: {} };
      },
      async (p, r) => {
        let raw: Buffer;
        let parsed: Json;
        try {
          raw = await readAll(r.res, MAX_ANSWER_BYTES, p.timeoutMs);
          parsed = JSON.parse(raw.toString('utf8')) as Json;
        } catch (e) {
          return { kind: (e as { failure?: 'timeout' | 'error' }).failure ?? 'error', message: (e as Error).message, provider: p };
        }
        if (Array.isArray(parsed.data)) {
          for (const d of parsed.data as Json[]) {
            if (!d || typeof d !== 'object') continue;
            if (wantBase64 && Array.isArray(d.embedding)) d.embedding = floatsToBase64(d.embedding as number[]);
            else if (!wantBase64 && typeof d.embedding === 'string') d.embedding = base64ToFloats(d.embedding);
          }
        }
        const u = usageFromObject(findUsageObject(parsed));
        rec.usage = u ?? (await estimateUsage(requestText(body), ''));
        sendRaw(ex, 200, JSON.stringify(parsed));
        return 'done';
      },
      (f) => {
        const a = this.failureAnswer(f);
        sendRaw(ex, a.status, JSON.stringify(a.body), a.headers);
      },
    );
  }

  // ---------- pass-through: Responses API, Anthropic Messages to Anthropic ----------

  private async passthrough(ex: Exchange, signal: Cancellation, body: Json, rec: CallRecord, which: 'responses' | 'messages'): Promise<void> {
    const stream = body.stream === true;
    const providers = this.candidates(rec.model).filter((p) => (which === 'responses' ? p.kind.responsesPath !== undefined : p.kind.anthropicNative));
    const shape = (status: number, b: OpenAIErrorBody): string => JSON.stringify(which === 'messages' ? anthropicErrorOf(status, b) : b);
    if (providers.length === 0) {
      sendRaw(ex, 400, shape(400, { error: { message: `no provider of this route serves the ${which === 'responses' ? 'Responses' : 'Messages'} API for ${rec.model}`, type: 'invalid_request_error', param: 'model', code: 'unsupported_model' } }));
      return;
    }
    await this.attempts(
      ex,
      signal,
      rec,
      stream,
      providers,
      (p, m) => {
        const headers: Record<string, string> = {};
        if (which === 'messages') {
          headers['anthropic-version'] = ex.header('anthropic-version') ?? '2023-06-01';
          const beta = ex.header('anthropic-beta');
          if (beta) headers['anthropic-beta'] = beta;
        }
        return { path: which === 'responses' ? p.kind.responsesPath! : '/v1/messages', body: Buffer.from(JSON.stringify({ ...body, model: m })), headers };
      },
      async (p, r) => {
        if (!stream) {
          let raw: Buffer;
          try {
            raw = await readAll(r.res, MAX_ANSWER_BYTES, p.timeoutMs);
          } catch (e) {
            return { kind: (e as { failure?: 'timeout' | 'error' }).failure ?? 'error', message: (e as Error).message, provider: p };
          }
          try {
            const j = JSON.parse(raw.toString('utf8')) as Json;
            rec.usage = usageFromObject(j.usage);
          } catch {
            /* usage unknown */
          }
          rec.usage ??= await estimateUsage(requestText(body), '');
          sendRaw(ex, 200, raw);
          return 'done';
        }
        return this.rawPump(ex, signal, p, r, rec, body);
      },
      (f) => {
        if (f.kind === 'status' && which === 'messages') {
          // An Anthropic client gets the provider's own error body.
          sendRaw(ex, f.status, f.body, f.headers);
          return;
        }
        const a = this.failureAnswer(f);
        sendRaw(ex, a.status, shape(a.status, a.body), a.headers);
      },
    );
  }

  /** Streams bytes as the provider sent them, reading usage on the side (Responses: response.usage; Messages: message_start / message_delta). */
  private rawPump(ex: Exchange, signal: Cancellation, p: Provider, r: Extract<CallResult, { ok: true }>, rec: CallRecord, reqBody: Json): Promise<Failure | 'done' | 'aborted'> {
    const up = r.res;
    const parser = new SseParser();
    let usage: Usage | undefined;
    let text = '';
    const sniff = (events: Array<{ data: string }>): void => {
      for (const e of events) {
        if (!e.data.includes('usage') && !e.data.includes('delta')) continue;
        try {
          const j = JSON.parse(e.data) as Json;
          const u = (j.response as Json | undefined)?.usage ?? (j.message as Json | undefined)?.usage ?? j.usage;
          if (u && typeof u === 'object') {
            const got = usageFromObject(u);
            if (got) usage = got;
            else if (usage && typeof (u as Json).output_tokens === 'number') {
              // message_delta: cumulative output tokens (input arrived with message_start).
              const out = (u as Json).output_tokens as number;
              usage = { ...usage, output: out, total: usage.input + out };
            }
          }
          const d = j.delta as Json | undefined;
          if (typeof j.delta === 'string') text += j.delta;
          else if (d && typeof d.text === 'string') text += d.text;
        } catch {
          /* not JSON */
        }
      }
    };
    return new Promise((resolve) => {
      let committed = false;
      let settled = false;
      const first = setTimeout(() => {
        r.abort();
        done({ kind: 'timeout', message: `no first byte from ${p.name} within ${p.firstByteTimeoutMs} ms`, provider: p });
      }, firstByteLeft(p, rec));
      const finishUsage = async (): Promise<void> => {
        rec.usage = usage ?? (await estimateUsage(requestText(reqBody), text));
      };
      const done = (v: Failure | 'done' | 'aborted'): void => {
        if (settled) return;
        settled = true;
        clearTimeout(first);
        up.off('data', onData);
        ex.res.off('drain', onDrain);
        resolve(v);
      };
      const onDrain = (): void => {
        up.resume();
      };
      const onData = (chunk: Buffer): void => {
        if (!committed) {
          committed = true;
          clearTimeout(first);
          rec.ttftMs = ex.elapsedMs();
          ex.status = 200;
          const ct = headerText(r.headers['content-type']) ?? SSE_HEADERS['content-type'];
          ex.res.writeHead(200, { ...SSE_HEADERS, 'content-type': ct, 'x-request-id': ex.requestId });
        }
        sniff(parser.push(chunk));
        ex.bytesOut += chunk.length;
        if (!ex.res.write(chunk)) {
          up.pause();
          ex.res.once('drain', onDrain);
        }
      };
      up.on('data', onData);
      up.once('end', () => {
        if (settled) return;
        sniff(parser.end());
        if (!committed) {
          done({ kind: 'error', message: `${p.name} ended the stream without data`, provider: p });
          return;
        }
        void finishUsage().then(() => {
          ex.res.end();
          done('done');
        });
      });
      up.once('close', () => {
        if (settled || up.complete) return;
        if (signal.aborted) {
          void finishUsage().then(() => done('aborted'));
          return;
        }
        if (!committed) {
          done({ kind: 'error', message: `${p.name} closed the stream early`, provider: p });
          return;
        }
        ex.flag = 'UF';
        ex.res.destroy();
        void finishUsage().then(() => done('done'));
      });
    });
  }

  // ---------- key probes ----------

  private async probe(p: Provider, key: string): Promise<boolean> {
    const ex = { header: () => undefined, clientIp: '', matchPath: '', vars: {} } as unknown as Exchange;
    const where = this.targetOf(p, ex, new Set());
    if (!where) return false;
    const never = { aborted: false, addEventListener() {}, removeEventListener() {} };
    const path = p.kind.probePath;
    const r = await callProvider(where.target, { method: 'GET', path, headers: { ...p.cfg.headers, ...p.kind.auth(key), 'user-agent': 'meshgate' }, headTimeoutMs: 5_000 }, never);
    if (!r.ok) return false;
    r.res.resume();
    return r.status >= 200 && r.status < 300;
  }
}

/** What is left of a stream attempt's first-byte time (the head took part of it). */
function firstByteLeft(p: Provider, rec: CallRecord): number {
  return Math.max(1, p.firstByteTimeoutMs - (performance.now() - rec.attemptStart));
}

function sendRaw(ex: Exchange, status: number, body: string | Buffer, headers?: Record<string, string>): void {
  const res = ex.res;
  if (res.headersSent || res.destroyed) return;
  ex.status = status;
  const len = Buffer.byteLength(body);
  ex.bytesOut += len;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': len, 'x-request-id': ex.requestId, ...headers });
  res.end(body);
}

/** A key as logs show it: its first and last characters. */
export function maskKey(key: string): string {
  if (key.length <= 8) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}…${key.slice(-4)}`;
}
