// The ZooKeeper tree model: a live picture of the configured root paths, read
// through a session, turned into every service's full instance list for the sink.
//
// Tree shapes under a root (the kind of each child is decided by what is in it):
//   /<root>/<interface>/providers/<URL-encoded Dubbo URL>   Dubbo interface level
//   /<root>/<name>/<id>  with Curator JSON data             Dubbo 3 application level, Spring Cloud
//
// ZooKeeper watches fire once: every read that must stay fresh passes a watcher
// and every event triggers a new read, which re-arms it. The watcher functions
// are stable per path (the session hands out one per key), so re-reading never
// piles up listeners. Reads on one session complete in the order they were
// issued, so applying each answer when it arrives keeps the newest state.
import type { Endpoint, RegistrySink } from '../../src/discovery/types.js';
import {
  DUBBO_CATEGORIES,
  DUBBO_RESERVED,
  curatorServiceName,
  parseCuratorInstance,
  parseDubboProviderNode,
} from './parse.js';
import { isNoNode, type ZookeeperSession } from './session.js';

/** What the tree reads through: the reads and watch functions of ZookeeperSession. */
export type TreeSession = Pick<ZookeeperSession, 'stopped' | 'isCurrent' | 'getChildren' | 'getData' | 'exists' | 'watcher' | 'noteError'>;

type WatchKind = 'root' | 'entry' | 'providers' | 'data';

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

export class ZookeeperTree {
  /** The root paths, without trailing slashes, each once. */
  readonly paths: string[];
  private readonly roots = new Map<string, Set<string>>();
  private readonly entries = new Map<string, Entry>();
  /** service name -> entry path -> endpoints: one name may be fed by several entries (two roots). */
  private readonly contributions = new Map<string, Map<string, Endpoint[]>>();
  /** Keyed refresh coalescing: an event during a running refresh reruns it once. */
  private readonly running = new Map<string, { again: boolean }>();
  private readonly warned = new Set<string>();
  private resyncs = 0;
  private readonly limit = limiter(RESYNC_CONCURRENCY);

  constructor(
    private readonly registry: string,
    paths: readonly string[],
    private readonly sink: RegistrySink,
    private readonly zk: TreeSession,
  ) {
    this.paths = [...new Set(paths.map((p) => (p.length > 1 ? p.replace(/\/+$/, '') : p)))];
  }

  /** Completed full listings. */
  get resyncCount(): number {
    return this.resyncs;
  }

  /** Root children currently known (services or interfaces). */
  get watchedEntries(): number {
    return this.entries.size;
  }

  // ---------- watching ----------

  /** One stable watcher function per (kind, path) per session. */
  private watcher(gen: number, kind: WatchKind, path: string) {
    const key = `${kind} ${path}`;
    return this.zk.watcher(gen, key, () => this.schedule(key, () => this.onEvent(gen, kind, path)));
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
        } while (state.again && !this.zk.stopped);
      } finally {
        this.running.delete(key);
      }
    })();
  }

  private async onEvent(gen: number, kind: WatchKind, path: string): Promise<void> {
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
    if (!this.zk.isCurrent(gen)) return;
    // Connection loss: the reconnect re-lists everything. Other errors: keep what we have.
    this.zk.noteError(`${path}: ${errText(err)}`);
    this.sink.log.warn({ registry: this.registry, path, err: errText(err) }, 'zookeeper read failed; keeping last known endpoints');
  }

  // ---------- listing ----------

  /** Read every root again through session `gen` and report the complete set of services. */
  async resync(gen: number): Promise<void> {
    const started = Date.now();
    try {
      await Promise.all(this.paths.map((root) => this.refreshRoot(gen, root, true)));
    } catch (err) {
      this.readFailed(gen, 'resync', err);
      return; // not synced: the next (re)connect tries again
    }
    if (!this.zk.isCurrent(gen)) return;
    this.resyncs++;
    const all = new Map<string, Endpoint[]>();
    for (const name of this.contributions.keys()) all.set(name, this.merged(name));
    this.sink.replaceAll(all);
    this.sink.synced();
    this.sink.log.info({ registry: this.registry, services: all.size, ms: Date.now() - started }, 'zookeeper listing complete');
  }

  private async refreshRoot(gen: number, root: string, deep: boolean): Promise<void> {
    let children: string[];
    try {
      children = await this.zk.getChildren(gen, root, this.watcher(gen, 'root', root));
    } catch (err) {
      if (!isNoNode(err)) throw err;
      // No root yet: watch for its creation; it holds no services.
      await this.zk.exists(gen, root, this.watcher(gen, 'root', root));
      children = [];
    }
    if (!this.zk.isCurrent(gen)) return;
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
      children = await this.zk.getChildren(gen, entry.path, this.watcher(gen, 'entry', entry.path));
    } catch (err) {
      if (isNoNode(err)) {
        this.dropEntry(entry);
        return;
      }
      throw err;
    }
    if (entry.dropped || !this.zk.isCurrent(gen)) return;
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
    if (!entry.dropped && this.zk.isCurrent(gen)) this.publishCurator(entry);
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
      nodes = await this.zk.getChildren(gen, path, this.watcher(gen, 'providers', path));
    } catch (err) {
      if (!isNoNode(err)) throw err;
      nodes = []; // providers/ went away between the two reads: no providers
    }
    if (entry.dropped || !this.zk.isCurrent(gen)) return;
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
      data = await this.zk.getData(gen, path, this.watcher(gen, 'data', path));
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
    this.sink.log.warn({ registry: this.registry, path, err: errText(err) }, 'zookeeper node skipped: cannot parse it');
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
    if (this.zk.stopped) return;
    if (this.contributions.has(name)) this.sink.set(name, this.merged(name));
    else this.sink.remove(name);
  }
}
