// The ZooKeeper watcher: keeps a live picture of the configured root paths and
// reports every service's full instance list to the sink.
//
// Tree shapes under a root (the kind of each child is decided by what is in it):
//   /<root>/<interface>/providers/<URL-encoded Dubbo URL>   Dubbo interface level
//   /<root>/<name>/<id>  with Curator JSON data             Dubbo 3 application level, Spring Cloud
//
// ZooKeeper watches fire once: every read that must stay fresh passes a watcher
// and every event triggers a new read, which re-arms it. The watcher functions
// are stable per path (the client de-duplicates them), so re-reading never piles
// up listeners. Reads on one session complete in the order they were issued, so
// applying each answer when it arrives keeps the newest state.
//
// Connection states: a plain disconnect keeps the session (the client restores
// watches on reconnect); we still re-list everything after every (re)connect,
// since that is cheap and cannot miss a change. Session expiry closes the client
// for good: we create a new one and re-list. While disconnected, the sink is told
// the registry is down and the EndpointTable keeps the last known endpoints.
//
// The client has no read timeout: a silent network partition, or a server that
// accepts the TCP connection but never finishes the handshake, would leave it
// waiting forever. A watchdog probes the connection (exists("/")) and replaces
// the client when it stops answering or cannot reconnect within the session
// timeout (by then the server has expired the session anyway).
import zookeeper from 'node-zookeeper-client';
import type { z } from 'zod';
import type { ZookeeperRegistrySchema } from '../../src/config/schema.js';
import type { Endpoint, RegistrySink, RegistryWatcher } from '../../src/discovery/types.js';
import {
  DUBBO_CATEGORIES,
  DUBBO_RESERVED,
  curatorServiceName,
  parseCuratorInstance,
  parseDubboProviderNode,
} from './parse.js';

export type ZookeeperConfig = z.output<typeof ZookeeperRegistrySchema>;

type Client = zookeeper.Client;
type Watcher = (event: zookeeper.Event) => void;

interface Entry {
  /** /<root>/<name> */
  path: string;
  name: string;
  kind: 'unknown' | 'dubbo' | 'curator';
  /** Curator layout: instance id -> endpoint (null: excluded or unreadable so far). */
  instances: Map<string, Endpoint | null>;
  /** Service names this entry currently contributes, with its endpoints for each. */
  produced: Map<string, Endpoint[]>;
  dropped: boolean;
}

const RESYNC_CONCURRENCY = 128;

function isNoNode(err: unknown): boolean {
  return typeof (err as { getCode?: () => number })?.getCode === 'function' && (err as zookeeper.Exception).getCode() === zookeeper.Exception.NO_NODE;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A tiny limiter so a full re-list of thousands of nodes does not queue everything at once. */
function limiter(max: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (active >= max) await new Promise<void>((r) => waiting.push(r));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

export class ZookeeperWatcher implements RegistryWatcher {
  private client: Client | undefined;
  /** Bumped for every new client; callbacks of an old client are ignored. */
  private generation = 0;
  private watchers = new Map<string, Watcher>();
  private stopped = false;
  private connected = false;
  private readonly roots = new Map<string, Set<string>>();
  private readonly entries = new Map<string, Entry>();
  /** service name -> entry path -> endpoints: one name may be fed by several entries (two roots). */
  private readonly contributions = new Map<string, Map<string, Endpoint[]>>();
  /** Keyed refresh coalescing: an event during a running refresh reruns it once. */
  private readonly running = new Map<string, { again: boolean }>();
  private readonly warned = new Set<string>();
  private lastError: string | undefined;
  private resyncs = 0;
  private sessionsCreated = 0;
  private readonly limit = limiter(RESYNC_CONCURRENCY);
  private readonly paths: string[];
  private watchdog: NodeJS.Timeout | undefined;
  /** Last time the connection was known good (connected and answering). */
  private lastGood = Date.now();
  private probeSentAt = 0;
  private restarts = 0;

  constructor(
    private readonly config: ZookeeperConfig,
    private readonly sink: RegistrySink,
  ) {
    this.paths = [...new Set(config.paths.map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p)))];
  }

  start(): void {
    this.stopped = false;
    this.newClient();
    const every = Math.min(5000, Math.max(250, Math.floor(this.config.sessionTimeoutMs / 3)));
    this.watchdog = setInterval(() => this.checkLiveness(), every);
    this.watchdog.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.generation++;
    this.client?.close();
    this.client = undefined;
  }

  describe(): Record<string, unknown> {
    const id = this.client?.getSessionId();
    return {
      servers: this.config.servers,
      paths: this.paths,
      connected: this.connected,
      state: this.client?.getState().name,
      sessionId: id && this.connected ? id.toString('hex') : undefined,
      sessions: this.sessionsCreated,
      resyncs: this.resyncs,
      clientRestarts: this.restarts,
      watchedEntries: this.entries.size,
      lastError: this.lastError,
    };
  }

  /** The current session's id and password, for tools and tests that need to act on it. */
  session(): { id: Buffer; password: Buffer } | undefined {
    if (!this.client || !this.connected) return undefined;
    return { id: this.client.getSessionId(), password: this.client.getSessionPassword() };
  }

  // ---------- connection ----------

  private checkLiveness(): void {
    if (this.stopped || !this.client) return;
    const now = Date.now();
    if (this.connected) {
      if (this.probeSentAt) {
        if (now - this.probeSentAt > (this.config.sessionTimeoutMs * 2) / 3) this.restartClient('ZooKeeper is not answering');
        return;
      }
      const gen = this.generation;
      this.probeSentAt = now;
      this.client.exists('/', (err) => {
        if (gen !== this.generation) return;
        this.probeSentAt = 0;
        // Any answer from the server (even an error code) proves the connection is alive.
        if (!err || typeof (err as { getCode?: unknown }).getCode === 'function') this.lastGood = Date.now();
      });
    } else if (now - this.lastGood > this.config.sessionTimeoutMs) {
      this.restartClient('could not reconnect to ZooKeeper within the session timeout');
    }
  }

  private restartClient(reason: string): void {
    this.restarts++;
    this.connected = false;
    this.lastError = reason;
    this.sink.log.warn({ registry: this.config.name }, `${reason}: new client, new session, full re-list`);
    this.sink.status(false, reason);
    const old = this.client;
    this.generation++; // ignore everything the old client still reports
    old?.close();
    this.newClient();
  }

  private newClient(): void {
    const gen = ++this.generation;
    this.lastGood = Date.now();
    this.probeSentAt = 0;
    this.watchers = new Map();
    this.sessionsCreated++;
    const client = zookeeper.createClient(this.config.servers.join(','), {
      sessionTimeout: this.config.sessionTimeoutMs,
      spinDelay: this.config.spinDelayMs,
      retries: 0,
    });
    this.client = client;
    if (this.config.auth) {
      const colon = this.config.auth.indexOf(':');
      const scheme = colon > 0 ? this.config.auth.slice(0, colon) : 'digest';
      client.addAuthInfo(scheme, Buffer.from(colon > 0 ? this.config.auth.slice(colon + 1) : this.config.auth));
    }
    client.on('connected', () => {
      if (gen !== this.generation) return;
      this.connected = true;
      this.lastGood = Date.now();
      this.probeSentAt = 0;
      this.lastError = undefined;
      this.sink.log.info({ registry: this.config.name, session: client.getSessionId().toString('hex') }, 'zookeeper connected');
      this.sink.status(true);
      void this.resync(gen);
    });
    client.on('disconnected', () => {
      if (gen !== this.generation) return;
      this.connected = false;
      this.lastGood = Date.now();
      this.lastError = 'disconnected';
      this.sink.status(false, 'disconnected from ZooKeeper');
    });
    client.on('expired', () => {
      if (gen !== this.generation) return;
      this.connected = false;
      this.lastError = 'session expired';
      this.sink.log.warn({ registry: this.config.name }, 'zookeeper session expired: new session, full re-list');
      this.sink.status(false, 'ZooKeeper session expired');
      client.close();
      if (!this.stopped) this.newClient();
    });
    client.on('authenticationFailed', () => {
      if (gen !== this.generation) return;
      this.connected = false;
      this.lastError = 'authentication failed';
      this.sink.status(false, 'ZooKeeper authentication failed');
    });
    client.connect();
  }

  private current(gen: number): Client | undefined {
    return gen === this.generation && !this.stopped ? this.client : undefined;
  }

  private getChildren(gen: number, path: string, w: Watcher): Promise<string[]> {
    const c = this.current(gen);
    if (!c) return Promise.reject(new Error('stale session'));
    return new Promise((resolve, reject) => c.getChildren(path, w, (err, children) => (err ? reject(err) : resolve(children))));
  }

  private getData(gen: number, path: string, w: Watcher): Promise<Buffer | undefined> {
    const c = this.current(gen);
    if (!c) return Promise.reject(new Error('stale session'));
    return new Promise((resolve, reject) => c.getData(path, w, (err, data) => (err ? reject(err) : resolve(data ?? undefined))));
  }

  private exists(gen: number, path: string, w: Watcher): Promise<boolean> {
    const c = this.current(gen);
    if (!c) return Promise.reject(new Error('stale session'));
    return new Promise((resolve, reject) => c.exists(path, w, (err, stat) => (err ? reject(err) : resolve(!!stat))));
  }

  /** One stable watcher function per (kind, path) per session. */
  private watcher(gen: number, kind: 'root' | 'entry' | 'providers' | 'data', path: string): Watcher {
    const key = `${kind} ${path}`;
    let w = this.watchers.get(key);
    if (!w) {
      w = () => {
        if (!this.current(gen)) return;
        this.schedule(key, () => this.onEvent(gen, kind, path));
      };
      this.watchers.set(key, w);
    }
    return w;
  }

  private schedule(key: string, fn: () => Promise<void>): void {
    const run = this.running.get(key);
    if (run) {
      run.again = true;
      return;
    }
    const state = { again: false };
    this.running.set(key, state);
    void (async () => {
      try {
        do {
          state.again = false;
          await fn();
        } while (state.again && !this.stopped);
      } finally {
        this.running.delete(key);
      }
    })();
  }

  private async onEvent(gen: number, kind: 'root' | 'entry' | 'providers' | 'data', path: string): Promise<void> {
    try {
      if (kind === 'root') await this.refreshRoot(gen, path, false);
      else if (kind === 'entry' || kind === 'providers') {
        const entry = this.entries.get(kind === 'entry' ? path : path.slice(0, path.lastIndexOf('/')));
        if (entry) await this.refreshEntry(gen, entry, false);
      } else {
        const slash = path.lastIndexOf('/');
        const entry = this.entries.get(path.slice(0, slash));
        if (entry && entry.kind === 'curator') {
          await this.refreshInstance(gen, entry, path.slice(slash + 1));
          if (!entry.dropped) this.publishCurator(entry);
        }
      }
    } catch (err) {
      this.readFailed(gen, path, err);
    }
  }

  private readFailed(gen: number, path: string, err: unknown): void {
    if (!this.current(gen)) return;
    // Connection loss: the reconnect re-lists everything. Other errors: keep what we have.
    this.lastError = `${path}: ${errText(err)}`;
    this.sink.log.warn({ registry: this.config.name, path, err: errText(err) }, 'zookeeper read failed; keeping last known endpoints');
  }

  // ---------- listing ----------

  private async resync(gen: number): Promise<void> {
    const started = Date.now();
    try {
      await Promise.all(this.paths.map((root) => this.refreshRoot(gen, root, true)));
    } catch (err) {
      this.readFailed(gen, 'resync', err);
      return; // not synced: the next (re)connect tries again
    }
    if (!this.current(gen)) return;
    this.resyncs++;
    const all = new Map<string, Endpoint[]>();
    for (const name of this.contributions.keys()) all.set(name, this.merged(name));
    this.sink.replaceAll(all);
    this.sink.synced();
    this.sink.log.info({ registry: this.config.name, services: all.size, ms: Date.now() - started }, 'zookeeper listing complete');
  }

  private async refreshRoot(gen: number, root: string, deep: boolean): Promise<void> {
    let children: string[];
    try {
      children = await this.getChildren(gen, root, this.watcher(gen, 'root', root));
    } catch (err) {
      if (!isNoNode(err)) throw err;
      // No root yet: watch for its creation; it holds no services.
      await this.exists(gen, root, this.watcher(gen, 'root', root));
      children = [];
    }
    if (!this.current(gen)) return;
    // Dubbo keeps its own bookkeeping next to interfaces; a Curator root (…/services) has only services.
    const skipReserved = !root.endsWith('/services');
    const next = new Set(children.filter((c) => !(skipReserved && DUBBO_RESERVED.has(c))));
    const known = this.roots.get(root) ?? new Set<string>();
    this.roots.set(root, next);
    for (const name of known) {
      if (!next.has(name)) {
        const entry = this.entries.get(this.join(root, name));
        if (entry) this.dropEntry(entry);
      }
    }
    const work: Promise<void>[] = [];
    for (const name of next) {
      const path = this.join(root, name);
      let entry = this.entries.get(path);
      if (entry && !deep) continue;
      if (!entry) {
        entry = { path, name, kind: 'unknown', instances: new Map(), produced: new Map(), dropped: false };
        this.entries.set(path, entry);
      }
      const e = entry;
      work.push(
        this.limit(() => this.refreshEntry(gen, e, deep)).catch((err) => {
          if (deep) throw err;
          this.readFailed(gen, path, err);
        }),
      );
    }
    await Promise.all(work);
  }

  private join(root: string, name: string): string {
    return root === '/' ? `/${name}` : `${root}/${name}`;
  }

  private async refreshEntry(gen: number, entry: Entry, deep: boolean): Promise<void> {
    let children: string[];
    try {
      children = await this.getChildren(gen, entry.path, this.watcher(gen, 'entry', entry.path));
    } catch (err) {
      if (isNoNode(err)) {
        this.dropEntry(entry);
        return;
      }
      throw err;
    }
    if (entry.dropped || !this.current(gen)) return;
    if (children.some((c) => DUBBO_CATEGORIES.has(c))) {
      if (entry.kind !== 'dubbo') this.switchKind(entry, 'dubbo');
      if (children.includes('providers')) await this.refreshProviders(gen, entry);
      else this.publish(entry, new Map(), true);
      return;
    }
    // An interface node that lost all its categories: no providers.
    if (entry.kind === 'dubbo') {
      this.publish(entry, new Map(), true);
      return;
    }
    // A node with no children yet is not known to be anything (a Dubbo interface
    // node is created before its providers/ child): it provides nothing until it
    // has children, unless it was a Curator service before (then: no instances).
    if (children.length === 0 && entry.kind !== 'curator') return;
    if (entry.kind !== 'curator') this.switchKind(entry, 'curator');
    const ids = new Set(children);
    for (const id of [...entry.instances.keys()]) if (!ids.has(id)) entry.instances.delete(id);
    const reads: Promise<void>[] = [];
    for (const id of ids) {
      if (deep || !entry.instances.has(id)) reads.push(this.refreshInstance(gen, entry, id));
    }
    await Promise.all(reads);
    if (!entry.dropped && this.current(gen)) this.publishCurator(entry);
  }

  private switchKind(entry: Entry, kind: Entry['kind']): void {
    // Names from the old reading of this node are not valid any more.
    this.publish(entry, new Map(), false);
    entry.instances.clear();
    entry.kind = kind;
  }

  private async refreshProviders(gen: number, entry: Entry): Promise<void> {
    const path = `${entry.path}/providers`;
    let nodes: string[];
    try {
      nodes = await this.getChildren(gen, path, this.watcher(gen, 'providers', path));
    } catch (err) {
      if (!isNoNode(err)) throw err;
      nodes = []; // providers/ went away between the two reads: no providers
    }
    if (entry.dropped || !this.current(gen)) return;
    const produced = new Map<string, Endpoint[]>();
    for (const node of nodes) {
      try {
        const p = parseDubboProviderNode(node);
        let list = produced.get(p.service);
        if (!list) produced.set(p.service, (list = []));
        if (p.endpoint) list.push(p.endpoint);
      } catch (err) {
        this.garbage(`${path}/${node}`, err);
      }
    }
    this.publish(entry, produced, true);
  }

  private async refreshInstance(gen: number, entry: Entry, id: string): Promise<void> {
    const path = `${entry.path}/${id}`;
    let data: Buffer | undefined;
    try {
      data = await this.getData(gen, path, this.watcher(gen, 'data', path));
    } catch (err) {
      if (isNoNode(err)) {
        entry.instances.delete(id);
        return;
      }
      throw err;
    }
    if (entry.dropped) return;
    try {
      entry.instances.set(id, parseCuratorInstance(data, path));
      this.warned.delete(path);
    } catch (err) {
      // Unreadable node: skipped; if it was readable before, keep what it said.
      this.garbage(path, err);
      if (!entry.instances.has(id)) entry.instances.set(id, null);
    }
  }

  private garbage(path: string, err: unknown): void {
    if (this.warned.has(path)) return;
    if (this.warned.size > 10_000) this.warned.clear();
    this.warned.add(path);
    this.sink.log.warn({ registry: this.config.name, path, err: errText(err) }, 'zookeeper node skipped: cannot parse it');
  }

  // ---------- publishing ----------

  private publishCurator(entry: Entry): void {
    const eps: Endpoint[] = [];
    for (const e of entry.instances.values()) if (e) eps.push(e);
    this.publish(entry, new Map([[curatorServiceName(entry.name), eps]]), true);
  }

  /**
   * Record what an entry provides now and report each affected service.
   * keepMissing: names the entry provided before but not now become empty
   * (Dubbo: the last provider of a version left) instead of being withdrawn.
   */
  private publish(entry: Entry, produced: Map<string, Endpoint[]>, keepMissing: boolean): void {
    const touched = new Set<string>(produced.keys());
    for (const name of entry.produced.keys()) {
      if (produced.has(name)) continue;
      touched.add(name);
      if (keepMissing) produced.set(name, []);
    }
    for (const name of touched) {
      const list = produced.get(name);
      let by = this.contributions.get(name);
      if (list) {
        if (!by) this.contributions.set(name, (by = new Map()));
        by.set(entry.path, list);
      } else if (by) {
        by.delete(entry.path);
        if (by.size === 0) this.contributions.delete(name);
      }
    }
    entry.produced = produced;
    for (const name of touched) this.emit(name);
  }

  private dropEntry(entry: Entry): void {
    if (entry.dropped) return;
    this.publish(entry, new Map(), false);
    entry.dropped = true;
    this.entries.delete(entry.path);
    for (const id of entry.instances.keys()) this.warned.delete(`${entry.path}/${id}`);
  }

  private merged(name: string): Endpoint[] {
    const by = this.contributions.get(name);
    if (!by) return [];
    if (by.size === 1) return by.values().next().value!;
    const out: Endpoint[] = [];
    for (const list of by.values()) out.push(...list);
    return out;
  }

  private emit(name: string): void {
    if (this.stopped) return;
    if (this.contributions.has(name)) this.sink.set(name, this.merged(name));
    else this.sink.remove(name);
  }
}
