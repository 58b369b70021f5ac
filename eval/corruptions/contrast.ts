// ImageNet-C contrast, ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters:
// docs/imagenet-c.md): (x − m)·c + m, m the image's mean over all pixels and channels, clipped.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]. Dispatches: row sums (one invocation per image row,
// 64 a workgroup) → per-image mean (one invocation per image) → pointwise (one invocation per
// pixel, all channels, through pixelMain). No workgroup memory. Deviation: none beyond float
// (the mean is summed in f32 on the GPU, f64 in the reference).

import {
  type KernelFamily, ceilDiv, f32Lit, grid, input, makeDispatch, output, temp,
} from '../../kernels/kernel.js';
import { type PixelGrid, computeMain, pixelGrid, pixelMain, storeRgb, toImage } from './common.js';
import type { CorruptionDef } from './corruption.js';

interface RowSumConfig { n: number; h: number; w: number; wg: number; gridX: number }

const rowSumFamily: KernelFamily<RowSumConfig> = {
  name: 'corrupt-rowsum',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> rows: array<f32>; // output [N,H] sums over W and channels
${computeMain(c, c.n * c.h, 'r', `  var s = 0.0;
  for (var i = 0u; i < ${c.w * 3}u; i++) { s += x[r * ${c.w * 3}u + i]; }
  rows[r] = s;`, '   // image row over [N,H]')}`,
};

interface MeanConfig { n: number; h: number; count: number; gridX: number }

const meanFamily: KernelFamily<MeanConfig> = {
  name: 'corrupt-mean',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> rows: array<f32>;       // input  [N,H] row sums
@group(0) @binding(1) var<storage, read_write> mean: array<f32>; // output [N] per-image mean

@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
  let b = wid.x + wid.y * ${c.gridX}u;   // one invocation per image
  if (b >= ${c.n}u) { return; }
  var s = 0.0;
  for (var r = 0u; r < ${c.h}u; r++) { s += rows[b * ${c.h}u + r]; }
  mean[b] = s / ${f32Lit(c.count)};
}`,
};

interface ContrastConfig extends PixelGrid { c: number }

const contrastFamily: KernelFamily<ContrastConfig> = {
  name: 'corrupt-contrast',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> mean: array<f32>;     // input  [N] per-image mean
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(c, `
  let m = mean[b];
  let v = vec3<f32>(x[p * 3u], x[p * 3u + 1u], x[p * 3u + 2u]);
  let r = clamp((v - m) * ${f32Lit(c.c)} + m, vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('r')}`)}`,
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
        makeDispatch(rowSumFamily, { n, h, w, wg, gridX: rg[0] }, rg, [input(0), temp(0)], { flops: n * h * w * 3, bytes: 12 * n * h * w }),
        makeDispatch(meanFamily, { n, h, count: h * w * 3, gridX: mg[0] }, mg, [temp(0), temp(1)], { flops: n * h }),
        makeDispatch(contrastFamily, { ...g, c }, groups, [input(0), temp(1), output(0)], { flops: 6 * n * h * w, bytes: 24 * n * h * w }),
      ],
      temps: [n * h, n],
    };
  },
  ref(c, _seed, x) {
    const [n, h, w] = x.shape;
    const out = new Float64Array(x.data.length);
    const px = h * w * 3;
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let i = 0; i < px; i++) s += x.data[b * px + i];
      const m = s / px;
      for (let i = 0; i < px; i++) out[b * px + i] = (x.data[b * px + i] - m) * c + m;
    }
    return toImage(x.shape, out);
  },
};
