// The ZooKeeper session: one client at a time, kept connected, and the reads
// the tree model makes through it.
//
// Connection states: a plain disconnect keeps the session (the client restores
// watches on reconnect); the owner is still asked to re-list everything after
// every (re)connect, since that is cheap and cannot miss a change. Session
// expiry closes the client for good: a new one is created, and its connect
// triggers the re-list. While disconnected, the sink is told the registry is
// down and the EndpointTable keeps the last known endpoints.
//
// The client has no read timeout: a silent network partition, or a server that
// accepts the TCP connection but never finishes the handshake, would leave it
// waiting forever. A watchdog probes the connection (exists("/")) and replaces
// the client when it stops answering or cannot reconnect within the session
// timeout (by then the server has expired the session anyway).
//
// Every client has a generation number; reads and watch callbacks carry the
// generation they were made in, and anything from an older client is ignored.
import zookeeper from 'node-zookeeper-client';
import type { RegistrySink } from '../../src/discovery/types.js';
import type { ZookeeperConfig } from './schema.js';

type Client = zookeeper.Client;
/** How long a new client may take to connect before the registry is reported down with a reason. */
const FIRST_CONNECT_WARN_MS = 3_000;

export type Watcher = (event: zookeeper.Event) => void;

export function isNoNode(err: unknown): boolean {
  return typeof (err as { getCode?: () => number })?.getCode === 'function' && (err as zookeeper.Exception).getCode() === zookeeper.Exception.NO_NODE;
}

export interface SessionEvents {
  /** Client `gen` connected (first connect, reconnect, or a new session): re-list everything through it. */
  connected(gen: number): void;
}

/** What a stale generation's read gets: it ignores every event (the read itself fails as stale). */
const STALE_WATCHER: Watcher = () => undefined;

export class ZookeeperSession {
  private client: Client | undefined;
  /** Bumped for every new client; callbacks of an old client are ignored. */
  private generation = 0;
  private watchers = new Map<string, Watcher>();
  private _stopped = false;
  private _connected = false;
  private _lastError: string | undefined;
  private sessionsCreated = 0;
  private watchdog: NodeJS.Timeout | undefined;
  /** Last time the connection was known good (connected and answering). */
  private lastGood = Date.now();
  private probeSentAt = 0;
  private restarts = 0;

  constructor(
    private readonly config: ZookeeperConfig,
    private readonly sink: Pick<RegistrySink, 'status' | 'log'>,
    private readonly events: SessionEvents,
  ) {}

  get stopped(): boolean {
    return this._stopped;
  }

  get connected(): boolean {
    return this._connected;
  }

  /** The last problem seen: connection state changes, or a read failure reported by the owner. Cleared on connect. */
  get lastError(): string | undefined {
    return this._lastError;
  }

  noteError(text: string): void {
    this._lastError = text;
  }

  start(): void {
    this._stopped = false;
    this.newClient();
    const every = Math.min(5000, Math.max(250, Math.floor(this.config.sessionTimeoutMs / 3)));
    this.watchdog = setInterval(() => this.checkLiveness(), every);
    this.watchdog.unref();
  }

  stop(): void {
    this._stopped = true;
    if (this.watchdog) clearInterval(this.watchdog);
    this.generation++;
    this.client?.close();
    this.client = undefined;
  }

  describe(): { state: string | undefined; sessionId: string | undefined; sessions: number; clientRestarts: number } {
    const id = this.client?.getSessionId();
    return {
      state: this.client?.getState().name,
      sessionId: id && this._connected ? id.toString('hex') : undefined,
      sessions: this.sessionsCreated,
      clientRestarts: this.restarts,
    };
  }

  /** The current session's id and password, for tools and tests that need to act on it. */
  credentials(): { id: Buffer; password: Buffer } | undefined {
    if (!this.client || !this._connected) return undefined;
    return { id: this.client.getSessionId(), password: this.client.getSessionPassword() };
  }

  // ---------- connection ----------

  private checkLiveness(): void {
    if (this._stopped || !this.client) return;
    const now = Date.now();
    if (this._connected) {
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
    this._connected = false;
    this._lastError = reason;
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
    // node-zookeeper-client retries the servers quietly for as long as it takes: say
    // when the first connection of a client is late (unreachable, refused, wrong
    // port), once, rather than only when the session timeout runs out.
    const late = setTimeout(() => {
      if (gen !== this.generation || this._connected || this._stopped) return;
      const reason = `not connected to ZooKeeper (${this.config.servers.join(', ')}) after ${FIRST_CONNECT_WARN_MS / 1000} s: unreachable or refusing connections; still trying`;
      this._lastError = reason;
      this.sink.status(false, reason);
    }, FIRST_CONNECT_WARN_MS);
    late.unref();
    client.on('connected', () => {
      clearTimeout(late);
      if (gen !== this.generation) return;
      this._connected = true;
      this.lastGood = Date.now();
      this.probeSentAt = 0;
      this._lastError = undefined;
      this.sink.log.info({ registry: this.config.name, session: client.getSessionId().toString('hex') }, 'zookeeper connected');
      this.sink.status(true);
      this.events.connected(gen);
    });
    client.on('disconnected', () => {
      if (gen !== this.generation) return;
      this._connected = false;
      this.lastGood = Date.now();
      this._lastError = 'disconnected';
      this.sink.status(false, 'disconnected from ZooKeeper');
    });
    client.on('expired', () => {
      if (gen !== this.generation) return;
      this._connected = false;
      this._lastError = 'session expired';
      this.sink.log.warn({ registry: this.config.name }, 'zookeeper session expired: new session, full re-list');
      this.sink.status(false, 'ZooKeeper session expired');
      client.close();
      if (!this._stopped) this.newClient();
    });
    client.on('authenticationFailed', () => {
      if (gen !== this.generation) return;
      this._connected = false;
      this._lastError = 'authentication failed';
      this.sink.status(false, 'ZooKeeper authentication failed');
    });
    client.connect();
  }

  // ---------- reads ----------

  /** True while client `gen` is the one in use (not replaced, not stopped). */
  isCurrent(gen: number): boolean {
    return this.current(gen) !== undefined;
  }

  private current(gen: number): Client | undefined {
    return gen === this.generation && !this._stopped ? this.client : undefined;
  }

  getChildren(gen: number, path: string, w: Watcher): Promise<string[]> {
    const c = this.current(gen);
    if (!c) return Promise.reject(new Error('stale session'));
    return new Promise((resolve, reject) => c.getChildren(path, w, (err, children) => (err ? reject(err) : resolve(children))));
  }

  getData(gen: number, path: string, w: Watcher): Promise<Buffer | undefined> {
    const c = this.current(gen);
    if (!c) return Promise.reject(new Error('stale session'));
    return new Promise((resolve, reject) => c.getData(path, w, (err, data) => (err ? reject(err) : resolve(data ?? undefined))));
  }

  exists(gen: number, path: string, w: Watcher): Promise<boolean> {
    const c = this.current(gen);
    if (!c) return Promise.reject(new Error('stale session'));
    return new Promise((resolve, reject) => c.exists(path, w, (err, stat) => (err ? reject(err) : resolve(!!stat))));
  }

  /**
   * One stable watcher function per key per client: ZooKeeper watches fire
   * once and every read that must stay fresh passes a watcher again; the client
   * de-duplicates identical functions, so re-reading never piles up listeners.
   * `fire` runs only while client `gen` is still current.
   */
  watcher(gen: number, key: string, fire: () => void): Watcher {
    // A read still running for a replaced client must not leave its (dead) watcher
    // in the new client's cache: that path would never be watched again.
    if (!this.current(gen)) return STALE_WATCHER;
    let w = this.watchers.get(key);
    if (!w) {
      w = () => {
        if (!this.current(gen)) return;
        fire();
      };
      this.watchers.set(key, w);
    }
    return w;
  }
}
