import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { type HostTensor, ShapeError } from '../../kernels/kernel.js';
import {
  type AvgPoolAttrs,
  type PoolAttrs,
  avgpoolOp,
  globalAvgpoolOp,
  maxpoolOp,
  poolOutSize,
} from '../../kernels/pool.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

/** One op through the executor with variant preferences; also returns the plan's kernel keys. */
async function runWith(op: string, attrs: object, x: HostTensor, prefer?: Record<string, string>) {
  const g = new Graph();
  g.input('x', x.shape);
  const y = g.op(op, ['x'], attrs as Record<string, unknown>, 'op');
  g.markOutputs(y);
  const plan = await compile(await testDevice(), g, { prefer });
  try {
    const { outputs } = await plan.run({ x: x.data });
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

const t = (shape: number[], data: number[]): HostTensor => ({ shape, data: Float32Array.from(data) });
const iota = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('pooling references, by hand', () => {
  const x4 = t([1, 4, 4, 1], iota(16)); // rows 1..4, 5..8, 9..12, 13..16

  it('maxpool 2x2/2 and 3x3/2 pad 1 on a 4x4', () => {
    expect([...maxpoolOp.ref({ kernel: [2, 2] }, [x4])[0].data]).toEqual([6, 8, 14, 16]);
    const y = maxpoolOp.ref({ kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, [x4])[0];
    expect(y.shape).toEqual([1, 2, 2, 1]);
    expect([...y.data]).toEqual([6, 8, 14, 16]);
    // Padding never wins, even over negatives.
    const neg = t([1, 2, 2, 1], [-4, -3, -2, -1]);
    expect([...maxpoolOp.ref({ kernel: [3, 3], pad: [1, 1, 1, 1], stride: [1, 1] }, [neg])[0].data]).toEqual([
      -1, -1, -1, -1,
    ]);
  });

  it('avgpool with and without counting padding', () => {
    expect([...avgpoolOp.ref({ kernel: [2, 2] }, [x4])[0].data]).toEqual([3.5, 5.5, 11.5, 13.5]);
    const a: AvgPoolAttrs = { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] };
    expect(avgpoolOp.ref(a, [x4])[0].data[0]).toBeCloseTo((1 + 2 + 5 + 6) / 9, 6);
    expect(avgpoolOp.ref({ ...a, countIncludePad: false }, [x4])[0].data[0]).toBeCloseTo(3.5, 6);
  });

  it('ceil mode: the partial last window, divisor clipped to the padded extent', () => {
    const row = t([1, 1, 5, 1], [1, 2, 3, 4, 5]);
    const a: PoolAttrs = { kernel: [1, 2], ceilMode: true };
    expect([...maxpoolOp.ref(a, [row])[0].data]).toEqual([2, 4, 5]);
    expect([...avgpoolOp.ref(a, [row])[0].data]).toEqual([1.5, 3.5, 5]);
    expect([...maxpoolOp.ref({ kernel: [1, 2] }, [row])[0].data]).toEqual([2, 4]);
    // PyTorch: avg_pool1d([1..6], 3, 2, padding=1, ceil_mode=True) = [1, 3, 5, 3].
    const six = t([1, 1, 6, 1], iota(6));
    const y = avgpoolOp.ref({ kernel: [1, 3], stride: [1, 2], pad: [0, 1, 0, 1], ceilMode: true }, [six])[0];
    expect([...y.data]).toEqual([1, 3, 5, 3]);
  });

  it('output sizes follow PyTorch', () => {
    expect(poolOutSize(112, 3, 2, 1, 1, 1, false)).toBe(56); // ResNet stem maxpool
    expect(poolOutSize(114, 3, 2, 0, 0, 1, false)).toBe(56); // BiT: explicit pad 1, then 3/2
    expect(poolOutSize(5, 2, 2, 0, 0, 1, true)).toBe(3);
    expect(poolOutSize(6, 3, 2, 1, 1, 1, true)).toBe(4);
    expect(poolOutSize(5, 3, 2, 1, 1, 1, true)).toBe(3); // 4th window would start in right padding: dropped
    expect(poolOutSize(9, 3, 1, 2, 2, 2, false)).toBe(9);
  });

  it('global_avgpool means over H·W', () => {
    const x = t([1, 2, 2, 2], [1, 10, 2, 20, 3, 30, 4, 40]);
    const y = globalAvgpoolOp.ref({}, [x])[0];
    expect(y.shape).toEqual([1, 2]);
    expect([...y.data]).toEqual([2.5, 25]);
  });
});

describe('pooling shape errors', () => {
  it('names the input shape when the window does not fit', () => {
    const g = new Graph();
    g.input('x', [1, 2, 2, 3]);
    expect(() => g.op('maxpool', ['x'], { kernel: [5, 5] })).toThrow(ShapeError);
    expect(() => g.op('maxpool', ['x'], { kernel: [5, 5] })).toThrow(/\[1,2,2,3\].*too small/);
    expect(() => g.op('avgpool', ['x'], { kernel: [1, 1], pad: [2, 0, 0, 0] })).toThrow(
      /\[1,2,2,3\].*entirely in padding/,
    );
    const h = new Graph();
    h.input('y', [2, 3, 5]);
    expect(() => h.op('global_avgpool', ['y'])).toThrow(/rank 4.*\[2,3,5\]/);
  });
});

describe('maxpool / avgpool on the GPU', () => {
  const cases: [string, number[], PoolAttrs][] = [
    ['resnet 3x3/2 pad 1, odd H/W, C=5, batch 2', [2, 9, 7, 5], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }],
    ['3x3/2 no pad, C=64 (vec4)', [1, 8, 8, 64], { kernel: [3, 3], stride: [2, 2] }],
    ['2x2 ceil mode, C=3', [1, 7, 5, 3], { kernel: [2, 2], ceilMode: true }],
    ['3x3/2 pad 1 ceil mode, C=8', [2, 6, 5, 8], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], ceilMode: true }],
    ['dilation 2, pad 2, C=7', [1, 9, 8, 7], { kernel: [3, 3], stride: [1, 1], pad: [2, 2, 2, 2], dilation: [2, 2] }],
    ['asymmetric pad and kernel, C=4', [2, 5, 6, 4], { kernel: [2, 3], stride: [2, 1], pad: [0, 1, 1, 0] }],
    ['1x1 spatial input, 3x3/2 pad 1, C=5', [2, 1, 1, 5], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }],
  ];
  for (const op of ['maxpool', 'avgpool'] as const) {
    const def = op === 'maxpool' ? maxpoolOp : avgpoolOp;
    for (const [name, shape, attrs] of cases) {
      const variants: AvgPoolAttrs[] = op === 'maxpool' ? [attrs] : [attrs, { ...attrs, countIncludePad: false }];
      for (const a of variants) {
        it(`${op} ${name}${a.countIncludePad === false ? ', exclude pad' : ''}`, async () => {
          const x = randTensor(
            shape,
            shape.reduce((p, d) => p * 7 + d, 3),
          );
          const { y, kernels } = await runWith(op, a, x);
          expect(kernels.every((k) => k.startsWith('pool2d'))).toBe(true);
          // max is exact; avg sums in f32 on the GPU vs double in the reference.
          expectClose(y, def.ref(a, [x])[0], op === 'maxpool' ? { atol: 0, rtol: 0 } : { atol: 1e-6, rtol: 1e-5 }, op);
        });
      }
    }
  }
});

describe('global_avgpool on the GPU', () => {
  const shapes = [
    [2, 7, 7, 64],
    [2, 5, 3, 3],
    [1, 1, 1, 7],
    [2, 4, 4, 5],
    [1, 33, 35, 8],
    [3, 2, 2, 4],
  ];
  for (const partition of ['serial', 'workgroup']) {
    for (const shape of shapes) {
      it(`${partition} ${JSON.stringify(shape)}`, async () => {
        const x = randTensor(shape, 11 + shape[1]);
        const { y, kernels } = await runWith('global_avgpool', {}, x, { global_avgpool: partition });
        expect(kernels[0]).toContain(`"partition":"${partition}"`);
        expectClose(y, globalAvgpoolOp.ref({}, [x])[0], { atol: 1e-6, rtol: 1e-5 }, 'global_avgpool');
      });
    }
  }
});
