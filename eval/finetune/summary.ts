// summary.json's `finetune` entry (docs/finetune.md): what a `cnnlab finetune` run did and what it
// reached. Accuracies are fractions in [0,1]; curves are per step (index = step).

import type { EvalPoint } from './checkpoint.js';
import type { Recipe, Schedule } from './schedule.js';

export interface FinetuneAccuracy {
  val?: number;
  test?: number;
}

export interface FinetunePhaseSummary {
  /** 'train' (one run), or VTAB-1k's 'check' (800 / 200) and 'refit' (1000). */
  name: 'train' | 'check' | 'refit';
  examples: number;
  steps: number;
  loss: number[];
  lr: number[];
  evals: EvalPoint[];
  /** Accuracy after the last step. */
  final: FinetuneAccuracy;
  /** The highest val accuracy seen (else test), and when. */
  best: { split: 'val' | 'test'; accuracy: number; step: number } | null;
  /** The final weights file, relative to the run folder. */
  checkpoint: string | null;
  /** Training examples per second in the last process that ran this phase (null when it ran no step). */
  images_per_s: number | null;
}

export interface FinetuneSummary {
  model: string;
  weights: string;
  train: string;
  val: string | null;
  test: string | null;
  /** The new head's classes (training folder names, sorted). */
  classes: string[];
  protocol: 'standard' | 'vtab1k';
  seed: number;
  /** The trainer's batch; an optimiser step sees batch × micro_batches examples. */
  batch: number;
  micro_batches: number;
  schedule: Schedule;
  recipe: Omit<Recipe, 'schedule'>;
  /** The result phase's (the last one's) steps, accuracies and loss curve. */
  steps: number;
  final: FinetuneAccuracy;
  best: FinetunePhaseSummary['best'];
  loss: number[];
  phases: FinetunePhaseSummary[];
  notes: string[];
}

/** Best val accuracy (test when no val was evaluated), first reached. */
export function bestOf(evals: readonly EvalPoint[]): FinetunePhaseSummary['best'] {
  const split = evals.some((e) => e.split === 'val') ? 'val' : 'test';
  let best: FinetunePhaseSummary['best'] = null;
  for (const e of evals)
    if (e.split === split && (!best || e.accuracy > best.accuracy))
      best = { split, accuracy: e.accuracy, step: e.step };
  return best;
}

/** Accuracies at the last step. */
export function finalOf(evals: readonly EvalPoint[], steps: number): FinetuneAccuracy {
  const out: FinetuneAccuracy = {};
  for (const e of evals) if (e.step === steps) out[e.split] = e.accuracy;
  return out;
}
