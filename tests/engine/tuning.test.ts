// The tuning table (engine/tuning.ts), how compile() uses it, and the tuner (bench/tune.ts).

import { describe, expect, it } from 'vitest';
import { collectLayers, type Layer } from '../../bench/kernels.js';
import { tuneLayers, tuneModels } from '../../bench/tune.js';
import { isCpuAdapter } from '../../engine/device.js';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import {
  TUNING_VERSION,
  TuningFileError,
  TuningTable,
  TuningVersionError,
  adapterKey,
  emptyTuningFile,
  layerKey,
  mergeTable,
  parseTuningFile,
  readTuningText,
  tableFor,
} from '../../engine/tuning.js';
import { registerOp, OPS } from '../../kernels/index.js';
import { type OpDef, input, makeDispatch, output } from '../../kernels/kernel.js';
import { defineVariant } from '../../kernels/variant.js';
import { expectClose, rand, testDevice } from '../helpers.js';

describe('tuning file', () => {
  it('round-trips, merges per adapter, and keys layers by op, attrs and shapes', () => {
    const key = layerKey('matmul', { act: 'relu' }, [
      [5, 8],
      [8, 4],
    ]);
    expect(key).toBe('matmul{"act":"relu"}[5,8][8,4]');
    expect(layerKey('matmul', { b: 1, a: 2 }, [])).toBe(layerKey('matmul', { a: 2, b: 1 }, []));
    const t = new TuningTable('node/v/a/d');
    t.set(key, { family: 'matmul', prefer: 'reg,tile=4x4', ms: 1, heuristicMs: 2 });
    let f = mergeTable(emptyTuningFile(), t);
    const other = new TuningTable('browser/v/a/d', { k: { family: 'conv2d', prefer: '', ms: 1, heuristicMs: 1 } });
    f = mergeTable(f, other);
    const back = parseTuningFile(JSON.stringify(f), 'f.json');
    expect(tableFor(back, 'node/v/a/d').get(key)?.prefer).toBe('reg,tile=4x4');
    expect(tableFor(back, 'browser/v/a/d').size).toBe(1);
    expect(tableFor(back, 'unknown').size).toBe(0);
    expect(adapterKey({ runtime: 'node', vendor: '', architecture: 'swiftshader', description: 'x' })).toBe(
      'node/?/swiftshader/x',
    );
  });
  it('names the file and what is wrong in a malformed one', () => {
    expect(() => parseTuningFile('{', 'bad.json')).toThrow(TuningFileError);
    expect(() => parseTuningFile('{', 'bad.json')).toThrow(/bad\.json: not JSON/);
    expect(() => parseTuningFile('{"version": 3, "adapters": {}}', 'v.json')).toThrow(TuningVersionError);
    expect(() => parseTuningFile('{"version": 3, "adapters": {}}', 'v.json')).toThrow(
      /v\.json: .*"version": 2 .*npx cnnlab tune --force/,
    );
    expect(() =>
      parseTuningFile('{"version": 2, "adapters": {"a": {"layers": {"k": {"family": 3}}}}}', 'l.json'),
    ).toThrow(/l\.json: adapter "a", layer k/);
  });
  const file = (version: number, layers: Record<string, [string, string]>) =>
    JSON.stringify({
      version,
      adapters: {
        a: {
          updated: 'x',
          layers: Object.fromEntries(
            Object.entries(layers).map(([k, [family, prefer]]) => [k, { family, prefer, ms: 1, heuristicMs: 2 }]),
          ),
        },
      },
    });
  it("checks every stored choice with its family's parser: old grammar, unknown fields and non-canonical order are refused", () => {
    expect(TUNING_VERSION).toBe(2);
    expect(() => parseTuningFile(file(2, { k: ['conv2d', 'gemm:4x16:sg'] }), 'f.json')).toThrow(
      /f\.json: adapter "a", layer k: conv2d variant "gemm:4x16:sg": unknown token "gemm:4x16:sg"; valid fields: direct\|gemm, tile=<tm>x<tn>, sg/,
    );
    expect(() => parseTuningFile(file(2, { k: ['matmul', 'reg,tiles=4x8'] }), 'f.json')).toThrow(
      /unknown token "tiles=4x8"/,
    );
    expect(() => parseTuningFile(file(2, { k: ['matmul', 'sg,tile=4x8'] }), 'f.json')).toThrow(
      /not in canonical form \("tile=4x8,sg"\)/,
    );
    expect(() => parseTuningFile(file(2, { k: ['flash', 'fast'] }), 'f.json')).toThrow(/unknown kernel family "flash"/);
    const ok = parseTuningFile(file(2, { k: ['matmul', 'tile=8x16,wg=1x8,sg,pk'], h: ['conv2d', ''] }), 'f.json');
    expect(ok.adapters.a.layers.k.prefer).toBe('tile=8x16,wg=1x8,sg,pk');
  });
  it('converts a version 1 file once: every old-grammar choice to the canonical form', () => {
    const old: Record<string, [string, string]> = {
      c1: ['conv2d', 'gemm:4x16:sg'],
      c2: ['conv2d', 'direct:4x8'],
      c3: ['conv2d', 'gemm'],
      m1: ['matmul', 'sg-8x16-wg1x8-pk'],
      m2: ['matmul', 'reg4x8-splitk4'],
      m3: ['matmul', 'wgmem8x8-wg4x4-tk8'],
      d1: ['depthwise', 'unrolled:2x4'],
      d2: ['depthwise', 'loop'],
      a1: ['attention', 'fused-k3-r3-loop'],
      a2: ['attention', 'naive'],
      a3: ['attention', 'fused-k8-r1-unroll-wg32'],
      l1: ['layernorm', 'workgroup:64'],
      s1: ['softmax', 'thread'],
      g1: ['group_norm', 'split:256'],
      p1: ['global_avgpool', 'serial'],
      t1: ['transpose', 'generic'],
      h1: ['conv2d', ''],
    };
    const { file: f, convertedFrom } = readTuningText(file(1, old), 'old.json');
    expect(convertedFrom).toBe(1);
    expect(f.version).toBe(2);
    expect(Object.fromEntries(Object.entries(f.adapters.a.layers).map(([k, c]) => [k, c.prefer]))).toEqual({
      c1: 'gemm,tile=4x16,sg',
      c2: 'direct,tile=4x8',
      c3: 'gemm',
      m1: 'tile=8x16,wg=1x8,sg,pk',
      m2: 'reg,tile=4x8,splitk=4',
      m3: 'wgmem,tile=8x8,wg=4x4,tk=8',
      d1: 'unrolled,block=2x4',
      d2: 'loop',
      a1: 'fused,ktile=3,rows=3,head=loop',
      a2: 'naive',
      a3: 'fused,ktile=8,rows=1,wg=32,head=unrolled',
      l1: 'workgroup,wg=64',
      s1: 'thread',
      g1: 'split,wg=256',
      p1: 'serial',
      t1: 'generic',
      h1: '',
    });
    expect(f.adapters.a.layers.m1).toMatchObject({ family: 'matmul', ms: 1, heuristicMs: 2 });
    // The converted file reads back as a current one, unchanged.
    expect(readTuningText(JSON.stringify(f), 'new.json')).toEqual({ file: f });
  });
  it('refuses a version 1 choice it cannot convert, saying how to regenerate the file', () => {
    for (const [family, prefer] of [
      ['matmul', 'reg4x4-splitk'],
      ['conv2d', 'gemm:4x8:fast'],
      ['layernorm', 'warp:32'],
      ['matmul', 'reg4x3'],
    ]) {
      const read = () => parseTuningFile(file(1, { k: [family, prefer] }), 'old.json');
      expect(read).toThrow(TuningVersionError);
      expect(read).toThrow(
        /old\.json: adapter "a", layer k: version 1 choice cannot be converted: .*npx cnnlab tune --force regenerates it/,
      );
    }
  });
});

function matmulGraph(M: number, K: number, N: number, seed: number) {
  const g = new Graph();
  g.input('x', [M, K]);
  g.constant('w', [K, N], rand(K * N, seed));
  g.markOutputs(g.op('matmul', ['x', 'w'], { act: 'relu' }, 'fc'));
  return g;
}

describe('compile with a tuning table', () => {
  it("uses a layer's tuned variant, and falls back to the heuristic (with a note) when the choice does not lower", async () => {
    const dev = await testDevice();
    const g = matmulGraph(9, 12, 20, 1);
    const key = layerKey('matmul', { act: 'relu' }, [
      [9, 12],
      [12, 20],
    ]);
    const x = rand(9 * 12, 2);
    const want = runReference(g, { x });
    const table = new TuningTable(adapterKey(dev.info), {
      [key]: { family: 'matmul', prefer: 'reg,tile=1x4', ms: 1, heuristicMs: 2 },
    });
    const plan = await compile(dev, g, { tuning: table });
    try {
      expect(plan.kernels[0]).toContain('"TM":1,"TN":4');
      expect(plan.tuning).toEqual({ used: 1, notes: [] });
      expectClose((await plan.run({ x })).outputs.fc, want.fc, { atol: 1e-5, rtol: 1e-5 });
    } finally {
      plan.dispose();
    }
    // An explicit prefer wins over the table.
    const forced = await compile(dev, g, { tuning: table, prefer: { matmul: 'reg,tile=4x4' } });
    expect(forced.kernels[0]).toContain('"TM":4,"TN":4');
    forced.dispose();
    // A stale choice.
    table.set(key, { family: 'matmul', prefer: 'turbo9000', ms: 1, heuristicMs: 2 });
    const stale = await compile(dev, g, { tuning: table });
    try {
      expect(stale.tuning.used).toBe(0);
      expect(stale.tuning.notes[0]).toMatch(/node "fc": tuned matmul "turbo9000" failed to lower/);
      expectClose((await stale.run({ x })).outputs.fc, want.fc, { atol: 1e-5, rtol: 1e-5 });
    } finally {
      stale.dispose();
    }
  });
});

// A test op whose variants the tuner must judge: 'good' is right, 'wrong' computes 3x instead of
// 2x (and does no work, so it is the fastest), 'broken' is invalid WGSL.
const probeFamily = {
  name: 'tune_probe',
  wgsl: (c: { variant: string; n: number }) =>
    c.variant === 'broken'
      ? 'this is not wgsl'
      : `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x >= ${c.n}u) { return; }
  var s = x[id.x];
  ${c.variant === 'wrong' ? 's = s * 1.5;' : `for (var i = 0u; i < ${c.variant === 'good' ? 64 : 256}u; i++) { s = s * 1.0000001; }`}
  y[id.x] = 2.0 * s;
}`,
};
const probeVariant = defineVariant<{ variant?: 'good' | 'wrong' | 'broken' | 'slow' }>('tune_probe', [
  { kind: 'enum', key: 'variant', values: ['good', 'wrong', 'broken', 'slow'], bare: true },
]);
const probeOp: OpDef<Record<string, never>> = {
  op: 'tune_probe',
  arity: [1, 1],
  infer: (_a, [x]) => [x],
  lower(_a, [x], _o, ctx) {
    const n = x[0];
    const variant = probeVariant.of(ctx.prefer)?.variant ?? 'slow';
    return {
      dispatches: [
        makeDispatch(probeFamily, { variant, n }, [Math.ceil(n / 64), 1, 1], [input(0), output(0)], { flops: n }),
      ],
    };
  },
  ref: (_a, [x]) => [{ shape: x.shape, data: x.data.map((v) => 2 * v) }],
  tuneSpace: () => ({ family: 'tune_probe', candidates: ['good', 'wrong', 'broken', 'slow'] }),
};
if (!OPS.has(probeOp.op)) registerOp(probeOp);

describe('tuner', () => {
  it('drops wrong, broken and duplicate candidates, and records the winner in the table', async () => {
    const dev = await testDevice();
    const g = new Graph();
    g.input('in0', [1 << 14]);
    g.markOutputs(g.op('tune_probe', ['in0'], {}, 'p'));
    const layer: Layer = {
      model: 'test',
      node: 'p',
      op: 'tune_probe',
      models: ['test'],
      count: 1,
      shape: '[16384]',
      graph: g,
      feeds: {},
    };
    const table = new TuningTable(adapterKey(dev.info));
    const [row] = await tuneLayers(dev, [layer], table, { reps: 2, minGain: 0 });
    const status = Object.fromEntries(row.candidates.map((c) => [c.prefer, c.status]));
    expect(status).toEqual({ '': 'ok', good: 'ok', wrong: 'wrong', broken: 'failed', slow: 'duplicate' });
    expect(row.best === '' || row.best === 'good').toBe(true);
    const saved = table.get(row.key)!;
    expect(saved).toMatchObject({ family: 'tune_probe', prefer: row.best });
    expect(saved.ms).toBeLessThanOrEqual(saved.heuristicMs);
    // A second run finds the layer in the table.
    const [again] = await tuneLayers(dev, [layer], table);
    expect(again.status).toBe('cached');
  });
  it('tunes a real small conv and matmul; every choice computes the reference', async () => {
    const dev = await testDevice();
    const all = await collectLayers(['resnet18'], { batch: 1, size: 32 });
    const layers = [
      all.find((l) => l.op === 'conv2d' && l.shape.includes('3x3→64 /1'))!,
      all.find((l) => l.op === 'matmul')!,
    ];
    expect(layers.every(Boolean)).toBe(true);
    const table = new TuningTable(adapterKey(dev.info));
    const rows = await tuneLayers(dev, layers, table, { reps: 1 });
    for (const r of rows) {
      expect(r.candidates.filter((c) => c.status === 'wrong')).toEqual([]);
      expect(r.candidates.filter((c) => c.status === 'ok').length).toBeGreaterThan(2);
      const layer = layers.find((l) => l.node === r.node)!;
      const plan = await compile(dev, layer.graph, { tuning: table });
      try {
        expect(plan.tuning.used).toBe(1);
      } finally {
        plan.dispose();
      }
    }
  }, 120_000);
});

describe('tuner and the half-precision variants', () => {
  it('offers f16 where the adapter has shader-f16 and never picks one that breaks the tolerance', async () => {
    const dev = await testDevice();
    // Pretend the adapter has shader-f16: its tune space then lists both precisions. f16=all
    // cannot build here (no shader-f16 on SwiftShader), and f16=w runs but breaks the
    // tolerance: weights 1000 + r (r in [0.1, 0.4)) against 1000 cancel to r, and halves near
    // 1000 are 0.5 apart, so the rounded weights move each output by up to 0.25 of ≈ 0.4.
    const f16Dev = { ...dev, info: { ...dev.info, shaderF16: true } };
    const g = new Graph();
    g.input('x', [8, 2]);
    const w = new Float32Array(16);
    for (let n = 0; n < 8; n++) [w[n], w[8 + n]] = [1000 + 0.1 + 0.04 * n, 1000];
    g.constant('w', [2, 8], w);
    g.markOutputs(g.op('matmul', ['x', 'w'], {}, 'fc'));
    const x = new Float32Array(16);
    for (let m = 0; m < 8; m++) [x[2 * m], x[2 * m + 1]] = [1 + m, -(1 + m)];
    const layer: Layer = {
      model: 'test',
      node: 'fc',
      op: 'matmul',
      models: ['test'],
      count: 1,
      shape: '[8,2]x[2,8]',
      graph: g,
      feeds: { x },
    };
    const table = new TuningTable(adapterKey(dev.info));
    const [row] = await tuneLayers(f16Dev, [layer], table, { reps: 1, minGain: 0 });
    const status = Object.fromEntries(row.candidates.map((c) => [c.prefer, c.status]));
    expect(status['reg,tile=8x8,f16=w']).toBe('wrong');
    expect(status['reg,tile=8x16,pk,f16=w']).toBe('wrong');
    if (!dev.info.shaderF16) expect(status['reg,tile=8x8,f16=all']).toBe('failed');
    expect(row.best).not.toContain('f16');
    // The same weights at f32 are right: the check is what keeps f16 out, not the shapes.
    expect(status['reg,tile=8x8,pk']).toBe('ok');
  }, 120_000);
  it('leaves workgroup-memory tilings out of the tune spaces on a CPU adapter', async () => {
    const { info } = await testDevice();
    const mm = (cpuAdapter: boolean) =>
      OPS.get('matmul')!.tuneSpace!(
        {},
        [
          [64, 64],
          [64, 64],
        ],
        { limits: info.limits, cpuAdapter },
      )!.candidates;
    expect(mm(false).some((v) => v.includes('wg=16x16'))).toBe(true);
    expect(mm(true).some((v) => v.includes('wg=16x16'))).toBe(false);
    const conv = (cpuAdapter: boolean) =>
      OPS.get('conv2d')!.tuneSpace!(
        {},
        [
          [1, 8, 8, 64],
          [1, 1, 64, 64],
        ],
        { limits: info.limits, cpuAdapter },
      )!.candidates;
    expect(conv(false).some((v) => v.includes('wgmem'))).toBe(true);
    expect(conv(true).some((v) => v.includes('wgmem'))).toBe(false);
    const dw = (cpuAdapter: boolean) =>
      OPS.get('conv2d')!.tuneSpace!(
        { groups: 8, pad: [1, 1, 1, 1] },
        [
          [1, 8, 8, 8],
          [3, 3, 1, 8],
        ],
        {
          limits: info.limits,
          cpuAdapter,
        },
      )!.candidates;
    expect(dw(false)).toContain('wgmem');
    expect(dw(true)).not.toContain('wgmem');
    expect(isCpuAdapter(info)).toBe(info.architecture === 'swiftshader');
  });
});

describe('tuneModels', () => {
  it('tunes a whole model, then checks it whole: a table that does not help is reverted to the heuristics', async () => {
    const dev = await testDevice();
    const r = await tuneModels(dev, { models: ['resnet18'], size: 32, batch: 1, reps: 1, checkRuns: 1 });
    expect(r.rows.length).toBeGreaterThan(5);
    expect(r.checks).toHaveLength(1);
    const c = r.checks[0];
    expect(c.model).toBe('resnet18');
    expect(c.tuned_ms).toBeGreaterThan(0);
    expect(c.heuristic_ms).toBeGreaterThan(0);
    const layers = Object.values(r.file.adapters[r.adapter].layers);
    expect(layers.length).toBe(r.rows.length);
    if (!c.kept) expect(layers.every((l) => l.prefer === '')).toBe(true);
  }, 300_000);
});
