// The Nacos watcher over the gRPC protocol (Nacos 2.x / 3.x), with the same
// guarantees as the v1 HTTP watcher (../watcher.ts):
//
// - Which services exist: ServiceListRequest per configured group (paged),
//   every serviceListIntervalMs. New services are subscribed at once
//   (SubscribeServiceRequest answers with their ServiceInfo: routable now);
//   services no longer listed are unsubscribed and removed. The first full
//   listing reports synced().
// - Instances: NotifySubscriberRequest pushes on the bi-stream (acknowledged by
//   the connection), ordered by lastRefTime: an older ServiceInfo never
//   overwrites a newer one. A valid ServiceInfo with no hosts empties the
//   service; a malformed one changes nothing.
// - Outage: the connection drops -> status(false), last known endpoints kept;
//   it reconnects (next server: failover), and on reconnect every tracked
//   service is subscribed again (the answer carries its current state, so
//   changes made meanwhile are seen) and the service list is refreshed.
import type { RegistrySink, RegistryWatcher } from '../../../src/discovery/types.js';
import { parseHostPort } from '../../../src/discovery/types.js';
import { BadAnswer, nacosServiceName, parseServiceInfo, type ParsedServiceInfo } from '../parse.js';
import type { NacosConfig } from '../schema.js';
import { eachLimited, errText, Repeat, takeListedPage } from '../tasks.js';
import { GrpcAuth } from './auth.js';
import { NacosGrpcConnection } from './connection.js';

interface Tracked {
  group: string;
  service: string;
  gatewayName: string;
  lastRefTime: number;
  known: boolean;
  /** Subscribed on the current connection (pushes arrive). */
  subscribed: boolean;
  /** The last listing that named it (see list). */
  listed: number;
}

const PAGE = 500;
const CONCURRENCY = 32;


/** host:port (the HTTP port, as configured) -> the gRPC address (port + offset). */
export function grpcAddress(server: string, offset: number): string {
  const { host, port } = parseHostPort(server);
  const p = port + offset;
  if (!(p > 0 && p < 65536)) throw new Error(`gRPC port of ${server} (+${offset}) is out of range`);
  return host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`;
}

export class NacosGrpcWatcher implements RegistryWatcher {
  private readonly conn: NacosGrpcConnection;
  private readonly auth: GrpcAuth;
  private readonly clusters: string;
  /** by group@@service */
  private readonly tracked = new Map<string, Tracked>();
  private lister: Repeat | undefined;
  private stopped = false;
  private synced = false;
  private listing: Promise<void> | undefined;
  private relist = false;
  private lastError: string | undefined;
  private lastListAt: number | undefined;
  /** Numbers the listings (Tracked.listed). */
  private listings = 0;
  pushesSeen = 0;
  badAnswers = 0;

  constructor(
    private readonly config: NacosConfig,
    private readonly sink: RegistrySink,
  ) {
    this.clusters = config.clusters.join(',');
    this.auth = new GrpcAuth({ servers: config.servers, username: config.username, password: config.password, accessToken: config.accessToken });
    const offset = config.grpcPortOffset;
    this.conn = new NacosGrpcConnection({
      servers: config.servers.map((s) => grpcAddress(s, offset)),
      namespace: config.namespace,
      healthIntervalMs: config.grpcHealthIntervalMs,
      authHeaders: this.auth.enabled ? (force) => this.auth.headers(force) : undefined,
      onServerRequest: (type, body) => this.onServerRequest(type, body),
      onConnected: () => this.onConnected(),
      onDisconnected: (reason) => this.down(reason),
      log: (level, msg, extra) => this.sink.log[level]({ registry: config.name, ...extra }, msg),
    });
  }

  start(): void {
    this.stopped = false;
    this.conn.start();
    this.lister = new Repeat(this.config.serviceListIntervalMs, () => this.refreshServices());
    this.lister.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.lister?.stop();
    await this.conn.stop();
  }

  describe(): Record<string, unknown> {
    return {
      protocol: 'grpc',
      servers: this.config.servers,
      grpcServer: this.conn.server,
      connected: this.conn.connected,
      connects: this.conn.connects,
      namespace: this.config.namespace,
      groups: this.config.groups,
      clusters: this.config.clusters,
      services: this.tracked.size,
      lastListAt: this.lastListAt,
      lastError: this.lastError,
      pushes: this.pushesSeen,
      badAnswers: this.badAnswers,
    };
  }

  private down(err: unknown): void {
    if (this.stopped) return;
    this.lastError = errText(err);
    this.sink.status(false, this.lastError);
  }

  private up(): void {
    this.lastError = undefined;
    this.sink.status(true);
  }

  /** (Re)connected: subscribe every known service again, then list. */
  private onConnected(): void {
    if (this.stopped) return;
    this.up();
    void (async () => {
      const all = [...this.tracked.values()];
      // A new connection (maybe another server): nothing is subscribed there yet, and
      // its lastRefTime clock is not comparable with the old one's.
      for (const t of all) {
        t.subscribed = false;
        t.lastRefTime = 0;
      }
      let failed = 0;
      await eachLimited(all, CONCURRENCY, async (t) => {
        if (!(await this.subscribe(t))) failed++;
      });
      if (failed === 0 && all.length) this.sink.log.debug({ registry: this.config.name, services: all.length }, 'nacos grpc: re-subscribed');
      await this.refreshServices();
    })();
  }

  /** List every group's services; subscribe new ones, remove gone ones. */
  refreshServices(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.listing) {
      this.relist = true;
      return this.listing;
    }
    this.listing = this.list().finally(() => {
      this.listing = undefined;
      if (this.relist && !this.stopped) {
        this.relist = false;
        void this.refreshServices();
      }
    });
    return this.listing;
  }

  /** Every service name of `group`, a page at a time: `onPage` runs as each page arrives. */
  private async eachPage(group: string, onPage: (names: readonly string[]) => void): Promise<void> {
    let seen = 0;
    for (let page = 1; ; page++) {
      const res = await this.conn.request('ServiceListRequest', {
        module: 'naming',
        namespace: this.config.namespace,
        serviceName: '',
        groupName: group,
        pageNo: page,
        pageSize: PAGE,
      });
      const count = Number(res.count);
      const list = res.serviceNames;
      if (!Number.isInteger(count) || count < 0 || !Array.isArray(list) || !list.every((n) => typeof n === 'string')) {
        throw new BadAnswer('ServiceListResponse has the wrong shape');
      }
      if (this.stopped) return;
      onPage(list as string[]);
      seen += list.length;
      if (list.length === 0 || seen >= count || list.length < PAGE) break;
    }
  }

  /**
   * Lists every group's services; subscribes new ones, removes gone ones.
   * Each page is taken in as it arrives (known services are marked with this
   * listing's number, new ones noted), so the work is spread over the
   * answers: done at once after the last page, it held the event loop for
   * 10-41 ms every serviceListIntervalMs at 10,000 services (a page now
   * takes under 5 ms). Nothing is added or removed unless every page came.
   */
  private async list(): Promise<void> {
    if (!this.conn.connected) return; // down already reported; last known kept
    const listing = ++this.listings;
    const added = new Map<string, { group: string; service: string }>();
    try {
      for (const group of this.config.groups) {
        await this.eachPage(group, (names) => takeListedPage(this.tracked, listing, group, names, added));
      }
    } catch (err) {
      if (this.stopped) return;
      if (err instanceof BadAnswer) {
        this.badAnswers++;
        this.sink.log.warn({ registry: this.config.name, err: err.message }, 'nacos service list unreadable; keeping last known services');
      }
      this.sink.log.debug({ registry: this.config.name, err: errText(err) }, 'nacos grpc service list failed');
      this.down(err);
      return;
    }
    if (this.stopped) return;
    this.lastListAt = Date.now();
    for (const [key, t] of this.tracked) {
      if (t.listed === listing) continue;
      this.tracked.delete(key);
      this.sink.remove(t.gatewayName);
      void this.conn
        .request('SubscribeServiceRequest', this.subscribeBody(t, false))
        .catch((err) => this.sink.log.debug({ registry: this.config.name, err: errText(err) }, 'nacos grpc unsubscribe failed'));
    }
    const fresh: Tracked[] = [];
    for (const [key, { group, service }] of added) {
      if (this.tracked.has(key)) continue;
      const t: Tracked = { group, service, gatewayName: nacosServiceName(service, group, this.config.namespace), lastRefTime: 0, known: false, subscribed: false, listed: listing };
      this.tracked.set(key, t);
      fresh.push(t);
    }
    // subscriptions that failed earlier are retried
    for (const t of this.tracked.values()) if (!t.subscribed && !fresh.includes(t)) fresh.push(t);
    let failed = 0;
    await eachLimited(fresh, CONCURRENCY, async (t) => {
      if (!(await this.subscribe(t))) failed++;
    });
    if (this.stopped) return;
    // up once the listing and every subscription succeeded (a failed one is retried next round)
    if (failed === 0) this.up();
    if (!this.synced && !this.stopped) {
      this.synced = true;
      this.sink.synced();
    }
  }

  private subscribeBody(t: Tracked, subscribe: boolean): Record<string, unknown> {
    return { module: 'naming', namespace: this.config.namespace, serviceName: t.service, groupName: t.group, clusters: this.clusters, subscribe };
  }

  /** Subscribe (or re-subscribe) one service and apply the ServiceInfo of the answer. */
  private async subscribe(t: Tracked): Promise<boolean> {
    let res: Record<string, unknown>;
    try {
      res = await this.conn.request('SubscribeServiceRequest', this.subscribeBody(t, true));
    } catch (err) {
      if (!this.stopped) {
        this.sink.log.debug({ registry: this.config.name, service: t.gatewayName, err: errText(err) }, 'nacos grpc subscribe failed');
        this.down(`subscribe ${t.gatewayName}: ${errText(err)}`);
      }
      return false;
    }
    if (this.stopped || this.tracked.get(`${t.group}@@${t.service}`) !== t) return true;
    t.subscribed = true;
    this.applyInfo(res.serviceInfo, t);
    return true;
  }

  private onServerRequest(type: string, body: Record<string, unknown>): void {
    if (type !== 'NotifySubscriberRequest' || this.stopped) return;
    this.applyInfo(body.serviceInfo);
  }

  /** A ServiceInfo from a subscribe answer or a push. */
  private applyInfo(raw: unknown, expected?: Tracked): void {
    let info: ParsedServiceInfo;
    try {
      info = parseServiceInfo(raw);
    } catch (err) {
      this.badAnswers++;
      this.sink.log.warn({ registry: this.config.name, service: expected?.gatewayName, err: errText(err) }, 'nacos grpc ServiceInfo unreadable; keeping last known endpoints');
      return;
    }
    const o = raw as Record<string, unknown>;
    // gRPC ServiceInfo: name is the plain name and groupName separate (v1 answered group@@name).
    let group = typeof o.groupName === 'string' && o.groupName ? o.groupName : undefined;
    let service = info.name;
    if (service.includes('@@')) {
      group ??= service.slice(0, service.indexOf('@@'));
      service = service.slice(service.indexOf('@@') + 2);
    }
    group ??= expected?.group ?? 'DEFAULT_GROUP';
    const t = this.tracked.get(`${group}@@${service}`);
    if (!t || (expected && t !== expected)) return;
    // pushes are filtered by our subscription's clusters; an answer for another cluster set is not ours
    if (!expected && info.clusters && info.clusters !== this.clusters) return;
    if (!expected) this.pushesSeen++;
    if (info.lastRefTime && info.lastRefTime < t.lastRefTime) return;
    if (info.lastRefTime) t.lastRefTime = info.lastRefTime;
    if (info.skipped) this.sink.log.warn({ registry: this.config.name, service: t.gatewayName, skipped: info.skipped }, 'nacos hosts skipped: unreadable');
    t.known = true;
    this.sink.set(t.gatewayName, info.endpoints);
  }
}
