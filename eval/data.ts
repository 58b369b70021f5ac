// Image datasets for evaluation runs: ImageFolder layouts (root/<class>/<image>, as torchvision),
// their labels, deterministic streaming in batches (sharding, limits, resume), decoding that
// survives unreadable files, and batched GPU preprocessing.
//
// Node lists a folder (scanImageFolder) and can write it as a JSON index (buildIndex); the page
// gets that index from the CLI's server, which also serves the folder, and rebuilds the same
// Dataset (datasetFromIndex), so Node and the browser batch, shard and skip identically.
//
// Orders and labels:
// - Class folders and files are sorted by UTF-16 code units (Python's sorted() on these names,
//   torchvision's ImageFolder order, except for characters outside the BMP). Files are found
//   recursively inside a class folder, as ImageFolder does; hidden entries (".name") are skipped.
// - Labels, first match wins: an explicit labelMap (folder → index); else, when every folder is an
//   ImageNet-1k wnid (n01440764 …), the ImageNet-1k index (so ImageNet-V2/-A/-R/-C folders with any
//   subset of classes score against a 1000-way head); else the sorted folder order, as ImageFolder.
//   `labels: 'sorted'` forces the last (a model fine-tuned with ImageFolder on a wnid subset).
// - Item ids are relative paths with '/' separators; `index` is an item's position in the whole
//   sorted dataset, stable under limit, shard and skip (the corruptions' per-image randomness).

import type { Device } from '../engine/device.js';
import { type Plan, compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import type { ImagePreprocessAttrs } from '../kernels/image.js';
import { canonicalJson } from '../kernels/kernel.js';
import type { RgbImage } from '../models/preprocess.js';
import type { Preprocess } from '../models/registry.js';
import { imagenetClassIndex } from './imagenet-synsets.js';
import { rngU32 } from './rng.js';

export class DatasetError extends Error {
  override name = 'DatasetError';
}

export type LabelSource = 'imagenet-synsets' | 'sorted' | 'map';

export interface DatasetItem {
  /** Relative to the root, '/' separators; also the item's id. */
  path: string;
  label: number;
  classFolder: string;
}

export interface Dataset {
  /** An absolute folder (Node) or the URL prefix the folder is served under (browser). */
  root: string;
  source: 'folder' | 'url';
  /** Class folder names, sorted. With labelSource 'imagenet-synsets' or 'map', classes[i] is not
   *  label i: each item carries its label. */
  classes: string[];
  /** Sorted by class folder, then by path. */
  items: DatasetItem[];
  labelSource: LabelSource;
}

export interface LabelOptions {
  /** Folder name → class index. Must cover every folder. */
  labelMap?: Record<string, number>;
  /** The model head's class count: a label ≥ this is an error (a mislabelled dataset). */
  classes?: number;
  /** 'auto' (default): labelMap, else ImageNet wnids, else sorted. 'sorted': ignore wnids. */
  labels?: 'auto' | 'sorted';
}

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;
const IMAGE_RE = /\.(jpe?g|png|webp)$/i;

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** At most `n` names, then how many more. */
function listSome(names: string[], n = 10): string {
  return names.slice(0, n).join(', ') + (names.length > n ? ` and ${names.length - n} more` : '');
}

// ---- labels -------------------------------------------------------------------------------------

/** Label of each class folder (in `classes` order) and where the labels came from. */
export function assignLabels(classes: string[], o: LabelOptions = {}): { labels: number[]; labelSource: LabelSource } {
  let labels: number[];
  let labelSource: LabelSource;
  const labelMap = o.labelMap;
  if (labelMap) {
    const missing = classes.filter((c) => !Object.hasOwn(labelMap, c));
    if (missing.length)
      throw new DatasetError(`the label map has no label for ${missing.length} class folder(s): ${listSome(missing)}`);
    labels = classes.map((c) => labelMap[c]);
    const bad = classes.filter((_, i) => !Number.isInteger(labels[i]) || labels[i] < 0);
    if (bad.length)
      throw new DatasetError(
        `the label map gives folder(s) ${listSome(bad)} a label that is not a non-negative integer`,
      );
    labelSource = 'map';
  } else if (o.labels !== 'sorted' && classes.every((c) => imagenetClassIndex(c) !== undefined)) {
    labels = classes.map((c) => imagenetClassIndex(c)!);
    labelSource = 'imagenet-synsets';
  } else {
    labels = classes.map((_, i) => i);
    labelSource = 'sorted';
  }
  if (o.classes !== undefined) {
    const bad = classes.map((c, i) => ({ c, l: labels[i] })).filter(({ l }) => l >= o.classes!);
    if (bad.length) {
      const hint =
        labelSource === 'imagenet-synsets'
          ? `; the folders are ImageNet-1k wnids, labelled by the ImageNet-1k index: for a head trained on these folders in sorted order use labels: 'sorted', or give a label map`
          : labelSource === 'sorted'
            ? `; the dataset has ${classes.length} class folders`
            : '';
      throw new DatasetError(
        `mislabelled dataset: folder ${bad[0].c} maps to label ${bad[0].l} but the model has ${o.classes} classes` +
          (bad.length > 1 ? ` (${bad.length - 1} more folder(s) too: ${listSome(bad.slice(1).map((b) => b.c))})` : '') +
          hint,
      );
    }
  }
  return { labels, labelSource };
}

// ---- scanning a folder (Node) -----------------------------------------------------------------

/**
 * List an ImageFolder dataset: one sub-folder per class, images (.jpg .jpeg .png .webp, any
 * case) anywhere below it. Throws DatasetError for a missing folder, no class folders, class
 * folders without images (all listed), a label map missing folders, or labels ≥ o.classes.
 */
export async function scanImageFolder(dir: string, o: LabelOptions = {}): Promise<Dataset> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const root = path.resolve(dir);
  const isDir = async (p: string) => (await fs.stat(p).catch(() => null))?.isDirectory() ?? false;
  if (!(await fs.stat(root).catch(() => null))) throw new DatasetError(`dataset folder ${dir} does not exist`);
  if (!(await isDir(root)))
    throw new DatasetError(`dataset path ${dir} is not a folder (expected one sub-folder per class)`);

  // Directories, following symbolic links as ImageFolder does.
  const subdirs = async (rel: string): Promise<{ dirs: string[]; files: string[] }> => {
    const entries = await fs.readdir(path.join(root, rel), { withFileTypes: true });
    const dirs: string[] = [],
      files: string[] = [];
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      const d = e.isDirectory() || (e.isSymbolicLink() && (await isDir(path.join(root, r))));
      if (d) dirs.push(r);
      else if (IMAGE_RE.test(e.name)) files.push(r);
    }
    return { dirs, files };
  };
  const walk = async (rel: string, depth: number): Promise<string[]> => {
    if (depth > 32)
      throw new DatasetError(`${path.join(root, rel)}: folders nested over 32 deep (a symbolic-link loop?)`);
    const { dirs, files } = await subdirs(rel);
    const nested = await Promise.all(dirs.map((d) => walk(d, depth + 1)));
    return files.concat(...nested);
  };

  const classes = (await subdirs('')).dirs.sort(byCodeUnits);
  if (!classes.length) {
    throw new DatasetError(
      `dataset folder ${dir} has no class folders: the layout is one sub-folder per class, <root>/<class>/<image>`,
    );
  }
  const files = await Promise.all(classes.map(async (c) => (await walk(c, 0)).sort(byCodeUnits)));
  const empty = classes.filter((_, i) => !files[i].length);
  if (empty.length) {
    throw new DatasetError(
      `${empty.length} class folder(s) in ${dir} have no images (${IMAGE_EXTENSIONS.join(', ')}): ${listSome(empty, 20)}`,
    );
  }
  const { labels, labelSource } = assignLabels(classes, o);
  const items = classes.flatMap((c, i) => files[i].map((p) => ({ path: p, label: labels[i], classFolder: c })));
  return { root, source: 'folder', classes, items, labelSource };
}

// ---- the JSON index (Node writes it, the page reads it) ----------------------------------------

export interface DatasetIndex {
  format: 'cnnlab-dataset/1';
  classes: string[];
  labelSource: LabelSource;
  /** In dataset order; the class folder is the first path segment. */
  items: { path: string; label: number }[];
}

export function buildIndex(ds: Dataset): DatasetIndex {
  return {
    format: 'cnnlab-dataset/1',
    classes: ds.classes,
    labelSource: ds.labelSource,
    items: ds.items.map(({ path, label }) => ({ path, label })),
  };
}

/**
 * A Dataset from an index (buildIndex's, or any `{classes, items: [{path, label}]}`), served under
 * the URL prefix `o.root`. Items keep the index's order. `o.classes` checks labels as scanning does.
 */
export function datasetFromIndex(
  index: {
    classes: string[];
    items: { path: string; label: number; classFolder?: string }[];
    labelSource?: LabelSource;
  },
  o: { root?: string; classes?: number } = {},
): Dataset {
  if (!Array.isArray(index?.classes) || !Array.isArray(index?.items))
    throw new DatasetError('a dataset index needs arrays "classes" and "items"');
  const items: DatasetItem[] = index.items.map((it, i) => {
    const p = it?.path;
    if (typeof p !== 'string' || !p || p.startsWith('/') || p.split('/').some((s) => s === '..' || s === '')) {
      throw new DatasetError(
        `dataset index item ${i}: path ${JSON.stringify(p)} is not a relative path inside the dataset`,
      );
    }
    if (!Number.isInteger(it.label) || it.label < 0)
      throw new DatasetError(
        `dataset index item ${i} (${p}): label ${JSON.stringify(it.label)} is not a non-negative integer`,
      );
    return { path: p, label: it.label, classFolder: it.classFolder ?? p.split('/')[0] };
  });
  if (o.classes !== undefined) {
    const bad = items.find((it) => it.label >= o.classes!);
    if (bad)
      throw new DatasetError(
        `mislabelled dataset: folder ${bad.classFolder} maps to label ${bad.label} but the model has ${o.classes} classes`,
      );
  }
  return {
    root: o.root ?? '',
    source: 'url',
    classes: [...index.classes],
    items,
    labelSource: index.labelSource ?? 'map',
  };
}

/** Where to read an item: a file path (Node) or a URL with each path segment encoded (browser). */
export function itemLocation(ds: Dataset, relPath: string): string {
  if (ds.source === 'folder') return `${ds.root}/${relPath}`;
  const base = ds.root === '' || ds.root.endsWith('/') ? ds.root : `${ds.root}/`;
  return base + relPath.split('/').map(encodeURIComponent).join('/');
}

// ---- batches ------------------------------------------------------------------------------------

export interface BatchItem {
  /** The relative path: stable across runs, used for resume. */
  id: string;
  /** itemLocation(): what the decoder reads. */
  path: string;
  label: number;
  /** Position in the whole sorted dataset (before limit, shard and skip). */
  index: number;
}

export interface BatchOptions {
  batchSize: number;
  /**
   * Shard k of n, k 0-based (0 ≤ k < n): item i of the (limited) dataset goes to shard i mod n,
   * so the n shards partition it exactly and interleave classes.
   */
  shard?: { k: number; n: number };
  /**
   * Keep N items sampled stratified over classes with `seed` (stratifiedSample), before sharding,
   * so every shard sees the same N; they stay in dataset order.
   */
  limit?: number;
  /** The run's seed: which N items a limit keeps. Required with `limit`. */
  seed?: number;
  /** Ids already done (resume): dropped after sharding, so shard membership never changes. */
  skip?: ReadonlySet<string>;
}

/** The items a run with these options processes, in order (for totals and progress). */
export function selectItems(ds: Dataset, o: Omit<BatchOptions, 'batchSize'> = {}): BatchItem[] {
  const { shard, limit, skip, seed } = o;
  if (shard) {
    if (!Number.isInteger(shard.n) || shard.n < 1)
      throw new DatasetError(`shard count must be a positive integer, got ${shard.n}`);
    if (!Number.isInteger(shard.k) || shard.k < 0 || shard.k >= shard.n) {
      throw new DatasetError(`shard index k is 0-based and must satisfy 0 ≤ k < n = ${shard.n}, got ${shard.k}`);
    }
  }
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0))
    throw new DatasetError(`limit must be a non-negative integer, got ${limit}`);
  if (limit !== undefined && (seed === undefined || !Number.isInteger(seed))) {
    throw new DatasetError(`a limit samples with the run's seed; got seed ${seed}`);
  }
  const kept =
    limit === undefined
      ? ds.items.map((_, i) => i)
      : stratifiedSample(
          ds.items.map((it) => it.label),
          limit,
          seed!,
        );
  const out: BatchItem[] = [];
  for (let j = shard ? shard.k : 0; j < kept.length; j += shard ? shard.n : 1) {
    const i = kept[j];
    const it = ds.items[i];
    if (skip?.has(it.path)) continue;
    out.push({ id: it.path, path: itemLocation(ds, it.path), label: it.label, index: i });
  }
  return out;
}

/**
 * Positions (ascending) of `n` items out of those with these labels, stratified over classes:
 * class k of size m_k gets ⌊n·m_k/M⌋ items, the n − Σ⌊…⌋ left over go to the largest remainders
 * (ties in a seeded random order), and within a class the items are a seeded uniform sample (a
 * partial Fisher–Yates shuffle keyed by eval/rng.ts's hash). Same labels, n and seed → same
 * selection; n ≥ the count keeps everything.
 */
export function stratifiedSample(labels: readonly number[], n: number, seed: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new DatasetError(`limit must be a non-negative integer, got ${n}`);
  const total = labels.length;
  if (n >= total) return labels.map((_, i) => i);
  const byClass = new Map<number, number[]>();
  labels.forEach((l, i) => {
    const c = byClass.get(l);
    if (c) c.push(i);
    else byClass.set(l, [i]);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  const quota = new Map(classes.map((c) => [c, Math.floor((n * byClass.get(c)!.length) / total)]));
  let left = n - [...quota.values()].reduce((a, b) => a + b, 0);
  // Remainders compared exactly in integers (n·m_k mod M); ties broken by a seeded hash of the class.
  const order = classes
    .map((c) => ({ c, rem: (n * byClass.get(c)!.length) % total, tie: rngU32(seed, c, LIMIT_STREAM, 0) }))
    .sort((a, b) => b.rem - a.rem || a.tie - b.tie || a.c - b.c);
  for (const { c } of order) {
    if (left === 0) break;
    quota.set(c, quota.get(c)! + 1);
    left--;
  }
  const kept: number[] = [];
  for (const c of classes) {
    const pool = byClass.get(c)!.slice();
    const q = quota.get(c)!;
    for (let j = 0; j < q; j++) {
      const r = j + (rngU32(seed, c, LIMIT_STREAM, j + 1) % (pool.length - j));
      [pool[j], pool[r]] = [pool[r], pool[j]];
      kept.push(pool[j]);
    }
  }
  return kept.sort((a, b) => a - b);
}

/** eval/rng.ts stream of the limit's sampling (the corruptions use small stream numbers). */
const LIMIT_STREAM = 0x11a17;

/** Batches of at most batchSize items (the last may be smaller); images are not read here. */
export async function* batches(ds: Dataset, o: BatchOptions): AsyncGenerator<{ items: BatchItem[] }> {
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1)
    throw new DatasetError(`batchSize must be a positive integer, got ${o.batchSize}`);
  const items = selectItems(ds, o);
  for (let i = 0; i < items.length; i += o.batchSize) yield { items: items.slice(i, i + o.batchSize) };
}

// ---- decoding -----------------------------------------------------------------------------------

export interface LoadedBatch {
  /** The items that decoded, aligned with images. */
  items: BatchItem[];
  images: RgbImage[];
  /** Items that failed to read or decode: left out of the batch, to be counted and listed. */
  unreadable: { id: string; error: string }[];
}

/**
 * Decode a batch's images, `concurrency` at a time (default 8). `decode` reads a location:
 * decodeImageFile (eval/decode-node.ts) in Node, decodeImageUrl (eval/decode-browser.ts) in the
 * page. Any error from it puts the item in `unreadable` instead of failing the batch.
 */
export async function loadBatch(
  ds: Dataset,
  items: readonly BatchItem[],
  decode: (location: string) => Promise<RgbImage>,
  o: { concurrency?: number } = {},
): Promise<LoadedBatch> {
  const results: ({ ok: true; img: RgbImage } | { ok: false; error: string })[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        const img = await decode(itemLocation(ds, items[i].id));
        if (!(img.width >= 1 && img.height >= 1 && img.data.length === img.width * img.height * 3)) {
          throw new Error(`decoded to ${img.width}×${img.height} with ${img.data.length} bytes, not RGB`);
        }
        results[i] = { ok: true, img };
      } catch (e) {
        results[i] = { ok: false, error: (e as Error)?.message ?? String(e) };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency ?? 8, items.length)) }, worker));
  const out: LoadedBatch = { items: [], images: [], unreadable: [] };
  results.forEach((r, i) => {
    if (r.ok) {
      out.items.push(items[i]);
      out.images.push(r.img);
    } else out.unreadable.push({ id: items[i].id, error: r.error });
  });
  return out;
}

// ---- preprocessing a batch on the GPU ----------------------------------------------------------
//
// Images in a batch differ in size and the image_preprocess op bakes the source size into its
// WGSL, so each distinct size gets a small compiled plan (input [H,W,3] → image_preprocess →
// [1,S,S,3]), kept in a per-device LRU cache. Evicted plans free their buffers; their pipelines
// stay in the executor's per-device pipeline cache.

interface CacheEntry {
  plan: Promise<Plan>;
  users: number;
}

const planCaches = new WeakMap<Device, Map<string, CacheEntry>>();

function trim(cache: Map<string, CacheEntry>, capacity: number): void {
  for (const [key, e] of cache) {
    if (cache.size <= capacity) break;
    if (e.users > 0) continue; // in use by a batch now: evicted by a later call
    cache.delete(key);
    e.plan.then(
      (p) => p.dispose(),
      () => undefined,
    );
  }
}

/** Compiled preprocessing plans this device holds (for tests and memory reports). */
export function preprocessPlanCount(device: Device): number {
  return planCaches.get(device)?.size ?? 0;
}

/** Free every cached preprocessing plan of this device. */
export function clearPreprocessPlans(device: Device): void {
  const cache = planCaches.get(device);
  if (!cache) return;
  for (const e of cache.values())
    e.plan.then(
      (p) => p.dispose(),
      () => undefined,
    );
  cache.clear();
}

/**
 * Resize, crop and (unless normalize is false) normalise each image on the GPU as
 * models/preprocess.ts does (kernels/image.ts), into one NHWC batch [N, S, S, 3]: normalised, or
 * in [0,1] with normalize: false (for corruptions; image_normalize afterwards). Plans are cached
 * by source size, at most `cacheSize` (default 32) per device, least recently used evicted first.
 */
export async function preprocessOnGpu(
  device: Device,
  images: readonly RgbImage[],
  p: Preprocess,
  o: { normalize: boolean; cacheSize?: number },
): Promise<Float32Array> {
  const s = p.size;
  const attrs: ImagePreprocessAttrs = {
    size: s,
    resizeMode: p.resizeMode,
    cropPct: p.cropPct,
    interpolation: p.interpolation,
    mean: p.mean,
    std: p.std,
    normalize: o.normalize,
  };
  let cache = planCaches.get(device);
  if (!cache) planCaches.set(device, (cache = new Map()));
  const held: CacheEntry[] = [];
  const planFor = (h: number, w: number): Promise<Plan> => {
    const key = canonicalJson({ h, w, attrs });
    let e = cache!.get(key);
    if (e)
      cache!.delete(key); // re-inserted below as the most recent
    else {
      const g = new Graph();
      g.input('src', [h, w, 3]);
      g.markOutputs(g.op('image_preprocess', ['src'], { ...attrs }, 'y'));
      e = { plan: compile(device, g), users: 0 };
      const failed = e;
      e.plan.catch(() => {
        if (cache!.get(key) === failed) cache!.delete(key);
      });
    }
    cache!.set(key, e);
    if (!held.includes(e)) {
      e.users++;
      held.push(e);
    }
    return e.plan;
  };
  const out = new Float32Array(images.length * s * s * 3);
  try {
    // Plans for every size first (their pipelines compile in parallel), then all runs: a plan
    // serialises its own runs, plans of different sizes overlap.
    const plans = images.map((img) => {
      if (!(img.width >= 1 && img.height >= 1 && img.data.length === img.width * img.height * 3)) {
        throw new DatasetError(`image data of ${img.data.length} bytes does not match ${img.width}×${img.height} RGB`);
      }
      return planFor(img.height, img.width);
    });
    await Promise.all(
      images.map(async (img, i) => {
        const plan = await plans[i];
        const { outputs } = await plan.run({ src: Float32Array.from(img.data) });
        out.set(outputs.y.data, i * s * s * 3);
      }),
    );
  } finally {
    for (const e of held) e.users--;
    trim(cache, o.cacheSize ?? 32);
  }
  return out;
}
