// The adapter's measured peak: fp32 FMA throughput and copy bandwidth, from kernels built to
// reach them. They run as ops through the executor (registered by this file when it builds a
// graph with them, not listed in kernels/: they compute nothing a model needs), timed by the
// executor's profiler.
//
// fma:  each invocation keeps `accs` independent vec4 accumulators in registers and applies
//       `iters` rounds of acc = acc·a + b to each of them `unroll` times (as fma() or as a
//       multiply and an add, `op`): 8·accs·unroll flops per round, no memory traffic beyond one
//       load and one store. Independent chains hide latency; unrolling hides the loop's cost,
//       which on SwiftShader (lane masks kept per iteration) is several FMAs' worth. Several
//       shapes are tried and the fastest counts, so the peak is not understated.
// copy: y = x as vec4, one per invocation: 2 × bytes moved.
// load: each invocation reads 4 vec4s per round from addresses that differ per invocation (as
//       a register-blocked GEMM's operand loads do) and sums them: bytes loaded per second.
//       On SwiftShader such a load is a per-lane gather costing on the order of ten vec4 FMAs,
//       which bounds any kernel that loads each operand per invocation; the report shows it.
// launch: the copy on 1024 floats, one workgroup's worth of work: what a dispatch costs however
//       little it does (the mean over many reads, as SwiftShader's timer ticks every 65.5 µs). A
//       layer within a small multiple of it is launch-bound (bench/kernels.ts classifies).

import type { Device } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { OPS, registerOp } from '../kernels/index.js';
import { type KernelFamily, type OpDef, ceilDiv, grid, input, makeDispatch, output } from '../kernels/kernel.js';

interface FmaConfig {
  iters: number;
  wg: number;
  gridX: number;
  n: number;
  accs: number;
  unroll: number;
  op: 'fma' | 'muladd';
}

const fmaFamily: KernelFamily<FmaConfig> = {
  name: 'roofline_fma',
  wgsl(c) {
    const A = Array.from({ length: c.accs }, (_, i) => i);
    const step = (i: number) => (c.op === 'fma' ? `a${i} = fma(a${i}, a, b);` : `a${i} = a${i} * a + b;`);
    const round = Array.from({ length: c.unroll }, () => `    ${A.map(step).join(' ')}`).join('\n');
    return `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;        // input  [n] seeds
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;  // output [n] sums (keeps the work alive)

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;
  if (i >= ${c.n}u) { return; }
  let s = x[i];
  let a = s * 0.999;
  let b = s * 0.001;
  ${A.map((k) => `var a${k} = s + ${k}.0;`).join(' ')}
  for (var k = 0u; k < ${c.iters}u; k++) {
${round}
  }
  y[i] = ${A.map((k) => `a${k}`).join(' + ')};
}`;
  },
};

/** The FMA kernel shapes tried; the fastest gives the peak. */
const FMA_SHAPES: Pick<FmaConfig, 'accs' | 'unroll' | 'op'>[] = [
  { accs: 8, unroll: 1, op: 'fma' },
  { accs: 4, unroll: 4, op: 'fma' },
  { accs: 4, unroll: 4, op: 'muladd' },
  { accs: 8, unroll: 4, op: 'muladd' },
];

interface CopyConfig {
  wg: number;
  gridX: number;
  n: number;
}

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

interface LoadConfig {
  iters: number;
  wg: number;
  gridX: number;
  n: number;
  mask: number;
}

const loadFamily: KernelFamily<LoadConfig> = {
  name: 'roofline_load',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;        // input  [n] (n a power of two)
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;  // output [n] sums (keeps the loads alive)

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;
  if (i >= ${c.n}u) { return; }
  var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0);
  for (var k = 0u; k < ${c.iters}u; k++) {
    let o = i * 37u + k * 4u;
    s0 += x[o & ${c.mask}u]; s1 += x[(o + 1u) & ${c.mask}u]; s0 += x[(o + 2u) & ${c.mask}u]; s1 += x[(o + 3u) & ${c.mask}u];
  }
  y[i] = s0 + s1;
}`,
};

const WG = 64;

const fmaOp: OpDef<{ iters: number; shape: number }> = {
  op: 'roofline_fma',
  arity: [1, 1],
  infer: (_a, [x]) => [x],
  lower(a, [x], _o, ctx) {
    const n = x[0] / 4;
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const sh = FMA_SHAPES[a.shape];
    return {
      dispatches: [
        makeDispatch(fmaFamily, { iters: a.iters, wg: WG, gridX: g[0], n, ...sh }, g, [input(0), output(0)], {
          flops: n * a.iters * 8 * sh.accs * sh.unroll,
        }),
      ],
    };
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
    return {
      dispatches: [
        makeDispatch(copyFamily, { wg: WG, gridX: g[0], n }, g, [input(0), output(0)], { bytes: 2 * 16 * n }),
      ],
    };
  },
  ref: (_a, [x]) => [x],
};

const loadOp: OpDef<{ iters: number }> = {
  op: 'roofline_load',
  arity: [1, 1],
  infer: (_a, [x]) => [x],
  lower(a, [x], _o, ctx) {
    const n = x[0] / 4;
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    return {
      dispatches: [
        makeDispatch(loadFamily, { iters: a.iters, wg: WG, gridX: g[0], n, mask: n - 1 }, g, [input(0), output(0)], {
          bytes: n * a.iters * 4 * 16,
        }),
      ],
    };
  },
  ref: (_a, [x]) => [x],
};

const ROOFLINE_OPS: OpDef[] = [fmaOp, copyOp, loadOp];
export type RooflineOp = 'roofline_fma' | 'roofline_copy' | 'roofline_load';

/** A graph running one roofline op on a flat input `x` of `elems` floats. It registers the roofline ops
 *  first (once), so whoever builds the graph here can run it, whatever was imported before. */
export function rooflineGraph(op: RooflineOp, attrs: Record<string, unknown>, elems: number): Graph {
  for (const d of ROOFLINE_OPS) if (!OPS.has(d.op)) registerOp(d);
  const g = new Graph();
  g.input('x', [elems]);
  g.markOutputs(g.op(op, ['x'], attrs));
  return g;
}

export interface Roofline {
  /** Best of `reps` runs. */
  fmaGflops: number;
  copyGBps: number;
  /** Lane-divergent vec4 loads per second, in GB/s (see the header); absent in files from before it was measured. */
  loadGBps?: number;
  /** How the times were taken: timestamp queries or CPU wall time per dispatch. */
  timing: 'timestamp' | 'cpu-wall';
  fmaMs: number;
  copyMs: number;
  copyBytes: number;
  /** GPU time of a near-empty dispatch in µs (see the header); absent in files from before it was measured. */
  launchUs?: number;
}

async function best(device: Device, op: RooflineOp, attrs: Record<string, unknown>, elems: number, reps: number) {
  const plan = await compile(device, rooflineGraph(op, attrs, elems));
  const x = new Float32Array(elems).map((_, i) => (i % 97) / 97);
  let ms = Infinity,
    mode: Roofline['timing'] = 'timestamp',
    work = 0;
  try {
    for (let r = 0; r < reps; r++) {
      const { profile } = await plan.run({ x }, { profile: true, outputs: [] });
      const e = profile!.entries[0];
      mode = profile!.mode;
      if (e.ms > 0 && e.ms < ms) {
        ms = e.ms;
        work = e.flops ?? e.bytes ?? 0;
      }
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
  const scale = o.scale ?? 1,
    reps = o.reps ?? 3;
  const threads = Math.max(1024, Math.round((1 << 16) * Math.min(1, scale * 4)));
  const iters = Math.max(16, Math.round(512 * Math.min(1, scale * 4)));
  // Every shape does the same number of flops: `iters` scaled down by its flops per round.
  let fma = { ms: Infinity, mode: 'timestamp' as Roofline['timing'], work: 0 };
  for (const [shape, sh] of FMA_SHAPES.entries()) {
    const r = await best(
      device,
      'roofline_fma',
      { iters: Math.max(4, Math.round((iters * 8) / (sh.accs * sh.unroll))), shape },
      threads * 4,
      reps,
    );
    if (r.work / r.ms > fma.work / fma.ms || fma.work === 0) fma = r;
  }
  const copyElems = Math.max(1 << 16, Math.round(((16 << 20) * scale) / 4) * 4);
  const copy = await best(device, 'roofline_copy', {}, copyElems, reps);
  const load = await best(device, 'roofline_load', { iters: Math.max(8, Math.round(iters / 4)) }, 1 << 18, reps);
  const launchUs = await meanLaunchUs(device);
  return {
    fmaGflops: fma.work / fma.ms / 1e6,
    copyGBps: copy.work / copy.ms / 1e6,
    loadGBps: load.work / load.ms / 1e6,
    timing: fma.mode,
    fmaMs: fma.ms,
    copyMs: copy.ms,
    copyBytes: copy.work,
    launchUs,
  };
}

/** Reads of the near-empty dispatch averaged: most read 0 or one timer tick (see the header). */
const LAUNCH_READS = 16;

async function meanLaunchUs(device: Device): Promise<number> {
  const plan = await compile(device, rooflineGraph('roofline_copy', {}, 1024));
  const x = new Float32Array(1024);
  let total = 0;
  try {
    await plan.run({ x }, { outputs: [] });
    for (let r = 0; r < LAUNCH_READS; r++) {
      const { profile } = await plan.run({ x }, { profile: true, outputs: [] });
      total += profile!.entries[0].ms;
    }
  } finally {
    plan.dispose();
  }
  return (1000 * total) / LAUNCH_READS;
}
