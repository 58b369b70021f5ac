// The one variant syntax (kernels/variant.ts): every family's schema parses, checks and formats
// its typed variant; every variant string the kernels offer (tuneSpace, example lists) is canonical.
// No GPU needed: lowerings are called directly.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ATTENTION_VARIANTS } from '../../kernels/attention.js';
import { conv2dOp, conv2dVariant } from '../../kernels/conv2d.js';
import { DEPTHWISE_TUNE_CANDIDATES, depthwiseVariant } from '../../kernels/depthwise.js';
import { OPS } from '../../kernels/index.js';
import type { Limits, Shape } from '../../kernels/kernel.js';
import { MATMUL_VARIANTS, matmulVariant } from '../../kernels/matmul.js';
import { layernormVariant } from '../../kernels/layernorm.js';
import { VARIANT_FAMILIES, variantFamily } from '../../kernels/variant-families.js';
import { VariantError, defineVariant } from '../../kernels/variant.js';

const limits: Limits = {
  maxStorageBufferBindingSize: 2 ** 30,
  maxBufferSize: 2 ** 30,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupStorageSize: 16384,
  maxStorageBuffersPerShaderStage: 8,
};

/** parse and format are inverse on canonical strings. */
function roundTrips(family: string, s: string): void {
  const schema = variantFamily(family);
  const v = schema.parse(s);
  expect(schema.format(v), `${family} "${s}"`).toBe(s);
  expect(schema.parse(schema.format(v))).toEqual(v);
}

describe('variant syntax', () => {
  it('parses into the typed object and formats back (round trip)', () => {
    expect(conv2dVariant.parse('gemm,tile=4x16,sg')).toEqual({ path: 'gemm', tm: 4, tn: 16, sg: true });
    expect(conv2dVariant.format({ sg: true, tn: 8, tm: 2, path: 'direct' })).toBe('direct,tile=2x8,sg');
    expect(matmulVariant.parse('tile=8x16,wg=1x8,sg,pk')).toEqual({
      tm: 8,
      tn: 16,
      wgx: 1,
      wgy: 8,
      sg: true,
      pk: true,
    });
    expect(depthwiseVariant.parse('loop,block=2x4,wg=32')).toEqual({ variant: 'loop', ph: 2, pw: 4, wg: 32 });
    expect(layernormVariant.parse('workgroup,wg=64')).toEqual({ mode: 'workgroup', wg: 64 });
    expect(conv2dVariant.parse('')).toEqual({});
    expect(conv2dVariant.format({})).toBe('');
    // Any order parses; format writes the canonical one; a flag that is off is left out.
    expect(matmulVariant.format(matmulVariant.parse('pk,sg,wg=1x8,tile=8x16'))).toBe('tile=8x16,wg=1x8,sg,pk');
    expect(conv2dVariant.format({ path: 'gemm', sg: false })).toBe('gemm');
    for (const s of ['gemm', 'direct,tile=1x1', 'tile=3x5', 'sg', 'gemm,tile=8x32,sg']) roundTrips('conv2d', s);
    for (const s of ['reg', 'wgmem,tile=4x4,wg=16x16,tk=8,splitk=2', 'tile=4x8,splitk=3,sg', 'pk'])
      roundTrips('matmul', s);
    for (const s of ['naive', 'fused,ktile=16,rows=2,wg=32,head=loop', 'head=unrolled']) roundTrips('attention', s);
    for (const s of ['split,wg=256', 'fused']) roundTrips('group_norm', s);
    for (const s of ['serial', 'workgroup']) roundTrips('global_avgpool', s);
    for (const s of ['generic', 'tile2d']) roundTrips('transpose', s);
  });

  it('rejects malformed and unknown fields, naming the family, the token and the valid fields', () => {
    const bad: [string, RegExp][] = [
      [
        'gemm:4x16:sg',
        /^conv2d variant "gemm:4x16:sg": unknown token "gemm:4x16:sg"; valid fields: direct\|gemm, tile=<tm>x<tn>, sg, wgmem, wg=<wgx>x<wgy>, tk=<≥1>, f16=w\|all, generic, pk$/,
      ],
      ['gemm,tiles=4x8', /unknown token "tiles=4x8"/],
      ['gemm,tile=4', /"tile=4" is malformed \(tile=<tm>x<tn>\)/],
      ['gemm,tile=0x8', /"tile=0x8": tm must be an integer ≥ 1/],
      ['gemm,direct', /"path" given twice/],
      ['gemm,,sg', /empty token/],
      ['sg=1', /"sg=1" is malformed \(sg\)/],
      ['path=gemm', /"path=gemm" is malformed \(direct\|gemm\)/],
      ['fused', /unknown token "fused"/],
    ];
    for (const [s, re] of bad) {
      expect(() => conv2dVariant.parse(s), s).toThrow(VariantError);
      expect(() => conv2dVariant.parse(s), s).toThrow(re);
    }
    expect(() => matmulVariant.parse('reg,tile=4x6')).toThrow(/tn must be an integer ≥ 4 and a multiple of 4/);
    expect(() => matmulVariant.parse('splitk=0')).toThrow(/splitk must be an integer ≥ 1/);
    expect(() => matmulVariant.parse('tk=x')).toThrow(/"tk=x": tk must be an integer/);
    expect(() => variantFamily('flash')).toThrow(/unknown kernel family "flash" \(families with variants: conv2d, /);
  });

  it('checks typed objects the same way', () => {
    expect(conv2dVariant.check({ path: 'direct', tm: 2, tn: 4 })).toEqual({ path: 'direct', tm: 2, tn: 4 });
    expect(() => conv2dVariant.check({ path: 'gemm', TM: 4 })).toThrow(/conv2d variant .*unknown field "TM"/);
    expect(() => conv2dVariant.check({ path: 'fast' })).toThrow(/path must be one of direct, gemm, got "fast"/);
    expect(() => conv2dVariant.check({ tm: 4 })).toThrow(/tm and tn go together/);
    expect(() => conv2dVariant.check({ sg: 1 })).toThrow(/sg is a flag/);
    expect(() => conv2dVariant.format({ tm: 1.5, tn: 4 })).toThrow(/tm must be an integer/);
  });

  it('refuses a schema whose words collide', () => {
    expect(() =>
      defineVariant<{ a?: string; b?: boolean }>('x', [
        { kind: 'enum', key: 'a', values: ['b', 'c'], bare: true },
        { kind: 'flag', key: 'b' },
      ]),
    ).toThrow(/"b" is used twice/);
  });
});

describe('ctx.prefer', () => {
  const attrs = { pad: [1, 1, 1, 1] as [number, number, number, number] };
  const shapes: Shape[] = [[1, 8, 8, 8], [3, 3, 8, 16], [16]];
  const cfg = (prefer: Record<string, unknown>) =>
    conv2dOp.lower(attrs, shapes, [], { limits, prefer: prefer as never }).dispatches[0].config as {
      path: string;
      tm: number;
      tn: number;
    };
  it('takes the typed object or its string alike', () => {
    expect(cfg({ conv2d: { path: 'direct', tm: 2, tn: 4 } })).toMatchObject({ path: 'direct', tm: 2, tn: 4 });
    expect(cfg({ conv2d: 'direct,tile=2x4' })).toMatchObject({ path: 'direct', tm: 2, tn: 4 });
    expect(cfg({ conv2d: '' })).toMatchObject({ path: 'gemm' }); // '' is the heuristic
  });
  it('conv2d no longer ignores a malformed choice', () => {
    expect(() => cfg({ conv2d: 'gemm:4x8' })).toThrow(/conv2d variant "gemm:4x8": unknown token/);
    expect(() => cfg({ conv2d: 'gemm,tile=4x8,fast' })).toThrow(/unknown token "fast"/);
  });
});

describe('every variant string the kernels offer is canonical', () => {
  it('example lists', () => {
    for (const s of MATMUL_VARIANTS) roundTrips('matmul', s);
    for (const s of ATTENTION_VARIANTS) roundTrips('attention', s);
    for (const s of DEPTHWISE_TUNE_CANDIDATES) roundTrips('depthwise', s);
  });
  it('tuneSpace candidates, on model-like shapes with and without subgroups', () => {
    const cases: [string, object, Shape[], boolean[]][] = [
      ['conv2d', { pad: [1, 1, 1, 1] }, [[1, 56, 56, 64], [3, 3, 64, 64], [64]], [false, true, true]],
      ['conv2d', {}, [[1, 56, 56, 64], [1, 1, 64, 256], [256]], [false, true, true]],
      ['conv2d', { groups: 2, pad: [1, 1, 1, 1] }, [[1, 14, 14, 64], [3, 3, 32, 64], [64]], [false, true, true]],
      ['conv2d', { groups: 32, pad: [1, 1, 1, 1] }, [[1, 56, 56, 32], [3, 3, 1, 32], [32]], [false, true, true]],
      ['matmul', {}, [[197, 768], [768, 3072], [3072]], [false, true, true]],
      ['matmul', {}, [[1, 2048], [2048, 1000], [1000]], [false, true, true]],
      [
        'matmul',
        { transB: true },
        [
          [2, 64, 32],
          [2, 48, 32],
        ],
        [false, false],
      ],
      ['attention', { heads: 12 }, [[1, 197, 2304]], [false]],
      ['layernorm', {}, [[1, 197, 768], [768], [768]], [false, true, true]],
      ['softmax', {}, [[12, 197, 197]], [false]],
    ];
    const families = new Set<string>();
    for (const [op, attrs, ins, constInputs] of cases) {
      for (const subgroupSize of [0, 4]) {
        const space = OPS.get(op)!.tuneSpace!(attrs, ins as Shape[], { limits, subgroupSize, constInputs });
        expect(space, op).toBeDefined();
        families.add(space!.family);
        expect(space!.candidates.length).toBeGreaterThan(0);
        for (const c of space!.candidates) roundTrips(space!.family, c);
      }
    }
    for (const f of families) expect(VARIANT_FAMILIES.has(f)).toBe(true);
    expect([...families].sort()).toEqual(['attention', 'conv2d', 'depthwise', 'layernorm', 'matmul', 'softmax']);
  });
});

describe("the README's variant table", () => {
  it('every example parses in its family and is canonical', () => {
    const ticks = (c: string) => [...c.matchAll(/`([^`]*)`/g)].map((m) => m[1]);
    const rows = readFileSync('README.md', 'utf8')
      .split('\n')
      .filter((l) => /^\| `[a-z_0-9]+`(, `[a-z_0-9]+`)* \| `/.test(l))
      .map((l) => l.split(' | ').map(ticks))
      .filter(([families]) => families.every((f) => VARIANT_FAMILIES.has(f)));
    expect(rows.length).toBe(7);
    let examples = 0;
    for (const [families, cell] of rows) {
      for (const ex of cell) {
        const ok = families.filter((f) => {
          try {
            return variantFamily(f).format(variantFamily(f).parse(ex)) === ex;
          } catch {
            return false;
          }
        });
        expect(ok, `${families.join('/')}: ${ex}`).not.toEqual([]);
        examples++;
      }
    }
    expect(examples).toBeGreaterThan(15);
  });
});
