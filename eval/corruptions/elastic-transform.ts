// ImageNet-C elastic_transform, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md).
//
// The reference's random affine (3 points moved by U(−a,a), cv2.getAffineTransform, warpAffine
// bilinear with BORDER_REFLECT_101) followed by map_coordinates (order 1, mode 'reflect') at
// (y + dy, x + dx), dx and dy U(−1,1) fields smoothed by gaussian(σ, mode 'reflect', truncate 3)
// and scaled by α. Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]; temps: the fields [N,H,W,2]
// (twice) and the warped image. Dispatches: fields (one invocation per pixel) → two blur1d passes
// (common.ts) → affine warp → displacement map (one invocation per output pixel each, through
// pixelMain). Randomness: the counter RNG (eval/rng.ts) keyed by (seed, image id, stream, index).
//
// Deviations: bilinear weights are exact (cv2 quantises them to 1/32 pixel); the reference builds
// its affine points from [H//2, W//2] read as (x, y), here x comes from W and y from H (the same
// for square images). The parameters are in pixels of a 224² image: on much smaller images
// severities 1-2 move the points by more than the square they span, the 3×3 solve becomes
// near-singular and f32 (GPU) and f64 (reference) part ways. Severity 1's σ = 171 px makes
// 1025-tap field blurs (≈ 2 s per 224² image on SwiftShader; milliseconds on a GPU).

import { type KernelFamily, f32Lit, input, makeDispatch, output, ShapeError, temp } from '../../kernels/kernel.js';
import { RNG_WGSL, rngUniform } from '../rng.js';
import {
  type PixelGrid,
  BORDER_WGSL,
  blur1d,
  blur1dRef,
  borderIndex,
  gaussianWeights,
  pixelGrid,
  pixelMain,
  storeRgb,
  toImage,
  u32Seed,
} from './common.js';
import type { CorruptionDef } from './corruption.js';

/** RNG streams of elastic_transform (other files use other ranges). */
const STREAM = { affine: 0x300, dx: 0x301, dy: 0x302 } as const;

export interface ElasticParams {
  alpha: number;
  sigma: number;
  affine: number;
}

/** Elastic's two U(−1,1) fields, interleaved [N,H,W,2] (dx, dy). */
interface FieldConfig extends PixelGrid {
  seed: number;
}

const fieldFamily: KernelFamily<FieldConfig> = {
  name: 'corrupt-elastic-field',
  wgsl: (c) => `
${RNG_WGSL}
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read_write> field: array<f32>;  // output [N,H,W,2] U(−1,1)
${pixelMain(
  c,
  `
  let id = u32(ids[b]);
  field[p * 2u] = 2.0 * rng_uniform(${c.seed}u, id, ${STREAM.dx}u, q) - 1.0;
  field[p * 2u + 1u] = 2.0 * rng_uniform(${c.seed}u, id, ${STREAM.dy}u, q) - 1.0;`,
)}`,
};

/**
 * The inverse of the reference's random affine, as src = P + E·(P − centre, 1): E solves
 * E·(pts2ᵢ − centre, 1) = pts1ᵢ − pts2ᵢ for its three point pairs (Cramer's rule). WGSL and TS.
 */
const AFFINE_WGSL = (c: { seed: number; h: number; w: number; affine: number }) => {
  const s = Math.floor(Math.min(c.h, c.w) / 3);
  return `
// Rows (ex, ey) of E for image id, in units of the square size s = ${s}: src = P + E·((P − centre)/s, 1).
fn affine_inverse(id: u32) -> mat2x3<f32> {
  var r: array<f32, 6>;
  for (var j = 0u; j < 6u; j++) { r[j] = (2.0 * rng_uniform(${c.seed}u, id, ${STREAM.affine}u, j) - 1.0) * ${f32Lit(c.affine)}; }
  // (pts2 − centre)/s for pts1 = centre + (s, s), (s, −s), (−s, −s): O(1) entries keep f32 Cramer accurate.
  let k = ${f32Lit(1 / s)};
  let u0 = vec2<f32>(1.0 + r[0] * k, 1.0 + r[1] * k);
  let u1 = vec2<f32>(1.0 + r[2] * k, -1.0 + r[3] * k);
  let u2 = vec2<f32>(-1.0 + r[4] * k, -1.0 + r[5] * k);
  let m = mat3x3<f32>(vec3<f32>(u0.x, u1.x, u2.x), vec3<f32>(u0.y, u1.y, u2.y), vec3<f32>(1.0, 1.0, 1.0));
  let inv = 1.0 / determinant(m);
  let dxs = -vec3<f32>(r[0], r[2], r[4]);
  let dys = -vec3<f32>(r[1], r[3], r[5]);
  // Cramer: coefficient k of the solution replaces column k of m by the right-hand side.
  let ex = vec3<f32>(determinant(mat3x3<f32>(dxs, m[1], m[2])), determinant(mat3x3<f32>(m[0], dxs, m[2])), determinant(mat3x3<f32>(m[0], m[1], dxs))) * inv;
  let ey = vec3<f32>(determinant(mat3x3<f32>(dys, m[1], m[2])), determinant(mat3x3<f32>(m[0], dys, m[2])), determinant(mat3x3<f32>(m[0], m[1], dys))) * inv;
  return mat2x3<f32>(ex, ey);
}`;
};

interface WarpConfig extends PixelGrid {
  seed: number;
  affine: number;
}

const warpFamily: KernelFamily<WarpConfig> = {
  name: 'corrupt-elastic-affine',
  wgsl: (c) => `
${RNG_WGSL}
${BORDER_WGSL}
${AFFINE_WGSL(c)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;      // input  [N] image ids
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3], warped

fn px(b: u32, r: i32, s: i32) -> vec3<f32> {
  let o = ((b * ${c.h}u + u32(b_reflect101(r, ${c.h}))) * ${c.w}u + u32(b_reflect101(s, ${c.w}))) * 3u;
  return vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
}
${pixelMain(
  c,
  `
  let e = affine_inverse(u32(ids[b]));
  let rel = vec3<f32>(vec2<f32>(f32(xx - ${Math.floor(c.w / 2)}), f32(yy - ${Math.floor(c.h / 2)})) * ${f32Lit(1 / Math.floor(Math.min(c.h, c.w) / 3))}, 1.0);
  let sx = f32(xx) + dot(e[0], rel);
  let sy = f32(yy) + dot(e[1], rel);
  let x0 = i32(floor(sx));
  let y0 = i32(floor(sy));
  let fx = sx - f32(x0);
  let fy = sy - f32(y0);
  let v = mix(mix(px(b, y0, x0), px(b, y0, x0 + 1), fx), mix(px(b, y0 + 1, x0), px(b, y0 + 1, x0 + 1), fx), fy);
${storeRgb('v')}`,
)}`,
};

const mapFamily: KernelFamily<PixelGrid> = {
  name: 'corrupt-elastic-map',
  wgsl: (c) => `
${BORDER_WGSL}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3], warped
@group(0) @binding(1) var<storage, read> disp: array<f32>;     // input  [N,H,W,2] (dx, dy) in pixels
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]

fn px(b: u32, r: i32, s: i32) -> vec3<f32> {
  let o = ((b * ${c.h}u + u32(b_reflect(r, ${c.h}))) * ${c.w}u + u32(b_reflect(s, ${c.w}))) * 3u;
  return vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
}
${pixelMain(
  c,
  `
  // scipy map_coordinates(order=1, mode='reflect') at (y + dy, x + dx).
  let sx = f32(xx) + disp[p * 2u];
  let sy = f32(yy) + disp[p * 2u + 1u];
  let x0 = i32(floor(sx));
  let y0 = i32(floor(sy));
  let fx = sx - f32(x0);
  let fy = sy - f32(y0);
  let v = clamp(mix(mix(px(b, y0, x0), px(b, y0, x0 + 1), fx), mix(px(b, y0 + 1, x0), px(b, y0 + 1, x0 + 1), fx), fy), vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('v')}`,
)}`,
};

/** TS twin of affine_inverse, in f64 (E acts on (P − centre)/s). */
function affineInverseRef(seed: number, id: number, h: number, w: number, affine: number): [number[], number[]] {
  const s = Math.floor(Math.min(h, w) / 3);
  const r = Array.from({ length: 6 }, (_, j) => (2 * rngUniform(seed, id, STREAM.affine, j) - 1) * Math.fround(affine));
  const u = [
    [1 + r[0] / s, 1 + r[1] / s],
    [1 + r[2] / s, -1 + r[3] / s],
    [-1 + r[4] / s, -1 + r[5] / s],
  ];
  const det3 = (a: number[][]) =>
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
    a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
    a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const rows = u.map(([a, b]) => [a, b, 1]);
  const d = det3(rows);
  const solve = (rhs: number[]) =>
    [0, 1, 2].map((k) => det3(rows.map((row, i) => row.map((v, j) => (j === k ? rhs[i] : v)))) / d);
  return [solve([-r[0], -r[2], -r[4]]), solve([-r[1], -r[3], -r[5]])];
}

export const elasticTransform: CorruptionDef<ElasticParams> = {
  name: 'elastic_transform',
  // The reference's (α, σ, affine) are multiples of 244 ("should have been 224").
  params: [
    { alpha: 244 * 2, sigma: 244 * 0.7, affine: 244 * 0.1 },
    { alpha: 244 * 2, sigma: 244 * 0.08, affine: 244 * 0.2 },
    { alpha: 244 * 0.05, sigma: 244 * 0.01, affine: 244 * 0.02 },
    { alpha: 244 * 0.07, sigma: 244 * 0.01, affine: 244 * 0.02 },
    { alpha: 244 * 0.12, sigma: 244 * 0.01, affine: 244 * 0.02 },
  ],
  lower(p, seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    if (Math.min(g.h, g.w) < 3)
      throw new ShapeError(`elastic_transform needs images of at least 3×3, got ${g.h}×${g.w}`);
    const s = u32Seed(seed);
    const px = g.n * g.h * g.w;
    const wt = gaussianWeights(p.sigma, 3);
    return {
      // ids → t0 (fields), t0 → t1 → t0 (smoothed, ×α), x → t2 (affine), t2 + t0 → y.
      dispatches: [
        makeDispatch(fieldFamily, { ...g, seed: s }, groups, [input(1), temp(0)], { bytes: 8 * px }),
        blur1d(shape, 2, 0, wt, 'reflect', 1, temp(0), temp(1), ctx),
        blur1d(shape, 2, 1, wt, 'reflect', p.alpha, temp(1), temp(0), ctx),
        makeDispatch(warpFamily, { ...g, seed: s, affine: p.affine }, groups, [input(0), input(1), temp(2)], {
          bytes: 24 * px,
        }),
        makeDispatch(mapFamily, { ...g }, groups, [temp(2), temp(0), output(0)], { bytes: 32 * px }),
      ],
      temps: [px * 2, px * 2, px * 3],
    };
  },
  ref(p, seed, x, ids) {
    const [n, h, w] = x.shape;
    const s = u32Seed(seed);
    const wt = gaussianWeights(p.sigma, 3).map(Math.fround);
    const field = new Float64Array(n * h * w * 2);
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      for (let q = 0; q < h * w; q++) {
        field[(b * h * w + q) * 2] = 2 * rngUniform(s, id, STREAM.dx, q) - 1;
        field[(b * h * w + q) * 2 + 1] = 2 * rngUniform(s, id, STREAM.dy, q) - 1;
      }
    }
    const disp = blur1dRef(
      blur1dRef(field, n, h, w, 2, 0, wt, 'reflect'),
      n,
      h,
      w,
      2,
      1,
      wt,
      'reflect',
      Math.fround(p.alpha),
    );
    const bilinear = (
      img: ArrayLike<number>,
      b: number,
      sy: number,
      sx: number,
      border: 'reflect' | 'reflect101',
      k: number,
    ) => {
      const y0 = Math.floor(sy),
        x0 = Math.floor(sx),
        fy = sy - y0,
        fx = sx - x0;
      const at = (r: number, c: number) =>
        img[((b * h + borderIndex(border, r, h)) * w + borderIndex(border, c, w)) * 3 + k];
      return (
        (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) +
        (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy
      );
    };
    const warped = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const [ex, ey] = affineInverseRef(s, ids[b] >>> 0, h, w, p.affine);
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          const sq = Math.floor(Math.min(h, w) / 3);
          const rel = [(xx - Math.floor(w / 2)) / sq, (yy - Math.floor(h / 2)) / sq, 1];
          const sx = xx + ex[0] * rel[0] + ex[1] * rel[1] + ex[2];
          const sy = yy + ey[0] * rel[0] + ey[1] * rel[1] + ey[2];
          for (let k = 0; k < 3; k++)
            warped[((b * h + yy) * w + xx) * 3 + k] = bilinear(x.data, b, sy, sx, 'reflect101', k);
        }
    }
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++)
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          const i = (b * h + yy) * w + xx;
          for (let k = 0; k < 3; k++)
            out[i * 3 + k] = bilinear(warped, b, yy + disp[i * 2 + 1], xx + disp[i * 2], 'reflect', k);
        }
    return toImage(x.shape, out);
  },
};
