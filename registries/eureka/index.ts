// Eureka registry: polls the REST API (Eureka has no push or long poll) every
// fetchIntervalMs. A full GET /apps first, then GET /apps/delta, applied to
// the local copy and checked against the delta's apps__hashcode: on a
// mismatch the delta is dropped and a full fetch replaces the copy.
// Services are named `<app in lower case>.eureka`; only UP instances route.
//
// The REST API is used directly rather than eureka-js-client: that client
// fetches the full registry on a timer, emits 'registryUpdated' after every
// fetch whether or not anything changed, never checks apps__hashcode in its
// delta mode (and its MODIFIED/DELETED handling splices the wrong index), does
// not report fetch errors as events, and ignores overriddenStatus.
import { request } from 'undici';
import type { Endpoint, RegistryFactory, RegistrySink, RegistryWatcher } from '../../src/discovery/types.js';
import {
  applyDelta,
  appsFromFull,
  endpointsOf,
  eurekaServiceName,
  parseApplications,
  reconcileHashcode,
  EurekaPayloadError,
  type ApplicationsAnswer,
  type EurekaApps,
} from './model.js';
import type { EurekaConfig } from './schema.js';

/** Deltas hold the last ~3 minutes of changes: after a longer gap only a full fetch is safe. */
const DELTA_SAFE_GAP_MS = 120_000;
/** A full fetch now and then also catches changes the hashcode cannot see (same status counts). */
const FULL_FETCH_EVERY_MS = 300_000;
const REQUEST_TIMEOUT_MS = 10_000;

export interface EurekaServer {
  /** e.g. http://127.0.0.1:8761/eureka (no credentials, no trailing slash) */
  base: string;
  authorization: string | undefined;
}

/** Server URL -> base and Basic auth header. The prefix (/eureka, /eureka/v2, ...) is whatever path the URL has. */
export function parseServerUrl(raw: string): EurekaServer {
  const u = new URL(raw);
  let authorization: string | undefined;
  if (u.username || u.password) {
    const creds = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    authorization = `Basic ${Buffer.from(creds).toString('base64')}`;
  }
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/apps')) path = path.slice(0, -5);
  return { base: `${u.protocol}//${u.host}${path}`, authorization };
}

class FetchError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
  }
}

class EurekaWatcher implements RegistryWatcher {
  private readonly servers: EurekaServer[];
  private active = 0;
  private apps: EurekaApps | undefined;
  private timer: NodeJS.Timeout | undefined;
  private abort = new AbortController();
  private stopped = false;
  private failures = 0;
  private lastSuccessAt = 0;
  private lastFullAt = 0;
  private deltaUnsupported = false;
  private readonly stats = {
    fullFetches: 0,
    deltaFetches: 0,
    hashcodeMismatches: 0,
    versionsDelta: '',
    appsHashcode: '',
    lastFetch: '' as '' | 'full' | 'delta',
    lastError: undefined as string | undefined,
  };

  constructor(
    private readonly config: EurekaConfig,
    private readonly sink: RegistrySink,
  ) {
    this.servers = config.servers.map(parseServerUrl);
  }

  start(): Promise<void> {
    return this.tick();
  }

  private async get(path: string): Promise<ApplicationsAnswer> {
    const server = this.servers[this.active]!;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (server.authorization) headers.authorization = server.authorization;
    const res = await request(`${server.base}${path}`, {
      method: 'GET',
      headers,
      signal: this.abort.signal,
      headersTimeout: REQUEST_TIMEOUT_MS,
      bodyTimeout: REQUEST_TIMEOUT_MS,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new FetchError(`GET ${path}: HTTP ${res.statusCode}`, res.statusCode);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new EurekaPayloadError(`GET ${path}: not JSON (${text.slice(0, 40).replace(/\s+/g, ' ')})`);
    }
    try {
      return parseApplications(json);
    } catch (e) {
      throw new EurekaPayloadError(`GET ${path}: ${(e as Error).message}`);
    }
  }

  private async fetchFull(): Promise<EurekaApps> {
    const answer = await this.get('/apps/');
    this.stats.fullFetches++;
    this.stats.lastFetch = 'full';
    this.stats.versionsDelta = answer.versionsDelta;
    this.stats.appsHashcode = answer.hashcode;
    this.lastFullAt = Date.now();
    return appsFromFull(answer);
  }

  /** Returns the updated copy, or undefined when nothing changed. */
  private async fetchDelta(current: EurekaApps): Promise<EurekaApps | undefined> {
    let delta: ApplicationsAnswer;
    try {
      delta = await this.get('/apps/delta');
    } catch (e) {
      // Servers with deltas disabled answer 403: fall back to full fetches for good.
      if (e instanceof FetchError && (e.statusCode === 403 || e.statusCode === 404)) {
        this.deltaUnsupported = true;
        return this.fetchFull();
      }
      throw e;
    }
    this.stats.deltaFetches++;
    this.stats.lastFetch = 'delta';
    const { apps, changed } = applyDelta(current, delta);
    const local = reconcileHashcode(apps);
    if (local !== delta.hashcode) {
      this.stats.hashcodeMismatches++;
      this.sink.log.info({ registry: this.config.name, local, server: delta.hashcode }, 'eureka delta hashcode mismatch: full fetch');
      return this.fetchFull();
    }
    this.stats.versionsDelta = delta.versionsDelta;
    this.stats.appsHashcode = delta.hashcode;
    return changed.size ? apps : undefined;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const now = Date.now();
      const full =
        !this.apps || this.deltaUnsupported || now - this.lastSuccessAt > DELTA_SAFE_GAP_MS || now - this.lastFullAt > FULL_FETCH_EVERY_MS;
      const next = full ? await this.fetchFull() : await this.fetchDelta(this.apps!);
      if (this.stopped) return;
      if (next) {
        this.apps = next;
        this.publish(next);
      }
      this.lastSuccessAt = Date.now();
      this.failures = 0;
      this.stats.lastError = undefined;
      this.sink.status(true);
      this.sink.synced();
    } catch (e) {
      if (this.stopped) return;
      const err = e as Error & { code?: string };
      this.failures++;
      this.stats.lastError = `${this.servers[this.active]!.base}: ${err.code ? `${err.code} ` : ''}${err.message}`;
      this.sink.status(false, this.stats.lastError);
      // Whatever happened meanwhile, the next successful answer must be a full one.
      this.lastSuccessAt = 0;
      if (this.servers.length > 1) this.active = (this.active + 1) % this.servers.length;
    }
    if (this.stopped) return;
    // After errors, retry sooner than the interval (1 s doubling) so a recovered server is seen quickly.
    const delay = this.failures ? Math.min(this.config.fetchIntervalMs, 1000 * 2 ** (this.failures - 1)) : this.config.fetchIntervalMs;
    this.timer = setTimeout(() => void this.tick(), delay);
    this.timer.unref();
  }

  private publish(apps: EurekaApps): void {
    const services = new Map<string, Endpoint[]>();
    for (const [app, instances] of apps) services.set(eurekaServiceName(app), endpointsOf(instances.values()));
    // The table diffs per service and removes this registry's services that are gone.
    this.sink.replaceAll(services);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort();
  }

  describe(): Record<string, unknown> {
    return { server: this.servers[this.active]!.base, apps: this.apps?.size ?? 0, fetchIntervalMs: this.config.fetchIntervalMs, ...this.stats };
  }
}

const createEureka: RegistryFactory<EurekaConfig> = (config, sink) => new EurekaWatcher(config, sink);

export default createEureka;
