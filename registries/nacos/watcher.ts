// The Nacos watcher.
//
// - Which services exist: GET /nacos/v1/ns/service/list per configured group,
//   every serviceListIntervalMs (Nacos offers no push for this). New services
//   are fetched and subscribed at once; services no longer listed are removed.
// - Instances: the npm client's subscription (UDP push, applied at once, plus
//   its own polling), observed at the point where every ServiceInfo enters the
//   client (see client.ts), and our own direct poll every pollIntervalMs as the
//   fallback. Answers are ordered by lastRefTime: an older answer never
//   overwrites a newer one.
// - A valid answer with no hosts empties the service. An error or a malformed
//   answer changes nothing (keep last known); failures of our own calls mark
//   the registry down until a call succeeds again.
import type { Endpoint, RegistrySink, RegistryWatcher } from '../../src/discovery/types.js';
import { NacosApi } from './api.js';
import { NamingClient, type HostsListener } from './client.js';
import { BadAnswer, hostToEndpoint, nacosServiceName, parseServiceInfo, type ParsedServiceInfo } from './parse.js';
import type { NacosConfig } from './schema.js';
import { eachLimited, errText, Repeat, takeListedPage } from './tasks.js';

interface Tracked {
  group: string;
  service: string;
  /** group@@service, the name Nacos answers with */
  grouped: string;
  gatewayName: string;
  lastRefTime: number;
  listener: HostsListener;
  /** An answer (valid or empty) has been applied. */
  known: boolean;
  /** The last listing that named it (see refreshServices). */
  listed: number;
}

const FETCH_CONCURRENCY = 32;


export class NacosWatcher implements RegistryWatcher {
  private readonly api: NacosApi;
  private client: NamingClient | undefined;
  private readonly clusters: string;
  /** by group@@service */
  private readonly tracked = new Map<string, Tracked>();
  private lister: Repeat | undefined;
  private poller: Repeat | undefined;
  private stopped = false;
  private synced = false;
  private listing = false;
  /** Numbers the listings (Tracked.listed). */
  private listings = 0;
  private polling = false;
  private lastError: string | undefined;
  private lastListAt: number | undefined;
  private pushesSeen = 0;
  private garbageSeen = 0;

  constructor(
    private readonly config: NacosConfig,
    private readonly sink: RegistrySink,
  ) {
    this.clusters = config.clusters.join(',');
    this.api = new NacosApi({
      servers: config.servers,
      namespace: config.namespace,
      username: config.username,
      password: config.password,
      accessToken: config.accessToken,
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.client = new NamingClient({
      servers: this.config.servers,
      namespace: this.config.namespace,
      httpclient: this.api.httpClient(),
      logger: {
        debug: (msg, ...args) => this.sink.log.debug({ registry: this.config.name, args }, `nacos client: ${msg}`),
        warn: (msg, ...args) => this.sink.log.warn({ registry: this.config.name, args }, `nacos client: ${msg}`),
      },
      onServiceInfo: (json) => this.onClientServiceInfo(json),
      onError: (err) => this.sink.log.debug({ registry: this.config.name, err: errText(err) }, 'nacos client error'),
    });
    await this.client.ready();
    // The first listing runs now; start() does not wait for the registry to answer.
    void this.refreshServices();
    this.lister = new Repeat(this.config.serviceListIntervalMs, () => this.refreshServices());
    this.poller = new Repeat(this.config.pollIntervalMs, () => this.pollAll());
    if (this.stopped) return;
    this.lister.start();
    this.poller.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.lister?.stop();
    this.poller?.stop();
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => {});
    await this.api.close().catch(() => {});
  }

  describe(): Record<string, unknown> {
    return {
      servers: this.config.servers,
      namespace: this.config.namespace,
      groups: this.config.groups,
      clusters: this.config.clusters,
      services: this.tracked.size,
      observingClient: this.client?.observing ?? false,
      lastListAt: this.lastListAt,
      lastError: this.lastError,
      answersFromClient: this.pushesSeen,
      badAnswers: this.garbageSeen,
    };
  }

  private down(err: unknown): void {
    this.lastError = errText(err);
    this.sink.status(false, this.lastError);
  }

  private up(): void {
    this.lastError = undefined;
    this.sink.status(true);
  }

  /**
   * Lists every group's services; subscribes new ones, removes gone ones.
   * Each page is taken in as it arrives (known services marked with this
   * listing's number, new ones noted), so a listing of 10,000 services does
   * not hold the event loop in one turn; nothing is added or removed unless
   * every page came.
   */
  async refreshServices(): Promise<void> {
    if (this.listing || this.stopped) return;
    this.listing = true;
    try {
      const listing = ++this.listings;
      const added = new Map<string, { group: string; service: string }>();
      try {
        for (const group of this.config.groups) {
          await this.api.eachServicePage(group, (names) => takeListedPage(this.tracked, listing, group, names, added));
        }
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof BadAnswer) {
          this.garbageSeen++;
          this.sink.log.warn({ registry: this.config.name, err: err.message }, 'nacos service list unreadable; keeping last known services');
        }
        this.down(err instanceof BadAnswer ? `bad answer: ${err.message}` : err);
        return;
      }
      if (this.stopped) return;
      this.lastListAt = Date.now();
      this.up();
      for (const [key, t] of this.tracked) {
        if (t.listed === listing) continue;
        this.tracked.delete(key);
        this.client?.unsubscribe(t.service, t.group, this.clusters, t.listener);
        this.sink.remove(t.gatewayName);
      }
      const fresh: Tracked[] = [];
      for (const [key, { group, service }] of added) {
        if (this.tracked.has(key)) continue;
        const t: Tracked = {
          group,
          service,
          grouped: key,
          gatewayName: nacosServiceName(service, group, this.config.namespace),
          lastRefTime: 0,
          known: false,
          listed: listing,
          listener: (hosts) => this.onListenerHosts(t, hosts),
        };
        this.tracked.set(key, t);
        fresh.push(t);
      }
      // Fetch new services ourselves (routable now), then let the client subscribe (push).
      await eachLimited(fresh, FETCH_CONCURRENCY, async (t) => void (await this.fetch(t)));
      for (const t of fresh) if (this.tracked.get(t.grouped) === t) this.client?.subscribe(t.service, t.group, this.clusters, t.listener);
      if (!this.synced && !this.stopped) {
        this.synced = true;
        this.sink.synced();
      }
    } finally {
      this.listing = false;
    }
  }

  /** Our own instance/list call for one service. */
  private async fetch(t: Tracked): Promise<boolean> {
    let text: string;
    try {
      text = await this.api.instanceList(t.grouped, this.clusters);
    } catch (err) {
      if (!this.stopped) {
        this.sink.log.debug({ registry: this.config.name, service: t.gatewayName, err: errText(err) }, 'nacos instance list failed');
        this.down(err);
      }
      return false;
    }
    if (this.stopped || this.tracked.get(t.grouped) !== t) return true;
    try {
      this.apply(t, parseServiceInfo(text));
    } catch (err) {
      this.garbageSeen++;
      this.sink.log.warn({ registry: this.config.name, service: t.gatewayName, err: errText(err) }, 'nacos instance list unreadable; keeping last known endpoints');
      this.down(`bad answer: ${errText(err)}`);
      return false;
    }
    return true;
  }

  private async pollAll(): Promise<void> {
    if (this.polling || this.stopped || !this.synced) return;
    this.polling = true;
    try {
      let ok = 0;
      let failed = 0;
      await eachLimited([...this.tracked.values()], FETCH_CONCURRENCY, async (t) => {
        if (await this.fetch(t)) ok++;
        else failed++;
      });
      if (ok > 0 && failed === 0) this.up();
    } finally {
      this.polling = false;
    }
  }

  private apply(t: Tracked, info: ParsedServiceInfo): void {
    if (info.lastRefTime && info.lastRefTime < t.lastRefTime) return; // older than what we applied
    if (info.lastRefTime) t.lastRefTime = info.lastRefTime;
    if (info.skipped) this.sink.log.warn({ registry: this.config.name, service: t.gatewayName, skipped: info.skipped }, 'nacos hosts skipped: unreadable');
    t.known = true;
    this.sink.set(t.gatewayName, info.endpoints);
  }

  /** Every ServiceInfo the client receives (push or its poll), empty ones included. */
  private onClientServiceInfo(json: string): void {
    if (this.stopped) return;
    let info: ParsedServiceInfo;
    try {
      info = parseServiceInfo(json);
    } catch (err) {
      this.garbageSeen++;
      this.sink.log.warn({ registry: this.config.name, err: errText(err) }, 'nacos push/answer unreadable; keeping last known endpoints');
      return;
    }
    // The client subscribes with our clusters; answers for other cluster sets are not ours.
    if (info.clusters !== this.clusters) return;
    const t = this.tracked.get(info.name);
    if (!t) return;
    this.pushesSeen++;
    this.apply(t, info);
  }

  /** Listener path, used only if the client could not be observed (it never reports empty lists). */
  private onListenerHosts(t: Tracked, hosts: unknown[]): void {
    if (this.stopped || this.client?.observing || !Array.isArray(hosts)) return;
    if (this.tracked.get(t.grouped) !== t) return;
    const eps: Endpoint[] = [];
    for (const h of hosts) {
      const e = hostToEndpoint(h, t.service);
      if (e) eps.push(e);
    }
    if (eps.length) this.sink.set(t.gatewayName, eps);
  }
}
