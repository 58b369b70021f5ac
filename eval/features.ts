// Frozen pre-logit features of any registered model, extracted on the GPU in batches and
// cached as safetensors keyed by content (model, weights SHA-256, the data set's file list,
// preprocessing; eval/provenance.ts): a repeated transfer run on the same backbone and data
// reads them instead of running the model again, and a different file of the same name never does.

import type { Device } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { optimize } from '../engine/passes.js';
import type { SafetensorsFile } from '../engine/safetensors.js';
import { canonicalJson } from '../kernels/kernel.js';
import { loadModel, type Preprocess } from '../models/registry.js';
import type { ImageSource } from './robustness.js';
import type { FeatureSet } from './transfer.js';

export interface FeatureRequest {
  model: string;
  weights: 'random' | SafetensorsFile;
  /** For humans: the weights' name (a file name, or "random (seed N)"). */
  weightsName: string;
  seed: number;
  /** What the images are (a folder's content key, or a synthetic split's description with its seed). */
  datasetKey: string;
  batch: number;
}

/**
 * A stable short key (FNV-1a 64 of canonical JSON) for a feature cache file. `weightsKey`: the
 * weights file's SHA-256, or `randomWeightsKey(model, seed)` (eval/provenance.ts).
 */
export function featureCacheKey(
  r: Pick<FeatureRequest, 'model' | 'datasetKey'> & { weightsKey: string },
  p: Preprocess,
  items: number,
): string {
  const text = canonicalJson({ model: r.model, weights: r.weightsKey, data: r.datasetKey, preprocess: p, items });
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  // A file name: an ONNX model's name is its path, so anything but [\w.-] becomes '_' (built-in names have none).
  return `${r.model.replace(/[^\w.-]+/g, '_')}-${h.toString(16).padStart(16, '0')}`;
}

/** Features [n, D] and labels of every item of `source`, through the model's `features` output. */
export async function extractFeatures(
  device: Device,
  r: FeatureRequest,
  source: ImageSource,
  p: Preprocess,
  progress?: (done: number, total: number) => void,
): Promise<FeatureSet & { unreadable: { id: string; error: string }[] }> {
  const m = await loadModel(r.model, {
    weights: r.weights,
    seed: r.seed,
    batch: r.batch,
    size: p.size,
    prelude: (g, s, n) => {
      // [0,1] crops in, normalised here (a batchnorm with γ = 1, β = 0, var = std² − ε).
      const x = g.input('x', [n, s, s, 3]);
      const eps = 1e-12;
      const c = (name: string, v: number[]) => g.constant(name, [3], new Float32Array(v));
      return g.op(
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
    },
  });
  const plan = await compile(device, optimize(m.graph).graph);
  const d = m.graph.shape(m.features)[1];
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  const unreadable: { id: string; error: string }[] = [];
  try {
    const px = p.size * p.size * 3;
    for (let i = 0; i < source.items.length; i += r.batch) {
      const { crops, ok, unreadable: bad } = await source.load(source.items.slice(i, i + r.batch), p);
      unreadable.push(...bad);
      if (ok.length) {
        const x = new Float32Array(r.batch * px);
        crops.forEach((c, j) => x.set(c, j * px));
        const f = (await plan.run({ x }, { outputs: [m.features] })).outputs[m.features].data;
        ok.forEach((it, j) => {
          rows.push(f.slice(j * d, (j + 1) * d));
          labels.push(it.label);
        });
      }
      progress?.(Math.min(i + r.batch, source.items.length), source.items.length);
    }
  } finally {
    plan.dispose();
  }
  const x = new Float32Array(rows.length * d);
  rows.forEach((row, i) => x.set(row, i * d));
  return { x, y: Int32Array.from(labels), n: rows.length, d, unreadable };
}
