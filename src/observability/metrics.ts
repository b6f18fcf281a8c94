// Prometheus metrics (prom-client). One Metrics object per process; in
// cluster mode the primary aggregates every worker's registry for /metrics.
import client from 'prom-client';

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
  private readonly reqChildren = new Map<string, client.Counter.Internal>();
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
    this.requests = new client.Counter({
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
    this.upstreamRequests = new client.Counter({
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
