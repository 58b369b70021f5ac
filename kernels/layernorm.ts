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
// The variant helpers at the bottom (ROW_VARIANT_FIELDS, rowVariant) are shared with groupnorm.ts
// and softmax.ts, which reduce rows and groups the same way; the WGSL they share (rowMain, rowLoop,
// foldWgsl, workgroupReduceWgsl) is in wgsl.ts.

import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type OpDef,
  activationRef,
  activationWgsl,
  ceilDiv,
  expectVector,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import {
  type RowMapping,
  actTWgsl,
  floorPow2,
  foldWgsl,
  rowLanes,
  rowLoop,
  rowMain,
  vecType,
  workgroupReduceWgsl,
} from './wgsl.js';
import { type VariantField, type VariantSchema, defineVariant } from './variant.js';

export interface LayerNormAttrs {
  eps?: number;
  act?: Activation;
}

export type RowMode = 'thread' | 'workgroup';

interface LayerNormConfig {
  rows: number;
  D: number;
  eps: number;
  act: Activation;
  mode: RowMode;
  /** Workgroup size: rows per workgroup (thread mode) or reduction width (workgroup mode). */
  wg: number;
  vec4: boolean;
  gridX: number;
}

const layernorm: KernelFamily<LayerNormConfig> = {
  name: 'layernorm',
  wgsl(c) {
    const T = vecType(c.vec4);
    const m: RowMapping = { mode: c.mode, wg: c.wg, rows: c.rows, loads: c.vec4 ? c.D / 4 : c.D, gridX: c.gridX };
    const loop = rowLoop(m);
    return `
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
${foldWgsl(c.vec4)}
${workgroupReduceWgsl(rowLanes(m))}
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.rows}, ${c.D}] (rows = all leading dims)
@group(0) @binding(1) var<storage, read> gamma: array<${T}>;    // input  [${c.D}]
@group(0) @binding(2) var<storage, read> beta: array<${T}>;     // input  [${c.D}]
@group(0) @binding(3) var<storage, read_write> y: array<${T}>;  // output [${c.rows}, ${c.D}]

${rowMain(m)}
  let shift = x[base]${c.vec4 ? '.x' : ''};
  var s1 = ${T}(0.0);
  ${loop} { s1 += x[base + k] - shift; }
  let mu = wg_sum(hsum(s1), lid) / ${f32Lit(c.D)};
  var s2 = ${T}(0.0);
  ${loop} {
    let d = (x[base + k] - shift) - mu;
    s2 += d * d;
  }
  let rstd = 1.0 / sqrt(wg_sum(hsum(s2), lid) / ${f32Lit(c.D)} + ${f32Lit(c.eps)});
  ${loop} {
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
      rows,
      D,
      eps: a.eps ?? 1e-6,
      act: a.act ?? 'none',
      mode,
      wg,
      vec4: D % 4 === 0,
      gridX: g[0],
    };
    const n = rows * D;
    return {
      dispatches: [
        makeDispatch(layernorm, cfg, g, [input(0), input(1), input(2), output(0)], {
          flops: 8 * n,
          bytes: 4 * (2 * n + 2 * D),
        }),
      ],
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
// Variant choice shared by the row and group reductions (layernorm, softmax, group_norm); their
// WGSL helpers (row loops, folds, workgroup reductions) are in wgsl.ts.

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

/**
 * Row-reduction variant: ctx.prefer's choice for `schema`'s family if given, else one invocation per row, except for a
 * handful of long rows, which would leave all but a few lanes idle. On SwiftShader thread mode
 * measured 5-100x faster than a 64-lane workgroup per row (ViT-B's [197,768] layernorm: ~3 ms
 * vs ~50 ms; attention's [2364,197] softmax: ~25 ms vs ~560 ms).
 * The tree reduction needs a power-of-two width, capped by the device's invocations per workgroup.
 */
export function rowVariant(
  ctx: LowerContext,
  schema: VariantSchema<RowVariant>,
  rows: number,
  len: number,
): { mode: RowMode; wg: number } {
  const p = schema.of(ctx.prefer) ?? {};
  const mode = p.mode ?? (rows < 16 && len >= 1024 ? 'workgroup' : 'thread');
  const cap = ctx.limits.maxComputeInvocationsPerWorkgroup;
  let wg = Math.max(1, Math.min(p.wg ?? 64, cap));
  if (mode === 'workgroup') wg = floorPow2(p.wg !== undefined ? wg : Math.min(wg, len));
  return { mode, wg: Math.max(1, wg) };
}
