// The adapter's measured peak: fp32 FMA throughput and copy bandwidth, from kernels built to
// reach them. They run as ops through the executor (registered here, not in kernels/: they
// compute nothing a model needs), timed by the executor's profiler.
//
// fma:  each invocation keeps 8 independent vec4 accumulators in registers and applies
//       `iters` rounds of acc = fma(acc, a, b) to all of them: 64 flops per round, no memory
//       traffic beyond one load and one store. Independent chains hide FMA latency.
// copy: y = x as vec4, one per invocation: 2 × bytes moved.

import type { Device } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { OPS, registerOp } from '../kernels/index.js';
import { type KernelFamily, type OpDef, ceilDiv, grid, input, makeDispatch, output } from '../kernels/kernel.js';

interface FmaConfig { iters: number; wg: number; gridX: number; n: number }

const fmaFamily: KernelFamily<FmaConfig> = {
  name: 'roofline_fma',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;        // input  [n] seeds
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;  // output [n] sums (keeps the work alive)

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;
  if (i >= ${c.n}u) { return; }
  let s = x[i];
  let a = s * 0.999;
  let b = s * 0.001;
  var a0 = s; var a1 = s + 1.0; var a2 = s + 2.0; var a3 = s + 3.0;
  var a4 = s + 4.0; var a5 = s + 5.0; var a6 = s + 6.0; var a7 = s + 7.0;
  for (var k = 0u; k < ${c.iters}u; k++) {
    a0 = fma(a0, a, b); a1 = fma(a1, a, b); a2 = fma(a2, a, b); a3 = fma(a3, a, b);
    a4 = fma(a4, a, b); a5 = fma(a5, a, b); a6 = fma(a6, a, b); a7 = fma(a7, a, b);
  }
  y[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}`,
};

interface CopyConfig { wg: number; gridX: number; n: number }

const copyFamily: KernelFamily<CopyConfig> = {
  name: 'roofline_copy',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;        // input  [n]
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;  // output [n]

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;
  if (i < ${c.n}u) { y[i] = x[i]; }
}`,
};

const WG = 64;

const fmaOp: OpDef<{ iters: number }> = {
  op: 'roofline_fma',
  arity: [1, 1],
  infer: (_a, [x]) => [x],
  lower(a, [x], _o, ctx) {
    const n = x[0] / 4;
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    return { dispatches: [makeDispatch(fmaFamily, { iters: a.iters, wg: WG, gridX: g[0], n }, g, [input(0), output(0)], { flops: n * a.iters * 64 })] };
  },
  ref: (_a, [x]) => [x],
};

const copyOp: OpDef = {
  op: 'roofline_copy',
  arity: [1, 1],
  infer: (_a, [x]) => [x],
  lower(_a, [x], _o, ctx) {
    const n = x[0] / 4;
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    return { dispatches: [makeDispatch(copyFamily, { wg: WG, gridX: g[0], n }, g, [input(0), output(0)], { bytes: 2 * 16 * n })] };
  },
  ref: (_a, [x]) => [x],
};

if (!OPS.has(fmaOp.op)) registerOp(fmaOp);
if (!OPS.has(copyOp.op)) registerOp(copyOp);

export interface Roofline {
  /** Best of `reps` runs. */
  fmaGflops: number;
  copyGBps: number;
  /** How the times were taken: timestamp queries or CPU wall time per dispatch. */
  timing: 'timestamp' | 'cpu-wall';
  fmaMs: number;
  copyMs: number;
  copyBytes: number;
}

async function best(device: Device, op: string, attrs: Record<string, unknown>, elems: number, reps: number) {
  const g = new Graph();
  g.input('x', [elems]);
  g.markOutputs(g.op(op, ['x'], attrs));
  const plan = await compile(device, g);
  const x = new Float32Array(elems).map((_, i) => (i % 97) / 97);
  let ms = Infinity, mode: Roofline['timing'] = 'timestamp', work = 0;
  try {
    for (let r = 0; r < reps; r++) {
      const { profile } = await plan.run({ x }, { profile: true, outputs: [] });
      const e = profile!.entries[0];
      mode = profile!.mode;
      if (e.ms > 0 && e.ms < ms) { ms = e.ms; work = e.flops ?? e.bytes ?? 0; }
    }
  } finally {
    plan.dispose();
  }
  return { ms, mode, work };
}

/**
 * Measure the adapter. `scale` shrinks the work (1 = about 2 GFLOP and 64 MiB; SwiftShader
 * wants ~0.1 for a quick run).
 */
export async function measureRoofline(device: Device, o: { scale?: number; reps?: number } = {}): Promise<Roofline> {
  const scale = o.scale ?? 1, reps = o.reps ?? 3;
  const threads = Math.max(1024, Math.round((1 << 16) * Math.min(1, scale * 4)));
  const iters = Math.max(16, Math.round(512 * Math.min(1, scale * 4)));
  const fma = await best(device, 'roofline_fma', { iters }, threads * 4, reps);
  const copyElems = Math.max(1 << 16, Math.round((16 << 20) * scale / 4) * 4);
  const copy = await best(device, 'roofline_copy', {}, copyElems, reps);
  return {
    fmaGflops: fma.work / fma.ms / 1e6, copyGBps: copy.work / copy.ms / 1e6,
    timing: fma.mode, fmaMs: fma.ms, copyMs: copy.ms, copyBytes: copy.work,
  };
}
