// summary.json of a robustness (and transfer) run: the format is documented in the README.
// Accuracies are fractions in [0,1]; errors likewise; ECE says which binning it used.

import type { Preprocess } from '../models/registry.js';
import type { RunSettings } from './record-format.js';

export interface ConditionMetrics {
  n: number;
  top1: number;
  top5: number;
}

export interface CalibrationMetrics extends ConditionMetrics {
  nll: number;
  brier: number;
  ece: {
    /** 100 equal-mass bins, L1 (Minderer et al. 2021), top-label confidence. */
    adaptive_100: number;
    /** 15 equal-width bins, L1. */
    equal_width_15: number;
  };
  /** Reliability diagram data (15 equal-width bins): mean confidence, accuracy and count per bin (null when empty). */
  reliability: { conf: number | null; acc: number | null; count: number }[];
}

export interface MceSummary {
  value: number;
  complete: boolean;
  /** Standard corruptions missing, or present without all 5 severities. */
  missing: string[];
  per_corruption: Record<string, number>;
  /** Why `complete` is false (missing corruptions or severities, conditions over other images than clean's). */
  reasons?: string[];
}

export interface Summary {
  version: 1;
  model: string;
  weights: string;
  data: string;
  preprocessing: Preprocess;
  created: string;
  /** Shards merged into this summary (0-based), or null for a single run. */
  shards: { merged: number[]; of: number } | null;
  clean: CalibrationMetrics | null;
  /** Per corruption name, per severity '1'…'5': top-1 (and n). */
  corruptions: Record<string, Record<string, ConditionMetrics>>;
  /**
   * Mean CE over the 15 ImageNet-C corruptions, AlexNet-normalised; `complete` only when all 15 have
   * 5 severities, each over exactly clean's images; `reasons` says why not.
   */
  mce: MceSummary | null;
  relative_mce: MceSummary | null;
  /** SI-Score sweeps: accuracy per factor value ('0.37'; '0.25,0.50'; '0.50@21') and the sweep mean. */
  sweeps: Partial<
    Record<
      'size' | 'location' | 'rotation',
      { accuracy: Record<string, number>; n: Record<string, number>; mean: number }
    >
  >;
  /** Clean top-1 per test resolution. */
  resolutions: Record<string, ConditionMetrics>;
  unreadable: { id: string; error: string }[];
  /** The run's settings (its run.json; a merge's has shard null): weights SHA-256 and path, data key, limit, seed, protocol. */
  settings?: RunSettings;
  /** With --limit N: how many images per condition were asked for and how they were drawn from the data set. */
  limit?: { n: number; sampling: string } | null;
  /** Whether the numbers can be compared with published ImageNet-C results, and if not, why not. */
  comparable?: { imagenet_c: boolean; reasons: string[] };
  /** Transfer results, when a transfer run wrote into the same folder (a TransferSummary when well-formed). */
  transfer?: unknown;
  /** Fine-tuning results (`cnnlab finetune` into the same folder; a FinetuneSummary, eval/finetune/summary.ts). */
  finetune?: unknown;
}

/** Transfer results of the same backbone (eval/transfer writes them; `Summary.transfer` may hold one). */
export interface TransferSummary {
  /** Few-shot linear (ridge) accuracy per shots per class ('1', '5', '10', '25'): mean ± std over seeds. */
  fewshot?: Record<string, { mean: number; std: number; per_seed: number[] }>;
  /** Linear probe on the full training split. */
  probe?: { accuracy: number; l2: number };
  vtab1k?: { accuracy: number; l2?: number };
  /** Which features were used (e.g. 'pre-logits'). */
  features?: string;
}
