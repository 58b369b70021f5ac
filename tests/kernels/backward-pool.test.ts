// Pooling backward kernels (kernels/backward/pool.ts): references by hand (ties, padding) and
// against central finite differences of the forward references, WGSL against the references.

import { describe, expect, it } from 'vitest';
import { type AvgpoolGradAttrs, avgpoolGradRef, maxpoolGradRef } from '../../kernels/backward/pool.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { type AvgPoolAttrs, type PoolAttrs, avgpoolOp, maxpoolOp } from '../../kernels/pool.js';
import { Rng } from '../../models/init.js';
import { expectClose, randTensor, runOp } from '../helpers.js';

type S4 = [number, number, number, number];
const t = (shape: number[], data: number[]): HostTensor => ({ shape, data: Float32Array.from(data) });

interface Case {
  name: string;
  x: S4;
  attrs: AvgPoolAttrs;
}

const maxCases: Case[] = [
  {
    name: 'stem 3x3/2 pad 1, odd 9x7, C 5, batch 2',
    x: [2, 9, 7, 5],
    attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  },
  { name: '2x2/2, C 8 (vec4)', x: [1, 6, 8, 8], attrs: { kernel: [2, 2] } },
  {
    name: '3x3/1 dilation 2, asymmetric pad [0,1,2,1], C 3',
    x: [1, 7, 8, 3],
    attrs: { kernel: [3, 3], stride: [1, 1], dilation: [2, 2], pad: [0, 1, 2, 1] },
  },
  {
    name: '3x3/2 ceil mode, 8x8, C 4, batch 3',
    x: [3, 8, 8, 4],
    attrs: { kernel: [3, 3], stride: [2, 2], ceilMode: true },
  },
];

const avgCases: Case[] = [
  ...maxCases,
  {
    name: '3x3/2 pad 1 without counting padding, C 6',
    x: [1, 7, 9, 6],
    attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], countIncludePad: false },
  },
  {
    name: '3x3/2 pad 1 ceil mode (divisor clipped to the padded extent), C 4',
    x: [2, 6, 6, 4],
    attrs: { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], ceilMode: true },
  },
  { name: '7x7 window, stride 1, C 2 (one output)', x: [1, 7, 7, 2], attrs: { kernel: [7, 7], stride: [1, 1] } },
];

const outOf = (op: 'maxpool' | 'avgpool', c: Case): S4 => {
  const s = (op === 'maxpool' ? maxpoolOp : avgpoolOp).infer(c.attrs, [c.x])[0];
  return [s[0], s[1], s[2], s[3]];
};
const avgAttrs = (c: Case): AvgpoolGradAttrs => ({ ...c.attrs, xShape: c.x });

/** Distinct values 0.01 apart, shuffled: no max changes under a step of 0.003. */
function distinct(shape: S4, seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, (_, i) => (i - n / 2) * 0.01);
  const r = new Rng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r.uniform() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return t(shape, v);
}

describe('pooling backward references', () => {
  it('maxpool: ties go to the first tap in scan order, padding never wins', () => {
    // 3x3 stride 1 pad 1 over a constant 3x3 map: each window's first inside tap wins.
    const x = t([1, 3, 3, 1], Array(9).fill(2));
    const dy = t([1, 3, 3, 1], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const a: PoolAttrs = { kernel: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1] };
    // Windows at (0,0),(0,1),(1,0),(1,1) start at pixel (0,0); (0,2),(1,2) at (0,1); (2,0),(2,1) at (1,0); (2,2) at (1,1).
    expect([...maxpoolGradRef(a, x, dy).data]).toEqual([1 + 2 + 4 + 5, 3 + 6, 0, 7 + 8, 9, 0, 0, 0, 0]);
    // All-negative input: the padded zeros still lose.
    const neg = t([1, 2, 2, 1], [-4, -3, -2, -1]);
    const d1 = t([1, 2, 2, 1], [1, 1, 1, 1]);
    expect([...maxpoolGradRef(a, neg, d1).data]).toEqual([0, 0, 0, 4]);
  });

  it('avgpool: divisor with and without padding', () => {
    const a: AvgPoolAttrs = { kernel: [2, 2], stride: [2, 2], pad: [1, 1, 0, 0] };
    const dy = t([1, 2, 2, 1], [4, 8, 12, 16]);
    // Window (0,0) holds pixel (0,0) only: 4/4 with padding counted, 4/1 without.
    expect(avgpoolGradRef({ ...a, xShape: [1, 3, 3, 1] }, dy).data[0]).toBe(1);
    expect(avgpoolGradRef({ ...a, countIncludePad: false, xShape: [1, 3, 3, 1] }, dy).data[0]).toBe(4);
  });

  // Central differences of L = Σ pool(x)·r. Avg is linear (any step is exact up to f32 rounding
  // of y); max is piecewise linear and the distinct inputs keep every winner under the step.
  // |Δ| ≤ 1e-4 + 1e-4·|ref| over every input element.
  function fd(op: 'maxpool' | 'avgpool', c: Case, x: HostTensor, r: HostTensor, grad: HostTensor, eps: number) {
    const def = op === 'maxpool' ? maxpoolOp : avgpoolOp;
    const loss = () => {
      const y = def.ref(c.attrs, [x])[0];
      let s = 0;
      for (let i = 0; i < y.data.length; i++) s += y.data[i] * r.data[i];
      return s;
    };
    for (let i = 0; i < x.data.length; i++) {
      const v = x.data[i];
      x.data[i] = v + eps;
      const up = loss();
      x.data[i] = v - eps;
      const down = loss();
      x.data[i] = v;
      const g = (up - down) / (2 * eps);
      if (!(Math.abs(g - grad.data[i]) <= 1e-4 + 1e-4 * Math.abs(grad.data[i]))) {
        throw new Error(`${op} ${c.name}: dx[${i}] reference ${grad.data[i]}, finite difference ${g}`);
      }
    }
  }

  maxCases.forEach((c, k) => {
    it(`maxpool vs finite differences: ${c.name}`, () => {
      const x = distinct(c.x, 10 + k);
      const r = randTensor(outOf('maxpool', c), 20 + k);
      fd('maxpool', c, x, r, maxpoolGradRef(c.attrs, x, r), 0.003);
    });
  });
  avgCases.forEach((c, k) => {
    it(`avgpool vs finite differences: ${c.name}`, () => {
      const x = randTensor(c.x, 30 + k);
      const r = randTensor(outOf('avgpool', c), 40 + k);
      fd('avgpool', c, x, r, avgpoolGradRef(avgAttrs(c), r), 0.25);
    });
  });
});

// Each dx element is a sum of at most a few dy values (divided by the window size for avg).
const tol = { atol: 1e-6, rtol: 1e-5 };

describe('maxpool_grad on the GPU', () => {
  maxCases.forEach((c, k) => {
    it(c.name, async () => {
      const x = distinct(c.x, 50 + k);
      const dy = randTensor(outOf('maxpool', c), 60 + k);
      const [dx] = await runOp('maxpool_grad', { ...c.attrs }, [x, dy]);
      expectClose(dx, maxpoolGradRef(c.attrs, x, dy), tol, 'dx');
    });
  });

  it('ties (quantised input, many equal values) route as the reference does', async () => {
    const c = maxCases[0];
    const x = randTensor(c.x, 70);
    for (let i = 0; i < x.data.length; i++) x.data[i] = Math.round(x.data[i] * 2) / 2; // 5 distinct values
    const dy = randTensor(outOf('maxpool', c), 71);
    const [dx] = await runOp('maxpool_grad', { ...c.attrs }, [x, dy]);
    expectClose(dx, maxpoolGradRef(c.attrs, x, dy), tol, 'dx with ties');
  });
});

describe('avgpool_grad on the GPU', () => {
  avgCases.forEach((c, k) => {
    it(c.name, async () => {
      const dy = randTensor(outOf('avgpool', c), 80 + k);
      const [dx] = await runOp('avgpool_grad', avgAttrs(c) as unknown as Record<string, unknown>, [dy]);
      expectClose(dx, avgpoolGradRef(avgAttrs(c), dy), tol, 'dx');
    });
  });
});
