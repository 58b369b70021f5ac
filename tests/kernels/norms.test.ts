import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { batchNormOp, foldBatchNormParams } from '../../kernels/batchnorm.js';
import { groupNormOp, groupNormVariant, weightStandardizeOp } from '../../kernels/groupnorm.js';
import type { HostTensor, Shape } from '../../kernels/kernel.js';
import { layerNormOp } from '../../kernels/layernorm.js';
import { softmaxOp } from '../../kernels/softmax.js';
import { expectClose, rand, randTensor, testDevice } from '../helpers.js';

/** runOp with variant preferences; also returns the pipeline keys so tests can see the variant ran. */
async function run(
  op: string,
  attrs: Record<string, unknown>,
  inputs: HostTensor[],
  constants: number[],
  prefer?: Record<string, string>,
) {
  const dev = await testDevice();
  const g = new Graph();
  const names = inputs.map((t, i) =>
    constants.includes(i) ? g.constant(`c${i}`, t.shape, t.data) : g.input(`x${i}`, t.shape),
  );
  const out = g.op(op, names, attrs, 'op');
  g.markOutputs(out);
  const plan = await compile(dev, g, { prefer });
  try {
    const feed: Record<string, Float32Array> = {};
    inputs.forEach((t, i) => {
      if (!constants.includes(i)) feed[`x${i}`] = t.data;
    });
    const { outputs } = await plan.run(feed);
    return { y: outputs[out], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

const T = (shape: Shape, data: number[]): HostTensor => ({ shape: [...shape], data: Float32Array.from(data) });
const shapeError = (f: () => unknown, re: RegExp) => expect(f).toThrow(re);

/** Rows around 1000 with noise: E[x²] - E[x]² in f32 loses every digit of the variance here. */
function offsetTensor(shape: Shape, seed: number): HostTensor {
  const t = randTensor(shape, seed, -1, 1);
  for (let i = 0; i < t.data.length; i++) t.data[i] += 1000;
  return t;
}

describe('batchnorm', () => {
  it('ref on a hand-computed case', () => {
    // var + eps = 4 and 9: scale 2/2 = 1 and 1/3.
    const [y] = batchNormOp.ref({ eps: 1 }, [
      T([2, 2], [1, 2, 3, 4]),
      T([2], [2, 1]),
      T([2], [0, 1]),
      T([2], [1, 2]),
      T([2], [3, 8]),
    ]);
    expectClose(y, T([2, 2], [0, 1, 2, 1 + 2 / 3]), { atol: 1e-7, rtol: 1e-6 });
  });

  // Scale computed in f32 on the GPU: a few ulp.
  const tol = { atol: 1e-6, rtol: 1e-5 };
  const cases: [number[], string][] = [
    [[7], 'none'],
    [[2, 3, 5, 3], 'relu'],
    [[1, 1, 1, 4], 'relu6'],
    [[2, 5, 5, 66], 'none'],
    [[3, 8], 'relu'],
    [[2, 3, 3, 5], 'silu'],
  ];
  for (const [shape, act] of cases) {
    it(`${JSON.stringify(shape)} act=${act}`, async () => {
      const C = shape[shape.length - 1];
      const ins = [
        randTensor(shape, 1, -3, 3),
        randTensor([C], 2, 0.5, 2),
        randTensor([C], 3),
        randTensor([C], 4),
        randTensor([C], 5, 0.1, 2),
      ];
      const attrs = { eps: 1e-3, act };
      const { y } = await run('batchnorm', attrs, ins, [1, 2, 3, 4]);
      expectClose(y, batchNormOp.ref(attrs as never, ins)[0], tol, 'batchnorm');
    });
  }

  it('foldBatchNormParams gives x*scale + shift = batchnorm', () => {
    const C = 5;
    const [x, gamma, beta, mean, v] = [
      randTensor([3, C], 6, -2, 2),
      randTensor([C], 7),
      randTensor([C], 8),
      randTensor([C], 9),
      randTensor([C], 10, 0.1, 1),
    ];
    const { scale, shift } = foldBatchNormParams(gamma.data, beta.data, mean.data, v.data, 1e-5);
    const folded = T(
      [3, C],
      Array.from(x.data, (xi, i) => xi * scale[i % C] + shift[i % C]),
    );
    expectClose(folded, batchNormOp.ref({}, [x, gamma, beta, mean, v])[0], { atol: 1e-5, rtol: 1e-5 }, 'folded');
    expect(() => foldBatchNormParams(gamma.data, beta.data.subarray(1), mean.data, v.data, 1e-5)).toThrow(/\[4\]/);
  });

  it('rejects parameters of the wrong length', () => {
    const g = new Graph();
    const x = g.input('x', [1, 4, 4, 6]);
    const p = g.input('p', [6]);
    const bad = g.input('bad', [5]);
    shapeError(() => g.op('batchnorm', [x, p, p, bad, p]), /mean must be \[6\].*\[1,4,4,6\].*got \[5\]/);
  });
});

describe('group_norm', () => {
  it('ref on hand-computed cases', () => {
    // One pixel row of 2 pixels x 2 channels: [[1, 2], [3, 4]].
    const x = T([1, 1, 2, 2], [1, 2, 3, 4]);
    const ones = T([2], [1, 1]),
      zeros = T([2], [0, 0]);
    // groups=2: channel 0 is {1, 3}, channel 1 is {2, 4}: each normalises to ±1.
    expectClose(groupNormOp.ref({ groups: 2, eps: 0 }, [x, ones, zeros])[0], T([1, 1, 2, 2], [-1, -1, 1, 1]), {
      atol: 1e-7,
      rtol: 0,
    });
    // groups=1: mean 2.5, var 1.25; then gamma (2, 1), beta (0, 10).
    const s = 1 / Math.sqrt(1.25);
    const want = [-1.5 * s * 2, -0.5 * s + 10, 0.5 * s * 2, 1.5 * s + 10];
    expectClose(
      groupNormOp.ref({ groups: 1, eps: 0 }, [x, T([2], [2, 1]), T([2], [0, 10])])[0],
      T([1, 1, 2, 2], want),
      { atol: 1e-6, rtol: 1e-6 },
    );
  });

  // [N,H,W,C], groups, act
  const cases: [number[], number, string][] = [
    [[2, 5, 3, 6], 3, 'relu'], // Cg = 2, odd spatial, batch 2
    [[2, 3, 3, 5], 5, 'none'], // Cg = 1, C odd
    [[2, 3, 3, 5], 1, 'relu'], // one group of all 5 channels
    [[1, 1, 1, 64], 32, 'none'], // 1x1 spatial
    [[2, 1, 1, 12], 3, 'relu'], // 1x1 spatial, Cg = 4 (vec4)
    [[1, 3, 5, 66], 33, 'none'], // C % 4 != 0
    [[1, 4, 3, 7], 7, 'none'], // C = 7
    [[2, 7, 7, 32], 4, 'relu'], // Cg = 8 (vec4), odd spatial
    [[1, 28, 28, 64], 32, 'relu'], // big groups (1568 elements), C % 4 == 0 but Cg = 2
  ];
  // Variants: default heuristic, both modes with a tree and with no barriers at all.
  const variants: (string | undefined)[] = [undefined, 'fused,wg=64', 'fused,wg=1', 'split,wg=32', 'split,wg=1'];
  const tol = { atol: 2e-5, rtol: 2e-5 };
  for (const [shape, groups, act] of cases) {
    for (const v of variants) {
      it(`${JSON.stringify(shape)} groups=${groups} act=${act} ${v ?? 'default'}`, async () => {
        const C = shape[3];
        const ins = [randTensor(shape, 11, -2, 3), randTensor([C], 12, 0.5, 1.5), randTensor([C], 13)];
        const attrs = { groups, act };
        const { y, kernels } = await run('group_norm', attrs, ins, [1, 2], v ? { group_norm: v } : undefined);
        if (v) {
          const { mode, wg } = groupNormVariant.parse(v);
          expect(kernels.length).toBe(mode === 'fused' ? 1 : 2);
          expect(kernels[0]).toContain(`"wg":${wg}`);
        }
        expectClose(y, groupNormOp.ref(attrs as never, ins)[0], tol, 'group_norm');
      });
    }
  }

  it('is accurate with a large common offset (1000 + noise)', async () => {
    const shape = [2, 6, 5, 16];
    const ins = [offsetTensor(shape, 14), randTensor([16], 15, 0.5, 1.5), randTensor([16], 16)];
    for (const v of ['fused,wg=16', 'split,wg=1']) {
      const { y } = await run('group_norm', { groups: 4 }, ins, [1, 2], { group_norm: v });
      expectClose(y, groupNormOp.ref({ groups: 4 }, ins)[0], { atol: 1e-5, rtol: 1e-5 }, `group_norm ${v}`);
    }
  });

  it('rejects C not divisible by groups and gamma of the wrong length', () => {
    const g = new Graph();
    const x = g.input('x', [1, 4, 4, 6]);
    const p = g.input('p', [6]);
    shapeError(() => g.op('group_norm', [x, p, p], { groups: 4 }), /C=6.*\[1,4,4,6\].*groups=4/);
    shapeError(() => g.op('group_norm', [x, g.input('q', [3]), p], { groups: 3 }), /gamma must be \[6\].*got \[3\]/);
    shapeError(() => g.op('group_norm', [g.input('r', [4, 6]), p, p], { groups: 3 }), /rank 4.*\[4,6\]/);
  });
});

describe('weight_standardize', () => {
  it('ref on a hand-computed case', () => {
    // One output channel with weights 1, 2, 3: mean 2, biased var 2/3.
    const [y] = weightStandardizeOp.ref({ eps: 0 }, [T([1, 1, 3, 1], [1, 2, 3])]);
    const s = Math.sqrt(1.5);
    expectClose(y, T([1, 1, 3, 1], [-s, 0, s]), { atol: 1e-7, rtol: 1e-6 });
  });

  const tol = { atol: 1e-5, rtol: 1e-5 };
  for (const shape of [
    [3, 3, 5, 7],
    [1, 1, 16, 8],
    [3, 3, 4, 64],
    [7, 7, 3, 12],
    [1, 1, 1, 5],
    [1, 1, 3, 66],
  ]) {
    it(`${JSON.stringify(shape)} at compile time (constant input)`, async () => {
      const w = randTensor(shape, 21, -0.2, 0.3);
      const { y, kernels } = await run('weight_standardize', {}, [w], [0]);
      expect(kernels).toEqual([]); // it ran once, at compile time
      expectClose(y, weightStandardizeOp.ref({}, [w])[0], tol, 'weight_standardize');
    });
  }

  it('as a graph input, with a large common offset', async () => {
    const w = offsetTensor([3, 3, 8, 6], 22);
    const { y } = await run('weight_standardize', { eps: 1e-8 }, [w], []);
    expectClose(y, weightStandardizeOp.ref({ eps: 1e-8 }, [w])[0], { atol: 1e-5, rtol: 1e-5 }, 'weight_standardize');
  });

  it('rejects a weight that is not rank 4', () => {
    const g = new Graph();
    shapeError(() => g.op('weight_standardize', [g.input('w', [9, 8])]), /rank 4.*\[9,8\]/);
  });
});

describe('layernorm', () => {
  it('ref on a hand-computed case', () => {
    // Row (1, 2, 3): mean 2, var 2/3; gamma (1, 2, 1), beta (0, 0, 5).
    const s = Math.sqrt(1.5);
    const [y] = layerNormOp.ref({ eps: 0 }, [T([1, 3], [1, 2, 3]), T([3], [1, 2, 1]), T([3], [0, 0, 5])]);
    expectClose(y, T([1, 3], [-s, 0, s + 5]), { atol: 1e-7, rtol: 1e-6 });
  });

  const cases: [number[], string][] = [
    [[5, 7], 'none'],
    [[3, 1], 'none'],
    [[2, 13, 64], 'gelu'],
    [[3, 3072], 'none'],
    [[130, 12], 'relu'],
    [[2, 3, 5], 'none'],
  ];
  const variants: (string | undefined)[] = [
    undefined,
    'thread,wg=64',
    'thread,wg=16',
    'workgroup,wg=64',
    'workgroup,wg=4',
  ];
  const tol = { atol: 2e-5, rtol: 2e-5 };
  for (const [shape, act] of cases) {
    for (const v of variants) {
      it(`${JSON.stringify(shape)} act=${act} ${v ?? 'default'}`, async () => {
        const D = shape[shape.length - 1];
        const ins = [randTensor(shape, 31, -2, 3), randTensor([D], 32, 0.5, 1.5), randTensor([D], 33)];
        const attrs = { act };
        const { y, kernels } = await run('layernorm', attrs, ins, [1, 2], v ? { layernorm: v } : undefined);
        if (v) expect(kernels[0]).toContain(`"mode":"${v.split(',')[0]}"`);
        expectClose(y, layerNormOp.ref(attrs as never, ins)[0], tol, 'layernorm');
      });
    }
  }

  it('is accurate on rows of 1000 + noise, where E[x²] - E[x]² in f32 fails', async () => {
    const D = 768;
    const x = offsetTensor([4, D], 34);
    const ins = [x, randTensor([D], 35, 0.5, 1.5), randTensor([D], 36)];
    const want = layerNormOp.ref({}, ins)[0];
    const tight = { atol: 1e-5, rtol: 1e-5 };
    for (const v of ['thread,wg=64', 'workgroup,wg=64']) {
      const { y } = await run('layernorm', {}, ins, [1, 2], { layernorm: v });
      expectClose(y, want, tight, `layernorm ${v}`);
    }
    // The test discriminates: the one-pass formula evaluated in f32 is far outside `tight`.
    const f = Math.fround;
    let s = 0,
      sq = 0;
    for (let i = 0; i < D; i++) {
      s = f(s + x.data[i]);
      sq = f(sq + f(x.data[i] * x.data[i]));
    }
    const mean = f(s / D),
      naiveVar = f(f(sq / D) - f(mean * mean));
    let m = 0,
      trueVar = 0;
    for (let i = 0; i < D; i++) m += x.data[i] / D;
    for (let i = 0; i < D; i++) trueVar += (x.data[i] - m) ** 2 / D;
    expect(Math.abs(naiveVar - trueVar) / trueVar).toBeGreaterThan(0.01);
  });

  it('rejects gamma of the wrong length', () => {
    const g = new Graph();
    const x = g.input('x', [2, 5, 8]);
    shapeError(
      () => g.op('layernorm', [x, g.input('g', [7]), g.input('b', [8])]),
      /gamma must be \[8\].*\[2,5,8\].*got \[7\]/,
    );
  });
});

describe('softmax', () => {
  it('ref on a hand-computed case', () => {
    // exp(0) : exp(ln 3) = 1 : 3; a huge row shifts away.
    const [y] = softmaxOp.ref({}, [T([2, 2], [0, Math.log(3), 1000, 1000])]);
    expectClose(y, T([2, 2], [0.25, 0.75, 0.5, 0.5]), { atol: 1e-7, rtol: 1e-6 });
  });

  const cases: number[][] = [
    [5, 7],
    [3, 1],
    [2, 3, 197],
    [2, 3072],
    [130, 12],
    [1, 1, 1, 4],
  ];
  const variants: (string | undefined)[] = [
    undefined,
    'thread,wg=64',
    'thread,wg=8',
    'workgroup,wg=64',
    'workgroup,wg=2',
  ];
  // exp() on the GPU is within a few ulp; outputs are <= 1.
  const tol = { atol: 1e-7, rtol: 2e-5 };
  for (const shape of cases) {
    for (const v of variants) {
      it(`${JSON.stringify(shape)} ${v ?? 'default'}`, async () => {
        const x = randTensor(shape, 41, -6, 6);
        const { y, kernels } = await run('softmax', {}, [x], [], v ? { softmax: v } : undefined);
        if (v) expect(kernels[0]).toContain(`"mode":"${v.split(',')[0]}"`);
        expectClose(y, softmaxOp.ref({}, [x])[0], tol, 'softmax');
      });
    }
  }

  it('is stable on logits of 80..100 (naive exp overflows f32)', async () => {
    const x: HostTensor = { shape: [6, 50], data: rand(300, 42, 80, 100) };
    x.data[7] = 100;
    x.data[60] = -100; // a row with an exact max and a row with a tiny term
    const want = softmaxOp.ref({}, [x])[0];
    expect(Math.fround(Math.exp(100))).toBe(Infinity);
    for (const v of ['thread,wg=64', 'workgroup,wg=32']) {
      const { y } = await run('softmax', {}, [x], [], { softmax: v });
      expect(y.data.every(Number.isFinite)).toBe(true);
      expectClose(y, want, tol, `softmax ${v}`);
    }
  });

  it('rejects a rank-0 input', () => {
    const g = new Graph();
    shapeError(() => g.op('softmax', [g.input('s', [])]), /rank >= 1.*\[\]/);
  });
});
