// ImageNet-C zoom_blur, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): (x + Σ_z clipped_zoom(x, z)) / (len(z)+1).
//
// clipped_zoom with scipy zoom(order=1) semantics (common.ts zoomAxis): crop ⌈n/z⌉ about the
// centre, output coordinate o ↦ o·(c−1)/(round(c·z)−1), trim to n. The factor lists are numpy's
// arange (severity 1 has 12 factors, up to 1.11, because of arange's rounding). Layout: x, y
// [N,H,W,3] NHWC in [0,1]. Mapping: one invocation per output pixel (all channels, all factors),
// through pixelMain; the per-factor crops are baked into the WGSL.
//
// Deviation: the reference assumes square images; here rows and columns are cropped
// independently.

import { type KernelFamily, f32Lit, input, makeDispatch, output } from '../../kernels/kernel.js';
import { type PixelGrid, pixelGrid, pixelMain, toImage, zoomAxis } from './common.js';
import type { CorruptionDef } from './corruption.js';

/** numpy.arange(start, stop, step): ⌈(stop−start)/step⌉ values start + i·step. */
export function arange(start: number, stop: number, step: number): number[] {
  return Array.from({ length: Math.ceil((stop - start) / step) }, (_, i) => start + i * step);
}

interface ZoomConfig extends PixelGrid {
  /** Per factor: [top, trim, ratio, last] for rows, then for columns (zoomAxis). */
  axes: readonly (readonly number[])[];
}

const zoomFamily: KernelFamily<ZoomConfig> = {
  name: 'corrupt-zoom',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]

fn px(b: u32, r: i32, s: i32) -> vec3<f32> {
  let o = ((b * ${c.h}u + u32(r)) * ${c.w}u + u32(s)) * 3u;
  return vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
}
// Bilinear sample of the crop [top, last] (per axis) at top + (o + trim)·ratio.
fn zoomed(b: u32, yy: i32, xx: i32, ry: vec4<f32>, rx: vec4<f32>) -> vec3<f32> {
  let cy = clamp(ry.x + f32(yy + i32(ry.y)) * ry.z, ry.x, ry.w);
  let cx = clamp(rx.x + f32(xx + i32(rx.y)) * rx.z, rx.x, rx.w);
  let y0 = i32(floor(cy));
  let x0 = i32(floor(cx));
  let fy = cy - f32(y0);
  let fx = cx - f32(x0);
  let y1 = min(y0 + 1, i32(ry.w));
  let x1 = min(x0 + 1, i32(rx.w));
  let top = mix(px(b, y0, x0), px(b, y0, x1), fx);
  let bot = mix(px(b, y1, x0), px(b, y1, x1), fx);
  return mix(top, bot, fy);
}
${pixelMain(
  c,
  `
  var acc = px(b, yy, xx);
${c.axes.map((a) => `  acc += zoomed(b, yy, xx, vec4<f32>(${a.slice(0, 4).map(f32Lit).join(', ')}), vec4<f32>(${a.slice(4).map(f32Lit).join(', ')}));`).join('\n')}
  acc = clamp(acc * ${f32Lit(1 / (c.axes.length + 1))}, vec3<f32>(0.0), vec3<f32>(1.0));
  y[p * 3u] = acc.x; y[p * 3u + 1u] = acc.y; y[p * 3u + 2u] = acc.z;`,
)}`,
};

const zoomAxesOf = (factors: readonly number[], h: number, w: number): number[][] =>
  factors.map((z) => {
    const r = zoomAxis(h, z),
      c = zoomAxis(w, z);
    return [r.top, r.trim, r.ratio, r.top + r.ch - 1, c.top, c.trim, c.ratio, c.top + c.ch - 1];
  });

export const zoomBlur: CorruptionDef<readonly number[]> = {
  name: 'zoom_blur',
  params: [
    arange(1, 1.11, 0.01),
    arange(1, 1.16, 0.01),
    arange(1, 1.21, 0.02),
    arange(1, 1.26, 0.02),
    arange(1, 1.31, 0.03),
  ],
  lower(factors, _seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const px = g.n * g.h * g.w;
    return {
      dispatches: [
        makeDispatch(zoomFamily, { ...g, axes: zoomAxesOf(factors, g.h, g.w) }, groups, [input(0), output(0)], {
          flops: 30 * px * factors.length,
          bytes: 24 * px,
        }),
      ],
    };
  },
  ref(factors, _seed, x) {
    const [n, h, w] = x.shape;
    const axes = zoomAxesOf(factors, h, w).map((a) => a.map(Math.fround));
    const out = new Float64Array(x.data);
    const at = (b: number, r: number, s: number, c: number) => x.data[((b * h + r) * w + s) * 3 + c];
    for (const [ty, tr, sc, ly, tx, tc, sx, lx] of axes) {
      for (let b = 0; b < n; b++)
        for (let yy = 0; yy < h; yy++)
          for (let xx = 0; xx < w; xx++) {
            const cy = Math.min(Math.max(ty + (yy + tr) * sc, ty), ly);
            const cx = Math.min(Math.max(tx + (xx + tc) * sx, tx), lx);
            const y0 = Math.floor(cy),
              x0 = Math.floor(cx);
            const fy = cy - y0,
              fx = cx - x0;
            const y1 = Math.min(y0 + 1, ly),
              x1 = Math.min(x0 + 1, lx);
            for (let c = 0; c < 3; c++) {
              const top = at(b, y0, x0, c) * (1 - fx) + at(b, y0, x1, c) * fx;
              const bot = at(b, y1, x0, c) * (1 - fx) + at(b, y1, x1, c) * fx;
              out[((b * h + yy) * w + xx) * 3 + c] += top * (1 - fy) + bot * fy;
            }
          }
    }
    for (let i = 0; i < out.length; i++) out[i] /= factors.length + 1;
    return toImage(x.shape, out);
  },
};
