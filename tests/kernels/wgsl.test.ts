import { describe, expect, it } from 'vitest';
import { getOp } from '../../kernels/index.js';
import type { LowerContext, Shape } from '../../kernels/kernel.js';
import {
  XYZW,
  actTWgsl,
  ceilPow2,
  flatIndex,
  flatMain,
  floorPow2,
  foldWgsl,
  range,
  rowLoop,
  rowMain,
  u,
  vecType,
  wgsl,
  workgroupIndex,
  workgroupReduceWgsl,
} from '../../kernels/wgsl.js';
import { expectClose, randTensor, runOp } from '../helpers.js';

describe('string helpers', () => {
  it('range, XYZW, u, vecType', () => {
    expect(range(0)).toEqual([]);
    expect(range(3)).toEqual([0, 1, 2]);
    expect(XYZW.join('')).toBe('xyzw');
    expect(u(7)).toBe('7u');
    expect(vecType(true)).toBe('vec4<f32>');
    expect(vecType(false)).toBe('f32');
  });

  it('powers of two', () => {
    expect([0, 1, 2, 3, 4, 5, 63, 64, 65].map(ceilPow2)).toEqual([1, 1, 2, 4, 4, 8, 64, 64, 128]);
    expect([0, 1, 2, 3, 4, 5, 63, 64, 65].map(floorPow2)).toEqual([1, 1, 2, 2, 4, 4, 32, 64, 64]);
  });

  it('launch indices', () => {
    expect(workgroupIndex(5)).toBe('wid.x + wid.y * 5u');
    expect(flatIndex(64, 5)).toBe('(wid.x + wid.y * 5u) * 64u + lid');
    expect(flatMain(32, 2)).toBe(
      '@compute @workgroup_size(32)\n' +
        'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {\n' +
        '  let t = (wid.x + wid.y * 2u) * 32u + lid;',
    );
  });

  it('actT and the folds match the loaded type', () => {
    expect(actTWgsl(true)).toContain('fn actT(v: vec4<f32>) -> vec4<f32>');
    expect(actTWgsl(false)).toBe('fn actT(v: f32) -> f32 { return act(v); }');
    expect(foldWgsl(true)).toContain('fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }');
    expect(foldWgsl(false)).toContain('fn hmax(v: f32) -> f32 { return v; }');
  });

  it('workgroup reductions: identity for one lane, a tree over a power of two, refused otherwise', () => {
    const one = workgroupReduceWgsl(1);
    expect(one).not.toMatch(/var<workgroup>|workgroupBarrier/);
    expect(one).toContain('fn wg_sum(v: f32, lid: u32) -> f32 { return v; }');
    const eight = workgroupReduceWgsl(8);
    expect(eight).toContain('var<workgroup> red: array<f32, 8>;');
    expect(eight).toContain('for (var s = 4u; s > 0u; s >>= 1u)');
    expect(eight).toContain('red[lid] = max(red[lid], red[lid + s]);');
    for (const bad of [0, 6, 1.5]) expect(() => workgroupReduceWgsl(bad)).toThrow(/not a power of two/);
  });

  it('row mapping: one invocation per row, or one workgroup striding over it', () => {
    const thread = { mode: 'thread', wg: 64, rows: 10, loads: 5, gridX: 1 } as const;
    expect(rowMain(thread)).toContain('let row = (wid.x + wid.y * 1u) * 64u + lid;');
    expect(rowMain(thread)).toContain('let lane = 0u;');
    expect(rowLoop(thread)).toBe('for (var k = lane; k < 5u; k += 1u)');
    const wg = { ...thread, mode: 'workgroup' } as const;
    expect(rowMain(wg)).toContain('let row = wid.x + wid.y * 1u;');
    expect(rowLoop(wg)).toBe('for (var k = lane; k < 5u; k += 64u)');
  });
});

describe('wgsl tag (wgsl-preprocessor), as the kernels use it', () => {
  const block = (bias: boolean, vec4: number) => wgsl`a
#if ${bias}
b
#endif
#if ${vec4}
c4
#else
c1
#endif
d ${vec4}`;

  it('keeps or drops whole lines; 0 is false; plain interpolation still works', () => {
    const lines = (s: string) => s.split('\n').filter((l) => l.trim());
    expect(lines(block(true, 4))).toEqual(['a', 'b', 'c4', 'd 4']);
    expect(lines(block(false, 0))).toEqual(['a', 'c1', 'd 0']);
  });

  it('nests, and refuses unbalanced blocks', () => {
    const nested = (x: boolean, y: boolean) =>
      wgsl`#if ${x}
x
#if ${y}
y
#endif
#endif`.trim();
    expect(nested(true, true).split(/\s+/)).toEqual(['x', 'y']);
    expect(nested(true, false)).toBe('x');
    expect(nested(false, true)).toBe('');
    expect(
      () => wgsl`#if ${true}
x`,
    ).toThrow(/Mismatched/);
  });

  it('leaves no directive in any family’s shader', () => {
    const limits = {
      maxComputeWorkgroupsPerDimension: 65535,
      maxComputeInvocationsPerWorkgroup: 256,
      maxComputeWorkgroupStorageSize: 16384,
    };
    const ctx = (prefer?: Record<string, string>, subgroupSize = 0): LowerContext => ({
      limits: limits as LowerContext['limits'],
      prefer,
      subgroupSize,
      constInputs: [false, true, true],
    });
    const cases: [string, object, Shape[], LowerContext][] = [
      ['conv2d', { pad: [1, 1, 1, 1], act: 'relu' }, [[1, 8, 8, 8], [3, 3, 8, 16], [16], [1, 8, 8, 16]], ctx()],
      [
        'conv2d',
        {},
        [
          [1, 28, 28, 16],
          [1, 1, 16, 32],
        ],
        ctx(undefined, 4),
      ],
      [
        'conv2d',
        { groups: 8, pad: [1, 1, 1, 1] },
        [
          [1, 9, 9, 8],
          [3, 3, 1, 8],
        ],
        ctx(),
      ],
      ['conv2d', { groups: 3 }, [[1, 9, 9, 3], [3, 3, 1, 6], [6]], ctx()],
      ['matmul', { act: 'gelu' }, [[2, 17, 32], [32, 12], [12]], ctx({ matmul: 'wgmem,tile=4x4' })],
      ['matmul', {}, [[4, 2048], [2048, 10], [10]], ctx()],
      ['matmul', {}, [[64, 64], [64, 32], [32]], ctx(undefined, 4)],
      ['layernorm', {}, [[3, 1030], [1030], [1030]], ctx({ layernorm: 'workgroup,wg=32' })],
      ['softmax', {}, [[2, 7]], ctx()],
      ['group_norm', { groups: 2 }, [[1, 4, 4, 8], [8], [8]], ctx({ group_norm: 'split,wg=4' })],
      ['batchnorm', {}, [[2, 5], [5], [5], [5], [5]], ctx()],
      [
        'add',
        { act: 'relu' },
        [
          [2, 4],
          [2, 4],
        ],
        ctx(),
      ],
      ['activation', { act: 'silu' }, [[3, 5]], ctx()],
      ['avgpool', { kernel: [3, 3], pad: [1, 1, 1, 1] }, [[1, 7, 7, 8]], ctx()],
      ['maxpool', { kernel: [2, 2] }, [[1, 6, 6, 3]], ctx()],
      ['pad', { pad: [1, 2, 1, 0] }, [[1, 3, 3, 5]], ctx()],
      ['attention', { heads: 2 }, [[2, 5, 48]], ctx({ attention: 'naive' })],
    ];
    for (const [op, attrs, ins, c] of cases) {
      const def = getOp(op);
      for (const d of def.lower(attrs, ins, def.infer(attrs, ins), c).dispatches) {
        const src = d.wgsl();
        expect(src, d.key).not.toContain('#');
        expect(src, d.key).toContain('fn main(');
      }
    }
  });
});

// The reductions on rows whose length is no multiple of the lanes (or of 4): lanes past the end
// of a row add nothing, and every lane gets the combined value.
describe('workgroup reductions on the GPU', () => {
  const tol = { atol: 2e-6, rtol: 2e-5 };

  const rows = [
    [37, 'workgroup,wg=16'],
    [36, 'workgroup,wg=16'],
    [1030, 'workgroup,wg=64'],
    [5, 'workgroup,wg=8'],
    [37, 'thread'],
  ] as const;
  for (const [L, pref] of rows) {
    it(`softmax and layernorm, rows of ${L}, ${pref}`, async () => {
      const x = randTensor([3, L], L, -4, 4);
      const [s] = await runOp('softmax', {}, [x], [], { softmax: pref });
      expectClose(s, getOp('softmax').ref({}, [x])[0], tol, 'softmax');
      const ins = [x, randTensor([L], 2, 0.5, 2), randTensor([L], 3)];
      const attrs = { eps: 1e-5 };
      const [y] = await runOp('layernorm', attrs, ins, [1, 2], { layernorm: pref });
      expectClose(y, getOp('layernorm').ref(attrs, ins)[0], tol, 'layernorm');
    });
  }

  it('group_norm over groups of 3·9 elements with 4 lanes', async () => {
    const ins = [randTensor([2, 3, 3, 6], 5, -2, 2), randTensor([6], 6, 0.5, 2), randTensor([6], 7)];
    const attrs = { groups: 2, eps: 1e-5 };
    const [y] = await runOp('group_norm', attrs, ins, [1, 2], { group_norm: 'fused,wg=4' });
    expectClose(y, getOp('group_norm').ref(attrs, ins)[0], tol, 'group_norm');
  });
});
