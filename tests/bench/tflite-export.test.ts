// The TFLite exporter's files read back with flatbuffers' ByteBuffer (bench/peers/tflite-schema.ts
// readTflite): header, buffers, tensors, operators, opcodes and options for small graphs covering
// every mapped op, the weight layouts, whole models' op counts, and the errors. That LiteRT.js
// runs these files and matches runReference is tests/bench/litert.test.ts (Chromium).

import { describe, expect, test } from 'vitest';
import { exportTflite, TFLITE_EXPORTABLE_OPS, TfliteExportError } from '../../bench/peers/tflite-export.js';
import {
  BuiltinOperator,
  encodeTflite,
  FusedActivation,
  Padding,
  type ReadModel,
  readTflite,
  TensorType,
} from '../../bench/peers/tflite-schema.js';
import { Graph } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import { registerOp } from '../../kernels/index.js';
import { numel } from '../../kernels/kernel.js';
import { loadModel } from '../../models/registry.js';
import { rand } from '../helpers.js';

let seed = 1;
const konst = (g: Graph, name: string, shape: number[], lo = -1, hi = 1) =>
  g.constant(name, shape, rand(numel(shape), seed++, lo, hi));

/** A graph on input 'x' with one output, exported and read back. */
function roundTrip(x: number[], build: (g: Graph) => string): { m: ReadModel; g: Graph; bytes: Uint8Array } {
  const g = new Graph();
  g.input('x', x);
  g.markOutputs(build(g));
  const bytes = exportTflite(g);
  return { m: readTflite(bytes), g, bytes };
}

const ops = (m: ReadModel) => m.operators.map((o) => o.op);
const count = (m: ReadModel, op: string) => ops(m).filter((o) => o === op).length;
const tensorOf = (m: ReadModel, k: number) => m.tensors[k];
/** The f32 data of constant tensor k. */
const floats = (m: ReadModel, k: number) => {
  const b = m.buffers[m.tensors[k].buffer];
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const ints = (m: ReadModel, k: number) => {
  const b = m.buffers[m.tensors[k].buffer];
  return [...new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength))];
};

describe('the file', () => {
  test('header, sentinel buffer, one subgraph, signature, names and shapes; weights 16-byte aligned', () => {
    const { m, g, bytes } = roundTrip([1, 5, 6, 3], (g) => g.op('conv2d', ['x', konst(g, 'w', [3, 3, 3, 4])], {}, 'y'));
    expect(new TextDecoder().decode(bytes.subarray(4, 8))).toBe('TFL3');
    expect(m.version).toBe(3);
    expect(m.description).toBe('cnnlab');
    expect(m.buffers[0].length).toBe(0);
    expect(m.inputs.map((k) => tensorOf(m, k))).toEqual([{ name: 'x', shape: [1, 5, 6, 3], type: 0, buffer: 0 }]);
    expect(m.outputs.map((k) => tensorOf(m, k))).toEqual([{ name: 'y', shape: g.shape('y'), type: 0, buffer: 0 }]);
    expect(m.signatures).toEqual([
      { key: 'serving_default', subgraph: 0, inputs: [['x', 0]], outputs: [['y', m.outputs[0]]] },
    ]);
    for (const b of m.buffers.slice(1)) expect(b.byteOffset % 16).toBe(0);
    // Every operator's tensors exist, and each non-input is written by exactly one earlier operator.
    const written = new Set(m.inputs);
    for (const o of m.operators) {
      for (const k of o.inputs) expect(k === -1 || written.has(k) || m.tensors[k].buffer > 0).toBe(true);
      for (const k of o.outputs) {
        expect(written.has(k)).toBe(false);
        written.add(k);
      }
    }
  });

  test('operator codes: one per builtin, codes ≥ 127 only in builtin_code', () => {
    const { m } = roundTrip([2, 6], (g) =>
      g.op('activation', [g.op('matmul', ['x', g.op('activation', ['x'], { act: 'gelu' })], { transB: true })], {
        act: 'gelu',
      }),
    );
    expect(ops(m)).toEqual(['GELU', 'BATCH_MATMUL', 'GELU']);
    expect(m.operatorCodes).toEqual([
      { code: BuiltinOperator.GELU, deprecated: 127, version: 1 },
      { code: BuiltinOperator.BATCH_MATMUL, deprecated: 126, version: 1 },
    ]);
  });

  test('encodeTflite refuses a non-empty buffer 0', () => {
    expect(() =>
      encodeTflite({
        description: '',
        tensors: [],
        inputs: [],
        outputs: [],
        operators: [],
        buffers: [new Uint8Array(4)],
        signatureKey: 's',
      }),
    ).toThrow(/buffer 0 must be the empty sentinel/);
  });
});

describe('conv2d', () => {
  test('3x3 pad 1 stride 1 is SAME, weights OHWI, bias and relu fused', () => {
    const { m, g } = roundTrip([1, 7, 6, 5], (g) =>
      g.op('conv2d', ['x', konst(g, 'w', [3, 3, 5, 6]), konst(g, 'b', [6])], { pad: [1, 1, 1, 1], act: 'relu' }),
    );
    expect(ops(m)).toEqual(['CONV_2D']);
    const [op] = m.operators;
    expect(op.options).toEqual({
      table: 'Conv2DOptions',
      padding: Padding.SAME,
      strideW: 1,
      strideH: 1,
      act: FusedActivation.RELU,
      dilationW: 1,
      dilationH: 1,
    });
    const w = g.value('w').data!;
    expect(tensorOf(m, op.inputs[1]).shape).toEqual([6, 3, 3, 5]);
    const ohwi = floats(m, op.inputs[1]);
    // OHWI[o][h][w][i] = HWIO[h][w][i][o]
    for (const [o, h, ww, i] of [
      [0, 0, 0, 0],
      [5, 2, 1, 4],
      [3, 1, 2, 2],
    ])
      expect(ohwi[((o * 3 + h) * 3 + ww) * 5 + i]).toBe(w[((h * 3 + ww) * 5 + i) * 6 + o]);
    expect([...floats(m, op.inputs[2])]).toEqual([...g.value('b').data!]);
  });

  test('stride 2 with pads that are not SAME: explicit PAD, then VALID; zero bias when there is none', () => {
    const { m } = roundTrip([2, 9, 8, 3], (g) =>
      g.op('conv2d', ['x', konst(g, 'w', [3, 3, 3, 7])], { stride: [2, 2], pad: [1, 0, 2, 1], act: 'relu6' }),
    );
    expect(ops(m)).toEqual(['PAD', 'CONV_2D']);
    expect(ints(m, m.operators[0].inputs[1])).toEqual([0, 0, 1, 2, 0, 1, 0, 0]);
    expect(tensorOf(m, m.operators[0].outputs[0]).shape).toEqual([2, 12, 9, 3]);
    expect(m.operators[1].options).toMatchObject({ padding: Padding.VALID, strideW: 2, strideH: 2, act: 3 });
    expect([...floats(m, m.operators[1].inputs[2])]).toEqual(new Array(7).fill(0));
  });

  test('a gelu epilogue becomes a GELU op; a fused residual an ADD carrying the relu', () => {
    const a = roundTrip([1, 9, 9, 4], (g) =>
      g.op('conv2d', ['x', konst(g, 'w', [3, 3, 4, 4])], { dilation: [2, 2], pad: [2, 2, 2, 2], act: 'gelu' }),
    ).m;
    expect(ops(a)).toEqual(['CONV_2D', 'GELU']);
    expect(a.operators[0].options).toMatchObject({ act: FusedActivation.NONE, dilationW: 2, dilationH: 2 });
    expect(a.operators[1].options).toEqual({ table: 'GeluOptions', approximate: false });
    const b = roundTrip([1, 5, 6, 6], (g) =>
      g.op('conv2d', ['x', konst(g, 'w', [1, 1, 6, 6]), konst(g, 'b', [6]), 'x'], { act: 'relu' }),
    ).m;
    expect(ops(b)).toEqual(['CONV_2D', 'ADD']);
    expect(b.operators[0].options).toMatchObject({ padding: Padding.VALID, act: FusedActivation.NONE });
    expect(b.operators[1].options).toEqual({ table: 'AddOptions', act: FusedActivation.RELU });
    expect(b.operators[1].inputs).toEqual([b.operators[0].outputs[0], 0]);
  });

  test('depthwise: weights [1,kh,kw,C_out], depth multiplier C_out/C_in', () => {
    const { m, g } = roundTrip([1, 6, 5, 3], (g) =>
      g.op('conv2d', ['x', konst(g, 'w', [3, 3, 1, 6])], { groups: 3, pad: [1, 1, 1, 1], act: 'hardswish' }),
    );
    expect(ops(m)).toEqual(['DEPTHWISE_CONV_2D', 'HARD_SWISH']);
    expect(m.operators[0].options).toEqual({
      table: 'DepthwiseConv2DOptions',
      padding: Padding.SAME,
      strideW: 1,
      strideH: 1,
      depthMultiplier: 2,
      act: FusedActivation.NONE,
      dilationW: 1,
      dilationH: 1,
    });
    expect(tensorOf(m, m.operators[0].inputs[1]).shape).toEqual([1, 3, 3, 6]);
    expect([...floats(m, m.operators[0].inputs[1])]).toEqual([...g.value('w').data!]);
  });
});

describe('pooling', () => {
  test('maxpool after a relu pads with PAD (zeros), on any input with PADV2 (the lowest float)', () => {
    const a = roundTrip([1, 9, 8, 5], (g) =>
      g.op('maxpool', [g.op('activation', ['x'], { act: 'relu' })], {
        kernel: [3, 3],
        stride: [2, 2],
        pad: [1, 1, 1, 1],
      }),
    ).m;
    expect(ops(a)).toEqual(['RELU', 'PAD', 'MAX_POOL_2D']);
    expect(a.operators[2].options).toEqual({
      table: 'Pool2DOptions',
      padding: Padding.VALID,
      strideW: 2,
      strideH: 2,
      filterW: 3,
      filterH: 3,
      act: 0,
    });
    const b = roundTrip([1, 8, 6, 3], (g) =>
      g.op('maxpool', ['x'], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }),
    ).m;
    expect(ops(b)).toEqual(['PADV2', 'MAX_POOL_2D']);
    expect(floats(b, b.operators[0].inputs[2])[0]).toBe(-3.4028234663852886e38);
    // An odd size: torch's pads are TF's SAME split, no pad op at all.
    const c = roundTrip([1, 7, 7, 3], (g) =>
      g.op('maxpool', ['x'], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }),
    ).m;
    expect(ops(c)).toEqual(['MAX_POOL_2D']);
    expect(c.operators[0].options).toMatchObject({ padding: Padding.SAME });
  });

  test('avgpool: no pads → VALID; pads excluded → SAME; pads counted → a depthwise conv of 1/(kh·kw)', () => {
    const a = roundTrip([2, 6, 8, 3], (g) => g.op('avgpool', ['x'], { kernel: [2, 2], stride: [2, 2] })).m;
    expect(ops(a)).toEqual(['AVERAGE_POOL_2D']);
    expect(a.operators[0].options).toMatchObject({ padding: Padding.VALID, filterW: 2, filterH: 2 });
    const b = roundTrip([1, 5, 4, 3], (g) =>
      g.op('avgpool', ['x'], { kernel: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], countIncludePad: false }),
    ).m;
    expect(ops(b)).toEqual(['AVERAGE_POOL_2D']);
    expect(b.operators[0].options).toMatchObject({ padding: Padding.SAME });
    const c = roundTrip([1, 5, 4, 3], (g) =>
      g.op('avgpool', ['x'], { kernel: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], countIncludePad: true }),
    ).m;
    expect(ops(c)).toEqual(['DEPTHWISE_CONV_2D']);
    expect(c.operators[0].options).toMatchObject({ padding: Padding.SAME, depthMultiplier: 1 });
    expect([...floats(c, c.operators[0].inputs[1])]).toEqual(new Array(27).fill(Math.fround(1 / 9)));
  });

  test('global_avgpool is MEAN over H and W', () => {
    const { m } = roundTrip([2, 3, 5, 7], (g) => g.op('global_avgpool', ['x'], {}));
    expect(ops(m)).toEqual(['MEAN']);
    expect(ints(m, m.operators[0].inputs[1])).toEqual([1, 2]);
    expect(m.operators[0].options).toEqual({ table: 'ReducerOptions', keepDims: false });
    expect(tensorOf(m, m.outputs[0]).shape).toEqual([2, 7]);
  });
});

describe('matmul and attention', () => {
  test('one weight matrix: FULLY_CONNECTED with [N,K] weights, keep_num_dims for rank 3', () => {
    const a = roundTrip([3, 10], (g) =>
      g.op('matmul', ['x', konst(g, 'w', [10, 7]), konst(g, 'b', [7])], { act: 'relu' }),
    );
    expect(ops(a.m)).toEqual(['FULLY_CONNECTED']);
    expect(a.m.operators[0].options).toEqual({
      table: 'FullyConnectedOptions',
      act: FusedActivation.RELU,
      keepNumDims: false,
    });
    const w = a.g.value('w').data!,
      nk = floats(a.m, a.m.operators[0].inputs[1]);
    expect(tensorOf(a.m, a.m.operators[0].inputs[1]).shape).toEqual([7, 10]);
    expect(nk[3 * 10 + 4]).toBe(w[4 * 7 + 3]);
    const b = roundTrip([2, 5, 12], (g) =>
      g.op('matmul', ['x', konst(g, 'w', [9, 12])], { transB: true, act: 'gelu' }),
    );
    expect(ops(b.m)).toEqual(['FULLY_CONNECTED', 'GELU']);
    expect(b.m.operators[0].options).toMatchObject({ keepNumDims: true, act: FusedActivation.NONE });
    expect([...floats(b.m, b.m.operators[0].inputs[1])]).toEqual([...b.g.value('w').data!]); // already [N,K]
    expect(tensorOf(b.m, b.m.outputs[0]).shape).toEqual([2, 5, 9]);
  });

  test('two values: BATCH_MATMUL (adj_y for transB), bias as ADD', () => {
    const { m } = roundTrip([2, 3, 4, 6], (g) =>
      g.op('matmul', ['x', g.op('activation', ['x'], { act: 'relu' }), konst(g, 'b', [4])], {
        transB: true,
        act: 'silu',
      }),
    );
    expect(ops(m)).toEqual(['RELU', 'BATCH_MATMUL', 'ADD', 'LOGISTIC', 'MUL']);
    expect(m.operators[1].options).toEqual({ table: 'BatchMatMulOptions', adjX: false, adjY: true });
  });

  test('packed attention: slices, heads, two batched matmuls, softmax, every tensor of rank ≤ 4', () => {
    const { m } = roundTrip([2, 5, 36], (g) => g.op('attention', ['x'], { heads: 3 }));
    expect(count(m, 'STRIDED_SLICE')).toBe(3);
    expect(count(m, 'BATCH_MATMUL')).toBe(2);
    expect(count(m, 'SOFTMAX')).toBe(1);
    expect(count(m, 'TRANSPOSE')).toBe(4);
    expect(m.tensors.every((t) => t.shape.length <= 4)).toBe(true);
    const k = m.operators.find((o) => o.op === 'STRIDED_SLICE' && m.tensors[o.outputs[0]].name.endsWith('k_proj'))!;
    expect(ints(m, k.inputs[1])).toEqual([0, 0, 12]);
    expect(ints(m, k.inputs[2])).toEqual([2, 5, 24]);
    const scale = m.operators.find((o) => o.op === 'MUL')!;
    expect(floats(m, scale.inputs[1])[0]).toBeCloseTo(1 / 2, 7);
    expect(tensorOf(m, m.outputs[0]).shape).toEqual([2, 5, 12]);
  });
});

describe('norms and elementwise', () => {
  test('layernorm: MEAN, SUB, MUL, MEAN, ADD ε, RSQRT, MUL, MUL γ, ADD β', () => {
    const { m } = roundTrip([2, 5, 12], (g) =>
      g.op('layernorm', ['x', konst(g, 'gamma', [12]), konst(g, 'beta', [12])], { eps: 1e-6, act: 'relu' }),
    );
    expect(ops(m)).toEqual(['MEAN', 'SUB', 'MUL', 'MEAN', 'ADD', 'RSQRT', 'MUL', 'MUL', 'ADD']);
    expect(ints(m, m.operators[0].inputs[1])).toEqual([2]);
    expect(m.operators[0].options).toEqual({ table: 'ReducerOptions', keepDims: true });
    expect(floats(m, m.operators[4].inputs[1])[0]).toBe(Math.fround(1e-6));
    expect(m.operators[8].options).toEqual({ table: 'AddOptions', act: FusedActivation.RELU });
  });

  test('group_norm: RESHAPE to groups, the layernorm sequence over axes 1 and 3, RESHAPE back, γ, β', () => {
    const { m } = roundTrip([2, 3, 5, 6], (g) =>
      g.op('group_norm', ['x', konst(g, 'gamma', [6]), konst(g, 'beta', [6])], { groups: 3, act: 'silu' }),
    );
    expect(ops(m)).toEqual([
      'RESHAPE',
      'MEAN',
      'SUB',
      'MUL',
      'MEAN',
      'ADD',
      'RSQRT',
      'MUL',
      'RESHAPE',
      'MUL',
      'ADD',
      'LOGISTIC',
      'MUL',
    ]);
    expect(m.operators[0].options).toEqual({ table: 'ReshapeOptions', newShape: [2, 15, 3, 2] });
    expect(ints(m, m.operators[1].inputs[1])).toEqual([1, 3]);
    expect(tensorOf(m, m.operators[1].outputs[0]).shape).toEqual([2, 1, 3, 1]);
  });

  test('batchnorm that did not fold: MUL scale, ADD shift', () => {
    const { m } = roundTrip([1, 4, 5, 6], (g) =>
      g.op('batchnorm', ['x', konst(g, 'g', [6]), konst(g, 'b', [6]), konst(g, 'm', [6]), konst(g, 'v', [6], 0.5, 2)], {
        eps: 1e-5,
        act: 'relu6',
      }),
    );
    expect(ops(m)).toEqual(['MUL', 'ADD']);
    expect(m.operators[1].options).toEqual({ table: 'AddOptions', act: FusedActivation.RELU6 });
  });

  test.each([
    ['relu', ['RELU']],
    ['relu6', ['RELU6']],
    ['gelu', ['GELU']],
    ['hardswish', ['HARD_SWISH']],
    ['silu', ['LOGISTIC', 'MUL']],
  ])('activation %s', (act, want) => {
    expect(ops(roundTrip([2, 3], (g) => g.op('activation', ['x'], { act })).m)).toEqual(want);
  });

  test('add (relu6 fused), softmax (beta 1), reshape (new_shape), transpose (perm)', () => {
    const { m } = roundTrip([2, 3, 4, 5], (g) => {
      const a = g.op('add', ['x', konst(g, 'c', [5])], { act: 'relu6' });
      return g.op(
        'softmax',
        [g.op('transpose', [g.op('reshape', [a], { shape: [2, 12, 5] })], { perm: [0, 2, 1] })],
        {},
      );
    });
    expect(ops(m)).toEqual(['ADD', 'RESHAPE', 'TRANSPOSE', 'SOFTMAX']);
    expect(m.operators[0].options).toEqual({ table: 'AddOptions', act: FusedActivation.RELU6 });
    expect(m.operators[1].options).toEqual({ table: 'ReshapeOptions', newShape: [2, 12, 5] });
    expect(ints(m, m.operators[1].inputs[1])).toEqual([2, 12, 5]);
    expect(ints(m, m.operators[2].inputs[1])).toEqual([0, 2, 1]);
    expect(m.operators[3].options).toEqual({ table: 'SoftmaxOptions', beta: 1 });
  });

  test('concat tiles a constant class token for the batch; slice is STRIDED_SLICE; pad with a value is PADV2', () => {
    const { m, g } = roundTrip([2, 4, 6], (g) => {
      const c = g.op('concat', [konst(g, 'cls', [1, 1, 6]), 'x'], { axis: 1 });
      return g.op('slice', [c], { axis: 1, start: -5, end: 1 });
    });
    expect(ops(m)).toEqual(['CONCATENATION', 'STRIDED_SLICE']);
    expect(m.operators[0].options).toEqual({ table: 'ConcatenationOptions', axis: 1, act: 0 });
    const cls = m.operators[0].inputs[0];
    expect(tensorOf(m, cls).shape).toEqual([2, 1, 6]);
    const tok = [...g.value('cls').data!];
    expect([...floats(m, cls)]).toEqual([...tok, ...tok]);
    expect(ints(m, m.operators[1].inputs[1])).toEqual([0, 0, 0]);
    expect(ints(m, m.operators[1].inputs[2])).toEqual([2, 1, 6]);
    const p = roundTrip([1, 3, 4, 2], (g) => g.op('pad', ['x'], { pad: [1, 0, 2, 3], value: -0.5 })).m;
    expect(ops(p)).toEqual(['PADV2']);
    expect(ints(p, p.operators[0].inputs[1])).toEqual([0, 0, 1, 2, 0, 3, 0, 0]);
    expect(tensorOf(p, p.outputs[0]).shape).toEqual([1, 6, 7, 2]);
  });

  test('a node on constants only is folded, not exported', () => {
    const { m } = roundTrip([2, 4], (g) =>
      g.op('add', ['x', g.op('activation', [konst(g, 'c', [4], -1, 1)], { act: 'relu' })], {}),
    );
    expect(ops(m)).toEqual(['ADD']);
    expect([...floats(m, m.operators[0].inputs[1])].every((v) => v >= 0)).toBe(true);
  });
});

describe('whole models, as the bench exports them (optimised graph, logits only)', () => {
  const histogram = (m: ReadModel) => Object.fromEntries([...new Set(ops(m))].sort().map((o) => [o, count(m, o)]));

  test('resnet50: 53 convs, 16 residual ADDs, max pool, MEAN, FC; PAD where torch pads are not SAME', async () => {
    const l = await loadModel('resnet50', { weights: 'random', seed: 0, batch: 1, size: 64 });
    const m = readTflite(exportTflite(optimize(l.graph).graph, { outputs: [l.logits] }));
    // PAD: the 7x7 stem, the max pool (after a ReLU, so zeros) and the stride-2 3x3 convs of
    // layer2-4 (torch pads 1 on both sides, TF's SAME 0 before and 1 after an even size).
    expect(histogram(m)).toEqual({
      ADD: 16,
      CONV_2D: 53,
      FULLY_CONNECTED: 1,
      MAX_POOL_2D: 1,
      MEAN: 1,
      PAD: 5,
      TRANSPOSE: 1,
    });
    expect(m.outputs.map((k) => m.tensors[k])).toMatchObject([{ name: l.logits, shape: [1, 1000] }]);
    expect(m.inputs.map((k) => m.tensors[k])).toMatchObject([{ name: 'image', shape: [1, 3, 64, 64] }]);
  });

  test('mobilenet_v2: 17 depthwise, 35 plain convs, 10 residual ADDs', async () => {
    const l = await loadModel('mobilenet_v2', { weights: 'random', seed: 0, batch: 2, size: 64 });
    const m = readTflite(exportTflite(optimize(l.graph).graph, { outputs: [l.logits] }));
    expect(histogram(m)).toEqual({
      ADD: 10,
      CONV_2D: 35,
      DEPTHWISE_CONV_2D: 17,
      FULLY_CONNECTED: 1,
      MEAN: 1,
      PAD: 5, // the stem and the 4 stride-2 depthwise convs
      TRANSPOSE: 1,
    });
    const acts = m.operators.map((o) => (o.options as { act?: number } | undefined)?.act);
    expect(acts.filter((a) => a === FusedActivation.RELU6)).toHaveLength(35); // every ReLU6 fused
  });

  test('vit_tiny_patch16_224: per block 4 FC, 2 batched matmuls, softmax, GELU, 2 layernorms', async () => {
    const l = await loadModel('vit_tiny_patch16_224', { weights: 'random', seed: 0, batch: 1, size: 32 });
    const m = readTflite(exportTflite(optimize(l.graph).graph, { outputs: [l.logits] }));
    const h = histogram(m);
    expect(h).toMatchObject({
      FULLY_CONNECTED: 12 * 4 + 1,
      BATCH_MATMUL: 24,
      SOFTMAX: 12,
      GELU: 12,
      RSQRT: 25,
      STRIDED_SLICE: 12 * 3 + 1,
      CONCATENATION: 1,
      CONV_2D: 1,
    });
    expect(m.tensors.every((t) => t.shape.length <= 4)).toBe(true);
  });
});

describe('errors', () => {
  test('an op with no mapping names the node and the op', () => {
    registerOp({
      op: 'test_untflitable',
      arity: [1, 1],
      infer: (_a, [x]) => [x],
      lower: () => {
        throw new Error('not lowered');
      },
      ref: (_a, [x]) => [x],
    });
    const g = new Graph();
    g.input('x', [2, 3]);
    g.markOutputs(g.op('test_untflitable', ['x'], {}, 'mystery'));
    expect(() => exportTflite(g)).toThrow(TfliteExportError);
    expect(() => exportTflite(g)).toThrow(/cannot export node "mystery": op "test_untflitable" has no TFLite mapping/);
    expect(TFLITE_EXPORTABLE_OPS).toContain('attention');
  });

  test('grouped conv (not depthwise), run-time weights, excluded avg pads that SAME cannot express', () => {
    const grouped = () =>
      roundTrip([1, 5, 5, 6], (g) => g.op('conv2d', ['x', konst(g, 'w', [3, 3, 3, 4])], { groups: 2 }, 'gconv'));
    expect(grouped).toThrow(/"gconv" \(conv2d\): groups 2 with 3 input channels per group/);
    const runtimeWeights = () => {
      const g = new Graph();
      g.input('x', [1, 5, 5, 3]);
      g.input('w', [3, 3, 3, 4]);
      g.markOutputs(g.op('conv2d', ['x', 'w'], {}, 'wconv'));
      return exportTflite(g);
    };
    expect(runtimeWeights).toThrow(/"wconv" \(conv2d\): input "w" must be a constant/);
    const avg = () =>
      roundTrip([1, 6, 6, 2], (g) =>
        g.op('avgpool', ['x'], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], countIncludePad: false }, 'apool'),
      );
    expect(avg).toThrow(/"apool" \(avgpool\): pads \[1,1,1,1\] excluded from the average are not TFLite's SAME split/);
  });

  test('ceil mode that TFLite windows cannot reproduce, and an unknown output', () => {
    const ceil = () =>
      roundTrip([1, 6, 6, 2], (g) =>
        g.op('maxpool', ['x'], { kernel: [3, 3], stride: [2, 2], ceilMode: true }, 'cpool'),
      );
    expect(ceil).toThrow(/"cpool" \(maxpool\): TFLite's window gives 2×2, cnnlab's 3×3 \(ceil mode\?\)/);
    const g = new Graph();
    g.input('x', [2, 3]);
    g.markOutputs(g.op('activation', ['x'], { act: 'relu' }, 'r'));
    expect(() => exportTflite(g, { outputs: ['nope'] })).toThrow(/"nope" is not an output of the graph/);
    expect(TensorType.INT32).toBe(2);
  });
});
