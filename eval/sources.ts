// Image sources for robustness runs: the built-in synthetic test set (no files at all), and
// the SI-Score sweeps as SweepImages, both labelled in the model's class space.

import type { ModelDef } from '../models/registry.js';
import type { RgbImage } from '../models/preprocess.js';
import { preprocessImage } from '../models/preprocess.js';
import type { Preprocess } from '../models/registry.js';
import { type Dataset, itemLocation, stratifiedSample } from './data.js';
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

/** The side synthetic images are rendered at before the model's preprocessing. */
export const SYNTH_RENDER_SIZE = 224;

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

/** Image `k` of synthetic class `cls` (an index into SYNTH_CLASSES) in a split, labelled `label`. */
export interface SynthClassItem extends LabeledImage {
  cls: number;
  k: number;
}

/**
 * The items of `perClass` images of each of `classes` (indices into SYNTH_CLASSES) in a split,
 * labelled by position in `classes`, ids `<class name>/<split>-<k>`: what synthClassSource (transfer's
 * features) and synthClassDataset (fine-tuning's images) both read.
 */
export function synthClassItems(
  classes: readonly number[],
  o: { perClass: number; split: 'train' | 'val' | 'test' },
): SynthClassItem[] {
  const items: SynthClassItem[] = [];
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
  return items;
}

/**
 * Synthetic images of any classes (indices into SYNTH_CLASSES), labelled by position in
 * `classes`: e.g. the held-out classes as a new task for few-shot transfer.
 */
export function synthClassSource(
  classes: readonly number[],
  o: { perClass: number; seed: number; split: 'train' | 'val' | 'test'; size?: number },
): ImageSource {
  const size = o.size ?? SYNTH_RENDER_SIZE;
  const items = synthClassItems(classes, o);
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

/**
 * The same images as synthClassSource, as a Dataset (one class per entry of `classes`, in that
 * order, labels from that order) with the decoder that renders an item from its location: an
 * ImageFolder without files, for what reads Datasets (fine-tuning). The root names the split and
 * seed; a location outside the set is an error. With `keep`, each image is rendered once and kept
 * (a render costs tens of ms; a 224² image 150 kB): for a small set read many times, as training does.
 */
export function synthClassDataset(
  classes: readonly number[],
  o: { perClass: number; seed: number; split: 'train' | 'val' | 'test'; size?: number; keep?: boolean },
): { ds: Dataset; decode: (location: string) => Promise<RgbImage> } {
  const size = o.size ?? SYNTH_RENDER_SIZE;
  const items = synthClassItems(classes, o);
  const ds: Dataset = {
    root: `synthetic:${o.split}-seed${o.seed}`,
    source: 'folder',
    classes: classes.map((c) => SYNTH_CLASSES[c].name),
    items: items.map((it) => ({ path: it.id, label: it.label, classFolder: SYNTH_CLASSES[it.cls].name })),
    labelSource: 'map',
  };
  const byLocation = new Map(items.map((it) => [itemLocation(ds, it.id), it]));
  const kept = new Map<string, RgbImage>();
  return {
    ds,
    async decode(location) {
      const it = byLocation.get(location);
      if (!it) throw new Error(`${location} is not an image of the synthetic set ${ds.root}`);
      let img = kept.get(location);
      if (!img) {
        img = renderSynthImage(it.cls, it.k, { size, seed: o.seed, split: o.split });
        if (o.keep) kept.set(location, img);
      }
      return img;
    },
  };
}

/** Test images per class of the held-out synthetic task (transfer's and fine-tuning's default test split). */
export const SYNTH_HELDOUT_TEST_PER_CLASS = 20;

/** The cache and data key of `perClass` held-out synthetic images of a split at a seed. */
export function synthHeldoutKey(split: 'train' | 'test', perClass: number, seed: number): string {
  return `synthetic held-out ${split} ${perClass} seed ${seed}`;
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
