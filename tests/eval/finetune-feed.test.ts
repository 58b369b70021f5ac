// The GPU training feed against the plain-TS references of each stage: preprocessRef (squash to
// the base size, normalise), augmentCropRef (boxes from the host draws), mixupRef; and the eval
// feed's padding.

import { describe, expect, it } from 'vitest';
import { datasetFromIndex, itemLocation } from '../../eval/data.js';
import { cropBoxes, mixupPairs } from '../../eval/finetune/augment.js';
import { mixTargets, oneHotTargets } from '../../eval/finetune/data.js';
import { imageEvalFeed, imageTrainFeed } from '../../eval/finetune/feed.js';
import type { Recipe } from '../../eval/finetune/schedule.js';
import { RRC_RATIO, RRC_SCALE, bitHyperRuleSchedule } from '../../eval/finetune/schedule.js';
import { augmentCropRef, mixupRef } from '../../kernels/augment.js';
import { preprocessRef } from '../../kernels/image.js';
import type { RgbImage } from '../../models/preprocess.js';
import type { Preprocess } from '../../models/registry.js';
import { expectClose, rand, testDevice } from '../helpers.js';

const sizes = [
  [17, 20],
  [9, 13],
  [23, 11],
  [15, 15],
  [12, 19],
] as const;
const images: RgbImage[] = sizes.map(([h, w], k) => ({
  width: w,
  height: h,
  data: Uint8Array.from(rand(h * w * 3, 40 + k, 0, 255), Math.round),
}));
const ds = datasetFromIndex(
  { classes: ['a', 'b', 'c'], items: images.map((_, k) => ({ path: `${'abc'[k % 3]}/${k}.png`, label: k % 3 })) },
  { root: 'mem' },
);
const byLocation = new Map(ds.items.map((it, k) => [itemLocation(ds, it.path), images[k]]));
const decode = async (loc: string) => {
  const img = byLocation.get(loc);
  if (!img) throw new Error(`no image at ${loc}`);
  return img;
};
const model: Preprocess = {
  size: 9,
  resizeMode: 'short',
  cropPct: 0.875,
  interpolation: 'bilinear',
  mean: [0.5, 0.4, 0.3],
  std: [0.2, 0.25, 0.3],
};
const TOL = { atol: 2e-4, rtol: 1e-4 };

function recipe(kind: 'crop' | 'rrc', mixupAlpha: number): Recipe {
  return {
    schedule: bitHyperRuleSchedule(100, { batch: 4, steps: 10 }),
    optimizer: { kind: 'sgd', momentum: 0.9, weightDecay: 0 },
    labelSmoothing: 0.1,
    mixupAlpha,
    flip: true,
    crop:
      kind === 'crop'
        ? { kind: 'crop', precrop: 11, size: 7 }
        : { kind: 'rrc', base: 13, size: 7, scale: RRC_SCALE, ratio: RRC_RATIO },
    zeroHead: true,
  };
}

/** The feed's output computed stage by stage in plain TS. */
function reference(r: Recipe, positions: number[], step: number, seed: number) {
  const P = r.crop.kind === 'crop' ? r.crop.precrop : r.crop.base;
  const attrs = { ...model, size: P, resizeMode: 'squash' as const, cropPct: 1, normalize: true };
  const base = new Float32Array(positions.length * P * P * 3);
  positions.forEach((p, i) => {
    const img = images[p];
    base.set(preprocessRef(Float32Array.from(img.data), img.height, img.width, attrs), i * P * P * 3);
  });
  const boxes = cropBoxes(r.crop, r.flip, P, P, seed, step, positions);
  let y = augmentCropRef({ shape: [positions.length, P, P, 3], data: base }, boxes, {
    height: r.crop.size,
    width: r.crop.size,
  });
  let t = oneHotTargets(
    positions.map((p) => p % 3),
    3,
    r.labelSmoothing,
  );
  if (r.mixupAlpha > 0) {
    const pairs = mixupPairs(r.mixupAlpha, positions.length, seed, step);
    y = mixupRef(y, pairs);
    t = mixTargets(t, 3, pairs);
  }
  return { y, t };
}

describe('image feeds on the GPU', () => {
  for (const [kind, alpha] of [
    ['crop', 0],
    ['rrc', 0.4],
  ] as const) {
    it(`train batch (${kind}, MixUp α = ${alpha}) matches the stage references`, async () => {
      const device = await testDevice();
      const r = recipe(kind, alpha);
      const feed = imageTrainFeed({ device, ds, decode, recipe: r, preprocess: model, classes: 3, seed: 5, batch: 4 });
      try {
        for (const [step, positions] of [
          [0, [4, 1, 0, 3]],
          [3, [2, 2, 4, 1]],
        ] as const) {
          const got = await feed.batch(step, positions);
          const want = reference(r, [...positions], step, 5);
          expectClose({ shape: want.y.shape, data: got.x }, want.y, TOL, `step ${step} images`);
          expect(Array.from(got.targets)).toEqual(Array.from(want.t));
        }
      } finally {
        feed.dispose();
      }
    });
  }

  it('eval batches are padded to the trainer batch and carry only the real labels', async () => {
    const device = await testDevice();
    const p = { ...model, size: 7 };
    const feed = imageEvalFeed({ split: 'test', device, ds, positions: [0, 1, 2, 3, 4], decode, preprocess: p });
    const got = [];
    for await (const b of feed.batches(3)) got.push(b);
    expect(got.map((b) => [b.x.length, Array.from(b.labels)])).toEqual([
      [3 * 147, [0, 1, 2]],
      [3 * 147, [0, 1]],
    ]);
    expect(got[1].x.subarray(2 * 147).every((v) => v === 0)).toBe(true);
    const img = images[3];
    expectClose(
      { shape: [147], data: got[1].x.slice(0, 147) },
      {
        shape: [147],
        data: preprocessRef(Float32Array.from(img.data), img.height, img.width, { ...p, normalize: true }),
      },
      TOL,
    );
  });
});
