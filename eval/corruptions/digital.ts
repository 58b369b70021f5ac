// ImageNet-C digital corruptions: contrast, brightness, the extra saturate, pixelate,
// jpeg_compression and elastic_transform, ported from hendrycks/robustness
// `imagenet_c/corruptions.py` (parameters: REFERENCE.md §4).
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]. Per-pixel kernels run one invocation per pixel
// (all channels) through noise.ts's pixelMain; no workgroup memory anywhere.
//
//   contrast    (x − m)·c + m, m the image's mean over all pixels and channels: row sums
//               (one invocation per image row) → per-image mean (one per image) → pointwise.
//   brightness  skimage rgb2hsv, V ← clip(V + c), hsv2rgb (ties between max channels resolved as
//               skimage does: blue over green over red).
//   saturate    the same with S ← clip(S·a + b).
//   pixelate    PIL resize to ⌊n·c⌋ with BOX, then back with BOX (which upscaling makes a nearest
//               neighbour: source ⌊(o+½)·in/out⌋). PIL's BOX weights are 0/1 on input pixels whose
//               centres fall in the output pixel's footprint; the row/column windows are computed
//               here in f64 exactly as Pillow's precompute_coeffs and baked in. Float, no uint8
//               rounding between the two resizes.
//   jpeg        Pillow's save + load at `quality`, bit for bit: libjpeg-turbo's integer pipeline with
//               Pillow's defaults (4:2:0, islow DCTs, fancy upsampling). The input is rounded to
//               8 bits (the reference gets a uint8 PIL image); RGB→YCbCr in 16.16 fixed point
//               (jccolor.c); h2v2 downsampling with its alternating rounding bias; edge pixels,
//               rows and columns replicated to whole blocks as jcprepct/jcsample do;
//               jpeg_fdct_islow; quantisation by libjpeg-turbo's reciprocal multiply with the IJG
//               tables scaled by quality (jpeg_set_quality, baseline); jpeg_idct_islow with its
//               range-limit table; h2v2_fancy_upsample; YCbCr→RGB (jdcolor.c). Integer maths is
//               exact on the GPU, so the kernels, the TS reference and sharp's libjpeg agree
//               exactly (see the tests). Kernels: one invocation per luma block, one per chroma
//               block (Cb and Cr), then one per pixel to upsample and convert.
//   elastic     the reference's random affine (3 points moved by U(−a,a), cv2.getAffineTransform,
//               warpAffine bilinear with BORDER_REFLECT_101) followed by map_coordinates (order 1,
//               mode 'reflect') at (y + dy, x + dx), dx and dy U(−1,1) fields smoothed by
//               gaussian(σ, mode 'reflect', truncate 3) and scaled by α. Deviations: bilinear
//               weights are exact (cv2 quantises them to 1/32 pixel); the reference builds its
//               affine points from [H//2, W//2] read as (x, y), here x comes from W and y from H
//               (the same for square images). The parameters are in pixels of a 224² image: on much
//               smaller images severities 1-2 move the points by more than the square they span,
//               the 3×3 solve becomes near-singular and f32 (GPU) and f64 (reference) part ways.
//               Severity 1's σ = 171 px makes 1025-tap field blurs (≈ 2 s per 224² image on
//               SwiftShader; milliseconds on a GPU).
//
// Randomness only through the shared counter RNG keyed by (seed, image id, stream, index).

import {
  type HostTensor, type KernelFamily, ceilDiv, f32Lit, grid, input, makeDispatch, output, ShapeError, temp,
} from '../../kernels/kernel.js';
import { blur1d, blur1dRef, borderIndex, BORDER_WGSL, gaussianWeights } from './blur.js';
import { type CorruptionDef, RNG_WGSL, registerCorruptions, rngUniform } from './common.js';
import { type PixelGrid, clamp01, constArray, pixelGrid, pixelMain, u32Seed } from './noise.js';

const STREAM = { affine: 0x300, dx: 0x301, dy: 0x302 } as const;

const toImage = (shape: number[], v: ArrayLike<number>): HostTensor => {
  const data = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) data[i] = clamp01(v[i]);
  return { shape: [...shape], data };
};

const storeRgb = (v: string) => `  y[p * 3u] = ${v}.x; y[p * 3u + 1u] = ${v}.y; y[p * 3u + 2u] = ${v}.z;`;

// ---------------------------------------------------------------------------------------------
// contrast

interface RowSumConfig { n: number; h: number; w: number; wg: number; gridX: number }

const rowSumFamily: KernelFamily<RowSumConfig> = {
  name: 'corrupt-rowsum',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> rows: array<f32>; // output [N,H] sums over W and channels

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;   // image row over [N,H]
  if (r >= ${c.n * c.h}u) { return; }
  var s = 0.0;
  for (var i = 0u; i < ${c.w * 3}u; i++) { s += x[r * ${c.w * 3}u + i]; }
  rows[r] = s;
}`,
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

// ---------------------------------------------------------------------------------------------
// brightness, saturate: skimage's HSV round trip

const HSV_WGSL = /* wgsl */ `
// skimage rgb2hsv: later matches override earlier ones (blue, then green, then red wins ties).
fn rgb2hsv(c: vec3<f32>) -> vec3<f32> {
  let v = max(c.x, max(c.y, c.z));
  let delta = v - min(c.x, min(c.y, c.z));
  if (delta == 0.0) { return vec3<f32>(0.0, 0.0, v); }
  let s = delta / v;
  var h: f32;
  if (c.z == v) { h = 4.0 + (c.x - c.y) / delta; }
  else if (c.y == v) { h = 2.0 + (c.z - c.x) / delta; }
  else { h = (c.y - c.z) / delta; }
  h = h / 6.0;
  h = h - floor(h);   // Python's % 1.0
  return vec3<f32>(h, s, v);
}
fn hsv2rgb(c: vec3<f32>) -> vec3<f32> {
  let hi = floor(c.x * 6.0);
  let f = c.x * 6.0 - hi;
  let v = c.z;
  let pp = v * (1.0 - c.y);
  let qq = v * (1.0 - f * c.y);
  let tt = v * (1.0 - (1.0 - f) * c.y);
  switch (u32(hi) % 6u) {
    case 0u: { return vec3<f32>(v, tt, pp); }
    case 1u: { return vec3<f32>(qq, v, pp); }
    case 2u: { return vec3<f32>(pp, v, tt); }
    case 3u: { return vec3<f32>(pp, qq, v); }
    case 4u: { return vec3<f32>(tt, pp, v); }
    default: { return vec3<f32>(v, pp, qq); }
  }
}`;

export function rgb2hsv(r: number, g: number, b: number): [number, number, number] {
  const v = Math.max(r, g, b);
  const delta = v - Math.min(r, g, b);
  if (delta === 0) return [0, 0, v];
  let h = b === v ? 4 + (r - g) / delta : g === v ? 2 + (b - r) / delta : (g - b) / delta;
  h /= 6;
  h -= Math.floor(h);
  return [h, delta / v, v];
}

export function hsv2rgb(h: number, s: number, v: number): [number, number, number] {
  const hi = Math.floor(h * 6);
  const f = h * 6 - hi;
  const p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  switch (((hi % 6) + 6) % 6) {
    case 0: return [v, t, p];
    case 1: return [q, v, p];
    case 2: return [p, v, t];
    case 3: return [p, q, v];
    case 4: return [t, p, v];
    default: return [v, p, q];
  }
}

/** V ← clip(V + add) (brightness) or S ← clip(S·mul + add) (saturate). */
interface HsvConfig extends PixelGrid { channel: 'v' | 's'; mul: number; add: number }

const hsvFamily: KernelFamily<HsvConfig> = {
  name: 'corrupt-hsv',
  wgsl: (c) => `
${HSV_WGSL}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(c, `
  var hsv = rgb2hsv(vec3<f32>(x[p * 3u], x[p * 3u + 1u], x[p * 3u + 2u]));
  hsv.${c.channel === 'v' ? 'z' : 'y'} = clamp(hsv.${c.channel === 'v' ? 'z' : 'y'} * ${f32Lit(c.mul)} + ${f32Lit(c.add)}, 0.0, 1.0);
  let r = clamp(hsv2rgb(hsv), vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('r')}`)}`,
};

function hsvDef<P>(name: string, params: [P, P, P, P, P], cfg: (p: P) => { channel: 'v' | 's'; mul: number; add: number }, extra = false): CorruptionDef<P> {
  return {
    name,
    extra,
    params,
    lower(p, _seed, shape, ctx) {
      const { g, groups } = pixelGrid(shape, ctx);
      return { dispatches: [makeDispatch(hsvFamily, { ...g, ...cfg(p) }, groups, [input(0), output(0)], { bytes: 24 * g.n * g.h * g.w })] };
    },
    ref(p, _seed, x) {
      const { channel, mul, add } = cfg(p);
      const out = new Float64Array(x.data.length);
      for (let i = 0; i < x.data.length; i += 3) {
        const hsv = rgb2hsv(x.data[i], x.data[i + 1], x.data[i + 2]);
        const k = channel === 'v' ? 2 : 1;
        hsv[k] = clamp01(hsv[k] * mul + add);
        out.set(hsv2rgb(...hsv), i);
      }
      return toImage(x.shape, out);
    },
  };
}

export const brightness = hsvDef('brightness', [0.1, 0.2, 0.3, 0.4, 0.5], (c: number) => ({ channel: 'v', mul: 1, add: c }));

/** saturate's (multiplier, offset) on S. */
export type SaturateParams = readonly [number, number];

export const saturate = hsvDef<SaturateParams>(
  'saturate', [[0.3, 0], [0.1, 0], [2, 0], [5, 0.1], [20, 0.2]], ([mul, add]) => ({ channel: 's', mul, add }), true,
);

// ---------------------------------------------------------------------------------------------
// pixelate

/** Pillow's precompute_coeffs for BOX: per output index, the first input index and how many (0/1 weights). */
export function pilBoxWindows(inSize: number, outSize: number): { start: number[]; count: number[] } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 0.5 * filterscale;
  const ss = 1 / filterscale;
  const start: number[] = [], count: number[] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    let first = -1, n = 0;
    for (let x = xmin; x < xmax; x++) {
      const t = (x - center + 0.5) * ss;
      if (t > -0.5 && t <= 0.5) {
        if (first < 0) first = x;
        n++;
      }
    }
    start.push(first);
    count.push(n);
  }
  return { start, count };
}

/** For each output index of the round trip n → ⌊n·c⌋ → n: the input window [start, start+count). */
export function pixelateWindows(n: number, c: number): { start: number[]; count: number[] } {
  const small = Math.max(1, Math.trunc(n * c));
  const down = pilBoxWindows(n, small);
  const up = pilBoxWindows(small, n);
  return { start: up.start.map((s) => down.start[s]), count: up.start.map((s) => down.count[s]) };
}

interface PixelateConfig extends PixelGrid { rows: readonly number[]; cols: readonly number[] }

const pack = (w: { start: number[]; count: number[] }) => w.start.map((s, i) => s + w.count[i] * 65536);

const pixelateFamily: KernelFamily<PixelateConfig> = {
  name: 'corrupt-pixelate',
  wgsl: (c) => `
// Per output row / column: first input index | count << 16.
${constArray('ROWS', 'u32', c.rows)}
${constArray('COLS', 'u32', c.cols)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(c, `
  let rw = ROWS[yy];
  let cw = COLS[xx];
  let r0 = rw & 0xffffu;
  let c0 = cw & 0xffffu;
  var acc = vec3<f32>(0.0);
  for (var r = r0; r < r0 + (rw >> 16u); r++) {
    for (var s = c0; s < c0 + (cw >> 16u); s++) {
      let o = ((b * ${c.h}u + r) * ${c.w}u + s) * 3u;
      acc += vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
    }
  }
  let v = clamp(acc / f32((rw >> 16u) * (cw >> 16u)), vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('v')}`)}`,
};

export const pixelate: CorruptionDef<number> = {
  name: 'pixelate',
  params: [0.6, 0.5, 0.4, 0.3, 0.25],
  lower(c, _seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const cfg: PixelateConfig = { ...g, rows: pack(pixelateWindows(g.h, c)), cols: pack(pixelateWindows(g.w, c)) };
    return { dispatches: [makeDispatch(pixelateFamily, cfg, groups, [input(0), output(0)], { bytes: 24 * g.n * g.h * g.w })] };
  },
  ref(c, _seed, x) {
    const [n, h, w] = x.shape;
    const rows = pixelateWindows(h, c), cols = pixelateWindows(w, c);
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
      const o = ((b * h + yy) * w + xx) * 3;
      for (let r = rows.start[yy]; r < rows.start[yy] + rows.count[yy]; r++) {
        for (let s = cols.start[xx]; s < cols.start[xx] + cols.count[xx]; s++) {
          for (let k = 0; k < 3; k++) out[o + k] += x.data[((b * h + r) * w + s) * 3 + k];
        }
      }
      for (let k = 0; k < 3; k++) out[o + k] /= rows.count[yy] * cols.count[xx];
    }
    return toImage(x.shape, out);
  },
};

// ---------------------------------------------------------------------------------------------
// jpeg_compression: libjpeg-turbo's integer pipeline, bit for bit

/** ITU T.81 Annex K tables (libjpeg's std_luminance/chrominance_quant_tbl), natural order. */
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
  18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99,
  ...new Array<number>(32).fill(99),
];

/** libjpeg jpeg_set_quality(quality, force_baseline = TRUE): both tables scaled, clamped to [1, 255]. */
export function jpegQuantTables(quality: number): { luma: number[]; chroma: number[] } {
  const q = Math.min(Math.max(Math.trunc(quality), 1), 100);
  const scale = q < 50 ? Math.trunc(5000 / q) : 200 - q * 2;
  const scaled = (t: number[]) => t.map((v) => Math.min(Math.max(Math.trunc((v * scale + 50) / 100), 1), 255));
  return { luma: scaled(LUMA_Q), chroma: scaled(CHROMA_Q) };
}

/**
 * libjpeg-turbo's quantiser (jcdctmgr.c compute_reciprocal, 16-bit DCTELEM as in SIMD builds):
 * |coef| = ((|t| + corr) · recip) >> shift for divisor 8q (the islow FDCT output is scaled by 8).
 */
export function jpegReciprocal(divisor: number): { recip: number; corr: number; shift: number } {
  const b = 31 - Math.clz32(divisor);
  let r = 16 + b;
  let fq = Math.floor(2 ** r / divisor);
  const fr = 2 ** r % divisor;
  let c = Math.floor(divisor / 2);
  if (fr === 0) {
    fq = Math.floor(fq / 2);
    r--;
  } else if (fr <= Math.floor(divisor / 2)) {
    c++;
  } else {
    fq++;
  }
  return { recip: fq, corr: c, shift: r };
}

/** libjpeg's FIX(): a constant in 16.16 fixed point (jccolor.c, jdcolor.c). */
const FIX = (x: number): number => Math.trunc(x * 65536 + 0.5);

// jfdctint.c / jidctint.c constants (CONST_BITS 13).
const DCT_K = {
  c0_298631336: 2446, c0_390180644: 3196, c0_541196100: 4433, c0_765366865: 6270, c0_899976223: 7373, c1_175875602: 9633,
  c1_501321110: 12299, c1_847759065: 15137, c1_961570560: 16069, c2_053119869: 16819, c2_562915447: 20995, c3_072711026: 25172,
} as const;

const JPEG_INT_WGSL = /* wgsl */ `
fn descale(x: i32, n: u32) -> i32 { return (x + (1i << (n - 1u))) >> n; }

// jpeg_fdct_islow, one 8-point pass (rows: last = false, output ×4; columns: last = true, ×8 overall).
fn fdct8(d: array<i32, 8>, last: bool) -> array<i32, 8> {
  let t0 = d[0] + d[7]; let t7 = d[0] - d[7];
  let t1 = d[1] + d[6]; let t6 = d[1] - d[6];
  let t2 = d[2] + d[5]; let t5 = d[2] - d[5];
  let t3 = d[3] + d[4]; let t4 = d[3] - d[4];
  let t10 = t0 + t3; let t13 = t0 - t3; let t11 = t1 + t2; let t12 = t1 - t2;
  let n = select(11u, 15u, last);
  var o: array<i32, 8>;
  o[0] = select((t10 + t11) * 4, descale(t10 + t11, 2u), last);
  o[4] = select((t10 - t11) * 4, descale(t10 - t11, 2u), last);
  let z1 = (t12 + t13) * ${DCT_K.c0_541196100};
  o[2] = descale(z1 + t13 * ${DCT_K.c0_765366865}, n);
  o[6] = descale(z1 - t12 * ${DCT_K.c1_847759065}, n);
  let q3 = t4 + t6; let q4 = t5 + t7;
  let z5 = (q3 + q4) * ${DCT_K.c1_175875602};
  let y1 = (t4 + t7) * -${DCT_K.c0_899976223};
  let y2 = (t5 + t6) * -${DCT_K.c2_562915447};
  let y3 = q3 * -${DCT_K.c1_961570560} + z5;
  let y4 = q4 * -${DCT_K.c0_390180644} + z5;
  o[7] = descale(t4 * ${DCT_K.c0_298631336} + y1 + y3, n);
  o[5] = descale(t5 * ${DCT_K.c2_053119869} + y2 + y4, n);
  o[3] = descale(t6 * ${DCT_K.c3_072711026} + y2 + y3, n);
  o[1] = descale(t7 * ${DCT_K.c1_501321110} + y1 + y4, n);
  return o;
}

// jpeg_idct_islow, one 8-point pass (columns of dequantised coefficients: last = false;
// rows: last = true, descaled by 2^18 and range-limited by the caller).
fn idct8(c: array<i32, 8>, last: bool) -> array<i32, 8> {
  let z1 = (c[2] + c[6]) * ${DCT_K.c0_541196100};
  let e2 = z1 - c[6] * ${DCT_K.c1_847759065};
  let e3 = z1 + c[2] * ${DCT_K.c0_765366865};
  let e0 = (c[0] + c[4]) * 8192;
  let e1 = (c[0] - c[4]) * 8192;
  let t10 = e0 + e3; let t13 = e0 - e3; let t11 = e1 + e2; let t12 = e1 - e2;
  let q3 = c[7] + c[3]; let q4 = c[5] + c[1];
  let z5 = (q3 + q4) * ${DCT_K.c1_175875602};
  let y1 = (c[7] + c[1]) * -${DCT_K.c0_899976223};
  let y2 = (c[5] + c[3]) * -${DCT_K.c2_562915447};
  let y3 = q3 * -${DCT_K.c1_961570560} + z5;
  let y4 = q4 * -${DCT_K.c0_390180644} + z5;
  let a0 = c[7] * ${DCT_K.c0_298631336} + y1 + y3;
  let a1 = c[5] * ${DCT_K.c2_053119869} + y2 + y4;
  let a2 = c[3] * ${DCT_K.c3_072711026} + y2 + y3;
  let a3 = c[1] * ${DCT_K.c1_501321110} + y1 + y4;
  let n = select(11u, 18u, last);
  return array<i32, 8>(descale(t10 + a3, n), descale(t11 + a2, n), descale(t12 + a1, n), descale(t13 + a0, n),
                       descale(t13 - a0, n), descale(t12 - a1, n), descale(t11 - a2, n), descale(t10 - a3, n));
}

// libjpeg's post-IDCT range_limit[x & RANGE_MASK] table, wrap-around included.
fn range_limit(x: i32) -> i32 {
  let i = x & 1023;
  return select(select(select(i - 896, 0, i < 896), 255, i < 512), i + 128, i < 128);
}

// One 8×8 block of samples (0-255) through FDCT, quantisation, dequantisation and IDCT, in place.
fn jpeg_block(s: ptr<function, array<i32, 64>>, qt: ptr<function, array<i32, 64>>, recip: ptr<function, array<u32, 64>>,
              corr: ptr<function, array<u32, 64>>, shift: ptr<function, array<u32, 64>>) {
  var v: array<i32, 8>;
  for (var r = 0u; r < 8u; r++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[r * 8u + k] - 128; }
    v = fdct8(v, false);
    for (var k = 0u; k < 8u; k++) { (*s)[r * 8u + k] = v[k]; }
  }
  for (var c = 0u; c < 8u; c++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[k * 8u + c]; }
    v = fdct8(v, true);
    for (var k = 0u; k < 8u; k++) { (*s)[k * 8u + c] = v[k]; }
  }
  for (var i = 0u; i < 64u; i++) {
    let t = (*s)[i];
    let m = i32(((u32(abs(t)) + (*corr)[i]) * (*recip)[i]) >> (*shift)[i]);
    (*s)[i] = select(m, -m, t < 0) * (*qt)[i];   // quantised, then dequantised as the decoder does
  }
  for (var c = 0u; c < 8u; c++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[k * 8u + c]; }
    v = idct8(v, false);
    for (var k = 0u; k < 8u; k++) { (*s)[k * 8u + c] = v[k]; }
  }
  for (var r = 0u; r < 8u; r++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[r * 8u + k]; }
    v = idct8(v, true);
    for (var k = 0u; k < 8u; k++) { (*s)[r * 8u + k] = range_limit(v[k]); }
  }
}`;

// The same integer arithmetic in TS. JS numbers hold every intermediate exactly (< 2^31 for
// 8-bit data, as libjpeg's 32-bit design guarantees), and >> is the same arithmetic shift.
const descale = (x: number, n: number): number => (x + (1 << (n - 1))) >> n;

function fdct8(d: number[], last: boolean): number[] {
  const K = DCT_K;
  const t0 = d[0] + d[7], t7 = d[0] - d[7], t1 = d[1] + d[6], t6 = d[1] - d[6];
  const t2 = d[2] + d[5], t5 = d[2] - d[5], t3 = d[3] + d[4], t4 = d[3] - d[4];
  const t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
  const n = last ? 15 : 11;
  const z1 = (t12 + t13) * K.c0_541196100;
  const q3 = t4 + t6, q4 = t5 + t7, z5 = (q3 + q4) * K.c1_175875602;
  const y1 = (t4 + t7) * -K.c0_899976223, y2 = (t5 + t6) * -K.c2_562915447;
  const y3 = q3 * -K.c1_961570560 + z5, y4 = q4 * -K.c0_390180644 + z5;
  return [
    last ? descale(t10 + t11, 2) : (t10 + t11) * 4,
    descale(t7 * K.c1_501321110 + y1 + y4, n),
    descale(z1 + t13 * K.c0_765366865, n),
    descale(t6 * K.c3_072711026 + y2 + y3, n),
    last ? descale(t10 - t11, 2) : (t10 - t11) * 4,
    descale(t5 * K.c2_053119869 + y2 + y4, n),
    descale(z1 - t12 * K.c1_847759065, n),
    descale(t4 * K.c0_298631336 + y1 + y3, n),
  ];
}

function idct8(c: number[], last: boolean): number[] {
  const K = DCT_K;
  const z1 = (c[2] + c[6]) * K.c0_541196100, e2 = z1 - c[6] * K.c1_847759065, e3 = z1 + c[2] * K.c0_765366865;
  const e0 = (c[0] + c[4]) * 8192, e1 = (c[0] - c[4]) * 8192;
  const t10 = e0 + e3, t13 = e0 - e3, t11 = e1 + e2, t12 = e1 - e2;
  const q3 = c[7] + c[3], q4 = c[5] + c[1], z5 = (q3 + q4) * K.c1_175875602;
  const y1 = (c[7] + c[1]) * -K.c0_899976223, y2 = (c[5] + c[3]) * -K.c2_562915447;
  const y3 = q3 * -K.c1_961570560 + z5, y4 = q4 * -K.c0_390180644 + z5;
  const a0 = c[7] * K.c0_298631336 + y1 + y3, a1 = c[5] * K.c2_053119869 + y2 + y4;
  const a2 = c[3] * K.c3_072711026 + y2 + y3, a3 = c[1] * K.c1_501321110 + y1 + y4;
  const n = last ? 18 : 11;
  return [t10 + a3, t11 + a2, t12 + a1, t13 + a0, t13 - a0, t12 - a1, t11 - a2, t10 - a3].map((v) => descale(v, n));
}

const rangeLimit = (x: number): number => {
  const i = x & 1023;
  return i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;
};

/** One block of 64 samples (0-255, row-major) through the encoder and decoder at table q: 64 samples. */
export function jpegBlockRoundTrip(samples: readonly number[], q: readonly number[]): number[] {
  const d = samples.map((v) => v - 128);
  const col = (k: number) => [0, 1, 2, 3, 4, 5, 6, 7].map((r) => d[r * 8 + k]);
  for (let r = 0; r < 8; r++) d.splice(r * 8, 8, ...fdct8(d.slice(r * 8, r * 8 + 8), false));
  for (let k = 0; k < 8; k++) fdct8(col(k), true).forEach((v, r) => { d[r * 8 + k] = v; });
  for (let i = 0; i < 64; i++) {
    const { recip, corr, shift } = jpegReciprocal(q[i] * 8);
    const m = Math.floor(((Math.abs(d[i]) + corr) * recip) / 2 ** shift);
    d[i] = (d[i] < 0 ? -m : m) * q[i];
  }
  for (let k = 0; k < 8; k++) idct8(col(k), false).forEach((v, r) => { d[r * 8 + k] = v; });
  for (let r = 0; r < 8; r++) d.splice(r * 8, 8, ...idct8(d.slice(r * 8, r * 8 + 8), true).map(rangeLimit));
  return d;
}

// jccolor.c (RGB → YCbCr, 16.16 fixed point, Cb/Cr rounded with 0.5 − ε) and jdcolor.c (back).
const YCC = {
  yr: FIX(0.299), yg: FIX(0.587), yb: FIX(0.114),
  cbr: FIX(0.16874), cbg: FIX(0.33126), half: FIX(0.5), crg: FIX(0.41869), crb: FIX(0.08131),
  rcr: FIX(1.402), bcb: FIX(1.772), gcb: FIX(0.34414), gcr: FIX(0.71414),
} as const;

/** The 8-bit input libjpeg sees: round(x·255), computed in f32 as the GPU does. */
const toU8 = (v: number): number => Math.min(Math.max(Math.floor(Math.fround(Math.fround(v * 255) + 0.5)), 0), 255);

/** Pillow's JPEG save + load at `quality` (4:2:0, islow DCTs, fancy upsampling) on 8-bit RGB [h,w,3]. */
export function jpegRoundTripU8(rgb: ArrayLike<number>, h: number, w: number, quality: number): Uint8Array {
  const q = jpegQuantTables(quality);
  const ch = Math.ceil(h / 2), cw = Math.ceil(w / 2);
  const px = (r: number, c: number) => {
    const o = (Math.min(r, h - 1) * w + Math.min(c, w - 1)) * 3;
    return [rgb[o], rgb[o + 1], rgb[o + 2]];
  };
  const toY = ([r, g, b]: number[]) => (YCC.yr * r + YCC.yg * g + YCC.yb * b + 32768) >> 16;
  const toCb = ([r, g, b]: number[]) => (-YCC.cbr * r - YCC.cbg * g + YCC.half * b + (128 << 16) + 32767) >> 16;
  const toCr = ([r, g, b]: number[]) => (YCC.half * r - YCC.crg * g - YCC.crb * b + (128 << 16) + 32767) >> 16;
  const Y = new Int32Array(h * w);
  for (let by = 0; by < Math.ceil(h / 8); by++) for (let bx = 0; bx < Math.ceil(w / 8); bx++) {
    const out = jpegBlockRoundTrip(Array.from({ length: 64 }, (_, i) => toY(px(by * 8 + (i >> 3), bx * 8 + (i & 7)))), q.luma);
    out.forEach((v, i) => {
      const r = by * 8 + (i >> 3), c = bx * 8 + (i & 7);
      if (r < h && c < w) Y[r * w + c] = v;
    });
  }
  const C = [new Int32Array(ch * cw), new Int32Array(ch * cw)];
  [toCb, toCr].forEach((f, k) => {
    for (let by = 0; by < Math.ceil(ch / 8); by++) for (let bx = 0; bx < Math.ceil(cw / 8); bx++) {
      const samples = Array.from({ length: 64 }, (_, i) => {
        // h2v2_downsample with its 1, 2, 1, 2… rounding bias; rows past the plane repeat its last row.
        const cy = Math.min(by * 8 + (i >> 3), ch - 1), cx = bx * 8 + (i & 7);
        return (f(px(2 * cy, 2 * cx)) + f(px(2 * cy, 2 * cx + 1)) + f(px(2 * cy + 1, 2 * cx)) + f(px(2 * cy + 1, 2 * cx + 1)) + 1 + (cx & 1)) >> 2;
      });
      jpegBlockRoundTrip(samples, q.chroma).forEach((v, i) => {
        const r = by * 8 + (i >> 3), c = bx * 8 + (i & 7);
        if (r < ch && c < cw) C[k][r * cw + c] = v;
      });
    }
  });
  const out = new Uint8Array(h * w * 3);
  const clampU8 = (v: number) => Math.min(Math.max(v, 0), 255);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const cy = y >> 1, cx = x >> 1;
    const ny = Math.min(Math.max(y & 1 ? cy + 1 : cy - 1, 0), ch - 1);
    const nx = Math.min(Math.max(x & 1 ? cx + 1 : cx - 1, 0), cw - 1);
    const [cb, cr] = C.map((P) => {
      if (cw <= 2) return P[cy * cw + cx];   // libjpeg upsamples planes this narrow by replication
      const colsum = (c: number) => 3 * P[cy * cw + c] + P[ny * cw + c];
      return (3 * colsum(cx) + colsum(nx) + (x & 1 ? 7 : 8)) >> 4;
    });
    const l = Y[y * w + x], xb = cb - 128, xr = cr - 128;
    const o = (y * w + x) * 3;
    out[o] = clampU8(l + ((YCC.rcr * xr + 32768) >> 16));
    out[o + 1] = clampU8(l + ((-YCC.gcb * xb + 32768 - YCC.gcr * xr) >> 16));
    out[o + 2] = clampU8(l + ((YCC.bcb * xb + 32768) >> 16));
  }
  return out;
}

interface JpegBlockConfig {
  n: number; h: number; w: number;
  /** Chroma plane size ⌈H/2⌉×⌈W/2⌉. */
  ch: number; cw: number;
  /** Blocks per image along rows and columns of the plane this dispatch codes. */
  bh: number; bw: number;
  plane: 'luma' | 'chroma';
  /** The quantisation table and its reciprocal form (jpegReciprocal of 8q). */
  q: readonly number[]; recip: readonly number[]; corr: readonly number[]; shift: readonly number[];
  wg: number; gridX: number;
}

const jpegBlockFamily: KernelFamily<JpegBlockConfig> = {
  name: 'corrupt-jpeg-block',
  wgsl(c) {
    const luma = c.plane === 'luma';
    return `
${JPEG_INT_WGSL}
${constArray('QT', 'i32', c.q)}
${constArray('RECIP', 'u32', c.recip)}
${constArray('CORR', 'u32', c.corr)}
${constArray('SHIFT', 'u32', c.shift)}
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3] in [0,1]
@group(0) @binding(1) var<storage, read_write> plane: array<f32>; // output ${luma ? 'Y [N,H,W]' : `CbCr [N,${c.ch},${c.cw},2]`}, decoded 0-255 integers

// The 8-bit pixel libjpeg reads at (r, s), edge pixels replicated past the image.
fn rgb8(b: u32, r: u32, s: u32) -> vec3<i32> {
  let o = ((b * ${c.h}u + min(r, ${c.h - 1}u)) * ${c.w}u + min(s, ${c.w - 1}u)) * 3u;
  return vec3<i32>(clamp(floor(vec3<f32>(x[o], x[o + 1u], x[o + 2u]) * 255.0 + 0.5), vec3<f32>(0.0), vec3<f32>(255.0)));
}
${luma ? `fn to_y(p: vec3<i32>) -> i32 { return (${YCC.yr} * p.x + ${YCC.yg} * p.y + ${YCC.yb} * p.z + 32768) >> 16u; }` : `
fn to_cb(p: vec3<i32>) -> i32 { return (-${YCC.cbr} * p.x - ${YCC.cbg} * p.y + ${YCC.half} * p.z + ${(128 << 16) + 32767}) >> 16u; }
fn to_cr(p: vec3<i32>) -> i32 { return (${YCC.half} * p.x - ${YCC.crg} * p.y - ${YCC.crb} * p.z + ${(128 << 16) + 32767}) >> 16u; }`}

@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * ${c.gridX}u) * ${c.wg}u + lid;   // block over [N, bh, bw]
  if (t >= ${c.n * c.bh * c.bw}u) { return; }
  let b = t / ${c.bh * c.bw}u;
  let by = (t / ${c.bw}u) % ${c.bh}u;
  let bx = t % ${c.bw}u;
  var qt = QT;
  var recip = RECIP;
  var corr = CORR;
  var shift = SHIFT;
${luma ? `
  var s: array<i32, 64>;
  for (var i = 0u; i < 64u; i++) { s[i] = to_y(rgb8(b, by * 8u + i / 8u, bx * 8u + i % 8u)); }
  jpeg_block(&s, &qt, &recip, &corr, &shift);
  for (var i = 0u; i < 64u; i++) {
    let r = by * 8u + i / 8u;
    let col = bx * 8u + i % 8u;
    if (r < ${c.h}u && col < ${c.w}u) { plane[(b * ${c.h}u + r) * ${c.w}u + col] = f32(s[i]); }
  }` : `
  var cb: array<i32, 64>;
  var cr: array<i32, 64>;
  for (var i = 0u; i < 64u; i++) {
    // h2v2_downsample: 2×2 sums with a 1, 2, 1, 2… bias; rows past the plane repeat its last row.
    let cy = min(by * 8u + i / 8u, ${c.ch - 1}u);
    let cx = bx * 8u + i % 8u;
    let p00 = rgb8(b, 2u * cy, 2u * cx);
    let p01 = rgb8(b, 2u * cy, 2u * cx + 1u);
    let p10 = rgb8(b, 2u * cy + 1u, 2u * cx);
    let p11 = rgb8(b, 2u * cy + 1u, 2u * cx + 1u);
    let bias = 1 + i32(cx & 1u);
    cb[i] = (to_cb(p00) + to_cb(p01) + to_cb(p10) + to_cb(p11) + bias) >> 2u;
    cr[i] = (to_cr(p00) + to_cr(p01) + to_cr(p10) + to_cr(p11) + bias) >> 2u;
  }
  jpeg_block(&cb, &qt, &recip, &corr, &shift);
  jpeg_block(&cr, &qt, &recip, &corr, &shift);
  for (var i = 0u; i < 64u; i++) {
    let r = by * 8u + i / 8u;
    let col = bx * 8u + i % 8u;
    if (r < ${c.ch}u && col < ${c.cw}u) {
      let o = ((b * ${c.ch}u + r) * ${c.cw}u + col) * 2u;
      plane[o] = f32(cb[i]);
      plane[o + 1u] = f32(cr[i]);
    }
  }`}
}`;
  },
};

interface JpegDecodeConfig extends PixelGrid { ch: number; cw: number }

const jpegDecodeFamily: KernelFamily<JpegDecodeConfig> = {
  name: 'corrupt-jpeg-decode',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> luma: array<f32>;     // input  Y [N,H,W], 0-255 integers
@group(0) @binding(1) var<storage, read> chroma: array<f32>;   // input  CbCr [N,${c.ch},${c.cw},2], 0-255 integers
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // output [N,H,W,3] in [0,1]

fn cc(b: u32, r: i32, s: i32) -> vec2<i32> {
  let o = ((b * ${c.ch}u + u32(r)) * ${c.cw}u + u32(s)) * 2u;
  return vec2<i32>(i32(chroma[o]), i32(chroma[o + 1u]));
}
${pixelMain(c, `
  let cy = yy / 2;
  let cx = xx / 2;
${c.cw > 2 ? `
  // h2v2_fancy_upsample: 3/4 nearer + 1/4 further sample in each direction, edges replicated,
  // rounding bias 8 on even and 7 on odd output columns.
  let ny = clamp(select(cy - 1, cy + 1, (yy & 1) == 1), 0, ${c.ch - 1});
  let nx = clamp(select(cx - 1, cx + 1, (xx & 1) == 1), 0, ${c.cw - 1});
  let this_col = 3 * cc(b, cy, cx) + cc(b, ny, cx);
  let next_col = 3 * cc(b, cy, nx) + cc(b, ny, nx);
  let cbcr = ((3 * this_col + next_col + select(8, 7, (xx & 1) == 1)) >> vec2<u32>(4u)) - 128;` : `
  // Planes 2 samples wide or less: libjpeg's plain h2v2_upsample (replication).
  let cbcr = cc(b, cy, cx) - 128;`}
  let l = i32(luma[p]);
  let rgb = vec3<i32>(
    l + ((${YCC.rcr} * cbcr.y + 32768) >> 16u),
    l + ((-${YCC.gcb} * cbcr.x + 32768 - ${YCC.gcr} * cbcr.y) >> 16u),
    l + ((${YCC.bcb} * cbcr.x + 32768) >> 16u));
  let v = vec3<f32>(clamp(rgb, vec3<i32>(0), vec3<i32>(255))) * ${f32Lit(1 / 255)};   // as the reference: k · f32(1/255)
${storeRgb('v')}`)}`,
};

export const jpegCompression: CorruptionDef<number> = {
  name: 'jpeg_compression',
  params: [25, 18, 15, 10, 7],
  lower(quality, _seed, shape, ctx) {
    const [n, h, w] = shape;
    const ch = Math.ceil(h / 2), cw = Math.ceil(w / 2);
    const tables = jpegQuantTables(quality);
    const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const wg = 16;
    const blocks = (plane: 'luma' | 'chroma', ph: number, pw: number, q: number[], out: number) => {
      const bh = Math.ceil(ph / 8), bw = Math.ceil(pw / 8);
      const g = grid(ceilDiv(n * bh * bw, wg), maxDim);
      const rec = q.map((v) => jpegReciprocal(v * 8));
      const cfg: JpegBlockConfig = {
        n, h, w, ch, cw, bh, bw, plane, q, recip: rec.map((r) => r.recip), corr: rec.map((r) => r.corr), shift: rec.map((r) => r.shift), wg, gridX: g[0],
      };
      const nb = n * bh * bw * (plane === 'luma' ? 1 : 2);
      return makeDispatch(jpegBlockFamily, cfg, g, [input(0), temp(out)], { bytes: 4 * (n * h * w * 3 + nb * 64) });
    };
    const { g, groups } = pixelGrid(shape, ctx);
    return {
      dispatches: [
        blocks('luma', h, w, tables.luma, 0),
        blocks('chroma', ch, cw, tables.chroma, 1),
        makeDispatch(jpegDecodeFamily, { ...g, ch, cw }, groups, [temp(0), temp(1), output(0)], { bytes: 4 * n * h * w * 4 }),
      ],
      temps: [n * h * w, n * ch * cw * 2],
    };
  },
  ref(quality, _seed, x) {
    const [n, h, w] = x.shape;
    const data = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const img = x.data.subarray(b * h * w * 3, (b + 1) * h * w * 3);
      const out = jpegRoundTripU8(Array.from(img, toU8), h, w, quality);
      for (let i = 0; i < out.length; i++) data[b * h * w * 3 + i] = Math.fround(out[i] * Math.fround(1 / 255));
    }
    return { shape: [...x.shape], data };
  },
};

// ---------------------------------------------------------------------------------------------
// elastic_transform

export interface ElasticParams { alpha: number; sigma: number; affine: number }

/** Elastic's two U(−1,1) fields, interleaved [N,H,W,2] (dx, dy). */
interface FieldConfig extends PixelGrid { seed: number }

const fieldFamily: KernelFamily<FieldConfig> = {
  name: 'corrupt-elastic-field',
  wgsl: (c) => `
${RNG_WGSL}
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read_write> field: array<f32>;  // output [N,H,W,2] U(−1,1)
${pixelMain(c, `
  let id = u32(ids[b]);
  field[p * 2u] = 2.0 * rng_uniform(${c.seed}u, id, ${STREAM.dx}u, q) - 1.0;
  field[p * 2u + 1u] = 2.0 * rng_uniform(${c.seed}u, id, ${STREAM.dy}u, q) - 1.0;`)}`,
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

interface WarpConfig extends PixelGrid { seed: number; affine: number }

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
${pixelMain(c, `
  let e = affine_inverse(u32(ids[b]));
  let rel = vec3<f32>(vec2<f32>(f32(xx - ${Math.floor(c.w / 2)}), f32(yy - ${Math.floor(c.h / 2)})) * ${f32Lit(1 / Math.floor(Math.min(c.h, c.w) / 3))}, 1.0);
  let sx = f32(xx) + dot(e[0], rel);
  let sy = f32(yy) + dot(e[1], rel);
  let x0 = i32(floor(sx));
  let y0 = i32(floor(sy));
  let fx = sx - f32(x0);
  let fy = sy - f32(y0);
  let v = mix(mix(px(b, y0, x0), px(b, y0, x0 + 1), fx), mix(px(b, y0 + 1, x0), px(b, y0 + 1, x0 + 1), fx), fy);
${storeRgb('v')}`)}`,
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
${pixelMain(c, `
  // scipy map_coordinates(order=1, mode='reflect') at (y + dy, x + dx).
  let sx = f32(xx) + disp[p * 2u];
  let sy = f32(yy) + disp[p * 2u + 1u];
  let x0 = i32(floor(sx));
  let y0 = i32(floor(sy));
  let fx = sx - f32(x0);
  let fy = sy - f32(y0);
  let v = clamp(mix(mix(px(b, y0, x0), px(b, y0, x0 + 1), fx), mix(px(b, y0 + 1, x0), px(b, y0 + 1, x0 + 1), fx), fy), vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('v')}`)}`,
};

/** TS twin of affine_inverse, in f64 (E acts on (P − centre)/s). */
function affineInverseRef(seed: number, id: number, h: number, w: number, affine: number): [number[], number[]] {
  const s = Math.floor(Math.min(h, w) / 3);
  const r = Array.from({ length: 6 }, (_, j) => (2 * rngUniform(seed, id, STREAM.affine, j) - 1) * Math.fround(affine));
  const u = [[1 + r[0] / s, 1 + r[1] / s], [1 + r[2] / s, -1 + r[3] / s], [-1 + r[4] / s, -1 + r[5] / s]];
  const det3 = (a: number[][]) =>
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
  const rows = u.map(([a, b]) => [a, b, 1]);
  const d = det3(rows);
  const solve = (rhs: number[]) => [0, 1, 2].map((k) => det3(rows.map((row, i) => row.map((v, j) => (j === k ? rhs[i] : v)))) / d);
  return [solve([-r[0], -r[2], -r[4]]), solve([-r[1], -r[3], -r[5]])];
}

export const elasticTransform: CorruptionDef<ElasticParams> = {
  name: 'elastic_transform',
  // The reference's (α, σ, affine) are multiples of 244 ("should have been 224").
  params: [
    { alpha: 244 * 2, sigma: 244 * 0.7, affine: 244 * 0.1 }, { alpha: 244 * 2, sigma: 244 * 0.08, affine: 244 * 0.2 },
    { alpha: 244 * 0.05, sigma: 244 * 0.01, affine: 244 * 0.02 }, { alpha: 244 * 0.07, sigma: 244 * 0.01, affine: 244 * 0.02 },
    { alpha: 244 * 0.12, sigma: 244 * 0.01, affine: 244 * 0.02 },
  ],
  lower(p, seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    if (Math.min(g.h, g.w) < 3) throw new ShapeError(`elastic_transform needs images of at least 3×3, got ${g.h}×${g.w}`);
    const s = u32Seed(seed);
    const px = g.n * g.h * g.w;
    const wt = gaussianWeights(p.sigma, 3);
    return {
      // ids → t0 (fields), t0 → t1 → t0 (smoothed, ×α), x → t2 (affine), t2 + t0 → y.
      dispatches: [
        makeDispatch(fieldFamily, { ...g, seed: s }, groups, [input(1), temp(0)], { bytes: 8 * px }),
        blur1d(shape, 2, 0, wt, 'reflect', 1, temp(0), temp(1), ctx),
        blur1d(shape, 2, 1, wt, 'reflect', p.alpha, temp(1), temp(0), ctx),
        makeDispatch(warpFamily, { ...g, seed: s, affine: p.affine }, groups, [input(0), input(1), temp(2)], { bytes: 24 * px }),
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
    const disp = blur1dRef(blur1dRef(field, n, h, w, 2, 0, wt, 'reflect'), n, h, w, 2, 1, wt, 'reflect', Math.fround(p.alpha));
    const bilinear = (img: ArrayLike<number>, b: number, sy: number, sx: number, border: 'reflect' | 'reflect101', k: number) => {
      const y0 = Math.floor(sy), x0 = Math.floor(sx), fy = sy - y0, fx = sx - x0;
      const at = (r: number, c: number) => img[((b * h + borderIndex(border, r, h)) * w + borderIndex(border, c, w)) * 3 + k];
      return (at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx) * (1 - fy) + (at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx) * fy;
    };
    const warped = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) {
      const [ex, ey] = affineInverseRef(s, ids[b] >>> 0, h, w, p.affine);
      for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
        const sq = Math.floor(Math.min(h, w) / 3);
        const rel = [(xx - Math.floor(w / 2)) / sq, (yy - Math.floor(h / 2)) / sq, 1];
        const sx = xx + ex[0] * rel[0] + ex[1] * rel[1] + ex[2];
        const sy = yy + ey[0] * rel[0] + ey[1] * rel[1] + ey[2];
        for (let k = 0; k < 3; k++) warped[((b * h + yy) * w + xx) * 3 + k] = bilinear(x.data, b, sy, sx, 'reflect101', k);
      }
    }
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++) for (let yy = 0; yy < h; yy++) for (let xx = 0; xx < w; xx++) {
      const i = (b * h + yy) * w + xx;
      for (let k = 0; k < 3; k++) out[i * 3 + k] = bilinear(warped, b, yy + disp[i * 2 + 1], xx + disp[i * 2], 'reflect', k);
    }
    return toImage(x.shape, out);
  },
};

export const DIGITALS = [contrast, elasticTransform, pixelate, jpegCompression, brightness, saturate];

registerCorruptions(DIGITALS);
