// ImageNet-C's extra spatter, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): noise N(c0, c1) → Gaussian σ = c2 (skimage: truncate 4, mode
// nearest) → zero below c3, then by mode:
//
//   liquid (c5 = 0), with the OpenCV steps ported on integer-valued maps as the reference's uint8:
//     ll8 = ⌊ll·255⌋; Canny(ll8, 50, 150) → Euclidean distance to the nearest edge, truncated at
//     20 → 3×3 box blur, ⌊·⌋ → equalizeHist (per-image histogram of the 21 levels → LUT) →
//     emboss [[−2,−1,0],[−1,1,1],[0,1,2]] saturated to [0,255] → 3×3 box blur rounded →
//     m = ll8·dist / max(ll8·dist) · c4;  y = clip(x + m·(175,238,238)/255)
//     stages: noise, gauss-h, gauss-v(→ll8), sobel, canny, coldist, rowdist, boxfloor, hist, lut,
//     emboss, boxround(→m), rowmax, imgmax, blend.
//   mud (c5 = 1): m = Gaussian σ = c4 of (ll > c3); m < 0.8 → 0; y = clip(x·(1−m) + m·(63,42,20)/255)
//     stages: noise, gauss-h, gauss-v(→binary), gauss-h, mud (vertical pass + blend).
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]; temps [N,H,W] single-channel maps, per-row
// histograms [N,H,21] and LUTs [N,21]. Every stage is a stage kernel of common.ts: one
// invocation per pixel (per image row for hist, per image for lut), no workgroup memory.
// Randomness: the counter RNG (eval/rng.ts), whose rng_normal uses an accurate cos (cos_2pi):
// without it, thresholded noise moved by whole blobs between SwiftShader and the reference.
//
// Deviations: Canny's hysteresis is one step (a weak pixel is kept if an 8-neighbour is strong;
// OpenCV follows chains of weak pixels); cv2.distanceTransform(DIST_L2, 5) is a 5×5 chamfer
// approximation where we compute the exact Euclidean distance (separable search within the
// truncation radius); ⌊·⌋ of the blurred distance takes +1e-3 so exact integers never fall a
// level through f32 rounding of sqrt; ll·255 above 255 saturates (numpy's uint8 cast wraps; it
// needs noise > 1, which does not happen in practice); max(m) = 0 gives m = 0 (the reference
// divides 0 by 0).

import { type BindingRef, type KernelFamily, f32Lit, input, output, temp } from '../../kernels/kernel.js';
import { RNG_WGSL, rngNormal } from '../rng.js';
import {
  type Dims,
  type DistOmit,
  type Launch,
  STAGE_BORDER_WGSL,
  STAGE_PIXEL,
  borderIndex,
  clamp01,
  dims,
  five,
  gaussianWeights,
  imageMax,
  roundHalfEven,
  stageDispatch,
  stageShader,
} from './common.js';
import type { CorruptionDef } from './corruption.js';

/** RNG stream of spatter's noise (other files use other ranges). */
const STREAM = { spatterNoise: 0x73700001 } as const;

const f = f32Lit;
const fr = Math.fround;

export interface SpatterParams {
  loc: number;
  scale: number;
  sigma: number;
  threshold: number;
  intensity: number;
  mud: boolean;
}
/** Distance-transform truncation (cv2.threshold(dist, 20, 20, THRESH_TRUNC)); also the histogram's last level. */
const DIST_MAX = 20;
const LEVELS = DIST_MAX + 1;
/** OpenCV Canny: tan 22.5° in 15-bit fixed point; thresholds (low, high) of the reference. */
const TG22 = 13573;
const CANNY_LOW = 50,
  CANNY_HIGH = 150;
const EMBOSS = [-2, -1, 0, -1, 1, 1, 0, 1, 2];
const WATER = [175 / 255, 238 / 255, 238 / 255];
const MUD = [63 / 255, 42 / 255, 20 / 255];

type GaussPost = 'none' | 'u8' | 'binary';

type SpatterConfig = Dims &
  Launch &
  (
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
  return list
    .map(([name, acc, what], k) => `@group(0) @binding(${k}) var<storage, ${acc}> ${name}: array<f32>;  // ${what}`)
    .join('\n');
}

const spatterFamily: KernelFamily<SpatterConfig> = {
  name: 'spatter',
  wgsl(c) {
    switch (c.stage) {
      case 'noise':
        return stageShader(
          c,
          binds([
            ['ids', 'read', 'input [N] image ids'],
            ['dst', 'read_write', 'temp [N,H,W] N(loc, scale) noise'],
          ]),
          `
${STAGE_PIXEL}
  dst[t] = ${f(c.loc)} + ${f(c.scale)} * rng_normal(${c.seed}u, u32(ids[n]), ${STREAM.spatterNoise}u, i * W + j);`,
          RNG_WGSL,
        );
      case 'gauss': {
        const r = (c.taps.length - 1) / 2;
        const at =
          c.axis === 'h'
            ? `(n * H + i) * W + clampi(i32(j) + i32(k) - ${r}, W)`
            : `(n * H + clampi(i32(i) + i32(k) - ${r}, H)) * W + j`;
        const post =
          c.post === 'u8'
            ? `
  if (v < ${f(c.threshold)}) { v = 0.0; }
  v = floor(clamp(v, 0.0, 1.0) * 255.0);`
            : c.post === 'binary'
              ? `
  v = select(0.0, 1.0, v > ${f(c.threshold)});`
              : '';
        return stageShader(
          c,
          binds([
            ['src', 'read', 'temp [N,H,W]'],
            ['dst', 'read_write', `temp [N,H,W] Gaussian along ${c.axis === 'h' ? 'rows' : 'columns'}, then ${c.post}`],
          ]),
          `
${STAGE_PIXEL}
  var v = 0.0;
  for (var k = 0u; k < ${c.taps.length}u; k++) { v += TAPS[k] * src[${at}]; }${post}
  dst[t] = v;`,
          `${STAGE_BORDER_WGSL}\n${tapsWgsl(c.taps)}`,
        );
      }
      case 'mud': {
        const r = (c.taps.length - 1) / 2;
        return stageShader(
          c,
          binds([
            ['x', 'read', 'input [N,H,W,3]'],
            ['src', 'read', 'temp [N,H,W] mask blurred along rows'],
            ['y', 'read_write', 'output [N,H,W,3]'],
          ]),
          `
${STAGE_PIXEL}
  var m = 0.0;
  for (var k = 0u; k < ${c.taps.length}u; k++) { m += TAPS[k] * src[(n * H + clampi(i32(i) + i32(k) - ${r}, H)) * W + j]; }
  if (m < 0.8) { m = 0.0; }
  let mud = vec3<f32>(${MUD.map(f).join(', ')});
  for (var ch = 0u; ch < 3u; ch++) { y[t * 3u + ch] = clamp(x[t * 3u + ch] * (1.0 - m) + mud[ch] * m, 0.0, 1.0); }`,
          `${STAGE_BORDER_WGSL}\n${tapsWgsl(c.taps)}`,
        );
      }
      case 'sobel':
        // Canny's gradients (3×3 Sobel, replicated border, L1 magnitude) and OpenCV's direction
        // sector, packed as mag·4 + sector (exact in f32: mag ≤ 2040).
        return stageShader(
          c,
          binds([
            ['ll', 'read', 'temp [N,H,W] ⌊liquid·255⌋'],
            ['dst', 'read_write', 'temp [N,H,W] |dx|+|dy| packed with sector'],
          ]),
          `
${STAGE_PIXEL}
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
  dst[t] = f32((ax + abs(dy)) * 4 + sector);`,
          STAGE_BORDER_WGSL,
        );
      case 'canny':
        // Non-maximum suppression as OpenCV (zero magnitude outside the image), thresholds
        // 50/150, and one hysteresis step: weak pixels next to a strong one are edges.
        return stageShader(
          c,
          binds([
            ['grad', 'read', 'temp [N,H,W] packed gradients'],
            ['edges', 'read_write', 'temp [N,H,W] 1 on Canny edges'],
          ]),
          `
${STAGE_PIXEL}
  var e = cls(n, i32(i), i32(j));
  if (e == 1u) {
    for (var a = -1; a <= 1; a++) {
      for (var b = -1; b <= 1; b++) { if (cls(n, i32(i) + a, i32(j) + b) == 2u) { e = 2u; } }
    }
  }
  edges[t] = select(0.0, 1.0, e == 2u);`,
          `
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
}`,
        );
      case 'coldist':
        return stageShader(
          c,
          binds([
            ['edges', 'read', 'temp [N,H,W] edges'],
            ['dst', 'read_write', 'temp [N,H,W] distance to the nearest edge in the column'],
          ]),
          `
${STAGE_PIXEL}
  var g = ${DIST_MAX + 1}.0;
  for (var k = -${DIST_MAX}; k <= ${DIST_MAX}; k++) {
    let r = i32(i) + k;
    if (r >= 0 && r < i32(H) && edges[(n * H + u32(r)) * W + j] > 0.5) { g = min(g, f32(abs(k))); }
  }
  dst[t] = g;`,
        );
      case 'rowdist':
        return stageShader(
          c,
          binds([
            ['col', 'read', 'temp [N,H,W] column distances'],
            ['dst', 'read_write', 'temp [N,H,W] Euclidean distance, ≤ 20'],
          ]),
          `
${STAGE_PIXEL}
  var d2 = ${(DIST_MAX + 1) ** 2}.0;
  for (var k = -${DIST_MAX}; k <= ${DIST_MAX}; k++) {
    let c = i32(j) + k;
    if (c >= 0 && c < i32(W)) { let g = col[(n * H + i) * W + u32(c)]; d2 = min(d2, f32(k * k) + g * g); }
  }
  dst[t] = min(sqrt(d2), ${DIST_MAX}.0);`,
        );
      case 'boxfloor':
      case 'boxround': {
        const round = c.stage === 'boxround';
        return stageShader(
          c,
          binds(
            round
              ? [
                  ['src', 'read', 'temp [N,H,W] embossed levels'],
                  ['ll', 'read', 'temp [N,H,W] ⌊liquid·255⌋'],
                  ['dst', 'read_write', 'temp [N,H,W] m = ll·round(box(src))'],
                ]
              : [
                  ['src', 'read', 'temp [N,H,W] distances'],
                  ['dst', 'read_write', 'temp [N,H,W] ⌊box(src)⌋ in 0..20'],
                ],
          ),
          `
${STAGE_PIXEL}
  var s = 0.0;
  for (var a = -1; a <= 1; a++) {
    for (var b = -1; b <= 1; b++) { s += src[(n * H + refl(i32(i) + a, H)) * W + refl(i32(j) + b, W)]; }
  }
  ${round ? 'dst[t] = ll[t] * floor(s / 9.0 + 0.5);' : `dst[t] = min(floor(s / 9.0 + 1e-3), ${DIST_MAX}.0);`}`,
          STAGE_BORDER_WGSL,
        );
      }
      case 'hist':
        return stageShader(
          c,
          binds([
            ['src', 'read', 'temp [N,H,W] levels 0..20'],
            ['dst', 'read_write', `temp [N,H,${LEVELS}] per-row histograms`],
          ]),
          `
  var cnt: array<f32, ${LEVELS}>;
  for (var j = 0u; j < W; j++) { cnt[min(u32(src[t * W + j]), ${DIST_MAX}u)] += 1.0; }
  for (var b = 0u; b < ${LEVELS}u; b++) { dst[t * ${LEVELS}u + b] = cnt[b]; }`,
        );
      case 'lut':
        // cv2.equalizeHist: LUT from the cumulative histogram, starting at the first used level.
        return stageShader(
          c,
          binds([
            ['rows', 'read', `temp [N,H,${LEVELS}] per-row histograms`],
            ['lut', 'read_write', `temp [N,${LEVELS}] equalisation LUT`],
          ]),
          `
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
  }`,
        );
      case 'emboss':
        return stageShader(
          c,
          binds([
            ['src', 'read', 'temp [N,H,W] levels 0..20'],
            ['lut', 'read', `temp [N,${LEVELS}] equalisation LUT`],
            ['dst', 'read_write', 'temp [N,H,W] embossed, 0..255'],
          ]),
          `
${STAGE_PIXEL}
  var e = 0.0;
  for (var a = 0u; a < 3u; a++) {
    for (var b = 0u; b < 3u; b++) {
      let v = src[(n * H + refl(i32(i + a) - 1, H)) * W + refl(i32(j + b) - 1, W)];
      e += EMBOSS[a * 3u + b] * lut[n * ${LEVELS}u + u32(v)];
    }
  }
  dst[t] = clamp(e, 0.0, 255.0);`,
          `${STAGE_BORDER_WGSL}
var<private> EMBOSS: array<f32, 9> = array<f32, 9>(${EMBOSS.map(f).join(', ')});`,
        );
      case 'blend':
        return stageShader(
          c,
          binds([
            ['x', 'read', 'input [N,H,W,3]'],
            ['m', 'read', 'temp [N,H,W] liquid mask'],
            ['mmax', 'read', 'temp [N] max of m per image'],
            ['y', 'read_write', 'output [N,H,W,3]'],
          ]),
          `
${STAGE_PIXEL}
  let mx = mmax[n];
  var v = 0.0;
  if (mx > 0.0) { v = m[t] / mx * ${f(c.intensity)}; }
  let water = vec3<f32>(${WATER.map(f).join(', ')});
  for (var ch = 0u; ch < 3u; ch++) { y[t * 3u + ch] = clamp(x[t * 3u + ch] + v * water[ch], 0.0, 1.0); }`,
        );
    }
  },
};

export const spatter: CorruptionDef<SpatterParams> = {
  name: 'spatter',
  extra: true,
  params: five(
    [
      [0.65, 0.3, 4, 0.69, 0.6, 0],
      [0.65, 0.3, 3, 0.68, 0.6, 0],
      [0.65, 0.3, 2, 0.68, 0.5, 0],
      [0.65, 0.3, 1, 0.65, 1.5, 1],
      [0.67, 0.4, 1, 0.65, 1.5, 1],
    ] as const,
    ([loc, scale, sigma, threshold, intensity, mud]) => ({ loc, scale, sigma, threshold, intensity, mud: mud === 1 }),
  ),
  lower(p, seed, shape, ctx) {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    const A = temp(0),
      B = temp(1),
      C = temp(2);
    const st = (cfg: DistOmit<SpatterConfig, keyof Launch | keyof Dims>, count: number, b: BindingRef[]) =>
      stageDispatch(spatterFamily, { ...d, ...cfg } as DistOmit<SpatterConfig, keyof Launch>, count, b, ctx);
    const taps = gaussianWeights(p.sigma, 4);
    const common = [
      st({ stage: 'noise', seed: seed >>> 0, loc: p.loc, scale: p.scale }, px, [input(1), A]),
      st({ stage: 'gauss', axis: 'h', taps, post: 'none', threshold: 0 }, px, [A, B]),
      st({ stage: 'gauss', axis: 'v', taps, post: p.mud ? 'binary' : 'u8', threshold: p.threshold }, px, [B, A]),
    ];
    if (p.mud) {
      const mudTaps = gaussianWeights(p.intensity, 4);
      return {
        dispatches: [
          ...common,
          st({ stage: 'gauss', axis: 'h', taps: mudTaps, post: 'none', threshold: 0 }, px, [A, B]),
          st({ stage: 'mud', taps: mudTaps }, px, [input(0), B, output(0)]),
        ],
        temps: [px, px],
      };
    }
    const HIST = temp(3),
      LUT = temp(4),
      ROWS = 5,
      MAX = 6;
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
function spatterImageRef(
  p: SpatterParams,
  seed: number,
  id: number,
  x: Float32Array,
  h: number,
  w: number,
): Float32Array {
  const hw = h * w;
  const map = (fn: (i: number, j: number) => number) => {
    const o = new Float32Array(hw);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) o[i * w + j] = fn(i, j);
    return o;
  };
  const gaussH = (src: Float32Array, taps: number[]) => {
    const r = (taps.length - 1) / 2;
    return map((i, j) => taps.reduce((s, t, k) => s + fr(t) * src[i * w + borderIndex('clamp', j + k - r, w)], 0));
  };
  const gaussVAt = (src: Float32Array, taps: number[], i: number, j: number) => {
    const r = (taps.length - 1) / 2;
    return taps.reduce((s, t, k) => s + fr(t) * src[borderIndex('clamp', i + k - r, h) * w + j], 0);
  };
  const noise = map((i, j) => p.loc + p.scale * rngNormal(seed, id, STREAM.spatterNoise, i * w + j));
  const taps = gaussianWeights(p.sigma, 4);
  const blurredH = gaussH(noise, taps);
  const thr = fr(p.threshold);
  const y = new Float32Array(hw * 3);

  if (p.mud) {
    const mask = map((i, j) => (fr(gaussVAt(blurredH, taps, i, j)) > thr ? 1 : 0));
    const mudTaps = gaussianWeights(p.intensity, 4);
    const mh = gaussH(mask, mudTaps);
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        let m = fr(gaussVAt(mh, mudTaps, i, j));
        if (m < 0.8) m = 0;
        for (let ch = 0; ch < 3; ch++)
          y[(i * w + j) * 3 + ch] = clamp01(x[(i * w + j) * 3 + ch] * (1 - m) + fr(MUD[ch]) * m);
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
    const px = (a: number, b: number) => ll[borderIndex('clamp', i + a, h) * w + borderIndex('clamp', j + b, w)];
    const dx = px(-1, 1) + 2 * px(0, 1) + px(1, 1) - (px(-1, -1) + 2 * px(0, -1) + px(1, -1));
    const dy = px(1, -1) + 2 * px(1, 0) + px(1, 1) - (px(-1, -1) + 2 * px(-1, 0) + px(-1, 1));
    const ax = Math.abs(dx),
      ay = Math.abs(dy) * 32768,
      tg22 = ax * TG22;
    let sector = 0;
    if (ay >= tg22) sector = ay > tg22 + ax * 65536 ? 1 : (dx ^ dy) < 0 ? 3 : 2;
    return (ax + Math.abs(dy)) * 4 + sector;
  });
  const inside = (r: number, c: number) => r >= 0 && c >= 0 && r < h && c < w;
  const mag = (r: number, c: number) => (inside(r, c) ? Math.floor(grad[r * w + c] / 4) : 0);
  const cls = (r: number, c: number): number => {
    if (!inside(r, c)) return 0;
    const g = grad[r * w + c],
      m = Math.floor(g / 4),
      sector = g % 4;
    if (m <= CANNY_LOW) return 0;
    const keep =
      sector === 0
        ? m > mag(r, c - 1) && m >= mag(r, c + 1)
        : sector === 1
          ? m > mag(r - 1, c) && m >= mag(r + 1, c)
          : sector === 2
            ? m > mag(r - 1, c - 1) && m > mag(r + 1, c + 1)
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
    for (let k = -DIST_MAX; k <= DIST_MAX; k++)
      if (inside(i + k, j) && edges[(i + k) * w + j] > 0.5) g = Math.min(g, Math.abs(k));
    return g;
  });
  const dist = map((i, j) => {
    let d2 = (DIST_MAX + 1) ** 2;
    for (let k = -DIST_MAX; k <= DIST_MAX; k++)
      if (inside(i, j + k)) d2 = Math.min(d2, k * k + col[i * w + j + k] ** 2);
    return Math.min(fr(Math.sqrt(d2)), DIST_MAX);
  });
  const box = (src: Float32Array, i: number, j: number) => {
    let s = 0;
    for (let a = -1; a <= 1; a++)
      for (let b = -1; b <= 1; b++)
        s += src[borderIndex('reflect101', i + a, h) * w + borderIndex('reflect101', j + b, w)];
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
      lut[b] = Math.min(roundHalfEven(fr(sum * scale)), 255);
    }
  }
  const emb = map((i, j) => {
    let e = 0;
    for (let a = 0; a < 3; a++)
      for (let b = 0; b < 3; b++)
        e +=
          EMBOSS[a * 3 + b] *
          lut[level[borderIndex('reflect101', i + a - 1, h) * w + borderIndex('reflect101', j + b - 1, w)]];
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
