// A robustness run: the model on clean images, on every corruption × severity, at other test
// resolutions, and on SI-Score sweeps; one record per (condition, image), appended as each
// batch finishes.
//
// Per condition, two plans run back to back: a small one that corrupts the [0,1] crops and
// normalises them (`corrupt` op, eval/corruptions), and the model's, compiled once per
// resolution and reused by every condition. As ImageNet-C, corruptions apply to a 224×224
// crop; a model with a smaller input (the built-in 112×112 one) gets the corrupted crop box-
// downsampled by an integer factor, as if it had read ImageNet-C's 224 images. Conditions are the outer loop, so only one
// corruption plan is alive at a time; the crops of the current shard are kept in memory as
// 8-bit (as ImageNet-C corrupts 8-bit images) when they fit `cacheBytes`, else decoded again.

import type { Device } from '../engine/device.js';
import { compile, type Plan } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { optimize } from '../engine/passes.js';
import type { SafetensorsFile } from '../engine/safetensors.js';
import { atResolution, getModel, loadModel, type Preprocess } from '../models/registry.js';
import { addCorruption } from './corruptions/op.js';
import { addImagenetCStorage } from './corruptions/storage.js';
import { summarizeLogits } from './metrics.js';
import { type ImageRecord, recordKey, type RunRecord } from './record-format.js';

export interface LabeledImage {
  /** Stable id (the path relative to the dataset root, or a sweep image's name). */
  id: string;
  /** Position in the whole dataset (before sharding): keys per-image corruption randomness. */
  index: number;
  label: number;
}

/** Where a run's images come from: decoded and preprocessed to [0,1] crops on demand. */
export interface ImageSource {
  items: LabeledImage[];
  /** Crops [S,S,3] in [0,1] for `p` (resize, crop, no normalisation), and what failed to decode. */
  load(
    items: LabeledImage[],
    p: Preprocess,
  ): Promise<{ crops: Float32Array[]; ok: LabeledImage[]; unreadable: { id: string; error: string }[] }>;
}

/** SI-Score sweep images, already composed at the model's input size, in [0,1]. */
export interface SweepImage extends LabeledImage {
  sweep: string;
  factor: string;
  crop: Float32Array;
}

export interface RobustnessOptions {
  model: string;
  /** Preprocessing in place of the model's own (e.g. from a Hub repository's config). */
  preprocess?: Preprocess;
  weights: 'random' | SafetensorsFile;
  seed: number;
  corruptions: string[];
  severities: number[];
  resolutions: number[];
  batch: number;
  /** Skip the clean condition (e.g. a sweeps-only run). */
  noClean?: boolean;
  /**
   * ImageNet-C's storage step after every corruption (8-bit truncation, JPEG quality 85; eval/
   * corruptions/storage.ts), so corrupted images are those of the released data set.
   */
  imagenetCProtocol?: boolean;
  cacheBytes?: number;
}

export interface Progress {
  cond: string;
  done: number;
  total: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

export interface RunSink {
  /** Keys (`recordKey`) already recorded: a Set, or the compact KeySet of a resumed log. */
  done: { has(key: string): boolean; readonly size: number };
  append(recs: RunRecord[]): Promise<void>;
  progress?(p: Progress): void;
  log?(s: string): void;
}

export function conditionNames(
  o: Pick<RobustnessOptions, 'corruptions' | 'severities' | 'resolutions' | 'noClean'>,
  defaultSize: number,
): string[] {
  return [
    ...(o.noClean ? [] : ['clean']),
    ...o.corruptions.flatMap((c) => o.severities.map((s) => `c/${c}/${s}`)),
    ...o.resolutions.filter((r) => r !== defaultSize).map((r) => `res/${r}`),
  ];
}

/** The model's plan at `size` for a batch, reading normalised NHWC input 'x'. */
async function modelPlan(device: Device, o: RobustnessOptions, size: number) {
  const m = await loadModel(o.model, {
    weights: o.weights,
    seed: o.seed,
    batch: o.batch,
    size,
    prelude: (g, s, n) => g.input('x', [n, s, s, 3]),
  });
  const plan = await compile(device, optimize(m.graph).graph);
  return { plan, logits: m.logits, classes: m.classes };
}

/** ImageNet-C's crop side. */
export const CORRUPTION_SIZE = 224;

/** The crop side a condition reads: 224 for corruptions and sweeps when the model can box-downsample it, else the model's. */
export function cropSize(modelSize: number, corrupted: boolean): number {
  return corrupted && modelSize < CORRUPTION_SIZE && CORRUPTION_SIZE % modelSize === 0 ? CORRUPTION_SIZE : modelSize;
}

/**
 * [0,1] crops → (corruption → (ImageNet-C's storage step)) → (box downsample to the model's size) →
 * normalised (a batchnorm with γ = 1, β = 0, var = std² − ε).
 */
export async function inputPlan(
  device: Device,
  p: Preprocess,
  batch: number,
  corruption: { name: string; severity: number; seed: number } | null,
  crop: number,
  store = false,
): Promise<Plan> {
  const g = new Graph();
  let x = g.input('x', [batch, crop, crop, 3]);
  if (corruption) {
    g.input('ids', [batch]);
    x = addCorruption(g, x, 'ids', corruption);
    if (store) x = addImagenetCStorage(g, x);
  }
  if (crop !== p.size) {
    const k = crop / p.size;
    x = g.op('avgpool', [x], { kernel: [k, k], stride: [k, k] }, 'downsample');
  }
  const eps = 1e-12;
  const c = (name: string, v: number[]) => g.constant(name, [3], new Float32Array(v));
  x = g.op(
    'batchnorm',
    [
      x,
      c('one', [1, 1, 1]),
      c('zero', [0, 0, 0]),
      c('mean', p.mean),
      c(
        'var',
        p.std.map((v) => v * v - eps),
      ),
    ],
    { eps },
    'normalize',
  );
  g.markOutputs(x);
  return compile(device, g);
}

const quantize = (crop: Float32Array) => Uint8Array.from(crop, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
const dequantize = (q: Uint8Array) => Float32Array.from(q, (v) => v / 255);

export async function runRobustness(
  device: Device,
  o: RobustnessOptions,
  source: ImageSource | null,
  sweeps: SweepImage[],
  sink: RunSink,
): Promise<void> {
  const def = getModel(o.model);
  const base = o.preprocess ?? def.preprocess;
  const conds = source ? conditionNames(o, base.size) : [];
  const sweepConds = [...new Set(sweeps.map((s) => `si/${s.sweep}/${s.factor}`))];
  const todo = (cond: string, items: LabeledImage[]) =>
    items.filter((it) => !sink.done.has(recordKey({ cond, id: it.id })));
  const total =
    conds.reduce((a, c) => a + todo(c, source!.items).length, 0) +
    sweeps.filter((s) => !sink.done.has(recordKey({ cond: `si/${s.sweep}/${s.factor}`, id: s.id }))).length;
  let done = 0;
  const t0 = performance.now();
  const tick = (cond: string, n: number) => {
    done += n;
    const secs = (performance.now() - t0) / 1000;
    const ips = done / Math.max(secs, 1e-9);
    sink.progress?.({ cond, done, total, imagesPerSecond: ips, etaSeconds: ips > 0 ? (total - done) / ips : Infinity });
  };
  sink.log?.(
    `${o.model}: ${conds.length + sweepConds.length} conditions, ${total} image evaluations to do${sink.done.size ? ` (${sink.done.size} already recorded)` : ''}`,
  );

  const models = new Map<number, Awaited<ReturnType<typeof modelPlan>>>();
  const modelAt = async (size: number) => {
    let m = models.get(size);
    if (!m) models.set(size, (m = await modelPlan(device, o, size)));
    return m;
  };

  /** Run crops (each S×S×3) through input plan and model; record results under `cond` (one per image, or one for all). */
  const evaluate = async (
    cond: string | string[],
    p: Preprocess,
    inPlan: Plan,
    batch: LabeledImage[],
    crops: Float32Array[],
  ) => {
    const m = await modelAt(p.size);
    const px = crops[0].length;
    const x = new Float32Array(o.batch * px);
    crops.forEach((c, i) => x.set(c, i * px));
    const ids = new Float32Array(o.batch);
    batch.forEach((it, i) => (ids[i] = it.index));
    const feed: Record<string, Float32Array> = inPlan.graph.values.has('ids') ? { x, ids } : { x };
    const normalized = (await inPlan.run(feed)).outputs[inPlan.graph.outputs[0]].data;
    const logits = (await m.plan.run({ x: normalized }, { outputs: [m.logits] })).outputs[m.logits].data;
    const recs: ImageRecord[] = batch.map(
      (it, i) =>
        ({
          cond: typeof cond === 'string' ? cond : cond[i],
          id: it.id,
          ...summarizeLogits(logits.subarray(i * m.classes, (i + 1) * m.classes), it.label),
        }) as ImageRecord,
    );
    await sink.append(recs);
    tick(typeof cond === 'string' ? cond : cond[0], batch.length);
  };

  try {
    // Crops at the base resolution, cached 8-bit when the shard fits.
    const cache = new Map<string, Uint8Array>();
    const cacheLimit = o.cacheBytes ?? 2 ** 31;
    const fits = source ? source.items.length * cropSize(base.size, true) ** 2 * 3 <= cacheLimit : false;
    const unreadableSeen = new Set<string>();
    const loadCrops = async (items: LabeledImage[], p: Preprocess) => {
      const useCache = fits && p.size === cropSize(base.size, true);
      const missing = useCache ? items.filter((it) => !cache.has(it.id)) : items;
      const got = missing.length ? await source!.load(missing, p) : { crops: [], ok: [], unreadable: [] };
      const fresh = new Map(got.ok.map((it, i) => [it.id, got.crops[i]]));
      const bad = got.unreadable.filter((u) => !unreadableSeen.has(u.id));
      bad.forEach((u) => unreadableSeen.add(u.id));
      if (bad.length) await sink.append(bad.map((u) => ({ cond: 'unreadable' as const, id: u.id, error: u.error })));
      const ok: LabeledImage[] = [];
      const crops: Float32Array[] = [];
      for (const it of items) {
        const q = useCache ? cache.get(it.id) : undefined;
        const f = fresh.get(it.id);
        if (q) crops.push(dequantize(q));
        else if (f) {
          const q8 = quantize(f);
          if (useCache) cache.set(it.id, q8);
          crops.push(dequantize(q8));
        } else continue;
        ok.push(it);
      }
      return { ok, crops };
    };

    for (const cond of conds) {
      const [kind, a, b] = cond.split('/');
      const p = kind === 'res' ? atResolution(base, Number(a)) : base;
      // Clean and corrupted images share one crop size, so their cached crops are the same pixels.
      const crop = kind === 'res' ? p.size : cropSize(p.size, true);
      const corruption = kind === 'c' ? { name: a, severity: Number(b), seed: o.seed } : null;
      const inPlan = await inputPlan(device, p, o.batch, corruption, crop, !!o.imagenetCProtocol);
      try {
        const items = todo(cond, source!.items);
        for (let i = 0; i < items.length; i += o.batch) {
          const { ok, crops } = await loadCrops(items.slice(i, i + o.batch), atResolution(p, crop));
          if (ok.length) await evaluate(cond, p, inPlan, ok, crops);
        }
      } finally {
        inPlan.dispose();
      }
    }

    if (sweeps.length) {
      const crop = Math.round(Math.sqrt(sweeps[0].crop.length / 3));
      if (crop !== base.size && crop !== cropSize(base.size, true))
        throw new Error(`sweep images are ${crop}px; ${o.model} reads ${base.size}px`);
      const inPlan = await inputPlan(device, base, o.batch, null, crop);
      try {
        const condOf = (s: SweepImage) => `si/${s.sweep}/${s.factor}`;
        const left = sweeps.filter((s) => !sink.done.has(recordKey({ cond: condOf(s), id: s.id })));
        for (let i = 0; i < left.length; i += o.batch) {
          const chunk = left.slice(i, i + o.batch);
          await evaluate(
            chunk.map(condOf),
            base,
            inPlan,
            chunk,
            chunk.map((s) => s.crop),
          );
        }
      } finally {
        inPlan.dispose();
      }
    }
  } finally {
    for (const m of models.values()) m.plan.dispose();
  }
}
