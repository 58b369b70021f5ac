// Image sources for robustness runs: the built-in synthetic test set (no files at all), and
// the SI-Score sweeps as SweepImages, both labelled in the model's class space.

import type { ModelDef } from '../models/registry.js';
import type { RgbImage } from '../models/preprocess.js';
import { preprocessImage } from '../models/preprocess.js';
import type { Preprocess } from '../models/registry.js';
import { stratifiedSample } from './data.js';
import type { ImageSource, LabeledImage, SweepImage } from './robustness.js';
import {
  renderSynthImage,
  siScoreSweeps,
  SYNTH_CLASSES,
  SYNTH_TRAIN_CLASSES,
  type SweepName,
  type SynthSource,
} from './synth.js';

/** [0,1] crop of an image under `p` (without normalisation): preprocessImage with mean 0, std 1. */
export function cropOf(img: RgbImage, p: Preprocess): Float32Array {
  const chw = preprocessImage(img, { ...p, mean: [0, 0, 0], std: [1, 1, 1] });
  const s = p.size;
  const out = new Float32Array(s * s * 3);
  for (let c = 0; c < 3; c++) for (let i = 0; i < s * s; i++) out[i * 3 + c] = chw[c * s * s + i];
  return out;
}

/** The model's label for a synthetic class name; the model must know its class names. */
function labelFor(def: ModelDef, className: string): number {
  const i = def.classNames?.indexOf(className) ?? -1;
  if (i < 0) {
    throw new Error(
      `${def.name} has no class "${className}": synthetic images need a model trained on the synthetic classes ` +
        `(e.g. mobilenet_v2_synth), or give --data with your own labelled images`,
    );
  }
  return i;
}

/** The built-in synthetic test set: `perClass` test-split images of each train class, rendered at 224. */
export function synthTestSource(def: ModelDef, o: { perClass: number; seed: number; size?: number }): ImageSource {
  const size = o.size ?? 224;
  const items: (LabeledImage & { cls: number; k: number })[] = [];
  for (const cls of SYNTH_TRAIN_CLASSES) {
    const name = SYNTH_CLASSES[cls].name;
    for (let k = 0; k < o.perClass; k++)
      items.push({
        id: `${name}/test-${String(k).padStart(5, '0')}`,
        index: items.length,
        label: labelFor(def, name),
        cls,
        k,
      });
  }
  const byId = new Map(items.map((it) => [it.id, it]));
  return {
    items,
    async load(batch, p) {
      const crops = batch.map((it) => {
        const { cls, k } = byId.get(it.id)!;
        return cropOf(renderSynthImage(cls, k, { size, seed: o.seed, split: 'test' }), p);
      });
      return { crops, ok: batch, unreadable: [] };
    },
  };
}

/**
 * Synthetic images of any classes (indices into SYNTH_CLASSES), labelled by position in
 * `classes`: e.g. the held-out classes as a new task for few-shot transfer.
 */
export function synthClassSource(
  classes: readonly number[],
  o: { perClass: number; seed: number; split: 'train' | 'val' | 'test'; size?: number },
): ImageSource {
  const size = o.size ?? 224;
  const items: (LabeledImage & { cls: number; k: number })[] = [];
  classes.forEach((cls, label) => {
    for (let k = 0; k < o.perClass; k++)
      items.push({
        id: `${SYNTH_CLASSES[cls].name}/${o.split}-${String(k).padStart(5, '0')}`,
        index: items.length,
        label,
        cls,
        k,
      });
  });
  const byId = new Map(items.map((it) => [it.id, it]));
  return {
    items,
    async load(batch, p) {
      const crops = batch.map((it) => {
        const { cls, k } = byId.get(it.id)!;
        return cropOf(renderSynthImage(cls, k, { size, seed: o.seed, split: o.split }), p);
      });
      return { crops, ok: batch, unreadable: [] };
    },
  };
}

/** SI-Score sweep images as [0,1] crops at `size`, labelled for the model by class name. */
export function sweepImages(
  def: ModelDef,
  o: {
    sweeps: SweepName[];
    quick: boolean;
    seed: number;
    instancesPerClass: number;
    size: number;
    source?: SynthSource;
  },
): SweepImage[] {
  const names = o.source?.classNames ?? SYNTH_CLASSES.map((c) => c.name);
  const classes = names
    .map((n, i) => ({ n, i }))
    .filter(({ n }) => def.classNames?.includes(n) ?? false)
    .map(({ i }) => i);
  if (!classes.length) labelFor(def, names[0]);
  const out: SweepImage[] = [];
  const p: Preprocess = {
    size: o.size,
    resizeMode: 'squash',
    cropPct: 1,
    interpolation: 'bilinear',
    mean: [0, 0, 0],
    std: [1, 1, 1],
  };
  for (const item of siScoreSweeps({
    classes,
    instancesPerClass: o.instancesPerClass,
    seed: o.seed,
    sweeps: o.sweeps,
    quick: o.quick,
    size: o.size,
    source: o.source,
  })) {
    out.push({
      id: item.id,
      index: out.length,
      label: labelFor(def, item.className),
      sweep: item.sweep,
      factor: item.factor,
      crop: cropOf(item.image, p),
    });
  }
  return out;
}

/** An ImageFolder as a source, given how to decode a location; crops made on the GPU. */
export function datasetSource(
  device: import('../engine/device.js').Device,
  ds: import('./data.js').Dataset,
  items: import('./data.js').BatchItem[],
  decode: (location: string) => Promise<RgbImage>,
  data: {
    loadBatch: typeof import('./data.js').loadBatch;
    preprocessOnGpu: typeof import('./data.js').preprocessOnGpu;
  },
): ImageSource {
  return {
    items: items.map((it) => ({ id: it.id, index: it.index, label: it.label })),
    async load(batch, p) {
      const want = new Set(batch.map((b) => b.id));
      const loaded = await data.loadBatch(
        ds,
        items.filter((it) => want.has(it.id)),
        decode,
      );
      const n = p.size * p.size * 3;
      const flat = loaded.images.length
        ? await data.preprocessOnGpu(device, loaded.images, p, { normalize: false })
        : new Float32Array(0);
      const byId = new Map(batch.map((b) => [b.id, b]));
      return {
        crops: loaded.items.map((_, i) => flat.subarray(i * n, (i + 1) * n)),
        ok: loaded.items.map((it) => byId.get(it.id)!),
        unreadable: loaded.unreadable,
      };
    },
  };
}

/** The synthetic test set and sweeps of a run, limited and sharded as the run says. */
export function syntheticRunSources(
  def: ModelDef,
  o: {
    perClass: number;
    seed: number;
    sweeps: SweepName[];
    limit: number | null;
    shard: { k: number; n: number } | null;
    noTestSet?: boolean;
  },
): { source: ImageSource | null; sweeps: SweepImage[] } {
  let source: ImageSource | null = null;
  if (!o.noTestSet) {
    const s = synthTestSource(def, { perClass: o.perClass, seed: o.seed });
    let items = s.items;
    if (o.limit)
      items = stratifiedSample(
        items.map((it) => it.label),
        o.limit,
        o.seed,
      ).map((i) => items[i]);
    if (o.shard) items = items.filter((_, i) => i % o.shard!.n === o.shard!.k);
    source = { ...s, items };
  }
  const sweeps = o.sweeps.length
    ? sweepImages(def, { sweeps: o.sweeps, quick: true, seed: o.seed, instancesPerClass: 1, size: 224 }).filter(
        (s) => !o.shard || s.index % o.shard.n === o.shard.k,
      )
    : [];
  return { source, sweeps };
}
