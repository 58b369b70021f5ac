// Fine-tuning recipes and their learning-rate schedules (docs/finetune.md), pure TS:
//
//   BiT-HyperRule  Kolesnikov et al. 2020 (Big Transfer), as google-research/big_transfer's
//                  bit_hyperrule.py encodes it: SGD with momentum 0.9, no weight decay, base lr
//                  0.003 at batch 512 (scaled linearly with the batch), linear warm-up from 0, the
//                  lr divided by 10 at each decay step; 500 / 10k / 20k steps for datasets of
//                  < 20k / < 500k / more examples; train crops 128 from a 160×160 resize for images
//                  under 96×96 px, else 384 from 448×448; random horizontal flip; MixUp α = 0.1 from
//                  20k examples on; a new zero-initialised head.
//   cosine         linear warm-up, then half a cosine from the base lr to 0 (ViT fine-tuning, as
//                  vit_jax does it: SGD momentum 0.9, no weight decay, gradients clipped at global
//                  norm 1, random-resized crop + flip).
//
// Steps count from 0. lr(s) is the rate of optimiser step s; a schedule of T steps runs s = 0..T−1.

/** BiT's schedule support points [warm-up end, decay 1, decay 2, decay 3, end] per dataset size. */
export const BIT_SUPPORTS = {
  small: [100, 200, 300, 400, 500],
  medium: [500, 3000, 6000, 9000, 10_000],
  large: [500, 6000, 12_000, 18_000, 20_000],
} as const;

/** BiT's base learning rate and the batch it is given for. */
export const BIT_BASE_LR = 0.003;
export const BIT_BASE_BATCH = 512;

export type ScheduleKind = 'bit-hyperrule' | 'cosine';
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ['bit-hyperrule', 'cosine'];

export interface Schedule {
  kind: ScheduleKind;
  /** Optimiser steps in all. */
  steps: number;
  /** Steps of the linear warm-up (lr rises from 0). */
  warmup: number;
  /** The peak learning rate, after batch scaling. */
  lr: number;
  /** Steps after which the lr is divided by 10 (staircase schedules; empty for cosine). */
  decays: number[];
}

/** The learning rate of step `s` (0-based). Throws outside 0..steps−1. */
export function learningRate(sc: Schedule, s: number): number {
  if (!Number.isInteger(s) || s < 0 || s >= sc.steps)
    throw new RangeError(`learning rate asked for step ${s} of a ${sc.steps}-step schedule (steps count from 0)`);
  if (s < sc.warmup) return (sc.lr * s) / sc.warmup;
  if (sc.kind === 'bit-hyperrule') {
    // bit_hyperrule.get_lr: one division by 10 per support point strictly below the step.
    let lr = sc.lr;
    for (const d of sc.decays) if (d < s) lr /= 10;
    return lr;
  }
  const span = sc.steps - sc.warmup;
  return span <= 0 ? sc.lr : 0.5 * sc.lr * (1 + Math.cos((Math.PI * (s - sc.warmup)) / span));
}

/** BiT's dataset-size class: < 20k, < 500k, larger. */
export function bitSizeClass(examples: number): keyof typeof BIT_SUPPORTS {
  if (!Number.isInteger(examples) || examples < 1)
    throw new RangeError(`dataset size must be a positive integer, got ${examples}`);
  return examples < 20_000 ? 'small' : examples < 500_000 ? 'medium' : 'large';
}

function checkBatch(batch: number): void {
  if (!Number.isInteger(batch) || batch < 1) throw new RangeError(`batch must be a positive integer, got ${batch}`);
}

/**
 * BiT-HyperRule's schedule for a dataset of `examples` training images at `batch`. `steps`
 * overrides the rule's length: the support points scale with it (rounded, each at least one
 * step after the last), so warm-up and decays keep their fractions of the run. `baseLr` is the
 * rate at batch 512 (default 0.003); the peak is baseLr·batch/512.
 */
export function bitHyperRuleSchedule(
  examples: number,
  o: { batch: number; steps?: number; baseLr?: number },
): Schedule {
  checkBatch(o.batch);
  const sup = BIT_SUPPORTS[bitSizeClass(examples)];
  const total = sup[sup.length - 1];
  const steps = o.steps ?? total;
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`steps must be a positive integer, got ${steps}`);
  const at = sup.slice(0, -1).map((p) => (steps === total ? p : Math.round((p * steps) / total)));
  return {
    kind: 'bit-hyperrule',
    steps,
    warmup: at[0],
    lr: ((o.baseLr ?? BIT_BASE_LR) * o.batch) / BIT_BASE_BATCH,
    decays: at.slice(1),
  };
}

/** Cosine decay to 0 after `warmup` linear warm-up steps (default 5% of the run, as vit_jax's 500 of 10k). */
export function cosineSchedule(o: { steps: number; batch: number; baseLr: number; warmup?: number }): Schedule {
  checkBatch(o.batch);
  if (!Number.isInteger(o.steps) || o.steps < 1)
    throw new RangeError(`steps must be a positive integer, got ${o.steps}`);
  const warmup = o.warmup ?? Math.round(0.05 * o.steps);
  if (!Number.isInteger(warmup) || warmup < 0 || warmup >= o.steps)
    throw new RangeError(`warm-up must be an integer in 0..${o.steps - 1}, got ${warmup}`);
  if (!(o.baseLr > 0)) throw new RangeError(`base learning rate must be positive, got ${o.baseLr}`);
  return { kind: 'cosine', steps: o.steps, warmup, lr: (o.baseLr * o.batch) / BIT_BASE_BATCH, decays: [] };
}

/** How training images become the network's input. */
export type TrainCrop =
  /** Squash to precrop×precrop, then a random size×size crop (BiT). */
  | { kind: 'crop'; precrop: number; size: number }
  /** Squash to base×base, then a random-resized crop (scale, ratio as torchvision) resized to size (ViT). */
  | { kind: 'rrc'; base: number; size: number; scale: [number, number]; ratio: [number, number] };

/** Everything a fine-tuning run needs besides the data: schedule, optimiser, augmentation. */
export interface Recipe {
  schedule: Schedule;
  optimizer: { kind: 'sgd'; momentum: number; nesterov?: boolean; weightDecay: number };
  clipNorm?: number;
  labelSmoothing: number;
  /** MixUp's Beta(α, α); 0: no MixUp. */
  mixupAlpha: number;
  flip: boolean;
  crop: TrainCrop;
  /** The new head starts at zero (BiT) rather than random. */
  zeroHead: boolean;
}

/** BiT's resolution rule: (160, 128) for images of area < 96², else (448, 384). */
export function bitResolution(height: number, width: number): { precrop: number; size: number } {
  return height * width < 96 * 96 ? { precrop: 160, size: 128 } : { precrop: 448, size: 384 };
}

/** BiT-HyperRule for `examples` training images whose typical size is height×width. */
export function bitHyperRule(
  examples: number,
  image: { height: number; width: number },
  o: { batch: number; steps?: number; baseLr?: number },
): Recipe {
  const r = bitResolution(image.height, image.width);
  return {
    schedule: bitHyperRuleSchedule(examples, o),
    optimizer: { kind: 'sgd', momentum: 0.9, weightDecay: 0 },
    labelSmoothing: 0,
    mixupAlpha: examples < 20_000 ? 0 : 0.1,
    flip: true,
    crop: { kind: 'crop', ...r },
    zeroHead: true,
  };
}

/** torchvision RandomResizedCrop's defaults. */
export const RRC_SCALE: [number, number] = [0.08, 1];
export const RRC_RATIO: [number, number] = [3 / 4, 4 / 3];

/** ViT-style fine-tuning: cosine with warm-up, SGD momentum 0.9, clipping at 1, random-resized crops. */
export function cosineRecipe(o: {
  steps: number;
  batch: number;
  baseLr?: number;
  warmup?: number;
  size: number;
  base: number;
}): Recipe {
  return {
    schedule: cosineSchedule({ steps: o.steps, batch: o.batch, baseLr: o.baseLr ?? 0.01, warmup: o.warmup }),
    optimizer: { kind: 'sgd', momentum: 0.9, weightDecay: 0 },
    clipNorm: 1,
    labelSmoothing: 0,
    mixupAlpha: 0,
    flip: true,
    crop: { kind: 'rrc', base: o.base, size: o.size, scale: RRC_SCALE, ratio: RRC_RATIO },
    zeroHead: true,
  };
}
