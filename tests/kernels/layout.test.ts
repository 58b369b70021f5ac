import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { type HostTensor, ShapeError } from '../../kernels/kernel.js';
import { concatOp, padOp, reshapeOp, simplifyWalk, sliceOp, transposeOp } from '../../kernels/layout.js';
import { expectClose, randTensor, runOp, testDevice } from '../helpers.js';

const exact = { atol: 0, rtol: 0 };
const t = (shape: number[], data: number[]): HostTensor => ({ shape, data: Float32Array.from(data) });
const iota = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Run graph `g` on the GPU and with the references; returns both plus the plan's kernel keys. */
async function runBoth(g: Graph, feed: Record<string, Float32Array>, prefer?: Record<string, string>) {
  const plan = await compile(await testDevice(), g, { prefer });
  try {
    const { outputs } = await plan.run(feed);
    return { gpu: outputs, ref: runReference(g, feed), kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

describe('layout references, by hand', () => {
  it('transpose, concat, slice, pad, reshape', () => {
    const x = t([2, 3], iota(6)); // [[0,1,2],[3,4,5]]
    expect([...transposeOp.ref({ perm: [1, 0] }, [x])[0].data]).toEqual([0, 3, 1, 4, 2, 5]);
    // Class token [1,1,2] broadcast over batch 2, then 2 patch tokens each.
    const cls = t([1, 1, 2], [9, 8]);
    const tok = t([2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 7]);
    const c = concatOp.ref({ axis: 1 }, [cls, tok])[0];
    expect(c.shape).toEqual([2, 3, 2]);
    expect([...c.data]).toEqual([9, 8, 0, 1, 2, 3, 9, 8, 4, 5, 6, 7]);
    const s = sliceOp.ref({ axis: -1, start: -2, end: 99 }, [x])[0];
    expect(s.shape).toEqual([2, 2]);
    expect([...s.data]).toEqual([1, 2, 4, 5]);
    const p = padOp.ref({ pad: [1, 0, 0, 1], value: 7 }, [t([1, 1, 2, 1], [1, 2])])[0];
    expect(p.shape).toEqual([1, 2, 3, 1]);
    expect([...p.data]).toEqual([7, 7, 7, 1, 2, 7]);
    expect(reshapeOp.ref({ shape: [3, -1] }, [x])[0].shape).toEqual([3, 2]);
  });

  it('walk simplification merges NCHW->NHWC into a batched 2-D transpose', () => {
    // [N,C,H,W] = [2,3,4,5] read as NHWC: out [2,4,5,3], input strides [60,5,1,20].
    const w = simplifyWalk({
      shape: [2, 4, 5, 3],
      inStrides: [60, 5, 1, 20],
      outStrides: [60, 15, 3, 1],
      inOffset: 0,
      outOffset: 0,
    });
    expect(w).toEqual({ shape: [2, 20, 3], inStrides: [60, 1, 20], outStrides: [60, 3, 1], inOffset: 0, outOffset: 0 });
  });
});

describe('shape errors name the shapes', () => {
  it('reshape with the wrong element count', () => {
    const g = new Graph();
    g.input('x', [2, 3, 5]);
    expect(() => g.op('reshape', ['x'], { shape: [4, 5] })).toThrow(ShapeError);
    expect(() => g.op('reshape', ['x'], { shape: [4, 5] })).toThrow(/\[2,3,5\].*\[4,5\]/);
    expect(() => g.op('reshape', ['x'], { shape: [-1, 4] })).toThrow(/\[2,3,5\].*\[-1,4\]/);
  });
  it('concat, slice, transpose', () => {
    const g = new Graph();
    g.input('a', [2, 3, 4]);
    g.input('b', [2, 5, 4]);
    expect(() => g.op('concat', ['a', 'b'], { axis: 2 })).toThrow(/\[2,3,4\], \[2,5,4\] differ in dim 1/);
    expect(() => g.op('concat', ['a', 'b'], { axis: 3 })).toThrow(/axis 3 is out of range/);
    expect(() => g.op('slice', ['a'], { axis: 1, start: 3, end: 5 })).toThrow(/3:5 .*\[2,3,4\] is empty/);
    expect(() => g.op('transpose', ['a'], { perm: [0, 0, 1] })).toThrow(/not a permutation .*\[2,3,4\]/);
  });
});

describe('reshape aliases through the executor', () => {
  it('reshape(-1) → activation, and activation → reshape as an output', async () => {
    const g = new Graph();
    g.input('x', [2, 3, 4, 5]);
    const r = g.op('reshape', ['x'], { shape: [2, -1, 5] });
    const a = g.op('activation', [r], { act: 'relu' });
    const r2 = g.op('reshape', [a], { shape: [-1] });
    const b = g.op('activation', [r2], { act: 'gelu' });
    g.markOutputs(r2, b);
    expect(g.shape(r)).toEqual([2, 12, 5]);
    const x = randTensor([2, 3, 4, 5], 5);
    const { gpu, ref, kernels } = await runBoth(g, { x: x.data });
    expect(kernels.length).toBe(2); // reshape dispatches nothing
    expectClose(gpu[r2], ref[r2], exact, 'reshaped relu');
    expectClose(gpu[b], ref[b], { atol: 1e-6, rtol: 1e-5 }, 'gelu');
  });
  it('reshape of a graph input read back directly', async () => {
    const x = randTensor([3, 7], 6);
    const [y] = await runOp('reshape', { shape: [7, 1, 3] }, [x]);
    expect(y.shape).toEqual([7, 1, 3]);
    expect([...y.data]).toEqual([...x.data]);
  });
});

describe('transpose', () => {
  const cases: [number[], number[]][] = [
    [
      [2, 3, 5, 7],
      [0, 2, 3, 1],
    ], // NCHW -> NHWC, C = 3 (scalar tile rows)
    [
      [2, 5, 7, 3],
      [0, 3, 1, 2],
    ], // NHWC -> NCHW
    [
      [1, 8, 4, 12],
      [0, 2, 3, 1],
    ], // vec4 both ways
    [
      [2, 4, 3, 8],
      [0, 3, 1, 2],
    ],
    [
      [5, 7],
      [1, 0],
    ],
    [
      [2, 3, 5],
      [0, 1, 2],
    ], // identity
    [
      [2, 3, 1, 4, 5],
      [4, 0, 3, 1, 2],
    ], // 5-D
    [
      [2, 1, 3, 2, 2, 3],
      [5, 3, 1, 0, 4, 2],
    ], // 6-D
    [
      [3, 4, 5],
      [1, 0, 2],
    ], // blocks of 5 move: not a 2-D transpose
  ];
  for (const variant of ['tile2d', 'generic']) {
    for (const [shape, perm] of cases) {
      it(`${variant} ${JSON.stringify(shape)} perm ${JSON.stringify(perm)}`, async () => {
        const x = randTensor(shape, perm.length * 13 + shape[0]);
        const g = new Graph();
        g.input('x', shape);
        const y = g.op('transpose', ['x'], { perm });
        g.markOutputs(y);
        const { gpu, ref, kernels } = await runBoth(g, { x: x.data }, { transpose: variant });
        expectClose(gpu[y], ref[y], exact, 'transpose');
        expectClose(gpu[y], transposeOp.ref({ perm }, [x])[0], exact, 'transpose');
        if (variant === 'generic') expect(kernels[0]).toMatch(/^strided_copy/);
        if (variant === 'tile2d' && shape.length === 4) expect(kernels[0]).toMatch(/^transpose2d/);
      });
    }
  }
});

describe('concat', () => {
  const cases: [number[][], number][] = [
    [
      [
        [1, 1, 8],
        [2, 5, 8],
      ],
      1,
    ], // ViT class token + patch tokens (vec4, broadcast batch)
    [
      [
        [1, 1, 6],
        [2, 5, 6],
      ],
      -2,
    ], // same, D not a multiple of 4, negative axis
    [
      [
        [2, 3, 5],
        [2, 3, 2],
        [2, 3, 4],
      ],
      -1,
    ], // 3 inputs on the last axis
    [
      [
        [1, 3, 3, 4],
        [1, 3, 3, 8],
        [1, 3, 3, 4],
      ],
      3,
    ], // NHWC channel concat
    [
      [
        [2, 3, 5],
        [1, 3, 5],
      ],
      0,
    ],
    [
      [
        [2, 1, 5],
        [2, 4, 1],
        [2, 4, 5],
      ],
      2,
    ], // broadcast on a middle dim too
  ];
  for (const [shapes, axis] of cases) {
    it(`${shapes.map((s) => JSON.stringify(s)).join(' + ')} axis ${axis}`, async () => {
      const xs = shapes.map((s, i) => randTensor(s, 20 + i));
      const [y] = await runOp('concat', { axis }, xs);
      expectClose(y, concatOp.ref({ axis }, xs)[0], exact, 'concat');
    });
  }
});

describe('slice', () => {
  const cases: [number[], number, number, number][] = [
    [[2, 17, 12], 1, 0, 1], // ViT class token x[:, 0:1]
    [[2, 5, 7], -1, -3, 7], // at the end, negative start
    [[3, 4, 5], 0, 1, 3],
    [[2, 6, 8], 2, 4, 8], // vec4 with an offset
    [[2, 6, 8], 1, -1, 100], // last row, end clamps
  ];
  for (const [shape, axis, start, end] of cases) {
    it(`${JSON.stringify(shape)} axis ${axis} ${start}:${end}`, async () => {
      const x = randTensor(shape, 30 + axis);
      const [y] = await runOp('slice', { axis, start, end }, [x]);
      expectClose(y, sliceOp.ref({ axis, start, end }, [x])[0], exact, 'slice');
    });
  }
});

describe('pad', () => {
  const cases: [number[], [number, number, number, number], number | undefined][] = [
    [[1, 5, 5, 3], [1, 1, 1, 1], undefined],
    [[2, 4, 3, 8], [0, 2, 1, 0], 0.5],
    [[1, 1, 1, 5], [2, 0, 0, 1], undefined],
  ];
  for (const [shape, pad, value] of cases) {
    it(`${JSON.stringify(shape)} pad ${JSON.stringify(pad)} value ${value ?? 0}`, async () => {
      const x = randTensor(shape, 40 + shape[3]);
      const attrs = value === undefined ? { pad } : { pad, value };
      const [y] = await runOp('pad', attrs, [x]);
      expectClose(y, padOp.ref(attrs, [x])[0], exact, 'pad');
    });
  }

  it('BiT stem: pad 1 with zeros, then maxpool 3/2 without padding', async () => {
    const g = new Graph();
    g.input('x', [2, 9, 9, 4]);
    const p = g.op('pad', ['x'], { pad: [1, 1, 1, 1] });
    const y = g.op('maxpool', [p], { kernel: [3, 3], stride: [2, 2] });
    g.markOutputs(y);
    expect(g.shape(y)).toEqual([2, 5, 5, 4]);
    const x = randTensor([2, 9, 9, 4], 50);
    const { gpu, ref } = await runBoth(g, { x: x.data });
    expectClose(gpu[y], ref[y], exact, 'stem');
  });
});
