// conv2d 'pk': constant weights packed at compile time into the order the register loop reads
// them ([groups·⌈Cog/tn⌉, K, tn], kernels/conv2d.ts packConvWeights). The packing is checked by
// hand, then every path that reads it (gemm, pointwise gemm, direct, grouped, 'sg', 'f16=w') is
// run against the reference on shapes where the channel tile overhangs Cout/groups (zeros in
// the pack), with stride, asymmetric padding, dilation, groups and a fused residual.

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import type { Conv2dAttrs } from '../../kernels/conv-geometry.js';
import { conv2dOp, packConvWeights } from '../../kernels/conv2d.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

async function runConv(attrs: Conv2dAttrs, inputs: HostTensor[], prefer: string, constW = true) {
  const dev = await testDevice();
  const g = new Graph();
  const x = g.input('x', inputs[0].shape);
  const rest = inputs
    .slice(1)
    .map((t, i) =>
      i === 2 || (i === 0 && !constW) ? g.input(`r${i}`, t.shape) : g.constant(`c${i}`, t.shape, t.data),
    );
  const y = g.op('conv2d', [x, ...rest], attrs as Record<string, unknown>, 'conv');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer: { conv2d: prefer } });
  try {
    const feeds: Record<string, Float32Array> = { x: inputs[0].data };
    if (inputs[3]) feeds.r2 = inputs[3].data;
    if (!constW) feeds.r0 = inputs[1].data;
    const { outputs } = await plan.run(feeds);
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

interface Case {
  name: string;
  x: number[];
  w: number[];
  attrs: Conv2dAttrs;
  residual?: boolean;
}

const CASES: [string, Case][] = [
  [
    'gemm,tile=4x8,pk',
    {
      name: '3x3 /2 pad 1,0,2,1, Cin 8 → 20 (tile overhangs)',
      x: [1, 9, 7, 8],
      w: [3, 3, 8, 20],
      attrs: { stride: [2, 2], pad: [1, 0, 2, 1], act: 'relu' },
    },
  ],
  ['gemm,tile=3x12,pk', { name: '1x1 pointwise Cin 12 → 20, batch 2', x: [2, 5, 3, 12], w: [1, 1, 12, 20], attrs: {} }],
  [
    'gemm,tile=4x8,pk',
    {
      name: '3x3 dilation 2 pad 2, Cin 5 (scalar x) → 12, residual',
      x: [1, 8, 6, 5],
      w: [3, 3, 5, 12],
      attrs: { pad: [2, 2, 2, 2], dilation: [2, 2] },
      residual: true,
    },
  ],
  [
    'direct,tile=3x8,pk',
    {
      name: 'direct 5x5 /2 pad 2, Cin 4 → 12',
      x: [1, 11, 9, 4],
      w: [5, 5, 4, 12],
      attrs: { stride: [2, 2], pad: [2, 2, 2, 2], act: 'gelu' },
    },
  ],
  [
    'direct,tile=4x8,pk',
    {
      name: 'grouped: 2 groups, Cin 8 → 24 (12 per group, tile 8)',
      x: [1, 7, 5, 8],
      w: [3, 3, 4, 24],
      attrs: { pad: [1, 1, 1, 1], groups: 2 },
    },
  ],
  [
    'gemm,tile=4x16,sg,pk',
    {
      name: 'sg: 3x3 pad 1, Cin 8 → 48, 11x13 map',
      x: [1, 11, 13, 8],
      w: [3, 3, 8, 48],
      attrs: { pad: [1, 1, 1, 1], act: 'relu' },
    },
  ],
  [
    'gemm,tile=4x8,pk,f16=w',
    { name: 'f16=w: 3x3 /2, Cin 8 → 20', x: [1, 9, 9, 8], w: [3, 3, 8, 20], attrs: { stride: [2, 2] } },
  ],
];

describe("conv2d 'pk' (packed weights)", () => {
  it('packs [K, Cout] into channel blocks of tn per group, zeros past Cout/groups', () => {
    // K = 2, 2 groups of cog = 3, tn = 2: blocks (g0: ch 0-1, ch 2+0), (g1: ch 3-4, ch 5+0).
    const w = Float32Array.from([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);
    expect([...packConvWeights(w, 2, 2, 3, 2)]).toEqual([0, 1, 10, 11, 2, 0, 12, 0, 3, 4, 13, 14, 5, 0, 15, 0]);
  });

  for (const [prefer, c] of CASES) {
    it(`${prefer}: ${c.name}`, async () => {
      const dev = await testDevice();
      if (prefer.includes('sg') && dev.info.subgroupSize !== 4) return; // 'sg' needs subgroups
      const cout = c.w[3];
      const ins = [randTensor(c.x, 11), randTensor(c.w, 12), randTensor([cout], 13)];
      if (c.residual) {
        const y0 = conv2dOp.infer(c.attrs, [c.x, c.w, [cout]])[0];
        ins.push(randTensor(y0, 14));
      }
      const { y, kernels } = await runConv(c.attrs, ins, prefer);
      const want = conv2dOp.ref(c.attrs, ins)[0];
      const tol = prefer.includes('f16') ? { atol: 5e-3, rtol: 2e-3 } : { atol: 1e-4, rtol: 1e-5 };
      expectClose(y, want, tol, `${prefer} ${c.name}`);
      expect(kernels[0]).toContain('"packW":true');
    });
  }

  it('is in the tune space of 1×1 convs with constant weights, Cout a multiple of 4', async () => {
    const { limits } = (await testDevice()).info;
    const space = (w: number[], subgroupSize: number, constW = true, pad = 0) =>
      conv2dOp.tuneSpace!({ pad: [pad, pad, pad, pad] }, [[1, 28, 28, w[2]], w], {
        limits,
        subgroupSize,
        constInputs: [false, constW],
      })!.candidates.filter((v) => v.includes('pk'));
    expect(space([1, 1, 128, 512], 4)).toEqual(['gemm,tile=8x16,sg,pk', 'gemm,tile=8x32,sg,pk']);
    expect(space([1, 1, 128, 48], 4)).toEqual(['gemm,tile=8x16,sg,pk']);
    expect(space([1, 1, 128, 512], 0)).toEqual(['gemm,tile=8x8,pk']); // no subgroups
    expect(space([1, 1, 128, 512], 4, false)).toEqual([]); // weights not constant
    expect(space([1, 1, 128, 6], 4)).toEqual([]); // Cout not a multiple of 4
    expect(space([3, 3, 64, 64], 4, true, 1)).toEqual([]); // not measured to help on 3×3
  });

  it('is refused with a reason where it cannot run', async () => {
    const ins = [randTensor([1, 6, 6, 4], 1), randTensor([3, 3, 4, 6], 2), randTensor([6], 3)];
    await expect(runConv({}, ins, 'gemm,tile=4x8,pk')).rejects.toThrow(/'pk' reads packed w as vec4s.*\(6\)/);
    const ins8 = [randTensor([1, 6, 6, 4], 1), randTensor([3, 3, 4, 8], 2), randTensor([8], 3)];
    await expect(runConv({}, ins8, 'gemm,tile=4x4,wgmem,wg=8x8,tk=16,pk')).rejects.toThrow(/no 'wgmem'/);
    await expect(runConv({}, ins8, 'gemm,tile=4x8,pk', false)).rejects.toThrow(
      /'pk' needs the weights to be a graph constant/,
    );
  });
});
