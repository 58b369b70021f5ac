// The fine-tune section of report.html: its tables, its chart series, escaping, results of an
// unknown form, and (with Chromium) the charts drawn in the page.

import { describe, expect, it } from 'vitest';
import { renderRobustnessReport } from '../../eval/report.js';
import type { FinetuneSummary } from '../../eval/finetune/summary.js';
import { bitHyperRuleSchedule } from '../../eval/finetune/schedule.js';
import type { Summary } from '../../eval/summary-schema.js';
import { FINETUNE_DATA_ID, finetuneCharts, finetuneSection } from '../../report/finetune.js';
import { chartJsSource, haveChromium, openReport } from '../report-harness.js';

const EVIL = '<script>window.__hacked=1</script>';

function ft(): FinetuneSummary {
  const sc = bitHyperRuleSchedule(1000, { batch: 64, steps: 2000 });
  const loss = Array.from({ length: 2000 }, (_, s) => 2 * Math.exp(-s / 400) + 0.1 * Math.sin(s));
  const lr = loss.map((_, s) => Math.min(s, 400) / 4e5);
  const check = {
    name: 'check' as const,
    examples: 800,
    steps: 2000,
    loss,
    lr,
    evals: [500, 1000, 2000].map((step, i) => ({ step, split: 'val' as const, accuracy: 0.5 + 0.1 * i, n: 200 })),
    final: { val: 0.7 },
    best: { split: 'val' as const, accuracy: 0.7, step: 2000 },
    checkpoint: 'checkpoints/check/final.safetensors',
    images_per_s: 12.5,
  };
  const refit = {
    ...check,
    name: 'refit' as const,
    examples: 1000,
    evals: [{ step: 2000, split: 'test' as const, accuracy: 0.81, n: 400 }],
    final: { test: 0.81 },
    best: { split: 'test' as const, accuracy: 0.81, step: 2000 },
    checkpoint: 'checkpoints/refit/final.safetensors',
  };
  const { schedule, ...recipe } = {
    schedule: sc,
    optimizer: { kind: 'sgd' as const, momentum: 0.9, weightDecay: 0 },
    labelSmoothing: 0,
    mixupAlpha: 0,
    flip: true,
    crop: { kind: 'crop' as const, precrop: 160, size: 128 },
    zeroHead: true,
  };
  return {
    model: 'mobilenet_v2_synth',
    weights: `w${EVIL}.safetensors`,
    train: 'data/train',
    val: '200 of data/train (VTAB-1k)',
    test: 'data/test',
    classes: ['a', 'b'],
    protocol: 'vtab1k',
    seed: 0,
    batch: 64,
    micro_batches: 1,
    schedule,
    recipe,
    steps: 2000,
    final: refit.final,
    best: refit.best,
    loss: refit.loss,
    phases: [check, refit],
    notes: [`note ${EVIL}`],
  };
}

const base = (): Summary => ({
  version: 1,
  model: 'mobilenet_v2_synth',
  weights: 'builtin',
  data: 'data/train',
  preprocessing: {
    size: 112,
    resizeMode: 'squash',
    cropPct: 1,
    interpolation: 'bilinear',
    mean: [0.5, 0.5, 0.5],
    std: [0.5, 0.5, 0.5],
  },
  created: '2026-12-02T00:00:00Z',
  shards: null,
  clean: null,
  corruptions: {},
  mce: null,
  relative_mce: null,
  sweeps: {},
  resolutions: {},
  unreadable: [],
});

describe('fine-tune report section', () => {
  it('chart series: losses thinned to ~600 points with the last step kept, accuracy per phase and split', () => {
    const c = finetuneCharts(ft());
    expect(c.loss.map((l) => l.phase)).toEqual(['check', 'refit']);
    expect(c.loss[0].raw.length).toBeLessThanOrEqual(601);
    expect(c.loss[0].raw.at(-1)!.x).toBe(1999);
    expect(c.loss[0].smooth[0].y).toBeCloseTo(2, 6);
    expect(c.accuracy.map((a) => [a.label, a.data.length])).toEqual([
      ['check: val', 3],
      ['refit: test', 1],
    ]);
    expect(c.accuracy[1].data[0]).toEqual({ x: 2000, y: 81 });
  });

  it('tables, beside the transfer results, escaped strings; unknown forms shown raw', () => {
    const s = finetuneSection(ft(), { fewshot: { '5': { mean: 0.6, std: 0.01, per_seed: [0.6] } } })!;
    expect(s.data?.id).toBe(FINETUNE_DATA_ID);
    expect(s.html).toContain('warm-up 400 steps, ÷10 after steps 800, 1200, 1600');
    expect(s.html).toMatch(/5-shot linear \(frozen\)<\/td><td class="num">60\.0%/);
    expect(s.html).toContain('60.0% ± 1.0 (1 draw)');
    expect(s.html).toMatch(/fine-tuned \(whole network\)<\/td><td class="num">81\.0%/);
    expect(s.html).toContain('70.0% (val, step 2000)');
    expect(s.html).not.toContain('<script>window.__hacked');
    const raw = finetuneSection({ steps: 3 })!;
    expect(raw.data).toBeUndefined();
    expect(raw.html).toContain('a form this report does not know');
    expect(finetuneSection(undefined)).toBeUndefined();
  });

  it.skipIf(!haveChromium)(
    'draws the loss and accuracy charts in the page, with no errors',
    async () => {
      const html = renderRobustnessReport({ ...base(), finetune: ft() }, { chartJs: chartJsSource() });
      const { errors, requests, result } = await openReport(html, () => {
        const w = window as unknown as {
          __charts: { canvas: HTMLCanvasElement; data: { datasets: unknown[] } }[];
          __hacked?: number;
        };
        return {
          ids: w.__charts.map((c) => c.canvas.id),
          datasets: w.__charts.map((c) => c.data.datasets.length),
          hacked: w.__hacked,
        };
      });
      expect(errors).toEqual([]);
      expect(requests).toEqual([]);
      expect(result.ids).toEqual(['chart-ft-loss', 'chart-ft-acc']);
      expect(result.datasets).toEqual([6, 2]);
      expect(result.hacked).toBeUndefined();
    },
    60_000,
  );
});
