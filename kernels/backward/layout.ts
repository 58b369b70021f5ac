// Backward kernels of the layout ops and of global average pooling (the adjoints; see
// docs/autodiff.md). Transpose, reshape, concat and pad need no kernel of their own: their
// adjoints are a transpose, a reshape and slices.
//
//   slice_grad           [dy] -> dx: dy placed at [start, start + len) along `axis` of a tensor
//                        whose axis has `size` entries, zeros elsewhere. One invocation per dx element.
//   global_avgpool_grad  [dy [N,C]] -> dx [N,h,w,C] = dy / (h·w) at every pixel (NHWC). One
//                        invocation per dx element.

import {
  type KernelFamily,
  type OpDef,
  type Shape,
  ShapeError,
  ceilDiv,
  expectRank,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
} from '../kernel.js';
import { flatMain } from '../wgsl.js';

const WG = 64;

// ---- slice_grad -------------------------------------------------------------------------------------

export interface SliceGradAttrs {
  /** The forward slice's axis (non-negative) and its start, and the sliced tensor's length on that axis. */
  axis: number;
  start: number;
  size: number;
}

interface SliceGradConfig {
  n: number;
  /** Elements after the axis, the axis length of dx and of dy, the start. */
  inner: number;
  size: number;
  len: number;
  start: number;
  wg: number;
  gridX: number;
}

const sliceGrad: KernelFamily<SliceGradConfig> = {
  name: 'slice_grad',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> dy: array<f32>;        // input  dL/d(slice), axis length ${c.len}
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;  // output dL/dx [${c.n}], axis length ${c.size}

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  let i = t % ${c.inner}u;
  let a = (t / ${c.inner}u) % ${c.size}u;
  let o = t / ${c.inner * c.size}u;
  var v = 0.0;
  if (a >= ${c.start}u && a < ${c.start + c.len}u) { v = dy[(o * ${c.len}u + a - ${c.start}u) * ${c.inner}u + i]; }
  dx[t] = v;
}`,
};

function sliceGradInfer(a: SliceGradAttrs, dy: Shape): number[] {
  if (!Number.isInteger(a.axis) || a.axis < 0 || a.axis >= dy.length)
    throw new ShapeError(`slice_grad axis ${a.axis} out of range for ${fmtShape(dy)}`);
  if (!Number.isInteger(a.start) || a.start < 0 || a.start + dy[a.axis] > a.size)
    throw new ShapeError(`slice_grad: ${dy[a.axis]} entries from ${a.start} do not fit an axis of ${a.size}`);
  return dy.map((d, i) => (i === a.axis ? a.size : d));
}

export const sliceGradOp: OpDef<SliceGradAttrs> = {
  op: 'slice_grad',
  arity: [1, 1],
  infer: (a, [dy]) => [sliceGradInfer(a, dy)],
  lower(a, [dy], [out], ctx) {
    const n = numel(out);
    const inner = numel(dy.slice(a.axis + 1));
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: SliceGradConfig = { n, inner, size: a.size, len: dy[a.axis], start: a.start, wg: WG, gridX: g[0] };
    return { dispatches: [makeDispatch(sliceGrad, cfg, g, [input(0), output(0)], { bytes: 4 * (numel(dy) + n) })] };
  },
  ref(a, [dy]) {
    const shape = sliceGradInfer(a, dy.shape);
    const inner = numel(dy.shape.slice(a.axis + 1));
    const len = dy.shape[a.axis];
    const data = new Float32Array(numel(shape));
    const outer = numel(shape.slice(0, a.axis));
    for (let o = 0; o < outer; o++)
      data.set(dy.data.subarray(o * len * inner, (o + 1) * len * inner), (o * a.size + a.start) * inner);
    return [{ shape, data }];
  },
};

// ---- global_avgpool_grad -------------------------------------------------------------------------------

export interface GlobalAvgpoolGradAttrs {
  /** The forward input's height and width. */
  h: number;
  w: number;
}

interface GapGradConfig {
  n: number;
  c: number;
  hw: number;
  wg: number;
  gridX: number;
}

const gapGrad: KernelFamily<GapGradConfig> = {
  name: 'global_avgpool_grad',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> dy: array<f32>;        // input  dL/dy [N, ${c.c}]
@group(0) @binding(1) var<storage, read_write> dx: array<f32>;  // output dL/dx [N, ${c.hw} pixels, ${c.c}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n}u) { return; }
  dx[t] = dy[(t / ${c.hw * c.c}u) * ${c.c}u + t % ${c.c}u] * ${f32Lit(1 / c.hw)};
}`,
};

function gapGradInfer(a: GlobalAvgpoolGradAttrs, dy: Shape): number[] {
  expectRank('global_avgpool_grad dy [N, C]', dy, 2);
  if (!Number.isInteger(a.h) || !Number.isInteger(a.w) || a.h < 1 || a.w < 1)
    throw new ShapeError(`global_avgpool_grad: h ${a.h} and w ${a.w} must be positive integers`);
  return [dy[0], a.h, a.w, dy[1]];
}

export const globalAvgpoolGradOp: OpDef<GlobalAvgpoolGradAttrs> = {
  op: 'global_avgpool_grad',
  arity: [1, 1],
  infer: (a, [dy]) => [gapGradInfer(a, dy)],
  lower(a, [dy], [out], ctx) {
    const n = numel(out);
    const g = grid(ceilDiv(n, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: GapGradConfig = { n, c: dy[1], hw: a.h * a.w, wg: WG, gridX: g[0] };
    return { dispatches: [makeDispatch(gapGrad, cfg, g, [input(0), output(0)], { bytes: 4 * (numel(dy) + n) })] };
  },
  ref(a, [dy]) {
    const shape = gapGradInfer(a, dy.shape);
    const C = dy.shape[1];
    const hw = a.h * a.w;
    const data = new Float32Array(numel(shape));
    for (let i = 0; i < data.length; i++) data[i] = dy.data[Math.floor(i / (hw * C)) * C + (i % C)] / hw;
    return [{ shape, data }];
  },
};

export const layoutGradOps: OpDef[] = [sliceGradOp, globalAvgpoolGradOp];
