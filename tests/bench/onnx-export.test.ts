// The ONNX exporter against the CPU reference: each graph is exported, run by ONNX Runtime Web's
// WASM EP in Node, and every output compared with runReference of the same cnnlab graph.
// Tolerance |d| ≤ 1e-4 + 1e-4·|ref| unless a case says otherwise.

import { describe, expect, test } from 'vitest';
import { demoNetwork } from '../../bench/demo.js';
import { exportOnnx, OnnxExportError } from '../../bench/peers/onnx-export.js';
import { decodeModel, type OnnxModel } from '../../models/onnx/proto.js';
import { createOrtSession, runOrt } from '../../bench/peers/ort.js';
import { Graph, runReference } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import { loadModel } from '../../models/index.js';
import { registerOp } from '../../kernels/index.js';
import { type Activation, ACTIVATIONS, numel } from '../../kernels/kernel.js';
import { expectClose, rand, type Tol } from '../helpers.js';

const TOL: Tol = { atol: 1e-4, rtol: 1e-4 };

let seed = 1;
const konst = (g: Graph, name: string, shape: number[], lo = -1, hi = 1) =>
  g.constant(name, shape, rand(numel(shape), seed++, lo, hi));

/** Export, run in ORT (wasm EP), compare every output with the reference; returns the decoded model. */
async function check(
  g: Graph,
  o: { opset?: 13 | 14 | 17; tol?: Tol; range?: [number, number] } = {},
): Promise<OnnxModel> {
  const inputs: Record<string, Float32Array> = {};
  for (const v of g.values.values())
    if (v.kind === 'input') inputs[v.name] = rand(numel(v.shape), seed++, ...(o.range ?? [-1, 1]));
  const bytes = exportOnnx(g, { opset: o.opset });
  const s = await createOrtSession(bytes, 'wasm');
  const got = await runOrt(
    s,
    Object.fromEntries(Object.entries(inputs).map(([k, d]) => [k, { shape: g.shape(k), data: d }])),
  );
  await s.session.release();
  const want = runReference(g, inputs);
  for (const out of g.outputs) expectClose(got[out], want[out], o.tol ?? TOL, out);
  return decodeModel(bytes);
}

const opTypes = (m: OnnxModel) => m.graph.node.map((n) => n.op_type);
const count = (m: OnnxModel, op: string) => opTypes(m).filter((t) => t === op).length;

describe('conv2d', () => {
  const cases: {
    name: string;
    x: number[];
    k: number;
    cout: number;
    attrs: Record<string, unknown>;
    bias?: boolean;
  }[] = [
    { name: 'plain 3x3', x: [1, 7, 6, 5], k: 3, cout: 6, attrs: {} },
    {
      name: 'stride 2, asymmetric pad, bias, relu',
      x: [2, 9, 8, 3],
      k: 3,
      cout: 7,
      attrs: { stride: [2, 2], pad: [1, 0, 2, 1], act: 'relu' },
      bias: true,
    },
    {
      name: 'dilation 2, pad 2, relu6',
      x: [1, 9, 9, 4],
      k: 3,
      cout: 4,
      attrs: { dilation: [2, 2], pad: [2, 2, 2, 2], act: 'relu6' },
      bias: true,
    },
    { name: 'groups 2, 1x1 stride 2', x: [1, 5, 5, 6], k: 1, cout: 4, attrs: { groups: 2, stride: [2, 1] } },
    {
      name: 'groups 3, stride [1,2], gelu',
      x: [2, 6, 7, 6],
      k: 3,
      cout: 9,
      attrs: { groups: 3, stride: [1, 2], pad: [1, 1, 1, 1], act: 'gelu' },
      bias: true,
    },
    {
      name: 'depthwise 3x3, hardswish',
      x: [1, 8, 7, 5],
      k: 3,
      cout: 5,
      attrs: { groups: 5, pad: [1, 1, 1, 1], act: 'hardswish' },
      bias: true,
    },
    {
      name: 'depthwise 5x5 stride 2, silu',
      x: [1, 9, 9, 8],
      k: 5,
      cout: 8,
      attrs: { groups: 8, stride: [2, 2], pad: [2, 2, 2, 2], act: 'silu' },
    },
  ];
  test.each(cases)('$name', async (c) => {
    const g = new Graph();
    const x = g.input('x', c.x);
    const groups = (c.attrs.groups as number | undefined) ?? 1;
    const w = konst(g, 'w', [c.k, c.k, c.x[3] / groups, c.cout]);
    const inputs = c.bias ? [x, w, konst(g, 'b', [c.cout])] : [x, w];
    g.markOutputs(g.op('conv2d', inputs, c.attrs, 'conv'));
    const m = await check(g);
    const wInit = m.graph.initializer.find((t) => t.name.startsWith('w'))!;
    expect(wInit.dims).toEqual([c.cout, c.x[3] / groups, c.k, c.k]); // OIHW, grouped
  });

  test('weights computed in the graph (not constant) are transposed to OIHW by a node', async () => {
    const g = new Graph();
    const x = g.input('x', [1, 6, 6, 4]);
    const w = g.input('w', [3, 3, 4, 5]);
    const ws = g.op('weight_standardize', [w], { eps: 1e-5 }, 'ws');
    g.markOutputs(g.op('conv2d', [x, ws], { pad: [1, 1, 1, 1] }, 'conv'));
    await check(g);
  });
});

describe('norms', () => {
  test('batchnorm after conv (unfused graph), with act', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 5, 6, 3]);
    const c = g.op('conv2d', [x, konst(g, 'w', [3, 3, 3, 6])], { pad: [1, 1, 1, 1] }, 'conv');
    const bn = g.op(
      'batchnorm',
      [c, konst(g, 'gamma', [6]), konst(g, 'beta', [6]), konst(g, 'mean', [6]), konst(g, 'var', [6], 0.5, 2)],
      { eps: 1e-3, act: 'relu' },
      'bn',
    );
    g.markOutputs(bn);
    const m = await check(g);
    expect(count(m, 'BatchNormalization')).toBe(1);
    expect(count(m, 'Transpose')).toBe(2); // only at the edges: the NHWC input in, the NHWC output out
  });

  test.each([[[4, 7]], [[2, 3, 5]], [[3, 2, 2, 4]]])('batchnorm on an input of shape %j', async (shape) => {
    const g = new Graph();
    const x = g.input('x', shape);
    const C = shape[shape.length - 1];
    g.markOutputs(
      g.op(
        'batchnorm',
        [x, konst(g, 'g', [C]), konst(g, 'b', [C]), konst(g, 'm', [C]), konst(g, 'v', [C], 0.5, 2)],
        { act: 'silu' },
        'bn',
      ),
    );
    await check(g);
  });

  test('group_norm with relu, after a conv', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 5, 4, 3]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 3, 12])], {}, 'conv');
    g.markOutputs(
      g.op(
        'group_norm',
        [c, konst(g, 'gamma', [12]), konst(g, 'beta', [12])],
        { groups: 4, eps: 1e-5, act: 'relu' },
        'gn',
      ),
    );
    const m = await check(g);
    expect(count(m, 'InstanceNormalization')).toBe(1);
  });

  test('group_norm on a graph input (NHWC, converted once)', async () => {
    const g = new Graph();
    const x = g.input('x', [1, 3, 3, 8]);
    g.markOutputs(g.op('group_norm', [x, konst(g, 'gamma', [8]), konst(g, 'beta', [8])], { groups: 2 }, 'gn'));
    await check(g);
  });

  test.each([13, 17] as const)('layernorm on tokens, opset %i', async (opset) => {
    const g = new Graph();
    const x = g.input('x', [2, 5, 12]);
    g.markOutputs(
      g.op('layernorm', [x, konst(g, 'gamma', [12]), konst(g, 'beta', [12])], { eps: 1e-6, act: 'gelu' }, 'ln'),
    );
    const m = await check(g, { opset });
    expect(count(m, 'LayerNormalization')).toBe(opset >= 17 ? 1 : 0);
  });

  test('layernorm over the channels of an NCHW-held conv output', async () => {
    const g = new Graph();
    const x = g.input('x', [1, 4, 5, 3]);
    const c = g.op('conv2d', [x, konst(g, 'w', [3, 3, 3, 6])], { pad: [1, 1, 1, 1] }, 'conv');
    g.markOutputs(g.op('layernorm', [c, konst(g, 'gamma', [6]), konst(g, 'beta', [6])], { eps: 1e-5 }, 'ln'));
    await check(g);
  });
});

describe('softmax and activations', () => {
  test('softmax on rows and on the channels of an NCHW-held value', async () => {
    const g = new Graph();
    const x = g.input('x', [3, 11]);
    const y = g.input('y', [1, 4, 4, 2]);
    const c = g.op('conv2d', [y, konst(g, 'w', [1, 1, 2, 5])], {}, 'conv');
    g.markOutputs(g.op('softmax', [x], {}, 'sx'), g.op('softmax', [c], {}, 'sc'));
    await check(g);
  });

  test.each(ACTIVATIONS)('activation %s (plain and NCHW-held, opsets 13 and 14)', async (act) => {
    for (const opset of [13, 14] as const) {
      const g = new Graph();
      const x = g.input('x', [2, 3, 4, 5]);
      const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 5, 3])], {}, 'conv');
      const r = g.input('r', [4, 9]);
      const a = (v: string, name: string) => g.op('activation', [v], { act }, name);
      g.markOutputs(a(c, 'ac'), a(r, 'ar'), a(x, 'ax'));
      const m = await check(g, { opset, tol: { atol: 1e-4, rtol: 1e-4 } });
      if (act === 'hardswish') expect(count(m, 'HardSwish')).toBe(opset >= 14 ? 3 : 0);
    }
  });
});

describe("unary and binary (the ONNX importer's ops)", () => {
  test('sigmoid, tanh, hardsigmoid; sub, mul, div with broadcasting, plain and NCHW-held', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 3, 4, 5]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 5, 3])], {}, 'conv');
    const gate = g.op('unary', [g.op('global_avgpool', [c], {}, 'gap')], { fn: 'sigmoid' }, 'sig');
    const se = g.op('binary', [c, g.op('reshape', [gate], { shape: [2, 1, 1, 3] }, 'gate4')], { op: 'mul' }, 'se');
    const t = g.op('unary', [se], { fn: 'tanh' }, 'tanh');
    const h = g.op('unary', [x], { fn: 'hardsigmoid', alpha: 1 / 6, beta: 0.5 }, 'hsig');
    const d = g.op('binary', [h, konst(g, 'k', [5], 0.5, 2)], { op: 'div' }, 'div');
    const s = g.op('binary', [konst(g, 'k2', [3, 1, 1]), t], { op: 'sub' }, 'sub');
    g.markOutputs(s, d);
    const m = await check(g);
    expect(opTypes(m)).toEqual(expect.arrayContaining(['Sigmoid', 'Tanh', 'HardSigmoid', 'Sub', 'Mul', 'Div']));
  });
});

describe('matmul and attention', () => {
  test.each([
    { name: '2-D shared weight + bias + relu → Gemm', a: [3, 8], b: [8, 5], bias: true, act: 'relu' as Activation },
    { name: '2-D transB weight + bias', a: [3, 8], b: [5, 8], bias: true, transB: true },
    { name: 'tokens @ shared weight + bias + gelu', a: [2, 5, 8], b: [8, 6], bias: true, act: 'gelu' as Activation },
    { name: 'tokens @ shared transB weight', a: [2, 5, 8], b: [6, 8], transB: true },
    { name: 'shared weight with a leading 1', a: [2, 5, 8], b: [1, 8, 6] },
    { name: 'batched constant b', a: [2, 3, 4], b: [2, 4, 5] },
  ])('$name', async (c) => {
    const g = new Graph();
    const a = g.input('a', c.a);
    const N = c.transB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
    const inputs = [a, konst(g, 'w', c.b)];
    if (c.bias) inputs.push(konst(g, 'bias', [N]));
    g.markOutputs(g.op('matmul', inputs, { act: c.act, transB: c.transB }, 'mm'));
    const m = await check(g);
    if (c.a.length === 2) expect(opTypes(m)).toContain('Gemm');
  });

  test('batched a @ b with broadcast batch dims, and q @ kᵀ (transB) of two inputs', async () => {
    const g = new Graph();
    const a = g.input('a', [2, 3, 4, 6]);
    const b = g.input('b', [3, 6, 5]);
    const k = g.input('k', [2, 3, 7, 6]);
    g.markOutputs(
      g.op('matmul', [a, b], {}, 'ab'),
      g.op('matmul', [a, k, konst(g, 'bias', [7])], { transB: true, act: 'silu' }, 'akt'),
    );
    await check(g);
  });

  test('attention on packed qkv, default and explicit scale', async () => {
    const g = new Graph();
    const qkv = g.input('qkv', [2, 7, 3 * 12]);
    g.markOutputs(
      g.op('attention', [qkv], { heads: 3 }, 'attn'),
      g.op('attention', [qkv], { heads: 2, scale: 0.3 }, 'attn2'),
    );
    const m = await check(g);
    expect(count(m, 'Softmax')).toBe(2);
  });

  test('attention on separate q, k, v with Tq ≠ Tk', async () => {
    const g = new Graph();
    const q = g.input('q', [2, 3, 8]);
    const k = g.input('k', [2, 5, 8]);
    const v = g.input('v', [2, 5, 8]);
    g.markOutputs(g.op('attention', [q, k, v], { heads: 2 }, 'attn'));
    await check(g);
  });
});

describe('pooling', () => {
  const cases: { name: string; op: string; x: number[]; attrs: Record<string, unknown> }[] = [
    {
      name: 'maxpool 3/2 pad 1',
      op: 'maxpool',
      x: [1, 9, 8, 5],
      attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
    },
    {
      name: 'maxpool 3/2 ceil mode',
      op: 'maxpool',
      x: [2, 8, 10, 3],
      attrs: { kernel: [3, 3], stride: [2, 2], ceilMode: true },
    },
    {
      name: 'maxpool 2x3 dilation 2, asymmetric pad',
      op: 'maxpool',
      x: [1, 9, 9, 2],
      attrs: { kernel: [2, 3], stride: [1, 2], pad: [1, 0, 0, 2], dilation: [2, 2] },
    },
    { name: 'avgpool 2/2', op: 'avgpool', x: [1, 8, 6, 4], attrs: { kernel: [2, 2] } },
    {
      name: 'avgpool 3/2 pad 1 countIncludePad',
      op: 'avgpool',
      x: [1, 7, 7, 3],
      attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
    },
    {
      name: 'avgpool 3/2 pad 1 excluding pad',
      op: 'avgpool',
      x: [1, 7, 7, 3],
      attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], countIncludePad: false },
    },
    {
      name: 'avgpool 3/2 ceil mode excluding pad',
      op: 'avgpool',
      x: [1, 8, 8, 3],
      attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], ceilMode: true, countIncludePad: false },
    },
    {
      name: 'avgpool 3/2 ceil mode, countIncludePad',
      op: 'avgpool',
      x: [1, 8, 8, 3],
      attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], ceilMode: true },
    },
    {
      name: 'avgpool 2/2 ceil mode, odd size',
      op: 'avgpool',
      x: [1, 7, 5, 2],
      attrs: { kernel: [2, 2], stride: [2, 2], ceilMode: true },
    },
  ];
  test.each(cases)('$name', async (c) => {
    const g = new Graph();
    g.markOutputs(g.op(c.op, [g.input('x', c.x)], c.attrs, 'pool'));
    await check(g);
  });

  // ORT's PadFusion would fold these zero pads into the pools' pads (-inf for MaxPool, not counted
  // by AveragePool without countIncludePad); on negative inputs that changes the result.
  test.each([
    { name: 'pad 1 → maxpool 3/2 (BiT stem)', op: 'maxpool', attrs: { kernel: [3, 3], stride: [2, 2] } },
    { name: 'pad 1 → maxpool 3/2 pad 1', op: 'maxpool', attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] } },
    {
      name: 'pad 1 → avgpool 3/2 pad 1 excluding pad',
      op: 'avgpool',
      attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], countIncludePad: false },
    },
  ])('$name, on negative inputs', async (cs) => {
    const g = new Graph();
    const x = g.input('x', [1, 6, 7, 3]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 3, 4], 0.5, 1)], {}, 'conv'); // NCHW-held, negative
    const p = g.op('pad', [c], { pad: [1, 1, 1, 1], value: 0 }, 'pad');
    g.markOutputs(g.op(cs.op, [p], cs.attrs, 'pool'));
    await check(g, { range: [-2, -1] });
  });

  test('global_avgpool of an NCHW-held value and of a plain 4-D value', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 5, 3, 4]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 4, 6])], {}, 'conv');
    g.markOutputs(g.op('global_avgpool', [c], {}, 'gap_nchw'), g.op('global_avgpool', [x], {}, 'gap_plain'));
    const m = await check(g);
    expect(count(m, 'GlobalAveragePool')).toBe(1);
  });
});

describe('layout ops', () => {
  test('reshape, transpose and slice of NCHW-held values', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 4, 3, 3]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 3, 6])], {}, 'conv');
    g.markOutputs(
      g.op('reshape', [c], { shape: [2, -1, 6] }, 'tokens'),
      g.op('transpose', [c], { perm: [3, 1, 0, 2] }, 'tp'),
      g.op('transpose', [c], { perm: [0, 3, 1, 2] }, 'to_nchw'),
      g.op('slice', [c], { axis: 3, start: 1, end: -2 }, 'sl_c'),
      g.op('slice', [c], { axis: 1, start: -3, end: 100 }, 'sl_h'),
    );
    await check(g);
  });

  test('reshape of an NCHW-held value with 1×1 spatial needs no transpose', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 1, 1, 5]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 5, 7])], {}, 'conv');
    g.markOutputs(g.op('reshape', [c], { shape: [2, 7] }, 'flat'));
    const m = await check(g);
    expect(count(m, 'Transpose')).toBe(0);
  });

  test('concat: channels of NCHW-held values, tokens with a broadcast class token', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 3, 4, 2]);
    const a = g.op('conv2d', [x, konst(g, 'wa', [1, 1, 2, 3])], {}, 'ca');
    const b = g.op('conv2d', [x, konst(g, 'wb', [3, 3, 2, 2])], { pad: [1, 1, 1, 1] }, 'cb');
    const t = g.input('t', [2, 5, 6]);
    const cls = konst(g, 'cls', [1, 1, 6]);
    const u = g.input('u', [1, 2, 6]);
    g.markOutputs(
      g.op('concat', [a, b], { axis: -1 }, 'cat_c'),
      g.op('concat', [b, x, b], { axis: 2 }, 'cat_w'),
      g.op('concat', [cls, t], { axis: 1 }, 'cat_cls'),
      g.op('concat', [t, u], { axis: 1 }, 'cat_bcast'),
    );
    const m = await check(g);
    // x to NCHW once (for both convs and cat_w), and the two NCHW concats back to NHWC outputs.
    expect(count(m, 'Transpose')).toBe(3);
  });

  test('pad (NCHW-held and plain) and add with broadcasting of every rank', async () => {
    const g = new Graph();
    const x = g.input('x', [2, 4, 5, 3]);
    const c = g.op('conv2d', [x, konst(g, 'w', [1, 1, 3, 3])], {}, 'conv');
    const r = g.input('r', [5, 3]);
    g.markOutputs(
      g.op('pad', [c], { pad: [1, 0, 2, 3], value: 0.5 }, 'pad_nchw'),
      g.op('pad', [x], { pad: [0, 2, 1, 0] }, 'pad_plain'),
      g.op('add', [c, konst(g, 'bias', [3])], { act: 'relu' }, 'add_bias'),
      g.op('add', [konst(g, 'wc', [5, 3]), c], {}, 'add_wc'),
      g.op('add', [c, r], {}, 'add_r'),
      g.op('add', [c, x], {}, 'add_mixed'),
      g.op('add', [c, konst(g, 'hw1', [4, 1, 1])], {}, 'add_h'),
    );
    await check(g);
  });
});

describe('graph outputs', () => {
  test('outputs that alias an input, another value or a folded constant keep their names', async () => {
    const g = new Graph();
    const x = g.input('x', [1, 3, 4, 5]);
    const t = g.op('transpose', [x], { perm: [0, 2, 3, 1] }, 't'); // NCHW-held alias of x
    const back = g.op('transpose', [t], { perm: [0, 3, 1, 2] }, 'back'); // x again
    const folded = g.op('transpose', [konst(g, 'c', [2, 3])], { perm: [1, 0] }, 'folded');
    const r = g.op('activation', [t], { act: 'relu' }, 'r');
    g.markOutputs(t, back, folded, r);
    const m = await check(g);
    expect(m.graph.output.map((o) => o.name)).toEqual(['t', 'back', 'folded', 'r']);
    expect(count(m, 'Identity')).toBe(2); // back (= the input x) and folded (an initialiser)
  });
});

// 20 to 50 layers of float32 in a different summation order (ORT's GEMMs vs the reference's double
// sums) drift further than one op; GroupNorm over BiT's 1×1 last stage amplifies it. Tolerance here
// |d| ≤ 5e-4 + 5e-4·|ref| (measured worst: about 1.1e-4 on BiT's pooled features).
const MODEL_TOL: Tol = { atol: 5e-4, rtol: 5e-4 };

describe('model families (random weights, 32×32 inputs, batch 2)', () => {
  test.each(['resnet18', 'mobilenet_v2', 'resnetv2_50x1_bit', 'vit_tiny_patch16_224'])('%s', async (name) => {
    const size = 32;
    const { graph } = optimize((await loadModel(name, { weights: 'random', size, classes: 10, batch: 2 })).graph);
    const m = await check(graph, { tol: MODEL_TOL });
    // The NCHW model input goes straight into the stem conv.
    expect(m.graph.input[0].type.tensor_type.shape.dim.map((d) => d.dim_value)).toEqual([2, 3, size, size]);
    expect(m.graph.node[0].op_type).toBe('Conv');
  });
});

describe('whole networks', () => {
  test('optimize(demoNetwork({size: 32})): logits and probabilities', async () => {
    const { graph } = optimize(demoNetwork({ size: 32, batch: 2 }));
    const m = await check(graph);
    expect(m.ir_version).toBe(8);
    expect(m.opset_import).toEqual([{ domain: '', version: 13 }]);
    expect(m.graph.output.map((o) => o.name)).toEqual(graph.outputs);
    // weight_standardize is folded into a constant, not exported as ops.
    expect(m.graph.node.some((n) => n.name.startsWith('bit.ws'))).toBe(false);
    const ws = m.graph.initializer.find((t) => t.name === 'bit.ws/oihw')!;
    expect(ws.dims).toEqual([32, 16, 3, 3]);
    expect(ws.data_type).toBe(1);
    expect(ws.raw_data!.byteLength).toBe(4 * 32 * 16 * 3 * 3);
  });

  test('demoNetwork unoptimised (separate BN, bias adds and activations)', async () => {
    await check(demoNetwork({ size: 32, seed: 3 }));
  });

  test('an NCHW model input behind to_nhwc: ONNX input stays NCHW, conv → bn → relu → conv → pool has no Transpose', async () => {
    const g = new Graph();
    g.input('image', [1, 3, 12, 12]);
    let x = g.op('transpose', ['image'], { perm: [0, 2, 3, 1] }, 'to_nhwc');
    x = g.op('conv2d', [x, konst(g, 'w1', [3, 3, 3, 8])], { stride: [2, 2], pad: [1, 1, 1, 1] }, 'conv1');
    x = g.op(
      'batchnorm',
      [x, konst(g, 'g', [8]), konst(g, 'b', [8]), konst(g, 'm', [8]), konst(g, 'v', [8], 0.5, 2)],
      {},
      'bn',
    );
    x = g.op('activation', [x], { act: 'relu' }, 'relu');
    x = g.op('conv2d', [x, konst(g, 'w2', [3, 3, 8, 8])], { pad: [1, 1, 1, 1] }, 'conv2');
    x = g.op('maxpool', [x], { kernel: [2, 2] }, 'pool');
    x = g.op('global_avgpool', [x], {}, 'gap');
    g.markOutputs(g.op('matmul', [x, konst(g, 'fc', [8, 4]), konst(g, 'fcb', [4])], {}, 'logits'));
    for (const graph of [g, optimize(g).graph]) {
      const m = await check(graph);
      expect(m.graph.input[0].type.tensor_type.shape.dim.map((d) => d.dim_value)).toEqual([1, 3, 12, 12]);
      expect(count(m, 'Transpose')).toBe(0);
      expect(count(m, 'Reshape')).toBe(0);
    }
  });
});

describe('errors', () => {
  test('an op with no ONNX mapping is named in the error', () => {
    registerOp({
      op: 'test_unexportable',
      arity: [1, 1],
      infer: (_a, [x]) => [x],
      lower: () => ({ dispatches: [] }),
      ref: (_a, [x]) => [x],
    });
    const g = new Graph();
    g.markOutputs(g.op('test_unexportable', [g.input('x', [2, 3])], {}, 'mystery'));
    expect(() => exportOnnx(g)).toThrow(OnnxExportError);
    expect(() => exportOnnx(g)).toThrow(/cannot export node "mystery": op "test_unexportable" has no ONNX mapping/);
  });

  test('avgpool with dilation is refused with the reason', () => {
    const g = new Graph();
    g.markOutputs(g.op('avgpool', [g.input('x', [1, 7, 7, 2])], { kernel: [2, 2], dilation: [2, 2] }, 'dpool'));
    expect(() => exportOnnx(g)).toThrow(/"dpool": avgpool with dilation \[2,2\]/);
  });

  test('nodes on constants only are folded, not exported', async () => {
    const g = new Graph();
    const w = konst(g, 'w', [4, 3]);
    const t = g.op('transpose', [w], { perm: [1, 0] }, 'wt');
    g.markOutputs(g.op('matmul', [g.input('x', [2, 3]), t], {}, 'mm'));
    const m = await check(g);
    expect(opTypes(m)).toEqual(['Gemm']);
  });
});
