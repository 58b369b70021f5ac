// The benchmark report's charts, drawn in the page from the inlined bench.json (#bench-data):
// median and cold-start latency per engine (grouped bars), cnnlab's GPU time by kernel family
// (100% stacked bars), and each kernel's GFLOP/s against the FMA peak.

import type { Chart as ChartJs, Plugin } from 'chart.js';
import type { BenchJson, ModelBench } from '../../bench/schema.js';
import { ENGINE_COLORS } from '../palette.js';
import { color, drawCharts, readJson } from './common.js';

/** The element bench.json is inlined in. */
export const BENCH_DATA_ID = 'bench-data';

/** At most this many kernels in the kernel chart (the table lists all). */
export const KERNEL_CHART_MAX = 40;

/** The engines to chart, in the report's order, as the `data-engines` attribute of the charts' container. */
export const ENGINES_ATTR = 'data-engines';

const label = (m: ModelBench) => `${m.model} b=${m.batch}`;
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toPrecision(3));

/** A log axis when the values span more than 20×, so the fast engines do not vanish. */
function yScale(values: number[], title: string) {
  const pos = values.filter((v) => v > 0);
  const log = pos.length > 1 && Math.max(...pos) / Math.min(...pos) > 20;
  return {
    type: log ? ('logarithmic' as const) : ('linear' as const),
    beginAtZero: !log,
    title: { display: true, text: title + (log ? ' (log scale)' : '') },
  };
}

export function drawBenchCharts(): void {
  const data = readJson<BenchJson>(BENCH_DATA_ID);
  const engines = (document.querySelector(`[${ENGINES_ATTR}]`)?.getAttribute(ENGINES_ATTR) ?? '')
    .split(' ')
    .filter(Boolean);
  drawCharts((add, Chart) => {
    // Grouped bars: one group per model/batch, one bar per engine.
    const perEngine = (id: string, field: 'median_ms' | 'cold_ms' | 'load_ms', title: string) => {
      const all: number[] = [];
      const sets = engines
        .map((e) => {
          const d = data.models.map((m) => {
            const r = m.engines[e as keyof ModelBench['engines']];
            // A cold start taken on a page or device that had compiled before is not drawn.
            const warm = field === 'cold_ms' && r?.cold_invalid;
            const v = r && r.status === 'ok' && !warm && typeof r[field] === 'number' ? r[field] : null;
            if (v !== null) all.push(v);
            return v;
          });
          return { label: e, data: d, backgroundColor: ENGINE_COLORS[e] || '#868e96' };
        })
        .filter((s) => s.data.some((v) => v !== null));
      add<'bar', (number | null)[]>(id, {
        type: 'bar',
        data: { labels: data.models.map(label), datasets: sets },
        options: {
          scales: { y: yScale(all, title) },
          plugins: { tooltip: { callbacks: { label: (c) => `${c.dataset.label}: ${fmt(c.parsed.y!)} ms` } } },
        },
      });
    };
    perEngine('chart-median', 'median_ms', 'median ms');
    perEngine('chart-cold', 'cold_ms', 'cold start ms');
    perEngine('chart-load', 'load_ms', 'load ms: runtime ready (library, wasm, backend, device)');

    // cnnlab's GPU time by kernel family: one 100% stacked bar per model/batch.
    const prof = data.models.filter((m) => m.profile?.families.length);
    if (prof.length) {
      const total: Record<string, number> = {};
      for (const m of prof) for (const f of m.profile!.families) total[f.family] = (total[f.family] || 0) + f.share;
      const fams = Object.keys(total).sort((a, b) => total[b] - total[a]);
      const familyRow = (m: ModelBench, f: string) => m.profile!.families.find((x) => x.family === f);
      add<'bar', number[]>('chart-profile', {
        type: 'bar',
        data: {
          labels: prof.map((m) => `${label(m)} (${fmt(m.profile!.total_ms)} ms)`),
          datasets: fams.map((f, i) => ({
            label: f,
            backgroundColor: color(i),
            data: prof.map((m) => {
              const r = familyRow(m, f);
              return r ? 100 * r.share : 0;
            }),
          })),
        },
        options: {
          indexAxis: 'y',
          scales: {
            x: { stacked: true, max: 100, title: { display: true, text: '% of cnnlab GPU time' } },
            y: { stacked: true },
          },
          plugins: {
            tooltip: {
              callbacks: {
                label: (c) => {
                  const r = familyRow(prof[c.dataIndex], c.dataset.label!);
                  const more = r ? ` · ${fmt(r.ms)} ms · ${r.calls} calls` : '';
                  return `${c.dataset.label}: ${c.parsed.x!.toFixed(1)}%${more}`;
                },
              },
            },
          },
        },
      });
    }

    // Kernels: achieved GFLOP/s, slowest first, against the FMA peak drawn as a dashed line.
    const peak = data.roofline.fmaGflops;
    const ks = (data.kernels ?? [])
      .filter((k) => typeof k.gflops === 'number')
      .sort((a, b) => b.ms - a.ms)
      .slice(0, KERNEL_CHART_MAX);
    if (ks.length) {
      const peakLine: Plugin<'bar'> = {
        id: 'peakLine',
        afterDatasetsDraw: (chart: ChartJs) => {
          if (!(peak > 0)) return;
          const x = chart.scales.x.getPixelForValue(peak),
            a = chart.chartArea,
            ctx = chart.ctx;
          ctx.save();
          ctx.strokeStyle = '#c92a2a';
          ctx.lineWidth = 2;
          ctx.setLineDash([6, 4]);
          ctx.beginPath();
          ctx.moveTo(x, a.top);
          ctx.lineTo(x, a.bottom);
          ctx.stroke();
          ctx.fillStyle = '#c92a2a';
          ctx.textAlign = 'right';
          ctx.font = `12px ${Chart.defaults.font.family}`;
          ctx.fillText(`FMA peak ${fmt(peak)} GFLOP/s`, x - 6, a.top + 12);
          ctx.restore();
        },
      };
      const top = Math.max(peak || 0, ...ks.map((k) => k.gflops!)) * 1.08;
      add<'bar', number[]>('chart-kernels', {
        type: 'bar',
        data: {
          labels: ks.map((k) => `${k.model} · ${k.node}`),
          datasets: [
            {
              label: 'GFLOP/s',
              data: ks.map((k) => k.gflops!),
              backgroundColor: ks.map((k) => (k.bound === 'compute' ? '#1971c2' : '#74c0fc')),
            },
          ],
        },
        options: {
          indexAxis: 'y',
          scales: {
            x: {
              min: 0,
              max: top,
              title: { display: true, text: 'achieved GFLOP/s (dark: compute-bound, light: memory-bound)' },
            },
          },
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: (c) => {
                  const k = ks[c.dataIndex];
                  const share = `${(100 * k.fraction_of_peak).toFixed(1)}% of ${k.bound} peak`;
                  return `${fmt(k.gflops!)} GFLOP/s · ${fmt(k.ms)} ms × ${k.count} · ${share}`;
                },
              },
            },
          },
        },
        plugins: [peakLine],
      });
    }
  });
}
