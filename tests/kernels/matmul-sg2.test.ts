// matmul 'sg2': both operands shared over a 2-D subgroup layout (kernels/matmul.ts,
// MatmulConfig.sgRows). On SwiftShader (subgroups of 4: 2 × 2 lanes) every variant is checked
// against the reference on shapes that cut the subgroup's block and the workgroup anywhere:
// M and N not multiples of the block, batched a and b, bias and activations, split K. The
// lowering for wider fixed sizes (8: 2 × 4, 16: 4 × 4) is checked as text, and every refusal
// names its reason.

import { beforeAll, describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import type { HostTensor, LowerContext } from '../../kernels/kernel.js';
import { type MatmulAttrs, type MatmulConfig, matmulOp, matmulRef, matmulVariant } from '../../kernels/matmul.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

async function run(
  attrs: MatmulAttrs,
  inputs: HostTensor[],
  prefer: string,
  constB = false,
): Promise<{ y: HostTensor; kernels: string[] }> {
  const dev = await testDevice();
  const g = new Graph();
  const names = inputs.map((t, i) =>
    constB && i > 0 ? g.constant(`c${i}`, t.shape, t.data) : g.input(`x${i}`, t.shape),
  );
  const y = g.op('matmul', names, attrs as Record<string, unknown>, 'op');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer: { matmul: prefer } });
  try {
    const feed: Record<string, Float32Array> = {};
    inputs.forEach((t, i) => {
      if (!(constB && i > 0)) feed[`x${i}`] = t.data;
    });
    const { outputs } = await plan.run(feed);
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

interface Case {
  a: number[];
  b: number[];
  bias?: boolean;
  act?: 'none' | 'relu' | 'gelu';
  constB?: boolean;
}

const CASES: Case[] = [
  { a: [17, 12], b: [12, 20], bias: true, act: 'relu' }, // M, N past the 16 × 16 block
  { a: [2, 33, 64], b: [64, 36], bias: true, act: 'gelu', constB: true }, // a's batch folds into M = 66
  { a: [5, 8], b: [8, 4] }, // fewer rows and columns than one lane's tile
  { a: [2, 9, 16], b: [2, 16, 12] }, // batched b
  { a: [3, 1100], b: [1100, 12], bias: true }, // long K (split by the heuristic)
];

const name = (c: Case) => `[${c.a}]·[${c.b}]${c.bias ? '+b' : ''}${c.act ? ` ${c.act}` : ''}`;

describe("matmul 'sg2' (2-D subgroup layout)", () => {
  for (const v of ['sg2', 'tile=8x8,wg=1x8,sg2', 'tile=4x16,wg=1x16,sg2', 'tile=2x4,wg=1x4,splitk=3,sg2']) {
    it(`${v}: ${CASES.length} shapes against the reference`, async () => {
      const dev = await testDevice();
      if (dev.info.subgroupSize !== 4) return; // the layout needs one fixed size; SwiftShader's is 4
      let seed = 700;
      for (const c of CASES) {
        const ins = [randTensor(c.a, (seed += 3)), randTensor(c.b, seed + 1)];
        if (c.bias) ins.push(randTensor([c.b[c.b.length - 1]], seed + 2));
        const { y, kernels } = await run({ act: c.act }, ins, v, c.constB);
        expectClose(
          y,
          matmulRef({ act: c.act }, ins[0], ins[1], ins[2]),
          { atol: 1e-4, rtol: 1e-5 },
          `${v} ${name(c)}`,
        );
        expect(kernels[0]).toContain('"sgRows":2');
      }
    });
  }

  let limits: LowerContext['limits'];
  beforeAll(async () => {
    limits = (await testDevice()).info.limits;
  });
  const lower = (S: number, prefer: string, a = [40, 64], b = [64, 48], transB = false, min = S, max = S) => {
    const ctx: LowerContext = {
      limits,
      subgroupSize: min === max ? min : 0,
      subgroupMinSize: min,
      subgroupMaxSize: max,
      prefer: { matmul: prefer },
    };
    const d = matmulOp.lower({ transB }, [a, b], [], ctx).dispatches[0];
    return { config: d.config as MatmulConfig, wgsl: d.wgsl() };
  };

  it('lays out 4, 8 and 16 lanes as 2×2, 2×4 and 4×4; the workgroup stacks subgroups along M', () => {
    expect(lower(4, 'tile=8x8,wg=1x16,sg2').config).toMatchObject({ sg: 4, sgRows: 2, wgX: 2, wgY: 8, TM: 8 });
    expect(lower(8, 'tile=8x8,wg=1x16,sg2').config).toMatchObject({ sg: 8, sgRows: 2, wgX: 4, wgY: 4 });
    const s16 = lower(16, 'tile=8x8,sg2');
    expect(s16.config).toMatchObject({ sg: 16, sgRows: 4, wgX: 4, wgY: 16 });
    // Lane (lr, lc) of a 4 × 4 subgroup; a's rows picked among 4 broadcasts by lr, b's by lc.
    expect(s16.wgsl).toContain('let lr = sl / 4u;');
    expect(s16.wgsl).toContain('lr == 3u');
    expect(s16.wgsl).toContain('lc == 3u');
    // Each lane loads TM/Sc = 2 vec4s of a and TN/Sr = 2 of b per K step of 4.
    expect(s16.wgsl).toContain('let al1 =');
    expect(s16.wgsl).not.toContain('let al2 =');
    expect(s16.wgsl).toContain('let bl1 =');
    expect(s16.wgsl).not.toContain('let bl2 =');
    // Not chosen unless asked for.
    expect(lower(4, '').config.sgRows).toBe(0);
  });

  it('is in the tune space with a 32 × 32 subgroup block, where it can run', () => {
    const space = (S: number, a: number[], b: number[], transB = false) =>
      matmulOp.tuneSpace!({ transB }, [a, b], { limits, subgroupSize: S, constInputs: [false, true] })!.candidates;
    expect(space(4, [197, 768], [768, 3072])).toContain('tile=16x16,wg=1x8,sg2');
    expect(space(0, [197, 768], [768, 3072])).not.toContain('tile=16x16,wg=1x8,sg2'); // no subgroups
    expect(space(4, [32, 768], [768, 3072])).not.toContain('tile=16x16,wg=1x8,sg2'); // too few rows
    expect(space(4, [197, 768], [768, 1000])).not.toContain('tile=16x16,wg=1x8,sg2'); // N % 32
    expect(space(4, [197, 64], [3072, 64], true)).not.toContain('tile=16x16,wg=1x8,sg2'); // transB
  });

  it('is refused with a reason where it cannot run', () => {
    expect(() => lower(4, 'sg2', [40, 64], [48, 64], true)).toThrow(/'sg2' needs .*b as \[K, N\]/);
    expect(() => lower(4, 'sg2', [40, 62], [62, 48])).toThrow(/K and N multiples of 4/);
    expect(() => lower(4, 'tile=8x8,sg2', [40, 64], [64, 48], false, 4, 8)).toThrow(
      /one fixed subgroup size of 4, 8 or 16 \(this device: 4\.\.8\)/,
    );
    expect(() => lower(0, 'sg2')).toThrow(/this device: 0\.\.0/);
    expect(() => lower(4, 'tile=3x8,sg2')).toThrow(/the tile's rows \(3\) a multiple of 2/);
    expect(() => lower(4, 'tile=8x8,wg=1x6,sg2')).toThrow(/lanes \(6\) in whole subgroups of 4/);
    expect(() => lower(4, 'tile=8x8,wg=2x8,sg2')).toThrow(/wg=1x<lanes>/);
    expect(() => lower(4, 'tile=8x8,sg,sg2')).toThrow(/without sg, pk or f16/);
    expect(matmulVariant.format(matmulVariant.parse('tile=8x8,wg=1x16,sg2'))).toBe('tile=8x8,wg=1x16,sg2');
  });
});
