// The listeners of one process across config generations. A new config is
// prepared first (new addresses bound and holding their connections, changed
// settings of kept listeners checked), then committed in one step, or aborted
// leaving the running listeners untouched. A listener keeps its socket while
// its address stays (matched by name, or by address for a renamed one).
import type { Config, ListenerConfig } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { listenKey, startListener, type RunningListener } from './listeners.js';
import type { Pipeline } from './pipeline.js';

export interface PreparedListeners {
  /** Apply: kept listeners take their new settings, new ones start serving. Returns the listeners the config no longer has (still open: retire them). */
  commit(): RunningListener[];
  /** Close what prepare bound; the running listeners never changed. */
  abort(): Promise<void>;
}

/** How errors name a listener: `listeners[i]` on reload, `listeners.<name>` when the gateway starts (as startListener does). */
type Naming = 'index' | 'name';

export class ListenerSet {
  private byName = new Map<string, RunningListener>();

  constructor(private readonly pipeline: Pipeline) {}

  get(name: string): RunningListener | undefined {
    return this.byName.get(name);
  }

  all(): RunningListener[] {
    return [...this.byName.values()];
  }

  /**
   * Bind what `config` adds and check what it changes. Throws a ConfigError
   * naming the listener (and the address for a bind failure) after closing
   * anything it bound: nothing running has changed.
   */
  async prepare(config: Config, naming: Naming = 'index'): Promise<PreparedListeners> {
    const claimed = new Set<RunningListener>();
    const steps: Array<{ lc: ListenerConfig; kept?: RunningListener; apply?: () => void; fresh?: RunningListener }> = [];
    const match = (lc: ListenerConfig): RunningListener | undefined => {
      const key = listenKey(lc.address);
      const same = this.byName.get(lc.name);
      if (same && !claimed.has(same) && listenKey(same.config.address) === key) return same;
      // A renamed listener on a fixed address keeps its socket (port 0 means "any": only by name).
      if (key.endsWith(':0')) return undefined;
      for (const l of this.byName.values()) if (!claimed.has(l) && listenKey(l.config.address) === key && !config.listeners.some((o) => o.name === l.name && listenKey(o.address) === key)) return l;
      return undefined;
    };
    const abort = async (): Promise<void> => {
      await Promise.allSettled(steps.map((s) => s.fresh?.close(0)));
    };
    for (const [i, lc] of config.listeners.entries()) {
      const where = naming === 'index' ? `listeners[${i}]` : `listeners.${lc.name}`;
      try {
        const kept = match(lc);
        if (kept) {
          claimed.add(kept);
          steps.push({ lc, kept, apply: kept.prepare(lc, where) });
        } else steps.push({ lc, fresh: await startListener(lc, this.pipeline, { hold: true, where }) });
      } catch (e) {
        await abort();
        throw new ConfigError(where, [(e as Error).message]);
      }
    }
    let done = false;
    return {
      commit: () => {
        if (done) return [];
        done = true;
        const next = new Map<string, RunningListener>();
        for (const s of steps) {
          if (s.kept) {
            s.apply!();
            next.set(s.lc.name, s.kept);
          } else {
            s.fresh!.serve();
            next.set(s.lc.name, s.fresh!);
          }
        }
        const retired = [...this.byName.values()].filter((l) => !claimed.has(l));
        this.byName = next;
        return retired;
      },
      abort: async () => {
        if (done) return;
        done = true;
        await abort();
      },
    };
  }

  /** Take every listener out of the set (the gateway stops); close them with retire(). */
  takeAll(): RunningListener[] {
    const all = this.all();
    this.byName = new Map();
    return all;
  }
}
