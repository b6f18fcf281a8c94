// What one upstream attempt reports: breakers, outlier detection and retries
// judge it; the attempt loop (upstreams/forward.ts) produces it.

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
