// The study report's charts, drawn in the page from study.json (eval/study.ts), which the page
// inlines as #study-data: accuracy vs mCE and calibration vs accuracy (one labelled point per
// run), mCE vs transfer accuracy (one colour per transfer metric, points labelled by run), top-1
// vs test resolution (one line per run) and the SI-Score sweeps side by side. Each run keeps its
// colour across the charts; values are fractions in study.json and percent on the axes.

import type { Chart as ChartJs, Plugin, Scale, TooltipItem } from 'chart.js';
import type { StudyJson, StudyPoint, StudySeries, SweepKind } from '../../eval/study.js';
import { color, drawCharts, readJson } from './common.js';

/** The element study.json is inlined in. */
export const STUDY_DATA_ID = 'study-data';

/** The canvas of each chart (report/study.ts lays them out; a chart with no points has no canvas). */
export const STUDY_CHART_IDS = {
  accuracyMce: 'chart-accuracy-mce',
  mceTransfer: 'chart-mce-transfer',
  resolution: 'chart-study-resolution',
  calibration: 'chart-calibration',
  sweep: (k: SweepKind) => `chart-sweep-${k}`,
} as const;

const pc = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(100 * v).toFixed(1)}%`);
const axis = <T extends object>(text: string, extra?: T) => ({ title: { display: true, text }, ...extra });
const MARKERS = ['circle', 'rectRot', 'triangle', 'rect', 'star', 'crossRot'] as const;

interface Labelled {
  x: number;
  y: number;
  label: string;
}

/**
 * Writes each point's label beside it (right of the point, or left near the right edge), moved
 * down past the labels already drawn so that points at the same place stay readable.
 */
function pointLabels(): Plugin<'scatter'> {
  return {
    id: 'pointLabels',
    afterDatasetsDraw: (chart: ChartJs) => {
      const ctx = chart.ctx,
        a = chart.chartArea;
      const drawn: { x: number; y: number; w: number }[] = [];
      const overlaps = (x: number, y: number, w: number) =>
        drawn.some((d) => x < d.x + d.w && d.x < x + w && Math.abs(d.y - y) < 15);
      ctx.save();
      ctx.font = '12px system-ui, sans-serif';
      ctx.textBaseline = 'bottom';
      chart.data.datasets.forEach((ds, i) => {
        if (!chart.isDatasetVisible(i)) return;
        const meta = chart.getDatasetMeta(i);
        (ds.data as unknown as Labelled[]).forEach((p, j) => {
          const el = meta.data[j];
          if (!el || !p.label) return;
          const w = ctx.measureText(p.label).width;
          const left = el.x + 8 + w > a.right;
          const x = left ? el.x - 8 - w : el.x + 8;
          let y = el.y - 5;
          for (let k = 0; k < 20 && overlaps(x, y, w); k++) y += 15;
          drawn.push({ x, y, w });
          ctx.fillStyle = 'rgba(255,255,255,0.8)';
          ctx.fillRect(x - 2, y - 14, w + 4, 15);
          ctx.fillStyle = '#343a40';
          ctx.fillText(p.label, x, y);
        });
      });
      ctx.restore();
    },
  };
}

/**
 * Scale bounds in percent around the data: at least 10 points wide, on multiples of 5, from 0;
 * accuracies end at 100 (points there are drawn unclipped), mCE may pass it.
 */
function range(values: number[], upTo = 100): { min: number; max: number } {
  const v = values.map((x) => 100 * x);
  let lo = Math.min(...v),
    hi = Math.max(...v);
  const pad = Math.max(2, 0.12 * (hi - lo));
  lo -= pad;
  hi += pad;
  if (hi - lo < 10) {
    const mid = (lo + hi) / 2;
    lo = mid - 5;
    hi = mid + 5;
  }
  const max = Math.min(upTo, Math.ceil(hi / 5) * 5);
  return { min: Math.max(0, Math.floor(Math.min(lo, max - 10) / 5) * 5), max };
}

/** Ticks exactly at the given values (test resolutions), every other one past 10. */
function ticksAt(values: number[]) {
  const every = Math.ceil(values.length / 10);
  return {
    afterBuildTicks: (ax: Scale) => {
      ax.ticks = values.filter((_, i) => i % every === 0).map((value) => ({ value }));
    },
    ticks: { autoSkip: false },
  };
}

export function drawStudyCharts(): void {
  const S = readJson<StudyJson>(STUDY_DATA_ID);
  const runColor = new Map(S.runs.map((r, i) => [r.id, color(i)]));
  const colorOf = (run: string) => runColor.get(run) ?? '#868e96';

  drawCharts((add) => {
    // One dataset per run, so the legend and tooltips name the runs; hollow markers for an incomplete mCE.
    const perRun = (points: StudyPoint[]) =>
      points.map((p) => ({
        label: p.run,
        data: [{ x: 100 * p.x, y: 100 * p.y, label: p.run }],
        borderColor: colorOf(p.run),
        backgroundColor: p.incomplete ? '#fff' : colorOf(p.run),
        borderWidth: 2,
        pointRadius: 6,
        pointHoverRadius: 8,
        clip: false as const,
      }));
    const scatterTip = (what: (c: TooltipItem<'scatter'>) => string) => ({ callbacks: { label: what } });

    const am = S.plots.accuracy_mce.points;
    if (am.length) {
      const xr = range(am.map((p) => p.x)),
        yr = range(
          am.map((p) => p.y),
          Infinity,
        );
      add<'scatter', Labelled[]>(STUDY_CHART_IDS.accuracyMce, {
        type: 'scatter',
        data: { datasets: perRun(am) },
        options: {
          scales: {
            x: axis('clean top-1 accuracy % (higher is better)', { ...xr }),
            y: axis('mCE % of AlexNet (lower is better)', { ...yr }),
          },
          plugins: {
            legend: { display: false },
            tooltip: scatterTip(
              (c) => `${c.dataset.label}: top-1 ${c.parsed.x!.toFixed(1)}%, mCE ${c.parsed.y!.toFixed(1)}%`,
            ),
          },
        },
        plugins: [pointLabels()],
      });
    }

    const mt = S.plots.mce_transfer.series;
    if (mt.length) {
      const all = mt.flatMap((s) => s.points);
      add<'scatter', Labelled[]>(STUDY_CHART_IDS.mceTransfer, {
        type: 'scatter',
        data: {
          datasets: mt.map((s, i) => ({
            label: s.metric,
            data: s.points.map((p) => ({ x: 100 * p.x, y: 100 * p.y, label: p.run })),
            borderColor: color(i),
            backgroundColor: color(i),
            pointStyle: MARKERS[i % MARKERS.length],
            pointRadius: 6,
            pointHoverRadius: 8,
            clip: false as const,
          })),
        },
        options: {
          scales: {
            x: axis('mCE % of AlexNet (lower is better)', {
              ...range(
                all.map((p) => p.x),
                Infinity,
              ),
            }),
            y: axis('transfer accuracy % (higher is better)', { ...range(all.map((p) => p.y)) }),
          },
          plugins: {
            legend: { labels: { usePointStyle: true } },
            tooltip: scatterTip((c) => {
              const p = c.raw as Labelled;
              return `${p.label}, ${c.dataset.label}: ${c.parsed.y!.toFixed(1)}% at mCE ${c.parsed.x!.toFixed(1)}%`;
            }),
          },
        },
        plugins: [pointLabels()],
      });
    }

    const lines = (series: StudySeries[], xScale: (x: number) => number) =>
      series.map((s) => ({
        label: s.run,
        data: s.points.map((p) => ({ x: xScale(p.x), y: p.y === null ? null : 100 * p.y })),
        borderColor: colorOf(s.run),
        backgroundColor: colorOf(s.run),
        pointRadius: 3.5,
        borderWidth: 2,
        spanGaps: true,
      }));
    const lineTip = (unit: (x: number) => string) => ({
      callbacks: {
        label: (c: TooltipItem<'line'>) => `${c.dataset.label} at ${unit(c.parsed.x!)}: ${pc(c.parsed.y! / 100)}`,
      },
    });
    const legend = { position: 'bottom' as const, labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } };

    const rs = S.plots.resolution.series;
    if (rs.length) {
      const xs = [...new Set(rs.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
      const lo = xs[0],
        hi = xs[xs.length - 1],
        pad = 0.05 * (hi - lo || 1);
      add<'line', { x: number; y: number | null }[]>(STUDY_CHART_IDS.resolution, {
        type: 'line',
        data: { datasets: lines(rs, (x) => x) },
        options: {
          scales: {
            x: axis('test resolution, px', { type: 'linear', min: lo - pad, max: hi + pad, ...ticksAt(xs) }),
            y: axis('clean top-1 accuracy %', { min: 0, max: 100 }),
          },
          plugins: { legend, tooltip: lineTip((x) => `${x} px`) },
        },
      });
    }

    const sweepAxis: Record<
      SweepKind,
      { title: string; x: (x: number) => number; unit: (x: number) => string; max?: number }
    > = {
      size: { title: 'object area, % of the image', x: (x) => 100 * x, unit: (x) => `area ${x.toFixed(0)}%`, max: 100 },
      location: {
        title: 'distance of the object centre from the image centre, % of the side',
        x: (x) => 100 * x,
        unit: (x) => `distance ${x.toFixed(0)}%`,
      },
      rotation: {
        title: 'rotation angle, degrees (mean over object areas)',
        x: (x) => x,
        unit: (x) => `${x}°`,
        max: 360,
      },
    };
    for (const k of ['size', 'location', 'rotation'] as const) {
      const ss = S.plots.sweeps[k].series;
      if (!ss.length) continue;
      const ax = sweepAxis[k];
      add<'line', { x: number; y: number | null }[]>(STUDY_CHART_IDS.sweep(k), {
        type: 'line',
        data: { datasets: lines(ss, ax.x) },
        options: {
          scales: {
            x: axis(ax.title, { type: 'linear', min: 0, ...(ax.max ? { max: ax.max } : {}) }),
            y: axis('top-1 accuracy %', { min: 0, max: 100 }),
          },
          plugins: { legend, tooltip: lineTip(ax.unit) },
        },
      });
    }

    const cal = S.plots.calibration.points;
    if (cal.length) {
      const eceMax = Math.max(...cal.map((p) => p.y));
      add<'scatter', Labelled[]>(STUDY_CHART_IDS.calibration, {
        type: 'scatter',
        data: { datasets: perRun(cal) },
        options: {
          scales: {
            x: axis('clean top-1 accuracy % (higher is better)', { ...range(cal.map((p) => p.x)) }),
            y: axis('ECE %, 100 adaptive bins (lower is better)', { min: 0, max: Math.ceil(100 * eceMax * 1.2 + 1) }),
          },
          plugins: {
            legend: { display: false },
            tooltip: scatterTip(
              (c) => `${c.dataset.label}: top-1 ${c.parsed.x!.toFixed(1)}%, ECE ${c.parsed.y!.toFixed(1)}%`,
            ),
          },
        },
        plugins: [pointLabels()],
      });
    }
  });
}
