// Prometheus metrics (prom-client). One Metrics object per process; in
// cluster mode the primary aggregates every worker's registry for /metrics.
import client from 'prom-client';

type CounterChild = client.Counter.Internal;

/**
 * A counter whose label-bound children count in plain numbers and add them
 * to the prom-client counter when metrics are read (prom-client calls
 * `collect` before every read). Per request that is one Map lookup and an
 * addition instead of prom-client's label validation and hashing per inc;
 * what a scrape shows is the same. Children are kept for at most `maxChildren`
 * label sets; past that, children count directly in prom-client.
 */
class BufferedCounter<T extends string> extends client.Counter<T> {
  private readonly buffered = new Map<string, { labels: client.LabelValues<T>; n: number; child: CounterChild }>();

  constructor(
    config: client.CounterConfiguration<T>,
    private readonly maxChildren = 10_000,
  ) {
    super({ ...config, collect: () => this.flush() });
  }

  override labels(...args: unknown[]): CounterChild {
    if (args.length === 0 || typeof args[0] !== 'string') return super.labels(...(args as [client.LabelValues<T>]));
    const values = args as string[];
    const key = values.length === 1 ? values[0]! : values.join('\u0000');
    const hit = this.buffered.get(key);
    if (hit) return hit.child;
    const direct = super.labels(...values); // validates the label count
    if (this.buffered.size >= this.maxChildren) return direct;
    const labels = {} as Record<string, string>;
    (this as unknown as { labelNames: string[] }).labelNames.forEach((name, i) => (labels[name] = values[i]!));
    const entry = {
      labels: labels as client.LabelValues<T>,
      n: 0,
      child: {
        inc: (value?: number): void => {
          // Anything but a plain positive count goes to prom-client, which validates it.
          if (value === undefined) entry.n++;
          else if (value > 0 && Number.isFinite(value)) entry.n += value;
          else direct.inc(value);
        },
      } as CounterChild,
    };
    this.buffered.set(key, entry);
    return entry.child;
  }

  private flush(): void {
    for (const e of this.buffered.values()) {
      if (e.n === 0) continue;
      const n = e.n;
      e.n = 0;
      this.inc(e.labels, n);
    }
  }
}

export class Metrics {
  readonly registry = new client.Registry();
  readonly requests: client.Counter<'route' | 'service' | 'code' | 'flag'>;
  readonly duration: client.Histogram<'route' | 'service'>;
  readonly upstreamRequests: client.Counter<'service' | 'instance' | 'code' | 'result'>;
  readonly endpoints: client.Gauge<'service'>;
  readonly registryUp: client.Gauge<'registry'>;
  readonly configReloads: client.Counter<'result'>;
  readonly ejected: client.Gauge<'service' | 'instance'>;
  readonly instanceHealthy: client.Gauge<'service' | 'instance'>;
  readonly circuitState: client.Gauge<'service' | 'scope'>;
  readonly rejections: client.Counter<'reason' | 'route' | 'filter'>;
  readonly retries: client.Counter<'service' | 'reason'>;
  /** Cache of label-bound children: avoids a label lookup per request. */
  private readonly reqChildren = new Map<string, CounterChild>();
  private readonly durChildren = new Map<string, client.Histogram.Internal<'route' | 'service'>>();

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
    this.duration = new client.Histogram({
      name: 'meshgate_request_duration_seconds',
      help: 'Downstream request duration until the response ended',
      labelNames: ['route', 'service'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: data,
    });
    this.upstreamRequests = new BufferedCounter({
      name: 'meshgate_upstream_requests_total',
      help: 'Upstream attempts by service, instance, status code and result',
      labelNames: ['service', 'instance', 'code', 'result'],
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
      help: '1 while an instance is ejected by outlier detection',
      labelNames: ['service', 'instance'],
      registers: data,
    });
    this.instanceHealthy = new client.Gauge({
      name: 'meshgate_instance_healthy',
      aggregator: 'min', // across workers
      help: 'Active health check verdict per instance (1 healthy, 0 unhealthy)',
      labelNames: ['service', 'instance'],
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
    this.retries = new client.Counter({
      name: 'meshgate_retries_total',
      help: 'Upstream retries by service and reason',
      labelNames: ['service', 'reason'],
      registers: data,
    });
  }

  observeRequest(route: string, service: string, code: number, flag: string, seconds: number): void {
    const key = `${route}\u0000${service}\u0000${code}\u0000${flag}`;
    let c = this.reqChildren.get(key);
    if (!c) {
      c = this.requests.labels(route, service, String(code), flag);
      if (this.reqChildren.size < 10_000) this.reqChildren.set(key, c);
    }
    c.inc();
    const dk = `${route}\u0000${service}`;
    let h = this.durChildren.get(dk);
    if (!h) {
      h = this.duration.labels(route, service);
      if (this.durChildren.size < 10_000) this.durChildren.set(dk, h);
    }
    h.observe(seconds);
  }
}
