// `binary` (sub, mul, div with broadcasting; kernels/binary.ts) and `unary` (sigmoid, tanh,
// hardsigmoid; kernels/unary.ts) on the GPU against their references, on awkward shapes: odd
// sizes, counts not a multiple of 4, broadcasting on either side (a squeeze-and-excitation gate
// [N,1,1,C]), 1×1 spatial. Tolerance |d| ≤ 1e-6 + 1e-6·|ref| (div and exp: 1e-5 relative).

import { describe, expect, it } from 'vitest';
import { binaryOp } from '../../kernels/binary.js';
import { unaryOp } from '../../kernels/unary.js';
import { expectClose, randTensor, runOp } from '../helpers.js';

describe('binary', () => {
  const cases: [number[], number[]][] = [
    [
      [2, 3, 5, 7],
      [2, 3, 5, 7],
    ], // same shape, 210 values: vec4 off
    [
      [2, 4, 4, 8],
      [2, 4, 4, 8],
    ], // vec4
    [
      [2, 5, 3, 6],
      [2, 1, 1, 6],
    ], // SE gate
    [
      [1, 1, 1, 13],
      [1, 1, 1, 13],
    ],
    [
      [4, 1, 3],
      [1, 5, 1],
    ], // both sides broadcast
    [[7], [3, 1]],
    [[3, 5], []],
  ];
  for (const op of ['sub', 'mul', 'div'] as const) {
    for (const [a, b] of cases) {
      it(`${op} ${JSON.stringify(a)} ∘ ${JSON.stringify(b)}`, async () => {
        const x = randTensor(a, 3);
        // Divisors away from 0, so relative errors stay small.
        const y = randTensor(b, 4, op === 'div' ? 0.5 : -1, op === 'div' ? 2 : 1);
        const [z] = await runOp('binary', { op }, [x, y], [1]);
        expectClose(z, binaryOp.ref({ op }, [x, y])[0], { atol: 1e-6, rtol: op === 'div' ? 1e-5 : 1e-6 }, op);
      });
    }
  }

  it('reference: a − b, a · b, a / b with broadcasting, by hand', () => {
    const a = { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
    const b = { shape: [2, 1], data: new Float32Array([10, 20]) };
    expect([...binaryOp.ref({ op: 'sub' }, [a, b])[0].data]).toEqual([-9, -8, -17, -16]);
    expect([...binaryOp.ref({ op: 'mul' }, [a, b])[0].data]).toEqual([10, 20, 60, 80]);
    expect([...binaryOp.ref({ op: 'div' }, [b, a])[0].data]).toEqual([10, 5, 20 / 3, 5].map(Math.fround));
  });

  it('rejects an unknown op and shapes that do not broadcast', () => {
    expect(() => binaryOp.infer({ op: 'pow' as 'mul' }, [[2], [2]])).toThrow(
      /binary op "pow" is not one of sub, mul, div/,
    );
    expect(() => binaryOp.infer({ op: 'mul' }, [[2, 3], [4]])).toThrow(/do not broadcast/);
  });
});

describe('unary', () => {
  const fns = [
    { fn: 'sigmoid' },
    { fn: 'tanh' },
    { fn: 'hardsigmoid' },
    { fn: 'hardsigmoid', alpha: 1 / 6, beta: 0.5 },
  ] as const;
  for (const attrs of fns) {
    for (const shape of [[7], [2, 5, 3, 3], [1, 1, 1, 1], [64, 33]]) {
      it(`${JSON.stringify(attrs)} ${JSON.stringify(shape)}`, async () => {
        // ±100 reaches both saturations (exp overflow for sigmoid, clamp for hardsigmoid).
        const x = randTensor(shape, 1 + shape.length, -100, 100);
        const [y] = await runOp('unary', attrs, [x]);
        expectClose(y, unaryOp.ref(attrs, [x])[0], { atol: 1e-6, rtol: 1e-5 }, attrs.fn);
      });
    }
  }

  it('reference values by hand', () => {
    const x = { shape: [4], data: new Float32Array([-3, 0, 1.5, 4]) };
    expect([...unaryOp.ref({ fn: 'sigmoid' }, [x])[0].data]).toEqual(
      [-3, 0, 1.5, 4].map((v) => Math.fround(1 / (1 + Math.exp(-v)))),
    );
    expect([...unaryOp.ref({ fn: 'hardsigmoid', alpha: 1 / 6, beta: 0.5 }, [x])[0].data]).toEqual([0, 0.5, 0.75, 1]);
    expect([...unaryOp.ref({ fn: 'hardsigmoid' }, [x])[0].data]).toEqual([0, 0.5, 0.8, 1].map(Math.fround));
    expect(() => unaryOp.infer({ fn: 'relu' as 'tanh' }, [[2]])).toThrow(
      /unary fn "relu" is not one of sigmoid, tanh, hardsigmoid/,
    );
  });
});
