// One call from a model name, weights and an NCHW input to logits: load, optimise, compile, run.
// Shared by the CLI's Node runtime and the page (which the CLI drives in Chromium).

import { type Device, describeDevice } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { optimize } from '../engine/passes.js';
import type { SafetensorsFile } from '../engine/safetensors.js';
import { fmtShape, type HostTensor, ShapeError } from '../kernels/kernel.js';
import { loadModel, type Preprocess } from './registry.js';

export interface InferOptions {
  model: string;
  weights: 'random' | SafetensorsFile;
  seed?: number;
  /** NCHW [N,3,S,S], already preprocessed. */
  input: HostTensor;
  log?: (s: string) => void;
}

export interface InferResult {
  model: string;
  weights: string;
  device: string;
  classes: number;
  preprocess: Preprocess;
  logits: HostTensor;
  compileMs: number;
  runMs: number;
}

export async function infer(device: Device, o: InferOptions): Promise<InferResult> {
  const s = o.input.shape;
  if (s.length !== 4 || s[1] !== 3 || s[2] !== s[3]) {
    throw new ShapeError(`input must be NCHW [N,3,S,S] (square, 3 channels), got ${fmtShape(s)}`);
  }
  const log = o.log ?? (() => {});
  const t0 = performance.now();
  const m = await loadModel(o.model, { weights: o.weights, seed: o.seed, batch: s[0], size: s[2] });
  log(`${m.def.name}: ${m.classes} classes, weights ${m.weights}, input ${fmtShape(s)}`);
  const { graph } = optimize(m.graph);
  const plan = await compile(device, graph);
  const compileMs = performance.now() - t0;
  log(
    `compiled ${plan.dispatchCount} dispatches in ${compileMs.toFixed(0)} ms (weights ${(plan.memory.weightBytes / 2 ** 20).toFixed(1)} MiB, peak ${(plan.memory.peakBytes / 2 ** 20).toFixed(1)} MiB)`,
  );
  try {
    const r = await plan.run({ [m.input]: o.input.data }, { outputs: [m.logits] });
    return {
      model: m.def.name,
      weights: m.weights,
      device: describeDevice(device),
      classes: m.classes,
      preprocess: m.preprocess,
      logits: r.outputs[m.logits],
      compileMs,
      runMs: r.ms,
    };
  } finally {
    plan.dispose();
  }
}

/** Top-k of softmax(logits) for row `row`. */
export function topK(logits: HostTensor, k = 5, row = 0): { cls: number; p: number }[] {
  const c = logits.shape[logits.shape.length - 1];
  const z = logits.data.subarray(row * c, (row + 1) * c);
  const max = z.reduce((a, b) => Math.max(a, b), -Infinity);
  const e = Array.from(z, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e
    .map((v, cls) => ({ cls, p: v / sum }))
    .sort((a, b) => b.p - a.p)
    .slice(0, k);
}
