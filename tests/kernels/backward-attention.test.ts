// attention_grad: the reference against finite differences of the forward reference, the WGSL
// kernels against the reference on SwiftShader (packed qkv and separate q, k, v; dh odd).

import { describe, expect, it } from 'vitest';
import { attentionRef } from '../../kernels/attention.js';
import { attentionGradOp, attentionGradRef } from '../../kernels/backward/attention.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { expectClose, randTensor, runOp } from '../helpers.js';
import { fdTol, numericGrad, weightedSum } from './backward-norm-fd.js';

interface Case {
  what: string;
  heads: number;
  scale?: number;
  inputs: () => HostTensor[];
}

const CASES: Case[] = [
  // T = 5 tokens, 3 heads of dh = 7, batch 2, packed as ViT's qkv.
  { what: 'packed B=2 T=5 heads=3 dh=7', heads: 3, inputs: () => [randTensor([2, 5, 63], 1, -1.5, 1.5)] },
  // Cross attention with Tq ≠ Tk, batch 3, an explicit scale.
  {
    what: 'q,k,v B=3 Tq=4 Tk=6 heads=2 dh=3 scale=0.7',
    heads: 2,
    scale: 0.7,
    inputs: () => [randTensor([3, 4, 6], 2), randTensor([3, 6, 6], 3), randTensor([3, 6, 6], 4)],
  },
  // dh % 4 == 0 (the forward's vec4 path), one head.
  { what: 'packed B=1 T=3 heads=1 dh=8', heads: 1, inputs: () => [randTensor([1, 3, 24], 5)] },
];

describe('attention_grad ref vs finite differences', () => {
  for (const c of CASES) {
    it(c.what, () => {
      const attrs = { heads: c.heads, scale: c.scale };
      const ins = c.inputs();
      const out = attentionRef(attrs, ins);
      const w = randTensor(out.shape, 9);
      const grads = attentionGradRef(attrs, [...ins, w]);
      expect(grads.map((g) => g.shape)).toEqual(ins.map((t) => t.shape));
      const loss = (xs: HostTensor[]) => weightedSum(attentionRef(attrs, xs).data, w.data);
      ins.forEach((_, k) => {
        const want = numericGrad(loss, ins, k);
        expectClose(grads[k], want, fdTol(want), `d(input ${k})`);
      });
    });
  }
});

describe('attention_grad GPU = ref', () => {
  // Dot products of ≤ 8 terms and softmax rows of ≤ 6 in f32 against double.
  const tol = { atol: 1e-5, rtol: 1e-4 };
  for (const c of [
    ...CASES,
    { what: 'packed B=2 T=17 heads=3 dh=5', heads: 3, inputs: () => [randTensor([2, 17, 45], 6, -2, 2)] },
  ]) {
    for (const path of ['naive', 'fused', 'fused,rows=3', 'fused,rows=2,head=loop'])
      it(`${path}: ${c.what}`, async () => {
        const attrs = { heads: c.heads, scale: c.scale };
        const ins = c.inputs();
        const dO = randTensor(attentionRef(attrs, ins).shape, 10);
        const want = attentionGradRef(attrs, [...ins, dO]);
        const got = await runOp('attention_grad', attrs, [...ins, dO], [], { attention_grad: path });
        expect(got.length).toBe(want.length);
        want.forEach((w, i) => expectClose(got[i], w, tol, `gradient ${i}`));
      });
  }

  it('the variant picks the path; the fused scratch is 2 floats per query row', () => {
    const limits = {
      maxStorageBufferBindingSize: 2 ** 30,
      maxBufferSize: 2 ** 30,
      maxComputeWorkgroupsPerDimension: 65535,
      maxComputeInvocationsPerWorkgroup: 256,
      maxComputeWorkgroupStorageSize: 16384,
      maxStorageBuffersPerShaderStage: 8,
    };
    const shapes = [
      [2, 5, 63],
      [2, 5, 21],
    ];
    const lower = (prefer?: Record<string, string>) =>
      attentionGradOp.lower({ heads: 3 }, shapes, shapes.slice(0, 1), { limits, prefer });
    const fused = lower();
    expect(fused.dispatches.map((d) => d.family)).toEqual(Array(3).fill('attention_grad_fused'));
    expect(fused.temps).toEqual([2 * 2 * 3 * 5]);
    const naive = lower({ attention_grad: 'naive' });
    expect(naive.dispatches.map((d) => d.family)).toEqual(Array(3).fill('attention_grad'));
    expect(naive.temps).toEqual([2 * 3 * 5 * 5, 2 * 3 * 5 * 5]);
  });

  it('shape errors name the mismatch', () => {
    expect(() =>
      attentionGradOp.infer({ heads: 3 }, [
        [2, 5, 63],
        [2, 5, 20],
      ]),
    ).toThrow(/dO \[2,5,20\] must have the attention output's shape \[2,5,21\]/);
    expect(() =>
      attentionGradOp.infer({ heads: 3 }, [
        [2, 5, 63],
        [2, 5, 21],
        [2, 5, 21],
      ]),
    ).toThrow(/takes \[qkv, dO\]/);
  });
});
