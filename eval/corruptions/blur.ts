// ImageNet-C blurs: defocus_blur, glass_blur, motion_blur, zoom_blur and the extra gaussian_blur,
// ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters: REFERENCE.md §4).
// Also what digital.ts reuses: border modes and the separable Gaussian `blur1d` family.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]. Mapping: one invocation per output pixel (all
// channels), through noise.ts's pixelMain. No workgroup memory.
//
//   gaussian_blur  skimage gaussian(σ) = scipy gaussian_filter, truncate 4, mode 'nearest':
//                  two blur1d passes (rows, then columns, scipy's axis order) through a temp.
//   defocus_blur   cv2.filter2D with disk(r, alias): the aliased disk blurred by cv2.GaussianBlur
//                  (3×3 or 5×5, BORDER_REFLECT_101), computed here in f64 and baked as a tap
//                  list; correlation with BORDER_REFLECT_101. Taps below 1e-9 of the peak are
//                  dropped (their total weight < 1e-6); otherwise exact, quirks included: at
//                  radius 8 and 10 the disk fills its array and the reflecting alias blur folds
//                  mass back in, so those kernels sum to 1.013 and 1.011 in the reference and here.
//   glass_blur     blur(σ) → the reference's local pixel swaps → blur(σ). The reference visits
//                  (h,w) in [d+1, H−d]×[d+1, W−d] in decreasing raster order, `iterations` times, and
//                  swaps each pixel with (h+dy, w+dx), dx,dy = randint(−d, d) ∈ [−d, d−1]. That loop
//                  is sequential, but its result is computable per output pixel: what a position
//                  holds just before time t is decided by the last swap that touched it before t,
//                  either its own visit (it took its partner's content) or a visit of one of the
//                  (2d)² neighbours whose partner it was (it took that neighbour's content). Walking
//                  these events back in time (each step strictly earlier; ≈ 2-5 steps on average,
//                  capped at 4096 in all) gives the exact source of every output pixel, so
//                  the shuffle is the reference's own permutation, not an approximation of it. A
//                  first kernel draws each (iteration, pixel)'s (dx, dy) into a temp, so the walk
//                  reads them instead of re-hashing. Deviations: the draws are per (iteration,
//                  pixel) from the counter RNG (numpy draws them in visiting order, which cannot be
//                  reproduced anyway), and no uint8 truncation between the stages (float pipeline).
//   motion_blur    ImageMagick MotionBlurImage(radius, σ, angle): a one-sided line kernel of
//                  width 2⌈radius⌉+1, weights exp(−i²/2σ²) normalised, tap i at
//                  (⌈i·cos a − ½⌉, ⌈i·sin a − ½⌉), edge (clamp) virtual pixels; angle U(−45°,45°)
//                  per image from the RNG. Float in and out (the reference goes through 8-bit PNG).
//   zoom_blur      (x + Σ_z clipped_zoom(x, z)) / (len(z)+1) with scipy zoom(order=1) semantics:
//                  crop ⌈n/z⌉ about the centre, output coordinate o ↦ o·(c−1)/(round(c·z)−1),
//                  trim to n. The factor lists are numpy's arange (severity 1 has 12 factors, up to
//                  1.11, because of arange's rounding). The reference assumes square images; here
//                  rows and columns are cropped independently.
//
// Randomness only through the shared counter RNG keyed by (seed, image id, stream, index), so the
// GPU and the TS reference draw the same numbers whatever the batch.

import {
  type BindingRef, type HostTensor, type KernelFamily, type LowerContext, type Shape,
  f32Lit, input, makeDispatch, output, temp,
} from '../../kernels/kernel.js';
import { type CorruptionDef, RNG_WGSL, registerCorruptions, rngUniform } from './common.js';
import { type PixelGrid, clamp01, constArray, pixelGrid, pixelMain, u32Seed } from './noise.js';

/** Per-purpose RNG streams of this file (other files use other ranges). */
const STREAM = { glass: 0x200, motion: 0x210 } as const;

/**
 * Out-of-range index handling, named as scipy/OpenCV do:
 * clamp = scipy 'nearest' / ImageMagick edge; reflect = scipy 'reflect' (d c b a | a b c d);
 * reflect101 = OpenCV BORDER_REFLECT_101 / scipy 'mirror' (d c b | a b c d).
 */
export type Border = 'clamp' | 'reflect' | 'reflect101';

export const BORDER_WGSL = /* wgsl */ `
fn b_clamp(i: i32, n: i32) -> i32 { return clamp(i, 0, n - 1); }
fn b_reflect(i: i32, n: i32) -> i32 {
  let period = 2 * n;
  var m = i % period;
  if (m < 0) { m += period; }
  return select(m, period - 1 - m, m >= n);
}
fn b_reflect101(i: i32, n: i32) -> i32 {
  if (n == 1) { return 0; }
  let period = 2 * n - 2;
  var m = i % period;
  if (m < 0) { m += period; }
  return select(m, period - m, m >= n);
}`;

export function borderIndex(border: Border, i: number, n: number): number {
  if (border === 'clamp') return Math.min(Math.max(i, 0), n - 1);
  if (border === 'reflect') {
    const period = 2 * n;
    const m = ((i % period) + period) % period;
    return m >= n ? period - 1 - m : m;
  }
  if (n === 1) return 0;
  const period = 2 * n - 2;
  const m = ((i % period) + period) % period;
  return m >= n ? period - m : m;
}


// ---------------------------------------------------------------------------------------------
// Separable Gaussian (scipy.ndimage.gaussian_filter1d): one pass along one axis of [N,H,W,ch].

/** scipy's `_gaussian_kernel1d`: radius int(truncate·σ + 0.5), exp(−x²/2σ²) normalised. */
export function gaussianWeights(sigma: number, truncate: number): number[] {
  const r = Math.trunc(truncate * sigma + 0.5);
  const w: number[] = [];
  let sum = 0;
  for (let i = -r; i <= r; i++) {
    const v = Math.exp((-0.5 / (sigma * sigma)) * i * i);
    w.push(v);
    sum += v;
  }
  return w.map((v) => v / sum);
}

export interface Blur1dConfig extends PixelGrid {
  /** Channels per pixel (3 for images, 2 for elastic displacement fields). */
  ch: number;
  /** 0: along H (rows of taps vertical), 1: along W. */
  axis: 0 | 1;
  /** Taps −r..r, weights[r] the centre. */
  weights: readonly number[];
  border: Border;
  /** Multiplies the result (elastic's α); 1 otherwise. */
  scale: number;
}

export const blur1dFamily: KernelFamily<Blur1dConfig> = {
  name: 'corrupt-blur1d',
  wgsl(c) {
    const r = (c.weights.length - 1) / 2;
    const V = `vec${c.ch}<f32>`;
    const load = (o: string) => `${V}(${Array.from({ length: c.ch }, (_, k) => `src[${o} + ${k}u]`).join(', ')})`;
    const at = c.axis === 0 ? `(b * ${c.h}u + u32(s)) * ${c.w}u + u32(xx)` : `(b * ${c.h}u + u32(yy)) * ${c.w}u + u32(s)`;
    return `
${BORDER_WGSL}
${constArray('WT', 'f32', c.weights)}
@group(0) @binding(0) var<storage, read> src: array<f32>;        // input  [N,H,W,${c.ch}]
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;  // output [N,H,W,${c.ch}]
${pixelMain(c, `
  let centre = ${c.axis === 0 ? 'yy' : 'xx'};
  var acc = ${V}(0.0);
  for (var k = 0; k < ${c.weights.length}; k++) {
    let s = b_${c.border}(centre + k - ${r}, ${c.axis === 0 ? c.h : c.w});
    let o = (${at}) * ${c.ch}u;
    acc += WT[k] * ${load('o')};
  }
  acc *= ${f32Lit(c.scale)};
${Array.from({ length: c.ch }, (_, k) => `  dst[p * ${c.ch}u + ${k}u] = acc[${k}];`).join('\n')}`)}`;
  },
};

/** A blur1d dispatch from `from` to `to` over an [N,H,W,ch] tensor. */
export function blur1d(
  shape: Shape, ch: number, axis: 0 | 1, weights: readonly number[], border: Border, scale: number,
  from: BindingRef, to: BindingRef, ctx: LowerContext,
) {
  const { g, groups } = pixelGrid(shape, ctx);
  const cfg: Blur1dConfig = { ...g, ch, axis, weights: weights.map(Math.fround), border, scale };
  const px = g.n * g.h * g.w;
  return makeDispatch(blur1dFamily, cfg, groups, [from, to], { flops: 2 * px * ch * weights.length, bytes: 8 * px * ch });
}

/** Reference of blur1d on a flat [N,H,W,ch] array (f64 accumulation). */
export function blur1dRef(
  src: Float32Array | Float64Array, n: number, h: number, w: number, ch: number,
  axis: 0 | 1, weights: readonly number[], border: Border, scale = 1,
): Float64Array {
  const r = (weights.length - 1) / 2;
  const out = new Float64Array(src.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const o = ((b * h + y) * w + x) * ch;
        for (let k = 0; k < weights.length; k++) {
          const s = borderIndex(border, (axis === 0 ? y : x) + k - r, axis === 0 ? h : w);
          const i = (axis === 0 ? (b * h + s) * w + x : (b * h + y) * w + s) * ch;
          for (let c = 0; c < ch; c++) out[o + c] += weights[k] * src[i + c];
        }
        for (let c = 0; c < ch; c++) out[o + c] *= scale;
      }
    }
  }
  return out;
}

const toImage = (shape: number[], v: ArrayLike<number>): HostTensor => {
  const data = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) data[i] = clamp01(v[i]);
  return { shape: [...shape], data };
};

/** skimage gaussian(σ, multichannel): rows then columns, 'nearest' borders, truncate 4. */
function gaussianImageRef(x: Float32Array | Float64Array, shape: readonly number[], sigma: number): Float64Array {
  const [n, h, w] = shape;
  const wt = gaussianWeights(sigma, 4).map(Math.fround);
  return blur1dRef(blur1dRef(x, n, h, w, 3, 0, wt, 'clamp'), n, h, w, 3, 1, wt, 'clamp');
}

function gaussianImageLower(shape: Shape, sigma: number, from: BindingRef, to: BindingRef, via: number, ctx: LowerContext) {
  const wt = gaussianWeights(sigma, 4);
  return [blur1d(shape, 3, 0, wt, 'clamp', 1, from, temp(via), ctx), blur1d(shape, 3, 1, wt, 'clamp', 1, temp(via), to, ctx)];
}

const imageElems = (s: Shape): number => s[0] * s[1] * s[2] * 3;

// ---------------------------------------------------------------------------------------------
// gaussian_blur (extra)

export const gaussianBlur: CorruptionDef<number> = {
  name: 'gaussian_blur',
  extra: true,
  params: [1, 2, 3, 4, 6],
  lower: (sigma, _seed, shape, ctx) => ({
    dispatches: gaussianImageLower(shape, sigma, input(0), output(0), 0, ctx),
    temps: [imageElems(shape)],
  }),
  ref: (sigma, _seed, x) => toImage(x.shape, gaussianImageRef(x.data, x.shape, sigma)),
};

// ---------------------------------------------------------------------------------------------
// defocus_blur

export interface DefocusParams { radius: number; alias: number }

/** cv2.getGaussianKernel(ksize, σ) for σ > 0, as float32 (GaussianBlur's kernel type for float images). */
function cvGaussianKernel(ksize: number, sigma: number): number[] {
  const g: number[] = [];
  let sum = 0;
  for (let i = 0; i < ksize; i++) {
    const x = i - (ksize - 1) / 2;
    const v = Math.exp((-0.5 / (sigma * sigma)) * x * x);
    g.push(v);
    sum += v;
  }
  return g.map((v) => Math.fround(v / sum));
}

/** The reference's disk(radius, alias_blur): a 2-D kernel of side 2L+1, row-major. */
export function diskKernel(radius: number, alias: number): { size: number; k: Float64Array } {
  const L = radius <= 8 ? 8 : radius;
  const ksize = radius <= 8 ? 3 : 5;
  const size = 2 * L + 1;
  const disk = new Float64Array(size * size);
  let count = 0;
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
    const inside = (i - L) ** 2 + (j - L) ** 2 <= radius * radius;
    disk[i * size + j] = inside ? 1 : 0;
    count += inside ? 1 : 0;
  }
  for (let i = 0; i < disk.length; i++) disk[i] = Math.fround(disk[i] / count);
  // cv2.GaussianBlur: separable, rows then columns, BORDER_REFLECT_101 at the kernel array's edges.
  const g = cvGaussianKernel(ksize, alias);
  const h = (ksize - 1) / 2;
  const tmp = new Float64Array(size * size);
  const k = new Float64Array(size * size);
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
    let s = 0;
    for (let a = 0; a < ksize; a++) s += g[a] * disk[i * size + borderIndex('reflect101', j + a - h, size)];
    tmp[i * size + j] = Math.fround(s);
  }
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
    let s = 0;
    for (let a = 0; a < ksize; a++) s += g[a] * tmp[borderIndex('reflect101', i + a - h, size) * size + j];
    k[i * size + j] = Math.fround(s);
  }
  return { size, k };
}

/** The taps worth reading: offsets from the centre and weights (f32), negligible ones dropped. */
export function defocusTaps(p: DefocusParams): { dy: number[]; dx: number[]; wt: number[] } {
  const { size, k } = diskKernel(p.radius, p.alias);
  const L = (size - 1) / 2;
  const peak = Math.max(...k);
  const t = { dy: [] as number[], dx: [] as number[], wt: [] as number[] };
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) {
    if (k[i * size + j] < 1e-9 * peak) continue;
    t.dy.push(i - L);
    t.dx.push(j - L);
    t.wt.push(k[i * size + j]);
  }
  return t;
}

interface DefocusConfig extends PixelGrid { dy: readonly number[]; dx: readonly number[]; wt: readonly number[] }

const defocusFamily: KernelFamily<DefocusConfig> = {
  name: 'corrupt-defocus',
  wgsl: (c) => `
${BORDER_WGSL}
${constArray('TY', 'i32', c.dy)}
${constArray('TX', 'i32', c.dx)}
${constArray('TW', 'f32', c.wt)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(c, `
  var acc = vec3<f32>(0.0);
  for (var k = 0; k < ${c.wt.length}; k++) {
    let sy = b_reflect101(yy + TY[k], ${c.h});
    let sx = b_reflect101(xx + TX[k], ${c.w});
    let o = ((b * ${c.h}u + u32(sy)) * ${c.w}u + u32(sx)) * 3u;
    acc += TW[k] * vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
  }
  acc = clamp(acc, vec3<f32>(0.0), vec3<f32>(1.0));
  y[p * 3u] = acc.x; y[p * 3u + 1u] = acc.y; y[p * 3u + 2u] = acc.z;`)}`,
};

export const defocusBlur: CorruptionDef<DefocusParams> = {
  name: 'defocus_blur',
  params: [{ radius: 3, alias: 0.1 }, { radius: 4, alias: 0.5 }, { radius: 6, alias: 0.5 }, { radius: 8, alias: 0.5 }, { radius: 10, alias: 0.5 }],
  lower(p, _seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const t = defocusTaps(p);
    const px = g.n * g.h * g.w;
    return { dispatches: [makeDispatch(defocusFamily, { ...g, ...t }, groups, [input(0), output(0)], { flops: 6 * px * t.wt.length, bytes: 24 * px })] };
  },
  ref(p, _seed, x) {
    const [n, h, w] = x.shape;
    const t = defocusTaps(p);
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
      const o = ((b * h + yy) * w + xx) * 3;
      for (let k = 0; k < t.wt.length; k++) {
        const i = ((b * h + borderIndex('reflect101', yy + t.dy[k], h)) * w + borderIndex('reflect101', xx + t.dx[k], w)) * 3;
        for (let c = 0; c < 3; c++) out[o + c] += t.wt[k] * x.data[i + c];
      }
    }
    return toImage(x.shape, out);
  },
};

// ---------------------------------------------------------------------------------------------
// glass_blur

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

// ---------------------------------------------------------------------------------------------
// motion_blur

export interface MotionParams { radius: number; sigma: number }

/** ImageMagick GetMotionBlurKernel with GetOptimalKernelWidth1D(radius) = 2⌈radius⌉+1 taps. */
export function motionWeights(p: MotionParams): number[] {
  const width = 2 * Math.ceil(p.radius) + 1;
  const w = Array.from({ length: width }, (_, i) => Math.exp(-(i * i) / (2 * p.sigma * p.sigma)) / (Math.sqrt(2 * Math.PI) * p.sigma));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((v) => Math.fround(v / sum));
}

/** The per-image angle in degrees, U(−45, 45). */
export function motionAngle(seed: number, id: number): number {
  return rngUniform(u32Seed(seed), id >>> 0, STREAM.motion, 0) * 90 - 45;
}

interface MotionConfig extends PixelGrid { weights: readonly number[]; seed: number }

const motionFamily: KernelFamily<MotionConfig> = {
  name: 'corrupt-motion',
  wgsl: (c) => `
${RNG_WGSL}
${constArray('MW', 'f32', c.weights)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;      // input  [N] image ids
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(c, `
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
  y[p * 3u] = acc.x; y[p * 3u + 1u] = acc.y; y[p * 3u + 2u] = acc.z;`)}`,
};

export const motionBlur: CorruptionDef<MotionParams> = {
  name: 'motion_blur',
  params: [{ radius: 10, sigma: 3 }, { radius: 15, sigma: 5 }, { radius: 15, sigma: 8 }, { radius: 15, sigma: 12 }, { radius: 20, sigma: 15 }],
  lower(p, seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const weights = motionWeights(p);
    const px = g.n * g.h * g.w;
    return {
      dispatches: [makeDispatch(motionFamily, { ...g, weights, seed: u32Seed(seed) }, groups, [input(0), input(1), output(0)], { flops: 6 * px * weights.length, bytes: 24 * px })],
    };
  },
  ref(p, seed, x, ids) {
    const [n, h, w] = x.shape;
    const wt = motionWeights(p);
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) {
      // The angle's cosine and sine in f32, as the GPU has them, so tap offsets round alike.
      const a = Math.fround(Math.fround(motionAngle(seed, ids[b])) * Math.fround(Math.PI / 180));
      const ca = Math.fround(Math.cos(a)), sa = Math.fround(Math.sin(a));
      const off = wt.map((_, i) => [Math.ceil(Math.fround(i * sa) - 0.5), Math.ceil(Math.fround(i * ca) - 0.5)]);
      for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
        const o = ((b * h + yy) * w + xx) * 3;
        for (let i = 0; i < wt.length; i++) {
          const sy = Math.min(Math.max(yy + off[i][0], 0), h - 1), sx = Math.min(Math.max(xx + off[i][1], 0), w - 1);
          const s = ((b * h + sy) * w + sx) * 3;
          for (let c = 0; c < 3; c++) out[o + c] += wt[i] * x.data[s + c];
        }
      }
    }
    return toImage(x.shape, out);
  },
};

// ---------------------------------------------------------------------------------------------
// zoom_blur

/** numpy.arange(start, stop, step): ⌈(stop−start)/step⌉ values start + i·step. */
export function arange(start: number, stop: number, step: number): number[] {
  return Array.from({ length: Math.ceil((stop - start) / step) }, (_, i) => start + i * step);
}

/**
 * clipped_zoom along one axis of length n: output index o reads input coordinate
 * top + (o + trim)·scale, interpolated inside the crop [top, top + c − 1].
 */
export interface ZoomAxis { top: number; trim: number; scale: number; last: number }

/** Python's round(): half to even. */
function pyRound(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
}

export function zoomAxis(n: number, z: number): ZoomAxis {
  const c = Math.ceil(n / z);
  const top = Math.floor((n - c) / 2);
  const zn = pyRound(c * z);
  const trim = Math.floor((zn - n) / 2);
  // scipy zoom (grid_mode=False): in = out·(in_len − 1)/(out_len − 1).
  const scale = zn > 1 ? (c - 1) / (zn - 1) : 0;
  return { top, trim, scale, last: top + c - 1 };
}

interface ZoomConfig extends PixelGrid {
  /** Per factor: [top, trim, scale, last] for rows, then for columns. */
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
// Bilinear sample of the crop [top, last] (per axis) at top + (o + trim)·scale.
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
${pixelMain(c, `
  var acc = px(b, yy, xx);
${c.axes.map((a) => `  acc += zoomed(b, yy, xx, vec4<f32>(${a.slice(0, 4).map(f32Lit).join(', ')}), vec4<f32>(${a.slice(4).map(f32Lit).join(', ')}));`).join('\n')}
  acc = clamp(acc * ${f32Lit(1 / (c.axes.length + 1))}, vec3<f32>(0.0), vec3<f32>(1.0));
  y[p * 3u] = acc.x; y[p * 3u + 1u] = acc.y; y[p * 3u + 2u] = acc.z;`)}`,
};

const zoomAxesOf = (factors: readonly number[], h: number, w: number): number[][] =>
  factors.map((z) => {
    const r = zoomAxis(h, z), c = zoomAxis(w, z);
    return [r.top, r.trim, r.scale, r.last, c.top, c.trim, c.scale, c.last];
  });

export const zoomBlur: CorruptionDef<readonly number[]> = {
  name: 'zoom_blur',
  params: [arange(1, 1.11, 0.01), arange(1, 1.16, 0.01), arange(1, 1.21, 0.02), arange(1, 1.26, 0.02), arange(1, 1.31, 0.03)],
  lower(factors, _seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const px = g.n * g.h * g.w;
    return {
      dispatches: [makeDispatch(zoomFamily, { ...g, axes: zoomAxesOf(factors, g.h, g.w) }, groups, [input(0), output(0)], { flops: 30 * px * factors.length, bytes: 24 * px })],
    };
  },
  ref(factors, _seed, x) {
    const [n, h, w] = x.shape;
    const axes = zoomAxesOf(factors, h, w).map((a) => a.map(Math.fround));
    const out = new Float64Array(x.data);
    const at = (b: number, r: number, s: number, c: number) => x.data[((b * h + r) * w + s) * 3 + c];
    for (const [ty, tr, sc, ly, tx, tc, sx, lx] of axes) {
      for (let b = 0; b < n; b++) for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
        const cy = Math.min(Math.max(ty + (yy + tr) * sc, ty), ly);
        const cx = Math.min(Math.max(tx + (xx + tc) * sx, tx), lx);
        const y0 = Math.floor(cy), x0 = Math.floor(cx);
        const fy = cy - y0, fx = cx - x0;
        const y1 = Math.min(y0 + 1, ly), x1 = Math.min(x0 + 1, lx);
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

export const BLURS = [defocusBlur, glassBlur, motionBlur, zoomBlur, gaussianBlur];

registerCorruptions(BLURS);
