// ImageNet-C contrast, ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters:
// docs/imagenet-c.md): (x − m)·c + m, clipped, m the image's mean over height and width **per
// colour channel** (the reference's `np.mean(x, axis=(0, 1))` of an H×W×3 array: three means).
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]. Dispatches: per-channel row sums (one invocation per
// image row, 64 a workgroup) → per-image channel means (one invocation per image) → pointwise
// (one invocation per pixel, all channels, through pixelMain). No workgroup memory. Deviation:
// none beyond float (the means are summed in f32 on the GPU, f64 in the reference).

import { type KernelFamily, ceilDiv, f32Lit, grid, input, makeDispatch, output, temp } from '../../kernels/kernel.js';
import { type PixelGrid, computeMain, pixelGrid, pixelMain, storeRgb, toImage } from './common.js';
import type { CorruptionDef } from './corruption.js';

interface RowSumConfig {
  n: number;
  h: number;
  w: number;
  wg: number;
  gridX: number;
}

const rowSumFamily: KernelFamily<RowSumConfig> = {
  name: 'corrupt-rowsum',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> rows: array<f32>; // output [N,H,3] sums over W per channel
${computeMain(
  c,
  c.n * c.h,
  'r',
  `  var s = vec3<f32>(0.0);
  for (var i = 0u; i < ${c.w}u; i++) {
    let o = (r * ${c.w}u + i) * 3u;
    s += vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
  }
  rows[r * 3u] = s.x; rows[r * 3u + 1u] = s.y; rows[r * 3u + 2u] = s.z;`,
  '   // image row over [N,H]',
)}`,
};

interface MeanConfig {
  n: number;
  h: number;
  count: number;
  gridX: number;
}

const meanFamily: KernelFamily<MeanConfig> = {
  name: 'corrupt-mean',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> rows: array<f32>;       // input  [N,H,3] row sums per channel
@group(0) @binding(1) var<storage, read_write> mean: array<f32>; // output [N,3] per-image channel means

@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.x + wid.y * ${c.gridX}u;   // one invocation per image
  if (b >= ${c.n}u) { return; }
  var s = vec3<f32>(0.0);
  for (var r = 0u; r < ${c.h}u; r++) {
    let o = (b * ${c.h}u + r) * 3u;
    s += vec3<f32>(rows[o], rows[o + 1u], rows[o + 2u]);
  }
  let m = s / ${f32Lit(c.count)};
  mean[b * 3u] = m.x; mean[b * 3u + 1u] = m.y; mean[b * 3u + 2u] = m.z;
}`,
};

interface ContrastConfig extends PixelGrid {
  c: number;
}

const contrastFamily: KernelFamily<ContrastConfig> = {
  name: 'corrupt-contrast',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> mean: array<f32>;     // input  [N,3] per-image channel means
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(
  c,
  `
  let m = vec3<f32>(mean[b * 3u], mean[b * 3u + 1u], mean[b * 3u + 2u]);
  let v = vec3<f32>(x[p * 3u], x[p * 3u + 1u], x[p * 3u + 2u]);
  let r = clamp((v - m) * ${f32Lit(c.c)} + m, vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('r')}`,
)}`,
};

export const contrast: CorruptionDef<number> = {
  name: 'contrast',
  params: [0.4, 0.3, 0.2, 0.1, 0.05],
  lower(c, _seed, shape, ctx) {
    const [n, h, w] = shape;
    const { g, groups } = pixelGrid(shape, ctx);
    const wg = 64;
    const rg = grid(ceilDiv(n * h, wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const mg = grid(n, ctx.limits.maxComputeWorkgroupsPerDimension);
    return {
      dispatches: [
        makeDispatch(rowSumFamily, { n, h, w, wg, gridX: rg[0] }, rg, [input(0), temp(0)], {
          flops: n * h * w * 3,
          bytes: 12 * n * h * w,
        }),
        makeDispatch(meanFamily, { n, h, count: h * w, gridX: mg[0] }, mg, [temp(0), temp(1)], { flops: 3 * n * h }),
        makeDispatch(contrastFamily, { ...g, c }, groups, [input(0), temp(1), output(0)], {
          flops: 6 * n * h * w,
          bytes: 24 * n * h * w,
        }),
      ],
      temps: [n * h * 3, n * 3],
    };
  },
  ref(c, _seed, x) {
    const [n, h, w] = x.shape;
    const out = new Float64Array(x.data.length);
    const px = h * w * 3;
    for (let b = 0; b < n; b++) {
      const m = [0, 0, 0];
      for (let i = 0; i < px; i++) m[i % 3] += x.data[b * px + i];
      for (let k = 0; k < 3; k++) m[k] /= h * w;
      for (let i = 0; i < px; i++) out[b * px + i] = (x.data[b * px + i] - m[i % 3]) * c + m[i % 3];
    }
    return toImage(x.shape, out);
  },
};
