// What a fine-tuning run trains on, in which order, against which targets (docs/finetune.md):
//
// - The pool is an ImageFolder (eval/data.ts: <root>/<class>/<image>, classes in sorted folder
//   order: labels 'sorted', so the new head's class k is the k-th folder).
// - Order: epoch e visits the pool in the permutation seededPermutation(0..n−1, seed, e,
//   SHUFFLE_STREAM); step s takes positions s·B … s·B+B−1 of the epochs laid end to end, so every
//   batch is full and the order is a function of (seed, step) alone: a resumed run sees the same
//   batches as an uninterrupted one.
// - Targets are probabilities [N, K]: one-hot, optionally smoothed ((1−ε)·onehot + ε/K), then
//   MixUp-mixed with the images' own pairs (kernels/augment.ts's mixupRef on the host).
// - --protocol vtab1k: VTAB-1k's 800 train / 200 val from a pool of 1000 (eval/transfer.ts's
//   vtab1kSplits) for the check run, then all 1000 for the refit.

import { mixupRef } from '../../kernels/augment.js';
import { seededPermutation, vtab1kSplits } from '../transfer.js';

const SHUFFLE_STREAM = 0xf1a200;

/** The last epoch orders made (a step reads one or two epochs; a large pool's permutation is not free). */
const epochCache = new Map<string, Int32Array>();

/** The visiting order of epoch `e` of a pool of `n` (shared with the cache: read it, do not change it). */
export function epochOrder(n: number, seed: number, e: number): Int32Array {
  const key = `${n}:${seed}:${e}`;
  let perm = epochCache.get(key);
  if (!perm) {
    perm = seededPermutation(
      Int32Array.from({ length: n }, (_, i) => i),
      seed,
      e,
      SHUFFLE_STREAM,
    );
    epochCache.set(key, perm);
    if (epochCache.size > 4) epochCache.delete(epochCache.keys().next().value!);
  }
  return perm;
}

/** Pool positions of step `step`'s batch of `batch` items from a pool of `n`. */
export function stepItems(n: number, batch: number, step: number, seed: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`the training pool is empty (n = ${n})`);
  const out: number[] = [];
  for (let p = step * batch; p < (step + 1) * batch; p++) out.push(epochOrder(n, seed, Math.floor(p / n))[p % n]);
  return out;
}

/** One-hot targets [N·K] for `labels`, smoothed with ε when given. */
export function oneHotTargets(labels: ArrayLike<number>, classes: number, smoothing = 0): Float32Array {
  if (!(smoothing >= 0 && smoothing < 1)) throw new RangeError(`label smoothing must be in [0, 1), got ${smoothing}`);
  const out = new Float32Array(labels.length * classes).fill(smoothing / classes);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= classes)
      throw new RangeError(`label ${l} of example ${i} does not fit ${classes} classes`);
    out[i * classes + l] += 1 - smoothing;
  }
  return out;
}

/** Targets mixed as the images are: row n becomes λ·t[n] + (1−λ)·t[partner]. */
export function mixTargets(targets: Float32Array, classes: number, pairs: Float32Array): Float32Array {
  return mixupRef({ shape: [targets.length / classes, classes], data: targets }, pairs).data;
}

/** The runs of a protocol: pool positions to train on and to check against. */
export interface PhasePlan {
  name: 'check' | 'refit' | 'train';
  train: number[];
  /** Pool positions evaluated as 'val' during and after the phase (the VTAB-1k 200). */
  val: number[];
}

/**
 * 'standard': one phase on the whole pool (val, when given, is its own folder). 'vtab1k': a check
 * phase on 800 with the 200 as val, then a refit on those 1000 (a smaller pool is an error unless
 * `allowFewer`, which splits it 80/20 and says so in `note`).
 */
export function protocolPhases(
  protocol: 'standard' | 'vtab1k',
  labels: ArrayLike<number>,
  seed: number,
  o: { allowFewer?: boolean } = {},
): { phases: PhasePlan[]; note?: string } {
  const n = labels.length;
  const all = Array.from({ length: n }, (_, i) => i);
  if (protocol === 'standard') return { phases: [{ name: 'train', train: all, val: [] }] };
  const sp = vtab1kSplits(n, labels, seed, { allowFewer: o.allowFewer });
  // A pool larger than 1000 contributes the 1000 the split chose, as VTAB's fixed slices.
  const thousand = [...sp.train, ...sp.val].sort((a, b) => a - b);
  return {
    phases: [
      { name: 'check', train: [...sp.train], val: [...sp.val] },
      { name: 'refit', train: thousand, val: [] },
    ],
    ...(sp.note ? { note: sp.note } : {}),
  };
}
