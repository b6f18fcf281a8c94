// One multiplexed TCP connection to a Dubbo provider: many calls in flight,
// responses matched by request id, heartbeats both ways, and every call
// settled exactly once (response, timeout, abort or connection loss) — a
// call never hangs on a dead connection.
import type { Cancellation } from '../../exchange/cancel.js';
import { connect, type Socket } from 'node:net';
import type { FailureKind } from '../../exchange/outcome.js';
import {
  decodeEventData,
  decodeResponse,
  encodeHeartbeat,
  encodeHeartbeatResponse,
  FLAG_TWOWAY,
  FrameReader,
  isEvent,
  isRequest,
  ProtocolError,
  type DubboResult,
  type Frame,
} from './codec.js';

export interface ConnectionOptions {
  connectTimeoutMs: number;
  /** Send a heartbeat after this long without traffic; close after 3x without reading anything. */
  heartbeatMs: number;
  maxBodyBytes?: number;
}

export type CallResult =
  | { ok: true; result: DubboResult }
  | { ok: false; failure: FailureKind; error: Error; reachedUpstream: boolean };

interface PendingCall {
  resolve(r: CallResult): void;
  timer: NodeJS.Timeout | undefined;
  signal: Cancellation | undefined;
  onAbort: (() => void) | undefined;
}

export class CallTimeoutError extends Error {
  readonly code = 'MESHGATE_UPSTREAM_TIMEOUT';
}

export class ConnectionLostError extends Error {
  readonly code = 'MESHGATE_DUBBO_CONNECTION_LOST';
}

export type ConnectionState = 'connecting' | 'open' | 'readonly' | 'closed';

export class DubboConnection {
  state: ConnectionState = 'connecting';
  /** Set when the connection ended; the reason given to in-flight calls. */
  closeReason: Error | undefined;
  /** True once the TCP connection was established (a failure after that is not a connect failure). */
  connected = false;
  lastUsed = Date.now();
  /** The provider announced it is shutting down. */
  wasReadonly = false;
  private readonly socket: Socket;
  private readonly reader: FrameReader;
  private readonly pending = new Map<number, PendingCall>();
  private connectTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastRead = Date.now();
  private lastWrite = Date.now();
  private lastError: Error | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly opts: ConnectionOptions,
    private readonly nextId: () => number,
    private readonly onClosed: (c: DubboConnection) => void,
  ) {
    this.reader = new FrameReader(opts.maxBodyBytes);
    this.socket = connect({ host, port, noDelay: true });
    // A gateway that forgets to close its pool must still be able to exit.
    this.socket.unref();
    this.connectTimer = setTimeout(() => {
      this.destroy(Object.assign(new Error(`connect timeout after ${opts.connectTimeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, opts.connectTimeoutMs);
    this.connectTimer.unref();
    this.socket.once('connect', () => this.onConnect());
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (e) => {
      this.lastError = e;
    });
    this.socket.once('close', () => this.onClose());
  }

  get inflight(): number {
    return this.pending.size;
  }

  /** Usable for new calls (connecting counts: writes queue until connected). */
  get usable(): boolean {
    return this.state === 'connecting' || this.state === 'open';
  }

  private onConnect(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.connected = true;
    if (this.state === 'connecting') this.state = 'open';
    this.lastRead = this.lastWrite = Date.now();
    const hb = this.opts.heartbeatMs;
    this.heartbeatTimer = setInterval(() => this.heartbeat(), Math.max(50, Math.floor(hb / 2)));
    this.heartbeatTimer.unref();
  }

  private heartbeat(): void {
    const now = Date.now();
    const hb = this.opts.heartbeatMs;
    if (now - this.lastRead >= hb * 3) {
      this.destroy(new ConnectionLostError(`no data from provider for ${now - this.lastRead} ms (heartbeat timeout)`));
      return;
    }
    if (now - this.lastRead >= hb || now - this.lastWrite >= hb) this.write(encodeHeartbeat(this.nextId()));
  }

  private write(buf: Buffer): void {
    this.lastWrite = Date.now();
    this.socket.write(buf);
  }

  private onData(chunk: Buffer): void {
    this.lastRead = Date.now();
    try {
      this.reader.push(chunk, (f) => this.onFrame(f));
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  private onFrame(f: Frame): void {
    if (isRequest(f)) {
      if (!isEvent(f)) return; // providers do not call consumers over this channel
      const data = decodeEventData(f);
      if (data === 'R') {
        // Readonly event: the provider is shutting down gracefully. Calls in
        // flight finish; new calls go elsewhere (or to a new connection later).
        if (this.state === 'open' || this.state === 'connecting') this.state = 'readonly';
        this.wasReadonly = true;
      }
      if (f.flags & FLAG_TWOWAY) this.write(encodeHeartbeatResponse(f.id));
      if (this.state === 'readonly' && this.pending.size === 0) {
        this.closeReason ??= new ConnectionLostError('provider is shutting down (readonly)');
        this.socket.end();
      }
      return;
    }
    if (isEvent(f)) return; // heartbeat answer: lastRead is already updated
    const call = this.pending.get(f.id);
    if (!call) return; // timed out or aborted earlier
    let result: DubboResult;
    try {
      result = decodeResponse(f);
    } catch (e) {
      this.settle(f.id, { ok: false, failure: 'protocol', error: e as Error, reachedUpstream: true });
      return;
    }
    this.settle(f.id, { ok: true, result });
  }

  private settle(id: number, r: CallResult): void {
    const call = this.pending.get(id);
    if (!call) return;
    this.pending.delete(id);
    if (call.timer) clearTimeout(call.timer);
    if (call.onAbort) call.signal!.removeEventListener('abort', call.onAbort);
    call.resolve(r);
    // A draining connection (readonly provider, graceful close) ends with its last call.
    if (this.state === 'readonly' && this.pending.size === 0) this.destroy(new ConnectionLostError('connection drained'));
  }

  /**
   * Send a request frame (built with `id`) and wait for its response. Never
   * rejects. The timeout starts now; an abort forgets the call (a late
   * response is dropped).
   */
  call(id: number, frame: Buffer, timeoutMs: number, signal?: Cancellation): Promise<CallResult> {
    this.lastUsed = Date.now();
    if (!this.usable) {
      const error = this.closeReason ?? new ConnectionLostError('connection is closing');
      return Promise.resolve({ ok: false, failure: 'refused-stream', error, reachedUpstream: false });
    }
    return new Promise<CallResult>((resolve) => {
      const call: PendingCall = { resolve, timer: undefined, signal, onAbort: undefined };
      this.pending.set(id, call);
      call.timer = setTimeout(() => {
        this.settle(id, { ok: false, failure: 'timeout', error: new CallTimeoutError(`no response within ${timeoutMs} ms`), reachedUpstream: true });
      }, timeoutMs);
      if (signal) {
        call.onAbort = () => {
          this.settle(id, { ok: false, failure: 'aborted', error: new Error('request aborted'), reachedUpstream: this.connected });
        };
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      this.write(frame);
    });
  }

  private onClose(): void {
    clearTimeout(this.connectTimer);
    clearInterval(this.heartbeatTimer);
    const wasConnected = this.connected;
    this.state = 'closed';
    const cause = this.closeReason ?? this.lastError;
    const error = wasConnected
      ? new ConnectionLostError(`connection to ${this.host}:${this.port} lost${cause ? `: ${cause.message}` : ''}`)
      : Object.assign(new Error(`connect to ${this.host}:${this.port} failed${cause ? `: ${cause.message}` : ''}`), {
          code: (cause as NodeJS.ErrnoException | undefined)?.code ?? 'ECONNREFUSED',
        });
    this.closeReason = error;
    const failure: FailureKind = wasConnected ? (cause instanceof ProtocolError ? 'protocol' : 'reset') : 'connect-failure';
    for (const id of [...this.pending.keys()]) this.settle(id, { ok: false, failure, error, reachedUpstream: wasConnected });
    this.onClosed(this);
  }

  /** Close now; calls in flight fail at once. */
  destroy(reason?: Error): void {
    if (this.state === 'closed' && this.socket.destroyed) return;
    if (reason && !this.closeReason) this.closeReason = reason;
    this.socket.destroy();
  }

  /** Close gracefully: no new calls; closes when calls in flight are done. */
  close(): void {
    if (this.pending.size === 0) {
      this.destroy(new ConnectionLostError('connection closed by the gateway'));
      return;
    }
    if (this.state !== 'closed') this.state = 'readonly';
  }
}
