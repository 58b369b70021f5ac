// Whole-model gradients against PyTorch autograd (docs/autodiff.md, "Checked against PyTorch").
// tests/fixtures/make_grads.py ran each family's reduced fixture model (the same checkpoint as its
// forward fixture in tests/fixtures/models/) in train mode on a generated batch with soft targets
// and stored the loss, every parameter's gradient and the BN running statistics. Here the same
// checkpoint goes through loadModel, a Trainer trains every parameter (BN in batch mode), and
// `gradients()` on SwiftShader must give PyTorch's loss and gradients, mapped back to PyTorch's
// names and layouts (the model's WeightMapping, models/weights.ts toTorch). Then one SGD step:
// the BN running statistics must be PyTorch's and the parameters p − lr·(g + wd·p) with PyTorch's g
// (make_grads.py asserts that this is torch.optim.SGD's first step).

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Graph, runReference } from '../../engine/graph.js';
import { type SafetensorsFile, openSafetensorsPath } from '../../engine/safetensors.js';
import { Trainer, type TrainSpec, buildTrainGraph } from '../../engine/train.js';
import { hyperFor } from '../../kernels/backward/optim.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { NetBuilder } from '../../models/layers.js';
import { type MobileNetV2Config, makeMobileNetV2 } from '../../models/mobilenetv2.js';
import { type ModelDef, loadModel } from '../../models/registry.js';
import { type ResNetConfig, makeResNet } from '../../models/resnet.js';
import { type ResNetV2Config, makeResNetV2 } from '../../models/resnetv2.js';
import { type ViTConfig, makeViT } from '../../models/vit.js';
import { type ParamRequest, RecordingWeights, toTorch, torchShape } from '../../models/weights.js';
import { rand, testDevice } from '../helpers.js';
import { fixturePath, readFixture } from '../models/fixture.js';

interface GradMeta {
  checkpoint: string;
  input: { shape: number[]; seed: number; layout: 'NCHW' };
  targets: number[][];
  loss: number;
  bnMomentum: number;
  sgd: { lr: number; momentum: number; weightDecay: number };
}

/**
 * Per tensor: max|Δ| ≤ RTOL·max|ref| + ATOL. f32 on both sides with different summation orders
 * (tiled WGSL reductions vs PyTorch's CPU kernels) through up to ~20 layers of backward; measured
 * errors are a few 1e-6 relative (see the log lines), so 1e-4 leaves headroom while a wrong rule or
 * layout (errors of order 1) cannot pass. ATOL covers tensors whose reference is exactly 0.
 */
const RTOL = 1e-4;
const ATOL = 1e-6;

const CASES: [string, (cfg: Record<string, unknown>) => ModelDef][] = [
  ['resnet_basic', (c) => makeResNet('resnet_basic', c as unknown as ResNetConfig)],
  ['mobilenetv2_035', (c) => makeMobileNetV2('mobilenetv2_035', c as unknown as MobileNetV2Config)],
  ['bit_tiny', (c) => makeResNetV2('bit_tiny', c as unknown as ResNetV2Config)],
  ['vit_p32_test', (c) => makeViT('vit_p32_test', c as unknown as ViTConfig)],
];

const isStat = (n: string) => /\.running_(mean|var)$/.test(n);

/** What the builder asks for (builder names, our layouts), from a dry build. */
function requestsOf(def: ModelDef, n: number, size: number, classes: number): ParamRequest[] {
  const rec = new RecordingWeights();
  const g = new Graph();
  def.build(new NetBuilder(g, rec), g.input('image', [n, size, size, 3]), classes);
  return rec.requests;
}

interface Setup {
  meta: GradMeta;
  ref: SafetensorsFile;
  model: Awaited<ReturnType<typeof loadModel>>;
  requests: ParamRequest[];
  torchName: (n: string) => string;
  x: Float32Array;
  targets: Float32Array;
  spec: TrainSpec;
}

async function setup(name: string, makeDef: (cfg: Record<string, unknown>) => ModelDef): Promise<Setup> {
  const meta = JSON.parse(readFileSync(`tests/fixtures/grads/${name}.json`, 'utf8')) as GradMeta;
  const def = makeDef(readFixture(meta.checkpoint).config);
  const [n, c, h, w] = meta.input.shape;
  const file = await openSafetensorsPath(fixturePath(meta.checkpoint, 'safetensors'));
  const model = await loadModel(def, { weights: file, batch: n, size: h });
  const requests = requestsOf(def, n, h, model.classes);
  const torchName = (b: string) => def.mapping.fileName?.(b) ?? b;
  const trainable = [...new Set(requests.map((r) => r.name))].filter((r) => !isStat(r));
  const spec: TrainSpec = {
    logits: model.logits,
    trainable,
    optimizer: { kind: 'sgd', momentum: meta.sgd.momentum, weightDecay: meta.sgd.weightDecay },
    batchNorm: 'train',
    bnMomentum: meta.bnMomentum,
  };
  return {
    meta,
    ref: await openSafetensorsPath(`tests/fixtures/grads/${name}.safetensors`),
    model,
    requests,
    torchName,
    x: rand(n * c * h * w, meta.input.seed),
    targets: Float32Array.from(meta.targets.flat()),
    spec,
  };
}

/** max|Δ| / max|ref| of one tensor, asserting the tolerance. */
function compare(got: Float32Array, want: HostTensor, what: string, rtol = RTOL, atol = ATOL): number {
  expect(got.length, `${what}: length`).toBe(want.data.length);
  let d = 0,
    m = 0;
  for (let i = 0; i < got.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want.data[i]));
    m = Math.max(m, Math.abs(want.data[i]));
  }
  expect(d, `${what}: max|Δ| ${d.toExponential(3)}, max|ref| ${m.toExponential(3)}`).toBeLessThanOrEqual(
    rtol * m + atol,
  );
  return m > 0 ? d / m : d;
}

/**
 * Every trainable gradient against PyTorch's, in PyTorch's names and layouts. Returns the worst
 * max|Δ|/max|ref| over tensors with max|ref| ≥ 1e-5, and how many tensors are zero in exact
 * arithmetic (max|ref| < 1e-5: e.g. MobileNetV2's projection-BN biases, whose shift the next
 * conv + train-mode BN removes; both sides hold rounding noise there, checked against ATOL).
 */
async function compareGrads(
  s: Setup,
  grads: (b: string) => Float32Array,
  tag: string,
): Promise<{ worst: number; zeros: number }> {
  let worst = 0,
    zeros = 0;
  const seen = new Set<string>();
  for (const r of s.requests) {
    if (isStat(r.name) || seen.has(r.name)) continue;
    seen.add(r.name);
    const t = s.torchName(r.name);
    const want = await s.ref.read(`grad.${t}`);
    expect(want.shape, `${t}: shape`).toEqual(torchShape(r));
    const rel = compare(toTorch(r, grads(r.name)), want, `${tag} d${t}`);
    if (want.data.some((v) => Math.abs(v) >= 1e-5)) worst = Math.max(worst, rel);
    else zeros++;
  }
  // Every PyTorch parameter was compared (nothing of the model's left out).
  const refGrads = [...s.ref.tensors.keys()].filter((k) => k.startsWith('grad.'));
  expect(refGrads.sort()).toEqual([...seen].map((b) => `grad.${s.torchName(b)}`).sort());
  return { worst, zeros };
}

describe('whole-model gradients against PyTorch autograd (train mode, soft targets)', () => {
  it.each(CASES)('%s: loss, every gradient, BN running statistics and one SGD step', async (name, makeDef) => {
    const t0 = performance.now();
    const s = await setup(name, makeDef);
    const tr = await Trainer.create(await testDevice(), s.model.graph, s.spec);
    try {
      const { loss, grads } = await tr.gradients(s.x, s.targets);
      expect(Math.abs(loss - s.meta.loss), `loss ${loss} vs ${s.meta.loss}`).toBeLessThanOrEqual(1e-5 * s.meta.loss);
      const { worst, zeros } = await compareGrads(s, (b) => grads.get(b)!.data, name);

      // BN running statistics after that training forward (gradients() moves them), then after the step's.
      const stats = tr.stateNames.filter(isStat);
      expect(stats.length).toBe([...s.ref.tensors.keys()].filter((k) => k.startsWith('stat1.')).length);
      const checkStats = async (which: 'stat1' | 'stat2') => {
        const state = await tr.readState();
        for (const st of stats)
          compare(state.get(st)!.data, await s.ref.read(`${which}.${s.torchName(st)}`), `${which} ${st}`, 1e-5, 1e-6);
      };
      await checkStats('stat1');
      const before = await tr.readState();
      await tr.step(s.x, s.targets, s.meta.sgd.lr);
      await checkStats('stat2');
      const after = await tr.readState();
      const { lr, weightDecay: wd } = s.meta.sgd;
      for (const r of s.requests) {
        if (isStat(r.name)) continue;
        const t = s.torchName(r.name);
        const g = await s.ref.read(`grad.${t}`);
        const p0 = toTorch(r, before.get(r.name)!.data);
        const want = p0.map((p, i) => p - lr * (g.data[i] + wd * p));
        // The update is lr·(g + wd·p): judged against the change's size, since p itself can be 1e3× larger.
        const step = Float32Array.from(p0, (p, i) => lr * (g.data[i] + wd * p));
        const got = toTorch(r, after.get(r.name)!.data);
        let d = 0,
          m = 0;
        got.forEach((v, i) => {
          d = Math.max(d, Math.abs(v - want[i]));
          m = Math.max(m, Math.abs(step[i]));
        });
        expect(
          d,
          `SGD step ${t}: max|Δ| ${d.toExponential(3)}, max|lr·(g+wd·p)| ${m.toExponential(3)}`,
        ).toBeLessThanOrEqual(RTOL * m + 1e-6 * Math.max(...p0.map(Math.abs)));
      }
      console.log(
        `${name}: loss ${loss.toFixed(6)} (PyTorch ${s.meta.loss.toFixed(6)}), ${grads.size} gradients, ` +
          `worst max|Δ|/max|ref| ${worst.toExponential(2)} (${zeros} zero in exact arithmetic), ` +
          `${stats.length} BN statistics; ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      tr.dispose();
    }
  });

  it('resnet_basic: the backward graph on the CPU (runReference) gives PyTorch gradients too', async () => {
    const s = await setup('resnet_basic', CASES[0][1]);
    const p = buildTrainGraph(s.model.graph, s.spec);
    const feeds = { [p.inputName]: s.x, [p.targets]: s.targets, [p.hyper]: hyperFor(0, 1, 1) };
    const out = runReference(p.g, feeds, [p.loss, ...p.grads]);
    expect(Math.abs(out[p.loss].data[0] - s.meta.loss)).toBeLessThanOrEqual(1e-5 * s.meta.loss);
    const byName = new Map(s.spec.trainable.map((w, i) => [w, out[p.grads[i]].data]));
    const { worst } = await compareGrads(s, (b) => byName.get(b)!, 'runReference');
    console.log(`resnet_basic on the CPU: worst max|Δ|/max|ref| ${worst.toExponential(2)}`);
  });
});
