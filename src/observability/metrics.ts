// Prometheus metrics (prom-client). One Metrics object per process; in
// cluster mode the primary aggregates every worker's registry for /metrics.
//
// Request metrics are counted per request in plain numbers, found through
// nested Maps keyed by the label values as given (no key strings are built per
// request), and handed to the prom-client metrics when they are read:
// prom-client calls each metric's `collect` before every read (/metrics, the
// primary's getMetricsAsJSON of each worker, metric.get()), so a scrape shows
// what prom-client would have counted itself.
import { createRequire } from 'node:module';
import client from 'prom-client';

/** prom-client's key for a label set (lib/util.js), so that a label set is one series however it was counted. */
const { hashObject } = createRequire(import.meta.url)('prom-client/lib/util.js') as {
  hashObject(labels: Labels, sortedLabelNames: string[]): string;
};

/** Label sets kept per metric; past this, a new label set is counted by prom-client directly. */
const MAX_LABEL_SETS = 10_000;

type LabelValue = string | number;
type Labels = Record<string, string>;

/**
 * Per-label-set state found through nested Maps, one level per label, keyed
 * by the label values as given (strings, or a status code as a number). Holds
 * at most MAX_LABEL_SETS label sets; past that, `get2`/`get4` answer undefined for a new one.
 */
class LabelSets<S> {
  private readonly root = new Map<LabelValue, any>();
  readonly all: S[] = [];

  constructor(
    private readonly names: readonly string[],
    private readonly create: (labels: Labels) => S,
  ) {}

  get2(a: LabelValue, b: LabelValue): S | undefined {
    return this.root.get(a)?.get(b) ?? this.add([a, b]);
  }

  get4(a: LabelValue, b: LabelValue, c: LabelValue, d: LabelValue): S | undefined {
    return this.root.get(a)?.get(b)?.get(c)?.get(d) ?? this.add([a, b, c, d]);
  }

  /** The labels object prom-client takes for these values (a number becomes its string: 0 is "0"). */
  labels(values: readonly LabelValue[]): Labels {
    const labels: Labels = {};
    this.names.forEach((name, i) => (labels[name] = String(values[i])));
    return labels;
  }

  private add(values: readonly LabelValue[]): S | undefined {
    if (values.length !== this.names.length) throw new Error(`${values.length} label values for labels ${this.names.join(', ')}`);
    if (this.all.length >= MAX_LABEL_SETS) return undefined;
    let level = this.root;
    for (const v of values.slice(0, -1)) {
      let next = level.get(v);
      if (next === undefined) level.set(v, (next = new Map()));
      level = next;
    }
    const s = this.create(this.labels(values));
    level.set(values[values.length - 1]!, s);
    this.all.push(s);
    return s;
  }
}

/**
 * A counter labelled (x, y, code, z) that counts in plain numbers and adds
 * them to the prom-client counter when metrics are read. `count` is four Map
 * lookups and an addition instead of prom-client's label validation and
 * hashing per inc. Past MAX_LABEL_SETS label sets, new ones count directly.
 */
class BufferedCounter<T extends string> extends client.Counter<T> {
  private readonly sets: LabelSets<{ readonly labels: Labels; n: number }>;

  constructor(config: client.CounterConfiguration<T>) {
    super({ ...config, collect: () => this.flush() });
    this.sets = new LabelSets(config.labelNames ?? [], (labels) => ({ labels, n: 0 }));
  }

  /** Counts one; `code` is a status code as a number, 0 for none (shown as "0"). */
  count(x: string, y: string, code: number, z: string): void {
    const s = this.sets.get4(x, y, code, z);
    if (s !== undefined) s.n++;
    else this.inc(this.sets.labels([x, y, code, z]) as client.LabelValues<T>);
  }

  override reset(): void {
    super.reset();
    for (const s of this.sets?.all ?? []) s.n = 0; // prom-client's constructor calls reset before `sets` exists
  }

  private flush(): void {
    for (const s of this.sets.all) {
      if (s.n === 0) continue;
      const n = s.n;
      s.n = 0;
      this.inc(s.labels as client.LabelValues<T>, n);
    }
  }
}

/**
 * A counter labelled (x, y) that adds amounts (bytes; WAF matches one at a
 * time) in plain numbers and hands them to prom-client when metrics are read,
 * like BufferedCounter.
 */
class BufferedSum<T extends string> extends client.Counter<T> {
  private readonly sets: LabelSets<{ readonly labels: Labels; n: number }>;

  constructor(config: client.CounterConfiguration<T>) {
    super({ ...config, collect: () => this.flush() });
    this.sets = new LabelSets(config.labelNames ?? [], (labels) => ({ labels, n: 0 }));
  }

  add2(x: string, y: string, n: number): void {
    if (!(n > 0)) return;
    const s = this.sets.get2(x, y);
    if (s !== undefined) s.n += n;
    else this.inc(this.sets.labels([x, y]) as client.LabelValues<T>, n);
  }

  override reset(): void {
    super.reset();
    for (const s of this.sets?.all ?? []) s.n = 0;
  }

  private flush(): void {
    for (const s of this.sets.all) {
      if (s.n === 0) continue;
      const n = s.n;
      s.n = 0;
      this.inc(s.labels as client.LabelValues<T>, n);
    }
  }
}

/** What prom-client's Histogram keeps per label set (lib/histogram.js, createBaseValues). */
interface HistogramEntry {
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

interface Bins {
  readonly labels: Labels;
  /** prom-client's key for the label set. */
  readonly key: string;
  /** prom-client's values for the label set; sum and count are added to per observation. */
  entry: HistogramEntry;
  /** Observations per bucket since the last read (not cumulative); the last slot is past every bound. */
  readonly counts: number[];
}

/**
 * A histogram labelled (x, y) that finds a label set through two Map lookups,
 * counts its bucket in an array and adds to prom-client's sum and count of the
 * label set as prom-client's observe would (same additions in the same order,
 * so `_sum` rounds identically); the bucket counts are added to prom-client's
 * when metrics are read, which then renders buckets, `+Inf`, `_sum` and
 * `_count` itself. Past MAX_LABEL_SETS label sets, new ones go to observe().
 */
class BufferedHistogram<T extends string> extends client.Histogram<T> {
  private readonly bounds: readonly number[];
  private readonly sets: LabelSets<Bins>;

  constructor(config: client.HistogramConfiguration<T> & { buckets: number[] }) {
    super({ ...config, collect: () => this.flush() });
    this.bounds = config.buckets;
    const sorted = [...(config.labelNames ?? [])].sort();
    this.sets = new LabelSets(config.labelNames ?? [], (labels) => {
      const key = hashObject(labels, sorted);
      return { labels, key, entry: this.entry(key, labels), counts: new Array<number>(this.bounds.length + 1).fill(0) };
    });
  }

  observe2(x: string, y: string, value: number): void {
    const s = Number.isFinite(value) ? this.sets.get2(x, y) : undefined;
    if (s === undefined) {
      this.observe(this.sets.labels([x, y]) as client.LabelValues<T>, value); // validates value as well
      return;
    }
    // le: a value equal to a bound counts in that bound's bucket.
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    s.counts[i]!++;
    const e = s.entry;
    e.sum += value;
    e.count++;
  }

  /** prom-client forgets every label set; known ones start again from zero. */
  override reset(): void {
    super.reset();
    for (const s of this.sets?.all ?? []) {
      s.counts.fill(0);
      s.entry = this.entry(s.key, s.labels);
    }
  }

  /** prom-client's entry for a label set, created by its `zero` when missing. */
  private entry(key: string, labels: Labels): HistogramEntry {
    const internal = this as unknown as { hashMap: Record<string, HistogramEntry> };
    if (internal.hashMap[key] === undefined) this.zero(labels as client.LabelValues<T>);
    return internal.hashMap[key]!;
  }

  private flush(): void {
    const bounds = this.bounds;
    for (const s of this.sets.all) {
      const { counts } = s;
      for (let i = 0; i < bounds.length; i++) {
        if (counts[i] === 0) continue;
        s.entry.bucketValues[bounds[i]!]! += counts[i]!;
        counts[i] = 0;
      }
      counts[bounds.length] = 0; // past the last bound: only in +Inf, which is the count
    }
  }
}

/** Seconds: request and upstream latency histograms share these buckets, so their quantiles compare. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** meshgate_requests_total and meshgate_request_duration_seconds summed over every route and service. */
export interface RequestTotals {
  requests: number;
  /** Requests answered with a 5xx or carrying a flag (a failure the gateway names). */
  errors: number;
  byFlag: Record<string, number>;
  /** Upper bounds (seconds) of the latency buckets, ascending, and the cumulative count at each; `count` is +Inf. */
  bounds: number[];
  cumulative: number[];
  count: number;
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: BufferedCounter<'route' | 'service' | 'code' | 'flag'>;
  readonly duration: BufferedHistogram<'route' | 'service'>;
  readonly upstreamRequests: BufferedCounter<'service' | 'endpoint' | 'code' | 'result'>;
  /** Per upstream attempt: time to the response headers (or to the failure), by service and result. */
  readonly upstreamDuration: BufferedHistogram<'service' | 'result'>;
  /** Downstream body bytes by route and direction (in: request bodies read, out: response bytes sent). */
  readonly bytes: BufferedSum<'route' | 'direction'>;
  readonly endpoints: client.Gauge<'service'>;
  readonly registryUp: client.Gauge<'registry'>;
  readonly configReloads: client.Counter<'result'>;
  readonly ejected: client.Gauge<'service' | 'endpoint'>;
  readonly instanceHealthy: client.Gauge<'service' | 'endpoint'>;
  readonly circuitState: client.Gauge<'service' | 'scope'>;
  readonly rejections: client.Counter<'reason' | 'route' | 'filter'>;
  /** WAF rule matches by rule family (942 = SQLi, ...) and route: counted in plain numbers per match (add2(route, family, 1)), handed to prom-client when metrics are read. */
  readonly wafMatches: BufferedSum<'route' | 'family'>;
  /** Requests the WAF blocked (mode block) or would have blocked (mode detect). */
  readonly wafBlocks: client.Counter<'route' | 'family' | 'mode'>;
  /** Requests CC rules refused (mode block) or would have refused (mode detect). */
  readonly ccRejections: client.Counter<'route' | 'rule' | 'mode'>;
  /** CC checks a shared store (Redis) failed to answer: the rule's onStoreError applied. */
  readonly ccStoreErrors: client.Counter<'route' | 'rule'>;
  readonly retries: client.Counter<'service' | 'reason'>;
  /** Upstream TLS handshakes that failed, by service and reason (the OpenSSL/Node code: CERT_HAS_EXPIRED, ERR_TLS_CERT_ALTNAME_INVALID, ...). */
  readonly upstreamTlsFailures: client.Counter<'service' | 'reason'>;
  /** AI routes (src/upstreams/ai): tokens by kind (input | output), calls, time to first token, call duration. */
  readonly aiTokens: client.Counter<'route' | 'provider' | 'model' | 'consumer' | 'kind'>;
  readonly aiRequests: client.Counter<'route' | 'provider' | 'model' | 'consumer' | 'code'>;
  readonly aiTimeToFirstToken: client.Histogram<'route' | 'provider' | 'model' | 'consumer'>;
  readonly aiDuration: client.Histogram<'route' | 'provider' | 'model' | 'consumer'>;
  readonly aiEstimatedUsage: client.Counter<'route' | 'provider'>;

  /**
   * role 'all': one process does everything; 'data': a worker (request metrics);
   * 'control': the primary of a worker cluster (registry and endpoint metrics).
   * Each metric is registered in exactly one role so cluster-wide output has no duplicates.
   */
  constructor(opts: { processMetrics?: boolean; role?: 'all' | 'data' | 'control' } = {}) {
    const role = opts.role ?? 'all';
    const data = role !== 'control' ? [this.registry] : [];
    const control = role !== 'data' ? [this.registry] : [];
    if (opts.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    this.requests = new BufferedCounter({
      name: 'meshgate_requests_total',
      help: 'Downstream requests by route, service, status code and response flag',
      labelNames: ['route', 'service', 'code', 'flag'],
      registers: data,
    });
    this.duration = new BufferedHistogram({
      name: 'meshgate_request_duration_seconds',
      help: 'Downstream request duration until the response ended',
      labelNames: ['route', 'service'],
      buckets: LATENCY_BUCKETS,
      registers: data,
    });
    this.upstreamRequests = new BufferedCounter({
      name: 'meshgate_upstream_requests_total',
      // `endpoint`, not `instance`: Prometheus gives every scraped target an `instance` label of its own.
      help: 'Upstream attempts by service, endpoint (host:port), status code and result',
      labelNames: ['service', 'endpoint', 'code', 'result'],
      registers: data,
    });
    this.upstreamDuration = new BufferedHistogram({
      name: 'meshgate_upstream_duration_seconds',
      help: 'Upstream attempt time to the response headers (or to the failure), by service and result (ok, retried, or the failure kind)',
      labelNames: ['service', 'result'],
      buckets: LATENCY_BUCKETS,
      registers: data,
    });
    this.bytes = new BufferedSum({
      name: 'meshgate_downstream_bytes_total',
      help: 'Body bytes by route: direction "in" read from clients, "out" sent to them',
      labelNames: ['route', 'direction'],
      registers: data,
    });
    this.endpoints = new client.Gauge({
      name: 'meshgate_endpoints',
      help: 'Instances known per service',
      labelNames: ['service'],
      registers: control,
    });
    this.registryUp = new client.Gauge({
      name: 'meshgate_registry_up',
      help: '1 when the registry answered its last request, else 0',
      labelNames: ['registry'],
      registers: control,
    });
    this.configReloads = new client.Counter({
      name: 'meshgate_config_reloads_total',
      help: 'Config reloads by result (applied | rejected)',
      labelNames: ['result'],
      registers: control,
    });
    this.ejected = new client.Gauge({
      name: 'meshgate_outlier_ejected',
      aggregator: 'max', // across workers
      help: '1 while an endpoint is ejected by outlier detection',
      labelNames: ['service', 'endpoint'],
      registers: data,
    });
    this.instanceHealthy = new client.Gauge({
      name: 'meshgate_instance_healthy',
      aggregator: 'min', // across workers
      help: 'Active health check verdict per endpoint (1 healthy, 0 unhealthy)',
      labelNames: ['service', 'endpoint'],
      registers: data,
    });
    this.circuitState = new client.Gauge({
      name: 'meshgate_circuit_state',
      aggregator: 'max', // across workers
      help: 'Circuit breaker state: 0 closed, 1 open, 2 half-open',
      labelNames: ['service', 'scope'],
      registers: data,
    });
    this.rejections = new client.Counter({
      name: 'meshgate_rejections_total',
      help: 'Requests rejected by filters and breakers, by reason (flag)',
      labelNames: ['reason', 'route', 'filter'],
      registers: data,
    });
    this.wafMatches = new BufferedSum({
      name: 'meshgate_waf_matches_total',
      help: 'WAF rule matches by rule family (CRS file number, e.g. 942 SQL injection) and route',
      labelNames: ['route', 'family'],
      registers: data,
    });
    this.wafBlocks = new client.Counter({
      name: 'meshgate_waf_blocks_total',
      help: 'Requests the WAF blocked (mode block) or would have blocked (mode detect), by the family of the highest-scoring match',
      labelNames: ['route', 'family', 'mode'],
      registers: data,
    });
    this.ccRejections = new client.Counter({
      name: 'meshgate_cc_rejections_total',
      help: 'Requests CC rules refused (mode block) or would have refused (mode detect), by route and rule',
      labelNames: ['route', 'rule', 'mode'],
      registers: data,
    });
    this.ccStoreErrors = new client.Counter({
      name: 'meshgate_cc_store_errors_total',
      help: 'CC checks the shared store failed to answer in time (the rule fell back as its onStoreError says)',
      labelNames: ['route', 'rule'],
      registers: data,
    });
    this.retries = new client.Counter({
      name: 'meshgate_retries_total',
      help: 'Upstream retries by service and reason',
      labelNames: ['service', 'reason'],
      registers: data,
    });
    this.upstreamTlsFailures = new client.Counter({
      name: 'meshgate_upstream_tls_failures_total',
      help: 'Upstream TLS handshakes that failed, by service and reason',
      labelNames: ['service', 'reason'],
      registers: data,
    });
    const aiBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300];
    this.aiTokens = new client.Counter({
      name: 'meshgate_ai_tokens_total',
      help: 'LLM tokens by route, provider, model (as sent to the provider), consumer and kind (input | output)',
      labelNames: ['route', 'provider', 'model', 'consumer', 'kind'],
      registers: data,
    });
    this.aiRequests = new client.Counter({
      name: 'meshgate_ai_requests_total',
      help: 'AI route calls by route, provider (the one that answered, or the last tried), model, consumer and status code sent',
      labelNames: ['route', 'provider', 'model', 'consumer', 'code'],
      registers: data,
    });
    this.aiTimeToFirstToken = new client.Histogram({
      name: 'meshgate_ai_time_to_first_token_seconds',
      help: 'Streams: time from the request to the first chunk sent to the client',
      labelNames: ['route', 'provider', 'model', 'consumer'],
      buckets: aiBuckets,
      registers: data,
    });
    this.aiDuration = new client.Histogram({
      name: 'meshgate_ai_duration_seconds',
      help: 'AI calls: time from the request to the end of the answer',
      labelNames: ['route', 'provider', 'model', 'consumer'],
      buckets: aiBuckets,
      registers: data,
    });
    this.aiEstimatedUsage = new client.Counter({
      name: 'meshgate_ai_estimated_usage_total',
      help: 'AI calls whose provider reported no usage: tokens were counted by the gateway (estimate)',
      labelNames: ['route', 'provider'],
      registers: data,
    });
  }

  /** Per request: `code` is the status as a number (0 for none), route and service as compiled from the config. */
  observeRequest(route: string, service: string, code: number, flag: string, seconds: number): void {
    this.requests.count(route, service, code, flag);
    this.duration.observe2(route, service, seconds);
    // The same request summed over routes as it is counted: what the console's live figures read.
    const sums = this.sums;
    sums.count++;
    if (flag !== '') sums.byFlag[flag] = (sums.byFlag[flag] ?? 0) + 1;
    if (flag !== '' || code >= 500) sums.errors++;
    const b = LATENCY_BUCKETS;
    for (let i = 0; i < b.length; i++) {
      if (seconds <= b[i]!) {
        sums.inBucket[i]!++;
        break;
      }
    }
  }

  /**
   * The request counters summed over every label set (as summing the
   * registry's meshgate_requests_total and meshgate_request_duration_seconds
   * would give), kept as requests are counted: reading them costs the same at
   * one route or 10,000 (prom-client's get() built 50-100 ms of objects at
   * 2,000 routes, in the process serving requests).
   */
  requestTotals(): RequestTotals {
    const s = this.sums;
    const cumulative: number[] = [];
    let run = 0;
    for (const n of s.inBucket) cumulative.push((run += n));
    return { requests: s.count, errors: s.errors, byFlag: { ...s.byFlag }, bounds: [...LATENCY_BUCKETS], cumulative, count: s.count };
  }

  private readonly sums = { count: 0, errors: 0, byFlag: {} as Record<string, number>, inBucket: new Float64Array(LATENCY_BUCKETS.length) };

  /** Per upstream attempt: `status` is the upstream status as a number, 0 when none arrived. */
  countUpstream(service: string, endpoint: string, status: number, result: string, seconds: number): void {
    this.upstreamRequests.count(service, endpoint, status, result);
    this.upstreamDuration.observe2(service, result, seconds);
  }

  /** Per request, at its end. */
  countBytes(route: string, bytesIn: number, bytesOut: number): void {
    this.bytes.add2(route, 'in', bytesIn);
    this.bytes.add2(route, 'out', bytesOut);
  }
}
