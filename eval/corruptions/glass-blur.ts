// ImageNet-C glass_blur, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): blur(σ) → the reference's local pixel swaps → blur(σ).
//
// The reference visits (h,w) in [d+1, H−d]×[d+1, W−d] in decreasing raster order, `iterations`
// times, and swaps each pixel with (h+dy, w+dx), dx,dy = randint(−d, d) ∈ [−d, d−1]. That loop is
// sequential, but its result is computable per output pixel: what a position holds just before
// time t is decided by the last swap that touched it before t, either its own visit (it took its
// partner's content) or a visit of one of the (2d)² neighbours whose partner it was (it took that
// neighbour's content). Walking these events back in time (each step strictly earlier; ≈ 2-5
// steps on average, capped at GLASS_MAX_STEPS in all) gives the exact source of every output
// pixel, so the shuffle is the reference's own permutation, not an approximation of it.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]. Dispatches: gaussian blur (two blur1d passes,
// common.ts) → draw (one invocation per pixel: each (iteration, pixel)'s (dx, dy) into a temp,
// so the walk reads them instead of re-hashing) → walk (one invocation per output pixel) →
// gaussian blur. No workgroup memory.
//
// Deviations: the draws are per (iteration, pixel) from the counter RNG (eval/rng.ts; numpy
// draws them in visiting order, which cannot be reproduced anyway), and no uint8 truncation
// between the stages (float pipeline).

import {
  type KernelFamily, input, makeDispatch, output, temp,
} from '../../kernels/kernel.js';
import { RNG_WGSL, rngUniform } from '../rng.js';
import { type PixelGrid, gaussianImageLower, gaussianImageRef, imageElems, pixelGrid, pixelMain, toImage, u32Seed } from './common.js';
import type { CorruptionDef } from './corruption.js';

/** RNG streams of glass_blur: one per iteration from here (other files use other ranges). */
const STREAM = { glass: 0x200 } as const;

export interface GlassParams { sigma: number; delta: number; iterations: number }

/** Safety cap on the event walk per output pixel (chains are ≈ 2-5 steps, rarely past 30). */
export const GLASS_MAX_STEPS = 4096;

/** The swap offset (dy, dx) ∈ [−d, d−1]² that pixel (y, x) draws in iteration `it`. */
export function glassOffset(seed: number, id: number, it: number, y: number, x: number, w: number, d: number): [number, number] {
  const i = y * w + x;
  return [
    Math.floor(rngUniform(seed, id, STREAM.glass + it, 2 * i + 1) * 2 * d) - d,
    Math.floor(rngUniform(seed, id, STREAM.glass + it, 2 * i) * 2 * d) - d,
  ];
}

interface GlassDrawConfig extends PixelGrid { delta: number; iterations: number; seed: number }

const glassDrawFamily: KernelFamily<GlassDrawConfig> = {
  name: 'corrupt-glass-draw',
  wgsl: (c) => `
${RNG_WGSL}
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read_write> code: array<f32>;   // output [iterations,N,H,W]: (dy+d)·2d + (dx+d)
${pixelMain(c, `
  let id = u32(ids[b]);
  for (var it = 0u; it < ${c.iterations}u; it++) {
    let dx = floor(rng_uniform(${c.seed}u, id, ${STREAM.glass}u + it, 2u * q) * ${2 * c.delta}.0);
    let dy = floor(rng_uniform(${c.seed}u, id, ${STREAM.glass}u + it, 2u * q + 1u) * ${2 * c.delta}.0);
    code[it * ${c.n * c.h * c.w}u + p] = dy * ${2 * c.delta}.0 + dx;
  }`)}`,
};

interface GlassWalkConfig extends PixelGrid { delta: number; iterations: number; maxSteps: number }

const glassWalkFamily: KernelFamily<GlassWalkConfig> = {
  name: 'corrupt-glass-walk',
  wgsl(c) {
    const d = c.delta, d2 = 2 * c.delta;
    return `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3], blurred once
@group(0) @binding(1) var<storage, read> code: array<f32>;     // input  [iterations,N,H,W] swap offsets
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3], shuffled

// Positions the reference's loop visits; a visit's time is its raster index (larger = earlier).
fn visited(r: i32, s: i32) -> bool { return r >= ${d + 1} && r <= ${c.h - d} && s >= ${d + 1} && s <= ${c.w - d}; }
fn code_at(it: i32, b: u32, r: i32, s: i32) -> i32 {
  return i32(code[((u32(it) * ${c.n}u + b) * ${c.h}u + u32(r)) * ${c.w}u + u32(s)]);
}
${pixelMain(c, `
  var ry = yy;        // where the content now at the output pixel is, before the events walked so far
  var rx = xx;
  var steps = 0;
  for (var it = ${c.iterations - 1}; it >= 0; it--) {
    var t = -1;       // only events earlier than this visit (raster index greater than t) count
    loop {
      // The latest event at (ry, rx) before t: its own visit, or a neighbour's visit that swapped with it.
      var best = ${c.h * c.w};
      var own = false;
      var by = 0;
      var bx = 0;
      if (visited(ry, rx) && ry * ${c.w} + rx > t) { best = ry * ${c.w} + rx; own = true; }
      for (var oy = ${1 - d}; oy <= ${d}; oy++) {
        for (var ox = ${1 - d}; ox <= ${d}; ox++) {
          let qy = ry + oy;
          let qx = rx + ox;
          let r = qy * ${c.w} + qx;
          if ((oy != 0 || ox != 0) && visited(qy, qx) && r > t && r < best &&
              code_at(it, b, qy, qx) == (${d} - oy) * ${d2} + (${d} - ox)) {
            best = r; own = false; by = qy; bx = qx;
          }
        }
      }
      if (best == ${c.h * c.w} || steps >= ${c.maxSteps}) { break; }
      steps++;
      t = best;
      if (own) {
        // Its own visit: it took what its partner held just before.
        let k = code_at(it, b, ry, rx);
        ry += k / ${d2} - ${d};
        rx += k % ${d2} - ${d};
      } else {
        // A neighbour's visit: it took what the neighbour held just before.
        ry = by;
        rx = bx;
      }
    }
  }
  let o = ((b * ${c.h}u + u32(ry)) * ${c.w}u + u32(rx)) * 3u;
  y[p * 3u] = x[o]; y[p * 3u + 1u] = x[o + 1u]; y[p * 3u + 2u] = x[o + 2u];`)}`;
  },
};

/**
 * The source pixel of output (y, x) after the reference's swap loops: the same event walk as the
 * WGSL. Also returns the number of steps it took.
 */
export function glassSource(seed: number, id: number, p: GlassParams, h: number, w: number, y: number, x: number): { y: number; x: number; steps: number } {
  const d = p.delta;
  const visited = (r: number, s: number) => r >= d + 1 && r <= h - d && s >= d + 1 && s <= w - d;
  let ry = y, rx = x, steps = 0;
  for (let it = p.iterations - 1; it >= 0; it--) {
    let t = -1;
    for (;;) {
      let best = h * w, own = false, by = 0, bx = 0;
      if (visited(ry, rx) && ry * w + rx > t) { best = ry * w + rx; own = true; }
      for (let oy = 1 - d; oy <= d; oy++) for (let ox = 1 - d; ox <= d; ox++) {
        const qy = ry + oy, qx = rx + ox, r = qy * w + qx;
        if ((oy !== 0 || ox !== 0) && visited(qy, qx) && r > t && r < best) {
          const [dy, dx] = glassOffset(seed, id, it, qy, qx, w, d);
          if (dy === -oy && dx === -ox) { best = r; own = false; by = qy; bx = qx; }
        }
      }
      if (best === h * w || steps >= GLASS_MAX_STEPS) break;
      steps++;
      t = best;
      if (own) {
        const [dy, dx] = glassOffset(seed, id, it, ry, rx, w, d);
        ry += dy;
        rx += dx;
      } else {
        ry = by;
        rx = bx;
      }
    }
  }
  return { y: ry, x: rx, steps };
}

export const glassBlur: CorruptionDef<GlassParams> = {
  name: 'glass_blur',
  params: [
    { sigma: 0.7, delta: 1, iterations: 2 }, { sigma: 0.9, delta: 2, iterations: 1 }, { sigma: 1, delta: 2, iterations: 3 },
    { sigma: 1.1, delta: 3, iterations: 2 }, { sigma: 1.5, delta: 4, iterations: 2 },
  ],
  lower(p, seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const px = g.n * g.h * g.w;
    const draw = makeDispatch(
      glassDrawFamily, { ...g, delta: p.delta, iterations: p.iterations, seed: u32Seed(seed) }, groups,
      [input(1), temp(2)], { bytes: 4 * px * p.iterations },
    );
    const walk = makeDispatch(
      glassWalkFamily, { ...g, delta: p.delta, iterations: p.iterations, maxSteps: GLASS_MAX_STEPS }, groups,
      [temp(1), temp(2), temp(0)], { bytes: 24 * px },
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
      for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
        const src = glassSource(s, id, p, h, w, yy, xx);
        const o = ((b * h + yy) * w + xx) * 3, i = ((b * h + src.y) * w + src.x) * 3;
        for (let c = 0; c < 3; c++) shuffled[o + c] = Math.fround(once[i + c]);
      }
    }
    return toImage(x.shape, gaussianImageRef(shuffled, x.shape, p.sigma));
  },
};
