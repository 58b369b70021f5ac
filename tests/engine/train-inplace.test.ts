// In-place optimiser updates (docs/autodiff.md, "Parameters and updates in the executor"): where
// nothing after an update node reads the old parameter, sgd_update, adamw_update and ema_update
// write parameter, slots and running statistics into their own buffers. The results must be bit
// for bit those of the copy path (CompileOptions.inPlaceUpdates false), the update sources must
// leave the memory plan, and an update whose parameter is read later must keep its copy.

import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../engine/buffer-pool.js';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { type OptimizerSpec, Trainer, type TrainSpec } from '../../engine/train.js';
import { HYPER, hyperFor } from '../../kernels/backward/optim.js';
import { numel } from '../../kernels/kernel.js';
import { expectClose, rand, testDevice } from '../helpers.js';

const [N, H, W, C, F, K] = [3, 7, 5, 3, 6, 5];

/** conv 3×3/2 (pad 1, bias) → BN + ReLU → depthwise 3×3 → BN → global average pool → linear. */
function net(): Graph {
  const g = new Graph();
  g.input('x', [N, H, W, C]);
  g.constant('c1.w', [3, 3, C, F], rand(9 * C * F, 1, -0.5, 0.5));
  g.constant('c1.b', [F], rand(F, 2, -0.1, 0.1));
  g.constant('dw.w', [3, 3, 1, F], rand(9 * F, 3, -0.5, 0.5));
  for (const [bn, s] of [
    ['bn1', 10],
    ['bn2', 20],
  ] as const) {
    g.constant(`${bn}.weight`, [F], rand(F, s, 0.5, 1.5));
    g.constant(`${bn}.bias`, [F], rand(F, s + 1, -0.2, 0.2));
    g.constant(`${bn}.running_mean`, [F], rand(F, s + 2, -0.3, 0.3));
    g.constant(`${bn}.running_var`, [F], rand(F, s + 3, 0.5, 2));
  }
  g.constant('fc.w', [F, K], rand(F * K, 4, -0.5, 0.5));
  g.constant('fc.b', [K], rand(K, 5, -0.1, 0.1));
  const bnOf = (x: string, bn: string, act: string) =>
    g.op(
      'batchnorm',
      [x, `${bn}.weight`, `${bn}.bias`, `${bn}.running_mean`, `${bn}.running_var`],
      { act, eps: 1e-5 },
      bn,
    );
  const c1 = g.op('conv2d', ['x', 'c1.w', 'c1.b'], { stride: [2, 2], pad: [1, 1, 1, 1] }, 'c1');
  const dw = g.op('conv2d', [bnOf(c1, 'bn1', 'relu'), 'dw.w'], { groups: F, pad: [1, 1, 1, 1] }, 'dw');
  const gap = g.op('global_avgpool', [bnOf(dw, 'bn2', 'none')], {}, 'gap');
  g.markOutputs(g.op('matmul', [gap, 'fc.w', 'fc.b'], {}, 'fc'));
  return g;
}

const trainable = ['c1.w', 'c1.b', 'dw.w', 'bn1.weight', 'bn1.bias', 'bn2.weight', 'bn2.bias', 'fc.w', 'fc.b'];
const OPTIMIZERS: [string, OptimizerSpec, number | undefined][] = [
  ['SGD (momentum, nesterov)', { kind: 'sgd', momentum: 0.9, nesterov: true, weightDecay: 1e-3 }, undefined],
  ['AdamW with clipping', { kind: 'adamw', beta1: 0.85, beta2: 0.98, eps: 1e-6, weightDecay: 0.02 }, 0.3],
];

describe('in-place optimiser updates', () => {
  it.each(OPTIMIZERS)('%s: bit for bit the copy path over 3 steps and an accumulated step', async (_, o, clip) => {
    const dev = await testDevice();
    const spec: TrainSpec = { logits: 'fc', trainable, optimizer: o, clipNorm: clip, bnMomentum: 0.2 };
    const inPlace = await Trainer.create(dev, net(), spec);
    const copy = await Trainer.create(dev, net(), spec, { inPlaceUpdates: false });
    try {
      const t = rand(N * K, 7, 0, 1);
      for (let s = 0; s < 3; s++) {
        const x = rand(N * H * W * C, 100 + s);
        const [a, b] = [await inPlace.step(x, t, 0.05), await copy.step(x, t, 0.05)];
        expect(a.loss).toBe(b.loss);
      }
      // The accumulation plan's apply graph reads its parameters only in the optimiser: in place too.
      for (const tr of [inPlace, copy]) {
        await tr.accumulate(rand(N * H * W * C, 200), t);
        await tr.accumulate(rand(N * H * W * C, 201), t);
        await tr.apply(0.05, 2);
      }
      const [sa, sb] = [await inPlace.readState(), await copy.readState()];
      expect(sa.size).toBe(trainable.length * (o.kind === 'sgd' ? 2 : 3) + 4 + 1);
      for (const [k, v] of sb) expect(sa.get(k)!.data, k).toEqual(v.data);
      // What moved: every parameter, slot and statistic differs from its initial value.
      const init = net();
      for (const k of [...trainable, 'bn1.running_mean', 'bn2.running_var'])
        expect(sa.get(k)!.data, k).not.toEqual(init.value(k).data);

      // The update sources (new parameters, slots and statistics) left the memory plan: the sum of
      // all intermediates drops by exactly their sizes, the planned slots and the peak do not grow.
      const [mi, mc] = [inPlace.memory, copy.memory];
      const outs = o.kind === 'sgd' ? 2 : 3;
      const sources =
        trainable.reduce((s, p) => s + outs * BufferPool.round(numel(inPlace.graph.shape(p)) * 4), 0) +
        4 * BufferPool.round(F * 4);
      expect(mc.activationBytesUnplanned - mi.activationBytesUnplanned).toBe(sources);
      expect(mi.activationBytes).toBeLessThanOrEqual(mc.activationBytes);
      expect(mi.peakBytes).toBeLessThanOrEqual(mc.peakBytes);
      console.log(
        `${o.kind}: intermediates ${mc.activationBytes} → ${mi.activationBytes} bytes planned, ` +
          `${mc.activationBytesUnplanned} → ${mi.activationBytesUnplanned} unplanned; peak ${mc.peakBytes} → ${mi.peakBytes}`,
      );
    } finally {
      inPlace.dispose();
      copy.dispose();
    }
  });

  it('an update whose parameter a later node reads keeps the copy (the reader sees the old value)', async () => {
    // p ← sgd(p), then y = p + x after the update node: y must use the old p on every run.
    const g = new Graph();
    const n = 37;
    g.param('p', [n], rand(n, 1));
    g.param('p#momentum', [n], new Float32Array(n));
    g.input('g', [n]);
    g.input('x', [n]);
    g.input('hyper', [HYPER.length]);
    const [p1, b1] = g.add('sgd_update', ['p', 'g', 'p#momentum', 'hyper'], { momentum: 0.9, weightDecay: 0 }, 'opt');
    g.markOutputs(g.op('add', ['p', 'x'], {}, 'y'));
    g.update('p', p1);
    g.update('p#momentum', b1);
    const plan = await compile(await testDevice(), g);
    const x = rand(n, 2);
    const gr = rand(n, 3);
    const tol = { atol: 1e-6, rtol: 1e-6 };
    try {
      let p = g.value('p').data!.slice();
      let buf = new Float32Array(n);
      for (let s = 0; s < 2; s++) {
        const { outputs } = await plan.run({ g: gr, x, hyper: hyperFor(0.1, 1, s + 1) });
        expectClose(outputs.y, { shape: [n], data: p.map((v, i) => v + x[i]) }, tol, `run ${s} y`);
        buf = buf.map((b, i) => 0.9 * b + gr[i]);
        p = p.map((v, i) => v - 0.1 * buf[i]);
      }
      expectClose((await plan.readParams()).get('p')!, { shape: [n], data: p }, tol, 'p');
      // p stays on the copy path, and so does its momentum buffer (a node is in place for all or none).
      expect(plan.memory.activationBytesUnplanned).toBe(2 * BufferPool.round(n * 4));
    } finally {
      plan.dispose();
    }
  });
});
