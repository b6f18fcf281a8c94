// Consul registry: blocking queries on /v1/catalog/services (which services
// exist) and, per service, /v1/health/service/<svc>?passing (its healthy
// instances). Services are named `<service>.<datacenter>.consul`.
//
// A failing query keeps the service's last known endpoints and marks the
// registry down until every query answers again; a service that leaves the
// catalog is removed; a valid empty health answer empties the service.
import Consul from 'consul';
import { parseHostPort, type RegistryFactory, type RegistrySink, type RegistryWatcher } from '../../src/discovery/types.js';
import { parseCatalog, parseHealth } from './parse.js';
import type { ConsulConfig } from './schema.js';
import { BlockingWatch } from './watch.js';

type ConsulClient = InstanceType<typeof Consul>;
/** A client API method as the watch calls it (the client's typings overload on a string argument). */
type QueryMethod = (options: Record<string, unknown>) => Promise<unknown>;

/** Restart backoff after a failed query: 100 ms doubling, capped so a recovered registry is seen within seconds. */
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 5_000;

export function consulServiceName(service: string, datacenter: string): string {
  return `${service}.${datacenter}.consul`;
}

class ConsulWatcher implements RegistryWatcher {
  private readonly clients: ConsulClient[];
  private active = 0;
  private catalog: BlockingWatch | undefined;
  private readonly services = new Map<string, BlockingWatch>();
  /** Services listed by the catalog whose first health answer is still pending (for synced()). */
  private readonly pending = new Set<string>();
  private catalogSeen = false;
  private isSynced = false;
  private stopped = false;
  private aclWarned = false;
  private readonly tags: readonly string[];

  constructor(
    private readonly config: ConsulConfig,
    private readonly sink: RegistrySink,
  ) {
    this.tags = config.tags ?? [];
    this.clients = config.servers.map((s) => {
      const { host, port } = parseHostPort(s);
      return new Consul({ host, port, secure: config.secure });
    });
  }

  private common(): Record<string, unknown> {
    const o: Record<string, unknown> = { dc: this.config.datacenter, wait: `${this.config.waitSec}s` };
    if (this.config.token) o.token = this.config.token;
    return o;
  }

  private newWatch(what: string, method: (c: ConsulClient) => QueryMethod, options: Record<string, unknown>, onData: (data: unknown) => void): BlockingWatch {
    return new BlockingWatch({
      what,
      method,
      options,
      client: () => this.clients[this.active]!,
      backoffBaseMs: BACKOFF_BASE_MS,
      backoffMaxMs: BACKOFF_MAX_MS,
      onData: (data, headers) => {
        if (this.stopped) return;
        if (headers['x-consul-results-filtered-by-acls'] && !this.aclWarned) {
          this.aclWarned = true;
          this.sink.log.warn({ registry: this.config.name, query: what }, 'consul filtered results by ACL: check the registry token');
        }
        onData(data);
        this.updateStatus();
      },
      onError: (err, statusCode, usedClient) => {
        if (this.stopped) return;
        this.sink.log.debug({ registry: this.config.name, err: err.message }, 'consul query failed; restarting it');
        // Rotate to the next server when this one is unreachable or failing (not on a client-side 4xx).
        if (this.clients.length > 1 && (statusCode === undefined || statusCode >= 500) && usedClient === this.clients[this.active]) {
          this.active = (this.active + 1) % this.clients.length;
        }
        this.updateStatus();
      },
    });
  }

  start(): void {
    this.catalog = this.newWatch('catalog', (c) => c.catalog.service.list as unknown as QueryMethod, this.common(), (data) => this.onCatalog(data));
    this.catalog.start();
  }

  private onCatalog(data: unknown): void {
    const listed = parseCatalog(data, this.tags);
    for (const [svc, w] of this.services) {
      if (listed.has(svc)) continue;
      w.stop();
      this.services.delete(svc);
      this.pending.delete(svc);
      this.sink.remove(consulServiceName(svc, this.config.datacenter));
    }
    for (const svc of listed.keys()) {
      if (this.services.has(svc)) continue;
      const opts: Record<string, unknown> = { ...this.common(), service: svc, passing: true };
      // Several tag parameters mean "all of them" on Consul 1.6+; parseHealth filters again for older servers.
      if (this.tags.length) opts.tag = this.tags.length === 1 ? this.tags[0] : [...this.tags];
      const name = consulServiceName(svc, this.config.datacenter);
      const w = this.newWatch(svc, (c) => c.health.service as unknown as QueryMethod, opts, (d) => {
        const eps = parseHealth(d, this.tags);
        if (!this.services.has(svc)) return;
        this.sink.set(name, eps);
        this.pending.delete(svc);
      });
      this.services.set(svc, w);
      this.pending.add(svc);
      w.start();
    }
    this.catalogSeen = true;
  }

  private updateStatus(): void {
    let firstError: string | undefined;
    if (this.catalog?.failing) firstError = this.catalog.lastError;
    else for (const w of this.services.values()) if (w.failing) { firstError = w.lastError; break; }
    if (firstError) {
      this.sink.status(false, firstError);
      return;
    }
    if (!this.catalogSeen) return;
    this.sink.status(true);
    if (!this.isSynced && this.pending.size === 0) {
      this.isSynced = true;
      this.sink.synced();
    }
  }

  stop(): void {
    this.stopped = true;
    this.catalog?.stop();
    for (const w of this.services.values()) w.stop();
    this.services.clear();
    for (const c of this.clients) c.destroy();
  }

  describe(): Record<string, unknown> {
    const failing: Record<string, string> = {};
    if (this.catalog?.lastError) failing.catalog = this.catalog.lastError;
    for (const [svc, w] of this.services) if (w.lastError) failing[svc] = w.lastError;
    return {
      server: this.config.servers[this.active],
      datacenter: this.config.datacenter,
      tags: this.tags,
      catalogIndex: this.catalog?.index,
      watchedServices: this.services.size,
      failing,
    };
  }
}

const createConsul: RegistryFactory<ConsulConfig> = (config, sink) => new ConsulWatcher(config, sink);

export default createConsul;
