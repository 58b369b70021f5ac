import { describe, expect, it } from 'vitest';
import { augmentCropOp, augmentCropRef, mixupOp, mixupRef } from '../../kernels/augment.js';
import { ShapeError } from '../../kernels/kernel.js';
import { expectClose, rand, randTensor, runOp } from '../helpers.js';

// |d| ≤ 1e-5 + 1e-5·|ref|: the references compute the taps in f32 as the WGSL does; what is left is
// the GPU's fused or reordered f32 arithmetic.
const TOL = { atol: 1e-5, rtol: 1e-5 };

describe('augment_crop', () => {
  const x = randTensor([4, 13, 11, 3], 7, -2, 3);
  // top, left, height, width, flip: an exact 9×6 crop, the same flipped, a 5×4 box upscaled,
  // the whole image downscaled.
  const boxes = Float32Array.from([2, 3, 9, 6, 0, 4, 5, 9, 6, 1, 0, 7, 5, 4, 1, 0, 0, 13, 11, 0]);

  it('matches the reference on crops, flips, up- and downscaling (9×6 output, N = 4, odd sizes)', async () => {
    const [y] = await runOp('augment_crop', { height: 9, width: 6 }, [x, { shape: [4, 5], data: boxes }]);
    expectClose(y, augmentCropRef(x, boxes, { height: 9, width: 6 }), TOL);
  });

  it('a box the size of the output is an exact copy, mirrored with flip', () => {
    const y = augmentCropRef(x, boxes, { height: 9, width: 6 });
    const at = (t: { data: Float32Array }, n: number, i: number, j: number, c: number, h: number, w: number) =>
      t.data[((n * h + i) * w + j) * 3 + c];
    for (let i = 0; i < 9; i++)
      for (let j = 0; j < 6; j++)
        for (let c = 0; c < 3; c++) {
          expect(at(y, 0, i, j, c, 9, 6)).toBe(at(x, 0, 2 + i, 3 + j, c, 13, 11));
          expect(at(y, 1, i, j, c, 9, 6)).toBe(at(x, 1, 4 + i, 5 + (5 - j), c, 13, 11));
        }
  });

  it('one channel, 1×1 output and a box clamped at the border', async () => {
    const g = randTensor([2, 5, 7, 1], 3);
    const b = Float32Array.from([4, 6, 1, 1, 0, 1, 2, 3, 5, 1]);
    for (const [h, w] of [
      [1, 1],
      [3, 7],
    ]) {
      const [y] = await runOp('augment_crop', { height: h, width: w }, [g, { shape: [2, 5], data: b }]);
      expectClose(y, augmentCropRef(g, b, { height: h, width: w }), TOL, `${h}×${w}`);
    }
  });

  it('rejects boxes of the wrong shape', () => {
    expect(() =>
      augmentCropOp.infer({ height: 4, width: 4 }, [
        [2, 5, 5, 3],
        [2, 4],
      ]),
    ).toThrow(ShapeError);
    expect(() =>
      augmentCropOp.infer({ height: 0, width: 4 }, [
        [2, 5, 5, 3],
        [2, 5],
      ]),
    ).toThrow(/height/);
  });
});

describe('mixup', () => {
  it('matches the reference (N = 5, 3×7×3 per image, λ per image, partner permutation)', async () => {
    const x = randTensor([5, 3, 7, 3], 11);
    const lam = rand(5, 12, 0, 1);
    const perm = [3, 0, 4, 1, 2];
    const pairs = Float32Array.from(perm.flatMap((p, i) => [p, lam[i]]));
    const [y] = await runOp('mixup', {}, [x, { shape: [5, 2], data: pairs }]);
    const want = mixupRef(x, pairs);
    expectClose(y, want, TOL);
    // λ = 1 keeps the image; the reference is the convex combination it says.
    const per = 63;
    for (let e = 0; e < per; e += 17)
      expect(want.data[2 * per + e]).toBeCloseTo(lam[2] * x.data[2 * per + e] + (1 - lam[2]) * x.data[4 * per + e], 5);
  });

  it('rejects pairs of the wrong shape', () => {
    expect(() =>
      mixupOp.infer({}, [
        [4, 6],
        [4, 1],
      ]),
    ).toThrow(/pairs \[4, 2\]/);
  });
});
