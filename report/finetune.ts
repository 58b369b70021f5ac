// The fine-tune section of the run report (report/robustness.ts places it after transfer): the
// recipe, a table of the phases (steps, final and best accuracy), the loss and accuracy curves
// (drawn by report/charts/finetune.ts from the series made here), and the fine-tuned accuracy
// beside the frozen-feature transfer results of the same run folder (few-shot, probe, VTAB-1k).
// Every string from the JSON goes through escapeHtml; a missing number reads '—'.

import type { TransferSummary } from '../eval/summary-schema.js';
import type { FinetuneSummary } from '../eval/finetune/summary.js';
import { FINETUNE_DATA_ID, type FinetuneCharts, type XY } from './charts/finetune.js';
import { DASH, isNum, numericKeys, pct } from './format.js';
import { escapeHtml } from './html.js';
import { dl, figure } from './page.js';

export { FINETUNE_DATA_ID } from './charts/finetune.js';

/** At most ~`max` points: every k-th step (the last one always kept). */
function thin(ys: readonly number[], max = 600): XY[] {
  const every = Math.max(1, Math.ceil(ys.length / max));
  const out: XY[] = [];
  for (let i = 0; i < ys.length; i++)
    if (i % every === 0 || i === ys.length - 1) out.push({ x: i, y: isNum(ys[i]) ? ys[i] : null });
  return out;
}

/** Running mean over a window of ~2% of the steps (at least 1). */
function runningMean(ys: readonly number[]): number[] {
  const w = Math.max(1, Math.round(ys.length / 50));
  const out: number[] = [];
  let sum = 0;
  for (let i = 0; i < ys.length; i++) {
    sum += ys[i];
    if (i >= w) sum -= ys[i - w];
    out.push(sum / Math.min(i + 1, w));
  }
  return out;
}

/** A well-formed FinetuneSummary, or undefined (summary.json comes through JSON from any writer). */
export function asFinetuneSummary(v: unknown): FinetuneSummary | undefined {
  const f = v as FinetuneSummary | undefined;
  if (!f || typeof f !== 'object' || !Array.isArray(f.phases) || !Array.isArray(f.loss)) return undefined;
  if (!f.phases.every((p) => p && Array.isArray(p.loss) && Array.isArray(p.evals))) return undefined;
  if (!f.recipe || !f.schedule || !Array.isArray(f.classes) || !Array.isArray(f.notes)) return undefined;
  return f;
}

export function finetuneCharts(f: FinetuneSummary): FinetuneCharts {
  return {
    loss: f.phases.map((p) => ({
      phase: p.name,
      raw: thin(p.loss),
      smooth: thin(runningMean(p.loss)),
      lr: thin(p.lr),
    })),
    accuracy: f.phases.flatMap((p) =>
      (['val', 'test'] as const)
        .map((split) => ({
          label: `${p.name}: ${split}`,
          data: p.evals.filter((e) => e.split === split).map((e) => ({ x: e.step, y: 100 * e.accuracy })),
        }))
        .filter((s) => s.data.length > 0),
    ),
  };
}

function recipeRows(f: FinetuneSummary): [string, string][] {
  const r = f.recipe,
    sc = f.schedule;
  const crop =
    r.crop.kind === 'crop'
      ? `squash to ${r.crop.precrop}×${r.crop.precrop}, random ${r.crop.size}×${r.crop.size} crop`
      : `squash to ${r.crop.base}×${r.crop.base}, random-resized crop to ${r.crop.size}×${r.crop.size} (scale ${r.crop.scale.join('–')}, ratio ${r.crop.ratio.map((x) => x.toFixed(2)).join('–')})`;
  const lrText =
    sc.kind === 'bit-hyperrule'
      ? `BiT-HyperRule: peak ${sc.lr.toPrecision(3)}, warm-up ${sc.warmup} steps, ÷10 after steps ${sc.decays.join(', ')}`
      : `cosine: peak ${sc.lr.toPrecision(3)}, warm-up ${sc.warmup} steps, to 0 at step ${sc.steps}`;
  return [
    ['model', escapeHtml(f.model)],
    ['weights', `<code>${escapeHtml(f.weights)}</code>`],
    ['train', `<code>${escapeHtml(f.train)}</code> (${f.classes.length} classes)`],
    ['val', f.val ? `<code>${escapeHtml(f.val)}</code>` : DASH],
    ['test', f.test ? `<code>${escapeHtml(f.test)}</code>` : DASH],
    ['protocol', escapeHtml(f.protocol)],
    ['schedule', escapeHtml(lrText)],
    [
      'optimiser',
      escapeHtml(
        `SGD, momentum ${r.optimizer.momentum}, weight decay ${r.optimizer.weightDecay}${r.clipNorm ? `, clip at global norm ${r.clipNorm}` : ''}`,
      ),
    ],
    [
      'batch · seed',
      escapeHtml(`${f.batch}${f.micro_batches > 1 ? ` × ${f.micro_batches} micro-batches` : ''} · ${f.seed}`),
    ],
    [
      'augmentation',
      escapeHtml(
        `${crop}${r.flip ? ', horizontal flip' : ''}${r.mixupAlpha > 0 ? `, MixUp α = ${r.mixupAlpha}` : ''}${r.labelSmoothing > 0 ? `, label smoothing ${r.labelSmoothing}` : ''}`,
      ),
    ],
    ['head', r.zeroHead ? 'new, zero-initialised' : 'new, random'],
  ];
}

function phasesTable(f: FinetuneSummary): string {
  const rows = f.phases.map(
    (p) =>
      `<tr><td>${escapeHtml(p.name)}</td><td class="num">${escapeHtml(p.examples)}</td><td class="num">${escapeHtml(p.steps)}</td>` +
      `<td class="num">${isNum(p.loss[p.loss.length - 1]) ? p.loss[p.loss.length - 1].toFixed(3) : DASH}</td>` +
      `<td class="num">${pct(p.final.val)}</td><td class="num">${pct(p.final.test)}</td>` +
      `<td class="num">${p.best ? `${pct(p.best.accuracy)} (${escapeHtml(p.best.split)}, step ${escapeHtml(p.best.step)})` : DASH}</td>` +
      `<td class="num">${isNum(p.images_per_s) ? p.images_per_s.toFixed(1) : DASH}</td>` +
      `<td class="mono">${p.checkpoint ? escapeHtml(p.checkpoint) : DASH}</td></tr>`,
  );
  return `<table class="finetune"><caption>Each phase trains a fresh copy of the pre-trained network with a new head; VTAB-1k checks the schedule on 800/200, then refits on all 1000.</caption>
<thead><tr><th>phase</th><th>examples</th><th>steps</th><th>last loss</th><th>val</th><th>test</th><th>best</th><th>images/s</th><th>checkpoint</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`;
}

/** Fine-tuned test accuracy beside the frozen-feature results of the same folder. */
function besideTransfer(f: FinetuneSummary, t: TransferSummary | undefined): string {
  const rows: [string, string][] = [['fine-tuned (whole network)', pct(f.final.test)]];
  if (t) {
    for (const k of numericKeys(Object.keys(t.fewshot ?? {}))) {
      const r = t.fewshot![k];
      const spread =
        isNum(r.std) && Array.isArray(r.per_seed)
          ? ` ± ${(100 * r.std).toFixed(1)} (${r.per_seed.length} draw${r.per_seed.length === 1 ? '' : 's'})`
          : '';
      rows.push([`${k}-shot linear (frozen)`, `${pct(r.mean)}${spread}`]);
    }
    if (t.probe) rows.push(['linear probe (frozen)', pct(t.probe.accuracy)]);
    if (t.vtab1k) rows.push(['VTAB-1k linear probe (frozen)', pct(t.vtab1k.accuracy)]);
  }
  return `<table class="ft-vs"><caption>Test accuracy: fine-tuning beside linear transfer on frozen features${t ? '' : ' (no transfer results in this folder yet)'}. k-shot: mean ± standard deviation over seeded draws of k training images per class; fine-tuning trains on every training image (${escapeHtml(f.phases[f.phases.length - 1]?.examples ?? DASH)}).</caption>
<thead><tr><th>method</th><th>test accuracy</th></tr></thead>
<tbody>${rows.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td class="num">${v}</td></tr>`).join('')}</tbody></table>`;
}

export interface FinetuneSection {
  html: string;
  data: { id: string; value: FinetuneCharts };
}

/**
 * The section and its chart data; undefined without fine-tune results. Results in a form this
 * report does not know are shown as they are, without charts.
 */
export function finetuneSection(
  raw: unknown,
  transfer?: TransferSummary,
): FinetuneSection | { html: string; data?: undefined } | undefined {
  if (raw === undefined || raw === null) return undefined;
  const f = asFinetuneSummary(raw);
  if (!f) {
    return {
      html: `<section class="finetune"><h2>Fine-tuning</h2><p>Fine-tuning results in a form this report does not know:</p><pre class="raw">${escapeHtml(JSON.stringify(raw, null, 2))}</pre></section>`,
    };
  }
  const notes = f.notes.length
    ? `<ul class="notes">${f.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>`
    : '';
  const html = `<section class="finetune"><h2>Fine-tuning</h2>
<div class="cards"><section>${dl(recipeRows(f))}</section><section>${besideTransfer(f, transfer)}</section></div>
${phasesTable(f)}
<div class="charts">${figure('chart-ft-loss', 'Fine-tuning: training loss and learning rate per step', 320)}${figure('chart-ft-acc', 'Fine-tuning: accuracy vs step', 320)}</div>
${notes}</section>`;
  return { html, data: { id: FINETUNE_DATA_ID, value: finetuneCharts(f) } };
}
