// Kernel benchmarks on model layer shapes: layer collection and deduplication on MobileNetV2 at
// 32×32, then validate-and-time on a handful of its layers against a quick roofline. A fake op
// whose kernel disagrees with its reference shows that a wrong kernel is flagged, not timed as fine.
// Validation tolerance (bench/kernels.ts): max|Δ| ≤ 1e-3·max|ref| + 1e-4 over the output.

import { beforeAll, describe, expect, it } from 'vitest';
import {
  ATOL,
  HEAVY_OPS,
  type Layer,
  RTOL,
  benchKernels,
  collectLayers,
  LAUNCH_FACTOR,
  formatKernelTable,
  placeOnRoofline,
} from '../../bench/kernels.js';
import { type Roofline, measureRoofline } from '../../bench/roofline.js';
import type { Device } from '../../engine/device.js';
import { Graph } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import { layerKey } from '../../engine/tuning.js';
import { OPS, registerOp } from '../../kernels/index.js';
import { type KernelFamily, type OpDef, ceilDiv, grid, input, makeDispatch, output } from '../../kernels/kernel.js';
import { loadModel } from '../../models/index.js';
import { testDevice } from '../helpers.js';

let device: Device;
let roofline: Roofline;
let layers: Layer[];

beforeAll(async () => {
  device = await testDevice();
  roofline = await measureRoofline(device, { scale: 0.02 });
  layers = await collectLayers(['mobilenet_v2'], { size: 32 });
});

describe('collectLayers', () => {
  it('keeps one single-node graph per distinct heavy node of MobileNetV2, with counts', async () => {
    const { graph } = optimize((await loadModel('mobilenet_v2', { weights: 'random', size: 32 })).graph);
    const heavy = graph.nodes.filter((n) => HEAVY_OPS.has(n.op));
    expect(layers.reduce((a, l) => a + l.count, 0)).toBe(heavy.length);
    expect(layers.length).toBeLessThan(heavy.length);
    // The repeated inverted-residual blocks share shapes.
    expect(layers.some((l) => l.count > 1)).toBe(true);
    expect(new Set(layers.map((l) => l.op))).toEqual(new Set(['conv2d', 'global_avgpool', 'matmul']));
    expect(layers.some((l) => l.shape.includes(' g'))).toBe(true); // depthwise convs are there

    const keys = new Set<string>();
    for (const l of layers) {
      expect(l.model).toBe('mobilenet_v2');
      expect(heavy.map((n) => n.name)).toContain(l.node);
      expect(l.graph.nodes).toHaveLength(1);
      const n = l.graph.nodes[0];
      expect(n.name).toBe(l.node);
      const kinds = n.inputs.map((x) => l.graph.value(x).kind);
      // The activation (and a fused residual, 4th) is a graph input; weights and biases stay constants.
      expect(kinds[0]).toBe('input');
      if (n.op === 'conv2d' || n.op === 'matmul') {
        expect(kinds.slice(1, 3).every((k) => k === 'const')).toBe(true);
        expect(kinds.slice(3).every((k) => k === 'input')).toBe(true);
      }
      // One layer per tuning-table key: the key the tuner stores its choice under.
      const key = layerKey(
        n.op,
        n.attrs,
        n.inputs.map((x) => l.graph.shape(x)),
      );
      expect(keys.has(key), `duplicate layer ${l.node}`).toBe(false);
      keys.add(key);
    }
  });
});

describe('placeOnRoofline', () => {
  // A made-up adapter: 30 GFLOP/s, 2 GB/s (ridge 15 flop/B), an empty dispatch 50 µs.
  const r: Roofline = {
    fmaGflops: 30,
    copyGBps: 2,
    launchUs: 50,
    timing: 'timestamp',
    fmaMs: 1,
    copyMs: 1,
    copyBytes: 1,
  };

  it('names the FMA peak share of a compute-bound layer', () => {
    // 6 GFLOP in 1 s at AI 60: 6 GFLOP/s = 20% of 30.
    const p = placeOnRoofline({ ms: 1000, flops: 6e9, bytes: 1e8 }, r);
    expect(p.fraction_of_fma_peak).toBeCloseTo(0.2, 9);
    expect(p.fraction_of_roofline).toBeCloseTo(0.2, 9);
    expect(p.limit).toBe('compute-bound at AI 60.0 flop/B: 20.0% of FMA peak');
  });

  it('measures a memory-bound layer against AI × bandwidth', () => {
    // AI 1: the roofline allows 2 GFLOP/s; 1e8 flops and bytes in 100 ms = 1 GFLOP/s, 1 GB/s.
    const p = placeOnRoofline({ ms: 100, flops: 1e8, bytes: 1e8 }, r);
    expect(p.fraction_of_fma_peak).toBeCloseTo(1 / 30, 9);
    expect(p.fraction_of_roofline).toBeCloseTo(0.5, 9);
    expect(p.limit).toBe('memory-bound at AI 1.00 flop/B (ridge 15.0): 50.0% of copy bandwidth');
    // No flops at all (a copy-like op): bandwidth share only.
    const q = placeOnRoofline({ ms: 100, flops: 0, bytes: 1e8 }, r);
    expect(q.fraction_of_fma_peak).toBeUndefined();
    expect(q.fraction_of_roofline).toBeCloseTo(0.5, 9);
    expect(q.limit).toMatch(/^memory-bound at no flops/);
  });

  it('calls a layer within a few empty dispatches launch-bound', () => {
    const p = placeOnRoofline({ ms: 0.08, flops: 6e6, bytes: 1e5 }, r);
    expect(LAUNCH_FACTOR * 50).toBeGreaterThan(80);
    expect(p.limit).toBe('launch overhead: 80 µs, below 100 µs (2× an empty dispatch)');
    expect(placeOnRoofline({ ms: 0, flops: 6e6, bytes: 1e5 }, r).limit).toBe('launch overhead: below one timer tick');
    // Without a launch measurement (an older roofline) the same layer is placed by its AI.
    expect(placeOnRoofline({ ms: 0.08, flops: 6e6, bytes: 1e5 }, { ...r, launchUs: undefined }).limit).toMatch(
      /^compute-bound/,
    );
  });
});

describe('benchKernels', () => {
  it('validates and times a handful of MobileNetV2 layers', async () => {
    const pick = [
      layers.find((l) => l.node === 'features.0.0')!, // stem 3×3/2 conv
      layers.find((l) => l.op === 'conv2d' && / g\d+/.test(l.shape))!, // depthwise
      layers.find((l) => l.node === 'features.3.conv.0.0')!, // pointwise, twice in the model
      layers.find((l) => l.op === 'matmul')!,
    ];
    expect(pick.every(Boolean)).toBe(true);
    const lines: string[] = [];
    const rows = await benchKernels(device, pick, { roofline, reps: 1, log: (s) => lines.push(s) });
    expect(rows).toHaveLength(pick.length);
    expect(lines).toHaveLength(pick.length);
    rows.forEach((r, i) => {
      const what = `${r.node} ${r.shape}`;
      expect(r.node).toBe(pick[i].node);
      expect(r.count).toBe(pick[i].count);
      expect(r.validated.ok, `${what}: ${JSON.stringify(r.validated)}`).toBe(true);
      expect(r.validated.max_abs_diff).toBeLessThanOrEqual(RTOL * r.validated.max_abs_ref + ATOL);
      expect(r.ms, what).toBeGreaterThan(0);
      if (r.op === 'conv2d') expect(r.gflops, what).toBeGreaterThan(0);
      expect(r.gbps, what).toBeGreaterThan(0);
      // SwiftShader's timestamps are coarse, so a tiny layer can look faster than the peak.
      expect(r.fraction_of_peak, what).toBeGreaterThan(0);
      expect(r.fraction_of_peak, what).toBeLessThan(5);
      // Every layer is placed: its share of the FMA peak and what is in the way.
      expect(r.limit, what).toMatch(/^(launch overhead|memory-bound at AI|compute-bound at AI)/);
      if (r.gflops !== undefined) expect(r.fraction_of_fma_peak, what).toBeCloseTo(r.gflops / roofline.fmaGflops, 6);
    });
    expect(roofline.launchUs).toBeGreaterThanOrEqual(0);
    // The family the model's plan runs: on a CPU adapter the shape-generic depthwise kernel (GENERIC_MAX_FLOPS).
    expect(rows.find((r) => r.op === 'conv2d' && / g\d+/.test(r.shape))!.family).toMatch(/^depthwise(-generic)?$/);
    expect(rows[2].count).toBeGreaterThan(1);

    const table = formatKernelTable(rows);
    expect(table.split('\n')).toHaveLength(rows.length + 3);
    expect(table).toContain('features.0.0');
    expect(table).toContain(`${rows.length} layers`);
    expect(table).toContain(`${rows.length} validated ok`);
    expect(table).toContain('in the way');
  });

  it('flags a kernel that disagrees with its reference and carries on', async () => {
    // The kernel computes y = 2x; the reference claims y = 2x + 0.01, well past the tolerance.
    const family: KernelFamily<{ n: number; gridX: number }> = {
      name: 'bench_test_double',
      wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [n]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [n]
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * ${c.gridX}u) * 64u + lid;
  if (i < ${c.n}u) { y[i] = 2.0 * x[i]; }
}`,
    };
    const wrong: OpDef = {
      op: 'bench_test_wrong',
      arity: [1, 1],
      infer: (_a, [x]) => [x],
      lower(_a, [x], _o, ctx) {
        const n = x.reduce((a, b) => a * b, 1);
        const g = grid(ceilDiv(n, 64), ctx.limits.maxComputeWorkgroupsPerDimension);
        return {
          dispatches: [makeDispatch(family, { n, gridX: g[0] }, g, [input(0), output(0)], { flops: n, bytes: 8 * n })],
        };
      },
      ref: (_a, [x]) => [{ shape: x.shape, data: x.data.map((v) => 2 * v + 0.01) }],
    };
    if (!OPS.has(wrong.op)) registerOp(wrong);
    const g = new Graph();
    g.markOutputs(g.op('bench_test_wrong', [g.input('x', [1, 64, 64, 64])], {}, 'fake'));
    const fake: Layer = {
      model: 'test',
      node: 'fake',
      op: 'bench_test_wrong',
      models: ['test'],
      count: 1,
      shape: '[1,64,64,64]',
      graph: g,
      feeds: {},
    };
    const good = layers.find((l) => l.op === 'global_avgpool')!;

    const rows = await benchKernels(device, [fake, good], { roofline, reps: 1 });
    expect(rows[0].validated.ok).toBe(false);
    expect(rows[0].validated.max_abs_ref).toBeGreaterThan(1);
    expect(rows[0].validated.max_abs_diff).toBeCloseTo(0.01, 4);
    expect(rows[0].ms).toBeGreaterThan(0); // still timed and reported
    // Global average pooling of [1,1,1,1280]: right, though shorter than one timestamp tick (ms may read 0).
    expect(rows[1].validated.ok).toBe(true);
    expect(rows[1].ms).toBeGreaterThanOrEqual(0);
    expect(formatKernelTable(rows)).toMatch(/FAIL/);

    // Without validation nothing is claimed: ok false, marked skipped.
    const [unchecked] = await benchKernels(device, [good], { roofline, reps: 1, validate: false });
    expect(unchecked.validated).toMatchObject({ ok: false, skipped: true });
    expect(formatKernelTable([unchecked])).toContain('1 not validated');
  });
});
