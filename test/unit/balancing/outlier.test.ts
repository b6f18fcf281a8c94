import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutlierDetection, applyOutlierDetection } from '../../../src/balancing/outlier.js';
import { OutlierDetectionSchema, type OutlierDetectionConfig } from '../../../src/config/schema.js';
import { Metrics } from '../../../src/observability/metrics.js';
import type { AttemptOutcome } from '../../../src/exchange/outcome.js';
import { cluster, ep } from '../routing/fixtures.js';

const ok: AttemptOutcome = { status: 200, committed: true, reachedUpstream: true };
const s500: AttemptOutcome = { status: 500, committed: true, reachedUpstream: true };
const s503: AttemptOutcome = { status: 503, committed: true, reachedUpstream: true };
const connectFail: AttemptOutcome = { failure: 'connect-failure', committed: false, reachedUpstream: false };
const timeout: AttemptOutcome = { failure: 'timeout', committed: false, reachedUpstream: true };
const aborted: AttemptOutcome = { failure: 'aborted', committed: false, reachedUpstream: true };

function setup(cfg: Partial<OutlierDetectionConfig>, n = 4) {
  const c = cluster(
    'svc',
    Array.from({ length: n }, (_, i) => ep(`10.0.0.${i + 1}:80`)),
  );
  const metrics = new Metrics({ processMetrics: false });
  const od = new OutlierDetection(c, OutlierDetectionSchema.parse({ maxEjectionPercent: 100, ...cfg }), { metrics });
  return { c, od, metrics, a: c.instances[0]!, b: c.instances[1]! };
}

async function until(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(5);
  }
}

async function gauge(m: Metrics, instance: string): Promise<number | undefined> {
  const g = await m.ejected.get();
  return g.values.find((v) => v.labels.endpoint === instance)?.value;
}

describe('outlier detection', () => {
  it('ejects after consecutive5xx in a row; a success in between resets the count', async () => {
    const { od, a, metrics } = setup({ consecutive5xx: 3, baseEjectionMs: 60_000 });
    od.report(a, s500);
    od.report(a, s500);
    od.report(a, ok);
    od.report(a, s500);
    od.report(a, s500);
    assert.equal(a.available(Date.now()), true);
    od.report(a, s500);
    assert.equal(a.available(Date.now()), false);
    assert.equal(a.toJSON().ejected, true);
    assert.equal(typeof a.toJSON().ejectedUntil, 'string');
    assert.equal(await gauge(metrics, a.id), 1);
    od.close();
  });

  it('4xx and client aborts do not count', () => {
    const { od, a } = setup({ consecutive5xx: 2 });
    for (let i = 0; i < 10; i++) {
      od.report(a, { status: 404, committed: true, reachedUpstream: true });
      od.report(a, aborted);
    }
    assert.equal(a.available(Date.now()), true);
    od.close();
  });

  it('connect failures and timeouts count as 5xx', () => {
    const { od, a, b } = setup({ consecutive5xx: 2 });
    od.report(a, connectFail);
    od.report(a, timeout);
    assert.equal(a.available(Date.now()), false);
    od.report(b, timeout);
    od.report(b, s503);
    assert.equal(b.available(Date.now()), false);
    od.close();
  });

  it('consecutiveGatewayFailure counts 502/503/504 and local failures, a 500 breaks the run', () => {
    const { od, a } = setup({ consecutive5xx: 100, consecutiveGatewayFailure: 2 });
    od.report(a, s503);
    od.report(a, s500);
    od.report(a, s503);
    assert.equal(a.available(Date.now()), true);
    od.report(a, connectFail);
    assert.equal(a.available(Date.now()), false);
    od.close();
  });

  it('consecutiveConnectFailure counts connect failures only', () => {
    const { od, a } = setup({ consecutive5xx: 100, consecutiveConnectFailure: 2 });
    od.report(a, connectFail);
    od.report(a, timeout);
    od.report(a, connectFail);
    assert.equal(a.available(Date.now()), true);
    od.report(a, connectFail);
    assert.equal(a.available(Date.now()), false);
    od.close();
  });

  it('returns after baseEjectionMs, and the next ejection lasts base x 2', async () => {
    const { od, a, metrics } = setup({ consecutive5xx: 1, baseEjectionMs: 80, maxEjectionMs: 10_000, intervalMs: 60_000 });
    let t0 = Date.now();
    od.report(a, s500);
    assert.equal(a.available(Date.now()), false);
    await until(() => a.available(Date.now()));
    const first = Date.now() - t0;
    assert.ok(first >= 75, `returned after ${first} ms`);
    await until(async () => (await gauge(metrics, a.id)) === 0);
    t0 = Date.now();
    od.report(a, s500);
    assert.equal(a.ejections, 2);
    assert.ok(a.ejectedUntil - t0 >= 160 - 5 && a.ejectedUntil - t0 <= 160 + 50, `second ejection ${a.ejectedUntil - t0} ms`);
    await until(() => a.available(Date.now()));
    assert.ok(Date.now() - t0 >= 155);
    od.close();
  });

  it('ejection time is capped at maxEjectionMs', () => {
    const { od, a } = setup({ consecutive5xx: 1, baseEjectionMs: 100, maxEjectionMs: 250 });
    a.ejections = 9;
    const t0 = Date.now();
    od.report(a, s500);
    assert.ok(a.ejectedUntil - t0 <= 260, `ejected for ${a.ejectedUntil - t0} ms`);
    od.close();
  });

  it('the multiplier decays by one per interval while the instance is back', async () => {
    const { od, a } = setup({ consecutive5xx: 1, intervalMs: 20 });
    a.ejections = 3;
    await until(() => a.ejections === 0);
    od.close();
  });

  it('maxEjectionPercent bounds the ejected share', () => {
    const { od, c } = setup({ consecutive5xx: 1, maxEjectionPercent: 50, baseEjectionMs: 60_000 }, 4);
    for (const i of c.instances) od.report(i, s500);
    assert.equal(c.instances.filter((i) => !i.available(Date.now())).length, 2);
    od.close();
  });

  it('at least one instance is ejectable even when the percent rounds to zero', () => {
    const { od, c } = setup({ consecutive5xx: 1, maxEjectionPercent: 10, baseEjectionMs: 60_000 }, 3);
    for (const i of c.instances) od.report(i, s500);
    assert.equal(c.instances.filter((i) => !i.available(Date.now())).length, 1);
    od.close();
  });

  it('removing the policy returns ejected instances; changing it keeps ejections running', () => {
    const c = cluster('svc2', [ep('10.0.0.1:80'), ep('10.0.0.2:80')]);
    const cfg = OutlierDetectionSchema.parse({ consecutive5xx: 1, maxEjectionPercent: 100, baseEjectionMs: 60_000 });
    c.setConfig({ ...c.config, outlierDetection: cfg });
    applyOutlierDetection(c, {});
    const first = c.outlier;
    c.outlier!.report(c.instances[0]!, s500);
    assert.equal(c.instances[0]!.available(Date.now()), false);
    applyOutlierDetection(c, {});
    assert.equal(c.outlier, first, 'same config keeps the detector');
    c.setConfig({ ...c.config, outlierDetection: { ...cfg, consecutive5xx: 7 } });
    applyOutlierDetection(c, {});
    assert.notEqual(c.outlier, first);
    assert.equal(c.instances[0]!.available(Date.now()), false, 'ejection survives a policy change');
    c.setConfig({ ...c.config, outlierDetection: undefined });
    applyOutlierDetection(c, {});
    assert.equal(c.outlier, undefined);
    assert.equal(c.instances[0]!.available(Date.now()), true);
  });
});
