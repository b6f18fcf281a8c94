// The upstream contract: one attempt of one exchange against one instance.
// Retries, timeouts, breakers, outlier detection and metrics wrap this
// contract (src/upstreams/forward.ts); adapters only speak their protocol.
import type { Duplex } from 'node:stream';
import type { Cluster } from '../balancing/cluster.js';
import type { Instance } from '../balancing/instance.js';
import type { Exchange } from '../server/exchange.js';
import type { Cancellation } from './cancel.js';

export type FailureKind = 'connect-failure' | 'timeout' | 'reset' | 'refused-stream' | 'protocol' | 'aborted';

export interface AttemptOutcome {
  /** Upstream status, when a response arrived. */
  status?: number;
  failure?: FailureKind;
  error?: Error;
  /** Something was written downstream: the exchange can no longer be retried or answered with an error. */
  committed: boolean;
  /** The request reached the upstream (body started or request written): non-idempotent requests must not be retried. */
  reachedUpstream: boolean;
  /** Milliseconds from attempt start to the response headers (the RT breakers judge). */
  headersMs?: number;
}

export interface AttemptOptions {
  /** Milliseconds until the response headers must have arrived. */
  timeoutMs: number;
  /** Aborts the attempt (client went away, route timeout). */
  signal: Cancellation;
  /** Return true to hold a response back (it will be retried); the adapter discards it. */
  holdStatus?(status: number): boolean;
}

export interface UpstreamAdapter {
  readonly protocol: string;
  /** Resolves when the response ended (or the attempt failed). Never rejects. */
  attempt(ex: Exchange, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptOutcome>;
  /** Upgrade (WebSocket) requests; resolves when the tunnel is set up or failed. */
  upgrade?(ex: Exchange, socket: Duplex, head: Buffer, inst: Instance, cluster: Cluster, opts: AttemptOptions): Promise<AttemptOutcome>;
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
