// The registry contract. A registry kind (registries/<kind>/) is one plug-in:
// its config schema, the suffix of the names it gives services, and an adapter
// loaded on demand. The adapter speaks its registry's protocol and reports, per
// service, the full current instance list under the service's gateway name. It
// never diffs, caches or guesses: the EndpointTable does that.
import type { Logger } from 'pino';
import { z } from 'zod';

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

// ---------- registry plug-ins ----------

/** A registry kind's config schema: a strict object with `name`, a literal `type`, and the kind's own keys. */
export type RegistryConfigSchema<T extends string = string, Shape extends z.core.$ZodLooseShape = z.core.$ZodLooseShape> = z.ZodObject<
  { name: z.ZodString; type: z.ZodLiteral<T> } & Shape,
  z.core.$strict
>;

/** "host:port" or "[v6]:port", as config text (parseHostPort reads it). */
export const hostPortSchema = z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+):\d{1,5}$/, 'must be host:port');

/**
 * A registry kind's config schema: `name` and `type` (the same for every kind,
 * in this order) followed by the kind's own keys. Unknown keys are refused.
 */
export function registryConfigSchema<const T extends string, Shape extends z.core.$ZodLooseShape>(
  type: T,
  shape: Shape,
): RegistryConfigSchema<T, Shape> {
  return z.strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'must be letters, digits, _ . -'),
    type: z.literal(type),
    ...shape,
  }) as RegistryConfigSchema<T, Shape>;
}

/** A problem with one registry's config; path is relative to that registry (`['endpoints', 2]`; [] for the registry itself). */
export interface RegistryConfigProblem {
  path: Array<string | number>;
  message: string;
}

/**
 * One registry kind. registries/<kind>/plugin.ts default-exports one;
 * registries/index.ts lists them all, and the config schema, config validation
 * and the gateway take every kind from that list. Importing a plug-in loads its
 * schema only: load() imports the adapter (and its registry client library)
 * when a configured registry of this kind starts.
 */
export interface RegistryPlugin<S extends RegistryConfigSchema = RegistryConfigSchema> {
  /** The config's `type` value. */
  readonly type: z.output<S>['type'];
  /** The config keys of this kind (validation, defaults, the JSON schema of `meshgate schema`). */
  readonly schema: S;
  /** The last label of the gateway names this kind gives its services (`<...>.<suffix>`). */
  readonly serviceSuffix: string;
  /** Checks the schema cannot express, run once the whole config has parsed. */
  check?(config: z.output<S>): RegistryConfigProblem[];
  /**
   * The gateway names a registry of this config can give, for config
   * validation (src/config/names.ts): a pattern to describe them, a test, and
   * the exact names when the kind knows them all (static, dns).
   */
  names(config: z.output<S>): ServiceNames;
  /** Import the adapter. */
  load(): Promise<RegistryFactory<z.output<S>>>;
}

/** What names a configured registry gives its services (see RegistryPlugin.names). */
export interface ServiceNames {
  /** e.g. `<service>.DEFAULT-GROUP.public.nacos`. */
  readonly pattern: string;
  /** Whether this registry can give `name`. */
  accepts(name: string): boolean;
  /** Every name it gives, when known from the config alone. */
  readonly exact?: readonly string[];
}

/** Types a plug-in object (its config type is inferred from the schema). */
export function defineRegistryPlugin<S extends RegistryConfigSchema>(plugin: RegistryPlugin<S>): RegistryPlugin<S> {
  return plugin;
}

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
