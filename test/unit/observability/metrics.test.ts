// Request metrics as a scrape shows them: counted per request in plain numbers,
// handed to prom-client when /metrics is read (one process or a worker cluster).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { Metrics } from '../../../src/observability/metrics.js';

const BOUNDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const DURATION = 'meshgate_request_duration_seconds';

const metrics = (): Metrics => new Metrics({ processMetrics: false });

/** The value of one series in Prometheus text, or undefined when the series is absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const requests = (route: string, service: string, code: string, flag: string): string =>
  `meshgate_requests_total{route="${route}",service="${service}",code="${code}",flag="${flag}"}`;
const bucket = (le: number | string, route: string, service: string): string => `${DURATION}_bucket{le="${le}",route="${route}",service="${service}"}`;
const upstream = (service: string, instance: string, code: string, result: string): string =>
  `meshgate_upstream_requests_total{service="${service}",endpoint="${instance}",code="${code}",result="${result}"}`;

/** Asserts the value each series shows in `text`. */
function assertSamples(text: string, expected: Array<[series: string, value: number]>): void {
  for (const [series, value] of expected) assert.equal(sample(text, series), value, series);
}

/** The cumulative bucket counts a scrape shows for a label set, `+Inf` last. */
function buckets(text: string, route: string, service: string): Array<number | undefined> {
  return [...BOUNDS, '+Inf'].map((le) => sample(text, bucket(le, route, service)));
}

describe('request metrics', () => {
  it('count requests per label set, with the code as a number and 0 shown as "0"', async () => {
    const m = metrics();
    for (let i = 0; i < 3; i++) m.observeRequest('main', 'a.static', 200, '', 0.002);
    m.observeRequest('main', 'a.static', 503, 'UF', 0.002);
    m.observeRequest('main', 'b.static', 200, '', 0.002);
    m.observeRequest('other', 'a.static', 0, 'DC', 0.002);
    m.observeRequest('other', 'a.static', 0, 'DC', 0.002);
    const text = await m.registry.metrics();
    assertSamples(text, [
      [requests('main', 'a.static', '200', ''), 3],
      [requests('main', 'a.static', '503', 'UF'), 1],
      [requests('main', 'b.static', '200', ''), 1],
      [requests('other', 'a.static', '0', 'DC'), 2],
    ]);
    assert.equal(text.match(/^meshgate_requests_total\{/gm)?.length, 4);
    assert.match(text, /^# HELP meshgate_requests_total Downstream requests by route, service, status code and response flag$/m);
    assert.match(text, /^# TYPE meshgate_requests_total counter$/m);
    assert.match(text, /^# HELP meshgate_request_duration_seconds Downstream request duration until the response ended$/m);
    assert.match(text, /^# TYPE meshgate_request_duration_seconds histogram$/m);
  });

  it('histogram: a value on a bound counts in that bucket, values past the last bound only in +Inf', async () => {
    const m = metrics();
    const values = [0.0005, 0.001, 0.003, 30, 31, 1000, 0];
    for (const v of values) m.observeRequest('r', 's', 200, '', v);
    const text = await m.registry.metrics();
    //                                   0.0005 .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 30 +Inf
    assert.deepEqual(buckets(text, 'r', 's'), [2, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 5, 7]);
    assert.equal(sample(text, `${DURATION}_sum{route="r",service="s"}`), values.reduce((a, b) => a + b, 0));
    assert.equal(sample(text, `${DURATION}_count{route="r",service="s"}`), 7);
    // The bucket lines in bound order, then +Inf, _sum and _count.
    const lines = text.split('\n').filter((l) => l.startsWith(DURATION));
    assert.deepEqual(
      lines.map((l) => l.slice(0, l.indexOf(' '))),
      [...[...BOUNDS, '+Inf'].map((le) => bucket(le, 'r', 's')), `${DURATION}_sum{route="r",service="s"}`, `${DURATION}_count{route="r",service="s"}`],
    );
  });

  it('upstream attempts count per service, endpoint, code and result; no status is code "0"', async () => {
    const m = metrics();
    m.countUpstream('a.static', '10.0.0.1:80', 200, 'ok', 0.002);
    m.countUpstream('a.static', '10.0.0.1:80', 200, 'ok', 0.002);
    m.countUpstream('a.static', '10.0.0.1:80', 503, 'retried', 0.002);
    m.countUpstream('a.static', '10.0.0.2:80', 0, 'connect-failure', 0.002);
    const text = await m.registry.metrics();
    assertSamples(text, [
      [upstream('a.static', '10.0.0.1:80', '200', 'ok'), 2],
      [upstream('a.static', '10.0.0.1:80', '503', 'retried'), 1],
      [upstream('a.static', '10.0.0.2:80', '0', 'connect-failure'), 1],
    ]);
    assert.equal(text.match(/^meshgate_upstream_requests_total\{/gm)?.length, 3);
    // The attempt times: by service and result, not by endpoint (bounded cardinality).
    assert.equal(sample(text, 'meshgate_upstream_duration_seconds_count{service="a.static",result="ok"}'), 2);
    assert.equal(sample(text, 'meshgate_upstream_duration_seconds_bucket{le="0.001",service="a.static",result="ok"}'), 0);
    assert.equal(sample(text, 'meshgate_upstream_duration_seconds_bucket{le="0.0025",service="a.static",result="ok"}'), 2);
    assert.equal(sample(text, 'meshgate_upstream_duration_seconds_count{service="a.static",result="connect-failure"}'), 1);
  });

  it('downstream bytes add up per route and direction, across scrapes', async () => {
    const m = metrics();
    m.countBytes('r', 100, 2048);
    m.countBytes('r', 0, 10);
    m.countBytes('', 5, 0);
    let text = await m.registry.metrics();
    assert.equal(sample(text, 'meshgate_downstream_bytes_total{route="r",direction="in"}'), 100);
    assert.equal(sample(text, 'meshgate_downstream_bytes_total{route="r",direction="out"}'), 2058);
    assert.equal(sample(text, 'meshgate_downstream_bytes_total{route="",direction="in"}'), 5);
    m.countBytes('r', 1, 1);
    text = await m.registry.metrics();
    assert.equal(sample(text, 'meshgate_downstream_bytes_total{route="r",direction="out"}'), 2059);
  });

  it('values accumulate across scrapes: a scrape does not reset them', async () => {
    const m = metrics();
    m.observeRequest('r', 's', 200, '', 0.002);
    m.countUpstream('s', 'i', 200, 'ok', 0.002);
    const first = await m.registry.metrics();
    assert.equal(sample(first, requests('r', 's', '200', '')), 1);
    assert.equal(sample(first, bucket(0.0025, 'r', 's')), 1);

    m.observeRequest('r', 's', 200, '', 0.002);
    m.observeRequest('r', 's', 200, '', 2);
    m.countUpstream('s', 'i', 200, 'ok', 0.002);
    const second = await m.registry.metrics();
    assert.equal(sample(second, requests('r', 's', '200', '')), 3);
    assert.equal(sample(second, upstream('s', 'i', '200', 'ok')), 2);
    assert.deepEqual(buckets(second, 'r', 's'), [0, 0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
    assert.equal(sample(second, `${DURATION}_count{route="r",service="s"}`), 3);

    const idle = await m.registry.metrics();
    assert.equal(idle, second, 'a scrape with nothing new shows the same values');
  });

  it('past 10,000 label sets, new ones are still counted (directly by prom-client)', async () => {
    const m = metrics();
    // 10,000 request label sets, then more: the extra ones are past the cap.
    for (let i = 0; i < 10_003; i++) m.observeRequest('r', 's', 200, `f${i}`, 0.002);
    // 10,000 histogram label sets (route, service), then more.
    for (let i = 0; i < 10_002; i++) m.observeRequest(`r${i}`, 's', 200, '', 0.002);
    m.observeRequest('r', 's', 200, 'f10002', 0.002);
    m.observeRequest('r10001', 's', 200, '', 0.02);
    m.countUpstream('s', 'i', 200, 'ok', 0.002);
    const first = await m.registry.metrics();
    m.observeRequest('r', 's', 200, 'f10002', 0.002);
    m.observeRequest('r10001', 's', 200, '', 40);
    const text = await m.registry.metrics();
    assert.equal(sample(first, requests('r', 's', '200', 'f10002')), 2);
    assertSamples(text, [
      [requests('r', 's', '200', 'f10002'), 3],
      [requests('r', 's', '200', 'f9999'), 1],
      [requests('r10001', 's', '200', ''), 3],
      [upstream('s', 'i', '200', 'ok'), 1],
    ]);
    assert.deepEqual(buckets(text, 'r10001', 's'), [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
    assert.deepEqual(buckets(text, 'r', 's'), [0, 0, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005, 10_005]);
    assert.equal(text.match(/^meshgate_requests_total\{/gm)?.length, 10_003 + 10_002);
    assert.equal(text.match(/^meshgate_request_duration_seconds_count\{/gm)?.length, 10_003);
  });

  it('shows what prom-client shows when it counts every request itself, sums rounded alike', async () => {
    const m = metrics();
    const registry = new client.Registry();
    const counter = new client.Counter({ name: 'meshgate_requests_total', help: 'h', labelNames: ['route', 'service', 'code', 'flag'], registers: [registry] });
    const histogram = new client.Histogram({ name: DURATION, help: 'h', labelNames: ['route', 'service'], buckets: BOUNDS, registers: [registry] });
    const scrapes: Array<[string, string]> = [];
    for (let i = 0; i < 3_000; i++) {
      const route = ['a', 'b', 'c'][i % 3]!;
      const code = [200, 404, 0][(i >> 2) % 3]!;
      const seconds = (0.0001 * ((i * 7919) % 1000)) / 3; // not exact in binary: sums round
      m.observeRequest(route, 'svc', code, i % 5 === 0 ? 'UT' : '', seconds);
      counter.inc({ route, service: 'svc', code: String(code), flag: i % 5 === 0 ? 'UT' : '' });
      histogram.observe({ route, service: 'svc' }, seconds);
      if (i % 1_000 === 999) scrapes.push([await m.registry.metrics(), await registry.metrics()]);
    }
    const series = (text: string): string[] => text.split('\n').filter((l) => /^meshgate_request/.test(l));
    for (const [ours, theirs] of scrapes) assert.deepEqual(series(ours), series(theirs));
  });

  it('requestTotals: the requests and latency buckets summed over label sets, as the registry sums them', async () => {
    const m = metrics();
    const seen: Array<[number, string, number]> = [];
    for (let i = 0; i < 2_000; i++) {
      const code = [200, 503, 404, 0][i % 4]!;
      const flag = i % 7 === 0 ? 'UH' : i % 11 === 0 ? 'RL' : '';
      const seconds = [0.0004, 0.001, 0.003, 0.2, 40][i % 5]!; // a bound exactly, and past the last one
      m.observeRequest(`r${i % 300}`, `s${i % 3}`, code, flag, seconds);
      seen.push([code, flag, seconds]);
    }
    // The oracle: prom-client's own values for the two metrics, summed over every label set.
    const values = async (name: string) => (await m.registry.getSingleMetric(name)!.get()).values;
    let requests = 0;
    let errors = 0;
    const byFlag: Record<string, number> = {};
    for (const v of await values('meshgate_requests_total')) {
      requests += v.value;
      const flag = String(v.labels.flag ?? '');
      if (flag) byFlag[flag] = (byFlag[flag] ?? 0) + v.value;
      if (flag || Number(v.labels.code) >= 500) errors += v.value;
    }
    const cumulative = BOUNDS.map(() => 0);
    let count = 0;
    for (const v of await values(DURATION)) {
      const name = (v as { metricName?: string }).metricName;
      if (name === `${DURATION}_bucket` && Number.isFinite(Number(v.labels.le))) cumulative[BOUNDS.indexOf(Number(v.labels.le))]! += v.value;
      if (name === `${DURATION}_count`) count += v.value;
    }
    const t = m.requestTotals();
    assert.deepEqual(t, { requests, errors, byFlag, bounds: BOUNDS, cumulative, count });
    assert.equal(t.requests, 2_000);
    assert.equal(t.cumulative.at(-1), 2_000 - seen.filter(([, , s]) => s > 30).length, 'past the last bound only in the count');
  });

  it('a label set also observed through prom-client\'s own histogram API stays one series', async () => {
    const m = metrics();
    m.observeRequest('r', 's', 200, '', 0.002);
    m.duration.observe({ route: 'r', service: 's' }, 0.2);
    m.observeRequest('r', 's', 200, '', 3);
    const text = await m.registry.metrics();
    assert.equal(text.match(/^meshgate_request_duration_seconds_count\{/gm)?.length, 1);
    assert.deepEqual(buckets(text, 'r', 's'), [0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    assert.equal(sample(text, `${DURATION}_sum{route="r",service="s"}`), 0.002 + 0.2 + 3);
  });
});

describe('request metrics in a worker cluster', () => {
  it("prom-client's AggregatorRegistry sums the workers' counts and histogram buckets", async () => {
    const a = new Metrics({ role: 'data', processMetrics: false });
    const b = new Metrics({ role: 'data', processMetrics: false });
    for (let i = 0; i < 3; i++) a.observeRequest('r', 's', 200, '', 0.001);
    a.observeRequest('r', 's', 502, 'UC', 50);
    for (let i = 0; i < 2; i++) b.observeRequest('r', 's', 200, '', 0.004);
    b.observeRequest('q', 's', 200, '', 0.3);
    a.countUpstream('s', 'i1', 200, 'ok', 0.002);
    b.countUpstream('s', 'i1', 200, 'ok', 0.002);
    b.countUpstream('s', 'i2', 0, 'timeout', 0.002);

    const aggregated = client.AggregatorRegistry.aggregate([await a.registry.getMetricsAsJSON(), await b.registry.getMetricsAsJSON()]);
    const text = await aggregated.metrics();
    assertSamples(text, [
      [requests('r', 's', '200', ''), 5],
      [requests('r', 's', '502', 'UC'), 1],
      [requests('q', 's', '200', ''), 1],
      [`${DURATION}_sum{route="r",service="s"}`, 0.001 + 0.001 + 0.001 + 50 + (0.004 + 0.004)],
      [`${DURATION}_count{route="r",service="s"}`, 6],
      [upstream('s', 'i1', '200', 'ok'), 2],
      [upstream('s', 'i2', '0', 'timeout'), 1],
    ]);
    assert.deepEqual(buckets(text, 'r', 's'), [0, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6]);
    assert.deepEqual(buckets(text, 'q', 's'), [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    assert.match(text, /^# TYPE meshgate_request_duration_seconds histogram$/m);
  });
});
