// The registry watcher contract. A registry adapter (registries/<kind>/) speaks
// its registry's protocol and reports, per service, the full current instance
// list under the service's gateway name. It never diffs, caches or guesses:
// the EndpointTable does that.
import type { Logger } from 'pino';

export interface Endpoint {
  host: string;
  port: number;
  /** Relative weight, > 0; 0 means "do not route here". */
  weight: number;
  /** Registry-reported health (Nacos healthy, Consul passing, Eureka UP, ...). */
  healthy: boolean;
  /** Everything the registry knows about the instance, as strings. */
  metadata: Record<string, string>;
}

export interface RegistrySink {
  /** The complete current instance list of one service. An empty list is a valid answer: the service has no instances. */
  set(service: string, endpoints: Endpoint[]): void;
  /** The service no longer exists in the registry. */
  remove(service: string): void;
  /**
   * The complete set of services this registry provides right now. Services of
   * this registry that are not listed are removed. Use after a full listing.
   */
  replaceAll(services: Map<string, Endpoint[]>): void;
  /** Reachability of the registry. While down, the last known endpoints are kept. */
  status(up: boolean, error?: string): void;
  /** The registry answered its first full listing; /readyz waits for this. */
  synced(): void;
  /** Services this registry currently provides (as the table holds them). */
  services(): string[];
  readonly log: Logger;
}

export interface RegistryWatcher {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
  /** Extra state for /api/registries (sessions, indexes, last error...). */
  describe?(): Record<string, unknown>;
}

/** registries/<kind>/index.ts default-exports one of these. */
export type RegistryFactory<C = unknown> = (config: C, sink: RegistrySink) => RegistryWatcher;

export function endpointKey(e: Pick<Endpoint, 'host' | 'port'>): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

/** Parse "host:port" / "[v6]:port" (port 0 allowed: listeners on any free port). */
export function parseHostPort(s: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`not host:port: ${s}`);
  const port = Number(m[2]);
  if (!(port >= 0 && port < 65536)) throw new Error(`bad port in ${s}`);
  return { host: m[1]!, port };
}
