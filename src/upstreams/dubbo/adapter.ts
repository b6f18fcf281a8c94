// The Dubbo upstream adapter: one attempt of a prepared invocation against one
// provider instance, answered to the client as JSON. Retries, timeouts,
// breakers and outlier detection wrap it in forward() exactly as for HTTP.
//
// Connections: one multiplexed connection per provider (host:port). A lost
// connection is re-established by the next call; after a failed connect,
// calls fail fast (connect-failure, retried elsewhere) until a backoff that
// doubles per failure has passed.
import type { Cluster } from '../../balancing/cluster.js';
import type { Instance } from '../../balancing/instance.js';
import type { Exchange } from '../../exchange/exchange.js';
import type { AttemptOptions, AttemptReport, UpstreamAdapter } from '../types.js';
import type { FailureKind } from '../../exchange/outcome.js';
import { encodeRequest, Status, type DubboResult, type Invocation } from './codec.js';
import { DubboConnection, type CallResult } from './connection.js';

/** Provider status -> HTTP status (the table is in README.md, "HTTP to Dubbo"). */
export const STATUS_TO_HTTP: Readonly<Record<number, number>> = {
  [Status.CLIENT_TIMEOUT]: 504,
  [Status.SERVER_TIMEOUT]: 504,
  [Status.CHANNEL_INACTIVE]: 502,
  [Status.BAD_REQUEST]: 400,
  [Status.BAD_RESPONSE]: 502,
  // The provider does not export this service/group/version: another
  // provider may, and for the client it is the server side that is broken.
  [Status.SERVICE_NOT_FOUND]: 503,
  [Status.SERVICE_ERROR]: 500,
  [Status.SERVER_ERROR]: 502,
  [Status.CLIENT_ERROR]: 502,
  [Status.SERVER_THREADPOOL_EXHAUSTED]: 503,
};

/** Statuses that guarantee the method did not run: safe to retry even for non-idempotent requests. */
const NOT_EXECUTED = new Set<number>([Status.BAD_REQUEST, Status.SERVICE_NOT_FOUND, Status.SERVER_THREADPOOL_EXHAUSTED]);

export function httpStatusFor(dubboStatus: number): number {
  return STATUS_TO_HTTP[dubboStatus] ?? 502;
}

export interface DubboAdapterOptions {
  /** Heartbeat interval (Dubbo's default is 60 s); a connection silent for 3x is closed. */
  heartbeatMs?: number;
  /** Close connections unused for this long. */
  idleTimeoutMs?: number;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  maxBodyBytes?: number;
}

interface Slot {
  conn: DubboConnection | undefined;
  failures: number;
  retryAt: number;
}

const invocations = new WeakMap<Exchange, Invocation>();

/** Attach the invocation an exchange will make (set by the route handler before forward()). */
export function setInvocation(ex: Exchange, inv: Invocation): void {
  invocations.set(ex, inv);
}

const MAX_ID = 2 ** 53 - 1;
const SAFE_HEADER = /^[\w.$-]{1,256}$/;

export class DubboAdapter implements UpstreamAdapter {
  readonly protocol = 'dubbo';
  private readonly slots = new Map<string, Slot>();
  private id = 0;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private readonly heartbeatMs: number;
  private readonly idleTimeoutMs: number;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(private readonly opts: DubboAdapterOptions = {}) {
    this.heartbeatMs = opts.heartbeatMs ?? 60_000;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 300_000;
    this.baseMs = opts.reconnectBaseMs ?? 100;
    this.maxMs = opts.reconnectMaxMs ?? 2_000;
    this.sweeper = setInterval(() => this.sweep(), Math.min(30_000, this.idleTimeoutMs));
    this.sweeper.unref();
  }

  private readonly nextId = (): number => (this.id = this.id >= MAX_ID ? 1 : this.id + 1);

  /** Connection state per instance id, for diagnostics and tests. */
  describe(): Record<string, { state: string; inflight: number; failures: number }> {
    const out: Record<string, { state: string; inflight: number; failures: number }> = {};
    for (const [k, s] of this.slots) out[k] = { state: s.conn?.state ?? 'idle', inflight: s.conn?.inflight ?? 0, failures: s.failures };
    return out;
  }

  private onClosed(key: string, conn: DubboConnection): void {
    const slot = this.slots.get(key);
    if (!slot || slot.conn !== conn) return;
    slot.conn = undefined;
    if (conn.connected && !conn.wasReadonly) {
      slot.failures = 0;
      slot.retryAt = 0;
    } else {
      slot.failures++;
      slot.retryAt = Date.now() + Math.min(this.maxMs, this.baseMs * 2 ** (slot.failures - 1));
    }
  }

  /** The instance's connection, or why there is none right now. */
  connection(inst: Instance, connectTimeoutMs: number): DubboConnection | { failure: FailureKind; error: Error } {
    if (this.closed) return { failure: 'connect-failure', error: new Error('dubbo adapter closed') };
    const key = inst.id;
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { conn: undefined, failures: 0, retryAt: 0 };
      this.slots.set(key, slot);
    }
    const c = slot.conn;
    if (c) {
      if (c.usable) return c;
      return { failure: 'refused-stream', error: new Error(`provider ${key} is shutting down`) };
    }
    const now = Date.now();
    if (now < slot.retryAt) {
      return { failure: 'connect-failure', error: new Error(`provider ${key} unreachable; reconnecting in ${slot.retryAt - now} ms`) };
    }
    const conn = new DubboConnection(
      inst.host,
      inst.port,
      { connectTimeoutMs, heartbeatMs: this.heartbeatMs, maxBodyBytes: this.opts.maxBodyBytes },
      this.nextId,
      (cc) => this.onClosed(key, cc),
    );
    slot.conn = conn;
    return conn;
  }

  attempt(ex: Exchange, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptReport> {
    const inv = invocations.get(ex);
    if (!inv) return Promise.resolve({ failure: 'protocol', error: new Error('no Dubbo invocation for this request'), reachedUpstream: false });
    if (opts.signal.aborted) return Promise.resolve({ failure: 'aborted', reachedUpstream: false });
    const conn = this.connection(inst, cluster.config.connectTimeoutMs);
    if (!(conn instanceof DubboConnection)) return Promise.resolve({ ...conn, reachedUpstream: false });
    const id = this.nextId();
    let frame: Buffer;
    try {
      // The provider learns how long the consumer waits (server-side timeout accounting).
      inv.attachments.timeout = String(opts.timeoutMs);
      frame = encodeRequest(id, inv);
    } catch (e) {
      return Promise.resolve({ failure: 'protocol', error: e as Error, reachedUpstream: false });
    }
    const started = performance.now();
    return conn.call(id, frame, opts.timeoutMs, opts.signal).then((r) => this.answer(ex, opts, r, performance.now() - started));
  }

  private answer(ex: Exchange, opts: AttemptOptions, r: CallResult, headersMs: number): AttemptReport {
    if (!r.ok) return { failure: r.failure, error: r.error, reachedUpstream: r.reachedUpstream, headersMs: r.failure === 'timeout' ? headersMs : undefined };
    const res: DubboResult = r.result;
    let status: number;
    let body: string;
    let extra: Record<string, string> | undefined;
    switch (res.kind) {
      case 'value':
        status = 200;
        try {
          body = JSON.stringify(res.value) ?? 'null';
        } catch (e) {
          return { failure: 'protocol', error: new Error(`provider result is not representable as JSON: ${(e as Error).message}`), reachedUpstream: true, headersMs };
        }
        break;
      case 'exception':
        status = 500;
        body = JSON.stringify({ exception: res.error.exception, message: res.error.message, requestId: ex.requestId });
        // Header values must be plain ASCII; class names nearly always are.
        if (SAFE_HEADER.test(res.error.exception)) extra = { 'x-meshgate-dubbo-exception': res.error.exception };
        break;
      case 'status':
        status = httpStatusFor(res.status);
        body = JSON.stringify({ error: res.message || `provider answered status ${res.status}`, dubboStatus: res.status, requestId: ex.requestId });
        extra = { 'x-meshgate-dubbo-status': String(res.status) };
        break;
    }
    // Only a Dubbo status (the call failed in the framework) may be held for a retry; a value or an application exception is the answer.
    const executed = res.kind !== 'status' || !NOT_EXECUTED.has(res.status);
    const buf = Buffer.from(body);
    const sink = opts.sink;
    const head = sink.head(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(buf.length), ...extra }, false, res.kind === 'status');
    if (head === 'hold') return { status, reachedUpstream: executed, headersMs };
    if (head !== undefined) return { status, failure: (head as { code?: string }).code === 'MESHGATE_ABORTED' ? 'aborted' : 'protocol', error: head, reachedUpstream: true, headersMs };
    const err = sink.data(buf);
    const end = err instanceof Error ? err : sink.end();
    if (end) return { status, failure: (end as { code?: string }).code === 'MESHGATE_ABORTED' ? 'aborted' : 'protocol', error: end, reachedUpstream: true, headersMs };
    return { status, reachedUpstream: true, headersMs };
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, slot] of this.slots) {
      const c = slot.conn;
      if (c) {
        if (c.inflight === 0 && now - c.lastUsed >= this.idleTimeoutMs) c.close();
      } else if (now >= slot.retryAt && slot.failures === 0) this.slots.delete(key);
      else if (now - slot.retryAt > this.idleTimeoutMs) this.slots.delete(key);
    }
  }

  /** Close connections to instances no longer in any cluster. */
  prune(liveIds: ReadonlySet<string>): void {
    for (const [key, slot] of this.slots) {
      if (liveIds.has(key)) continue;
      this.slots.delete(key);
      slot.conn?.close();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const slot of this.slots.values()) slot.conn?.destroy();
    this.slots.clear();
  }
}

