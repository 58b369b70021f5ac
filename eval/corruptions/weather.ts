// Weather corruptions of ImageNet-C as GPU ops: snow, frost, fog (in mCE) and spatter (extra),
// ported from hendrycks/robustness ImageNet-C/imagenet_c/imagenet_c/corruptions.py with the
// parameters of REFERENCE.md §4. Every stage is one invocation per output element (pixel, row
// or image), no workgroup memory; images are independent, their randomness is the shared
// counter-based RNG keyed by (seed, image id, stream, index), so a corrupted image does not
// depend on its batch or shard. Each corruption keeps its plain-TS reference (`ref`) beside its
// WGSL, stage for stage.
//
// snow     x' = b·x + (1−b)·max(x, gray(x)·1.5 + 0.5);  y = clip(x' + s + rot180(s))
//   stages: layer  N(loc, scale) noise → clipped_zoom (bilinear, as scipy zoom order 1) →
//                  zero below the threshold → clip [0,1]                      [N,H,W] temp 0
//           blur   ImageMagick MotionBlurImage: one-sided Gaussian of width 2·⌈radius⌉+1 along
//                  an angle U(−135°, −45°) per image, offsets ⌈k·cos a − ½⌉, ⌈k·sin a − ½⌉,
//                  edge pixels repeated                                        [N,H,W] temp 1
//           blend  the formula above (gray = cv2 RGB2GRAY weights)             output
//   deviations: the snow layer is not quantised to 8 bits before and after the motion blur (the
//   reference round-trips it through PNG); clipped_zoom is applied per axis, so non-square
//   images work (the reference assumes square).
//
// frost    y = clip(c0·x + c1·frost)
//   the texture is GENERATED (textures.ts `frostTexture`, greyish-blue ice film + dendrites,
//   [S,S,3], S = max(512, 2·max(H,W))), not the reference's six frost photographs, which we
//   cannot ship. Per image: a random crop (offsets in [0, S−H) × [0, S−W) as the reference's
//   randint) and a random horizontal/vertical flip (standing in for the choice of photo).
//
// fog      y = clip((x + c0·fractal) · max(x) / (max(x) + c0)), max over the image
//   stages: rowmax [N·H] → imgmax [N] (temps 0, 1) → blend.
//   The reference draws a fresh 256×256 plasma fractal per image on the CPU (diamond-square is
//   sequential). Here a bank of FOG_BANK fractals (textures.ts, faithful port, same mapsize and
//   decay) is an asset; each image picks one, a random toroidal roll (the fractal wraps, as the
//   reference builds it with np.roll) and one of the 8 flips/transposes, then crops H×W.
//
// spatter  (extra) noise N(c0, c1) → Gaussian σ = c2 (skimage: truncate 4, mode nearest) →
//   zero below c3, then by mode:
//   liquid (c5 = 0), with the OpenCV steps ported on integer-valued maps as the reference's uint8:
//     ll8 = ⌊ll·255⌋; Canny(ll8, 50, 150) → Euclidean distance to the nearest edge, truncated at
//     20 → 3×3 box blur, ⌊·⌋ → equalizeHist (per-image histogram of the 21 levels → LUT) →
//     emboss [[−2,−1,0],[−1,1,1],[0,1,2]] saturated to [0,255] → 3×3 box blur rounded →
//     m = ll8·dist / max(ll8·dist) · c4;  y = clip(x + m·(175,238,238)/255)
//     stages: noise, gauss-h, gauss-v(→ll8), sobel, canny, coldist, rowdist, boxfloor, hist, lut,
//     emboss, boxround(→m), rowmax, imgmax, blend.
//   mud (c5 = 1): m = Gaussian σ = c4 of (ll > c3); m < 0.8 → 0; y = clip(x·(1−m) + m·(63,42,20)/255)
//     stages: noise, gauss-h, gauss-v(→binary), gauss-h, mud (vertical pass + blend).
//   deviations: Canny's hysteresis is one step (a weak pixel is kept if an 8-neighbour is strong;
//   OpenCV follows chains of weak pixels); cv2.distanceTransform(DIST_L2, 5) is a 5×5 chamfer
//   approximation where we compute the exact Euclidean distance (separable search within the
//   truncation radius); ⌊·⌋ of the blurred distance takes +1e-3 so exact integers never fall a
//   level through f32 rounding of sqrt; ll·255 above 255 saturates (numpy's uint8 cast wraps;
//   it needs noise > 1, which does not happen in practice); max(m) = 0 gives m = 0 (the
//   reference divides 0 by 0).
//
// Randomness: common.ts's rng_normal uses an accurate cos (cos_2pi, also used for the snow angle). Without it, thresholded noise moved by whole blobs
// between SwiftShader and the reference; with it they agree to ~1e-7.
//
// Layout: x and y are [N,H,W,3] NHWC; ids [N] (f32); maps in temps are [N,H,W] single-channel.

import {
  type Dispatch, type HostTensor, type KernelFamily, type LowerContext, type Lowering, type Shape, type BindingRef,
  ceilDiv, f32Lit, grid, input, makeDispatch, output, temp,
} from '../../kernels/kernel.js';
import { type CorruptionDef, RNG_WGSL, registerCorruptions, rngNormal, rngU32, rngUniform } from './common.js';
import { fogBank, frostTexture, memoTexture } from './textures.js';

/** One source of truth for the launch shape of every weather stage. */
export const WEATHER_TILING = { wg: 64 } as const;

/** RNG streams, one per random quantity (the seed and image id are the other key parts). */
export const WEATHER_STREAMS = {
  snowNoise: 0x736e0001, snowAngle: 0x736e0002,
  frostCrop: 0x66720101,
  fogPick: 0x666f0101,
  spatterNoise: 0x73700001,
} as const;

/** Fractals in the fog bank; each image uses one of them, rolled and flipped. */
export const FOG_BANK = 8;

const f = f32Lit;
const five = <T, P>(rows: readonly [T, T, T, T, T], make: (r: T) => P): [P, P, P, P, P] => rows.map(make) as [P, P, P, P, P];

// ---- shared launch plumbing ------------------------------------------------------------------

interface Dims { n: number; h: number; w: number }
/** Every stage: `count` invocations, WEATHER_TILING.wg per workgroup over a grid() of workgroups. */
interface Launch { count: number; wg: number; gridX: number }

function dims(shape: Shape): Dims {
  return { n: shape[0], h: shape[1], w: shape[2] };
}

/** WGSL module: image-size constants, helpers, bindings, and a `main` over t < count. */
function shader(c: Dims & Launch, bindings: string, body: string, helpers = ''): string {
  return `
const N = ${c.n}u;
const H = ${c.h}u;
const W = ${c.w}u;
${helpers}
${bindings}

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;
  if (t >= ${c.count}u) { return; }
${body}
}`;
}

/** Pixel t of an [N,H,W] map → image n, row i, column j. */
const PIXEL = `  let n = t / (H * W);
  let i = (t / W) % H;
  let j = t % W;`;

/** Reflect-101 (OpenCV's default border) and replicate, for signed coordinates. */
const BORDER_WGSL = `
fn refl(k: i32, len: u32) -> u32 {
  let n = i32(len);
  var q = k;
  if (q < 0) { q = -q; }
  if (q >= n) { q = 2 * n - 2 - q; }
  return u32(clamp(q, 0, n - 1));
}
fn clampi(k: i32, len: u32) -> u32 { return u32(clamp(k, 0, i32(len) - 1)); }`;

function refl(k: number, n: number): number {
  let q = Math.abs(k);
  if (q >= n) q = 2 * n - 2 - q;
  return Math.min(Math.max(q, 0), n - 1);
}
const clampi = (k: number, n: number) => Math.min(Math.max(k, 0), n - 1);

/** Omit over each member of a union (configs are unions discriminated by `stage`). */
type DistOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function launch<C extends Launch>(
  family: KernelFamily<C>, cfg: DistOmit<C, keyof Launch>, count: number, bindings: BindingRef[], ctx: LowerContext, bytes?: number,
): Dispatch {
  const g = grid(ceilDiv(count, WEATHER_TILING.wg), ctx.limits.maxComputeWorkgroupsPerDimension);
  const config = { ...cfg, count, wg: WEATHER_TILING.wg, gridX: g[0] } as unknown as C;
  return makeDispatch(family, config, g, bindings, bytes === undefined ? {} : { bytes });
}

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));
const fr = Math.fround;

/** Round half to even, as WGSL round() and OpenCV's cvRound. */
function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- row max (fog, spatter): dst[r] = max_k src[r·len + k] ------------------------------------

interface RowMaxConfig extends Launch { len: number }

const rowMaxFamily: KernelFamily<RowMaxConfig> = {
  name: 'weather-rowmax',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> src: array<f32>;        // input  [rows, ${c.len}]
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;  // output [rows]

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;
  if (t >= ${c.count}u) { return; }
  var m = src[t * ${c.len}u];
  for (var k = 1u; k < ${c.len}u; k++) { m = max(m, src[t * ${c.len}u + k]); }
  dst[t] = m;
}`,
};

function rowMaxRef(src: Float32Array, rows: number, len: number): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = src[r * len];
    for (let k = 1; k < len; k++) m = Math.max(m, src[r * len + k]);
    out[r] = m;
  }
  return out;
}

/** Two dispatches: per-row max of [N, rowsPerImage, len], then per-image max. */
function imageMax(src: BindingRef, rowsTemp: number, maxTemp: number, n: number, rowsPerImage: number, len: number, ctx: LowerContext): Dispatch[] {
  return [
    launch(rowMaxFamily, { len }, n * rowsPerImage, [src, temp(rowsTemp)], ctx, 4 * n * rowsPerImage * (len + 1)),
    launch(rowMaxFamily, { len: rowsPerImage }, n, [temp(rowsTemp), temp(maxTemp)], ctx),
  ];
}

// =============================================================================================
// fog
// =============================================================================================

export interface FogParams { strength: number; decay: number }

interface FogConfig extends Dims, Launch { seed: number; strength: number; k: number; m: number }

const fogFamily: KernelFamily<FogConfig> = {
  name: 'fog',
  wgsl: (c) => shader(c, `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;        // input  [N] image ids
@group(0) @binding(2) var<storage, read> bank: array<f32>;       // input  [K,M,M] plasma fractals
@group(0) @binding(3) var<storage, read> xmax: array<f32>;       // temp   [N] max of each image
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // output [N,H,W,3]`, `
${PIXEL}
  let id = u32(ids[n]);
  let k = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.fogPick}u, 0u) % ${c.k}u;
  let oy = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.fogPick}u, 1u) % ${c.m}u;
  let ox = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.fogPick}u, 2u) % ${c.m}u;
  let d = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.fogPick}u, 3u) % 8u;
  var a = i;
  var b = j;
  if ((d & 4u) != 0u) { a = j; b = i; }
  if ((d & 1u) != 0u) { a = ${c.m - 1}u - a; }
  if ((d & 2u) != 0u) { b = ${c.m - 1}u - b; }
  let fog = bank[(k * ${c.m}u + (a + oy) % ${c.m}u) * ${c.m}u + (b + ox) % ${c.m}u];
  let mx = xmax[n];
  for (var ch = 0u; ch < 3u; ch++) {
    y[t * 3u + ch] = clamp((x[t * 3u + ch] + ${f(c.strength)} * fog) * mx / (mx + ${f(c.strength)}), 0.0, 1.0);
  }`, RNG_WGSL),
};

/** Fractal side: the reference's 256, or the next power of two that covers the image. */
const fogMapSize = (h: number, w: number) => Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(h, w))));

export const fog: CorruptionDef<FogParams> = {
  name: 'fog',
  params: five([[1.5, 2], [2, 2], [2.5, 1.7], [2.5, 1.5], [3, 1.4]] as const, ([strength, decay]) => ({ strength, decay })),
  assets(p, seed, shape) {
    const m = fogMapSize(shape[1], shape[2]);
    const data = memoTexture(`fog:${seed}:${m}:${p.decay}`, () => fogBank(FOG_BANK, m, p.decay, seed));
    return [{ shape: [FOG_BANK, m, m], data }];
  },
  lower(p, seed, shape, ctx): Lowering {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    return {
      dispatches: [
        ...imageMax(input(0), 0, 1, d.n, d.h, d.w * 3, ctx),
        launch(fogFamily, { ...d, seed: seed >>> 0, strength: p.strength, k: FOG_BANK, m: fogMapSize(d.h, d.w) }, px,
          [input(0), input(1), input(2), temp(1), output(0)], ctx, 4 * px * 7),
      ],
      temps: [d.n * d.h, d.n],
    };
  },
  ref(p, seed, x, ids, [bank]) {
    const [n, h, w] = x.shape;
    const m = bank.shape[1];
    const xmax = rowMaxRef(rowMaxRef(x.data, n * h, w * 3), n, h);
    const y = new Float32Array(x.data.length);
    const s = seed >>> 0, st = WEATHER_STREAMS.fogPick;
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      const k = rngU32(s, id, st, 0) % bank.shape[0], oy = rngU32(s, id, st, 1) % m, ox = rngU32(s, id, st, 2) % m, dd = rngU32(s, id, st, 3) % 8;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let a = dd & 4 ? j : i, c = dd & 4 ? i : j;
          if (dd & 1) a = m - 1 - a;
          if (dd & 2) c = m - 1 - c;
          const fogv = bank.data[(k * m + ((a + oy) % m)) * m + ((c + ox) % m)];
          for (let ch = 0; ch < 3; ch++) {
            const q = ((b * h + i) * w + j) * 3 + ch;
            y[q] = clamp01(((x.data[q] + p.strength * fogv) * xmax[b]) / (xmax[b] + p.strength));
          }
        }
      }
    }
    return { shape: [...x.shape], data: y };
  },
};

// =============================================================================================
// frost
// =============================================================================================

export interface FrostParams { image: number; frost: number }

interface FrostConfig extends Dims, Launch { seed: number; image: number; frost: number; s: number }

const frostFamily: KernelFamily<FrostConfig> = {
  name: 'frost',
  wgsl: (c) => shader(c, `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> ids: array<f32>;        // input  [N] image ids
@group(0) @binding(2) var<storage, read> tex: array<f32>;        // input  [S,S,3] frost texture
@group(0) @binding(3) var<storage, read_write> y: array<f32>;    // output [N,H,W,3]`, `
${PIXEL}
  let id = u32(ids[n]);
  let y0 = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.frostCrop}u, 0u) % ${c.s - c.h}u;
  let x0 = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.frostCrop}u, 1u) % ${c.s - c.w}u;
  let flip = rng_u32(${c.seed}u, id, ${WEATHER_STREAMS.frostCrop}u, 2u) % 4u;
  var a = i;
  var b = j;
  if ((flip & 1u) != 0u) { a = H - 1u - i; }
  if ((flip & 2u) != 0u) { b = W - 1u - j; }
  let q = ((y0 + a) * ${c.s}u + x0 + b) * 3u;
  for (var ch = 0u; ch < 3u; ch++) {
    y[t * 3u + ch] = clamp(${f(c.image)} * x[t * 3u + ch] + ${f(c.frost)} * tex[q + ch], 0.0, 1.0);
  }`, RNG_WGSL),
};

const frostSize = (h: number, w: number) => Math.max(512, 2 * Math.max(h, w));

export const frost: CorruptionDef<FrostParams> = {
  name: 'frost',
  params: five([[1, 0.4], [0.8, 0.6], [0.7, 0.7], [0.65, 0.7], [0.6, 0.75]] as const, ([image, frostW]) => ({ image, frost: frostW })),
  assets(_p, seed, shape) {
    const s = frostSize(shape[1], shape[2]);
    return [{ shape: [s, s, 3], data: memoTexture(`frost:${seed}:${s}`, () => frostTexture(s, seed)) }];
  },
  lower(p, seed, shape, ctx) {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    const cfg = { ...d, seed: seed >>> 0, image: p.image, frost: p.frost, s: frostSize(d.h, d.w) };
    return { dispatches: [launch(frostFamily, cfg, px, [input(0), input(1), input(2), output(0)], ctx, 4 * px * 9)] };
  },
  ref(p, seed, x, ids, [tex]) {
    const [n, h, w] = x.shape;
    const s = tex.shape[0], st = WEATHER_STREAMS.frostCrop, sd = seed >>> 0;
    const y = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      const y0 = rngU32(sd, id, st, 0) % (s - h), x0 = rngU32(sd, id, st, 1) % (s - w), flip = rngU32(sd, id, st, 2) % 4;
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const a = flip & 1 ? h - 1 - i : i, c = flip & 2 ? w - 1 - j : j;
          const q = ((y0 + a) * s + x0 + c) * 3;
          for (let ch = 0; ch < 3; ch++) {
            const o = ((b * h + i) * w + j) * 3 + ch;
            y[o] = clamp01(fr(p.image) * x.data[o] + fr(p.frost) * tex.data[q + ch]);
          }
        }
      }
    }
    return { shape: [...x.shape], data: y };
  },
};

// =============================================================================================
// snow
// =============================================================================================

export interface SnowParams { loc: number; scale: number; zoom: number; threshold: number; radius: number; sigma: number; blend: number }

/**
 * clipped_zoom along one axis of length `len`: crop ch = ⌈len/z⌉ from `top`, zoom to
 * out = round(ch·z) (scipy's output size, Python's half-even round), keep `len` from `trim`.
 * Output o reads crop coordinate (o + trim)·ratio, ratio = (ch−1)/(out−1) (scipy, grid_mode off).
 */
export function zoomAxis(len: number, z: number): { top: number; ch: number; trim: number; ratio: number } {
  const ch = Math.ceil(len / z);
  const top = Math.floor((len - ch) / 2);
  const out = roundEven(ch * z);
  const trim = Math.floor((out - len) / 2);
  return { top, ch, trim, ratio: out > 1 ? (ch - 1) / (out - 1) : 0 };
}

/** ImageMagick's motion-blur kernel: width 2·⌈radius⌉+1, one-sided Gaussian, normalised. */
export function motionKernel(radius: number, sigma: number): number[] {
  const width = 2 * Math.ceil(radius) + 1;
  const k = Array.from({ length: width }, (_, i) => Math.exp(-(i * i) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / sum);
}

type SnowConfig = Dims & Launch & (
  | { stage: 'layer'; seed: number; loc: number; scale: number; threshold: number; zy: readonly number[]; zx: readonly number[] }
  | { stage: 'blur'; seed: number; kernel: readonly number[] }
  | { stage: 'blend'; blend: number }
);

const snowFamily: KernelFamily<SnowConfig> = {
  name: 'snow',
  wgsl(c) {
    switch (c.stage) {
      case 'layer': {
        // zy/zx = [top, ch, trim, ratio]
        const [ty, chy, ry, ay] = c.zy, [tx, chx, rx, ax] = c.zx;
        return shader(c, `
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read_write> layer: array<f32>;  // temp   [N,H,W] snow layer`, `
${PIXEL}
  let id = u32(ids[n]);
  let cy = f32(i + ${ry}u) * ${f(ay)};
  let cx = f32(j + ${rx}u) * ${f(ax)};
  let y0 = min(u32(cy), ${chy - 1}u);
  let x0 = min(u32(cx), ${chx - 1}u);
  let y1 = min(y0 + 1u, ${chy - 1}u);
  let x1 = min(x0 + 1u, ${chx - 1}u);
  let fy = cy - f32(y0);
  let fx = cx - f32(x0);
  let top = noise(id, ${ty}u + y0, ${tx}u + x0) * (1.0 - fx) + noise(id, ${ty}u + y0, ${tx}u + x1) * fx;
  let bottom = noise(id, ${ty}u + y1, ${tx}u + x0) * (1.0 - fx) + noise(id, ${ty}u + y1, ${tx}u + x1) * fx;
  var v = top * (1.0 - fy) + bottom * fy;
  if (v < ${f(c.threshold)}) { v = 0.0; }
  layer[t] = clamp(v, 0.0, 1.0);`, `${RNG_WGSL}
fn noise(id: u32, r: u32, col: u32) -> f32 {
  return ${f(c.loc)} + ${f(c.scale)} * rng_normal(${c.seed}u, id, ${WEATHER_STREAMS.snowNoise}u, r * W + col);
}`);
      }
      case 'blur':
        return shader(c, `
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read> layer: array<f32>;        // temp   [N,H,W] snow layer
@group(0) @binding(2) var<storage, read_write> blurred: array<f32>; // temp  [N,H,W] motion-blurred layer`, `
${PIXEL}
  let id = u32(ids[n]);
  // angle U(−135°, −45°) in turns; cos_2pi rather than the adapter's cos, so taps agree everywhere
  let turns = -0.375 + 0.25 * rng_uniform(${c.seed}u, id, ${WEATHER_STREAMS.snowAngle}u, 0u);
  let ca = cos_2pi(turns);
  let sa = cos_2pi(turns - 0.25);
  var acc = 0.0;
  for (var k = 0u; k < ${c.kernel.length}u; k++) {
    let r = clampi(i32(i) + i32(ceil(f32(k) * sa - 0.5)), H);
    let col = clampi(i32(j) + i32(ceil(f32(k) * ca - 0.5)), W);
    acc += KW[k] * layer[(n * H + r) * W + col];
  }
  blurred[t] = acc;`, `${RNG_WGSL}${BORDER_WGSL}
var<private> KW: array<f32, ${c.kernel.length}> = array<f32, ${c.kernel.length}>(${c.kernel.map(f).join(', ')});`);
      case 'blend':
        return shader(c, `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> snow: array<f32>;       // temp   [N,H,W] blurred snow layer
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // output [N,H,W,3]`, `
${PIXEL}
  let s = snow[t] + snow[(n * H + H - 1u - i) * W + W - 1u - j];
  let gray = 0.299 * x[t * 3u] + 0.587 * x[t * 3u + 1u] + 0.114 * x[t * 3u + 2u];
  for (var ch = 0u; ch < 3u; ch++) {
    let v = x[t * 3u + ch];
    let xb = ${f(c.blend)} * v + ${f(1 - c.blend)} * max(v, gray * 1.5 + 0.5);
    y[t * 3u + ch] = clamp(xb + s, 0.0, 1.0);
  }`);
    }
  },
};

function snowStages(p: SnowParams, h: number, w: number) {
  const zy = zoomAxis(h, p.zoom), zx = zoomAxis(w, p.zoom);
  return { zy, zx, kernel: motionKernel(p.radius, p.sigma) };
}

export const snow: CorruptionDef<SnowParams> = {
  name: 'snow',
  params: five([
    [0.1, 0.3, 3, 0.5, 10, 4, 0.8], [0.2, 0.3, 2, 0.5, 12, 4, 0.7], [0.55, 0.3, 4, 0.9, 12, 8, 0.7],
    [0.55, 0.3, 4.5, 0.85, 12, 8, 0.65], [0.55, 0.3, 2.5, 0.85, 12, 12, 0.55],
  ] as const, ([loc, scale, zoom, threshold, radius, sigma, blend]) => ({ loc, scale, zoom, threshold, radius, sigma, blend })),
  lower(p, seed, shape, ctx) {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    const { zy, zx, kernel } = snowStages(p, d.h, d.w);
    const axis = (z: typeof zy) => [z.top, z.ch, z.trim, z.ratio];
    const s = seed >>> 0;
    return {
      dispatches: [
        launch(snowFamily, { ...d, stage: 'layer', seed: s, loc: p.loc, scale: p.scale, threshold: p.threshold, zy: axis(zy), zx: axis(zx) }, px, [input(1), temp(0)], ctx),
        launch(snowFamily, { ...d, stage: 'blur', seed: s, kernel }, px, [input(1), temp(0), temp(1)], ctx),
        launch(snowFamily, { ...d, stage: 'blend', blend: p.blend }, px, [input(0), temp(1), output(0)], ctx, 4 * px * 8),
      ],
      temps: [px, px],
    };
  },
  ref(p, seed, x, ids) {
    const [n, h, w] = x.shape;
    const { zy, zx, kernel } = snowStages(p, h, w);
    const s = seed >>> 0;
    const layer = new Float32Array(n * h * w);
    const blurred = new Float32Array(n * h * w);
    const y = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const id = ids[b] >>> 0;
      const noise = (r: number, c: number) => p.loc + p.scale * rngNormal(s, id, WEATHER_STREAMS.snowNoise, r * w + c);
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const cy = fr((i + zy.trim) * fr(zy.ratio)), cx = fr((j + zx.trim) * fr(zx.ratio));
          const y0 = Math.min(Math.floor(cy), zy.ch - 1), x0 = Math.min(Math.floor(cx), zx.ch - 1);
          const y1 = Math.min(y0 + 1, zy.ch - 1), x1 = Math.min(x0 + 1, zx.ch - 1);
          const fy = cy - y0, fx = cx - x0;
          const top = noise(zy.top + y0, zx.top + x0) * (1 - fx) + noise(zy.top + y0, zx.top + x1) * fx;
          const bottom = noise(zy.top + y1, zx.top + x0) * (1 - fx) + noise(zy.top + y1, zx.top + x1) * fx;
          let v = top * (1 - fy) + bottom * fy;
          if (v < fr(p.threshold)) v = 0;
          layer[(b * h + i) * w + j] = clamp01(v);
        }
      }
      const turns = fr(-0.375 + 0.25 * rngUniform(s, id, WEATHER_STREAMS.snowAngle, 0));
      const ca = fr(Math.cos(2 * Math.PI * turns)), sa = fr(Math.cos(2 * Math.PI * fr(turns - 0.25)));
      const offsets = kernel.map((_, k) => [Math.ceil(fr(fr(k * sa) - 0.5)), Math.ceil(fr(fr(k * ca) - 0.5))]);
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let acc = 0;
          kernel.forEach((kw, k) => { acc += fr(kw) * layer[(b * h + clampi(i + offsets[k][0], h)) * w + clampi(j + offsets[k][1], w)]; });
          blurred[(b * h + i) * w + j] = acc;
        }
      }
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const t = (b * h + i) * w + j;
          const sv = blurred[t] + blurred[(b * h + h - 1 - i) * w + w - 1 - j];
          const gray = 0.299 * x.data[3 * t] + 0.587 * x.data[3 * t + 1] + 0.114 * x.data[3 * t + 2];
          for (let ch = 0; ch < 3; ch++) {
            const v = x.data[3 * t + ch];
            y[3 * t + ch] = clamp01(p.blend * v + (1 - p.blend) * Math.max(v, gray * 1.5 + 0.5) + sv);
          }
        }
      }
    }
    return { shape: [...x.shape], data: y };
  },
};

// =============================================================================================
// spatter (extra)
// =============================================================================================

export interface SpatterParams { loc: number; scale: number; sigma: number; threshold: number; intensity: number; mud: boolean }

/** scipy/skimage Gaussian taps: radius ⌊4σ + ½⌋, exp(−x²/2σ²) normalised. */
export function gaussianTaps(sigma: number): number[] {
  const r = Math.floor(4 * sigma + 0.5);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp((-0.5 * (i - r) * (i - r)) / (sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / sum);
}

/** Distance-transform truncation (cv2.threshold(dist, 20, 20, THRESH_TRUNC)); also the histogram's last level. */
const DIST_MAX = 20;
const LEVELS = DIST_MAX + 1;
/** OpenCV Canny: tan 22.5° in 15-bit fixed point; thresholds (low, high) of the reference. */
const TG22 = 13573;
const CANNY_LOW = 50, CANNY_HIGH = 150;
const EMBOSS = [-2, -1, 0, -1, 1, 1, 0, 1, 2];
const WATER = [175 / 255, 238 / 255, 238 / 255];
const MUD = [63 / 255, 42 / 255, 20 / 255];

type GaussPost = 'none' | 'u8' | 'binary';

type SpatterConfig = Dims & Launch & (
  | { stage: 'noise'; seed: number; loc: number; scale: number }
  | { stage: 'gauss'; axis: 'h' | 'v'; taps: readonly number[]; post: GaussPost; threshold: number }
  | { stage: 'mud'; taps: readonly number[] }
  | { stage: 'sobel' | 'canny' | 'coldist' | 'rowdist' | 'boxfloor' | 'hist' | 'lut' | 'emboss' | 'boxround' }
  | { stage: 'blend'; intensity: number }
);

const tapsWgsl = (taps: readonly number[]) =>
  `var<private> TAPS: array<f32, ${taps.length}> = array<f32, ${taps.length}>(${taps.map(f).join(', ')});`;

/** Binding lines: (name, access, comment). */
function binds(list: [string, 'read' | 'read_write', string][]): string {
  return list.map(([name, acc, what], k) => `@group(0) @binding(${k}) var<storage, ${acc}> ${name}: array<f32>;  // ${what}`).join('\n');
}

const spatterFamily: KernelFamily<SpatterConfig> = {
  name: 'spatter',
  wgsl(c) {
    switch (c.stage) {
      case 'noise':
        return shader(c, binds([['ids', 'read', 'input [N] image ids'], ['dst', 'read_write', 'temp [N,H,W] N(loc, scale) noise']]), `
${PIXEL}
  dst[t] = ${f(c.loc)} + ${f(c.scale)} * rng_normal(${c.seed}u, u32(ids[n]), ${WEATHER_STREAMS.spatterNoise}u, i * W + j);`, RNG_WGSL);
      case 'gauss': {
        const r = (c.taps.length - 1) / 2;
        const at = c.axis === 'h' ? `(n * H + i) * W + clampi(i32(j) + i32(k) - ${r}, W)` : `(n * H + clampi(i32(i) + i32(k) - ${r}, H)) * W + j`;
        const post = c.post === 'u8' ? `
  if (v < ${f(c.threshold)}) { v = 0.0; }
  v = floor(clamp(v, 0.0, 1.0) * 255.0);` : c.post === 'binary' ? `
  v = select(0.0, 1.0, v > ${f(c.threshold)});` : '';
        return shader(c, binds([['src', 'read', 'temp [N,H,W]'], ['dst', 'read_write', `temp [N,H,W] Gaussian along ${c.axis === 'h' ? 'rows' : 'columns'}, then ${c.post}`]]), `
${PIXEL}
  var v = 0.0;
  for (var k = 0u; k < ${c.taps.length}u; k++) { v += TAPS[k] * src[${at}]; }${post}
  dst[t] = v;`, `${BORDER_WGSL}\n${tapsWgsl(c.taps)}`);
      }
      case 'mud': {
        const r = (c.taps.length - 1) / 2;
        return shader(c, binds([
          ['x', 'read', 'input [N,H,W,3]'], ['src', 'read', 'temp [N,H,W] mask blurred along rows'], ['y', 'read_write', 'output [N,H,W,3]'],
        ]), `
${PIXEL}
  var m = 0.0;
  for (var k = 0u; k < ${c.taps.length}u; k++) { m += TAPS[k] * src[(n * H + clampi(i32(i) + i32(k) - ${r}, H)) * W + j]; }
  if (m < 0.8) { m = 0.0; }
  let mud = vec3<f32>(${MUD.map(f).join(', ')});
  for (var ch = 0u; ch < 3u; ch++) { y[t * 3u + ch] = clamp(x[t * 3u + ch] * (1.0 - m) + mud[ch] * m, 0.0, 1.0); }`,
        `${BORDER_WGSL}\n${tapsWgsl(c.taps)}`);
      }
      case 'sobel':
        // Canny's gradients (3×3 Sobel, replicated border, L1 magnitude) and OpenCV's direction
        // sector, packed as mag·4 + sector (exact in f32: mag ≤ 2040).
        return shader(c, binds([['ll', 'read', 'temp [N,H,W] ⌊liquid·255⌋'], ['dst', 'read_write', 'temp [N,H,W] |dx|+|dy| packed with sector']]), `
${PIXEL}
  var p: array<i32, 9>;
  for (var a = 0u; a < 3u; a++) {
    for (var b = 0u; b < 3u; b++) {
      p[a * 3u + b] = i32(ll[(n * H + clampi(i32(i + a) - 1, H)) * W + clampi(i32(j + b) - 1, W)]);
    }
  }
  let dx = (p[2] + 2 * p[5] + p[8]) - (p[0] + 2 * p[3] + p[6]);
  let dy = (p[6] + 2 * p[7] + p[8]) - (p[0] + 2 * p[1] + p[2]);
  let ax = abs(dx);
  let ay = abs(dy) << 15u;
  let tg22 = ax * ${TG22};
  var sector = 0;
  if (ay >= tg22) {
    if (ay > tg22 + (ax << 16u)) { sector = 1; } else { sector = select(2, 3, (dx ^ dy) < 0); }
  }
  dst[t] = f32((ax + abs(dy)) * 4 + sector);`, BORDER_WGSL);
      case 'canny':
        // Non-maximum suppression as OpenCV (zero magnitude outside the image), thresholds
        // 50/150, and one hysteresis step: weak pixels next to a strong one are edges.
        return shader(c, binds([['grad', 'read', 'temp [N,H,W] packed gradients'], ['edges', 'read_write', 'temp [N,H,W] 1 on Canny edges']]), `
${PIXEL}
  var e = cls(n, i32(i), i32(j));
  if (e == 1u) {
    for (var a = -1; a <= 1; a++) {
      for (var b = -1; b <= 1; b++) { if (cls(n, i32(i) + a, i32(j) + b) == 2u) { e = 2u; } }
    }
  }
  edges[t] = select(0.0, 1.0, e == 2u);`, `
fn mag(n: u32, r: i32, c: i32) -> i32 {
  if (r < 0 || c < 0 || r >= i32(H) || c >= i32(W)) { return 0; }
  return i32(grad[(n * H + u32(r)) * W + u32(c)]) / 4;
}
// 0: not an edge, 1: weak, 2: strong.
fn cls(n: u32, r: i32, c: i32) -> u32 {
  if (r < 0 || c < 0 || r >= i32(H) || c >= i32(W)) { return 0u; }
  let g = i32(grad[(n * H + u32(r)) * W + u32(c)]);
  let m = g / 4;
  let sector = g % 4;
  if (m <= ${CANNY_LOW}) { return 0u; }
  var keep = false;
  if (sector == 0) { keep = m > mag(n, r, c - 1) && m >= mag(n, r, c + 1); }
  else if (sector == 1) { keep = m > mag(n, r - 1, c) && m >= mag(n, r + 1, c); }
  else if (sector == 2) { keep = m > mag(n, r - 1, c - 1) && m > mag(n, r + 1, c + 1); }
  else { keep = m > mag(n, r - 1, c + 1) && m > mag(n, r + 1, c - 1); }
  if (!keep) { return 0u; }
  return select(1u, 2u, m > ${CANNY_HIGH});
}`);
      case 'coldist':
        return shader(c, binds([['edges', 'read', 'temp [N,H,W] edges'], ['dst', 'read_write', 'temp [N,H,W] distance to the nearest edge in the column']]), `
${PIXEL}
  var g = ${DIST_MAX + 1}.0;
  for (var k = -${DIST_MAX}; k <= ${DIST_MAX}; k++) {
    let r = i32(i) + k;
    if (r >= 0 && r < i32(H) && edges[(n * H + u32(r)) * W + j] > 0.5) { g = min(g, f32(abs(k))); }
  }
  dst[t] = g;`);
      case 'rowdist':
        return shader(c, binds([['col', 'read', 'temp [N,H,W] column distances'], ['dst', 'read_write', 'temp [N,H,W] Euclidean distance, ≤ 20']]), `
${PIXEL}
  var d2 = ${(DIST_MAX + 1) ** 2}.0;
  for (var k = -${DIST_MAX}; k <= ${DIST_MAX}; k++) {
    let c = i32(j) + k;
    if (c >= 0 && c < i32(W)) { let g = col[(n * H + i) * W + u32(c)]; d2 = min(d2, f32(k * k) + g * g); }
  }
  dst[t] = min(sqrt(d2), ${DIST_MAX}.0);`);
      case 'boxfloor':
      case 'boxround': {
        const round = c.stage === 'boxround';
        return shader(c, binds(round
          ? [['src', 'read', 'temp [N,H,W] embossed levels'], ['ll', 'read', 'temp [N,H,W] ⌊liquid·255⌋'], ['dst', 'read_write', 'temp [N,H,W] m = ll·round(box(src))']]
          : [['src', 'read', 'temp [N,H,W] distances'], ['dst', 'read_write', 'temp [N,H,W] ⌊box(src)⌋ in 0..20']]), `
${PIXEL}
  var s = 0.0;
  for (var a = -1; a <= 1; a++) {
    for (var b = -1; b <= 1; b++) { s += src[(n * H + refl(i32(i) + a, H)) * W + refl(i32(j) + b, W)]; }
  }
  ${round ? 'dst[t] = ll[t] * floor(s / 9.0 + 0.5);' : `dst[t] = min(floor(s / 9.0 + 1e-3), ${DIST_MAX}.0);`}`, BORDER_WGSL);
      }
      case 'hist':
        return shader(c, binds([['src', 'read', 'temp [N,H,W] levels 0..20'], ['dst', 'read_write', `temp [N,H,${LEVELS}] per-row histograms`]]), `
  var cnt: array<f32, ${LEVELS}>;
  for (var j = 0u; j < W; j++) { cnt[min(u32(src[t * W + j]), ${DIST_MAX}u)] += 1.0; }
  for (var b = 0u; b < ${LEVELS}u; b++) { dst[t * ${LEVELS}u + b] = cnt[b]; }`);
      case 'lut':
        // cv2.equalizeHist: LUT from the cumulative histogram, starting at the first used level.
        return shader(c, binds([['rows', 'read', `temp [N,H,${LEVELS}] per-row histograms`], ['lut', 'read_write', `temp [N,${LEVELS}] equalisation LUT`]]), `
  var hist: array<f32, ${LEVELS}>;
  for (var i = 0u; i < H; i++) {
    for (var b = 0u; b < ${LEVELS}u; b++) { hist[b] += rows[(t * H + i) * ${LEVELS}u + b]; }
  }
  var i0 = 0u;
  while (i0 < ${DIST_MAX}u && hist[i0] == 0.0) { i0++; }
  let total = f32(H * W);
  if (hist[i0] == total) {
    for (var b = 0u; b < ${LEVELS}u; b++) { lut[t * ${LEVELS}u + b] = f32(i0); }
    return;
  }
  let scale = 255.0 / (total - hist[i0]);
  var sum = 0.0;
  for (var b = 0u; b < ${LEVELS}u; b++) {
    var v = 0.0;
    if (b > i0) { sum += hist[b]; v = min(round(sum * scale), 255.0); }
    lut[t * ${LEVELS}u + b] = v;
  }`);
      case 'emboss':
        return shader(c, binds([
          ['src', 'read', 'temp [N,H,W] levels 0..20'], ['lut', 'read', `temp [N,${LEVELS}] equalisation LUT`], ['dst', 'read_write', 'temp [N,H,W] embossed, 0..255'],
        ]), `
${PIXEL}
  var e = 0.0;
  for (var a = 0u; a < 3u; a++) {
    for (var b = 0u; b < 3u; b++) {
      let v = src[(n * H + refl(i32(i + a) - 1, H)) * W + refl(i32(j + b) - 1, W)];
      e += EMBOSS[a * 3u + b] * lut[n * ${LEVELS}u + u32(v)];
    }
  }
  dst[t] = clamp(e, 0.0, 255.0);`, `${BORDER_WGSL}
var<private> EMBOSS: array<f32, 9> = array<f32, 9>(${EMBOSS.map(f).join(', ')});`);
      case 'blend':
        return shader(c, binds([
          ['x', 'read', 'input [N,H,W,3]'], ['m', 'read', 'temp [N,H,W] liquid mask'], ['mmax', 'read', 'temp [N] max of m per image'], ['y', 'read_write', 'output [N,H,W,3]'],
        ]), `
${PIXEL}
  let mx = mmax[n];
  var v = 0.0;
  if (mx > 0.0) { v = m[t] / mx * ${f(c.intensity)}; }
  let water = vec3<f32>(${WATER.map(f).join(', ')});
  for (var ch = 0u; ch < 3u; ch++) { y[t * 3u + ch] = clamp(x[t * 3u + ch] + v * water[ch], 0.0, 1.0); }`);
    }
  },
};

export const spatter: CorruptionDef<SpatterParams> = {
  name: 'spatter',
  extra: true,
  params: five([
    [0.65, 0.3, 4, 0.69, 0.6, 0], [0.65, 0.3, 3, 0.68, 0.6, 0], [0.65, 0.3, 2, 0.68, 0.5, 0],
    [0.65, 0.3, 1, 0.65, 1.5, 1], [0.67, 0.4, 1, 0.65, 1.5, 1],
  ] as const, ([loc, scale, sigma, threshold, intensity, mud]) => ({ loc, scale, sigma, threshold, intensity, mud: mud === 1 })),
  lower(p, seed, shape, ctx) {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    const A = temp(0), B = temp(1), C = temp(2);
    const st = (cfg: DistOmit<SpatterConfig, keyof Launch | keyof Dims>, count: number, b: BindingRef[]) =>
      launch(spatterFamily, { ...d, ...cfg } as DistOmit<SpatterConfig, keyof Launch>, count, b, ctx);
    const taps = gaussianTaps(p.sigma);
    const common = [
      st({ stage: 'noise', seed: seed >>> 0, loc: p.loc, scale: p.scale }, px, [input(1), A]),
      st({ stage: 'gauss', axis: 'h', taps, post: 'none', threshold: 0 }, px, [A, B]),
      st({ stage: 'gauss', axis: 'v', taps, post: p.mud ? 'binary' : 'u8', threshold: p.threshold }, px, [B, A]),
    ];
    if (p.mud) {
      const mudTaps = gaussianTaps(p.intensity);
      return {
        dispatches: [
          ...common,
          st({ stage: 'gauss', axis: 'h', taps: mudTaps, post: 'none', threshold: 0 }, px, [A, B]),
          st({ stage: 'mud', taps: mudTaps }, px, [input(0), B, output(0)]),
        ],
        temps: [px, px],
      };
    }
    const HIST = temp(3), LUT = temp(4), ROWS = 5, MAX = 6;
    return {
      dispatches: [
        ...common, // A = ⌊ll·255⌋ from here on
        st({ stage: 'sobel' }, px, [A, B]),
        st({ stage: 'canny' }, px, [B, C]),
        st({ stage: 'coldist' }, px, [C, B]),
        st({ stage: 'rowdist' }, px, [B, C]),
        st({ stage: 'boxfloor' }, px, [C, B]),
        st({ stage: 'hist' }, d.n * d.h, [B, HIST]),
        st({ stage: 'lut' }, d.n, [HIST, LUT]),
        st({ stage: 'emboss' }, px, [B, LUT, C]),
        st({ stage: 'boxround' }, px, [C, A, B]),
        ...imageMax(B, ROWS, MAX, d.n, d.h, d.w, ctx),
        st({ stage: 'blend', intensity: p.intensity }, px, [input(0), B, temp(MAX), output(0)]),
      ],
      temps: [px, px, px, d.n * d.h * LEVELS, d.n * LEVELS, d.n * d.h, d.n],
    };
  },
  ref(p, seed, x, ids) {
    const [n, h, w] = x.shape;
    const y = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const xs = x.data.subarray(b * h * w * 3, (b + 1) * h * w * 3);
      y.set(spatterImageRef(p, seed >>> 0, ids[b] >>> 0, xs, h, w), b * h * w * 3);
    }
    return { shape: [...x.shape], data: y };
  },
};

/** One image of spatter, stage for stage as the GPU (maps [H,W], f32 storage between stages). */
function spatterImageRef(p: SpatterParams, seed: number, id: number, x: Float32Array, h: number, w: number): Float32Array {
  const hw = h * w;
  const map = (fn: (i: number, j: number) => number) => {
    const o = new Float32Array(hw);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) o[i * w + j] = fn(i, j);
    return o;
  };
  const gaussH = (src: Float32Array, taps: number[]) => {
    const r = (taps.length - 1) / 2;
    return map((i, j) => taps.reduce((s, t, k) => s + fr(t) * src[i * w + clampi(j + k - r, w)], 0));
  };
  const gaussVAt = (src: Float32Array, taps: number[], i: number, j: number) => {
    const r = (taps.length - 1) / 2;
    return taps.reduce((s, t, k) => s + fr(t) * src[clampi(i + k - r, h) * w + j], 0);
  };
  const noise = map((i, j) => p.loc + p.scale * rngNormal(seed, id, WEATHER_STREAMS.spatterNoise, i * w + j));
  const taps = gaussianTaps(p.sigma);
  const blurredH = gaussH(noise, taps);
  const thr = fr(p.threshold);
  const y = new Float32Array(hw * 3);

  if (p.mud) {
    const mask = map((i, j) => (fr(gaussVAt(blurredH, taps, i, j)) > thr ? 1 : 0));
    const mudTaps = gaussianTaps(p.intensity);
    const mh = gaussH(mask, mudTaps);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let m = fr(gaussVAt(mh, mudTaps, i, j));
        if (m < 0.8) m = 0;
        for (let ch = 0; ch < 3; ch++) y[(i * w + j) * 3 + ch] = clamp01(x[(i * w + j) * 3 + ch] * (1 - m) + fr(MUD[ch]) * m);
      }
    }
    return y;
  }

  const ll = map((i, j) => {
    let v = fr(gaussVAt(blurredH, taps, i, j));
    if (v < thr) v = 0;
    return Math.floor(fr(clamp01(v) * 255));
  });
  // Canny
  const grad = map((i, j) => {
    const px = (a: number, b: number) => ll[clampi(i + a, h) * w + clampi(j + b, w)];
    const dx = px(-1, 1) + 2 * px(0, 1) + px(1, 1) - (px(-1, -1) + 2 * px(0, -1) + px(1, -1));
    const dy = px(1, -1) + 2 * px(1, 0) + px(1, 1) - (px(-1, -1) + 2 * px(-1, 0) + px(-1, 1));
    const ax = Math.abs(dx), ay = Math.abs(dy) * 32768, tg22 = ax * TG22;
    let sector = 0;
    if (ay >= tg22) sector = ay > tg22 + ax * 65536 ? 1 : (dx ^ dy) < 0 ? 3 : 2;
    return (ax + Math.abs(dy)) * 4 + sector;
  });
  const inside = (r: number, c: number) => r >= 0 && c >= 0 && r < h && c < w;
  const mag = (r: number, c: number) => (inside(r, c) ? Math.floor(grad[r * w + c] / 4) : 0);
  const cls = (r: number, c: number): number => {
    if (!inside(r, c)) return 0;
    const g = grad[r * w + c], m = Math.floor(g / 4), sector = g % 4;
    if (m <= CANNY_LOW) return 0;
    const keep = sector === 0 ? m > mag(r, c - 1) && m >= mag(r, c + 1)
      : sector === 1 ? m > mag(r - 1, c) && m >= mag(r + 1, c)
        : sector === 2 ? m > mag(r - 1, c - 1) && m > mag(r + 1, c + 1)
          : m > mag(r - 1, c + 1) && m > mag(r + 1, c - 1);
    return !keep ? 0 : m > CANNY_HIGH ? 2 : 1;
  };
  const edges = map((i, j) => {
    let e = cls(i, j);
    if (e === 1) for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) if (cls(i + a, j + b) === 2) e = 2;
    return e === 2 ? 1 : 0;
  });
  // Truncated Euclidean distance to the nearest edge, separably.
  const col = map((i, j) => {
    let g = DIST_MAX + 1;
    for (let k = -DIST_MAX; k <= DIST_MAX; k++) if (inside(i + k, j) && edges[(i + k) * w + j] > 0.5) g = Math.min(g, Math.abs(k));
    return g;
  });
  const dist = map((i, j) => {
    let d2 = (DIST_MAX + 1) ** 2;
    for (let k = -DIST_MAX; k <= DIST_MAX; k++) if (inside(i, j + k)) d2 = Math.min(d2, k * k + col[i * w + j + k] ** 2);
    return Math.min(fr(Math.sqrt(d2)), DIST_MAX);
  });
  const box = (src: Float32Array, i: number, j: number) => {
    let s = 0;
    for (let a = -1; a <= 1; a++) for (let b = -1; b <= 1; b++) s += src[refl(i + a, h) * w + refl(j + b, w)];
    return fr(s / 9);
  };
  const level = map((i, j) => Math.min(Math.floor(box(dist, i, j) + 1e-3), DIST_MAX));
  // equalizeHist
  const hist = new Array<number>(LEVELS).fill(0);
  for (const v of level) hist[v]++;
  let i0 = 0;
  while (i0 < DIST_MAX && hist[i0] === 0) i0++;
  const lut = new Array<number>(LEVELS).fill(0);
  if (hist[i0] === hw) lut.fill(i0);
  else {
    const scale = fr(255 / (hw - hist[i0]));
    let sum = 0;
    for (let b = i0 + 1; b < LEVELS; b++) {
      sum += hist[b];
      lut[b] = Math.min(roundEven(fr(sum * scale)), 255);
    }
  }
  const emb = map((i, j) => {
    let e = 0;
    for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) e += EMBOSS[a * 3 + b] * lut[level[refl(i + a - 1, h) * w + refl(j + b - 1, w)]];
    return Math.min(Math.max(e, 0), 255);
  });
  const m = map((i, j) => ll[i * w + j] * Math.floor(box(emb, i, j) + 0.5));
  let mx = 0;
  for (const v of m) mx = Math.max(mx, v);
  for (let t = 0; t < hw; t++) {
    const v = mx > 0 ? fr(fr(m[t] / mx) * fr(p.intensity)) : 0;
    for (let ch = 0; ch < 3; ch++) y[t * 3 + ch] = clamp01(x[t * 3 + ch] + v * fr(WATER[ch]));
  }
  return y;
}

export const WEATHER_CORRUPTIONS = [snow, frost, fog, spatter] as const;

registerCorruptions([...WEATHER_CORRUPTIONS]);
