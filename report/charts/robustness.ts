// The robustness report's charts, drawn in the page from the series that eval/report.ts derives
// (with the same key parsing and ordering as the tables) and inlines as #chart-data: accuracy
// against corruption severity, CE per corruption, the reliability diagram, the SI-Score size,
// rotation and location sweeps, test resolution, and few-shot transfer.

import type { Chart as ChartJs, Plugin, Scale, TooltipItem } from 'chart.js';
import { type ChartClass, color, drawCharts, readJson } from './common.js';
import { FINETUNE_DATA_ID, drawFinetuneCharts } from './finetune.js';
import { PALETTE } from '../palette.js';

/** The element the series are inlined in. */
export const ROBUSTNESS_DATA_ID = 'chart-data';

export interface XY {
  x: number;
  y: number | null;
}

/** The series of each chart, in percent (null: a gap); a chart is drawn only when its field is present. */
export interface RobustnessCharts {
  /** Top-1 per corruption at 'clean' and each severity. */
  severity?: { labels: string[]; series: { label: string; data: (number | null)[] }[] };
  /** CE and relative CE per corruption, and mCE. */
  ce?: { labels: string[]; ce: (number | null)[]; rel?: (number | null)[]; mce: number | null };
  /** Per confidence bin: accuracy, mean confidence, image count, the diagonal. */
  reliability?: { labels: string[]; acc: (number | null)[]; conf: (number | null)[]; count: number[]; diag: number[] };
  /** Top-1 against object area (x in % of the image). */
  size?: XY[];
  /** Top-1 against angle, one line per object area. */
  rotation?: { label: string; data: XY[] }[];
  /** Heat map: one cell per object centre (v: top-1 %, c: its colour); grid steps and axis ranges. */
  location?: {
    cells: { x: number; y: number; v: number; c: string }[];
    xs: number[];
    ys: number[];
    dx: number;
    dy: number;
    xr: [number, number];
    yr: [number, number];
  };
  /** Top-1 and top-5 against test resolution; the model's own size. */
  resolution?: { top1: XY[]; top5: XY[]; native: number };
  /** Few-shot accuracy against shots per class: mean and each seed; log x when the shots span > 4×. */
  fewshot?: { mean: XY[]; seeds: XY[]; log: boolean };
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${v.toFixed(1)}%`);

// Past the palette, lines repeat colours with a dash and another marker, so 19 corruptions stay apart.
const dash = (i: number) => (i < PALETTE.length ? [] : [6, 3]);
const marker = (i: number): 'circle' | 'rectRot' => (i < PALETTE.length ? 'circle' : 'rectRot');

const lineLegend = { labels: { usePointStyle: true, boxWidth: 8, boxHeight: 8 } };

const axis = <T extends object>(text: string, extra?: T) => ({ title: { display: true, text }, ...extra });

/** Ticks exactly at the given values (grid centres, resolutions, shot counts), at most about 8 labelled. */
function ticksAt(values: number[]) {
  const every = Math.ceil(values.length / 8);
  return {
    afterBuildTicks: (ax: Scale) => {
      ax.ticks = values.filter((_, i) => i % every === 0).map((value) => ({ value }));
    },
    ticks: { autoSkip: false, callback: (v: number | string) => String(Math.round(Number(v) * 1000) / 1000) },
  };
}

function line<D>(label: string, data: D[], i: number, extra: { pointRadius?: number } = {}) {
  return {
    label,
    data,
    borderColor: color(i),
    backgroundColor: color(i),
    borderDash: dash(i),
    pointStyle: marker(i),
    pointRadius: 2.5,
    borderWidth: 2,
    spanGaps: true,
    ...extra,
  };
}

const pctTip = { callbacks: { label: (c: TooltipItem<'line' | 'bar'>) => `${c.dataset.label}: ${pct(c.parsed.y)}` } };

interface HLine {
  y: number | null;
  label: string;
  color: string;
  dash?: number[];
}

/** Horizontal reference lines (value on the y scale, label, colour) drawn over the datasets. */
function hlines(Chart: ChartClass, lines: HLine[]): Plugin<'bar'> {
  return {
    id: 'hlines',
    afterDatasetsDraw: (chart: ChartJs) => {
      const a = chart.chartArea,
        ctx = chart.ctx;
      for (const l of lines) {
        if (l.y === null || l.y === undefined) continue;
        const y = chart.scales.y.getPixelForValue(l.y);
        if (y < a.top || y > a.bottom) continue;
        ctx.save();
        ctx.strokeStyle = l.color;
        ctx.lineWidth = 2;
        ctx.setLineDash(l.dash ?? [6, 4]);
        ctx.beginPath();
        ctx.moveTo(a.left, y);
        ctx.lineTo(a.right, y);
        ctx.stroke();
        ctx.font = `12px ${Chart.defaults.font.family}`;
        ctx.textAlign = 'right';
        const w = ctx.measureText(l.label).width;
        ctx.fillStyle = 'rgba(255,255,255,0.85)';
        ctx.fillRect(a.right - w - 10, y - 18, w + 8, 15);
        ctx.fillStyle = l.color;
        ctx.fillText(l.label, a.right - 6, y - 6);
        ctx.restore();
      }
    },
  };
}

export function drawRobustnessCharts(): void {
  const D = readJson<RobustnessCharts>(ROBUSTNESS_DATA_ID);
  drawCharts((add, Chart) => {
    if (D.severity) {
      add<'line', (number | null)[]>('chart-severity', {
        type: 'line',
        data: { labels: D.severity.labels, datasets: D.severity.series.map((s, i) => line(s.label, s.data, i)) },
        options: {
          scales: { x: axis('severity (left: clean)'), y: axis('top-1 accuracy %', { min: 0, max: 100 }) },
          plugins: { legend: { position: 'right', ...lineLegend }, tooltip: pctTip },
        },
      });
    }

    if (D.ce) {
      const sets = [{ label: 'CE', data: D.ce.ce, backgroundColor: '#1971c2' }];
      if (D.ce.rel) sets.push({ label: 'relative CE', data: D.ce.rel, backgroundColor: '#74c0fc' });
      add<'bar', (number | null)[]>('chart-ce', {
        type: 'bar',
        data: { labels: D.ce.labels, datasets: sets },
        options: {
          scales: { y: axis('% of AlexNet (lower is better)', { beginAtZero: true }) },
          plugins: { tooltip: pctTip },
        },
        plugins: [
          hlines(Chart, [
            { y: 100, label: 'AlexNet = 100%', color: '#c92a2a' },
            { y: D.ce.mce, label: `mCE ${pct(D.ce.mce)}`, color: '#1971c2', dash: [2, 3] },
          ]),
        ],
      });
    }

    if (D.reliability) {
      const R = D.reliability;
      add<'bar' | 'line', (number | null)[]>('chart-reliability', {
        type: 'bar',
        data: {
          labels: R.labels,
          datasets: [
            {
              type: 'line',
              label: 'perfect calibration',
              data: R.diag,
              borderColor: '#c92a2a',
              borderDash: [6, 4],
              borderWidth: 2,
              pointRadius: 0,
              order: 0,
            },
            {
              type: 'line',
              label: 'mean confidence',
              data: R.conf,
              showLine: false,
              borderColor: '#212529',
              backgroundColor: '#212529',
              pointRadius: 3,
              order: 1,
            },
            {
              label: 'accuracy',
              data: R.acc,
              backgroundColor: '#74c0fc',
              borderColor: '#1971c2',
              borderWidth: 1,
              barPercentage: 1,
              categoryPercentage: 0.96,
              order: 2,
            },
          ],
        },
        options: {
          scales: { x: axis('confidence bin (15 equal-width)'), y: axis('%', { min: 0, max: 100 }) },
          plugins: {
            tooltip: {
              callbacks: {
                label: (c) => {
                  const images = c.dataset.label === 'accuracy' ? ` (${R.count[c.dataIndex]} images)` : '';
                  return `${c.dataset.label}: ${pct(c.parsed.y)}${images}`;
                },
              },
            },
          },
        },
      });
    }

    if (D.size) {
      add<'line', XY[]>('chart-size', {
        type: 'line',
        data: { datasets: [line('top-1', D.size, 0, { pointRadius: 1 })] },
        options: {
          scales: {
            x: axis('object area, % of the image', { type: 'linear', min: 0, max: 100 }),
            y: axis('top-1 accuracy %', { min: 0, max: 100 }),
          },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: (c) => `area ${c.parsed.x!.toFixed(0)}%: ${pct(c.parsed.y)}` } },
          },
        },
      });
    }

    if (D.rotation) {
      add<'line', XY[]>('chart-rotation', {
        type: 'line',
        data: { datasets: D.rotation.map((s, i) => line(s.label, s.data, i)) },
        options: {
          scales: {
            x: axis('rotation angle, degrees', { type: 'linear', min: 0, max: 360, ticks: { stepSize: 45 } }),
            y: axis('top-1 accuracy %', { min: 0, max: 100 }),
          },
          plugins: {
            legend: lineLegend,
            tooltip: { callbacks: { label: (c) => `${c.dataset.label}, ${c.parsed.x}°: ${pct(c.parsed.y)}` } },
          },
        },
      });
    }

    if (D.location) {
      const L = D.location;
      // One rectangle per grid cell, exactly tiling the grid in data units; the dataset's own
      // points are invisible and only give the tooltips something to hit.
      const cells: Plugin<'scatter'> = {
        id: 'cells',
        beforeDatasetsDraw: (chart: ChartJs) => {
          const xs = chart.scales.x,
            ys = chart.scales.y,
            ctx = chart.ctx;
          ctx.save();
          for (const c of L.cells) {
            const x0 = xs.getPixelForValue(c.x - L.dx / 2),
              x1 = xs.getPixelForValue(c.x + L.dx / 2);
            const y0 = ys.getPixelForValue(c.y - L.dy / 2),
              y1 = ys.getPixelForValue(c.y + L.dy / 2);
            ctx.fillStyle = c.c;
            ctx.fillRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0) + 0.5, Math.abs(y1 - y0) + 0.5);
          }
          ctx.restore();
        },
      };
      add<'scatter', XY[]>('chart-location', {
        type: 'scatter',
        data: {
          datasets: [
            {
              label: 'top-1',
              data: L.cells.map((c) => ({ x: c.x, y: c.y })),
              pointRadius: 0,
              pointHitRadius: (ctx) => {
                const a = ctx.chart.chartArea,
                  xs = ctx.chart.scales.x;
                return a && xs ? Math.max(2, Math.abs(xs.getPixelForValue(L.dx) - xs.getPixelForValue(0)) / 2) : 4;
              },
            },
          ],
        },
        options: {
          scales: {
            x: axis('object centre x', {
              type: 'linear',
              min: L.xr[0],
              max: L.xr[1],
              grid: { display: false },
              ...ticksAt(L.xs),
            }),
            y: axis('object centre y (down, as in the image)', {
              type: 'linear',
              min: L.yr[0],
              max: L.yr[1],
              reverse: true,
              grid: { display: false },
              ...ticksAt(L.ys),
            }),
          },
          plugins: {
            legend: { display: false },
            tooltip: {
              callbacks: {
                label: (c) => {
                  const cell = L.cells[c.dataIndex];
                  return `(${cell.x}, ${cell.y}): ${pct(cell.v)}`;
                },
              },
            },
          },
        },
        plugins: [cells],
      });
    }

    if (D.resolution) {
      const rx = D.resolution.top1.map((p) => p.x),
        pad = 0.06 * (rx[rx.length - 1] - rx[0]);
      add<'line', XY[]>('chart-resolution', {
        type: 'line',
        data: {
          datasets: [
            line('top-1', D.resolution.top1, 0, { pointRadius: 4 }),
            line('top-5', D.resolution.top5, 1, { pointRadius: 4 }),
          ],
        },
        options: {
          scales: {
            x: axis(`test resolution, px (model built for ${D.resolution.native})`, {
              type: 'linear',
              min: rx[0] - pad,
              max: rx[rx.length - 1] + pad,
              ...ticksAt(rx),
            }),
            y: axis('accuracy %', { grace: '5%' }),
          },
          plugins: {
            tooltip: { callbacks: { label: (c) => `${c.dataset.label} at ${c.parsed.x} px: ${pct(c.parsed.y)}` } },
          },
        },
      });
    }

    if (D.fewshot) {
      const F = D.fewshot;
      add<'line' | 'scatter', XY[]>('chart-fewshot', {
        type: 'line',
        data: {
          datasets: [
            line('mean over seeds', F.mean, 0, { pointRadius: 4 }),
            {
              type: 'scatter',
              label: 'each seed',
              data: F.seeds,
              backgroundColor: 'rgba(134,142,150,0.7)',
              pointRadius: 3,
            },
          ],
        },
        options: {
          scales: {
            // Some room either side so the end points are not cut in half.
            x: axis(`examples per class${F.log ? ' (log scale)' : ''}`, {
              type: F.log ? 'logarithmic' : 'linear',
              min: F.log ? F.mean[0].x / 1.25 : 0,
              max: F.mean[F.mean.length - 1].x * (F.log ? 1.25 : 1.05),
              ...ticksAt(F.mean.map((p) => p.x)),
            }),
            y: axis('accuracy %', { beginAtZero: true }),
          },
          plugins: {
            tooltip: { callbacks: { label: (c) => `${c.dataset.label}, ${c.parsed.x}-shot: ${pct(c.parsed.y)}` } },
          },
        },
      });
    }
    if (document.getElementById(FINETUNE_DATA_ID)) drawFinetuneCharts(add);
  });
}
