// Backward kernels (activation gradients, reduce_sum, softmax backward, the cross-entropy loss
// and its gradient, the slice and global-average-pool adjoints) against their references on
// SwiftShader, on awkward shapes.

import { describe, expect, it } from 'vitest';
import { activationGradRef } from '../../kernels/backward/elementwise.js';
import { getOp } from '../../kernels/index.js';
import type { Activation, HostTensor } from '../../kernels/kernel.js';
import { expectClose, randTensor, runOp } from '../helpers.js';

const tol = { atol: 1e-5, rtol: 1e-4 };

async function check(op: string, attrs: Record<string, unknown>, inputs: HostTensor[], t = tol): Promise<void> {
  const want = getOp(op).ref(attrs, inputs);
  const got = await runOp(op, attrs, inputs);
  want.forEach((w, i) => {
    expectClose(got[i], w, t, `${op} output ${i}`);
  });
}

describe('activation_grad', () => {
  it('matches the reference for every activation on 301 elements spanning the kinks', async () => {
    const x = randTensor([7, 43], 1, -8, 8);
    const dy = randTensor([7, 43], 2);
    for (const act of ['none', 'relu', 'relu6', 'gelu', 'hardswish', 'silu'] as Activation[])
      await check('activation_grad', { act }, [x, dy], { atol: 2e-6, rtol: 1e-5 });
  });

  it('the derivatives by hand at a few points', () => {
    expect(activationGradRef('relu6')(5.9)).toBe(1);
    expect(activationGradRef('relu6')(6.1)).toBe(0);
    expect(activationGradRef('hardswish')(0)).toBe(0.5);
    expect(activationGradRef('hardswish')(-3.5)).toBe(0);
    expect(activationGradRef('silu')(0)).toBe(0.5);
    expect(activationGradRef('gelu')(0)).toBe(0.5);
    // d/dx GELU at 1 = Φ(1) + φ(1) = 0.8413447 + 0.2419707.
    expect(activationGradRef('gelu')(1)).toBeCloseTo(1.0833155, 6);
  });
});

describe('reduce_sum', () => {
  it('sums over leading, inner and several broadcast axes', async () => {
    const x = randTensor([3, 5, 2, 7], 3);
    for (const shape of [[7], [5, 1, 7], [3, 1, 2, 1], [1], [2, 7], [3, 5, 2, 7]])
      await check('reduce_sum', { shape }, [x]);
  });

  it('rejects a target that does not broadcast to the input', () => {
    expect(() => getOp('reduce_sum').infer({ shape: [4] }, [[3, 5]])).toThrow(/do not broadcast/);
    expect(() => getOp('reduce_sum').infer({ shape: [3, 1] }, [[1, 5]])).toThrow(
      /\[3,1\] does not broadcast to the input \[1,5\]/,
    );
  });
});

describe('softmax_grad, softmax_xent, softmax_xent_grad', () => {
  it('softmax backward over rows of 13 and 1', async () => {
    const y = getOp('softmax').ref({}, [randTensor([3, 5, 13], 4, -3, 3)])[0];
    await check('softmax_grad', {}, [y, randTensor([3, 5, 13], 5)]);
    const y1 = getOp('softmax').ref({}, [randTensor([6, 1], 6)])[0];
    await check('softmax_grad', {}, [y1, randTensor([6, 1], 7)]);
  });

  it('the loss and its gradient on 70 rows of 11 classes (more rows than lanes), large logits', async () => {
    const logits = randTensor([70, 11], 8, -40, 40);
    const t = randTensor([70, 11], 9, 0, 1);
    for (let r = 0; r < 70; r++) {
      let s = 0;
      for (let k = 0; k < 11; k++) s += t.data[r * 11 + k];
      for (let k = 0; k < 11; k++) t.data[r * 11 + k] /= s;
    }
    await check('softmax_xent', {}, [logits, t], { atol: 1e-5, rtol: 1e-5 });
    await check('softmax_xent_grad', {}, [logits, t, { shape: [1], data: new Float32Array([0.75]) }]);
  });

  it('the loss by hand: uniform logits over K classes cost log K', () => {
    const [loss] = getOp('softmax_xent').ref({}, [
      { shape: [2, 4], data: new Float32Array(8) },
      { shape: [2, 4], data: new Float32Array([1, 0, 0, 0, 0, 0.5, 0.5, 0]) },
    ]);
    expect(loss.data[0]).toBeCloseTo(Math.log(4), 6);
  });
});

describe('slice_grad, global_avgpool_grad', () => {
  it('places dy in its slab and zeros elsewhere', async () => {
    const dy = randTensor([2, 3, 5], 10);
    await check('slice_grad', { axis: 1, start: 2, size: 7 }, [dy]);
    await check('slice_grad', { axis: 2, start: 1, size: 9 }, [dy]);
    await check('slice_grad', { axis: 0, start: 0, size: 3 }, [dy]);
    const [dx] = getOp('slice_grad').ref({ axis: 0, start: 1, size: 3 }, [
      { shape: [1, 2], data: new Float32Array([4, 5]) },
    ]);
    expect([...dx.data]).toEqual([0, 0, 4, 5, 0, 0]);
  });

  it('spreads dy / (h·w) over every pixel (7×3, 5 channels; 1×1)', async () => {
    await check('global_avgpool_grad', { h: 7, w: 3 }, [randTensor([2, 5], 11)]);
    await check('global_avgpool_grad', { h: 1, w: 1 }, [randTensor([3, 6], 12)]);
  });
});
