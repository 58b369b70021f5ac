// Softmax over the last axis: x [..., L] -> y [..., L], y = exp(x - max) / Σ exp(x - max).
// Subtracting the row max first keeps exp() in range whatever the logits' size (exp(89) already
// overflows f32), and the largest term is exactly 1, so the sum is never 0.
//
// Mapping (config `mode`, from ctx.prefer.softmax, a RowVariant, e.g. 'thread' or 'workgroup,wg=64';
// see layernorm.ts for the shared heuristics, wgsl.ts for the shared row loop and reductions):
//   thread    one invocation per row, `wg` rows per workgroup; no workgroup memory, no barriers.
//   workgroup one workgroup per row; `wg` lanes stride over the row; max and sum meet in a
//             tree reduction in workgroup memory.
// Three passes over the row: max, Σ exp, write. When L % 4 == 0 rows are read as vec4.

import {
  type HostTensor,
  type KernelFamily,
  type OpDef,
  ceilDiv,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { ROW_VARIANT_FIELDS, type RowMode, type RowVariant, rowVariant } from './layernorm.js';
import { defineVariant } from './variant.js';
import { type RowMapping, foldWgsl, rowLanes, rowLoop, rowMain, vecType, workgroupReduceWgsl } from './wgsl.js';

export const softmaxVariant = defineVariant<RowVariant>('softmax', ROW_VARIANT_FIELDS);

export type SoftmaxAttrs = Record<string, never>;

interface SoftmaxConfig {
  rows: number;
  L: number;
  mode: RowMode;
  /** Workgroup size: rows per workgroup (thread mode) or reduction width (workgroup mode). */
  wg: number;
  vec4: boolean;
  gridX: number;
}

const softmax: KernelFamily<SoftmaxConfig> = {
  name: 'softmax',
  wgsl(c) {
    const T = vecType(c.vec4);
    const m: RowMapping = { mode: c.mode, wg: c.wg, rows: c.rows, loads: c.vec4 ? c.L / 4 : c.L, gridX: c.gridX };
    const loop = rowLoop(m);
    return `
${foldWgsl(c.vec4)}
${workgroupReduceWgsl(rowLanes(m))}
@group(0) @binding(0) var<storage, read> x: array<${T}>;        // input  [${c.rows}, ${c.L}] (rows = all leading dims)
@group(0) @binding(1) var<storage, read_write> y: array<${T}>;  // output [${c.rows}, ${c.L}]

${rowMain(m)}
  var m = ${T}(${f32Lit(-3.4028234663852886e38)});
  ${loop} { m = max(m, x[base + k]); }
  let mx = wg_max(hmax(m), lid);
  var s = ${T}(0.0);
  ${loop} { s += exp(x[base + k] - mx); }
  let inv = 1.0 / wg_sum(hsum(s), lid);
  ${loop} { y[base + k] = exp(x[base + k] - mx) * inv; }
}`;
  },
};

export const softmaxOp: OpDef<SoftmaxAttrs> = {
  op: 'softmax',
  arity: [1, 1],
  infer(_a, [x]) {
    if (x.length < 1 || x[x.length - 1] < 1)
      throw new ShapeError(`softmax input must have rank >= 1 and a non-empty last axis, got ${fmtShape(x)}`);
    return [x];
  },
  lower(_a, [x], _o, ctx) {
    const L = x[x.length - 1];
    const rows = numel(x) / L;
    const { mode, wg } = rowVariant(ctx, softmaxVariant, rows, L);
    const g = grid(mode === 'thread' ? ceilDiv(rows, wg) : rows, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: SoftmaxConfig = { rows, L, mode, wg, vec4: L % 4 === 0, gridX: g[0] };
    const n = rows * L;
    return { dispatches: [makeDispatch(softmax, cfg, g, [input(0), output(0)], { flops: 5 * n, bytes: 8 * n })] };
  },
  tuneSpace: () => ({ family: 'softmax', candidates: ['thread', 'workgroup,wg=64', 'workgroup,wg=32'] }),
  ref(_a, [x]) {
    const L = x.shape[x.shape.length - 1];
    const rows = x.data.length / L;
    const y = new Float32Array(x.data.length);
    for (let r = 0; r < rows; r++) {
      const o = r * L;
      let m = -Infinity;
      for (let i = 0; i < L; i++) m = Math.max(m, x.data[o + i]);
      let s = 0;
      for (let i = 0; i < L; i++) s += Math.exp(x.data[o + i] - m);
      for (let i = 0; i < L; i++) y[o + i] = Math.exp(x.data[o + i] - m) / s;
    }
    return [{ shape: [...x.shape], data: y } satisfies HostTensor];
  },
};
