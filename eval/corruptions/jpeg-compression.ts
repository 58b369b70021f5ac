// ImageNet-C jpeg_compression, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): Pillow's JPEG save + load at `quality`, bit for bit, with
// the integer codec of jpeg-codec.ts.
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; temps Y [N,H,W] and CbCr [N,⌈H/2⌉,⌈W/2⌉,2], decoded
// 0-255 integers. Dispatches: one invocation per luma block (encode + decode of one 8×8 block,
// 16 a workgroup) → one per chroma block position (Cb and Cr) → one per pixel (fancy upsampling
// and YCbCr→RGB, through pixelMain). The input is rounded to 8 bits first, as the reference gets
// a uint8 PIL image; the output is k · f32(1/255). Deviation: none (bit-exact).

import {
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Lowering,
  type Shape,
  ceilDiv,
  f32Lit,
  grid,
  input,
  makeDispatch,
  output,
  temp,
} from '../../kernels/kernel.js';
import { type PixelGrid, computeMain, constArray, pixelGrid, pixelMain, storeRgb } from './common.js';
import type { CorruptionDef } from './corruption.js';
import { JPEG_INT_WGSL, YCC, jpegQuantTables, jpegReciprocal, jpegRoundTripU8, toU8 } from './jpeg-codec.js';

interface JpegBlockConfig {
  n: number;
  h: number;
  w: number;
  /** Chroma plane size ⌈H/2⌉×⌈W/2⌉. */
  ch: number;
  cw: number;
  /** Blocks per image along rows and columns of the plane this dispatch codes. */
  bh: number;
  bw: number;
  plane: 'luma' | 'chroma';
  /** The quantisation table and its reciprocal form (jpegReciprocal of 8q). */
  q: readonly number[];
  recip: readonly number[];
  corr: readonly number[];
  shift: readonly number[];
  /** How [0,1] floats become the 8-bit pixels libjpeg reads (jpegToU8). */
  toU8: JpegInput;
  wg: number;
  gridX: number;
}

const jpegBlockFamily: KernelFamily<JpegBlockConfig> = {
  name: 'corrupt-jpeg-block',
  wgsl(c) {
    const luma = c.plane === 'luma';
    // Per plane: code the luma block, or the Cb and Cr blocks of one chroma position.
    const code = luma
      ? `
  var s: array<i32, 64>;
  for (var i = 0u; i < 64u; i++) { s[i] = to_y(rgb8(b, by * 8u + i / 8u, bx * 8u + i % 8u)); }
  jpeg_block(&s, &qt, &recip, &corr, &shift);
  for (var i = 0u; i < 64u; i++) {
    let r = by * 8u + i / 8u;
    let col = bx * 8u + i % 8u;
    if (r < ${c.h}u && col < ${c.w}u) { plane[(b * ${c.h}u + r) * ${c.w}u + col] = f32(s[i]); }
  }`
      : `
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
  }`;
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
  let v = floor(vec3<f32>(x[o], x[o + 1u], x[o + 2u]) * 255.0 + ${c.toU8 === 'round' ? '0.5' : f32Lit(TRUNC_SLACK)});
  return vec3<i32>(clamp(v, vec3<f32>(0.0), vec3<f32>(255.0)));
}
${
  luma
    ? `fn to_y(p: vec3<i32>) -> i32 { return (${YCC.yr} * p.x + ${YCC.yg} * p.y + ${YCC.yb} * p.z + 32768) >> 16u; }`
    : `
fn to_cb(p: vec3<i32>) -> i32 { return (-${YCC.cbr} * p.x - ${YCC.cbg} * p.y + ${YCC.half} * p.z + ${(128 << 16) + 32767}) >> 16u; }
fn to_cr(p: vec3<i32>) -> i32 { return (${YCC.half} * p.x - ${YCC.crg} * p.y - ${YCC.crb} * p.z + ${(128 << 16) + 32767}) >> 16u; }`
}
${computeMain(
  c,
  c.n * c.bh * c.bw,
  't',
  `  let b = t / ${c.bh * c.bw}u;
  let by = (t / ${c.bw}u) % ${c.bh}u;
  let bx = t % ${c.bw}u;
  var qt = QT;
  var recip = RECIP;
  var corr = CORR;
  var shift = SHIFT;
${code}`,
  '   // block over [N, bh, bw]',
)}`;
  },
};

interface JpegDecodeConfig extends PixelGrid {
  ch: number;
  cw: number;
}

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
${pixelMain(
  c,
  `
  let cy = yy / 2;
  let cx = xx / 2;
${
  c.cw > 2
    ? `
  // h2v2_fancy_upsample: 3/4 nearer + 1/4 further sample in each direction, edges replicated,
  // rounding bias 8 on even and 7 on odd output columns.
  let ny = clamp(select(cy - 1, cy + 1, (yy & 1) == 1), 0, ${c.ch - 1});
  let nx = clamp(select(cx - 1, cx + 1, (xx & 1) == 1), 0, ${c.cw - 1});
  let this_col = 3 * cc(b, cy, cx) + cc(b, ny, cx);
  let next_col = 3 * cc(b, cy, nx) + cc(b, ny, nx);
  let cbcr = ((3 * this_col + next_col + select(8, 7, (xx & 1) == 1)) >> vec2<u32>(4u)) - 128;`
    : `
  // Planes 2 samples wide or less: libjpeg's plain h2v2_upsample (replication).
  let cbcr = cc(b, cy, cx) - 128;`
}
  let l = i32(luma[p]);
  let rgb = vec3<i32>(
    l + ((${YCC.rcr} * cbcr.y + 32768) >> 16u),
    l + ((-${YCC.gcb} * cbcr.x + 32768 - ${YCC.gcr} * cbcr.y) >> 16u),
    l + ((${YCC.bcb} * cbcr.x + 32768) >> 16u));
  let v = vec3<f32>(clamp(rgb, vec3<i32>(0), vec3<i32>(255))) * ${f32Lit(1 / 255)};   // as the reference: k · f32(1/255)
${storeRgb('v')}`,
)}`,
};

/**
 * How the codec's [0,1] input becomes 8 bits: 'round' (jpeg_compression: the reference's input is
 * a uint8 image) or 'trunc' (ImageNet-C's storage step, `np.uint8` of a float in [0, 255], which
 * truncates; storage.ts). Truncation is floor(x·255 + 2^-10): the slack of 1/1024 grey level keeps
 * values that are integers in exact arithmetic (k/255 passed through) at k despite f32 rounding
 * (f32 error at 255 is ~1.5e-5), as they are in the reference's f64.
 */
export type JpegInput = 'round' | 'trunc';
const TRUNC_SLACK = 2 ** -10;

/** The 8-bit value libjpeg reads for x in [0,1], computed in f32 as the GPU does. */
export const jpegToU8 = (mode: JpegInput, v: number): number =>
  mode === 'round' ? toU8(v) : Math.min(Math.max(Math.floor(Math.fround(Math.fround(v * 255) + TRUNC_SLACK)), 0), 255);

/** A JPEG save + load at `quality` of x [N,H,W,3] (input(0)) into output(0): three dispatches. */
export function jpegLowering(quality: number, toU8Mode: JpegInput, shape: Shape, ctx: LowerContext): Lowering {
  const [n, h, w] = shape;
  const ch = Math.ceil(h / 2),
    cw = Math.ceil(w / 2);
  const tables = jpegQuantTables(quality);
  const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
  const wg = 16;
  const blocks = (plane: 'luma' | 'chroma', ph: number, pw: number, q: number[], out: number) => {
    const bh = Math.ceil(ph / 8),
      bw = Math.ceil(pw / 8);
    const g = grid(ceilDiv(n * bh * bw, wg), maxDim);
    const rec = q.map((v) => jpegReciprocal(v * 8));
    const cfg: JpegBlockConfig = {
      n,
      h,
      w,
      ch,
      cw,
      bh,
      bw,
      plane,
      q,
      recip: rec.map((r) => r.recip),
      corr: rec.map((r) => r.corr),
      shift: rec.map((r) => r.shift),
      toU8: toU8Mode,
      wg,
      gridX: g[0],
    };
    const nb = n * bh * bw * (plane === 'luma' ? 1 : 2);
    return makeDispatch(jpegBlockFamily, cfg, g, [input(0), temp(out)], { bytes: 4 * (n * h * w * 3 + nb * 64) });
  };
  const { g, groups } = pixelGrid(shape, ctx);
  return {
    dispatches: [
      blocks('luma', h, w, tables.luma, 0),
      blocks('chroma', ch, cw, tables.chroma, 1),
      makeDispatch(jpegDecodeFamily, { ...g, ch, cw }, groups, [temp(0), temp(1), output(0)], {
        bytes: 4 * n * h * w * 4,
      }),
    ],
    temps: [n * h * w, n * ch * cw * 2],
  };
}

/** jpegLowering's plain-TS reference. */
export function jpegRef(quality: number, toU8Mode: JpegInput, x: HostTensor): HostTensor {
  const [n, h, w] = x.shape;
  const data = new Float32Array(x.data.length);
  for (let b = 0; b < n; b++) {
    const img = x.data.subarray(b * h * w * 3, (b + 1) * h * w * 3);
    const out = jpegRoundTripU8(
      Array.from(img, (v) => jpegToU8(toU8Mode, v)),
      h,
      w,
      quality,
    );
    for (let i = 0; i < out.length; i++) data[b * h * w * 3 + i] = Math.fround(out[i] * Math.fround(1 / 255));
  }
  return { shape: [...x.shape], data };
}

export const jpegCompression: CorruptionDef<number> = {
  name: 'jpeg_compression',
  params: [25, 18, 15, 10, 7],
  lower: (quality, _seed, shape, ctx) => jpegLowering(quality, 'round', shape, ctx),
  ref: (quality, _seed, x) => jpegRef(quality, 'round', x),
};
