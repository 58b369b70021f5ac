// batchnorm_train's split statistics (variant norm_grad 'split=<blocks>'): each channel's R rows in
// blocks of L, one workgroup per (channel, block) for the block's mean and squared deviations, then
// one invocation per channel combines them (docs/backward-norm.md). Against the reference on awkward
// shapes: a last block shorter than the rest, more blocks asked than rows, one block, a large
// common offset (the combine must keep the variance's digits), and the tune space.

import { describe, expect, it } from 'vitest';
import { batchNormTrainOp } from '../../kernels/backward/norm.js';
import type { Shape } from '../../kernels/kernel.js';
import { expectClose, randTensor, runOp } from '../helpers.js';

const limits = {
  maxStorageBufferBindingSize: 2 ** 30,
  maxBufferSize: 2 ** 30,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBuffersPerShaderStage: 8,
};

describe('batchnorm_train split statistics', () => {
  const cases: [Shape, string, number, number][] = [
    // shape, variant, blocks, rows per block
    [[3, 17, 19, 5], 'split=7', 7, 139], // R = 969: six blocks of 139, the last of 135
    [[3, 17, 19, 5], 'wg=1,split=4', 4, 243], // no workgroup memory, last block 240
    [[2, 5, 1, 3], 'wg=64,split=4', 4, 3], // R = 10: blocks of 3, 3, 3, 1; more lanes than rows
    [[1, 1, 3, 6], 'split=8', 3, 1], // more blocks asked than the 3 rows: one row each
    [[4, 7], 'split=1', 1, 4], // one block: the combine passes it through
  ];
  for (const [shape, variant, blocks, rows] of cases) {
    it(`${JSON.stringify(shape)} ${variant}: ${blocks} blocks of ${rows} rows = ref`, async () => {
      const C = shape[shape.length - 1];
      const prefer = { norm_grad: variant };
      const low = batchNormTrainOp.lower({ eps: 1e-5 }, [shape, [C], [C]], [], { limits, prefer });
      expect(low.dispatches.map((d) => (d.config as { stage: string }).stage)).toEqual(['partial', 'combine', 'apply']);
      expect(low.dispatches[0].config).toMatchObject({ blocks, rows });
      expect(low.temps).toEqual([2 * C * blocks]);
      const ins = [randTensor(shape, 31, -3, 5), randTensor([C], 32, 0.5, 2), randTensor([C], 33)];
      // A large common offset: block means near 1000, their spread and the variance small beside it.
      for (let i = 0; i < ins[0].data.length; i++) ins[0].data[i] += 1000;
      const want = batchNormTrainOp.ref({ eps: 1e-5, act: 'relu' }, ins);
      const got = await runOp('batchnorm_train', { eps: 1e-5, act: 'relu' }, ins, [1, 2], prefer);
      expectClose(got[0], want[0], { atol: 1e-4, rtol: 1e-4 }, 'y');
      expectClose(got[1], want[1], { atol: 1e-4, rtol: 1e-6 }, 'mean');
      expectClose(got[2], want[2], { atol: 1e-5, rtol: 1e-4 }, 'var');
    });
  }

  it('the tune space offers split statistics for long channels only', () => {
    const ctx = { limits };
    expect(batchNormTrainOp.tuneSpace!({}, [[2, 8, 8, 16], [16], [16]], ctx)!.candidates).toEqual([
      'wg=1',
      'wg=64',
      'wg=256',
    ]);
    expect(batchNormTrainOp.tuneSpace!({}, [[8, 32, 32, 16], [16], [16]], ctx)!.candidates).toEqual([
      'wg=1',
      'wg=64',
      'wg=256',
      'wg=64,split=16',
      'wg=256,split=64',
    ]);
    // Without the variant, one dispatch of statistics as before.
    const low = batchNormTrainOp.lower({}, [[2, 3, 3, 4], [4], [4]], [], { limits });
    expect(low.dispatches.map((d) => (d.config as { stage: string }).stage)).toEqual(['stats', 'apply']);
    expect(low.temps).toBeUndefined();
  });
});
