import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import type { HostTensor } from '../../kernels/kernel.js';
import type { Device } from '../../engine/device.js';
import { f16Round } from '../../kernels/f16.js';
import {
  MATMUL_VARIANTS,
  type MatmulAttrs,
  matmulOp,
  matmulRef,
  matmulVariant,
  matmulWgmemTilings,
  packKN,
} from '../../kernels/matmul.js';
import { expectClose, randTensor, testDevice } from '../helpers.js';

/** runOp with prefer.matmul; weights (b, bias) are graph constants when `constB`. Returns y and the kernel keys. */
async function run(
  attrs: MatmulAttrs,
  inputs: HostTensor[],
  prefer?: string,
  constB = false,
  device?: Device,
): Promise<{ y: HostTensor; kernels: string[] }> {
  const dev = device ?? (await testDevice());
  const g = new Graph();
  const names = inputs.map((t, i) =>
    constB && i > 0 ? g.constant(`c${i}`, t.shape, t.data) : g.input(`x${i}`, t.shape),
  );
  const y = g.op('matmul', names, attrs as Record<string, unknown>, 'op');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer: prefer ? { matmul: prefer } : undefined });
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

// f32 sums of up to K = 197 products of values in [-1, 1]: |d| ≲ K·2⁻²⁴·Σ|terms|.
const tol = { atol: 2e-5, rtol: 1e-5 };

interface Case {
  a: number[];
  b: number[];
  bias?: boolean;
  transB?: boolean;
  act?: 'none' | 'relu' | 'gelu';
}

/** Build inputs for a case; b's shape is given as [.., K, N] and transposed to [.., N, K] for transB. */
function inputsFor(c: Case, seed: number): HostTensor[] {
  const bShape = c.transB ? [...c.b.slice(0, -2), c.b[c.b.length - 1], c.b[c.b.length - 2]] : c.b;
  const ins = [randTensor(c.a, seed), randTensor(bShape, seed + 1)];
  if (c.bias) ins.push(randTensor([c.b[c.b.length - 1]], seed + 2));
  return ins;
}

describe('matmulRef', () => {
  it('hand-computed 2x3 @ 3x2 + bias, relu, transB, batch broadcast', () => {
    const a = { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) };
    const b = { shape: [3, 2], data: new Float32Array([1, -1, 0, 2, -1, 0]) };
    const bias = { shape: [2], data: new Float32Array([0.5, -20]) };
    // [1·1+2·0+3·(-1), 1·(-1)+2·2+3·0] = [-2, 3]; [4-6, -4+10] = [-2, 6]
    expect([...matmulRef({}, a, b).data]).toEqual([-2, 3, -2, 6]);
    expect([...matmulRef({ act: 'relu' }, a, b, bias).data]).toEqual([0, 0, 0, 0]);
    expect([...matmulRef({}, a, b, bias).data]).toEqual([-1.5, -17, -1.5, -14]);
    const bT = { shape: [2, 3], data: new Float32Array([1, 0, -1, -1, 2, 0]) };
    expect([...matmulRef({ transB: true }, a, bT).data]).toEqual([-2, 3, -2, 6]);
    // a [1, 2, 3] against b [2, 3, 2] (second matrix = 2·b): a's batch broadcasts.
    const b2 = { shape: [2, 3, 2], data: new Float32Array([...b.data, ...b.data.map((x) => 2 * x)]) };
    const y = matmulRef({}, { shape: [1, 2, 3], data: a.data }, b2);
    expect(y.shape).toEqual([2, 2, 2]);
    expect([...y.data]).toEqual([-2, 3, -2, 6, -4, 6, -4, 12]);
  });
});

describe('matmul shapes', () => {
  const shapes = (a: number[], b: number[], attrs: MatmulAttrs = {}, bias?: number[]) =>
    matmulOp.infer(attrs, bias ? [a, b, bias] : [a, b]);
  it('infers output shapes', () => {
    expect(shapes([2, 197, 64], [64, 192])).toEqual([[2, 197, 192]]);
    expect(shapes([2, 3, 5, 7], [2, 3, 7, 4])).toEqual([[2, 3, 5, 4]]);
    expect(shapes([2, 3, 5, 7], [2, 3, 4, 7], { transB: true })).toEqual([[2, 3, 5, 4]]);
    expect(shapes([1, 5, 7], [3, 7, 4])).toEqual([[3, 5, 4]]);
    expect(shapes([5, 7], [7, 4], {}, [4])).toEqual([[5, 4]]);
  });
  it('throws a ShapeError naming the shapes on a K mismatch, bad bias, or bad batch', () => {
    const g = new Graph();
    const a = g.input('a', [2, 5, 7]);
    const b = g.input('b', [6, 4]);
    expect(() => g.op('matmul', [a, b], {}, 'fc')).toThrow(/ShapeError|inner dimensions/);
    expect(() => g.op('matmul', [a, b], {}, 'fc')).toThrow(/node "fc" \(matmul\).*\[2,5,7\].*\[6,4\]/);
    const bt = g.input('bt', [4, 6]);
    expect(() => g.op('matmul', [a, bt], { transB: true })).toThrow(/K = 7.*\[4,6\].*K = 6/);
    const w = g.input('w', [7, 4]);
    const bias = g.input('bias', [5]);
    expect(() => g.op('matmul', [a, w, bias])).toThrow(/bias must be \[4\].*\[5\]/);
    const b3 = g.input('b3', [3, 7, 4]);
    expect(() => g.op('matmul', [a, b3])).toThrow(/\[2,5,7\].*\[3,7,4\].*broadcast/);
    try {
      g.op('matmul', [a, b]);
    } catch (e) {
      expect((e as Error).name).toBe('ShapeError');
    }
  });
  it('parses variant strings and rejects bad ones', () => {
    expect(matmulVariant.parse('reg,tile=8x8,splitk=4')).toEqual({ kind: 'reg', tm: 8, tn: 8, splitk: 4 });
    expect(matmulVariant.parse('wgmem,wg=16x16,tk=8')).toEqual({ kind: 'wgmem', wgx: 16, wgy: 16, tk: 8 });
    expect(() => matmulVariant.parse('fast')).toThrow(/matmul variant "fast": unknown token "fast"/);
    expect(() => matmulVariant.parse('reg,tile=4x3')).toThrow(/multiple of 4/);
  });
  it('heuristic: 8x8 for big problems, split-K for few tiles and long K, flops', async () => {
    const { info } = await testDevice();
    const ctx = { limits: info.limits };
    const big = matmulOp.lower(
      {},
      [
        [197, 768],
        [768, 768],
      ],
      [[197, 768]],
      ctx,
    ).dispatches;
    expect(big).toHaveLength(1);
    expect(big[0].config).toMatchObject({ kind: 'reg', TM: 8, TN: 8, splitK: 1, vecA: true, vecB: true, vecY: true });
    expect(big[0].flops).toBe(2 * 197 * 768 * 768);
    const head = matmulOp.lower({}, [[1, 2048], [2048, 1000], [1000]], [[1, 1000]], ctx);
    expect(head.dispatches.map((d) => d.family)).toEqual(['matmul', 'matmul-splitk-reduce']);
    expect(head.temps?.[0]).toBe((head.dispatches[0].config as { splitK: number }).splitK * 1000);
    const batched = matmulOp.lower(
      { transB: true },
      [
        [2, 3, 5, 8],
        [2, 3, 7, 8],
      ],
      [[2, 3, 5, 7]],
      ctx,
    ).dispatches[0];
    expect(batched.flops).toBe(2 * 6 * 5 * 7 * 8);
  });
});

describe('matmul vs ref', () => {
  // Awkward sizes (none a multiple of the tile; some not of 4) across layouts, forced through each variant.
  const cases: Case[] = [
    { a: [1, 1], b: [1, 1] },
    { a: [3, 5], b: [5, 3], bias: true },
    { a: [17, 33], b: [33, 5], act: 'relu' },
    { a: [2, 17, 64], b: [64, 33], bias: true, act: 'gelu' },
    { a: [2, 5, 17], b: [17, 64], transB: true, bias: true },
    { a: [2, 3, 3, 64], b: [2, 3, 64, 17], transB: true },
    { a: [2, 33, 17], b: [2, 17, 64], act: 'relu' },
    { a: [2, 3, 5, 1], b: [2, 3, 1, 3], bias: true },
    { a: [197, 33], b: [33, 64], transB: true, bias: true, act: 'gelu' },
    // N % 8 == 4: a TN = 8 tile's second vec4 hangs past the edge.
    { a: [2, 9, 12], b: [12, 20], bias: true, act: 'relu' },
    { a: [9, 20], b: [20, 12], transB: true },
  ];
  const name = (c: Case) =>
    `${JSON.stringify(c.a)} @ ${JSON.stringify(c.b)}${c.transB ? ' transB' : ''}${c.bias ? ' +bias' : ''}${c.act ? ` ${c.act}` : ''}`;
  // Every variant and tile config. Big unrolled tiles and wide K tiles compile slowly on SwiftShader,
  // so those run on a subset (indices into cases) that still covers both b layouts and all edges.
  const variants: [string, number[]?][] = [
    ['reg,tile=4x4'],
    ['reg,tile=1x4'],
    ['reg,tile=2x8'],
    ['reg,tile=4x4,splitk=3'],
    ['reg,tile=8x8', [2, 4, 5, 8, 9, 10]],
    ['reg,tile=4x8', [3, 6, 9, 10]],
    ['reg,tile=8x8,wg=4x16,splitk=2', [3, 4, 10]],
    ['wgmem,tile=4x4,tk=4'],
    ['wgmem,tile=8x8,wg=4x4,tk=4'],
    ['wgmem,tile=4x4,wg=4x4,tk=4,splitk=2'],
    ['wgmem,tile=4x4', [3, 5]],
    ['wgmem', [9]],
  ];
  for (const [v, subset] of variants) {
    const cs = subset ? subset.map((i) => cases[i]) : cases;
    it(`${v}: ${cs.length} shapes`, async () => {
      let seed = 10;
      for (const c of cs) {
        const ins = inputsFor(c, (seed += 3));
        const { y, kernels } = await run({ act: c.act, transB: c.transB }, ins, v);
        expectClose(y, matmulRef({ act: c.act, transB: c.transB }, ins[0], ins[1], ins[2]), tol, `${v} ${name(c)}`);
        const cfg = matmulVariant.parse(v);
        if (cfg.kind) expect(kernels[0]).toContain(`"kind":"${cfg.kind}"`);
        if (cfg.tm) expect(kernels[0]).toContain(`"TM":${cfg.tm},"TN":${cfg.tn}`);
        if (cfg.splitk && c.a[c.a.length - 1] >= 8) expect(kernels).toHaveLength(2);
      }
    });
  }
  // Subgroup-shared b: only where the device has one fixed subgroup size (SwiftShader: 4).
  const sgCases: Case[] = [
    { a: [17, 12], b: [12, 20], bias: true, act: 'relu' },
    { a: [2, 33, 64], b: [64, 36], bias: true, act: 'gelu' },
    { a: [5, 8], b: [8, 4] },
    { a: [2, 9, 16], b: [2, 16, 12] },
    { a: [3, 1100], b: [1100, 12], bias: true },
  ];
  for (const v of [
    'tile=4x8,sg',
    'tile=4x16,wg=1x16,sg',
    'tile=8x8,wg=1x8,sg',
    'tile=8x32,wg=1x8,sg',
    'tile=4x8,splitk=3,sg',
  ]) {
    it(`${v} (subgroups): ${sgCases.length} shapes`, async () => {
      const dev = await testDevice();
      if (!dev.info.subgroupSize) return; // no fixed subgroup size on this adapter
      let seed = 300;
      for (const c of sgCases) {
        const ins = inputsFor(c, (seed += 3));
        const { y, kernels } = await run({ act: c.act }, ins, v);
        expectClose(
          y,
          matmulRef({ act: c.act }, ins[0], ins[1], ins[2]),
          { atol: 1e-4, rtol: 1e-5 },
          `${v} ${name(c)}`,
        );
        expect(kernels[0]).toContain(`"sg":${dev.info.subgroupSize}`);
      }
    });
  }
  it('the heuristic shares b on a subgroup-4 device for ≥ 64 rows, N % 16 == 0, b as [K, N]', async () => {
    const { info } = await testDevice();
    const cfg = (a: number[], b: number[], transB: boolean, subgroupSize: number) =>
      matmulOp.lower({ transB }, [a, b], [], { limits: info.limits, subgroupSize }).dispatches[0].config as {
        sg: number;
        TM: number;
        TN: number;
        wgX: number;
      };
    expect(cfg([197, 768], [768, 3072], false, 4)).toMatchObject({ sg: 4, TM: 8, TN: 16, wgX: 1 });
    expect(cfg([197, 768], [768, 3072], false, 0)).toMatchObject({ sg: 0 });
    expect(cfg([197, 768], [3072, 768], true, 4)).toMatchObject({ sg: 0 });
    expect(cfg([32, 768], [768, 3072], false, 4)).toMatchObject({ sg: 0 });
    expect(cfg([197, 768], [768, 1000], false, 4)).toMatchObject({ sg: 0 });
  });
  it("'sg' is refused with a reason where it cannot run", async () => {
    const dev = await testDevice();
    const ins = inputsFor({ a: [4, 8], b: [8, 8], transB: true }, 1);
    await expect(run({ transB: true }, ins, 'sg')).rejects.toThrow(/'sg' needs kind reg, b as \[K, N\]/);
    expect(dev.info.subgroupSize === 0 || dev.info.subgroupSize >= 4).toBe(true);
  });
  // Packed b: a constant weight relaid out at compile time as [⌈N/TN⌉, K, TN].
  const pkCases: Case[] = [
    { a: [17, 12], b: [12, 20], bias: true, act: 'relu' }, // N = 20: the last 8-wide block is padded
    { a: [2, 33, 64], b: [64, 36], bias: true, act: 'gelu' },
    { a: [5, 7], b: [7, 10] }, // K, N not multiples of 4
  ];
  for (const v of ['reg,tile=8x8,pk', 'reg,tile=4x8,pk', 'reg,tile=4x16,splitk=2,pk', 'tile=8x16,wg=1x8,sg,pk']) {
    it(`${v} (packed constant b): ${pkCases.length} shapes`, async () => {
      const dev = await testDevice();
      let seed = 400;
      for (const c of pkCases) {
        if (v.includes(',sg') && (!dev.info.subgroupSize || c.b[0] % 4 !== 0 || c.b[1] % 4 !== 0)) continue;
        const ins = inputsFor(c, (seed += 3));
        const { y, kernels } = await run({ act: c.act }, ins, v, true);
        expectClose(
          y,
          matmulRef({ act: c.act }, ins[0], ins[1], ins[2]),
          { atol: 1e-4, rtol: 1e-5 },
          `${v} ${name(c)}`,
        );
        expect(kernels[0]).toContain('"packB":true');
      }
    });
  }
  it('packB: the weight is uploaded once, packed; a non-constant b is refused', async () => {
    const dev = await testDevice();
    const g = new Graph();
    const x = g.input('x', [9, 12]);
    const w = g.constant('w', [12, 20], randTensor([12, 20], 5).data);
    g.markOutputs(g.op('matmul', [x, w], {}, 'fc'));
    const plan = await compile(dev, g, { prefer: { matmul: { kind: 'reg', tm: 4, tn: 8, pk: true } } });
    expect(plan.memory.weightBytes).toBe(3 * 12 * 8 * 4); // ⌈20/8⌉ blocks × K × 8, not 12 × 20
    plan.dispose();
    expect([...packKN(new Float32Array([1, 2, 3, 4, 5, 6]), 2, 3, 2)]).toEqual([1, 2, 4, 5, 3, 0, 6, 0]);
    await expect(run({}, inputsFor({ a: [4, 8], b: [8, 8] }, 1), 'reg,tile=4x8,pk')).rejects.toThrow(
      /'pk' needs kind reg and b a constant/,
    );
  });
  it('MATMUL_VARIANTS all parse', () => {
    for (const v of MATMUL_VARIANTS) expect(matmulVariant.parse(v).kind).toBeDefined();
  });

  // The heuristic default over M, N, K ∈ {1, 3, 5, 17, 33, 64, 197}, shared weight (a constant, as a
  // Linear layer's) and batched b, both b layouts.
  const dims = [1, 3, 5, 17, 33, 64, 197];
  it('default variant over M, N, K ∈ {1, 3, 5, 17, 33, 64, 197} (shared constant weight, bias, gelu)', async () => {
    let seed = 100;
    for (let i = 0; i < dims.length; i++) {
      const [M, N, K] = [dims[i], dims[(i + 3) % 7], dims[(i + 5) % 7]];
      const transB = i % 2 === 1;
      const c: Case = { a: [2, M, K], b: [K, N], transB, bias: true, act: 'gelu' };
      const ins = inputsFor(c, (seed += 3));
      const { y } = await run({ act: 'gelu', transB }, ins, undefined, true);
      expectClose(y, matmulRef({ act: 'gelu', transB }, ins[0], ins[1], ins[2]), tol, name(c));
    }
  });
  it('default variant, batched b with [2] and [2,3] batch dims and broadcasting', async () => {
    const cs: Case[] = [
      { a: [2, 197, 16], b: [2, 16, 197], transB: true },
      { a: [2, 197, 197], b: [2, 197, 16] },
      { a: [2, 3, 17, 5], b: [2, 3, 5, 33], act: 'relu' },
      { a: [2, 3, 1, 64], b: [2, 3, 64, 3], transB: true, bias: true },
      { a: [1, 3, 4, 8], b: [2, 1, 8, 12] },
      { a: [5, 8], b: [3, 8, 4], transB: true },
    ];
    let seed = 200;
    for (const c of cs) {
      const ins = inputsFor(c, (seed += 3));
      const { y } = await run({ act: c.act, transB: c.transB }, ins);
      expectClose(y, matmulRef({ act: c.act, transB: c.transB }, ins[0], ins[1], ins[2]), tol, name(c));
    }
  });
  it('split-K with long K (auto) matches the reference, with bias and gelu', async () => {
    const c: Case = { a: [3, 1100], b: [1100, 10], bias: true, act: 'gelu' };
    const ins = inputsFor(c, 7);
    const { y, kernels } = await run({ act: 'gelu' }, ins, undefined, true);
    expect(kernels.length).toBe(2);
    expectClose(y, matmulRef({ act: 'gelu' }, ins[0], ins[1], ins[2]), { atol: 1e-4, rtol: 1e-5 }, 'split-K');
  });
});

describe('matmul real-GPU variants on SwiftShader (correctness only)', () => {
  const name = (c: Case) => `${JSON.stringify(c.a)} @ ${JSON.stringify(c.b)}${c.transB ? ' transB' : ''}`;
  const cases: Case[] = [
    { a: [2, 17, 64], b: [64, 33], bias: true, act: 'gelu' }, // vec4 a, scalar b (N = 33)
    { a: [2, 5, 17], b: [17, 64], transB: true, bias: true }, // transB, scalar (K = 17)
    { a: [2, 3, 3, 64], b: [2, 3, 64, 17], transB: true }, // batched transB, vec4 along K
    { a: [2, 9, 12], b: [12, 20], bias: true, act: 'relu' }, // vec4 both, N past the tile
    { a: [70, 36], b: [36, 68], act: 'relu' }, // more than one 64×64 tile each way
  ];
  it('workgroup-memory tilings are sized from the limits', async () => {
    const { info } = await testDevice();
    const big = matmulWgmemTilings({ ...info.limits, maxComputeInvocationsPerWorkgroup: 256 });
    expect(big).toContain('wgmem,tile=4x4,wg=16x16,tk=16');
    const small = matmulWgmemTilings({
      ...info.limits,
      maxComputeInvocationsPerWorkgroup: 64,
      maxComputeWorkgroupStorageSize: 4096,
    });
    expect(small).toEqual(['wgmem,tile=8x8,wg=8x8,tk=8']);
    const space = (limits: typeof info.limits) =>
      matmulOp.tuneSpace!(
        {},
        [
          [64, 64],
          [64, 64],
        ],
        { limits, constInputs: [false, true] },
      )!.candidates;
    expect(space(info.limits)).toEqual(expect.arrayContaining(matmulWgmemTilings(info.limits)));
    expect(
      space({ ...info.limits, maxComputeInvocationsPerWorkgroup: 64, maxComputeWorkgroupStorageSize: 4096 }),
    ).not.toContain('wgmem,tile=4x4,wg=16x16,tk=16');
  });
  for (const v of [
    'wgmem,tile=4x4,wg=16x16,tk=16',
    'wgmem,tile=8x8,wg=8x8,tk=8',
    'wgmem,tile=4x4,wg=8x8,tk=32,splitk=2',
  ]) {
    it(`${v}: ${cases.length} shapes`, async () => {
      let seed = 500;
      for (const c of cases) {
        const ins = inputsFor(c, (seed += 3));
        const { y, kernels } = await run({ act: c.act, transB: c.transB }, ins, v);
        expectClose(y, matmulRef({ act: c.act, transB: c.transB }, ins[0], ins[1], ins[2]), tol, `${v} ${name(c)}`);
        expect(kernels[0]).toContain('"kind":"wgmem"');
      }
    });
  }

  // f16 storage: weights rounded to half once, products summed in f32. Against the reference
  // with the same rounded weights the f32 tolerance holds; against the f32 reference, the
  // tuner's (bench/kernels.ts: |Δ| ≤ 1e-3·max|ref| + 1e-4).
  const f16Cases: Case[] = [
    { a: [17, 12], b: [12, 20], bias: true, act: 'relu' },
    { a: [2, 33, 64], b: [64, 36], bias: true, act: 'gelu' },
    { a: [5, 7], b: [7, 12] }, // K not a multiple of 4: scalar a
    { a: [2, 9, 20], b: [20, 13], transB: true, bias: true }, // b [N, K]: vec4 along K
  ];
  const rounded = (t: HostTensor): HostTensor => ({ shape: t.shape, data: t.data.map(f16Round) });
  const maxAbs = (t: HostTensor) => t.data.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
  for (const v of [
    'reg,tile=4x8,f16=w',
    'reg,tile=8x8,pk,f16=w',
    'reg,tile=4x4,splitk=2,f16=w',
    'tile=8x16,wg=1x8,sg,pk,f16=w',
    'wgmem,tile=4x4,wg=8x8,tk=8,f16=w',
  ]) {
    it(`${v} (f16 storage): ${f16Cases.length} shapes`, async () => {
      const dev = await testDevice();
      let seed = 600;
      for (const c of f16Cases) {
        if ((v.includes('pk') && c.transB) || (v.includes('sg') && (!dev.info.subgroupSize || c.b[0] % 4 !== 0)))
          continue;
        const ins = inputsFor(c, (seed += 3));
        const attrs = { act: c.act, transB: c.transB };
        const { y, kernels } = await run(attrs, ins, v, true);
        expect(kernels[0]).toContain('"f16":"w"');
        expectClose(y, matmulRef(attrs, ins[0], rounded(ins[1]), ins[2]), tol, `${v} ${name(c)} vs f16 weights`);
        const want = matmulRef(attrs, ins[0], ins[1], ins[2]);
        expectClose(y, want, { atol: 1e-3 * maxAbs(want) + 1e-4, rtol: 0 }, `${v} ${name(c)} vs f32`);
      }
    });
  }
  it('f16 weights take half the bytes; f16 needs a constant vec4 b; f16=all needs shader-f16', async () => {
    const dev = await testDevice();
    const g = new Graph();
    const x = g.input('x', [9, 12]);
    const w = g.constant('w', [12, 20], randTensor([12, 20], 5).data);
    g.markOutputs(g.op('matmul', [x, w], {}, 'fc'));
    const plan = await compile(dev, g, { prefer: { matmul: 'reg,tile=4x8,f16=w' } });
    expect(plan.memory.weightBytes).toBe(12 * 20 * 2);
    plan.dispose();
    await expect(run({}, inputsFor({ a: [4, 8], b: [8, 8] }, 1), 'reg,tile=4x8,f16=w')).rejects.toThrow(
      /'f16' needs b a constant weight/,
    );
    await expect(run({}, inputsFor({ a: [4, 8], b: [8, 7] }, 1), 'reg,tile=4x8,f16=w', true)).rejects.toThrow(
      /N a multiple of 4/,
    );
    if (!dev.info.shaderF16) {
      await expect(run({}, inputsFor({ a: [4, 8], b: [8, 8] }, 1), 'reg,tile=4x8,f16=all', true)).rejects.toThrow(
        /'f16=all' needs the device feature shader-f16/,
      );
    }
  });
  it('full f16 (WGSL only: SwiftShader has no shader-f16): f16 types, accumulators and the f32 epilogue', async () => {
    const { info } = await testDevice();
    const ctx = { limits: info.limits, shaderF16: true, constInputs: [false, true, true], subgroupSize: 4 };
    const lower = (prefer: string, transB = false) =>
      matmulOp.lower({ transB, act: 'relu' }, [[33, 64], transB ? [36, 64] : [64, 36], [36]], [], {
        ...ctx,
        prefer: { matmul: prefer },
      });
    for (const [v, transB] of [
      ['reg,tile=8x8,f16=all', false],
      ['reg,tile=8x8,f16=all', true],
      ['reg,tile=8x16,pk,f16=all', false],
      ['tile=8x16,wg=1x8,sg,pk,f16=all', false],
      ['wgmem,tile=4x4,wg=8x8,tk=16,f16=all', false],
      ['wgmem,tile=4x4,wg=8x8,tk=16,f16=all', true],
    ] as const) {
      const low = lower(v, transB);
      const src = low.dispatches[0].wgsl();
      expect(src, v).toMatch(/^enable f16;/m);
      expect(src).toContain('var<storage, read> B: array<vec4<f16>>');
      expect(src).toContain('var acc0_0 = vec4<f16>(0.0);');
      expect(src).toMatch(/vec4<f32>\(acc0_0\)/);
      expect(src).toMatch(/vec4<f16>\((A\[|select\(vec4<f32>\(0\.0\), A\[)/);
      if (v.startsWith('wgmem')) expect(src).toContain('var<workgroup> Bs: array<vec4<f16>');
      expect(low.constLayouts?.[0].layout).toMatch(/-f16$/);
    }
    expect(() =>
      matmulOp.lower(
        {},
        [
          [8, 8],
          [8, 8],
        ],
        [],
        { ...ctx, shaderF16: false, prefer: { matmul: 'f16=all' } },
      ),
    ).toThrow(/shader-f16/);
    // The tuner offers both precisions only where the adapter has shader-f16.
    const space = (shaderF16: boolean) =>
      matmulOp.tuneSpace!(
        {},
        [
          [64, 64],
          [64, 64],
        ],
        { ...ctx, shaderF16, constInputs: [false, true] },
      )!.candidates;
    expect(space(true)).toEqual(expect.arrayContaining(['reg,tile=8x8,f16=w', 'reg,tile=8x8,f16=all']));
    expect(space(false).some((v) => v.includes('f16'))).toBe(false);
  });

  // Subgroups of any size: S = min(subgroupMinSize, 16) lanes share b; wider subgroups load
  // row (lane mod S) and read only lanes 0..S−1, so the kernel is right for every size in range.
  it('sg width from subgroupMinSize; whole subgroups of the largest size per workgroup', async () => {
    const { info } = await testDevice();
    const cfg = (min: number, max: number, prefer = 'tile=8x16,sg') =>
      matmulOp.lower(
        {},
        [
          [64, 64],
          [64, 64],
        ],
        [],
        {
          limits: info.limits,
          subgroupSize: min === max ? min : 0,
          subgroupMinSize: min,
          subgroupMaxSize: max,
          prefer: { matmul: prefer },
        },
      ).dispatches[0];
    expect(cfg(4, 4).config).toMatchObject({ sg: 4, sgWide: false });
    expect(cfg(8, 32).config).toMatchObject({ sg: 8, sgWide: true, wgY: 64 });
    expect(cfg(8, 32).wgsl()).toContain('(k + (sl % 8u))');
    expect(cfg(32, 32).config).toMatchObject({ sg: 16, sgWide: true });
    expect(cfg(4, 4).wgsl()).not.toContain('sl % ');
    expect(() => cfg(8, 32, 'tile=8x16,wg=1x8,sg')).toThrow(/multiple of the largest subgroup size \(32\)/);
    const space = matmulOp.tuneSpace!(
      {},
      [
        [64, 64],
        [64, 64],
      ],
      {
        limits: info.limits,
        subgroupMinSize: 16,
        subgroupMaxSize: 32,
        constInputs: [false, true],
      },
    )!.candidates;
    expect(space).toContain('tile=4x8,wg=1x32,sg');
    expect(space).not.toContain('tile=8x16,wg=1x8,sg');
  });
  it('sg on an adapter reporting sizes 4..8 runs right on SwiftShader (size 4, wide code path)', async () => {
    const dev = await testDevice();
    if (!dev.info.subgroupSize) return; // no subgroups on this adapter
    const wide: Device = { ...dev, info: { ...dev.info, subgroupSize: 0, subgroupMinSize: 4, subgroupMaxSize: 8 } };
    let seed = 700;
    for (const c of [
      { a: [17, 12], b: [12, 20], bias: true, act: 'relu' },
      { a: [2, 33, 64], b: [64, 36], bias: true, act: 'gelu' },
    ] as Case[]) {
      const ins = inputsFor(c, (seed += 3));
      const { y, kernels } = await run({ act: c.act }, ins, 'tile=4x8,wg=1x16,sg', false, wide);
      expect(kernels[0]).toContain('"sgWide":true');
      expectClose(y, matmulRef({ act: c.act }, ins[0], ins[1], ins[2]), { atol: 1e-4, rtol: 1e-5 }, name(c));
    }
  });
});
