// Optimiser steps against PyTorch's own optimisers (docs/autodiff.md, "Optimiser steps against
// PyTorch"). tests/fixtures/make_optim.py took two steps of torch.optim.SGD (momentum, weight decay)
// and of torch.optim.AdamW (non-default betas and eps, decoupled weight decay) from a fixture
// checkpoint, BN in train mode, each step on its own generated batch, and stored every parameter
// and BN running statistic afterwards. Here a Trainer takes the same steps on SwiftShader from the
// same checkpoint; every parameter and running statistic must match, mapped back to PyTorch's names
// and layouts. A perturbed hyper-parameter must fail the same comparison.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Graph } from '../../engine/graph.js';
import { type SafetensorsFile, openSafetensorsPath } from '../../engine/safetensors.js';
import { type OptimizerSpec, Trainer, type TrainSpec } from '../../engine/train.js';
import { NetBuilder } from '../../models/layers.js';
import { type ModelDef, loadModel } from '../../models/registry.js';
import { type ResNetConfig, makeResNet } from '../../models/resnet.js';
import { type ViTConfig, makeViT } from '../../models/vit.js';
import { type ParamRequest, RecordingWeights, toTorch } from '../../models/weights.js';
import { rand, testDevice } from '../helpers.js';
import { fixturePath, readFixture } from '../models/fixture.js';

interface OptimMeta {
  checkpoint: string;
  input: { shape: number[]; seeds: number[]; layout: 'NCHW' };
  steps: number;
  targets: number[][];
  bnMomentum: number;
  sgd: { lr: number; momentum: number; weightDecay: number };
  adamw: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };
  sgdLosses: number[];
  adamwLosses: number[];
}

type Kind = 'sgd' | 'adamw';

/**
 * Parameters, per tensor: max|Δ| ≤ rtol·max|p_ref − p0| + ATOL·max|p0|, i.e. judged against how far
 * the steps moved the tensor (p itself can be 1e3× larger than the change). The gradients behind
 * the steps match PyTorch's to a few 1e-6 relative (grad-models.test.ts) and SGD passes that on
 * linearly: measured ≤ 3e-5 of RTOL_SGD (logged). AdamW divides by √v̂ + eps per element, so an
 * element whose gradient is within rounding noise δ of 0 moves by up to lr·δ/eps more or less:
 * make_optim.py's eps = 1e-4 bounds that, and the measured worst is 0.6 of RTOL_SGD (resnet_basic,
 * SwiftShader), hence RTOL_ADAMW = 2e-3. A wrong beta, eps, decay or momentum moves some tensor by
 * ≥ 2.8e-2 of its step (the negative checks below demand 10× the bound).
 * BN running statistics: RTOL_STAT·max|ref| + ATOL, as grad-models.test.ts.
 */
const RTOL_SGD = 1e-3;
const RTOL_ADAMW = 2e-3;
const ATOL = 1e-6;
const RTOL_STAT = 1e-5;

const CASES: [string, (cfg: Record<string, unknown>) => ModelDef][] = [
  ['resnet_basic', (c) => makeResNet('resnet_basic', c as unknown as ResNetConfig)],
  ['vit_p32_test', (c) => makeViT('vit_p32_test', c as unknown as ViTConfig)],
];

const isStat = (n: string) => /\.running_(mean|var)$/.test(n);

function optimizerOf(meta: OptimMeta, kind: Kind): OptimizerSpec {
  if (kind === 'sgd') return { kind, momentum: meta.sgd.momentum, nesterov: false, weightDecay: meta.sgd.weightDecay };
  const a = meta.adamw;
  return { kind, beta1: a.beta1, beta2: a.beta2, eps: a.eps, weightDecay: a.weightDecay };
}

interface Setup {
  meta: OptimMeta;
  ref: SafetensorsFile;
  def: ModelDef;
  model: Awaited<ReturnType<typeof loadModel>>;
  requests: ParamRequest[];
  torchName: (n: string) => string;
}

async function setup(name: string, makeDef: (cfg: Record<string, unknown>) => ModelDef): Promise<Setup> {
  const meta = JSON.parse(readFileSync(`tests/fixtures/optim/${name}.json`, 'utf8')) as OptimMeta;
  const def = makeDef(readFixture(meta.checkpoint).config);
  const [n, , h] = meta.input.shape;
  const file = await openSafetensorsPath(fixturePath(meta.checkpoint, 'safetensors'));
  const model = await loadModel(def, { weights: file, batch: n, size: h });
  const rec = new RecordingWeights();
  const g = new Graph();
  def.build(new NetBuilder(g, rec), g.input('image', [n, h, h, 3]), model.classes);
  return {
    meta,
    ref: await openSafetensorsPath(`tests/fixtures/optim/${name}.safetensors`),
    def,
    model,
    requests: rec.requests,
    torchName: (b: string) => def.mapping.fileName?.(b) ?? b,
  };
}

/** The Trainer's steps: losses, and the state (parameters, BN statistics) before and after. */
async function trainSteps(s: Setup, optimizer: OptimizerSpec, lr: number) {
  const [n, c, h, w] = s.meta.input.shape;
  const trainable = [...new Set(s.requests.map((r) => r.name))].filter((r) => !isStat(r));
  const spec: TrainSpec = {
    logits: s.model.logits,
    trainable,
    optimizer,
    batchNorm: 'train',
    bnMomentum: s.meta.bnMomentum,
  };
  const tr = await Trainer.create(await testDevice(), s.model.graph, spec);
  try {
    const before = await tr.readState();
    const targets = Float32Array.from(s.meta.targets.flat());
    const losses: number[] = [];
    for (const seed of s.meta.input.seeds) losses.push((await tr.step(rand(n * c * h * w, seed), targets, lr)).loss);
    return { losses, before, after: await tr.readState() };
  } finally {
    tr.dispose();
  }
}

/** Worst max|Δ| / bound over every tensor (≤ 1 passes), and every tensor's name and ratio. */
async function compareState(s: Setup, kind: Kind, run: Awaited<ReturnType<typeof trainSteps>>) {
  let worst = 0;
  let worstName = '';
  const seen = new Set<string>();
  for (const r of s.requests) {
    if (seen.has(r.name)) continue;
    seen.add(r.name);
    const t = s.torchName(r.name);
    const want = await s.ref.read(`${kind}.${t}`);
    const got = toTorch(r, run.after.get(r.name)!.data);
    const p0 = toTorch(r, run.before.get(r.name)!.data);
    expect(got.length, `${kind} ${t}: length`).toBe(want.data.length);
    let d = 0,
      moved = 0,
      m0 = 0,
      mRef = 0;
    for (let i = 0; i < got.length; i++) {
      d = Math.max(d, Math.abs(got[i] - want.data[i]));
      moved = Math.max(moved, Math.abs(want.data[i] - p0[i]));
      m0 = Math.max(m0, Math.abs(p0[i]));
      mRef = Math.max(mRef, Math.abs(want.data[i]));
    }
    const rtol = kind === 'sgd' ? RTOL_SGD : RTOL_ADAMW;
    const bound = isStat(r.name) ? RTOL_STAT * mRef + ATOL : rtol * moved + ATOL * m0;
    const ratio = d / bound;
    if (ratio > worst) [worst, worstName] = [ratio, t];
  }
  // Every tensor PyTorch stored was compared.
  const refNames = [...s.ref.tensors.keys()].filter((k) => k.startsWith(`${kind}.`));
  expect(refNames.sort()).toEqual([...seen].map((b) => `${kind}.${s.torchName(b)}`).sort());
  return { worst, worstName, tensors: seen.size };
}

describe('optimiser steps against torch.optim (two steps from a checkpoint, BN in train mode)', () => {
  for (const [name, makeDef] of CASES) {
    it.each(['sgd', 'adamw'] as const)(`${name}: %s`, async (kind) => {
      const t0 = performance.now();
      const s = await setup(name, makeDef);
      const run = await trainSteps(s, optimizerOf(s.meta, kind), s.meta[kind].lr);
      const wantLosses = kind === 'sgd' ? s.meta.sgdLosses : s.meta.adamwLosses;
      run.losses.forEach((l, i) => {
        expect(Math.abs(l - wantLosses[i]), `step ${i + 1} loss ${l} vs ${wantLosses[i]}`).toBeLessThanOrEqual(
          1e-5 * wantLosses[i],
        );
      });
      const { worst, worstName, tensors } = await compareState(s, kind, run);
      console.log(
        `${name} ${kind}: ${tensors} tensors after ${s.meta.steps} steps, worst max|Δ|/bound ${worst.toExponential(2)} ` +
          `(${worstName}); ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
      expect(worst, `worst tensor ${worstName}`).toBeLessThanOrEqual(1);
    });
  }

  // Within two steps bias correction leaves beta2 only the relative weight of g1² and g2² in v̂
  // (β2/(1 + β2) against 1/(1 + β2)), so 0.999 for 0.95 changes almost nothing; 0.5 changes it by a third.
  it.each([
    ['adamw', 'beta2 0.5', { beta2: 0.5 }],
    ['adamw', 'eps 1e-8', { eps: 1e-8 }],
    ['adamw', 'weight decay 0', { weightDecay: 0 }],
    ['sgd', 'momentum 0.8', { momentum: 0.8 }],
  ] as const)('resnet_basic: %s with %s instead fails the comparison', async (kind, what, change) => {
    const s = await setup('resnet_basic', CASES[0][1]);
    const wrong = { ...optimizerOf(s.meta, kind), ...change } as OptimizerSpec;
    const { worst, worstName } = await compareState(s, kind, await trainSteps(s, wrong, s.meta[kind].lr));
    console.log(`${kind} with ${what}: worst max|Δ|/bound ${worst.toExponential(2)} (${worstName})`);
    expect(worst).toBeGreaterThan(10);
  });
});
