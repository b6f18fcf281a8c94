// One Consul blocking query kept alive for the life of the watcher.
//
// The `consul` client's watch() does the long poll (index + wait, index reset
// to 0 when the server's index goes backwards, 'change' only when the index
// grew). Two of its behaviours need a wrapper:
//  - it ends itself for good on a 400 or a response without X-Consul-Index;
//  - its retry backoff grows to 30 s, too slow to notice a registry that came back.
// So every error ends the client's watch and this class starts a new one after
// a short capped backoff, from index 0 (the first answer is immediate and
// re-syncs whatever changed during the outage; the payload is diffed anyway).
import type Consul from 'consul';

type ConsulClient = InstanceType<typeof Consul>;
type ClientWatch = ReturnType<ConsulClient['watch']>;

export type { ConsulClient };

export interface BlockingWatchOptions {
  /** Label for logs and errors: "catalog" or the service name. */
  what: string;
  /** Calls the client method to long-poll (e.g. client.health.service). */
  method: (client: ConsulClient) => (opts: Record<string, unknown>) => Promise<unknown>;
  /** Query options for the method (dc, token, wait, tag...). */
  options: Record<string, unknown>;
  /** A new answer (the index grew or was reset). Throw to reject a malformed payload. */
  onData(data: unknown, headers: Record<string, string | string[] | undefined>): void;
  /** The watch failed (network, HTTP status, malformed payload) and will be restarted. */
  onError(error: Error, statusCode: number | undefined, client: ConsulClient): void;
  /** Picks the client for the next (re)start, so a failing server can be rotated away. */
  client(): ConsulClient;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export class BlockingWatch {
  private watch: ClientWatch | undefined;
  private client: ConsulClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private stopped = false;
  /** Last X-Consul-Index seen (for /api/registries). */
  index: string | undefined;
  lastError: string | undefined;
  answers = 0;

  constructor(private readonly o: BlockingWatchOptions) {}

  start(): void {
    if (this.stopped) return;
    const client = this.o.client();
    this.client = client;
    // Not bound: the client's watch calls the method with `this` = { consul: client }, which is what its API methods read.
    const method = this.o.method(client);
    const w = client.watch({
      method,
      // The client's own types declare string values only; it accepts any option the method takes.
      options: { ...this.o.options } as Record<string, string>,
    });
    this.watch = w;
    w.on('change', (data: unknown, res: { headers: Record<string, string | string[] | undefined> }) => {
      if (this.stopped || this.watch !== w) return;
      const idx = res?.headers?.['x-consul-index'];
      if (typeof idx === 'string') this.index = idx;
      // Cleared before onData so the owner's health check sees this watch as healthy again.
      const previousError = this.lastError;
      this.lastError = undefined;
      try {
        this.o.onData(data, res?.headers ?? {});
      } catch (e) {
        this.lastError = previousError;
        this.fail(w, e as Error, undefined);
        return;
      }
      this.failures = 0;
      this.answers++;
    });
    w.on('error', (err: Error & { response?: { statusCode?: number } }, res?: { statusCode?: number }) => {
      if (this.stopped || this.watch !== w) return;
      this.fail(w, err, res?.statusCode ?? err?.response?.statusCode);
    });
  }

  private fail(w: ClientWatch, err: Error, statusCode: number | undefined): void {
    w.end();
    this.watch = undefined;
    const message = statusCode && statusCode >= 300 ? `HTTP ${statusCode}: ${err.message}` : err.message || String(err);
    this.lastError = `${this.o.what}: ${message}`;
    this.o.onError(new Error(this.lastError), statusCode, this.client!);
    const exp = Math.min(this.o.backoffMaxMs, this.o.backoffBaseMs * 2 ** this.failures);
    this.failures++;
    // +-20% jitter so many service watches do not hit a recovering server in lockstep.
    const delay = Math.round(exp * (0.8 + Math.random() * 0.4));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.start();
    }, delay);
    this.timer.unref();
  }

  get failing(): boolean {
    return this.lastError !== undefined;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.watch?.end();
    this.watch = undefined;
  }
}
