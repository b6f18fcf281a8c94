// The upstream contract: one attempt of one exchange against one instance.
// Retries, timeouts, breakers, outlier detection and metrics wrap this
// contract (src/upstreams/forward.ts); adapters only speak their protocol.
// An adapter never writes to the client: it reports the upstream's answer to
// the attempt's ResponseSink, and forward decides (through the sink) what is
// held for a retry and what goes downstream.
import type { Duplex } from 'node:stream';
import type { Cluster } from '../balancing/cluster.js';
import type { Instance } from '../balancing/instance.js';
import type { Exchange } from '../exchange/exchange.js';
import type { Cancellation } from '../exchange/cancel.js';
import type { AttemptOutcome } from '../exchange/outcome.js';

export interface AttemptOptions {
  /** Milliseconds until the response headers must have arrived. */
  timeoutMs: number;
  /** Aborts the attempt (client went away, route timeout). */
  signal: Cancellation;
  /** Where the upstream's answer goes. */
  sink: ResponseSink;
}

/** Response header fields as adapters report them (hop-by-hop fields already left out). */
export type ResponseHead = Record<string, string | string[] | undefined>;

/** What an adapter reports an upstream response to (implemented by upstreams/response-writer.ts). */
export interface ResponseSink {
  /**
   * The response head. 'hold': forward keeps this response back (a status it
   * will retry): the adapter drops the rest and ends the attempt with the
   * status. An error: the client is gone or refused the head; the adapter fails
   * the attempt with it. `endStream`: no body follows (HTTP/2 trailers-only).
   * `retryable` false: an application's answer that is never held (a Dubbo
   * business exception). The sink may add fields to `headers`.
   */
  head(status: number, headers: ResponseHead, endStream?: boolean, retryable?: boolean): 'hold' | Error | undefined;
  /** Body bytes. false: the client is slow, pause until onDrain; an error: fail the attempt with it. */
  data(chunk: Buffer): boolean | Error;
  onDrain(resume: () => void): void;
  /** The response ended, with the upstream's trailers. An error: the head was refused at the last moment. */
  end(trailers?: ResponseHead): Error | undefined;
  /** The upstream failed after the head: the client sees a broken response (HTTP/2: a reset with `h2Code`). */
  broken(err: Error, h2Code?: number): void;
  /** The upstream switched protocols: the client's and the upstream's sockets are joined. */
  tunnel(status: number, headers: ResponseHead, client: Duplex, upstream: Duplex, head: Buffer): void;
  /** Something went downstream: the exchange can no longer be retried or answered with an error. */
  readonly committed: boolean;
}

/** What an attempt reports; forward completes it with the sink's `committed`. */
export type AttemptReport = Omit<AttemptOutcome, 'committed'> & { committed?: boolean };

export interface UpstreamAdapter {
  readonly protocol: string;
  /** Resolves when the response ended (or the attempt failed). Never rejects. */
  attempt(ex: Exchange, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptReport>;
  /** Upgrade (WebSocket) requests; resolves when the tunnel is set up or failed. */
  upgrade?(ex: Exchange, socket: Duplex, head: Buffer, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptReport>;
  /** Forget connections to instances no longer in use. */
  prune?(liveIds: ReadonlySet<string>): void;
  close(): Promise<void>;
}

export class AttemptTimeoutError extends Error {
  readonly code = 'MESHGATE_UPSTREAM_TIMEOUT';
  constructor(ms: number) {
    super(`no response headers within ${ms} ms`);
  }
}
