// ImageNet-C motion_blur, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): ImageMagick MotionBlurImage(radius, σ, angle).
//
// A one-sided line kernel of width 2⌈radius⌉+1 (common.ts motionKernel), weights exp(−i²/2σ²)
// normalised, tap i at (⌈i·cos a − ½⌉, ⌈i·sin a − ½⌉), edge (clamp) virtual pixels; the angle is
// U(−45°, 45°) per image from the counter RNG (eval/rng.ts). Layout: x, y [N,H,W,3] NHWC in
// [0,1]; ids [N]. Mapping: one invocation per output pixel (all channels), through pixelMain.
//
// Deviations: float in and out (the reference goes through an 8-bit PNG); the angle is drawn from
// the counter RNG, not numpy's.

import { type KernelFamily, input, makeDispatch, output } from '../../kernels/kernel.js';
import { RNG_WGSL, rngUniform } from '../rng.js';
import { type PixelGrid, constArray, motionKernel, pixelGrid, pixelMain, toImage, u32Seed } from './common.js';
import type { CorruptionDef } from './corruption.js';

/** RNG stream of motion_blur's angle (other files use other ranges). */
const STREAM = { motion: 0x210 } as const;

export interface MotionParams {
  radius: number;
  sigma: number;
}

/** The kernel's taps in f32: common.ts motionKernel (GetOptimalKernelWidth1D(radius) = 2⌈radius⌉+1 taps). */
export function motionWeights(p: MotionParams): number[] {
  return motionKernel(p.radius, p.sigma).map(Math.fround);
}

/** The per-image angle in degrees, U(−45, 45). */
export function motionAngle(seed: number, id: number): number {
  return rngUniform(u32Seed(seed), id >>> 0, STREAM.motion, 0) * 90 - 45;
}

interface MotionConfig extends PixelGrid {
  weights: readonly number[];
  seed: number;
}

const motionFamily: KernelFamily<MotionConfig> = {
  name: 'corrupt-motion',
  wgsl: (c) => `
${RNG_WGSL}
${constArray('MW', 'f32', c.weights)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;      // input  [N] image ids
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(
  c,
  `
  let deg = rng_uniform(${c.seed}u, u32(ids[b]), ${STREAM.motion}u, 0u) * 90.0 - 45.0;
  let a = deg * 0.017453292519943295;
  let ca = cos(a);
  let sa = sin(a);
  var acc = vec3<f32>(0.0);
  for (var i = 0; i < ${c.weights.length}; i++) {
    let sx = clamp(xx + i32(ceil(f32(i) * ca - 0.5)), 0, ${c.w - 1});
    let sy = clamp(yy + i32(ceil(f32(i) * sa - 0.5)), 0, ${c.h - 1});
    let o = ((b * ${c.h}u + u32(sy)) * ${c.w}u + u32(sx)) * 3u;
    acc += MW[i] * vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
  }
  acc = clamp(acc, vec3<f32>(0.0), vec3<f32>(1.0));
  y[p * 3u] = acc.x; y[p * 3u + 1u] = acc.y; y[p * 3u + 2u] = acc.z;`,
)}`,
};

export const motionBlur: CorruptionDef<MotionParams> = {
  name: 'motion_blur',
  params: [
    { radius: 10, sigma: 3 },
    { radius: 15, sigma: 5 },
    { radius: 15, sigma: 8 },
    { radius: 15, sigma: 12 },
    { radius: 20, sigma: 15 },
  ],
  lower(p, seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const weights = motionWeights(p);
    const px = g.n * g.h * g.w;
    return {
      dispatches: [
        makeDispatch(motionFamily, { ...g, weights, seed: u32Seed(seed) }, groups, [input(0), input(1), output(0)], {
          flops: 6 * px * weights.length,
          bytes: 24 * px,
        }),
      ],
    };
  },
  ref(p, seed, x, ids) {
    const [n, h, w] = x.shape;
    const wt = motionWeights(p);
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) {
      // The angle's cosine and sine in f32, as the GPU has them, so tap offsets round alike.
      const a = Math.fround(Math.fround(motionAngle(seed, ids[b])) * Math.fround(Math.PI / 180));
      const ca = Math.fround(Math.cos(a)),
        sa = Math.fround(Math.sin(a));
      const off = wt.map((_, i) => [Math.ceil(Math.fround(i * sa) - 0.5), Math.ceil(Math.fround(i * ca) - 0.5)]);
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          const o = ((b * h + yy) * w + xx) * 3;
          for (let i = 0; i < wt.length; i++) {
            const sy = Math.min(Math.max(yy + off[i][0], 0), h - 1),
              sx = Math.min(Math.max(xx + off[i][1], 0), w - 1);
            const s = ((b * h + sy) * w + sx) * 3;
            for (let c = 0; c < 3; c++) out[o + c] += wt[i] * x.data[s + c];
          }
        }
    }
    return toImage(x.shape, out);
  },
};
