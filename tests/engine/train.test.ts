// The Trainer: a tiny MLP learns a separable toy set on the GPU; one GPU step equals the same
// step computed with runReference; gradient accumulation equals the full batch; a resume through
// readState/writeState continues bit for bit; predict sees the trained weights.

import { describe, expect, it } from 'vitest';
import { Graph, runReference } from '../../engine/graph.js';
import { type TrainSpec, Trainer, buildTrainGraph } from '../../engine/train.js';
import { hyperFor } from '../../kernels/backward/optim.js';
import { Rng } from '../../models/init.js';
import { expectClose, rand, testDevice } from '../helpers.js';

const [N, D, H, K] = [12, 5, 9, 3];

function mlp(): Graph {
  const g = new Graph();
  g.input('x', [N, D]);
  g.constant('fc1.weight', [D, H], rand(D * H, 1, -0.6, 0.6));
  g.constant('fc1.bias', [H], rand(H, 2, -0.1, 0.1));
  g.constant('fc2.weight', [H, K], rand(H * K, 3, -0.6, 0.6));
  g.constant('fc2.bias', [K], new Float32Array(K));
  const h = g.op('matmul', ['x', 'fc1.weight', 'fc1.bias'], { act: 'gelu' }, 'fc1');
  g.markOutputs(g.op('matmul', [h, 'fc2.weight', 'fc2.bias'], {}, 'fc2'));
  return g;
}

/** Batch `b` of a toy set: class k sits around centre k (well separated), one-hot targets. */
function batch(b: number): { x: Float32Array; t: Float32Array; labels: number[] } {
  const rng = new Rng(1000 + b);
  const centres = [
    [2, 0, 0, 1, -1],
    [-2, 1, 0, 0, 1],
    [0, -2, 2, -1, 0],
  ];
  const x = new Float32Array(N * D);
  const t = new Float32Array(N * K);
  const labels: number[] = [];
  for (let i = 0; i < N; i++) {
    const k = i % K;
    labels.push(k);
    t[i * K + k] = 1;
    for (let d = 0; d < D; d++) x[i * D + d] = centres[k][d] + 0.5 * (2 * rng.uniform() - 1);
  }
  return { x, t, labels };
}

const trainable = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'];
const sgd: TrainSpec = {
  logits: 'fc2',
  trainable,
  optimizer: { kind: 'sgd', momentum: 0.9, weightDecay: 1e-4 },
  labelSmoothing: 0.1,
};
const adamw: TrainSpec = {
  logits: 'fc2',
  trainable,
  optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
  clipNorm: 0.5,
};

describe('Trainer', () => {
  it('an MLP learns a separable toy set (SGD with momentum); predict uses the trained weights', async () => {
    const tr = await Trainer.create(await testDevice(), mlp(), sgd);
    try {
      expect([tr.inputName, tr.batch, tr.classes]).toEqual(['x', N, K]);
      const losses: number[] = [];
      for (let s = 0; s < 25; s++) {
        const { x, t } = batch(s % 4);
        losses.push((await tr.step(x, t, 0.05)).loss);
      }
      expect(losses[0]).toBeGreaterThan(0.7);
      expect(losses[24]).toBeLessThan(0.45); // label smoothing 0.1 keeps the floor near 0.2
      const test = batch(99);
      const logits = await tr.predict(test.x);
      const correct = test.labels.filter((k, i) => {
        const row = [...logits.subarray(i * K, i * K + K)];
        return row.indexOf(Math.max(...row)) === k;
      }).length;
      expect(correct).toBe(N);
      // The same logits from runReference with the weights read back.
      const state = await tr.readState();
      const params = new Map(trainable.map((p) => [p, state.get(p)!.data]));
      const f = mlp();
      for (const p of trainable) f.makeParam(p);
      const want = runReference(f, { x: test.x }, ['fc2'], params).fc2;
      expectClose({ shape: [N, K], data: logits }, want, { atol: 1e-5, rtol: 1e-4 }, 'predict');
      expect(state.get('step')!.data[0]).toBe(25);
      // What the step holds: 4 parameters and 4 momentum buffers, gradients as big as the parameters.
      const m = tr.memory;
      expect(m.trainableBytes).toBe(192 + 48 + 112 + 16); // 45, 9, 27, 3 floats, each rounded up to 16 bytes
      expect(m.optimizerBytes).toBe(m.trainableBytes);
      expect(m.gradientBytes).toBe(m.trainableBytes);
      expect(m.paramBytes).toBe(m.trainableBytes + m.optimizerBytes);
      expect(m.peakBytes).toBe(m.weightBytes + m.paramBytes + m.ioBytes + m.activationBytes);
    } finally {
      tr.dispose();
    }
  });

  it('one GPU step (AdamW, clipping) equals the step computed by runReference on the same graph', async () => {
    const tr = await Trainer.create(await testDevice(), mlp(), adamw);
    try {
      const { x, t } = batch(0);
      const before = await tr.readState();
      const { loss } = await tr.step(x, t, 0.01);
      const after = await tr.readState();
      // The step graph by the references: inputs as the trainer feeds them, updates read by hand.
      const g = tr.graph;
      const feeds = { x, targets: t, hyper: hyperFor(0.01, 1, 1, [0.9, 0.999]) };
      const sources = g.updates.map(([, s]) => s);
      const params = new Map([...before].map(([k, v]) => [k, v.data]));
      const ref = runReference(g, feeds, [g.outputs[0], ...sources], params);
      expect(loss).toBeCloseTo(ref[g.outputs[0]].data[0], 5);
      g.updates.forEach(([target, source]) => {
        expectClose(after.get(target)!, ref[source], { atol: 1e-5, rtol: 1e-4 }, target);
      });
      // Clipping was active: the gradient norm of a fresh MLP on this batch is above 0.5.
      expect(g.nodes.some((n) => n.op === 'grad_clip_scale')).toBe(true);
    } finally {
      tr.dispose();
    }
  });

  it('resumes bit for bit: readState → new Trainer → writeState → the same next steps', async () => {
    const dev = await testDevice();
    const a = await Trainer.create(dev, mlp(), adamw);
    const b = await Trainer.create(dev, mlp(), adamw);
    try {
      for (let s = 0; s < 3; s++) await a.step(batch(s).x, batch(s).t, 0.02);
      await b.writeState(await a.readState());
      const la: number[] = [];
      const lb: number[] = [];
      for (let s = 3; s < 6; s++) {
        la.push((await a.step(batch(s).x, batch(s).t, 0.02)).loss);
        lb.push((await b.step(batch(s).x, batch(s).t, 0.02)).loss);
      }
      expect(lb).toEqual(la);
      const [sa, sb] = [await a.readState(), await b.readState()];
      for (const [k, v] of sa) expect([...sb.get(k)!.data], k).toEqual([...v.data]);
      expect(sa.size).toBe(4 * 3 + 1);
      const bad = new Map(sa);
      bad.delete('fc1.bias#v');
      bad.set('junk', sa.get('step')!);
      await expect(b.writeState(bad)).rejects.toThrow(/missing fc1.bias#v; unknown junk/);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('accumulating two half batches and applying equals one step on the whole batch', async () => {
    const dev = await testDevice();
    // Two identical half batches: their mean gradient is the whole (duplicated) batch's.
    const spec: TrainSpec = { ...sgd, labelSmoothing: 0 };
    const whole = await Trainer.create(dev, mlp(), spec);
    const acc = await Trainer.create(dev, mlp(), spec);
    try {
      const { x, t } = batch(5);
      for (let s = 0; s < 2; s++) {
        await whole.step(x, t, 0.1);
        await acc.accumulate(x, t);
        await acc.accumulate(x, t);
        await acc.apply(0.1, 2);
      }
      const [w, a] = [await whole.readState(), await acc.readState()];
      for (const [k, v] of w) expectClose(a.get(k)!, v, { atol: 1e-6, rtol: 1e-5 }, k);
    } finally {
      whole.dispose();
      acc.dispose();
    }
  });

  it('rejects what it cannot train, naming it', async () => {
    const dev = await testDevice();
    await expect(Trainer.create(dev, mlp(), { ...sgd, trainable: ['x'] })).rejects.toThrow(/"x" is not a constant/);
    await expect(Trainer.create(dev, mlp(), { ...sgd, trainable: [] })).rejects.toThrow(/nothing to train/);
    await expect(Trainer.create(dev, mlp(), { ...sgd, logits: 'fc1.bias' })).rejects.toThrow(/must be \[N, K\]/);
  });
});

describe('training graphs', () => {
  it('gradients(): the loss and each parameter gradient equal the backward graph by runReference', async () => {
    const tr = await Trainer.create(await testDevice(), mlp(), sgd);
    try {
      const { x, t } = batch(2);
      const { loss, grads } = await tr.gradients(x, t);
      const p = buildTrainGraph(mlp(), sgd);
      const smooth = t.map((v) => v * 0.9 + 0.1 / K);
      const ref = runReference(p.g, { x, targets: smooth, hyper: hyperFor(0, 1, 1) }, [p.loss, ...p.grads]);
      expect(loss).toBeCloseTo(ref[p.loss].data[0], 5);
      trainable.forEach((w, i) => {
        expectClose(grads.get(w)!, ref[p.grads[i]], { atol: 1e-6, rtol: 1e-4 }, `d${w}`);
      });
      // Nothing moved: a second call gives the same gradients.
      const again = await tr.gradients(x, t);
      expect([...again.grads.get('fc1.weight')!.data]).toEqual([...grads.get('fc1.weight')!.data]);
      await expect(tr.apply(0.1, 1)).rejects.toThrow(/without accumulate/);
    } finally {
      tr.dispose();
    }
  });

  it('BN in training mode: batchnorm → batchnorm_train, running statistics updated as PyTorch does', () => {
    const g = new Graph();
    const [B, S, C] = [3, 2, 4];
    g.input('x', [B, S, S, C]);
    g.constant('bn.weight', [C], rand(C, 61, 0.5, 1.5));
    g.constant('bn.bias', [C], rand(C, 62));
    g.constant('bn.running_mean', [C], rand(C, 63));
    g.constant('bn.running_var', [C], rand(C, 64, 0.5, 2));
    const y = g.op(
      'batchnorm',
      ['x', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'],
      { act: 'relu', eps: 1e-5 },
      'bn',
    );
    g.constant('w', [C, 2], rand(2 * C, 65));
    g.markOutputs(g.op('matmul', [g.op('global_avgpool', [y], {}, 'gap'), 'w'], {}, 'head'));
    const spec: TrainSpec = { ...sgd, logits: 'head', trainable: ['w'], bnMomentum: 0.2 };
    const p = buildTrainGraph(g, spec);
    expect(p.g.nodes.filter((n) => n.op === 'batchnorm')).toEqual([]);
    expect(p.g.nodes.find((n) => n.name === 'bn')?.op).toBe('batchnorm_train');
    expect(p.bnStats.map(([s]) => s)).toEqual(['bn.running_mean', 'bn.running_var']);
    expect(p.g.value('bn.running_var').kind).toBe('param');
    const x = rand(B * S * S * C, 66, -2, 3);
    const targets = new Float32Array(B * 2).fill(0.5);
    const srcs = p.bnStats.map(([, s]) => s);
    const ref = runReference(p.g, { x, targets, hyper: hyperFor(0.1, 1, 1) }, srcs);
    const n = B * S * S;
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += x[i * C + c];
      const mean = s / n;
      let q = 0;
      for (let i = 0; i < n; i++) q += (x[i * C + c] - mean) ** 2;
      const rm = g.value('bn.running_mean').data![c];
      const rv = g.value('bn.running_var').data![c];
      expect(ref[srcs[0]].data[c]).toBeCloseTo(0.8 * rm + 0.2 * mean, 5);
      expect(ref[srcs[1]].data[c]).toBeCloseTo(0.8 * rv + 0.2 * (q / (n - 1)), 5);
    }
    // Frozen BN keeps `batchnorm` and its statistics constant.
    const frozen = buildTrainGraph(g, { ...spec, batchNorm: 'frozen' });
    expect(frozen.g.nodes.find((n) => n.name === 'bn.pre')?.op).toBe('batchnorm'); // its ReLU split off by grad
    expect(frozen.bnStats).toEqual([]);
    expect(frozen.g.value('bn.running_var').kind).toBe('const');
  });
});
