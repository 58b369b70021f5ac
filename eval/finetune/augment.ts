// The random choices of training augmentation (docs/finetune.md), drawn on the host from the
// counter-based hash of eval/rng.ts, so each depends only on its key and never on batching, the
// order of other draws or where a run was resumed:
//
//   crop box and flip of an image    rng(seed, image, CROP_STREAM + k, step), k = the draw's number
//   MixUp λ of a step                rng(seed, step, MIXUP_STREAM, k)
//   MixUp partners of a micro-batch  seededPermutation(0..N−1, seed, step, MIXUP_PERM_STREAM + 0x1000·micro)
//
// `image` is the item's position in the whole sorted training folder (eval/data.ts's `index`).
// The pixel work runs on the GPU (kernels/augment.ts): these functions make its `boxes` and
// `pairs` tensors.

import { BOX_FIELDS } from '../../kernels/augment.js';
import { rngNormal, rngU32, rngUniform } from '../rng.js';
import { seededPermutation } from '../transfer.js';
import type { TrainCrop } from './schedule.js';

// eval/rng.ts streams of this module (the corruptions use small numbers, eval/data.ts 0x11a17,
// eval/transfer.ts 0x5107 and 0x7ab1).
const CROP_STREAM = 0xf1a000; // + draw number, below 64
const MIXUP_STREAM = 0xf1a100;
const MIXUP_PERM_STREAM = 0xf1a101;

/** An integer in [0, m) from a u32 draw (⌊u·m/2³²⌋). */
const below = (u: number, m: number) => Math.floor((u * m) / 4294967296);

/** Python's round(): half to even (torchvision rounds crop sizes with it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The crop box of one image at one step in an image of h×w pixels: [top, left, height, width].
 * 'crop': a uniform position of a size×size window (torchvision RandomCrop; the image must be
 * at least that large). 'rrc': torchvision RandomResizedCrop.get_params: up to 10 tries of an
 * area fraction uniform in `scale` and a log-uniform aspect ratio in `ratio`, sides rounded half
 * to even; the first that fits is placed uniformly; if none fits, the central crop with the
 * ratio clamped into `ratio`.
 */
export function cropBox(
  c: TrainCrop,
  h: number,
  w: number,
  seed: number,
  step: number,
  image: number,
): [number, number, number, number] {
  let k = 0;
  const u32 = () => rngU32(seed >>> 0, image >>> 0, CROP_STREAM + k++, step >>> 0);
  const uniform = (lo: number, hi: number) =>
    lo + (hi - lo) * rngUniform(seed >>> 0, image >>> 0, CROP_STREAM + k++, step >>> 0);
  if (c.kind === 'crop') {
    if (h < c.size || w < c.size) throw new RangeError(`a ${c.size}×${c.size} crop does not fit a ${h}×${w} image`);
    const top = below(u32(), h - c.size + 1);
    return [top, below(u32(), w - c.size + 1), c.size, c.size];
  }
  const area = h * w;
  const [lr0, lr1] = [Math.log(c.ratio[0]), Math.log(c.ratio[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * uniform(c.scale[0], c.scale[1]);
    const aspect = Math.exp(uniform(lr0, lr1));
    const bw = roundHalfEven(Math.sqrt(target * aspect));
    const bh = roundHalfEven(Math.sqrt(target / aspect));
    if (bw > 0 && bw <= w && bh > 0 && bh <= h) {
      const top = below(u32(), h - bh + 1);
      return [top, below(u32(), w - bw + 1), bh, bw];
    }
  }
  const inRatio = w / h;
  let bw = w,
    bh = h;
  if (inRatio < Math.min(...c.ratio)) bh = roundHalfEven(bw / Math.min(...c.ratio));
  else if (inRatio > Math.max(...c.ratio)) bw = roundHalfEven(bh * Math.max(...c.ratio));
  return [Math.floor((h - bh) / 2), Math.floor((w - bw) / 2), bh, bw];
}

/** Whether the image is mirrored at this step (p = ½, torchvision RandomHorizontalFlip); draw 63. */
export function flipOf(seed: number, step: number, image: number): boolean {
  return rngUniform(seed >>> 0, image >>> 0, CROP_STREAM + 63, step >>> 0) < 0.5;
}

/** augment_crop's boxes [N, 5] for a batch of images (positions `images`) of h×w pixels. */
export function cropBoxes(
  c: TrainCrop,
  flip: boolean,
  h: number,
  w: number,
  seed: number,
  step: number,
  images: readonly number[],
): Float32Array {
  const out = new Float32Array(images.length * BOX_FIELDS);
  images.forEach((im, i) => {
    out.set([...cropBox(c, h, w, seed, step, im), flip && flipOf(seed, step, im) ? 1 : 0], i * BOX_FIELDS);
  });
  return out;
}

/** log of a Gamma(a, 1) draw: Marsaglia & Tsang (2000), with Gamma(a) = Gamma(a+1)·U^(1/a) for a < 1. */
function logGamma(a: number, draw: () => number, normal: () => number): number {
  if (a < 1) return logGamma(a + 1, draw, normal) + Math.log(Math.max(draw(), 1e-300)) / a;
  const d = a - 1 / 3,
    c = 1 / Math.sqrt(9 * d);
  for (let tries = 0; tries < 1000; tries++) {
    const x = normal();
    const v = (1 + c * x) ** 3;
    if (v <= 0) continue;
    const u = draw();
    if (Math.log(Math.max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * Math.log(v)) return Math.log(d * v);
  }
  throw new Error(`gamma sampler did not accept in 1000 tries (shape ${a})`);
}

/** MixUp's λ of a step: Beta(α, α) as X/(X+Y) of two Gamma(α) draws (in logs, so α ≪ 1 stays exact). */
export function mixupLambda(alpha: number, seed: number, step: number): number {
  if (!(alpha > 0)) throw new RangeError(`MixUp α must be positive, got ${alpha}`);
  let k = 0;
  const draw = () => rngUniform(seed >>> 0, step >>> 0, MIXUP_STREAM, k++);
  const normal = () => rngNormal(seed >>> 0, step >>> 0, MIXUP_STREAM, 1_000_000 + k++);
  const lx = logGamma(alpha, draw, normal),
    ly = logGamma(alpha, draw, normal);
  return 1 / (1 + Math.exp(ly - lx));
}

/**
 * The mixup op's pairs [N, 2] of a step's micro-batch `micro` (0 without accumulation): partner = a
 * seeded permutation of the micro-batch (as BiT's torch.randperm per micro-batch), λ the step's one
 * Beta(α, α) draw for every image of the step (BiT draws λ once per optimiser step).
 */
export function mixupPairs(alpha: number, n: number, seed: number, step: number, micro = 0): Float32Array {
  const lam = mixupLambda(alpha, seed, step);
  const perm = seededPermutation(
    Int32Array.from({ length: n }, (_, i) => i),
    seed,
    step,
    MIXUP_PERM_STREAM + 0x1000 * micro,
  );
  const out = new Float32Array(2 * n);
  for (let i = 0; i < n; i++) out.set([perm[i], lam], 2 * i);
  return out;
}
