// The shape-generic depthwise kernel (kernels/depthwise-generic.ts, depthwise variant 'generic'):
// against the reference on awkward shapes, one pipeline shared by layers of different shapes.
import { describe, expect, it } from 'vitest';
import { kernelContext } from '../../engine/device.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import type { Conv2dAttrs } from '../../kernels/conv-geometry.js';
import { conv2dOp } from '../../kernels/conv2d.js';
import { depthwiseTuneCandidates } from '../../kernels/depthwise.js';
import { randTensor, expectClose, runOp, testDevice } from '../helpers.js';

const tol = { atol: 1e-5, rtol: 1e-5 };

interface Case {
  name: string;
  x: number[];
  k: [number, number];
  attrs: Conv2dAttrs;
  bias: boolean;
  prefer: string;
}

const cases: Case[] = [
  {
    name: '3x3 s1 pad 1, relu6, bias',
    x: [1, 7, 9, 12],
    k: [3, 3],
    attrs: { pad: [1, 1, 1, 1], act: 'relu6' },
    bias: true,
    prefer: 'generic',
  },
  {
    name: '3x3 s2 asymmetric pad, batch 2, block 3x2',
    x: [2, 9, 6, 8],
    k: [3, 3],
    attrs: { stride: [2, 2], pad: [0, 1, 1, 0] },
    bias: true,
    prefer: 'block=3x2,generic',
  },
  {
    name: '5x5 dilation 2, no bias, block 2x1',
    x: [1, 11, 10, 4],
    k: [5, 5],
    attrs: { pad: [4, 4, 4, 4], dilation: [2, 2], act: 'silu' },
    bias: false,
    prefer: 'block=2x1,generic',
  },
  {
    name: '3x1 stride 2x1, wg 32, output smaller than the block',
    x: [1, 3, 2, 20],
    k: [3, 1],
    attrs: { stride: [2, 1], pad: [1, 0, 1, 0] },
    bias: true,
    prefer: 'wg=32,generic',
  },
];

describe('depthwise generic (shapes from the weights header)', () => {
  for (const c of cases) {
    it(`${c.name}: matches the reference`, async () => {
      const C = c.x[3];
      const attrs = { ...c.attrs, groups: C };
      const ins = [randTensor(c.x, 1), randTensor([c.k[0], c.k[1], 1, C], 2), ...(c.bias ? [randTensor([C], 3)] : [])];
      const [y] = await runOp('conv2d', attrs, ins, [1, 2], { depthwise: c.prefer });
      expectClose(y, conv2dOp.ref(attrs, ins)[0], tol, c.name);
    });
  }

  it('layers of different sizes and channels with one window share one pipeline, and give the reference', async () => {
    const g = new Graph();
    g.input('x', [1, 10, 11, 8]);
    const dw = (x: string, c: number, seed: number, stride: number) => {
      const w = g.constant(`w${seed}`, [3, 3, 1, c], randTensor([3, 3, 1, c], seed).data);
      const b = g.constant(`b${seed}`, [c], randTensor([c], seed + 50).data);
      return g.op('conv2d', [x, w, b], { groups: c, pad: [1, 1, 1, 1], stride: [stride, stride], act: 'relu6' });
    };
    const a = dw('x', 8, 1, 1);
    const pw = g.constant('pw', [1, 1, 8, 12], randTensor([1, 1, 8, 12], 7).data);
    const b = g.op('conv2d', [a, pw], {});
    const c = dw(b, 12, 2, 1);
    const d = dw(c, 12, 3, 2);
    g.markOutputs(d);
    const plan = await compile(await testDevice(), g, { prefer: { depthwise: 'block=2x2,generic' } });
    const keys = plan.kernels.filter((k) => k.startsWith('depthwise-generic'));
    expect(keys.length).toBe(3);
    // stride 1 twice (8 and 12 channels, 10×11): one pipeline; stride 2: another.
    expect(new Set(keys).size).toBe(2);
    const x = randTensor([1, 10, 11, 8], 9).data;
    const { outputs } = await plan.run({ x });
    expectClose(outputs[d], runReference(g, { x })[d], tol, 'three layers');
    plan.dispose();
  });

  it('is refused outside its domain, and offered only inside it', async () => {
    const ins = [randTensor([1, 5, 5, 6], 1), randTensor([3, 3, 1, 6], 2)];
    await expect(runOp('conv2d', { groups: 6 }, ins, [1], { depthwise: 'generic' })).rejects.toThrow(
      /'generic' takes only .* C a multiple of 4/,
    );
    const ins8 = [randTensor([1, 5, 5, 8], 1), randTensor([3, 3, 1, 8], 2)];
    await expect(runOp('conv2d', { groups: 8 }, ins8, [], { depthwise: 'generic' })).rejects.toThrow(
      /constant weights/,
    );
    await expect(runOp('conv2d', { groups: 8 }, ins8, [1], { depthwise: 'loop,generic' })).rejects.toThrow(
      /'generic' takes only/,
    );
    const base = kernelContext((await testDevice()).info);
    const ctx = (constW: boolean) => ({ ...base, constInputs: [false, constW] });
    expect(
      depthwiseTuneCandidates(
        { groups: 8 },
        [
          [1, 5, 5, 8],
          [3, 3, 1, 8],
        ],
        ctx(true),
      ),
    ).toContain('generic');
    expect(
      depthwiseTuneCandidates(
        { groups: 8 },
        [
          [1, 5, 5, 8],
          [3, 3, 1, 8],
        ],
        ctx(false),
      ),
    ).not.toContain('generic');
    expect(
      depthwiseTuneCandidates(
        { groups: 6 },
        [
          [1, 5, 5, 6],
          [3, 3, 1, 6],
        ],
        ctx(true),
      ),
    ).not.toContain('generic');
  });
});
