// Forwarding one exchange to a backend: instance pick, breaker admission,
// per-try and route timeouts, retries with jittered backoff and a budget,
// outlier reports, upstream metrics. Protocol adapters only do one attempt and
// report it to the attempt's ResponseWriter; this loop alone decides what is
// held for a retry, what is committed, and what error the client gets.
// Upgrades (WebSocket) take the same loop.
import type { Cluster } from '../balancing/cluster.js';
import type { Instance } from '../balancing/instance.js';
import { describeTlsError } from '../balancing/tls.js';
import type { RetriesConfig } from '../config/schema.js';
import type { Metrics } from '../observability/metrics.js';
import type { CompiledBackend } from '../routing/canary.js';
import type { Exchange } from '../exchange/exchange.js';
import type { Flag } from '../exchange/flags.js';
import { passAnotherInstance } from '../resilience/breaker-set.js';
import { sendDirect, sendError } from '../exchange/respond.js';
import type { Duplex } from 'node:stream';
import type { Cancellation } from '../exchange/cancel.js';
import { requestHasBody } from '../exchange/exchange.js';
import type { UpstreamAdapter } from './types.js';
import type { AttemptOutcome, FailureKind } from '../exchange/outcome.js';
import { ResponseWriter } from './response-writer.js';

const NO_INSTANCES: ReadonlySet<Instance> = new Set();
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const FAILURE_FLAG: Record<FailureKind, Flag> = {
  'connect-failure': 'UF',
  timeout: 'UT',
  reset: 'UC',
  'refused-stream': 'UC',
  protocol: 'UP',
  aborted: 'DC',
};

export interface ForwardDeps {
  metrics: Metrics;
  adapterFor(cluster: Cluster, inst: Instance): UpstreamAdapter | undefined;
  /** Pick an instance for a backend honouring subsets and grey tags. */
  pickInstance(backend: CompiledBackend, ex: Exchange, exclude: ReadonlySet<Instance>): Instance | undefined;
  /** Forward to another service (breaker fallback). */
  cluster(service: string): Cluster;
  /** An upstream TLS handshake failed (the gateway logs it once per instance and reason). */
  onTlsFailure?(service: string, instance: string, detail: string): void;
}

/** A failed TLS handshake behind an attempt's error: its detail for logs and answers, and its reason code for metrics. */
function tlsFailureOf(err: Error | undefined): { detail: string; reason: string } | undefined {
  const detail = (err as { tls?: string } | undefined)?.tls ?? describeTlsError(err) ?? describeTlsError((err as { cause?: unknown } | undefined)?.cause);
  if (detail === undefined) return undefined;
  return { detail, reason: /^tls: (\S+)/.exec(detail)?.[1] ?? 'handshake' };
}

function statusRetryable(r: RetriesConfig, status: number): boolean {
  for (const on of r.on) {
    if (on === status) return true;
    if (on === '5xx' && status >= 500) return true;
    if (on === 'gateway-error' && (status === 502 || status === 503 || status === 504)) return true;
  }
  return false;
}

function failureRetryable(r: RetriesConfig, f: FailureKind): boolean {
  if (f === 'aborted' || f === 'protocol') return false;
  for (const on of r.on) {
    if (on === f) return true;
    if ((on === '5xx' || on === 'gateway-error') && (f === 'connect-failure' || f === 'timeout' || f === 'reset')) return true;
  }
  return false;
}

/** Envoy-style fully jittered exponential backoff. */
export function backoffMs(r: RetriesConfig, retry: number): number {
  const cap = Math.min(r.backoff.maxMs, r.backoff.baseMs * 2 ** (retry - 1));
  return Math.random() * cap;
}

function budgetAllows(cluster: Cluster, r: RetriesConfig): boolean {
  const allowed = Math.max(r.minRetriesConcurrency, (cluster.activeRequests * r.budgetPercent) / 100);
  return cluster.activeRetries < allowed;
}

const sleep = (ms: number, signal: Cancellation): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });

/** An upgrade request's connection: the client's socket and what it sent after the head. */
export interface UpgradeRequest {
  socket: Duplex;
  head: Buffer;
}

/**
 * Forward `ex` to `backend`. Always answers the client. `signal` aborts when
 * the client goes away. With `upgrade`, the adapter's upgrade() is tried and
 * a 101 joins the client's socket to the upstream's.
 */
export async function forward(
  ex: Exchange,
  backend: CompiledBackend,
  routeTimeoutMs: number | undefined,
  signal: Cancellation,
  deps: ForwardDeps,
  upgrade?: UpgradeRequest,
): Promise<void> {
  const cluster = backend.cluster;
  ex.service = cluster.name;
  const cfg = cluster.config;
  const retries = cfg.retries;
  const maxAttempts = 1 + (retries?.attempts ?? 0);
  const deadline = Date.now() + (routeTimeoutMs ?? cfg.timeoutMs);
  const idempotent = IDEMPOTENT.has(ex.method);
  const hasBody = requestHasBody(ex.req);
  // Instances already tried, kept only when a retry can follow.
  const tried = maxAttempts > 1 ? new Set<Instance>() : undefined;
  const exclude: ReadonlySet<Instance> = tried ?? NO_INSTANCES;
  cluster.activeRequests++;
  try {
    for (let attempt = 1; ; attempt++) {
      ex.attempts = attempt;
      let inst = deps.pickInstance(backend, ex, exclude);
      // Retries go to another instance when one exists, else the same one again.
      if (!inst && exclude.size > 0) inst = deps.pickInstance(backend, ex, NO_INSTANCES);
      if (!inst) {
        sendError(ex, 'UH', `no healthy upstream for ${cluster.name}`);
        return;
      }
      let permit = cluster.breakers?.tryPass(inst);
      if (cluster.breakers?.perInstance && !permit) {
        const other = passAnotherInstance(cluster.breakers, inst, exclude, (skip) => deps.pickInstance(backend, ex, skip));
        if (other) ({ inst, permit } = other);
      }
      if (cluster.breakers && !permit) {
        deps.metrics.rejections.labels('UO', ex.routeName, 'circuit_breaker').inc();
        await answerOpen(ex, cluster, routeTimeoutMs, signal, deps, upgrade);
        return;
      }
      tried?.add(inst);
      ex.upstreamAddr = inst.id;
      const adapter = deps.adapterFor(cluster, inst);
      if (!adapter || (upgrade && !adapter.upgrade)) {
        permit?.done({ committed: false, reachedUpstream: false, failure: 'protocol' }, 0);
        sendError(ex, 'UP', adapter ? 'upstream protocol does not support upgrade' : `no upstream adapter for protocol ${cfg.protocol ?? inst.metadata.protocol}`);
        return;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        permit?.done({ committed: false, reachedUpstream: false, failure: 'timeout' }, 0);
        sendError(ex, 'UT');
        return;
      }
      const perTry = retries?.perTryTimeoutMs !== undefined ? Math.min(retries.perTryTimeoutMs, remaining) : remaining;
      const canRetryMore = retries !== undefined && attempt < maxAttempts && budgetAllows(cluster, retries);
      const isRetry = attempt > 1;
      if (isRetry) cluster.activeRetries++;
      inst.active++;
      const started = performance.now();
      // A retryable status is held back (not passed on) while another try can follow.
      const hold = canRetryMore && !hasBody && (idempotent || retries.retryNonIdempotent) ? (s: number) => statusRetryable(retries, s) && deadline - Date.now() > 0 : undefined;
      const sink = new ResponseWriter(ex, hold, upgrade?.socket);
      const span = ex.trace?.startAttempt(ex, inst.id, attempt);
      if (span !== undefined) ex.traceparent = span.traceparent;
      let outcome: AttemptOutcome;
      try {
        const opts = { timeoutMs: perTry, signal, sink };
        outcome = (upgrade ? await adapter.upgrade!(ex, upgrade.socket, upgrade.head, inst, cluster, opts) : await adapter.attempt(ex, inst, cluster, opts)) as AttemptOutcome;
        outcome.committed = sink.committed;
      } finally {
        inst.active--;
        if (isRetry) cluster.activeRetries--;
      }
      span?.end(outcome);
      const rt = outcome.headersMs ?? performance.now() - started;
      // A committed response's time was set by the sink at its head; others are timed here.
      if (!outcome.committed) ex.upstreamMs = rt;
      permit?.done(outcome, rt);
      if (outcome.failure !== 'aborted') cluster.outlier?.report(inst, outcome);
      const tlsFailure = outcome.failure === 'connect-failure' ? tlsFailureOf(outcome.error) : undefined;
      if (tlsFailure !== undefined) {
        ex.upstreamError = tlsFailure.detail;
        deps.metrics.upstreamTlsFailures.labels(cluster.name, tlsFailure.reason).inc();
        deps.onTlsFailure?.(cluster.name, inst.id, tlsFailure.detail);
      }
      deps.metrics.countUpstream(cluster.name, inst.id, outcome.status || 0, outcome.failure ?? (outcome.committed ? 'ok' : 'retried'), rt / 1000);

      if (outcome.committed) {
        if (outcome.failure && outcome.failure !== 'aborted') ex.flag ||= FAILURE_FLAG[outcome.failure];
        if (outcome.failure === 'aborted') ex.flag = 'DC';
        return;
      }
      if (outcome.failure === 'aborted' || signal.aborted) {
        ex.flag = 'DC';
        ex.status = 499;
        return;
      }
      // Not committed: a failure, or a held retryable status.
      const retryable =
        retries !== undefined &&
        attempt < maxAttempts &&
        Date.now() < deadline &&
        (outcome.failure ? failureRetryable(retries, outcome.failure) : outcome.status !== undefined && statusRetryable(retries, outcome.status)) &&
        // A request that reached the upstream is retried only when it is idempotent (or configured)
        // and its body was not consumed.
        (!outcome.reachedUpstream || ((idempotent || retries.retryNonIdempotent) && !hasBody)) &&
        // The budget guards upstreams against retry storms; a try that never reached
        // the upstream (no connection, a refused stream, a reset before any byte of
        // the request was written) added no load there, so its retry is never held back.
        (outcome.status !== undefined || !outcome.reachedUpstream || budgetAllows(cluster, retries));
      if (retryable) {
        deps.metrics.retries.labels(cluster.name, outcome.failure ?? String(outcome.status)).inc();
        // Never sleep past the route deadline: the next try would have no time left.
        await sleep(Math.min(backoffMs(retries, attempt), Math.max(0, deadline - Date.now())), signal);
        if (signal.aborted) {
          ex.flag = 'DC';
          ex.status = 499;
          return;
        }
        continue;
      }
      if (outcome.failure) {
        const flag = FAILURE_FLAG[outcome.failure];
        sendError(ex, flag, `${flagText(outcome.failure)}${tlsFailure !== undefined ? `: ${tlsFailure.detail}` : ''} (${inst.id})`);
      } else {
        // A held status that can no longer be retried: the retry limit was hit.
        sendError(ex, 'URX', `upstream answered ${outcome.status} and retries are exhausted`, outcome.status);
      }
      return;
    }
  } finally {
    cluster.activeRequests--;
  }
}

function flagText(f: FailureKind): string {
  switch (f) {
    case 'connect-failure':
      return 'upstream connect failure';
    case 'timeout':
      return 'upstream request timeout';
    case 'reset':
    case 'refused-stream':
      return 'upstream connection terminated';
    case 'protocol':
      return 'upstream protocol error';
    case 'aborted':
      return 'downstream closed';
  }
}

async function answerOpen(ex: Exchange, cluster: Cluster, routeTimeoutMs: number | undefined, signal: Cancellation, deps: ForwardDeps, upgrade: UpgradeRequest | undefined): Promise<void> {
  const fb = cluster.config.circuitBreakers.find((b) => b.fallback)?.fallback;
  if (fb && 'response' in fb) {
    ex.flag = 'UO';
    sendDirect(ex, fb.response.status, fb.response.body, { 'x-meshgate-flag': 'UO', ...fb.response.headers });
    return;
  }
  if (fb && 'service' in fb && fb.service !== cluster.name) {
    const other = deps.cluster(fb.service);
    ex.vars.fallbackFrom = cluster.name;
    await forward(ex, { service: other.name, weight: 1, subset: undefined, subsetFallback: 'all', cluster: other }, routeTimeoutMs, signal, deps, upgrade);
    if (!ex.flag) ex.flag = 'UO';
    return;
  }
  sendError(ex, 'UO', `circuit breaker open for ${cluster.name}`);
}
