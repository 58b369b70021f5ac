// LayerNorm over the last axis: x [..., D], gamma [D], beta [D] -> y [..., D],
// y = (x - mean) / sqrt(var + eps) * gamma + beta, then an optional fused activation.
// var is the biased (population) variance, as torch.nn.LayerNorm.
//
// Numerics: two passes per row, and both are shifted by the row's first element K, which is
// exact to subtract from nearby values (Sterbenz). Pass 1 sums (x - K) to get mu, the mean's
// offset from K; pass 2 sums ((x - K) - mu)²; pass 3 writes ((x - K) - mu) * rstd. The mean is
// never rounded to f32 at its own magnitude, so rows like 1000 + small noise stay accurate to
// a few ulp of the noise (E[x²] - E[x]² in f32 would lose every digit there).
//
// Mapping (config `mode`, chosen in lower() from ctx.prefer.layernorm, a RowVariant, e.g. 'thread' or
// 'workgroup,wg=64'):
//   thread    one invocation per row, `wg` rows per workgroup; no workgroup memory, no barriers
//             (what SwiftShader likes: registers and vec4 loads only).
//   workgroup one workgroup per row; its `wg` lanes stride over the row and the partial sums
//             meet in a tree reduction in workgroup memory (what real GPUs like for long rows).
// When D % 4 == 0 rows are read as vec4.
//
// The reduction helpers at the bottom (workgroupReduceWgsl, rowVariant) are shared with
// groupnorm.ts and softmax.ts, which reduce rows and groups the same way.

import {
  type Activation, type HostTensor, type KernelFamily, type LowerContext, type OpDef, type Shape,
  activationRef, activationWgsl, ceilDiv, f32Lit, fmtShape, grid, input, makeDispatch, numel, output, ShapeError,
} from './kernel.js';
import { type VariantField, type VariantSchema, defineVariant } from './variant.js';

export interface LayerNormAttrs { eps?: number; act?: Activation }

export type RowMode = 'thread' | 'workgroup';

interface LayerNormConfig {
  rows: number; D: number; eps: number; act: Activation;
  mode: RowMode;
  /** Workgroup size: rows per workgroup (thread mode) or reduction width (workgroup mode). */
  wg: number;
  vec4: boolean; gridX: number;
}

const layernorm: KernelFamily<LayerNormConfig> = {
  name: 'layernorm',
  wgsl(c) {
    const T = c.vec4 ? 'vec4<f32>' : 'f32';
    const DV = c.vec4 ? c.D / 4 : c.D; // row length in loads
    const thread = c.mode === 'thread';
    const lanes = thread ? 1 : c.wg;
    return `
${activationWgsl(c.act)}
${rowHelpersWgsl(c.vec4)}
${workgroupReduceWgsl(lanes)}
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.rows}, ${c.D}] (rows = all leading dims)
@group(0) @binding(1) var<storage, read> gamma: array<${T}>;    // input  [${c.D}]
@group(0) @binding(2) var<storage, read> beta: array<${T}>;     // input  [${c.D}]
@group(0) @binding(3) var<storage, read_write> y: array<${T}>;  // output [${c.rows}, ${c.D}]

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${thread ? `(wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid` : `wid.x + wid.y * ${c.gridX}u`};
  let lane = ${thread ? '0u' : 'lid'};
  if (row >= ${c.rows}u) { return; }  // uniform per workgroup in workgroup mode
  let base = row * ${DV}u;
  let shift = x[base]${c.vec4 ? '.x' : ''};
  var s1 = ${T}(0.0);
  for (var k = lane; k < ${DV}u; k += ${lanes}u) { s1 += x[base + k] - shift; }
  let mu = wg_sum(hsum(s1), lid) / ${f32Lit(c.D)};
  var s2 = ${T}(0.0);
  for (var k = lane; k < ${DV}u; k += ${lanes}u) {
    let d = (x[base + k] - shift) - mu;
    s2 += d * d;
  }
  let rstd = 1.0 / sqrt(wg_sum(hsum(s2), lid) / ${f32Lit(c.D)} + ${f32Lit(c.eps)});
  for (var k = lane; k < ${DV}u; k += ${lanes}u) {
    y[base + k] = actT(((x[base + k] - shift) - mu) * rstd * gamma[k] + beta[k]);
  }
}`;
  },
};

export const layerNormOp: OpDef<LayerNormAttrs> = {
  op: 'layernorm',
  arity: [3, 3],
  infer(_a, [x, gamma, beta]) {
    if (x.length < 1) throw new ShapeError(`layernorm input must have rank >= 1, got ${fmtShape(x)}`);
    const D = x[x.length - 1];
    expectVector('gamma', gamma, D, x);
    expectVector('beta', beta, D, x);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    const D = x[x.length - 1];
    const rows = numel(x) / D;
    const { mode, wg } = rowVariant(ctx, layernormVariant, rows, D);
    const count = mode === 'thread' ? ceilDiv(rows, wg) : rows;
    const g = grid(count, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: LayerNormConfig = {
      rows, D, eps: a.eps ?? 1e-6, act: a.act ?? 'none', mode, wg, vec4: D % 4 === 0, gridX: g[0],
    };
    const n = rows * D;
    return {
      dispatches: [makeDispatch(layernorm, cfg, g, [input(0), input(1), input(2), output(0)], {
        flops: 8 * n, bytes: 4 * (2 * n + 2 * D),
      })],
    };
  },
  tuneSpace: () => ({ family: 'layernorm', candidates: ['thread', 'workgroup,wg=64', 'workgroup,wg=32'] }),
  ref(a, [x, gamma, beta]) {
    const D = x.shape[x.shape.length - 1];
    const rows = x.data.length / D;
    const eps = a.eps ?? 1e-6;
    const f = activationRef(a.act ?? 'none');
    const y = new Float32Array(x.data.length);
    for (let r = 0; r < rows; r++) {
      const o = r * D;
      let s = 0;
      for (let i = 0; i < D; i++) s += x.data[o + i];
      const mean = s / D;
      let v = 0;
      for (let i = 0; i < D; i++) v += (x.data[o + i] - mean) ** 2;
      const rstd = 1 / Math.sqrt(v / D + eps);
      for (let i = 0; i < D; i++) y[o + i] = f((x.data[o + i] - mean) * rstd * gamma.data[i] + beta.data[i]);
    }
    return [{ shape: [...x.shape], data: y } satisfies HostTensor];
  },
};

// ---------------------------------------------------------------------------------------------
// Shared by the row and group reductions (layernorm, softmax, group_norm).

/** Throws a ShapeError unless `s` is [len]; names the data shape it belongs to. */
export function expectVector(what: string, s: Shape, len: number, x: Shape): void {
  if (s.length !== 1 || s[0] !== len) {
    throw new ShapeError(`${what} must be [${len}] to match input ${fmtShape(x)}, got ${fmtShape(s)}`);
  }
}

/** ctx.prefer.layernorm and ctx.prefer.softmax: the mapping and the workgroup size; unset fields are the heuristic's. */
export interface RowVariant {
  mode?: RowMode;
  wg?: number;
}

export const ROW_VARIANT_FIELDS: readonly VariantField<RowVariant>[] = [
  { kind: 'enum', key: 'mode', values: ['thread', 'workgroup'], bare: true },
  { kind: 'int', key: 'wg', min: 1 },
];

export const layernormVariant = defineVariant<RowVariant>('layernorm', ROW_VARIANT_FIELDS);

/** Largest power of two <= n (n >= 1). */
export function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/**
 * Row-reduction variant: ctx.prefer's choice for `schema`'s family if given, else one invocation per row, except for a
 * handful of long rows, which would leave all but a few lanes idle. On SwiftShader thread mode
 * measured 5-100x faster than a 64-lane workgroup per row (ViT-B's [197,768] layernorm: ~3 ms
 * vs ~50 ms; attention's [2364,197] softmax: ~25 ms vs ~560 ms).
 * The tree reduction needs a power-of-two width, capped by the device's invocations per workgroup.
 */
export function rowVariant(ctx: LowerContext, schema: VariantSchema<RowVariant>, rows: number, len: number): { mode: RowMode; wg: number } {
  const p = schema.of(ctx.prefer) ?? {};
  const mode = p.mode ?? (rows < 16 && len >= 1024 ? 'workgroup' : 'thread');
  const cap = ctx.limits.maxComputeInvocationsPerWorkgroup;
  let wg = Math.max(1, Math.min(p.wg ?? 64, cap));
  if (mode === 'workgroup') wg = floorPow2(p.wg !== undefined ? wg : Math.min(wg, len));
  return { mode, wg: Math.max(1, wg) };
}

/** WGSL: `hsum`/`hmax` fold a loaded value (f32 or vec4) to f32, `actT` applies `act` to it. */
export function rowHelpersWgsl(vec4: boolean): string {
  return vec4
    ? `fn hsum(v: vec4<f32>) -> f32 { return (v.x + v.y) + (v.z + v.w); }
fn hmax(v: vec4<f32>) -> f32 { return max(max(v.x, v.y), max(v.z, v.w)); }
fn actT(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(act(v.x), act(v.y), act(v.z), act(v.w)); }`
    : `fn hsum(v: f32) -> f32 { return v; }
fn hmax(v: f32) -> f32 { return v; }
fn actT(v: f32) -> f32 { return act(v); }`;
}

/**
 * WGSL: `wg_sum(v, lid)` and `wg_max(v, lid)` combine one f32 per lane across a workgroup of
 * `lanes` (a power of two) by a tree in workgroup memory; every lane gets the result. With one
 * lane they are the identity and no workgroup memory or barrier is emitted. Call them from
 * uniform control flow only.
 */
export function workgroupReduceWgsl(lanes: number): string {
  if (lanes & (lanes - 1)) throw new Error(`reduction width ${lanes} is not a power of two`);
  if (lanes === 1) {
    return `fn wg_sum(v: f32, lid: u32) -> f32 { return v; }
fn wg_max(v: f32, lid: u32) -> f32 { return v; }`;
  }
  const tree = (name: string, combine: string) => `
fn ${name}(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${lanes / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = ${combine}; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();  // everyone has read red[0] before a later reduction overwrites it
  return r;
}`;
  return `var<workgroup> red: array<f32, ${lanes}>;${tree('wg_sum', 'red[lid] + red[lid + s]')}${tree('wg_max', 'max(red[lid], red[lid + s])')}`;
}
