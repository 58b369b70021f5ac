// The shape-generic matmul with a constant weight (kernels/matmul-generic.ts, matmul 'generic'):
// against the reference on awkward shapes, one pipeline for Linear layers of different shapes.
import { describe, expect, it } from 'vitest';
import { kernelContext } from '../../engine/device.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import { matmulOp } from '../../kernels/matmul.js';
import { transposeNK } from '../../kernels/matmul-generic.js';
import { expectClose, randTensor, runOp, testDevice } from '../helpers.js';

const tol = { atol: 1e-5, rtol: 1e-5 };

const cases = [
  {
    name: 'batched rows [2,5,12]·[12,20] + bias, relu',
    a: [2, 5, 12],
    b: [12, 20],
    attrs: { act: 'relu' },
    bias: true,
    prefer: 'generic',
  },
  {
    name: 'transB [7,16]·[24,16]ᵀ, gelu, no bias',
    a: [7, 16],
    b: [24, 16],
    attrs: { transB: true, act: 'gelu' },
    bias: false,
    prefer: 'generic',
  },
  {
    name: 'tile 3x4, N 12, transB + bias',
    a: [1, 9, 8],
    b: [12, 8],
    attrs: { transB: true },
    bias: true,
    prefer: 'tile=3x4,generic',
  },
];

describe('matmul generic (shapes from the weights header)', () => {
  for (const c of cases) {
    it(`${c.name}: matches the reference`, async () => {
      const N = c.attrs.transB ? c.b[0] : c.b[1];
      const ins = [randTensor(c.a, 1), randTensor(c.b, 2), ...(c.bias ? [randTensor([N], 3)] : [])];
      const [y] = await runOp('matmul', { ...c.attrs }, ins, c.bias ? [1, 2] : [1], { matmul: c.prefer });
      expectClose(y, matmulOp.ref(c.attrs as never, ins)[0], tol, c.name);
    });
  }

  it('Linear layers of different shapes, transposed or not, share one pipeline, and give the reference', async () => {
    const g = new Graph();
    g.input('x', [1, 6, 8]);
    const lin = (x: string, k: number, n: number, transB: boolean, seed: number) => {
      const shape = transB ? [n, k] : [k, n];
      const w = g.constant(`w${seed}`, shape, randTensor(shape, seed).data);
      const b = g.constant(`b${seed}`, [n], randTensor([n], seed + 50).data);
      return g.op('matmul', [x, w, b], { transB, act: 'relu' });
    };
    const y = lin(lin(lin('x', 8, 16, false, 1), 16, 24, true, 2), 24, 8, false, 3);
    g.markOutputs(y);
    const plan = await compile(await testDevice(), g, { prefer: { matmul: 'generic' } });
    expect(plan.kernels.length).toBe(3);
    expect(new Set(plan.kernels).size).toBe(1);
    const x = randTensor([1, 6, 8], 9).data;
    const { outputs } = await plan.run({ x });
    expectClose(outputs[y], runReference(g, { x })[y], tol, 'three layers');
    plan.dispose();
  });

  it('is refused outside its domain, and offered only inside it', async () => {
    const a = randTensor([3, 8], 1);
    await expect(runOp('matmul', {}, [a, randTensor([8, 16], 2)], [], { matmul: 'generic' })).rejects.toThrow(
      /constant \[K, N\] or \[N, K\] weight/,
    );
    await expect(
      runOp('matmul', {}, [randTensor([3, 6], 1), randTensor([6, 16], 2)], [1], { matmul: 'generic' }),
    ).rejects.toThrow(/multiples of 4 \(got K 6, N 16\)/);
    await expect(runOp('matmul', {}, [a, randTensor([8, 16], 2)], [1], { matmul: 'reg,generic' })).rejects.toThrow(
      /'generic' takes only tile/,
    );
    const base = kernelContext((await testDevice()).info);
    const space = (b: number[], constW: boolean) =>
      matmulOp.tuneSpace!({}, [[4, 8], b], { ...base, constInputs: [false, constW] })!.candidates;
    expect(space([8, 16], true)).toContain('tile=8x8,generic');
    expect(space([8, 16], false)).not.toContain('tile=8x8,generic');
    expect(space([8, 12], true)).not.toContain('tile=8x8,generic');
    expect(Array.from(transposeNK(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3))).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
