// The TF.js peer against cnnlab's CPU reference (runReference), op by op and on the demo
// network, with @tensorflow/tfjs on its plain-JS 'cpu' backend in Node.
// Tolerance: |d| ≤ 1e-4 + 1e-4·|ref| elementwise (TF.js computes in f32, the reference in f64).

import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { buildTfjsModel } from '../../bench/peers/tfjs.js';
import { demoNetwork } from '../../bench/demo.js';
import { Graph, runReference } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import { registerOp } from '../../kernels/index.js';
import { numel } from '../../kernels/kernel.js';
import { useTfjsCpu } from '../tfjs-cpu.js';
import { expectClose, rand } from '../helpers.js';

const TOL = { atol: 1e-4, rtol: 1e-4 };

useTfjsCpu();

let seed = 1;

/** A graph input (random in [lo, hi)) or a constant. */
class G {
  readonly g = new Graph();
  readonly feed: Record<string, Float32Array> = {};
  in(shape: number[], lo = -1, hi = 1): string {
    const name = `x${Object.keys(this.feed).length}`;
    this.feed[name] = rand(numel(shape), seed++, lo, hi);
    return this.g.input(name, shape);
  }
  c(shape: number[], lo = -1, hi = 1): string {
    return this.g.constant(`c${this.g.values.size}`, shape, rand(numel(shape), seed++, lo, hi));
  }
}

/** Build the peer, run it, compare every output with runReference; returns the max |d|. */
async function check(g: Graph, feed: Record<string, Float32Array>): Promise<number> {
  const model = buildTfjsModel(tf, g);
  try {
    const got = await model.run(feed);
    const want = runReference(g, feed);
    let maxD = 0;
    for (const o of g.outputs) {
      expectClose(got[o], want[o], TOL, o);
      want[o].data.forEach((v, i) => {
        maxD = Math.max(maxD, Math.abs(v - got[o].data[i]));
      });
    }
    return maxD;
  } finally {
    model.dispose();
  }
}

/** One op on inputs made by `make`, checked against its reference. */
async function checkOp(op: string, attrs: Record<string, unknown>, make: (b: G) => string[]): Promise<void> {
  const b = new G();
  const outs = b.g.add(op, make(b), attrs, 'op');
  b.g.markOutputs(...outs);
  await check(b.g, b.feed);
}

describe('tfjs peer: conv2d', () => {
  const cases: [string, number[], number[], Record<string, unknown>, boolean][] = [
    // name, x, w (HWIO), attrs, bias
    ['3x3 pad 1', [1, 7, 6, 5], [3, 3, 5, 6], { pad: [1, 1, 1, 1] }, false],
    ['1x1 + bias + relu', [2, 4, 5, 8], [1, 1, 8, 12], { act: 'relu' }, true],
    [
      'stride 2, asymmetric pad, bias, relu6',
      [1, 9, 8, 3],
      [3, 3, 3, 7],
      { stride: [2, 2], pad: [0, 1, 1, 0], act: 'relu6' },
      true,
    ],
    ['stride 2x1, pad 3 (7x7 stem-like)', [1, 11, 10, 3], [7, 7, 3, 4], { stride: [2, 1], pad: [3, 3, 3, 3] }, false],
    ['dilation 2', [1, 9, 9, 4], [3, 3, 4, 5], { dilation: [2, 2], pad: [2, 2, 2, 2] }, true],
    [
      'stride 2 + dilation 2',
      [1, 12, 11, 3],
      [3, 3, 3, 5],
      { stride: [2, 2], dilation: [2, 2], pad: [1, 2, 2, 1] },
      true,
    ],
    ['gelu (unfused)', [1, 5, 5, 3], [3, 3, 3, 4], { pad: [1, 1, 1, 1], act: 'gelu' }, true],
    ['hardswish', [1, 5, 5, 3], [3, 3, 3, 4], { pad: [1, 1, 1, 1], act: 'hardswish' }, true],
    ['silu', [1, 5, 5, 3], [3, 3, 3, 4], { pad: [1, 1, 1, 1], act: 'silu' }, true],
    ['groups 2, bias, relu', [2, 6, 6, 6], [3, 3, 3, 8], { groups: 2, pad: [1, 1, 1, 1], act: 'relu' }, true],
    [
      'groups 3, stride 2, gelu',
      [1, 7, 7, 9],
      [3, 3, 3, 6],
      { groups: 3, stride: [2, 2], pad: [1, 0, 1, 1], act: 'gelu' },
      true,
    ],
    ['depthwise m=1, bias, relu6', [1, 8, 7, 6], [3, 3, 1, 6], { groups: 6, pad: [1, 1, 1, 1], act: 'relu6' }, true],
    [
      'depthwise m=1, asymmetric pad, stride 2',
      [1, 9, 8, 5],
      [3, 3, 1, 5],
      { groups: 5, stride: [2, 2], pad: [0, 0, 1, 1] },
      true,
    ],
    ['depthwise m=2, stride 2', [2, 7, 7, 3], [3, 3, 1, 6], { groups: 3, stride: [2, 2], pad: [1, 1, 1, 1] }, true],
    [
      'depthwise m=2, dilation 2, stride 2, hardswish',
      [1, 10, 10, 4],
      [3, 3, 1, 8],
      { groups: 4, stride: [2, 2], dilation: [2, 2], pad: [2, 2, 2, 2], act: 'hardswish' },
      false,
    ],
    ['depthwise 5x5, no bias', [1, 8, 8, 4], [5, 5, 1, 4], { groups: 4, pad: [2, 2, 2, 2] }, false],
  ];
  for (const [name, xs, ws, attrs, bias] of cases) {
    it(name, () => checkOp('conv2d', attrs, (b) => [b.in(xs), b.c(ws), ...(bias ? [b.c([ws[3]])] : [])]));
  }
  it('weights as a graph input (grouped and depthwise split at run time)', async () => {
    await checkOp('conv2d', { groups: 2, pad: [1, 1, 1, 1], act: 'relu' }, (b) => [
      b.in([1, 5, 5, 4]),
      b.in([3, 3, 2, 6]),
      b.in([6]),
    ]);
    await checkOp('conv2d', { groups: 4, pad: [1, 1, 1, 1] }, (b) => [b.in([1, 5, 5, 4]), b.in([3, 3, 1, 8])]);
  });
});

describe('tfjs peer: norms', () => {
  it('batchnorm (rank 4, relu; rank 3)', async () => {
    const bn = (x: number[], act?: string) =>
      checkOp('batchnorm', { eps: 1e-3, act }, (b) => {
        const C = x[x.length - 1];
        return [b.in(x), b.c([C], 0.5, 1.5), b.c([C]), b.c([C]), b.c([C], 0.1, 2)];
      });
    await bn([2, 4, 5, 6], 'relu');
    await bn([2, 3, 7]);
  });
  it('group_norm (4 groups, relu; 1 group)', async () => {
    await checkOp('group_norm', { groups: 4, act: 'relu' }, (b) => [
      b.in([2, 5, 4, 12], -2, 3),
      b.c([12], 0.5, 1.5),
      b.c([12]),
    ]);
    await checkOp('group_norm', { groups: 1, eps: 1e-6 }, (b) => [b.in([1, 3, 3, 5]), b.c([5]), b.c([5])]);
  });
  it('layernorm (rank 3, gelu; rank 2)', async () => {
    await checkOp('layernorm', { act: 'gelu' }, (b) => [b.in([2, 5, 12], -2, 3), b.c([12], 0.5, 1.5), b.c([12])]);
    await checkOp('layernorm', { eps: 1e-5 }, (b) => [b.in([4, 7]), b.c([7]), b.c([7])]);
  });
  it('weight_standardize: folded at build time from a constant, and at run time from an input', async () => {
    const b = new G();
    const ws = b.g.op('weight_standardize', [b.c([3, 3, 4, 6])], { eps: 1e-8 });
    b.g.markOutputs(b.g.op('conv2d', [b.in([1, 6, 6, 4]), ws], { pad: [1, 1, 1, 1] }));
    await check(b.g, b.feed);
    const model = buildTfjsModel(tf, b.g);
    expect(model.weightBytes).toBe(4 * 3 * 3 * 4 * 6); // only the standardised weight is kept
    model.dispose();
    await checkOp('weight_standardize', { eps: 1e-5 }, (bb) => [bb.in([2, 2, 3, 5])]);
  });
  it('softmax over the last axis', () => checkOp('softmax', {}, (b) => [b.in([2, 3, 9], -4, 4)]));
});

describe('tfjs peer: matmul and attention', () => {
  it('shared [K,N] weight, bias, gelu', () =>
    checkOp('matmul', { act: 'gelu' }, (b) => [b.in([2, 5, 6]), b.c([6, 7]), b.c([7])]));
  it('shared weight transB, relu', () =>
    checkOp('matmul', { transB: true, act: 'relu' }, (b) => [b.in([3, 6]), b.c([7, 6]), b.c([7])]));
  it('shared weight with a size-1 batch [1,K,N]', () =>
    checkOp('matmul', {}, (b) => [b.in([2, 3, 4]), b.c([1, 4, 5])]));
  it('batched', () => checkOp('matmul', {}, (b) => [b.in([2, 3, 4, 5]), b.in([2, 3, 5, 6])]));
  it('batched with broadcast batch dims, bias, silu', () =>
    checkOp('matmul', { act: 'silu' }, (b) => [b.in([2, 1, 4, 5]), b.in([3, 5, 6]), b.c([6])]));
  it('batched transB (q kᵀ)', () =>
    checkOp('matmul', { transB: true }, (b) => [b.in([2, 4, 5, 8]), b.in([2, 4, 6, 8])]));
  it('attention, packed qkv', () => checkOp('attention', { heads: 2 }, (b) => [b.in([2, 5, 3 * 8], -2, 2)]));
  it('attention, separate q, k, v with Tq ≠ Tk and a scale', () =>
    checkOp('attention', { heads: 4, scale: 0.3 }, (b) => [
      b.in([2, 3, 8], -2, 2),
      b.in([2, 5, 8], -2, 2),
      b.in([2, 5, 8]),
    ]));
});

describe('tfjs peer: elementwise', () => {
  for (const act of ['none', 'relu', 'relu6', 'gelu', 'hardswish', 'silu']) {
    it(`activation ${act}`, () => checkOp('activation', { act }, (b) => [b.in([2, 3, 4, 5], -8, 8)]));
  }
  it('add with broadcasting and act', async () => {
    await checkOp('add', {}, (b) => [b.in([2, 3, 4, 5]), b.c([5])]);
    await checkOp('add', { act: 'relu' }, (b) => [b.in([2, 1, 4, 1]), b.in([3, 1, 5])]);
    await checkOp('add', { act: 'hardswish' }, (b) => [b.in([2, 6, 4], -5, 5), b.in([2, 6, 4], -5, 5)]);
  });
  it('binary sub, mul, div with broadcasting', async () => {
    await checkOp('binary', { op: 'sub' }, (b) => [b.in([2, 3, 4, 5]), b.c([5])]);
    await checkOp('binary', { op: 'mul' }, (b) => [b.in([2, 3, 4, 5]), b.in([2, 1, 1, 5])]);
    await checkOp('binary', { op: 'div' }, (b) => [b.in([2, 1, 4, 1]), b.in([3, 1, 5], 0.5, 2)]);
  });
  it('unary sigmoid, tanh, hardsigmoid', async () => {
    await checkOp('unary', { fn: 'sigmoid' }, (b) => [b.in([2, 3, 4, 5], -8, 8)]);
    await checkOp('unary', { fn: 'tanh' }, (b) => [b.in([2, 3, 4, 5], -8, 8)]);
    await checkOp('unary', { fn: 'hardsigmoid', alpha: 1 / 6, beta: 0.5 }, (b) => [b.in([7, 5], -8, 8)]);
  });
});

describe('tfjs peer: pooling', () => {
  const x = [2, 9, 8, 5];
  const cases: [string, string, Record<string, unknown>, number[]?][] = [
    ['maxpool 3x3/2 pad 1', 'maxpool', { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }],
    ['maxpool ceil mode', 'maxpool', { kernel: [3, 3], stride: [2, 2], ceilMode: true }],
    [
      'maxpool asymmetric pad, ceil mode',
      'maxpool',
      { kernel: [3, 2], stride: [2, 2], pad: [1, 0, 0, 1], ceilMode: true },
    ],
    ['maxpool 2x2 default stride', 'maxpool', { kernel: [2, 2] }],
    [
      'maxpool dilation 2, pad, ceil mode',
      'maxpool',
      { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dilation: [2, 2], ceilMode: true },
    ],
    [
      'maxpool all-negative input with padding',
      'maxpool',
      { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
      [-3, -1],
    ],
    ['avgpool countIncludePad (default), pad 1', 'avgpool', { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }],
    [
      'avgpool countIncludePad false, pad 1',
      'avgpool',
      { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], countIncludePad: false },
    ],
    [
      'avgpool countIncludePad true, asymmetric pad, ceil mode',
      'avgpool',
      { kernel: [3, 3], stride: [2, 2], pad: [1, 0, 0, 1], ceilMode: true, countIncludePad: true },
    ],
    [
      'avgpool countIncludePad false, asymmetric pad, ceil mode',
      'avgpool',
      { kernel: [3, 3], stride: [2, 2], pad: [0, 1, 1, 0], ceilMode: true, countIncludePad: false },
    ],
    ['avgpool ceil mode, no pad', 'avgpool', { kernel: [2, 2], stride: [2, 2], ceilMode: true }],
    [
      'avgpool dilation 2, pad, countIncludePad true',
      'avgpool',
      { kernel: [2, 3], stride: [1, 2], pad: [1, 1, 0, 1], dilation: [2, 2] },
    ],
    [
      'avgpool dilation 2, ceil, countIncludePad false',
      'avgpool',
      { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dilation: [2, 2], ceilMode: true, countIncludePad: false },
    ],
  ];
  for (const [name, op, attrs, range] of cases) {
    it(name, () => checkOp(op, attrs, (b) => [b.in(x, ...(range ?? [-1, 1]))]));
  }
  it('global_avgpool', () => checkOp('global_avgpool', {}, (b) => [b.in([2, 5, 3, 7])]));
});

describe('tfjs peer: layout', () => {
  it('reshape (with -1) and transpose', async () => {
    await checkOp('reshape', { shape: [2, -1, 6] }, (b) => [b.in([2, 3, 4, 6])]);
    await checkOp('transpose', { perm: [0, 3, 1, 2] }, (b) => [b.in([2, 3, 4, 5])]);
  });
  it('concat with size-1 broadcast (class token), and 3 inputs on a negative axis', async () => {
    await checkOp('concat', { axis: 1 }, (b) => [b.c([1, 1, 6]), b.in([2, 4, 6])]);
    await checkOp('concat', { axis: -1 }, (b) => [b.in([2, 3, 2]), b.in([2, 3, 5]), b.c([1, 3, 1])]);
  });
  it('slice (negative start, clamped end)', async () => {
    await checkOp('slice', { axis: 1, start: -3, end: 100 }, (b) => [b.in([2, 7, 5])]);
    await checkOp('slice', { axis: -1, start: 1, end: 4 }, (b) => [b.in([2, 3, 4, 6])]);
  });
  it('pad with a value', () => checkOp('pad', { pad: [1, 0, 2, 3], value: -0.5 }, (b) => [b.in([1, 3, 4, 2])]));
});

describe('tfjs peer: whole networks', () => {
  it('demoNetwork({size: 32}), optimised and unoptimised', async () => {
    const raw = demoNetwork({ size: 32 });
    const image = rand(32 * 32 * 3, 99, -1, 1);
    const dOpt = await check(optimize(raw).graph, { image });
    const dRaw = await check(raw, { image });
    console.log(
      `demo 32: max |tfjs − reference| optimised ${dOpt.toExponential(2)}, unoptimised ${dRaw.toExponential(2)}`,
    );
  });
  it('demoNetwork batch 2, optimised', async () => {
    const g = optimize(demoNetwork({ size: 32, batch: 2, seed: 3 })).graph;
    await check(g, { image: rand(2 * 32 * 32 * 3, 7, -1, 1) });
  });
  it('runs again on new inputs and counts its weights', async () => {
    const g = optimize(demoNetwork({ size: 32 })).graph;
    const model = buildTfjsModel(tf, g);
    const consts = [...g.values.values()].filter((v) => v.kind === 'const');
    expect(model.weightBytes).toBe(4 * consts.reduce((s, v) => s + numel(v.shape), 0));
    const before = tf.memory().numTensors;
    for (const s of [1, 2]) {
      const image = rand(32 * 32 * 3, s, -1, 1);
      const got = await model.run({ image });
      const want = runReference(g, { image });
      for (const o of g.outputs) expectClose(got[o], want[o], TOL, o);
    }
    expect(tf.memory().numTensors).toBe(before); // run() leaks nothing
    model.dispose();
    await expect(model.run({ image: rand(32 * 32 * 3, 1) })).rejects.toThrow(/after dispose/);
  });
});

describe('tfjs peer: errors', () => {
  it('names an op it does not support', () => {
    registerOp({
      op: 'tfjs_test_mystery',
      arity: [1, 1],
      infer: (_a, [x]) => [x],
      lower: () => ({ dispatches: [] }),
      ref: (_a, [x]) => [x],
    });
    const g = new Graph();
    g.markOutputs(g.op('tfjs_test_mystery', [g.input('x', [1, 4])], {}, 'odd'));
    expect(() => buildTfjsModel(tf, g)).toThrow(/node "odd" \(op "tfjs_test_mystery"\): is not supported/);
  });
  it('names an activation it does not know', () => {
    const g = new Graph();
    g.markOutputs(g.op('activation', [g.input('x', [1, 4])], { act: 'tanh' }, 'a'));
    expect(() => buildTfjsModel(tf, g)).toThrow(/op "activation".*activation "tanh" is not supported/);
  });
  it('names a missing input', async () => {
    const g = new Graph();
    g.markOutputs(g.op('softmax', [g.input('x', [1, 4])]));
    const model = buildTfjsModel(tf, g);
    await expect(model.run({})).rejects.toThrow(/missing input "x"/);
    model.dispose();
  });
});
