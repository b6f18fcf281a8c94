// The EndpointTable: every service's current instances, by gateway name.
// It diffs what registries report, keeps the last known list while a
// registry is down, and tells subscribers which services changed.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { endpointKey, type Endpoint, type RegistrySink } from './types.js';

export interface ServiceEntry {
  name: string;
  registry: string;
  endpoints: readonly Endpoint[];
  /** Bumped on every real change. */
  version: number;
  updatedAt: number;
}

export interface RegistryState {
  name: string;
  type: string;
  up: boolean;
  synced: boolean;
  lastError?: string;
  lastChangeAt?: number;
  services: number;
}

function sameMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  if (a === b) return true;
  const ak = Object.keys(a);
  if (ak.length !== Object.keys(b).length) return false;
  for (const k of ak) if (a[k] !== b[k]) return false;
  return true;
}

/**
 * The endpoints of `list` that can be routed to, first of each host:port
 * kept. An endpoint equal to one of `current` (weight, health, metadata) is
 * that object, so a service whose push changed one instance of ten keeps
 * nine objects instead of making ten new ones: at 1,000 endpoint changes a
 * second, what each change leaves behind is what the young generation has
 * to copy and promote. Returns undefined when the list equals `current`
 * (the same endpoints, in any order): nothing changed.
 */
function sanitize(list: Endpoint[], current: readonly Endpoint[] | undefined): Endpoint[] | undefined {
  let prev: Map<string, Endpoint> | undefined;
  if (current !== undefined && current.length !== 0) {
    prev = new Map();
    for (const e of current) prev.set(endpointKey(e), e);
  }
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  let reused = 0;
  for (const e of list) {
    if (!e || typeof e.host !== 'string' || !e.host || !Number.isInteger(e.port) || e.port <= 0 || e.port > 65535) continue;
    const key = endpointKey(e);
    if (seen.has(key)) continue;
    seen.add(key);
    const weight = Number.isFinite(e.weight) && e.weight >= 0 ? e.weight : 1;
    const healthy = e.healthy !== false;
    const metadata = e.metadata ?? {};
    const old = prev?.get(key);
    if (old !== undefined && old.weight === weight && old.healthy === healthy && sameMetadata(old.metadata, metadata)) {
      out.push(old);
      reused++;
    } else out.push({ host: e.host, port: e.port, weight, healthy, metadata });
  }
  return current !== undefined && reused === current.length && out.length === current.length ? undefined : out;
}

/**
 * Events: 'change' (service: string, entry: ServiceEntry | undefined),
 * 'endpoints' (service: string, endpoints: readonly Endpoint[] | undefined),
 * 'registry' (state: RegistryState)
 */
export class EndpointTable extends EventEmitter {
  private readonly entries = new Map<string, ServiceEntry>();
  private readonly registries = new Map<string, RegistryState>();
  private readonly owned = new Map<string, Set<string>>();
  /** The sink currently speaking for each registry. */
  private readonly tokens = new Map<string, object>();
  /** Bumped when a service is added or removed (not when its endpoints change): views that list names keep them until it moves. */
  namesVersion = 0;

  constructor(private readonly log: Logger) {
    super();
    this.setMaxListeners(0);
  }

  endpointsOf(service: string): readonly Endpoint[] | undefined {
    return this.entries.get(service)?.endpoints;
  }

  get(service: string): ServiceEntry | undefined {
    return this.entries.get(service);
  }

  /** Every service name, unsorted (services() sorts: a locale comparison per pair, 10 ms at 10,000 services). */
  serviceNames(): IterableIterator<string> {
    return this.entries.keys();
  }

  services(): ServiceEntry[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  registryStates(): RegistryState[] {
    return [...this.registries.values()];
  }

  allSynced(): boolean {
    for (const r of this.registries.values()) if (!r.synced) return false;
    return true;
  }

  /**
   * Register a registry and get the sink its adapter reports to. Called again
   * for a registry that is already known (a reload changed its settings), the
   * new sink takes over: the registry's services keep their endpoints until
   * the new adapter reports them, and the ones it has not reported by its first
   * full listing (replaceAll or synced) are removed then. A service whose list
   * changes is therefore one update, never "removed" then "added". The earlier
   * sink goes quiet.
   */
  sinkFor(name: string, type: string, log: Logger): RegistrySink {
    const known = this.registries.get(name);
    const state: RegistryState = known ?? { name, type, up: false, synced: false, services: 0 };
    state.type = type;
    this.registries.set(name, state);
    if (!this.owned.has(name)) this.owned.set(name, new Set());
    /** Services the previous adapter reported that this one has not confirmed yet. */
    const stale = new Set(known ? this.owned.get(name) : []);
    const token = {};
    this.tokens.set(name, token);
    const table = this;
    const live = (): boolean => table.tokens.get(name) === token;
    const dropStale = (): void => {
      for (const s of stale) table.remove(name, s);
      stale.clear();
    };
    return {
      log,
      set: (service, endpoints) => {
        if (!live()) return;
        stale.delete(service);
        table.set(name, service, endpoints);
      },
      remove: (service) => {
        if (!live()) return;
        stale.delete(service);
        table.remove(name, service);
      },
      replaceAll: (services) => {
        const owned = table.owned.get(name);
        if (!owned || !live()) return;
        for (const s of [...owned]) if (!services.has(s)) table.remove(name, s);
        stale.clear();
        for (const [s, eps] of services) table.set(name, s, eps);
      },
      status: (up, error) => {
        if (!table.registries.has(name) || !live()) return;
        const changed = state.up !== up || state.lastError !== error;
        state.up = up;
        state.lastError = up ? undefined : error;
        if (changed) {
          if (up) log.info('registry up');
          else log.warn({ error }, 'registry down: keeping last known endpoints');
          table.emit('registry', state);
        }
      },
      synced: () => {
        if (!live()) return;
        dropStale();
        if (!state.synced) {
          state.synced = true;
          state.up = true;
          table.emit('registry', state);
        }
      },
      services: () => [...(table.owned.get(name) ?? [])],
    };
  }

  /** Forget a registry (config reload removed it) and its services. */
  dropRegistry(name: string): void {
    for (const s of [...(this.owned.get(name) ?? [])]) this.remove(name, s);
    this.owned.delete(name);
    this.registries.delete(name);
    this.tokens.delete(name);
  }

  private set(registry: string, service: string, endpoints: Endpoint[]): void {
    const state = this.registries.get(registry);
    if (!state) return; // a stopped registry reporting late
    if (!Array.isArray(endpoints)) {
      this.log.warn({ registry, service }, 'registry reported a non-list for a service; ignored');
      return;
    }
    const current = this.entries.get(service);
    if (current && current.registry !== registry) {
      this.log.warn({ service, registry, owner: current.registry }, 'service name reported by two registries; keeping the first');
      return;
    }
    const clean = sanitize(endpoints, current?.endpoints);
    if (clean === undefined) return;
    if (current === undefined) this.namesVersion++;
    const entry: ServiceEntry = {
      name: service,
      registry,
      endpoints: Object.freeze(clean),
      version: (current?.version ?? 0) + 1,
      updatedAt: Date.now(),
    };
    this.entries.set(service, entry);
    this.owned.get(registry)!.add(service);
    state.services = this.owned.get(registry)!.size;
    state.lastChangeAt = entry.updatedAt;
    this.emit('change', service, entry);
    this.emit('endpoints', service, entry.endpoints);
  }

  private remove(registry: string, service: string): void {
    const current = this.entries.get(service);
    if (!current || current.registry !== registry) return;
    this.entries.delete(service);
    this.namesVersion++;
    const owned = this.owned.get(registry);
    owned?.delete(service);
    const state = this.registries.get(registry);
    if (state) {
      state.services = owned?.size ?? 0;
      state.lastChangeAt = Date.now();
    }
    this.emit('change', service, undefined);
    this.emit('endpoints', service, undefined);
  }
}
