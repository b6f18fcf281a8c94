// Owns every Cluster for the life of the process. Feeds them endpoints from an
// endpoint source (the EndpointTable, or its mirror in a worker) and policy
// from config. Routes hold Cluster references, so a service that appears in a
// registry after start becomes routable without a recompile.
import { EventEmitter } from 'node:events';
import type { ServiceConfig } from '../config/schema.js';
import { DEFAULT_SERVICE } from '../config/schema.js';
import type { Endpoint } from '../discovery/types.js';
import { Cluster } from './cluster.js';

export interface EndpointSource {
  endpointsOf(service: string): readonly Endpoint[] | undefined;
  on(event: 'endpoints', listener: (service: string, endpoints: readonly Endpoint[] | undefined) => void): unknown;
}

/** Events: 'cluster' (cluster: Cluster) when a cluster is created, 'endpoints' (cluster) after its instances change. */
export class ClusterManager extends EventEmitter {
  private readonly clusters = new Map<string, Cluster>();
  private services: Record<string, ServiceConfig> = {};
  /**
   * Bumped when a cluster is created, adopted or dropped, or policies are
   * set: what a reader of all() keyed on it (the health checker) has to look
   * at again. Endpoint changes do not bump it.
   */
  membership = 0;

  constructor(private readonly source: EndpointSource) {
    super();
    this.setMaxListeners(0);
    source.on('endpoints', (service, endpoints) => {
      const c = this.clusters.get(service);
      if (c) {
        c.setEndpoints(endpoints ?? []);
        this.emit('endpoints', c);
      }
    });
  }

  get(service: string): Cluster {
    let c = this.clusters.get(service);
    if (!c) {
      c = new Cluster(service, this.services[service] ?? DEFAULT_SERVICE);
      c.setEndpoints(this.source.endpointsOf(service) ?? []);
      this.clusters.set(service, c);
      this.membership++;
      this.emit('cluster', c);
    }
    return c;
  }

  /**
   * Register a cluster made aside (a compiled config that needed a new
   * service, registered once that config serves). Its endpoints are refreshed
   * from the source; a cluster made meanwhile under the same name is replaced.
   */
  adopt(cluster: Cluster): void {
    const current = this.clusters.get(cluster.name);
    if (current === cluster) return;
    if (current) {
      current.breakers?.close?.();
      current.outlier?.close?.();
    }
    cluster.setConfig(this.services[cluster.name] ?? DEFAULT_SERVICE);
    cluster.setEndpoints(this.source.endpointsOf(cluster.name) ?? []);
    this.clusters.set(cluster.name, cluster);
    this.membership++;
    this.emit('cluster', cluster);
  }

  has(service: string): boolean {
    return this.clusters.has(service);
  }

  all(): Cluster[] {
    return [...this.clusters.values()];
  }

  /** Apply `services:` config to existing and future clusters. */
  setServiceConfigs(services: Record<string, ServiceConfig>): void {
    this.services = services;
    this.membership++;
    for (const c of this.clusters.values()) c.setConfig(services[c.name] ?? DEFAULT_SERVICE);
  }

  /** Drop clusters no route references any more (keeps state of those still in use). */
  retain(inUse: ReadonlySet<string>): Cluster[] {
    const dropped: Cluster[] = [];
    for (const [name, c] of this.clusters) {
      if (!inUse.has(name)) {
        this.clusters.delete(name);
        this.membership++;
        dropped.push(c);
      }
    }
    return dropped;
  }
}
