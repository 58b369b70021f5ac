// Normalisation backward ops and batchnorm_train: references against finite differences and an
// independent PyTorch-semantics batchnorm, WGSL kernels against their references on SwiftShader.

import { describe, expect, it } from 'vitest';
import {
  batchNormGradOp,
  batchNormTrainCount,
  batchNormTrainGradOp,
  batchNormTrainOp,
  groupNormGradOp,
  layerNormGradOp,
  weightStandardizeGradOp,
} from '../../kernels/backward/norm.js';
import { batchNormOp } from '../../kernels/batchnorm.js';
import { groupNormOp, weightStandardizeOp } from '../../kernels/groupnorm.js';
import type { Activation, HostTensor, OpDef, Shape } from '../../kernels/kernel.js';
import { layerNormOp } from '../../kernels/layernorm.js';
import { expectClose, randTensor, runOp } from '../helpers.js';
import { fdTol, numericGrad, weightedSum } from './backward-norm-fd.js';

/** Checks `grads` (one per listed input) against central differences of Σ w·fwd(inputs)[0]. */
function checkFd(
  fwd: OpDef,
  attrs: Record<string, unknown>,
  inputs: HostTensor[],
  w: HostTensor,
  grads: HostTensor[],
  which: number[],
) {
  const loss = (ins: HostTensor[]) => weightedSum(fwd.ref(attrs, ins)[0].data, w.data);
  which.forEach((k, i) => {
    const want = numericGrad(loss, inputs, k);
    expectClose(grads[i], want, fdTol(want), `d(input ${k}) vs finite differences`);
  });
}

const C_SHAPES: Shape[] = [
  [2, 3, 5, 7], // NHWC, C = 7
  [3, 6], // [N, C]
  [1, 2, 1, 5], // small spatial, N = 1
];

describe('batchnorm_train forward', () => {
  /** PyTorch's training-mode BatchNorm2d, written out: batch mean, biased var to normalise, unbiased var for running_var. */
  function torchBn(x: HostTensor, gamma: Float32Array, beta: Float32Array, eps: number, momentum: number) {
    const C = x.shape[x.shape.length - 1];
    const n = x.data.length / C;
    const y = new Float32Array(x.data.length);
    const mean = new Float64Array(C),
      varB = new Float64Array(C),
      varU = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      const vals: number[] = [];
      for (let i = c; i < x.data.length; i += C) vals.push(x.data[i]);
      mean[c] = vals.reduce((a, b) => a + b, 0) / n;
      const ss = vals.reduce((a, b) => a + (b - mean[c]) ** 2, 0);
      varB[c] = ss / n;
      varU[c] = ss / (n - 1);
      for (let i = c; i < x.data.length; i += C)
        y[i] = ((x.data[i] - mean[c]) / Math.sqrt(varB[c] + eps)) * gamma[c] + beta[c];
    }
    // running stats from (0, 1) after one step
    const runMean = Array.from(mean, (m) => momentum * m);
    const runVar = Array.from(varU, (v) => (1 - momentum) * 1 + momentum * v);
    return { y, mean, varB, runMean, runVar };
  }

  for (const shape of C_SHAPES) {
    it(`ref = PyTorch training-mode BN, ${JSON.stringify(shape)}`, () => {
      const C = shape[shape.length - 1];
      const x = randTensor(shape, 11, -2, 3);
      const gamma = randTensor([C], 12, 0.5, 2),
        beta = randTensor([C], 13);
      const [y, mean, variance] = batchNormTrainOp.ref({ eps: 1e-3 }, [x, gamma, beta]);
      const t = torchBn(x, gamma.data, beta.data, 1e-3, 0.1);
      const tol = { atol: 1e-6, rtol: 1e-5 };
      expectClose(y, { shape: [...shape], data: t.y }, tol, 'y');
      expectClose(mean, { shape: [C], data: Float32Array.from(t.mean) }, tol, 'mean');
      expectClose(variance, { shape: [C], data: Float32Array.from(t.varB) }, tol, 'var');
      // What the trainer does with the exposed count: running_var uses the unbiased variance.
      const R = batchNormTrainCount(shape);
      expect(R).toBe(x.data.length / C);
      const runVar = Array.from(variance.data, (v) => 0.9 + 0.1 * ((v * R) / (R - 1)));
      expectClose(
        { shape: [C], data: Float32Array.from(runVar) },
        { shape: [C], data: Float32Array.from(t.runVar) },
        tol,
        'running var',
      );
    });
  }

  const gpuCases: [Shape, Activation][] = [
    [[2, 3, 5, 7], 'none'],
    [[3, 6], 'relu'],
    [[2, 9, 11, 4], 'none'],
    [[1, 1, 1, 5], 'none'],
  ];
  for (const [shape, act] of gpuCases) {
    it(`GPU = ref, ${JSON.stringify(shape)} act=${act}`, async () => {
      const C = shape[shape.length - 1];
      const ins = [randTensor(shape, 21, -3, 5), randTensor([C], 22, 0.5, 2), randTensor([C], 23)];
      // A large common offset: the shifted two-pass statistics keep the variance's digits.
      for (let i = 0; i < ins[0].data.length; i++) ins[0].data[i] += 100;
      const want = batchNormTrainOp.ref({ eps: 1e-5, act }, ins);
      const got = await runOp('batchnorm_train', { eps: 1e-5, act }, ins, [1, 2]);
      const tol = { atol: 1e-4, rtol: 1e-4 };
      expectClose(got[0], want[0], tol, 'y');
      expectClose(got[1], want[1], { atol: 1e-5, rtol: 1e-6 }, 'mean');
      expectClose(got[2], want[2], tol, 'var');
    });
  }

  it('rejects gamma of the wrong length', () => {
    expect(() => batchNormTrainOp.infer({}, [[2, 3, 3, 5], [4], [5]])).toThrow(/gamma must be \[5\]/);
  });
});

describe('batchnorm backward: refs vs finite differences', () => {
  for (const shape of C_SHAPES) {
    const C = shape[shape.length - 1];
    const x = randTensor(shape, 1, -2, 2),
      gamma = randTensor([C], 2, 0.5, 2),
      beta = randTensor([C], 3);
    const w = randTensor(shape, 4);
    it(`batchnorm_train_grad ${JSON.stringify(shape)}`, () => {
      const [, mean, variance] = batchNormTrainOp.ref({ eps: 1e-3 }, [x, gamma, beta]);
      const g = batchNormTrainGradOp.ref({ eps: 1e-3 }, [x, gamma, mean, variance, w]);
      checkFd(batchNormTrainOp, { eps: 1e-3 }, [x, gamma, beta], w, g, [0, 1, 2]);
    });
    it(`batchnorm_grad (frozen statistics) ${JSON.stringify(shape)}`, () => {
      const mean = randTensor([C], 5),
        variance = randTensor([C], 6, 0.2, 2);
      const g = batchNormGradOp.ref({ eps: 1e-3 }, [x, gamma, mean, variance, w]);
      checkFd(batchNormOp, { eps: 1e-3 }, [x, gamma, beta, mean, variance], w, g, [0, 1, 2]);
    });
  }
});

describe('group_norm / layernorm / weight_standardize backward: refs vs finite differences', () => {
  const gn: [Shape, number][] = [
    [[2, 3, 2, 6], 3], // Cg = 2
    [[1, 5, 3, 4], 1], // one group
    [[2, 2, 3, 5], 5], // Cg = 1 with N > 1
  ];
  for (const [shape, groups] of gn) {
    it(`group_norm_grad ${JSON.stringify(shape)} groups=${groups}`, () => {
      const C = shape[3];
      const ins = [randTensor(shape, 7, -2, 2), randTensor([C], 8, 0.5, 2), randTensor([C], 9)];
      const w = randTensor(shape, 10);
      const g = groupNormGradOp.ref({ groups, eps: 1e-3 }, [ins[0], ins[1], w]);
      checkFd(groupNormOp, { groups, eps: 1e-3 }, ins, w, g, [0, 1, 2]);
    });
  }
  for (const shape of [
    [2, 5, 7],
    [3, 4],
    [1, 1, 9],
  ] as Shape[]) {
    it(`layernorm_grad ${JSON.stringify(shape)}`, () => {
      const D = shape[shape.length - 1];
      const ins = [randTensor(shape, 17, -2, 2), randTensor([D], 18, 0.5, 2), randTensor([D], 19)];
      const w = randTensor(shape, 20);
      const g = layerNormGradOp.ref({ eps: 1e-5 }, [ins[0], ins[1], w]);
      checkFd(layerNormOp, { eps: 1e-5 }, ins, w, g, [0, 1, 2]);
    });
  }
  for (const shape of [
    [3, 3, 2, 5],
    [1, 1, 7, 3],
  ] as Shape[]) {
    it(`weight_standardize_grad ${JSON.stringify(shape)}`, () => {
      const ins = [randTensor(shape, 27, -1, 1)];
      const w = randTensor(shape, 28);
      const g = weightStandardizeGradOp.ref({ eps: 1e-6 }, [ins[0], w]);
      checkFd(weightStandardizeOp, { eps: 1e-6 }, ins, w, g, [0]);
    });
  }
});

describe('normalisation backward kernels: GPU = ref', () => {
  // f32 sums over ≤ a few hundred terms against double references.
  const tol = { atol: 2e-5, rtol: 2e-4 };
  const check = async (op: OpDef, attrs: Record<string, unknown>, ins: HostTensor[], consts: number[]) => {
    const want = op.ref(attrs, ins);
    const got = await runOp(op.op, attrs, ins, consts);
    expect(got.length).toBe(want.length);
    want.forEach((w, i) => expectClose(got[i], w, tol, `${op.op} output ${i}`));
  };

  for (const shape of [
    [2, 3, 5, 7],
    [3, 6],
    [2, 9, 11, 4],
    [1, 1, 1, 5],
  ] as Shape[]) {
    const C = shape[shape.length - 1];
    const x = randTensor(shape, 31, -2, 2),
      gamma = randTensor([C], 32, 0.5, 2),
      beta = randTensor([C], 33),
      dy = randTensor(shape, 34);
    it(`batchnorm_train_grad ${JSON.stringify(shape)}`, async () => {
      const [, mean, variance] = batchNormTrainOp.ref({}, [x, gamma, beta]);
      await check(batchNormTrainGradOp, { eps: 1e-5 }, [x, gamma, mean, variance, dy], [1]);
    });
    it(`batchnorm_grad ${JSON.stringify(shape)}`, async () => {
      const mean = randTensor([C], 35),
        variance = randTensor([C], 36, 0.2, 2);
      await check(batchNormGradOp, { eps: 1e-3 }, [x, gamma, mean, variance, dy], [1, 2, 3]);
    });
  }

  const gn: [Shape, number][] = [
    [[2, 3, 5, 6], 3],
    [[3, 4, 3, 10], 2],
    [[2, 2, 3, 5], 5],
    [[1, 1, 1, 8], 4],
  ];
  for (const [shape, groups] of gn) {
    it(`group_norm_grad ${JSON.stringify(shape)} groups=${groups}`, async () => {
      const C = shape[3];
      const ins = [randTensor(shape, 41, -2, 2), randTensor([C], 42, 0.5, 2), randTensor(shape, 43)];
      for (let i = 0; i < ins[0].data.length; i++) ins[0].data[i] += 50; // offset: shifted statistics
      await check(groupNormGradOp, { groups, eps: 1e-5 }, ins, [1]);
    });
  }

  for (const shape of [
    [2, 5, 7],
    [3, 4],
    [1, 1, 9],
    [2, 3, 33],
  ] as Shape[]) {
    it(`layernorm_grad ${JSON.stringify(shape)}`, async () => {
      const D = shape[shape.length - 1];
      const ins = [randTensor(shape, 51, -2, 2), randTensor([D], 52, 0.5, 2), randTensor(shape, 53)];
      await check(layerNormGradOp, {}, ins, [1]);
    });
  }

  for (const shape of [
    [3, 3, 2, 5],
    [1, 1, 7, 3],
    [3, 3, 5, 8],
  ] as Shape[]) {
    it(`weight_standardize_grad ${JSON.stringify(shape)}`, async () => {
      await check(weightStandardizeGradOp, { eps: 1e-6 }, [randTensor(shape, 61), randTensor(shape, 62)], [0]);
    });
  }

  // Lanes per set: 1 (no workgroup memory), 4, and 64 (more lanes than some sets have elements).
  for (const wg of ['wg=1', 'wg=4', 'wg=64']) {
    it(`variant norm_grad ${wg}: batchnorm_train and its grad, group_norm_grad, layernorm_grad`, async () => {
      const prefer = { norm_grad: wg };
      const limits = {
        maxStorageBufferBindingSize: 2 ** 30,
        maxBufferSize: 2 ** 30,
        maxComputeWorkgroupsPerDimension: 65535,
        maxComputeInvocationsPerWorkgroup: 256,
        maxComputeWorkgroupStorageSize: 16384,
        maxStorageBuffersPerShaderStage: 8,
      };
      const low = groupNormGradOp.lower({ groups: 2 }, [[2, 5, 3, 6], [6], [2, 5, 3, 6]], [], { limits, prefer });
      expect((low.dispatches[0].config as { wg: number }).wg).toBe(Number(wg.slice(3)));
      const x = randTensor([2, 5, 3, 6], 71, -2, 2),
        gamma = randTensor([6], 72, 0.5, 2),
        beta = randTensor([6], 73),
        dy = randTensor([2, 5, 3, 6], 74);
      const fwd = batchNormTrainOp.ref({}, [x, gamma, beta]);
      const gotFwd = await runOp('batchnorm_train', {}, [x, gamma, beta], [1, 2], prefer);
      fwd.forEach((w, i) => expectClose(gotFwd[i], w, tol, `batchnorm_train output ${i}`));
      const cases: [OpDef, Record<string, unknown>, HostTensor[]][] = [
        [batchNormTrainGradOp, {}, [x, gamma, fwd[1], fwd[2], dy]],
        [groupNormGradOp, { groups: 2 }, [x, gamma, dy]],
        [layerNormGradOp, {}, [x, gamma, dy]],
      ];
      for (const [op, attrs, ins] of cases) {
        const want = op.ref(attrs, ins);
        const got = await runOp(op.op, attrs, ins, [1], prefer);
        want.forEach((w, i) => expectClose(got[i], w, tol, `${op.op} output ${i}`));
      }
    });
  }

  it('shape errors name the mismatch', () => {
    expect(() => layerNormGradOp.infer({}, [[2, 5], [5], [2, 4]])).toThrow(/dy \[2,4\] must have x's shape \[2,5\]/);
    expect(() => groupNormGradOp.infer({ groups: 4 }, [[1, 2, 2, 6], [6], [1, 2, 2, 6]])).toThrow(/groups=4/);
  });
});
