// The Grafana dashboard in deploy/grafana asks only for metrics the gateway
// exports, by labels those metrics have: a renamed metric or label fails here,
// not on an operator's empty panel.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Metrics } from '../../../src/observability/metrics.js';

interface Panel {
  title: string;
  targets?: Array<{ expr: string }>;
}

test('every metric and label the dashboard queries is exported by the gateway', async () => {
  const dashboard = JSON.parse(readFileSync('deploy/grafana/meshgate-dashboard.json', 'utf8')) as { panels: Panel[] };
  const exported = new Map<string, { type: string; labels: Set<string> }>();
  const m = new Metrics({ role: 'all' });
  for (const metric of await m.registry.getMetricsAsJSON()) {
    const labels = new Set<string>();
    const names = (metric as unknown as { labelNames?: string[] }).labelNames;
    for (const l of names ?? []) labels.add(l);
    for (const v of metric.values) for (const l of Object.keys(v.labels)) labels.add(l);
    exported.set(metric.name, { type: String(metric.type), labels });
  }
  // Label names each metric was declared with (prom-client keeps them on the metric object).
  for (const [name, info] of exported) {
    const declared = (m.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
    for (const l of declared) info.labels.add(l);
  }
  let checked = 0;
  for (const p of dashboard.panels) {
    assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has a query`);
    for (const { expr } of p.targets) {
      const used = [...expr.matchAll(/\b((?:meshgate|process)_[a-z0-9_]+)(\{[^}]*\})?/g)];
      assert.ok(used.length > 0, `panel "${p.title}" queries a meshgate metric: ${expr}`);
      for (const [, series, selector] of used) {
        const histogramPart = /_(bucket|sum|count)$/.exec(series!);
        const base = histogramPart && !exported.has(series!) ? series!.slice(0, -histogramPart[0].length) : series!;
        const info = exported.get(base);
        assert.ok(info, `panel "${p.title}": ${base} is not exported`);
        const labels = new Set(info.labels);
        if (histogramPart) labels.add('le');
        for (const [, l] of (selector ?? '').matchAll(/([a-z_]+)\s*(?:=|!=|=~|!~)/g)) assert.ok(labels.has(l!), `panel "${p.title}": ${base} has no label ${l}`);
        for (const [, list] of expr.matchAll(/\bby \(([^)]*)\)/g)) {
          for (const l of list!.split(',').map((x) => x.trim())) {
            if (l === 'instance' && base.startsWith('process_')) continue; // Prometheus's own target label
            assert.ok(labels.has(l) || [...used].some(([, other]) => exported.get(other!.replace(/_(bucket|sum|count)$/, ''))?.labels.has(l)), `panel "${p.title}": no label ${l} to group ${base} by`);
          }
        }
        checked++;
      }
    }
  }
  assert.ok(checked >= 15, `${checked} series checked`);
});
