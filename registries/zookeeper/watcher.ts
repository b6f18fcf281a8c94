// The ZooKeeper watcher: a session (session.ts: connect, reconnect, expiry,
// the watchdog) and the tree model read through it (tree.ts: Dubbo and Curator
// entries, endpoint lists). Every (re)connect re-lists the whole tree.
import type { RegistrySink, RegistryWatcher } from '../../src/discovery/types.js';
import type { ZookeeperConfig } from './schema.js';
import { ZookeeperSession } from './session.js';
import { ZookeeperTree } from './tree.js';

export class ZookeeperWatcher implements RegistryWatcher {
  private readonly zk: ZookeeperSession;
  private readonly tree: ZookeeperTree;

  constructor(
    private readonly config: ZookeeperConfig,
    sink: RegistrySink,
  ) {
    this.zk = new ZookeeperSession(config, sink, { connected: (gen) => void this.tree.resync(gen) });
    this.tree = new ZookeeperTree(config.name, config.paths, sink, this.zk);
  }

  start(): void {
    this.zk.start();
  }

  stop(): void {
    this.zk.stop();
  }

  describe(): Record<string, unknown> {
    const s = this.zk.describe();
    return {
      servers: this.config.servers,
      paths: this.tree.paths,
      connected: this.zk.connected,
      state: s.state,
      sessionId: s.sessionId,
      sessions: s.sessions,
      resyncs: this.tree.resyncCount,
      clientRestarts: s.clientRestarts,
      watchedEntries: this.tree.watchedEntries,
      lastError: this.zk.lastError,
    };
  }

  /** The current session's id and password, for tools and tests that need to act on it. */
  session(): { id: Buffer; password: Buffer } | undefined {
    return this.zk.credentials();
  }
}
