// A routable instance of a service as the data plane sees it: the registry's
// endpoint plus live state (in-flight requests, health check verdict,
// outlier ejection). Instance objects survive endpoint updates and config
// reloads as long as host:port stays in the service, so their state does too.
import { endpointKey, type Endpoint } from '../discovery/types.js';

export class Instance {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  metadata: Record<string, string>;
  /** Health as the registry reports it. */
  registryHealthy: boolean;
  /** Verdict of active health checks (true until a checker says otherwise). */
  checkHealthy = true;
  /** Outlier detection: ejected until this time (ms since epoch), 0 = not ejected. */
  ejectedUntil = 0;
  ejections = 0;
  consecutive5xx = 0;
  consecutiveGatewayFailures = 0;
  consecutiveConnectFailures = 0;
  /** Requests in flight to this instance. */
  active = 0;

  constructor(e: Endpoint) {
    this.id = endpointKey(e);
    this.host = e.host;
    this.port = e.port;
    this.weight = e.weight;
    this.metadata = e.metadata;
    this.registryHealthy = e.healthy;
  }

  update(e: Endpoint): void {
    this.weight = e.weight;
    this.metadata = e.metadata;
    this.registryHealthy = e.healthy;
  }

  /** May the load balancer pick this instance now? */
  available(now: number): boolean {
    return this.weight > 0 && this.registryHealthy && this.checkHealthy && (this.ejectedUntil === 0 || this.ejectedUntil <= now);
  }

  toJSON(): Record<string, unknown> {
    const now = Date.now();
    return {
      host: this.host,
      port: this.port,
      weight: this.weight,
      healthy: this.registryHealthy && this.checkHealthy,
      registryHealthy: this.registryHealthy,
      checkHealthy: this.checkHealthy,
      ejected: this.ejectedUntil > now,
      ejectedUntil: this.ejectedUntil > now ? new Date(this.ejectedUntil).toISOString() : undefined,
      active: this.active,
      metadata: this.metadata,
    };
  }
}
