// Hand-made summaries for the study tests: a summary.json with only what each test sets.

import type { StudyInput } from '../eval/study.js';
import type { Summary } from '../eval/summary-schema.js';

export function summary(
  o: Partial<Summary> & { finetune?: unknown; settings?: unknown; comparable?: unknown } = {},
): Summary {
  return {
    version: 1,
    model: 'resnet18',
    weights: 'random (seed 0)',
    data: 'built-in synthetic test set (1 per class)',
    preprocessing: {
      size: 224,
      resizeMode: 'short',
      cropPct: 0.875,
      interpolation: 'bilinear',
      mean: [0, 0, 0],
      std: [1, 1, 1],
    },
    created: '2026-01-01T00:00:00.000Z',
    shards: null,
    clean: null,
    corruptions: {},
    mce: null,
    relative_mce: null,
    sweeps: {},
    resolutions: {},
    unreadable: [],
    ...o,
  } as Summary;
}

export function clean(top1: number, ece: number): Summary['clean'] {
  return {
    n: 10,
    top1,
    top5: Math.min(1, top1 + 0.2),
    nll: 1,
    brier: 0.5,
    ece: { adaptive_100: ece, equal_width_15: ece + 0.01 },
    reliability: [],
  };
}

export const mce = (value: number, complete = true) => ({
  value,
  complete,
  missing: complete ? [] : ['fog'],
  per_corruption: {},
});

/** Four runs: two models, one of them at two weights; each lacks something. */
export function fourRuns(): StudyInput[] {
  return [
    {
      dir: 'runs/r18-random',
      summary: summary({
        clean: clean(0.1, 0.05),
        mce: mce(1.2, false),
        resolutions: { '160': { n: 10, top1: 0.1, top5: 0.3 }, '224': { n: 10, top1: 0.1, top5: 0.3 } },
      }),
      run: {
        model: 'resnet18',
        weights: 'random (seed 0)',
        weights_sha256: null,
        corruptions: ['gaussian_noise'],
        severities: [1, 2, 3, 4, 5],
        resolutions: [160],
        limit: 4,
        seed: 0,
      },
    },
    {
      dir: 'runs/mnv2-builtin',
      summary: summary({
        model: 'mobilenet_v2_synth',
        weights: 'mobilenet_v2_synth.safetensors',
        preprocessing: {
          size: 112,
          resizeMode: 'short',
          cropPct: 0.875,
          interpolation: 'bilinear',
          mean: [0, 0, 0],
          std: [1, 1, 1],
        },
        clean: clean(0.9, 0.03),
        mce: mce(0.6),
        relative_mce: mce(0.8),
        comparable: { imagenet_c: false, reasons: ['synthetic data'] },
        resolutions: {
          '96': { n: 10, top1: 0.8, top5: 1 },
          '64': { n: 10, top1: 0.5, top5: 0.9 },
          '112': { n: 10, top1: 0.9, top5: 1 },
        },
        sweeps: {
          size: { accuracy: { '0.5': 0.9, '0.1': 0.4 }, n: { '0.5': 10, '0.1': 10 }, mean: 0.65 },
          rotation: { accuracy: { '0.50@21': 0.8, '0.20@21': 0.6, '0.50@1': 1 }, n: {}, mean: 0.8 },
          location: { accuracy: { '0.50,0.50': 1, '0.25,0.50': 0.6, '0.50,0.25': 0.8 }, n: {}, mean: 0.8 },
        },
        transfer: {
          fewshot: { '5': { mean: 0.7, std: 0.01, per_seed: [0.7] }, '1': { mean: 0.4, std: 0.02, per_seed: [0.4] } },
          probe: { accuracy: 0.8, l2: 1 },
        },
      }),
      run: null,
    },
    {
      dir: 'other/mnv2-random',
      summary: summary({
        model: 'mobilenet_v2_synth',
        weights: 'random (seed 1)',
        clean: clean(0.12, 0.2),
        mce: mce(1.1),
        sweeps: { size: { accuracy: { '0.1': 0.1, '0.5': 0.12 }, n: {}, mean: 0.11 } },
        transfer: { fewshot: { '5': { mean: 0.3, std: 0.01, per_seed: [0.3] } } },
        finetune: { accuracy: 0.35 },
      }),
    },
    {
      dir: 'runs/transfer-only',
      summary: summary({
        model: 'mobilenet_v2_synth',
        weights: 'x.safetensors',
        transfer: { fewshot: { '5': { mean: 0.5, std: 0, per_seed: [0.5] } } },
      }),
    },
  ];
}
