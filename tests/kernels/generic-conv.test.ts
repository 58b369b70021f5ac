// The shape-generic k×k conv (kernels/conv-generic.ts, conv2d 'gemm,generic' on a conv that is
// not a plain 1×1): against the reference on awkward shapes, one pipeline for different windows.
import { describe, expect, it } from 'vitest';
import { kernelContext } from '../../engine/device.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import type { Conv2dAttrs } from '../../kernels/conv-geometry.js';
import { conv2dOp } from '../../kernels/conv2d.js';
import { expectClose, randTensor, runOp, testDevice } from '../helpers.js';

const tol = { atol: 1e-5, rtol: 1e-5 };

interface Case {
  name: string;
  x: number[];
  w: number[];
  attrs: Conv2dAttrs;
  extra: 'none' | 'bias' | 'residual';
  prefer: string;
}

const cases: Case[] = [
  {
    name: '3x3 pad 1, Cout 12 (tn 4), relu',
    x: [1, 7, 5, 8],
    w: [3, 3, 8, 12],
    attrs: { pad: [1, 1, 1, 1], act: 'relu' },
    extra: 'bias',
    prefer: 'gemm,generic',
  },
  {
    name: '3x3 stride 2, asymmetric pad, batch 2, tile 3x8',
    x: [2, 9, 6, 4],
    w: [3, 3, 4, 16],
    attrs: { stride: [2, 2], pad: [0, 1, 1, 0] },
    extra: 'none',
    prefer: 'gemm,tile=3x8,generic',
  },
  {
    name: '5x3 dilation 2, residual, relu6',
    x: [1, 8, 9, 12],
    w: [5, 3, 12, 8],
    attrs: { pad: [4, 2, 4, 2], dilation: [2, 2], act: 'relu6' },
    extra: 'residual',
    prefer: 'gemm,generic',
  },
  {
    name: '1x1 stride 2 (a downsample), tile 5x4',
    x: [1, 9, 7, 8],
    w: [1, 1, 8, 20],
    attrs: { stride: [2, 2] },
    extra: 'bias',
    prefer: 'gemm,tile=5x4,generic',
  },
];

describe('conv2d generic k×k (shapes and window from the weights header)', () => {
  for (const c of cases) {
    it(`${c.name}: matches the reference`, async () => {
      const out = conv2dOp.infer(c.attrs, [c.x, c.w])[0];
      const ins = [
        randTensor(c.x, 1),
        randTensor(c.w, 2),
        ...(c.extra !== 'none' ? [randTensor([c.w[3]], 3)] : []),
        ...(c.extra === 'residual' ? [randTensor([...out], 4)] : []),
      ];
      const consts = c.extra === 'none' ? [1] : [1, 2];
      const [y] = await runOp('conv2d', { ...c.attrs }, ins, consts, { conv2d: c.prefer });
      expectClose(y, conv2dOp.ref(c.attrs, ins)[0], tol, c.name);
    });
  }

  it('convs of different windows, strides and shapes share one pipeline, and give the reference', async () => {
    const g = new Graph();
    g.input('x', [1, 11, 10, 4]);
    const conv = (x: string, w: number[], attrs: Conv2dAttrs, seed: number) => {
      const wt = g.constant(`w${seed}`, w, randTensor(w, seed).data);
      const b = g.constant(`b${seed}`, [w[3]], randTensor([w[3]], seed + 50).data);
      return g.op('conv2d', [x, wt, b], { ...attrs, act: 'relu' });
    };
    const a = conv('x', [7, 7, 4, 8], { stride: [2, 2], pad: [3, 3, 3, 3] }, 1);
    const b = conv(a, [3, 3, 8, 16], { pad: [1, 1, 1, 1] }, 2);
    const d = conv(b, [3, 3, 16, 8], { stride: [2, 2], pad: [1, 1, 1, 1] }, 3);
    g.markOutputs(d);
    const plan = await compile(await testDevice(), g, { prefer: { conv2d: 'gemm,generic' } });
    expect(plan.kernels.length).toBe(3);
    expect(new Set(plan.kernels).size).toBe(1);
    expect(plan.kernels[0]).toMatch(/^conv2d-generic\{/);
    const x = randTensor([1, 11, 10, 4], 9).data;
    const { outputs } = await plan.run({ x });
    expectClose(outputs[d], runReference(g, { x })[d], tol, 'three layers');
    plan.dispose();
  });

  it('is offered in the tune space of convs with constant weights, channels in fours, Cout in eights', async () => {
    const base = kernelContext((await testDevice()).info);
    const space = (w: number[], constW: boolean) =>
      conv2dOp.tuneSpace!({ pad: [1, 1, 1, 1] }, [[1, 6, 6, w[2]], w], { ...base, constInputs: [false, constW] })!
        .candidates;
    expect(space([3, 3, 8, 16], true)).toContain('gemm,tile=4x8,generic');
    expect(space([3, 3, 8, 16], false)).not.toContain('gemm,tile=4x8,generic');
    expect(space([3, 3, 6, 16], true)).not.toContain('gemm,tile=4x8,generic');
    expect(space([3, 3, 8, 12], true)).not.toContain('gemm,tile=4x8,generic');
  });
});
