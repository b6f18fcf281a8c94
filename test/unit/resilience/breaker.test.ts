// Circuit breakers: Sentinel DegradeRule thresholds, the half-open probe,
// probe timeout, windows, scopes, error classification and reloads.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { Cluster } from '../../../src/balancing/cluster.js';
import { Instance } from '../../../src/balancing/instance.js';
import { ServiceSchema, type CircuitBreakerConfig } from '../../../src/config/schema.js';
import { Metrics } from '../../../src/observability/metrics.js';
import { ServiceBreakers } from '../../../src/resilience/breaker-set.js';
import { applyCircuitBreakers, checkCircuitBreakers } from '../../../src/resilience/circuit-policy.js';
import type { BreakerPermit } from '../../../src/resilience/types.js';
import type { AttemptOutcome } from '../../../src/exchange/outcome.js';

const log = pino({ level: 'silent' });
const OK: AttemptOutcome = { status: 200, committed: true, reachedUpstream: true };
const E500: AttemptOutcome = { status: 500, committed: true, reachedUpstream: true };
const E404: AttemptOutcome = { status: 404, committed: true, reachedUpstream: true };
const CONNECT: AttemptOutcome = { failure: 'connect-failure', committed: false, reachedUpstream: false };
const ABORTED: AttemptOutcome = { failure: 'aborted', committed: false, reachedUpstream: true };

function rule(r: Partial<CircuitBreakerConfig> & Pick<CircuitBreakerConfig, 'strategy' | 'threshold'>): CircuitBreakerConfig {
  return ServiceSchema.parse({ circuitBreakers: [r] }).circuitBreakers[0]!;
}

class FakeClock {
  // Start in the middle of a stat window so windows do not roll during a test by accident.
  t = 1_700_000_000_000;
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

function setup(rules: CircuitBreakerConfig[], metrics?: Metrics) {
  const clock = new FakeClock();
  const set = new ServiceBreakers('orders', rules, { log, clock: clock.now, metrics }, 15_000);
  const pass = (inst?: Instance): BreakerPermit => {
    const p = set.tryPass(inst);
    assert.ok(p, 'expected the breaker to admit the request');
    return p;
  };
  const state = (i = 0): string => (set.describe().breakers as Array<{ state: string }>)[i]!.state;
  return { clock, set, pass, state };
}

const inst = (port: number): Instance => new Instance({ host: '127.0.0.1', port, weight: 1, healthy: true, metadata: {} });

describe('circuit breaker thresholds (Sentinel DegradeRule)', () => {
  it('error_ratio trips only when err/total is strictly greater than the threshold', () => {
    const { pass, set, state } = setup([rule({ strategy: 'error_ratio', threshold: 0.5, minRequests: 4 })]);
    pass().done(OK, 1);
    pass().done(OK, 1);
    pass().done(E500, 1);
    pass().done(E500, 1); // 2/4 = 0.5: equal, not greater
    assert.equal(state(), 'closed');
    pass().done(E500, 1); // 3/5 = 0.6 > 0.5
    assert.equal(state(), 'open');
    assert.equal(set.tryPass(undefined), undefined);
  });

  it('judges nothing while total < minRequests', () => {
    const { pass, state } = setup([rule({ strategy: 'error_ratio', threshold: 0.1, minRequests: 5 })]);
    for (let i = 0; i < 4; i++) pass().done(CONNECT, 1);
    assert.equal(state(), 'closed', '4 of 4 failed, but below minRequests');
    pass().done(OK, 1); // 4/5 = 0.8
    assert.equal(state(), 'open');
  });

  it('error_count trips when errors > threshold', () => {
    const { pass, state } = setup([rule({ strategy: 'error_count', threshold: 3, minRequests: 1 })]);
    for (let i = 0; i < 3; i++) pass().done(E500, 1);
    assert.equal(state(), 'closed', '3 errors = threshold');
    pass().done(E500, 1);
    assert.equal(state(), 'open');
  });

  it('slow_ratio: RT > maxRtMs is slow (RT = maxRtMs is not), ratio strictly greater', () => {
    const { pass, state } = setup([rule({ strategy: 'slow_ratio', maxRtMs: 100, threshold: 0.5, minRequests: 4 })]);
    pass().done(OK, 100); // not slow
    pass().done(OK, 100);
    pass().done(OK, 101);
    pass().done(OK, 250); // 2/4 = 0.5
    assert.equal(state(), 'closed');
    pass().done(OK, 101); // 3/5
    assert.equal(state(), 'open');
  });

  it('slow_ratio with threshold 1.0 trips at equality (every call slow), not before', () => {
    const a = setup([rule({ strategy: 'slow_ratio', maxRtMs: 10, threshold: 1, minRequests: 3 })]);
    a.pass().done(OK, 5);
    a.pass().done(OK, 50);
    a.pass().done(OK, 50);
    a.pass().done(OK, 50);
    assert.equal(a.state(), 'closed', '3/4 slow');
    const b = setup([rule({ strategy: 'slow_ratio', maxRtMs: 10, threshold: 1, minRequests: 3 })]);
    for (let i = 0; i < 3; i++) b.pass().done(OK, 11);
    assert.equal(b.state(), 'open', '3/3 slow = 1.0');
  });

  it('counts in one window of statIntervalMs: the previous window does not count', () => {
    const { pass, state, clock } = setup([rule({ strategy: 'error_count', threshold: 2, minRequests: 1, statIntervalMs: 1000 })]);
    clock.t = 1_700_000_000_000; // a window boundary
    pass().done(E500, 1);
    pass().done(E500, 1);
    clock.advance(1000); // next window
    pass().done(E500, 1);
    pass().done(E500, 1);
    assert.equal(state(), 'closed', '2 errors in each window, never > 2 in one');
    pass().done(E500, 1);
    assert.equal(state(), 'open');
  });
});

describe('half-open probe', () => {
  const tripped = (over: Partial<CircuitBreakerConfig> = {}) => {
    const s = setup([rule({ strategy: 'error_count', threshold: 0, minRequests: 1, openMs: 5000, probeTimeoutMs: 2000, ...over })]);
    for (let i = 0; i <= (over.threshold ?? 0); i++) s.pass().done(E500, 1);
    assert.equal(s.state(), 'open');
    return s;
  };

  it('stays open for openMs, then admits exactly one probe', () => {
    const { set, clock, state } = tripped();
    clock.advance(4999);
    assert.equal(set.tryPass(undefined), undefined, 'still open');
    clock.advance(1);
    const probe = set.tryPass(undefined);
    assert.ok(probe, 'the first request after openMs is the probe');
    assert.equal(state(), 'half_open');
    for (let i = 0; i < 5; i++) assert.equal(set.tryPass(undefined), undefined, 'everything else is rejected while the probe runs');
  });

  it('a good probe closes the breaker and resets its stats', () => {
    const { set, clock, state, pass } = tripped({ threshold: 1 });
    clock.advance(5000);
    const probe = set.tryPass(undefined)!;
    probe.done(OK, 1);
    assert.equal(state(), 'closed');
    const w = (set.describe().breakers as Array<{ window: { total: number } }>)[0]!.window;
    assert.equal(w.total, 0, 'stats reset on close');
    pass().done(E500, 1);
    assert.equal(state(), 'closed', 'one error after the reset does not trip a threshold of 1');
  });

  it('a bad probe reopens the breaker for another openMs', () => {
    const { set, clock, state } = tripped();
    clock.advance(5000);
    set.tryPass(undefined)!.done(CONNECT, 1);
    assert.equal(state(), 'open');
    clock.advance(4999);
    assert.equal(set.tryPass(undefined), undefined);
    clock.advance(1);
    assert.ok(set.tryPass(undefined), 'next probe after openMs');
  });

  it('a probe that never completes is timed out and counted as failed', () => {
    const { set, clock, state } = tripped();
    clock.advance(5000);
    const stuck = set.tryPass(undefined)!;
    clock.advance(1999);
    assert.equal(set.tryPass(undefined), undefined, 'probe still within its timeout');
    clock.advance(1);
    assert.equal(set.tryPass(undefined), undefined, 'timed out: open again');
    assert.equal(state(), 'open');
    clock.advance(5000);
    const next = set.tryPass(undefined);
    assert.ok(next, 'a new probe openMs after the timeout');
    stuck.done(OK, 1); // the stale probe answers late: it must not decide
    assert.equal(state(), 'half_open');
    next.done(OK, 1);
    assert.equal(state(), 'closed');
  });

  it('a probe whose client went away does not decide; the next request probes', () => {
    const { set, clock, state } = tripped();
    clock.advance(5000);
    set.tryPass(undefined)!.done(ABORTED, 1);
    assert.equal(state(), 'open');
    assert.ok(set.tryPass(undefined), 'retry is due at once');
  });

  it('in half-open, only the probe decides (a straggler from before the trip does not)', () => {
    const s = setup([rule({ strategy: 'error_count', threshold: 0, minRequests: 1, openMs: 1000 })]);
    const straggler = s.pass();
    s.pass().done(E500, 1);
    s.clock.advance(1000);
    const probe = s.set.tryPass(undefined)!;
    straggler.done(OK, 1);
    assert.equal(s.state(), 'half_open');
    probe.done(E500, 1);
    assert.equal(s.state(), 'open');
  });
});

describe('error classification, scopes and several rules', () => {
  it('errors: [404] counts only 404s (5xx do not count)', () => {
    const { pass, state } = setup([rule({ strategy: 'error_count', threshold: 1, minRequests: 1, errors: [404] })]);
    for (let i = 0; i < 5; i++) pass().done(E500, 1);
    assert.equal(state(), 'closed');
    pass().done(E404, 1);
    pass().done(E404, 1);
    assert.equal(state(), 'open');
  });

  it('default errors: connect failure, timeout, reset and 5xx, not 4xx; aborted requests are not counted', () => {
    const { pass, set, state } = setup([rule({ strategy: 'error_count', threshold: 3, minRequests: 1 })]);
    for (let i = 0; i < 10; i++) pass().done(E404, 1);
    for (let i = 0; i < 10; i++) pass().done(ABORTED, 1);
    assert.equal(state(), 'closed');
    assert.equal((set.describe().breakers as Array<{ window: { total: number } }>)[0]!.window.total, 10, 'aborted attempts are not in the window');
    pass().done(CONNECT, 1);
    pass().done({ failure: 'timeout', committed: false, reachedUpstream: true }, 1);
    pass().done({ failure: 'reset', committed: false, reachedUpstream: true }, 1);
    pass().done({ status: 503, committed: false, reachedUpstream: true }, 1);
    assert.equal(state(), 'open');
  });

  it('scope instance: one instance tripping leaves the others alone', () => {
    const { set } = setup([rule({ strategy: 'error_count', threshold: 0, minRequests: 1, scope: 'instance' })]);
    const a = inst(1001);
    const b = inst(1002);
    set.tryPass(a)!.done(E500, 1);
    assert.equal(set.tryPass(a), undefined, 'instance a is open');
    assert.ok(set.tryPass(b), 'instance b still passes');
    const d = set.describe() as { instances: Record<string, Array<{ state: string }>> };
    assert.equal(d.instances['127.0.0.1:1001']![0]!.state, 'open');
    assert.equal(d.instances['127.0.0.1:1002']![0]!.state, 'closed');
  });

  it('every rule must allow the request; a probe granted by one rule is given back when another rejects', () => {
    const s = setup([
      rule({ strategy: 'error_count', threshold: 0, minRequests: 1, openMs: 1000 }),
      rule({ strategy: 'error_count', threshold: 0, minRequests: 1, openMs: 5000, errors: [404] }),
    ]);
    s.pass().done(E500, 1); // opens rule 0 only
    assert.equal(s.state(0), 'open');
    assert.equal(s.state(1), 'closed');
    s.clock.advance(1000);
    s.pass().done(E404, 1); // the probe of rule 0 succeeds (404 is fine for it), rule 1 opens
    assert.equal(s.state(0), 'closed');
    assert.equal(s.state(1), 'open');
    s.clock.advance(1000);
    assert.equal(s.set.tryPass(undefined), undefined, 'rule 1 still open');
  });

  it('logs every opening (warn) and closing (info) with the value that tripped it', () => {
    const lines: Array<Record<string, unknown>> = [];
    const capture = pino({ level: 'info' }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const clock = new FakeClock();
    const set = new ServiceBreakers('orders', [rule({ strategy: 'error_ratio', threshold: 0.5, minRequests: 2, openMs: 1000 })], { log: capture, clock: clock.now }, 15_000);
    set.tryPass(undefined)!.done(E500, 1);
    set.tryPass(undefined)!.done(E500, 1);
    clock.advance(1000);
    set.tryPass(undefined)!.done(OK, 1);
    const opened = lines.find((l) => l.msg === 'circuit breaker opened');
    assert.ok(opened, 'opening logged');
    assert.equal(opened.level, 40);
    assert.deepEqual([opened.service, opened.strategy, opened.from, opened.to, opened.value, opened.threshold], ['orders', 'error_ratio', 'closed', 'open', 1, 0.5]);
    const closed = lines.find((l) => l.msg === 'circuit breaker closed');
    assert.ok(closed, 'closing logged');
    assert.deepEqual([closed.from, closed.reason], ['half_open', 'probe_ok']);
  });

  it('publishes meshgate_circuit_state for the service scope', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const { pass } = setup([rule({ strategy: 'error_count', threshold: 0, minRequests: 1 })], metrics);
    const text0 = await metrics.registry.getSingleMetricAsString('meshgate_circuit_state');
    assert.match(text0, /meshgate_circuit_state\{service="orders",scope="service"\} 0/);
    pass().done(E500, 1);
    const text1 = await metrics.registry.getSingleMetricAsString('meshgate_circuit_state');
    assert.match(text1, /meshgate_circuit_state\{service="orders",scope="service"\} 1/);
  });
});

describe('policies: validation and reloads', () => {
  const svc = (cbs: unknown[], extra: Record<string, unknown> = {}) => ServiceSchema.parse({ circuitBreakers: cbs, ...extra });

  it('rejects rules that cannot work, naming the key', () => {
    assert.throws(() => checkCircuitBreakers('a', svc([{ strategy: 'slow_ratio', threshold: 0.5 }]), {}), /services\.a\.circuitBreakers\[0\]\.maxRtMs/);
    assert.throws(() => checkCircuitBreakers('a', svc([{ strategy: 'error_ratio', threshold: 2 }]), {}), /\[0\]\.threshold/);
    assert.throws(() => checkCircuitBreakers('a', svc([{ strategy: 'error_count', threshold: 1, fallback: { service: 'a' } }]), {}), /fallback\.service/);
    assert.doesNotThrow(() => checkCircuitBreakers('a', svc([{ strategy: 'slow_ratio', maxRtMs: 200, threshold: 1 }]), {}));
  });

  it('a reload keeps breakers whose rules did not change, and resets only changed ones', () => {
    const deps = { log, metrics: new Metrics({ processMetrics: false }) };
    const r0 = { strategy: 'error_count', threshold: 0, minRequests: 1, openMs: 60_000 };
    const a = new Cluster('a', svc([r0]));
    const b = new Cluster('b', svc([r0]));
    applyCircuitBreakers(a, deps);
    applyCircuitBreakers(b, deps);
    a.breakers!.tryPass(undefined)!.done(E500, 1);
    b.breakers!.tryPass(undefined)!.done(E500, 1);
    assert.equal(a.breakers!.tryPass(undefined), undefined);
    const aSet = a.breakers;

    // Reload: service a unchanged, service b's rule changed, plus a timeout change elsewhere in a.
    a.setConfig(svc([r0]));
    b.setConfig(svc([{ ...r0, threshold: 5 }]));
    applyCircuitBreakers(a, deps);
    applyCircuitBreakers(b, deps);
    assert.equal(a.breakers, aSet, 'unchanged rules: same breaker set');
    assert.equal(a.breakers!.tryPass(undefined), undefined, 'a is still open');
    assert.ok(b.breakers!.tryPass(undefined), 'b changed its rule: fresh breaker');

    // Adding a rule to a keeps the state of the existing one (matched by content).
    a.setConfig(svc([{ strategy: 'error_ratio', threshold: 0.5 }, r0]));
    applyCircuitBreakers(a, deps);
    assert.notEqual(a.breakers, aSet);
    assert.equal(a.breakers!.tryPass(undefined), undefined, 'the unchanged rule is still open');
    const d = a.breakers!.describe() as { breakers: Array<{ rule: number; state: string }> };
    assert.deepEqual(
      d.breakers.map((x) => [x.rule, x.state]),
      [
        [0, 'closed'],
        [1, 'open'],
      ],
    );

    // Removing every rule drops the breakers.
    a.setConfig(svc([]));
    applyCircuitBreakers(a, deps);
    assert.equal(a.breakers, undefined);
  });
});
