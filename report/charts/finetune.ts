// The fine-tune section's charts, drawn in the page from the series report/finetune.ts derives
// and inlines as #finetune-data: training loss per step (raw and a running mean) with the
// learning rate, and accuracy on val/test against steps, per phase.

import { type AddChart, color, readJson } from './common.js';

/** The element the series are inlined in. */
export const FINETUNE_DATA_ID = 'finetune-data';

export interface XY {
  x: number;
  y: number | null;
}

export interface FinetuneCharts {
  /** Per phase: loss per step (thinned to at most ~600 points), its running mean, the lr. */
  loss: { phase: string; raw: XY[]; smooth: XY[]; lr: XY[] }[];
  /** Per phase and split: accuracy (%) against steps. */
  accuracy: { label: string; data: XY[] }[];
}

const axis = (text: string, extra: object = {}) => ({ title: { display: true, text }, ...extra });

/** Adds the fine-tune charts (when their canvases exist) to a report's drawCharts pass. */
export function drawFinetuneCharts(add: AddChart): void {
  const D = readJson<FinetuneCharts>(FINETUNE_DATA_ID);
  add<'line', XY[]>('chart-ft-loss', {
    type: 'line',
    data: {
      datasets: D.loss.flatMap((p, i) => [
        {
          label: `${p.phase}: loss`,
          data: p.raw,
          borderColor: `${color(i)}55`,
          backgroundColor: `${color(i)}55`,
          pointRadius: 0,
          borderWidth: 1,
          yAxisID: 'y',
        },
        {
          label: `${p.phase}: running mean`,
          data: p.smooth,
          borderColor: color(i),
          backgroundColor: color(i),
          pointRadius: 0,
          borderWidth: 2,
          yAxisID: 'y',
        },
        {
          label: `${p.phase}: learning rate`,
          data: p.lr,
          borderColor: color(i),
          backgroundColor: color(i),
          borderDash: [4, 3],
          pointRadius: 0,
          borderWidth: 1,
          yAxisID: 'lr',
        },
      ]),
    },
    options: {
      parsing: false,
      scales: {
        x: axis('step', { type: 'linear' }),
        y: axis('training loss (cross-entropy)', { min: 0 }),
        lr: axis('learning rate', { position: 'right', min: 0, grid: { drawOnChartArea: false } }),
      },
      plugins: { legend: { labels: { boxWidth: 12 } } },
    },
  });
  add<'line', XY[]>('chart-ft-acc', {
    type: 'line',
    data: {
      datasets: D.accuracy.map((s, i) => ({
        label: s.label,
        data: s.data,
        borderColor: color(i),
        backgroundColor: color(i),
        pointRadius: 3,
        borderWidth: 2,
      })),
    },
    options: {
      parsing: false,
      scales: { x: axis('step', { type: 'linear' }), y: axis('accuracy %', { min: 0, max: 100 }) },
    },
  });
}
