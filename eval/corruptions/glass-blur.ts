// ImageNet-C glass_blur, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): blur(σ) → the reference's local pixel swaps → blur(σ).
//
// The reference visits (h,w) in [d+1, H−d]×[d+1, W−d] in decreasing raster order, `iterations`
// times, and "swaps" each pixel with (h+dy, w+dx), dx,dy = randint(−d, d) ∈ [−d, d−1], by
// `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on a NumPy H×W×3 array. That is not a swap: the
// right-hand side holds views, so x[h, w] first receives x[h', w']'s pixel and then x[h', w']
// receives x[h, w]'s new value, i.e. itself. Each visit copies its partner's current pixel; the
// partner keeps its own (pixels get duplicated, never exchanged). cnnlab reproduces that copy.
// Per output pixel the result is a short forward walk: a visited position holds what its partner
// held at the visit, which is the partner's own visit result when the partner was visited earlier
// (larger raster index) and its pre-iteration content otherwise. Iterations compose from the last
// back. Before the swaps the reference truncates the first blur to uint8 (`np.uint8(… * 255)`);
// so does cnnlab (floor(v·255 + 2^-10)/255, the slack as jpeg-compression.ts's jpegToU8).
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]. Dispatches: gaussian blur (two blur1d passes,
// common.ts) → draw (one invocation per pixel: each (iteration, pixel)'s (dx, dy) into a temp,
// so the walk reads them instead of re-hashing) → walk (one invocation per output pixel, which
// also truncates to 8 bits) → gaussian blur. No workgroup memory.
//
// Deviations: the draws are per (iteration, pixel) from the counter RNG (eval/rng.ts; numpy
// draws them in visiting order, which cannot be reproduced anyway).

import { type KernelFamily, f32Lit, input, makeDispatch, output, temp } from '../../kernels/kernel.js';
import { RNG_WGSL, rngUniform } from '../rng.js';
import {
  type PixelGrid,
  gaussianImageLower,
  gaussianImageRef,
  imageElems,
  pixelGrid,
  pixelMain,
  storeRgb,
  toImage,
  u32Seed,
} from './common.js';
import type { CorruptionDef } from './corruption.js';

/** RNG streams of glass_blur: one per iteration from here (other files use other ranges). */
const STREAM = { glass: 0x200 } as const;

export interface GlassParams {
  sigma: number;
  delta: number;
  iterations: number;
}

/** Safety cap on the walk per output pixel and iteration (chains are ≈ 1-3 steps, rarely past 20). */
export const GLASS_MAX_STEPS = 4096;

/** The swap offset (dy, dx) ∈ [−d, d−1]² that pixel (y, x) draws in iteration `it`. */
export function glassOffset(
  seed: number,
  id: number,
  it: number,
  y: number,
  x: number,
  w: number,
  d: number,
): [number, number] {
  const i = y * w + x;
  return [
    Math.floor(rngUniform(seed, id, STREAM.glass + it, 2 * i + 1) * 2 * d) - d,
    Math.floor(rngUniform(seed, id, STREAM.glass + it, 2 * i) * 2 * d) - d,
  ];
}

interface GlassDrawConfig extends PixelGrid {
  delta: number;
  iterations: number;
  seed: number;
}

const glassDrawFamily: KernelFamily<GlassDrawConfig> = {
  name: 'corrupt-glass-draw',
  wgsl: (c) => `
${RNG_WGSL}
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read_write> code: array<f32>;   // output [iterations,N,H,W]: (dy+d)·2d + (dx+d)
${pixelMain(
  c,
  `
  let id = u32(ids[b]);
  for (var it = 0u; it < ${c.iterations}u; it++) {
    let dx = floor(rng_uniform(${c.seed}u, id, ${STREAM.glass}u + it, 2u * q) * ${2 * c.delta}.0);
    let dy = floor(rng_uniform(${c.seed}u, id, ${STREAM.glass}u + it, 2u * q + 1u) * ${2 * c.delta}.0);
    code[it * ${c.n * c.h * c.w}u + p] = dy * ${2 * c.delta}.0 + dx;
  }`,
)}`,
};

interface GlassWalkConfig extends PixelGrid {
  delta: number;
  iterations: number;
  maxSteps: number;
}

const glassWalkFamily: KernelFamily<GlassWalkConfig> = {
  name: 'corrupt-glass-walk',
  wgsl(c) {
    const d = c.delta,
      d2 = 2 * c.delta;
    return `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3], blurred once
@group(0) @binding(1) var<storage, read> code: array<f32>;     // input  [iterations,N,H,W] swap offsets
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3], shuffled, 8-bit values

// Positions the reference's loop visits; a visit's time is its raster index (larger = earlier).
fn visited(r: i32, s: i32) -> bool { return r >= ${d + 1} && r <= ${c.h - d} && s >= ${d + 1} && s <= ${c.w - d}; }
fn code_at(it: i32, b: u32, r: i32, s: i32) -> i32 {
  return i32(code[((u32(it) * ${c.n}u + b) * ${c.h}u + u32(r)) * ${c.w}u + u32(s)]);
}
${pixelMain(
  c,
  `
  var ry = yy;        // where the content now at the output pixel was before the iterations walked so far
  var rx = xx;
  for (var it = ${c.iterations - 1}; it >= 0; it--) {
    // A visited position took its partner's pixel as it was at the visit: follow while the partner was visited earlier.
    var steps = 0;
    loop {
      if (!visited(ry, rx) || steps >= ${c.maxSteps}) { break; }
      steps++;
      let k = code_at(it, b, ry, rx);
      let qy = ry + k / ${d2} - ${d};
      let qx = rx + k % ${d2} - ${d};
      let earlier = visited(qy, qx) && qy * ${c.w} + qx > ry * ${c.w} + rx;
      ry = qy;
      rx = qx;
      if (!earlier) { break; }
    }
  }
  let o = ((b * ${c.h}u + u32(ry)) * ${c.w}u + u32(rx)) * 3u;
  // np.uint8(blur · 255) / 255
  let v = floor(vec3<f32>(x[o], x[o + 1u], x[o + 2u]) * 255.0 + ${f32Lit(TRUNC_SLACK)}) * ${f32Lit(1 / 255)};
${storeRgb('v')}`,
)}`;
  },
};

/**
 * The source pixel of output (y, x) after the reference's copy loops: the same walk as the WGSL.
 * Also returns the longest chain it followed in one iteration.
 */
export function glassSource(
  seed: number,
  id: number,
  p: GlassParams,
  h: number,
  w: number,
  y: number,
  x: number,
): { y: number; x: number; steps: number } {
  const d = p.delta;
  const visited = (r: number, s: number) => r >= d + 1 && r <= h - d && s >= d + 1 && s <= w - d;
  let ry = y,
    rx = x,
    most = 0;
  for (let it = p.iterations - 1; it >= 0; it--) {
    let steps = 0;
    while (visited(ry, rx) && steps < GLASS_MAX_STEPS) {
      steps++;
      const [dy, dx] = glassOffset(seed, id, it, ry, rx, w, d);
      const qy = ry + dy,
        qx = rx + dx;
      const earlier = visited(qy, qx) && qy * w + qx > ry * w + rx;
      ry = qy;
      rx = qx;
      if (!earlier) break;
    }
    most = Math.max(most, steps);
  }
  return { y: ry, x: rx, steps: most };
}

/** The reference's truncation of the first blur to 8 bits, in f32 as the GPU (value / 255). */
const trunc8 = (v: number): number =>
  Math.fround(Math.floor(Math.fround(Math.fround(v * 255) + TRUNC_SLACK)) * Math.fround(1 / 255));
const TRUNC_SLACK = 2 ** -10;

export const glassBlur: CorruptionDef<GlassParams> = {
  name: 'glass_blur',
  params: [
    { sigma: 0.7, delta: 1, iterations: 2 },
    { sigma: 0.9, delta: 2, iterations: 1 },
    { sigma: 1, delta: 2, iterations: 3 },
    { sigma: 1.1, delta: 3, iterations: 2 },
    { sigma: 1.5, delta: 4, iterations: 2 },
  ],
  lower(p, seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const px = g.n * g.h * g.w;
    const draw = makeDispatch(
      glassDrawFamily,
      { ...g, delta: p.delta, iterations: p.iterations, seed: u32Seed(seed) },
      groups,
      [input(1), temp(2)],
      { bytes: 4 * px * p.iterations },
    );
    const walk = makeDispatch(
      glassWalkFamily,
      { ...g, delta: p.delta, iterations: p.iterations, maxSteps: GLASS_MAX_STEPS },
      groups,
      [temp(1), temp(2), temp(0)],
      { bytes: 24 * px },
    );
    return {
      // x → t0 → t1 (blur), offsets → t2, t1 → t0 (swaps), t0 → t1 → y (blur).
      dispatches: [
        ...gaussianImageLower(shape, p.sigma, input(0), temp(1), 0, ctx),
        draw,
        walk,
        ...gaussianImageLower(shape, p.sigma, temp(0), output(0), 1, ctx),
      ],
      temps: [imageElems(shape), imageElems(shape), px * p.iterations],
    };
  },
  ref(p, seed, x, ids) {
    const [n, h, w] = x.shape;
    const s = u32Seed(seed);
    const once = gaussianImageRef(x.data, x.shape, p.sigma);
    const shuffled = new Float64Array(once.length);
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          const src = glassSource(s, id, p, h, w, yy, xx);
          const o = ((b * h + yy) * w + xx) * 3,
            i = ((b * h + src.y) * w + src.x) * 3;
          for (let c = 0; c < 3; c++) shuffled[o + c] = trunc8(Math.fround(once[i + c]));
        }
    }
    return toImage(x.shape, gaussianImageRef(shuffled, x.shape, p.sigma));
  },
};
