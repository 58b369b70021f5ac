import { describe, it } from 'vitest';
import { activationOp, addOp } from '../../kernels/elementwise.js';
import { ACTIVATIONS } from '../../kernels/kernel.js';
import { expectClose, randTensor, runOp } from '../helpers.js';

describe('activation', () => {
  // |d| ≤ 1e-6 + 1e-5·|ref|: GELU's erf approximation is within 1.5e-7.
  const tol = { atol: 1e-6, rtol: 1e-5 };
  for (const act of ACTIVATIONS) {
    for (const shape of [[7], [2, 5, 3, 3], [1, 1, 1, 1], [64, 33]]) {
      it(`${act} ${JSON.stringify(shape)}`, async () => {
        const x = randTensor(shape, 1 + shape.length, -8, 8);
        const [y] = await runOp('activation', { act }, [x]);
        expectClose(y, activationOp.ref({ act }, [x])[0], tol, act);
      });
    }
  }
});

describe('add', () => {
  const tol = { atol: 1e-6, rtol: 1e-6 };
  const cases: [number[], number[], string][] = [
    [[2, 3, 5, 7], [2, 3, 5, 7], 'none'],
    [[2, 4, 4, 8], [2, 4, 4, 8], 'relu'],
    [[2, 197, 13], [1, 197, 13], 'none'],
    [[3, 5, 6], [6], 'relu'],
    [[1, 1, 1, 1], [1, 1, 1, 1], 'relu'],
    [[4, 1, 3], [1, 5, 1], 'none'],
  ];
  for (const [a, b, act] of cases) {
    it(`${JSON.stringify(a)} + ${JSON.stringify(b)} act=${act}`, async () => {
      const x = randTensor(a, 3),
        y = randTensor(b, 4);
      const [z] = await runOp('add', { act }, [x, y]);
      expectClose(z, addOp.ref({ act: act as 'none' }, [x, y])[0], tol, 'add');
    });
  }
});
