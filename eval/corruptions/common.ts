// What several corruptions share, in one place:
//
//   launch plumbing  every kernel is 1-D over a flat range (pixels, rows or images), CORRUPT_WG
//                    invocations a workgroup over grid()'s 2-D grid of workgroups, no workgroup
//                    memory. Two entry-point shapes build on computeMain():
//                      pixelMain    one invocation per pixel of [N,H,W]: p (flat pixel), b (image),
//                                   q (pixel in image), yy, xx (i32); config PixelGrid
//                      stageShader  one invocation per item t < count, with the image sizes as
//                                   module constants N, H, W (the multi-stage weather pipelines);
//                                   config Dims & Launch, dispatched by stageDispatch()
//   borders          out-of-range index modes as scipy / OpenCV name them (Border), WGSL and TS
//   Gaussian taps    scipy's gaussian_filter1d taps, and `blur1d`: one separable pass along one
//                    axis of [N,H,W,ch] (gaussian_blur, glass_blur, elastic_transform, spatter's
//                    taps); skimage's gaussian() of an image as two such passes
//   motion kernel    ImageMagick's one-sided motion-blur kernel (motion_blur, snow)
//   zoom             scipy clipped_zoom along one axis (zoom_blur, snow)
//   rounding         half to even (Python's round(), WGSL round(), OpenCV's cvRound)
//   image max        per-row then per-image max (fog, spatter)
//
// Parameters and their sources: docs/imagenet-c.md.

import {
  type BindingRef,
  type Dispatch,
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Shape,
  ceilDiv,
  f32Lit,
  grid,
  makeDispatch,
  temp,
} from '../../kernels/kernel.js';

// ---- small helpers ---------------------------------------------------------------------------

/** Seeds are u32 in WGSL and TS alike. */
export const u32Seed = (seed: number): number => seed >>> 0;

export const clamp01 = (v: number): number => Math.min(Math.max(v, 0), 1);

/** Five severities' parameters from five rows of the reference's table. */
export const five = <T, P>(rows: readonly [T, T, T, T, T], make: (r: T) => P): [P, P, P, P, P] =>
  rows.map(make) as [P, P, P, P, P];

/** An [N,H,W,3] image from f64 values, clipped to [0,1] and stored as f32. */
export const toImage = (shape: number[], v: ArrayLike<number>): HostTensor => {
  const data = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) data[i] = clamp01(v[i]);
  return { shape: [...shape], data };
};

/** WGSL `const NAME = array<T, K>(…)`; dynamic indexing of module constants is as fast as a private array on SwiftShader. */
export function constArray(name: string, type: 'f32' | 'i32' | 'u32', values: readonly number[]): string {
  const lit = type === 'f32' ? f32Lit : type === 'i32' ? (v: number) => `${v}i` : (v: number) => `${v}u`;
  return `const ${name} = array<${type}, ${values.length}>(${values.map(lit).join(', ')});`;
}

/** WGSL: store the vec3 `v` as pixel p of y (pixelMain kernels). */
export const storeRgb = (v: string) => `  y[p * 3u] = ${v}.x; y[p * 3u + 1u] = ${v}.y; y[p * 3u + 2u] = ${v}.z;`;

// ---- launch plumbing -------------------------------------------------------------------------

/** Invocations per workgroup of every per-pixel and per-stage kernel. */
export const CORRUPT_WG = 64;

/** The entry point over index < count: `${index}` is the flat invocation index, then `body`. */
export function computeMain(
  c: { wg: number; gridX: number },
  count: number,
  index: string,
  body: string,
  what = '',
): string {
  return `
@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let ${index} = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;${what}
  if (${index} >= ${count}u) { return; }
${body}
}`;
}

/** One invocation per pixel of [N,H,W]: the sizes every per-pixel kernel bakes in. */
export interface PixelGrid {
  n: number;
  h: number;
  w: number;
  /** Invocations per workgroup, and workgroups along x of the 2-D grid (see grid()). */
  wg: number;
  gridX: number;
}

export function pixelGrid(shape: Shape, ctx: LowerContext): { g: PixelGrid; groups: [number, number, number] } {
  const [n, h, w] = shape;
  const groups = grid(ceilDiv(n * h * w, CORRUPT_WG), ctx.limits.maxComputeWorkgroupsPerDimension);
  return { g: { n, h, w, wg: CORRUPT_WG, gridX: groups[0] }, groups };
}

/** The entry point: defines p (flat pixel), b (image), q (pixel in image), yy, xx (i32), then `body`. */
export function pixelMain(g: PixelGrid, body: string): string {
  const hw = g.h * g.w;
  const pixel = `  let b = p / ${hw}u;                                // image in the batch
  let q = p - b * ${hw}u;                            // pixel within the image (y·W + x)
  let yy = i32(q / ${g.w}u);
  let xx = i32(q % ${g.w}u);`;
  return computeMain(g, g.n * hw, 'p', `${pixel}\n${body}`, '   // flat pixel index over [N,H,W]');
}

export interface Dims {
  n: number;
  h: number;
  w: number;
}
/** A stage: `count` invocations, CORRUPT_WG per workgroup over a grid() of workgroups. */
export interface Launch {
  count: number;
  wg: number;
  gridX: number;
}

export function dims(shape: Shape): Dims {
  return { n: shape[0], h: shape[1], w: shape[2] };
}

/** WGSL module of a stage: image-size constants, helpers, bindings, and a `main` over t < count. */
export function stageShader(c: Dims & Launch, bindings: string, body: string, helpers = ''): string {
  return `
const N = ${c.n}u;
const H = ${c.h}u;
const W = ${c.w}u;
${helpers}
${bindings}
${computeMain(c, c.count, 't', body)}`;
}

/** Pixel t of an [N,H,W] map → image n, row i, column j (stageShader kernels). */
export const STAGE_PIXEL = `  let n = t / (H * W);
  let i = (t / W) % H;
  let j = t % W;`;

/** Omit over each member of a union (stage configs are unions discriminated by `stage`). */
export type DistOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** A stage's dispatch: `count` invocations over a grid sized for the device. */
export function stageDispatch<C extends Launch>(
  family: KernelFamily<C>,
  cfg: DistOmit<C, keyof Launch>,
  count: number,
  bindings: BindingRef[],
  ctx: LowerContext,
  bytes?: number,
): Dispatch {
  const g = grid(ceilDiv(count, CORRUPT_WG), ctx.limits.maxComputeWorkgroupsPerDimension);
  const config = { ...cfg, count, wg: CORRUPT_WG, gridX: g[0] } as unknown as C;
  return makeDispatch(family, config, g, bindings, bytes === undefined ? {} : { bytes });
}

// ---- borders ---------------------------------------------------------------------------------

/**
 * Out-of-range index handling, named as scipy/OpenCV do:
 * clamp = scipy 'nearest' / ImageMagick edge; reflect = scipy 'reflect' (d c b a | a b c d);
 * reflect101 = OpenCV BORDER_REFLECT_101 / scipy 'mirror' (d c b | a b c d).
 */
export type Border = 'clamp' | 'reflect' | 'reflect101';

/** WGSL b_clamp, b_reflect, b_reflect101: a signed index and the axis length. */
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

/** BORDER_WGSL plus refl (reflect101) and clampi (clamp) for stage kernels' u32 lengths. */
export const STAGE_BORDER_WGSL = `${BORDER_WGSL}
fn refl(k: i32, len: u32) -> u32 { return u32(b_reflect101(k, i32(len))); }
fn clampi(k: i32, len: u32) -> u32 { return u32(b_clamp(k, i32(len))); }`;

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

// ---- rounding --------------------------------------------------------------------------------

/** Round half to even, as Python's round(), WGSL round() and OpenCV's cvRound. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- Gaussian taps and the separable pass ----------------------------------------------------

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

/** scipy.ndimage.gaussian_filter1d: one pass along one axis of [N,H,W,ch], one invocation per pixel. */
export const blur1dFamily: KernelFamily<Blur1dConfig> = {
  name: 'corrupt-blur1d',
  wgsl(c) {
    const r = (c.weights.length - 1) / 2;
    const V = `vec${c.ch}<f32>`;
    const load = (o: string) => `${V}(${Array.from({ length: c.ch }, (_, k) => `src[${o} + ${k}u]`).join(', ')})`;
    const at =
      c.axis === 0 ? `(b * ${c.h}u + u32(s)) * ${c.w}u + u32(xx)` : `(b * ${c.h}u + u32(yy)) * ${c.w}u + u32(s)`;
    return `
${BORDER_WGSL}
${constArray('WT', 'f32', c.weights)}
@group(0) @binding(0) var<storage, read> src: array<f32>;        // input  [N,H,W,${c.ch}]
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;  // output [N,H,W,${c.ch}]
${pixelMain(
  c,
  `
  let centre = ${c.axis === 0 ? 'yy' : 'xx'};
  var acc = ${V}(0.0);
  for (var k = 0; k < ${c.weights.length}; k++) {
    let s = b_${c.border}(centre + k - ${r}, ${c.axis === 0 ? c.h : c.w});
    let o = (${at}) * ${c.ch}u;
    acc += WT[k] * ${load('o')};
  }
  acc *= ${f32Lit(c.scale)};
${Array.from({ length: c.ch }, (_, k) => `  dst[p * ${c.ch}u + ${k}u] = acc[${k}];`).join('\n')}`,
)}`;
  },
};

/** A blur1d dispatch from `from` to `to` over an [N,H,W,ch] tensor. */
export function blur1d(
  shape: Shape,
  ch: number,
  axis: 0 | 1,
  weights: readonly number[],
  border: Border,
  scale: number,
  from: BindingRef,
  to: BindingRef,
  ctx: LowerContext,
) {
  const { g, groups } = pixelGrid(shape, ctx);
  const cfg: Blur1dConfig = { ...g, ch, axis, weights: weights.map(Math.fround), border, scale };
  const px = g.n * g.h * g.w;
  return makeDispatch(blur1dFamily, cfg, groups, [from, to], {
    flops: 2 * px * ch * weights.length,
    bytes: 8 * px * ch,
  });
}

/** Reference of blur1d on a flat [N,H,W,ch] array (f64 accumulation). */
export function blur1dRef(
  src: Float32Array | Float64Array,
  n: number,
  h: number,
  w: number,
  ch: number,
  axis: 0 | 1,
  weights: readonly number[],
  border: Border,
  scale = 1,
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

/** skimage gaussian(σ, multichannel) of [N,H,W,3] images: rows then columns, 'nearest' borders, truncate 4. */
export function gaussianImageRef(
  x: Float32Array | Float64Array,
  shape: readonly number[],
  sigma: number,
): Float64Array {
  const [n, h, w] = shape;
  const wt = gaussianWeights(sigma, 4).map(Math.fround);
  return blur1dRef(blur1dRef(x, n, h, w, 3, 0, wt, 'clamp'), n, h, w, 3, 1, wt, 'clamp');
}

/** gaussianImageRef's two blur1d dispatches, `from` → temp(via) → `to`. */
export function gaussianImageLower(
  shape: Shape,
  sigma: number,
  from: BindingRef,
  to: BindingRef,
  via: number,
  ctx: LowerContext,
) {
  const wt = gaussianWeights(sigma, 4);
  return [
    blur1d(shape, 3, 0, wt, 'clamp', 1, from, temp(via), ctx),
    blur1d(shape, 3, 1, wt, 'clamp', 1, temp(via), to, ctx),
  ];
}

/** Values in an [N,H,W,3] image batch (a temp's size). */
export const imageElems = (s: Shape): number => s[0] * s[1] * s[2] * 3;

// ---- motion kernel ---------------------------------------------------------------------------

/**
 * ImageMagick's motion-blur kernel (GetMotionBlurKernel, GetOptimalKernelWidth1D(radius)):
 * width 2·⌈radius⌉+1, one-sided Gaussian exp(−i²/2σ²), normalised; f64 (kernels round to f32).
 */
export function motionKernel(radius: number, sigma: number): number[] {
  const width = 2 * Math.ceil(radius) + 1;
  const k = Array.from({ length: width }, (_, i) => Math.exp(-(i * i) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / sum);
}

// ---- zoom ------------------------------------------------------------------------------------

/**
 * clipped_zoom along one axis of length `len`: crop ch = ⌈len/z⌉ from `top`, zoom to
 * out = round(ch·z) (scipy's output size, Python's half-even round), keep `len` from `trim`.
 * Output o reads crop coordinate (o + trim)·ratio, ratio = (ch−1)/(out−1) (scipy zoom, grid_mode
 * off). The reference assumes square images; callers apply it per axis.
 */
export function zoomAxis(len: number, z: number): { top: number; ch: number; trim: number; ratio: number } {
  const ch = Math.ceil(len / z);
  const top = Math.floor((len - ch) / 2);
  const out = roundHalfEven(ch * z);
  const trim = Math.floor((out - len) / 2);
  return { top, ch, trim, ratio: out > 1 ? (ch - 1) / (out - 1) : 0 };
}

// ---- image max (fog, spatter): dst[r] = max_k src[r·len + k] ---------------------------------

interface RowMaxConfig extends Launch {
  len: number;
}

const rowMaxFamily: KernelFamily<RowMaxConfig> = {
  name: 'weather-rowmax',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> src: array<f32>;        // input  [rows, ${c.len}]
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;  // output [rows]
${computeMain(
  c,
  c.count,
  't',
  `  var m = src[t * ${c.len}u];
  for (var k = 1u; k < ${c.len}u; k++) { m = max(m, src[t * ${c.len}u + k]); }
  dst[t] = m;`,
)}`,
};

export function rowMaxRef(src: Float32Array, rows: number, len: number): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = src[r * len];
    for (let k = 1; k < len; k++) m = Math.max(m, src[r * len + k]);
    out[r] = m;
  }
  return out;
}

/** Two dispatches: per-row max of [N, rowsPerImage, len] into temp rowsTemp, then per-image max into temp maxTemp. */
export function imageMax(
  src: BindingRef,
  rowsTemp: number,
  maxTemp: number,
  n: number,
  rowsPerImage: number,
  len: number,
  ctx: LowerContext,
): Dispatch[] {
  const bytes = 4 * n * rowsPerImage * (len + 1);
  return [
    stageDispatch(rowMaxFamily, { len }, n * rowsPerImage, [src, temp(rowsTemp)], ctx, bytes),
    stageDispatch(rowMaxFamily, { len: rowsPerImage }, n, [temp(rowsTemp), temp(maxTemp)], ctx),
  ];
}
