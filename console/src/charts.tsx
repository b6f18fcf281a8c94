// Time-series charts on uPlot. The chart is made once per series layout and
// fed new data with setData, so a 1 s poll does not rebuild the DOM.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface SeriesSpec {
  label: string;
  color: string;
}

const PALETTE = ['#2563eb', '#dc2626', '#d97706', '#7c3aed', '#059669', '#db2777', '#0891b2', '#65a30d'];
export const color = (i: number): string => PALETTE[i % PALETTE.length]!;

/** The x axis always spans the last five minutes (the stats buffer), so a young series grows from the right. */
function showWindow(p: uPlot, data: uPlot.AlignedData): void {
  const xs = data[0];
  const last = xs.length ? (xs[xs.length - 1] as number) : Date.now() / 1000;
  p.setScale('x', { min: last - 300, max: last });
}

export function TimeChart({ title, unit, series, data, height = 180 }: { title: string; unit: string; series: SeriesSpec[]; data: uPlot.AlignedData; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const layout = series.map((s) => s.label).join('\u0000');

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(240, el.clientWidth);
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max, min, 1) * 1.1] } },
      axes: [{ stroke: '#64748b', grid: { stroke: '#e2e8f0' } }, { stroke: '#64748b', grid: { stroke: '#e2e8f0' }, size: 56, values: (_u, ticks) => ticks.map((v) => `${+v.toFixed(2)}${unit}`) }],
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, points: { show: false } }))],
    };
    const p = new uPlot(opts, data, el);
    plot.current = p;
    showWindow(p, data);
    const ro = new ResizeObserver(() => {
      const w = Math.max(240, el.clientWidth);
      if (Math.abs(w - p.width) > 4) p.setSize({ width: w, height });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      p.destroy();
      plot.current = null;
    };
    // Rebuilt only when the set of series changes.
  }, [layout, height, unit]);

  useEffect(() => {
    const p = plot.current;
    if (!p) return;
    p.setData(data);
    showWindow(p, data);
  }, [data]);

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-box" />
    </figure>
  );
}
