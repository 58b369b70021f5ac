// Checks a model against a PyTorch fixture made by tests/fixtures/make_*.py: same weights
// (a safetensors file with timm/torchvision names), same generated input, logits compared with
// max|Δ| ≤ 1e-3 · max|ref| (the fidelity bar).

import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { compile } from '../../engine/executor.js';
import { optimize } from '../../engine/passes.js';
import { openSafetensorsPath } from '../../engine/safetensors.js';
import { type ModelDef, loadModel } from '../../models/registry.js';
import { rand, testDevice } from '../helpers.js';

export interface FixtureMeta {
  config: Record<string, unknown>;
  /** Another case whose weights this one reuses (e.g. the same ViT at another input side). */
  weights?: string;
  input: { shape: number[]; seed: number };
  logits: number[][];
}

export const fixturePath = (name: string, ext: string) => `tests/fixtures/models/${name}.${ext}`;

export function readFixture(name: string): FixtureMeta {
  return JSON.parse(readFileSync(fixturePath(name, 'json'), 'utf8')) as FixtureMeta;
}

/** Build `def` from the fixture's checkpoint (its own, or the case its `weights` names), run it on the GPU (optimised graph), compare logits. */
export async function checkFixture(name: string, def: ModelDef): Promise<{ maxDiff: number; maxRef: number }> {
  const meta = readFixture(name);
  const [n, c, h, w] = meta.input.shape;
  expect(c).toBe(3);
  expect(h).toBe(w);
  const file = await openSafetensorsPath(fixturePath(meta.weights ?? name, 'safetensors'));
  const m = await loadModel(def, { weights: file, batch: n, size: h });
  const { graph } = optimize(m.graph);
  const plan = await compile(await testDevice(), graph);
  try {
    const x = rand(n * c * h * w, meta.input.seed);
    const { outputs } = await plan.run({ image: x }, { outputs: [m.logits] });
    const got = outputs[m.logits];
    const want = meta.logits.flat();
    expect(got.shape).toEqual([n, meta.logits[0].length]);
    let maxDiff = 0,
      maxRef = 0;
    want.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - got.data[i]));
      maxRef = Math.max(maxRef, Math.abs(v));
    });
    expect(maxDiff, `${name}: max|Δ| ${maxDiff} vs max|ref| ${maxRef}`).toBeLessThanOrEqual(1e-3 * maxRef);
    return { maxDiff, maxRef };
  } finally {
    plan.dispose();
  }
}
