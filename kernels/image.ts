// Image preprocessing on the GPU: `image_preprocess` (resize, centre crop, scale, normalise one
// decoded image) and `image_normalize` ((x − mean) / std per RGB channel).
//
// image_preprocess reproduces models/preprocess.ts (torchvision/timm eval transforms on PIL):
//   resize  'short': the short side to t = ⌊size / cropPct⌋, the long side to ⌊t·long/short⌋
//                    (torchvision's rounding); 'squash': both sides to `size`.
//           PIL's filters, antialiased: triangle (bilinear) or Keys a = −0.5 (bicubic), support
//           widened by the downscale factor, weights normalised per output pixel. Separable:
//           a horizontal pass into a temp, then a vertical pass. Floats between the passes (PIL
//           rounds to 8 bits there; preprocess.ts does not either); clamped to 0..255 at the end.
//   crop    centre crop of `size`, torchvision's offsets: top = round((rh − size)/2) with Python's
//           half-to-even rounding (models/preprocess.ts's Math.round differs on .5: see
//           centerCropOffset), left likewise; pixels outside the resized image (cropPct > 1) are 0
//           before normalisation, as torchvision's zero padding.
//   scale   /255 to [0,1]; then (x − mean)/std unless normalize is false (ImageNet-C corrupts the
//           [0,1] crop and normalises afterwards: run `image_normalize` after `corrupt`).
//
//   input  src [Hs, Ws, 3]    RGB as f32 with the raw byte values 0..255 (not 0..1)
//   output y   [1, S, S, 3]   NHWC, normalised (or in [0,1] with normalize: false)
//   temp       [rows, S, 3]   the horizontal pass, only the S cropped columns and only the
//                             source rows the vertical taps of the S cropped rows read
//
// Sizes differ per image, and shapes are baked into the WGSL, so each source size is its own
// pipeline; eval/data.ts's preprocessOnGpu caches compiled plans by size.
//
// Tap positions in exact integer arithmetic. Along one axis, n source pixels resize to m; output
// i has centre c = (2i+1)·n / 2m in source coordinates, fscale = max(n/m, 1) (1 without
// antialias), and PIL's taps are j ∈ [⌊c − F·fscale + ½⌋, ⌊c + F·fscale + ½⌋) ∩ [0, n) with weight
// f((j + ½ − c) / fscale). With den = 2m·fscale (= 2·max(n,m), an integer):
//   start = ⌊((2i+1)·n − F·den + m) / 2m⌋,  end = ⌊((2i+1)·n + F·den + m) / 2m⌋,
//   f's argument = ((2j+1)·m − (2i+1)·n) / den       (one f32 rounding).
// Computing c in f32 instead would shift every tap by up to ~1e-7·c pixels, about 2e-4 in
// normalised units on a sharp edge of a large image; this way the GPU agrees with the float64
// CPU reference to f32 rounding. (Where c ± support lands exactly on a half-integer, f64 and
// integers may disagree by one tap, but that tap sits at the filter's edge, where f is 0.)
//
// Mapping: one invocation per output pixel of a pass (3 channels), 1-D workgroups of WG threads
// over a 2-D grid; each invocation computes its own taps and weight sum.

import {
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type OpDef,
  type Shape,
  ceilDiv,
  expectRank,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
  temp,
} from './kernel.js';
import { XYZW, flatMain, wgsl } from './wgsl.js';

/** Threads per workgroup, for every family in this file. */
const WG = 64;

/** WGSL: the RGB pixel starting at element `at` of f32 array `arr`, as a vec3. */
const loadRgb = (arr: string, at: string) => `vec3<f32>(${arr}[${at}], ${arr}[${at} + 1u], ${arr}[${at} + 2u])`;

/** WGSL: vec3 `v` stored as pixel `t` of f32 array `arr` ([.., 3]). */
const storeRgb = (arr: string, v: string) =>
  XYZW.slice(0, 3)
    .map((l, k) => `  ${arr}[t * 3u${k ? ` + ${k}u` : ''}] = ${v}.${l};`)
    .join('\n');

/** WGSL: RGB `v` minus `mean`, over `std`. */
const normalizeRgb = (v: string, mean: readonly number[], std: readonly number[]) =>
  `(${v} - vec3<f32>(${mean.map(f32Lit).join(', ')})) / vec3<f32>(${std.map(f32Lit).join(', ')})`;

export type Interpolation = 'bilinear' | 'bicubic';

export interface ImagePreprocessAttrs {
  /** Side of the square output. */
  size: number;
  resizeMode: 'short' | 'squash';
  /** 'short' resizes the short side to ⌊size / cropPct⌋; unused by 'squash'. */
  cropPct: number;
  interpolation: Interpolation;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** Default true. false: stop at [0,1] (for corruptions), normalise later with image_normalize. */
  normalize?: boolean;
  /** Default true (PIL, torchvision on PIL images). false: filter support not widened when
   *  downscaling (bilinear then equals torch interpolate(antialias=False); bicubic keeps a = −0.5). */
  antialias?: boolean;
}

// ---- geometry (shared by lower and ref) ---------------------------------------------------------

/** Filter half-width in source pixels before widening. */
const SUPPORT: Record<Interpolation, number> = { bilinear: 1, bicubic: 2 };

export interface PreprocessGeometry {
  /** Source size. */
  h: number;
  w: number;
  /** Resized size, before the crop. */
  rh: number;
  rw: number;
  /** Crop offset in the resized image (negative: the crop is larger than the image). */
  top: number;
  left: number;
  /** Source rows [rowLo, rowHi) the vertical pass reads (at least one row). */
  rowLo: number;
  rowHi: number;
}

/** The integer constants of one axis: n source → m resized pixels. */
function axis(n: number, m: number, antialias: boolean) {
  return { n, m, den: 2 * (antialias ? Math.max(n, m) : m) };
}

/** Source taps [start, end) of resized index i (the header's formula; exact in doubles too). */
function span(i: number, a: { n: number; m: number; den: number }, support: number): [number, number] {
  const c = (2 * i + 1) * a.n;
  return [
    Math.max(0, Math.floor((c - support * a.den + a.m) / (2 * a.m))),
    Math.min(a.n, Math.floor((c + support * a.den + a.m) / (2 * a.m))),
  ];
}

/**
 * torchvision CenterCrop's offset of a `crop` window in `size` pixels: int(round((size − crop)/2))
 * with Python's round-half-to-even (500×375 → 341×256 crops 224 from left 58, not 59); a crop
 * larger than the image pads (crop − size)//2 before it, i.e. offset −⌊(crop − size)/2⌋.
 */
export function centerCropOffset(size: number, crop: number): number {
  if (crop > size) return -Math.floor((crop - size) / 2);
  const d = size - crop;
  return d % 2 === 0 ? d / 2 : Math.floor(d / 2) % 2 === 0 ? Math.floor(d / 2) : Math.ceil(d / 2);
}

export function preprocessGeometry(h: number, w: number, a: ImagePreprocessAttrs): PreprocessGeometry {
  let rw: number, rh: number;
  if (a.resizeMode === 'squash') {
    rw = rh = a.size;
  } else {
    const t = Math.floor(a.size / a.cropPct);
    // torchvision Resize(int): int(t * long / short) for the long side.
    if (w <= h) {
      rw = t;
      rh = Math.floor((t * h) / w);
    } else {
      rh = t;
      rw = Math.floor((t * w) / h);
    }
  }
  const top = centerCropOffset(rh, a.size),
    left = centerCropOffset(rw, a.size);
  const ay = axis(h, rh, a.antialias !== false);
  let rowLo = h,
    rowHi = 0;
  for (let y = Math.max(0, top); y < Math.min(rh, top + a.size); y++) {
    const [s, e] = span(y, ay, SUPPORT[a.interpolation]);
    rowLo = Math.min(rowLo, s);
    rowHi = Math.max(rowHi, e);
  }
  if (rowHi <= rowLo) {
    rowLo = 0;
    rowHi = 1;
  } // the crop misses the image: nothing is read
  return { h, w, rh, rw, top, left, rowLo, rowHi };
}

function checkAttrs(a: ImagePreprocessAttrs): void {
  if (!Number.isInteger(a.size) || a.size < 1)
    throw new ShapeError(`image_preprocess: size must be a positive integer, got ${a.size}`);
  if (a.resizeMode !== 'short' && a.resizeMode !== 'squash')
    throw new ShapeError(`image_preprocess: resizeMode must be 'short' or 'squash', got ${a.resizeMode}`);
  if (!(a.interpolation in SUPPORT))
    throw new ShapeError(`image_preprocess: interpolation must be 'bilinear' or 'bicubic', got ${a.interpolation}`);
  if (a.resizeMode === 'short' && !(a.cropPct > 0 && Math.floor(a.size / a.cropPct) >= 1)) {
    throw new ShapeError(`image_preprocess: cropPct ${a.cropPct} gives no resize target for size ${a.size}`);
  }
  checkMeanStd('image_preprocess', a.mean, a.std);
}

function checkMeanStd(op: string, mean: readonly number[], std: readonly number[]): void {
  if (
    mean?.length !== 3 ||
    std?.length !== 3 ||
    ![...mean, ...std].every(Number.isFinite) ||
    std.some((s) => s === 0)
  ) {
    throw new ShapeError(
      `${op}: mean and std must be 3 finite numbers each, std non-zero; got mean ${JSON.stringify(mean)}, std ${JSON.stringify(std)}`,
    );
  }
}

// ---- WGSL -------------------------------------------------------------------------------------

/** WGSL `fn filt(x: f32) -> f32`: PIL's triangle or bicubic (a = −0.5) kernel. */
function filterWgsl(f: Interpolation): string {
  if (f === 'bilinear') return 'fn filt(x: f32) -> f32 { let a = abs(x); return select(0.0, 1.0 - a, a < 1.0); }';
  return `fn filt(x: f32) -> f32 {
  let a = abs(x);
  if (a < 1.0) { return (1.5 * a - 2.5) * a * a + 1.0; }   // ((A+2)a − (A+3))a² + 1, A = −0.5
  if (a < 2.0) { return (((a - 5.0) * a + 8.0) * a - 4.0) * -0.5; }
  return 0.0;
}`;
}

/** Integer constants of one resize axis, baked into the WGSL. */
interface AxisConfig {
  n: number;
  m: number;
  den: number;
  support: number;
}

/** WGSL `fn <p>_span(i) -> vec2<i32>` (taps [start, end)) and `fn <p>_arg(i, j) -> f32` (f's argument). */
function axisWgsl(p: string, a: AxisConfig): string {
  return `
fn ${p}_span(i: i32) -> vec2<i32> {
  let c = (2 * i + 1) * ${a.n};
  return vec2<i32>(max(0, (c - ${a.support * a.den - a.m}) / ${2 * a.m}), min(${a.n}, (c + ${a.support * a.den + a.m}) / ${2 * a.m}));
}
fn ${p}_arg(i: i32, j: i32) -> f32 { return f32((2 * j + 1) * ${a.m} - (2 * i + 1) * ${a.n}) / ${a.den}.0; }`;
}

interface HorizontalConfig {
  filter: Interpolation;
  x: AxisConfig;
  /** Source width, output (crop) width, crop's left offset, first source row, rows computed. */
  srcW: number;
  size: number;
  left: number;
  rowLo: number;
  rows: number;
  wg: number;
  gridX: number;
}

const horizontal: KernelFamily<HorizontalConfig> = {
  name: 'image_resize_h',
  wgsl: (c) => `
${filterWgsl(c.filter)}
${axisWgsl('ax', c.x)}
@group(0) @binding(0) var<storage, read> src: array<f32>;        // input  [Hs, ${c.srcW}, 3], 0..255
@group(0) @binding(1) var<storage, read_write> tmp: array<f32>;  // temp   [${c.rows}, ${c.size}, 3]: source rows ${c.rowLo}.., cropped columns

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.rows * c.size}u) { return; }
  let r = t / ${c.size}u;
  let rx = i32(t % ${c.size}u) + ${c.left};   // column in the resized image
  var acc = vec3<f32>(0.0);
  if (rx >= 0 && rx < ${c.x.m}) {
    let s = ax_span(rx);
    let row = (r + ${c.rowLo}u) * ${c.srcW}u;
    var sum = 0.0;
    for (var j = s.x; j < s.y; j++) {
      let w = filt(ax_arg(rx, j));
      let p = (row + u32(j)) * 3u;
      acc += w * ${loadRgb('src', 'p')};
      sum += w;
    }
    if (sum != 0.0) { acc /= sum; }
  }
${storeRgb('tmp', 'acc')}
}`,
};

interface VerticalConfig {
  filter: Interpolation;
  y: AxisConfig;
  /** Crop size, crop offsets, resized width (for the column bound), first source row in tmp. */
  size: number;
  top: number;
  left: number;
  rw: number;
  rowLo: number;
  normalize: boolean;
  mean: readonly number[];
  std: readonly number[];
  wg: number;
  gridX: number;
}

const vertical: KernelFamily<VerticalConfig> = {
  name: 'image_resize_v',
  wgsl: (c) => wgsl`
${filterWgsl(c.filter)}
${axisWgsl('ay', c.y)}
@group(0) @binding(0) var<storage, read_write> tmp: array<f32>;  // temp   [rows, ${c.size}, 3] from image_resize_h
@group(0) @binding(1) var<storage, read_write> y: array<f32>;    // output [1, ${c.size}, ${c.size}, 3]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.size * c.size}u) { return; }
  let x = t % ${c.size}u;
  let ry = i32(t / ${c.size}u) + ${c.top};   // row in the resized image
  let rx = i32(x) + ${c.left};
  var v = vec3<f32>(0.0);
  if (ry >= 0 && ry < ${c.y.m} && rx >= 0 && rx < ${c.rw}) {
    let s = ay_span(ry);
    var acc = vec3<f32>(0.0);
    var sum = 0.0;
    for (var j = s.x; j < s.y; j++) {
      let w = filt(ay_arg(ry, j));
      let p = (u32(j - ${c.rowLo}) * ${c.size}u + x) * 3u;
      acc += w * ${loadRgb('tmp', 'p')};
      sum += w;
    }
    if (sum != 0.0) { acc /= sum; }
    v = clamp(acc, vec3<f32>(0.0), vec3<f32>(255.0));
  }
  v = v / 255.0;
#if ${c.normalize}
  v = ${normalizeRgb('v', c.mean, c.std)};
#endif
${storeRgb('y', 'v')}
}`,
};

// ---- image_preprocess ---------------------------------------------------------------------------

export const imagePreprocessOp: OpDef<ImagePreprocessAttrs> = {
  op: 'image_preprocess',
  arity: [1, 1],
  infer(a, [src]) {
    expectRank('image_preprocess source', src, 3);
    if (src[2] !== 3 || src[0] < 1 || src[1] < 1)
      throw new ShapeError(`image_preprocess needs an RGB image [H,W,3], got ${fmtShape(src)}`);
    checkAttrs(a);
    const g = preprocessGeometry(src[0], src[1], a);
    // The taps' integer arithmetic runs in i32: (2i+1)·n + F·den + m must stay below 2³¹.
    const worst = Math.max(2 * g.rw * g.w, 2 * g.rh * g.h) + 8 * Math.max(g.w, g.h, g.rw, g.rh);
    if (worst >= 2 ** 31)
      throw new ShapeError(
        `image_preprocess: ${fmtShape(src)} resized to ${g.rh}×${g.rw} is too large for 32-bit tap arithmetic`,
      );
    return [[1, a.size, a.size, 3]];
  },
  lower(a, [src], _o, ctx: LowerContext) {
    const g = preprocessGeometry(src[0], src[1], a);
    const aa = a.antialias !== false;
    const support = SUPPORT[a.interpolation];
    const s = a.size;
    const rows = g.rowHi - g.rowLo;
    const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const gh = grid(ceilDiv(rows * s, WG), maxDim);
    const gv = grid(ceilDiv(s * s, WG), maxDim);
    const xAxis = { ...axis(g.w, g.rw, aa), support };
    const yAxis = { ...axis(g.h, g.rh, aa), support };
    const h: HorizontalConfig = {
      filter: a.interpolation,
      x: xAxis,
      srcW: g.w,
      size: s,
      left: g.left,
      rowLo: g.rowLo,
      rows,
      wg: WG,
      gridX: gh[0],
    };
    const v: VerticalConfig = {
      filter: a.interpolation,
      y: yAxis,
      size: s,
      top: g.top,
      left: g.left,
      rw: g.rw,
      rowLo: g.rowLo,
      normalize: a.normalize !== false,
      mean: [...a.mean],
      std: [...a.std],
      wg: WG,
      gridX: gv[0],
    };
    // Taps per output: 2·F·max(1, n/m) + 1 at most.
    const tapsX = 2 * support * Math.max(1, g.w / g.rw) + 1,
      tapsY = 2 * support * Math.max(1, g.h / g.rh) + 1;
    return {
      temps: [rows * s * 3],
      dispatches: [
        makeDispatch(horizontal, h, gh, [input(0), temp(0)], {
          flops: 6 * rows * s * tapsX,
          bytes: 4 * (3 * rows * g.w + 3 * rows * s),
        }),
        makeDispatch(vertical, v, gv, [temp(0), output(0)], {
          flops: 6 * s * s * tapsY,
          bytes: 4 * (3 * rows * s + 3 * s * s),
        }),
      ],
    };
  },
  ref(a, [src]) {
    const [h, w] = src.shape;
    return [{ shape: [1, a.size, a.size, 3], data: preprocessRef(src.data, h, w, a) }];
  },
};

// ---- reference: float64 coefficients with a floating centre, as models/preprocess.ts -----------

const FILTER_REF: Record<Interpolation, (x: number) => number> = {
  bilinear: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0),
  bicubic: (x) => {
    const A = -0.5;
    x = Math.abs(x);
    if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * A;
    return 0;
  },
};

/** PIL's precompute_coeffs for n → m: per output, first tap and normalised weights. */
function coefficientsRef(n: number, m: number, interp: Interpolation, antialias: boolean) {
  const scale = n / m;
  const fscale = antialias ? Math.max(scale, 1) : 1;
  const support = SUPPORT[interp] * fscale;
  const f = FILTER_REF[interp];
  return Array.from({ length: m }, (_, i) => {
    const center = (i + 0.5) * scale;
    const start = Math.max(0, Math.floor(center - support + 0.5));
    const end = Math.min(n, Math.floor(center + support + 0.5));
    const k = new Float64Array(Math.max(0, end - start));
    let sum = 0;
    for (let j = start; j < end; j++) sum += k[j - start] = f((j - center + 0.5) / fscale);
    if (sum !== 0) for (let j = 0; j < k.length; j++) k[j] /= sum;
    return { start, k };
  });
}

/** src [h, w, 3] in 0..255 → [S, S, 3] NHWC, as image_preprocess computes it. */
export function preprocessRef(src: Float32Array, h: number, w: number, a: ImagePreprocessAttrs): Float32Array {
  const g = preprocessGeometry(h, w, a);
  const aa = a.antialias !== false;
  const cx = coefficientsRef(w, g.rw, a.interpolation, aa);
  const tmp = new Float32Array(h * g.rw * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < g.rw; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let j = 0; j < cx[x].k.length; j++) s += cx[x].k[j] * src[(y * w + cx[x].start + j) * 3 + c];
        tmp[(y * g.rw + x) * 3 + c] = s;
      }
  const cy = coefficientsRef(h, g.rh, a.interpolation, aa);
  const S = a.size;
  const out = new Float32Array(S * S * 3);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) {
      const ry = y + g.top,
        rx = x + g.left;
      const inside = ry >= 0 && ry < g.rh && rx >= 0 && rx < g.rw;
      for (let c = 0; c < 3; c++) {
        let v = 0;
        if (inside) {
          for (let j = 0; j < cy[ry].k.length; j++) v += cy[ry].k[j] * tmp[((cy[ry].start + j) * g.rw + rx) * 3 + c];
          v = Math.min(255, Math.max(0, Math.fround(v)));
        }
        v /= 255;
        out[(y * S + x) * 3 + c] = a.normalize === false ? v : (v - a.mean[c]) / a.std[c];
      }
    }
  return out;
}

// ---- image_normalize --------------------------------------------------------------------------

export interface ImageNormalizeAttrs {
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

interface NormalizeConfig {
  pixels: number;
  mean: readonly number[];
  std: readonly number[];
  wg: number;
  gridX: number;
}

const normalize: KernelFamily<NormalizeConfig> = {
  name: 'image_normalize',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [.., 3] RGB in [0,1]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [.., 3] (x − mean) / std

${flatMain(c.wg, c.gridX)}   // one pixel
  if (t >= ${c.pixels}u) { return; }
  let v = ${normalizeRgb(loadRgb('x', 't * 3u'), c.mean, c.std)};
${storeRgb('y', 'v')}
}`,
};

export const imageNormalizeOp: OpDef<ImageNormalizeAttrs> = {
  op: 'image_normalize',
  arity: [1, 1],
  infer(a, [x]) {
    if (x.length < 1 || x[x.length - 1] !== 3)
      throw new ShapeError(`image_normalize needs RGB [..., 3], got ${fmtShape(x)}`);
    checkMeanStd('image_normalize', a.mean, a.std);
    return [x];
  },
  lower(a, [x]: Shape[], _o, ctx) {
    const pixels = numel(x) / 3;
    const g = grid(ceilDiv(pixels, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: NormalizeConfig = { pixels, mean: [...a.mean], std: [...a.std], wg: WG, gridX: g[0] };
    return {
      dispatches: [makeDispatch(normalize, cfg, g, [input(0), output(0)], { flops: 6 * pixels, bytes: 24 * pixels })],
    };
  },
  ref(a, [x]) {
    const data = new Float32Array(x.data.length);
    for (let i = 0; i < data.length; i++) data[i] = (x.data[i] - a.mean[i % 3]) / a.std[i % 3];
    return [{ shape: [...x.shape], data } satisfies HostTensor];
  },
};
