// Images for fine-tuning, from an ImageFolder through the GPU (docs/finetune.md):
//
//   train   decode (sharp in Node) → image_preprocess: squash to the base size, normalise with the
//           model's mean/std (eval/data.ts preprocessOnGpu) → augment_crop (random crop or
//           random-resized crop, flip; boxes drawn per (seed, step, image) by augment.ts) → mixup
//           (pairs per step) → the trainer's NHWC input [N, S, S, 3]; targets [N, K] on the host
//   eval    decode → image_preprocess with the evaluation preprocessing → [N, S, S, 3], the last
//           batch padded with zeros to the trainer's batch (the padding rows are not scored)
//
// Cropping after normalising is the same as before it (a crop moves pixels; bilinear resampling
// is linear, and the normalisation is affine per channel with weights summing to 1).

import type { Device } from '../../engine/device.js';
import { compile, type Plan } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { BOX_FIELDS } from '../../kernels/augment.js';
import type { RgbImage } from '../../models/preprocess.js';
import type { Preprocess } from '../../models/registry.js';
import { type Dataset, itemLocation, loadBatch, preprocessOnGpu } from '../data.js';
import { cropBoxes, mixupPairs } from './augment.js';
import { mixTargets, oneHotTargets } from './data.js';
import type { EvalFeed, TrainFeed } from './run.js';
import type { Recipe } from './schedule.js';

export type Decode = (location: string) => Promise<RgbImage>;

/** Decode items of the dataset (by position); an unreadable training image is an error naming it. */
async function decodeItems(ds: Dataset, positions: readonly number[], decode: Decode) {
  const items = positions.map((p) => {
    const it = ds.items[p];
    if (!it) throw new RangeError(`dataset position ${p} is outside its ${ds.items.length} items`);
    return { id: it.path, path: itemLocation(ds, it.path), label: it.label, index: p };
  });
  const loaded = await loadBatch(ds, items, decode);
  if (loaded.unreadable.length)
    throw new Error(
      `unreadable images in ${ds.root}: ${loaded.unreadable
        .slice(0, 5)
        .map((u) => `${u.id} (${u.error})`)
        .join('; ')}${loaded.unreadable.length > 5 ? ` and ${loaded.unreadable.length - 5} more` : ''}`,
    );
  return loaded;
}

/** The base resize before the random crop: squash to a square, normalised as the model expects. */
export function basePreprocess(recipe: Recipe, model: Preprocess): Preprocess {
  const size = recipe.crop.kind === 'crop' ? recipe.crop.precrop : recipe.crop.base;
  return { ...model, size, resizeMode: 'squash', cropPct: 1 };
}

/** The evaluation preprocessing: BiT squashes to the crop size; otherwise the model's own at that size. */
export function evalPreprocess(recipe: Recipe, model: Preprocess): Preprocess {
  const size = recipe.crop.size;
  return recipe.crop.kind === 'crop' ? { ...model, size, resizeMode: 'squash', cropPct: 1 } : { ...model, size };
}

export interface ImageTrainFeed extends TrainFeed {
  dispose(): void;
}

export function imageTrainFeed(o: {
  device: Device;
  ds: Dataset;
  decode: Decode;
  recipe: Recipe;
  preprocess: Preprocess;
  classes: number;
  seed: number;
  batch: number;
}): ImageTrainFeed {
  const { recipe: r, batch: N } = o;
  const base = basePreprocess(r, o.preprocess);
  const P = base.size,
    S = r.crop.size;
  const out = r.mixupAlpha > 0 ? 'mixup' : 'crop';
  let plan: Promise<Plan> | undefined;
  const planFor = () => {
    if (!plan) {
      const g = new Graph();
      g.input('x', [N, P, P, 3]);
      g.input('boxes', [N, BOX_FIELDS]);
      let y = g.op('augment_crop', ['x', 'boxes'], { height: S, width: S }, 'crop');
      if (r.mixupAlpha > 0) {
        g.input('pairs', [N, 2]);
        y = g.op('mixup', [y, 'pairs'], {}, 'mixup');
      }
      g.markOutputs(y);
      plan = compile(o.device, g);
    }
    return plan;
  };
  return {
    async batch(step, positions, micro = 0) {
      if (positions.length !== N) throw new RangeError(`a training batch has ${positions.length} items, not ${N}`);
      const loaded = await decodeItems(o.ds, positions, o.decode);
      const x = await preprocessOnGpu(o.device, loaded.images, base, { normalize: true });
      const feed: Record<string, Float32Array> = {
        x,
        boxes: cropBoxes(r.crop, r.flip, P, P, o.seed, step, positions),
      };
      let targets = oneHotTargets(
        loaded.items.map((it) => it.label),
        o.classes,
        r.labelSmoothing,
      );
      if (r.mixupAlpha > 0) {
        feed.pairs = mixupPairs(r.mixupAlpha, N, o.seed, step, micro);
        targets = mixTargets(targets, o.classes, feed.pairs);
      }
      const p = await planFor();
      const { outputs } = await p.run(feed);
      return { x: outputs[out].data, targets };
    },
    dispose() {
      plan?.then(
        (p) => p.dispose(),
        () => undefined,
      );
    },
  };
}

/** A split for evaluation: `positions` of `ds`, preprocessed for evaluation, in batches padded to `batch`. */
export function imageEvalFeed(o: {
  split: 'val' | 'test';
  device: Device;
  ds: Dataset;
  positions: readonly number[];
  decode: Decode;
  preprocess: Preprocess;
}): EvalFeed {
  return {
    split: o.split,
    async *batches(batch) {
      const per = o.preprocess.size * o.preprocess.size * 3;
      for (let i = 0; i < o.positions.length; i += batch) {
        const chunk = o.positions.slice(i, i + batch);
        const loaded = await decodeItems(o.ds, chunk, o.decode);
        const x = new Float32Array(batch * per);
        x.set(await preprocessOnGpu(o.device, loaded.images, o.preprocess, { normalize: true }));
        yield { x, labels: loaded.items.map((it) => it.label) };
      }
    },
  };
}
