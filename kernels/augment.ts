// Training augmentation on the GPU (docs/finetune.md): `augment_crop` (random crop, random-resized
// crop and horizontal flip in one pass) and `mixup` (convex pairs of images). The random choices
// are drawn on the host per (seed, step, image) by eval/finetune/augment.ts and arrive as a small
// tensor; these kernels only move pixels, so the GPU and the plain-TS references agree exactly up
// to f32 rounding of the bilinear weights.
//
// augment_crop
//   input  x     [N, H, W, C]  NHWC images (any values: raw, [0,1] or normalised)
//   input  boxes [N, 5]        per image: top, left, height, width (integers, in x's pixels; the
//                              box lies inside the image) and flip (0 or 1)
//   output y     [N, S, S', C] the box resized to S×S' (attrs height, width), mirrored left-right
//                              when flip is 1
//   Resampling is bilinear on half-pixel centres without antialias, as torch's
//   interpolate(mode='bilinear', align_corners=False) on the cropped tensor (torchvision's
//   resized_crop on tensors with antialias=False): output row i reads the box's row
//   sy = max(0, (i + ½)·h/S − ½), between ⌊sy⌋ and min(⌊sy⌋ + 1, h − 1). A box as large as the
//   output lands on pixel centres exactly, so a plain random crop is an exact copy.
//   Mapping: one invocation per output pixel (all C channels), 1-D workgroups over a 2-D grid.
//
// mixup
//   input  x     [N, …]         images (or any per-example rows)
//   input  pairs [N, 2]         per example: partner index p and weight λ
//   output y     [N, …]         y[n] = λ·x[n] + (1 − λ)·x[p]
//   Mapping: one invocation per output element.

import {
  type HostTensor,
  type KernelFamily,
  type OpDef,
  ceilDiv,
  expectRank,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { flatMain } from './wgsl.js';

/** Threads per workgroup for both families. */
const WG = 64;

/** Values per image in augment_crop's boxes. */
export const BOX_FIELDS = 5;

export interface AugmentCropAttrs {
  /** Output height and width. */
  height: number;
  width: number;
}

interface CropConfig {
  n: number;
  h: number;
  w: number;
  c: number;
  oh: number;
  ow: number;
  wg: number;
  gridX: number;
}

const crop: KernelFamily<CropConfig> = {
  name: 'augment_crop',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [${c.n}, ${c.h}, ${c.w}, ${c.c}]
@group(0) @binding(1) var<storage, read> boxes: array<f32>;      // input  [${c.n}, ${BOX_FIELDS}] top, left, height, width, flip
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // output [${c.n}, ${c.oh}, ${c.ow}, ${c.c}]

/** Source position along one axis: the two taps (box-relative) and the weight of the second. */
fn taps(i: u32, len: i32, outLen: u32) -> vec3<f32> {
  let s = max(0.0, (f32(i) + 0.5) * f32(len) / f32(outLen) - 0.5);
  let i0 = min(i32(floor(s)), len - 1);
  let i1 = min(i0 + 1, len - 1);
  return vec3<f32>(f32(i0), f32(i1), s - f32(i0));
}

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n * c.oh * c.ow}u) { return; }
  let n = t / ${c.oh * c.ow}u;
  let i = (t / ${c.ow}u) % ${c.oh}u;
  var j = t % ${c.ow}u;
  let b = n * ${BOX_FIELDS}u;
  let top = i32(boxes[b]);
  let left = i32(boxes[b + 1u]);
  let bh = max(1, i32(boxes[b + 2u]));
  let bw = max(1, i32(boxes[b + 3u]));
  if (boxes[b + 4u] != 0.0) { j = ${c.ow - 1}u - j; }
  let ty = taps(i, bh, ${c.oh}u);
  let tx = taps(j, bw, ${c.ow}u);
  // Rows and columns clamped into the image: a box outside it reads its edge, never out of bounds.
  let y0 = u32(clamp(top + i32(ty.x), 0, ${c.h - 1}));
  let y1 = u32(clamp(top + i32(ty.y), 0, ${c.h - 1}));
  let x0 = u32(clamp(left + i32(tx.x), 0, ${c.w - 1}));
  let x1 = u32(clamp(left + i32(tx.y), 0, ${c.w - 1}));
  let img = n * ${c.h * c.w}u;
  let p00 = (img + y0 * ${c.w}u + x0) * ${c.c}u;
  let p01 = (img + y0 * ${c.w}u + x1) * ${c.c}u;
  let p10 = (img + y1 * ${c.w}u + x0) * ${c.c}u;
  let p11 = (img + y1 * ${c.w}u + x1) * ${c.c}u;
  for (var k = 0u; k < ${c.c}u; k++) {
    let top_ = x[p00 + k] + tx.z * (x[p01 + k] - x[p00 + k]);
    let bot = x[p10 + k] + tx.z * (x[p11 + k] - x[p10 + k]);
    y[t * ${c.c}u + k] = top_ + ty.z * (bot - top_);
  }
}`,
};

function checkSize(a: AugmentCropAttrs): void {
  for (const [k, v] of [
    ['height', a.height],
    ['width', a.width],
  ] as const)
    if (!Number.isInteger(v) || v < 1) throw new ShapeError(`augment_crop: ${k} must be a positive integer, got ${v}`);
}

export const augmentCropOp: OpDef<AugmentCropAttrs> = {
  op: 'augment_crop',
  arity: [2, 2],
  infer(a, [x, boxes]) {
    expectRank('augment_crop images', x, 4);
    if (boxes.length !== 2 || boxes[0] !== x[0] || boxes[1] !== BOX_FIELDS)
      throw new ShapeError(
        `augment_crop needs boxes [${x[0]}, ${BOX_FIELDS}] (top, left, height, width, flip) for images ${fmtShape(x)}, got ${fmtShape(boxes)}`,
      );
    checkSize(a);
    return [[x[0], a.height, a.width, x[3]]];
  },
  lower(a, [x], _o, ctx) {
    const [n, h, w, c] = x;
    const count = n * a.height * a.width;
    const g = grid(ceilDiv(count, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: CropConfig = { n, h, w, c, oh: a.height, ow: a.width, wg: WG, gridX: g[0] };
    return {
      dispatches: [
        makeDispatch(crop, cfg, g, [input(0), input(1), output(0)], {
          flops: 6 * count * c,
          bytes: 4 * (2 * count * c + n * BOX_FIELDS),
        }),
      ],
    };
  },
  ref(a, [x, boxes]) {
    return [augmentCropRef(x, boxes.data, a)];
  },
};

/** One axis's taps, as the WGSL computes them (in f32). */
function tapsRef(i: number, len: number, outLen: number): [number, number, number] {
  const f = Math.fround;
  const s = Math.max(0, f(f(f(f(i + 0.5) * len) / outLen) - 0.5));
  const i0 = Math.min(Math.floor(s), len - 1);
  return [i0, Math.min(i0 + 1, len - 1), f(s - i0)];
}

/** augment_crop in plain TS: x [N,H,W,C], boxes N×5 → [N, height, width, C]. */
export function augmentCropRef(x: HostTensor, boxes: Float32Array, a: AugmentCropAttrs): HostTensor {
  const [n, h, w, c] = x.shape;
  const { height: oh, width: ow } = a;
  const out = new Float32Array(n * oh * ow * c);
  const clamp = (v: number, hi: number) => Math.min(Math.max(v, 0), hi);
  for (let b = 0; b < n; b++) {
    const [top, left, bh, bw, flip] = Array.from(boxes.subarray(b * BOX_FIELDS, (b + 1) * BOX_FIELDS));
    for (let i = 0; i < oh; i++) {
      const ty = tapsRef(i, Math.max(1, Math.trunc(bh)), oh);
      const y0 = clamp(top + ty[0], h - 1),
        y1 = clamp(top + ty[1], h - 1);
      for (let jo = 0; jo < ow; jo++) {
        const j = flip !== 0 ? ow - 1 - jo : jo;
        const tx = tapsRef(j, Math.max(1, Math.trunc(bw)), ow);
        const x0 = clamp(left + tx[0], w - 1),
          x1 = clamp(left + tx[1], w - 1);
        const at = (yy: number, xx: number, k: number) => x.data[((b * h + yy) * w + xx) * c + k];
        for (let k = 0; k < c; k++) {
          const t = at(y0, x0, k) + tx[2] * (at(y0, x1, k) - at(y0, x0, k));
          const d = at(y1, x0, k) + tx[2] * (at(y1, x1, k) - at(y1, x0, k));
          out[((b * oh + i) * ow + jo) * c + k] = t + ty[2] * (d - t);
        }
      }
    }
  }
  return { shape: [n, oh, ow, c], data: out };
}

// ---- mixup ------------------------------------------------------------------------------------

interface MixupConfig {
  n: number;
  /** Elements per example. */
  per: number;
  wg: number;
  gridX: number;
}

const mixup: KernelFamily<MixupConfig> = {
  name: 'mixup',
  wgsl: (c) => `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [${c.n}, ${c.per}]
@group(0) @binding(1) var<storage, read> pairs: array<f32>;      // input  [${c.n}, 2] partner, λ
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // output [${c.n}, ${c.per}]

${flatMain(c.wg, c.gridX)}
  if (t >= ${c.n * c.per}u) { return; }
  let n = t / ${c.per}u;
  let e = t % ${c.per}u;
  let p = min(u32(pairs[2u * n]), ${c.n - 1}u);
  let lam = pairs[2u * n + 1u];
  y[t] = lam * x[t] + (1.0 - lam) * x[p * ${c.per}u + e];
}`,
};

export const mixupOp: OpDef<Record<string, never>> = {
  op: 'mixup',
  arity: [2, 2],
  infer(_a, [x, pairs]) {
    if (x.length < 1) throw new ShapeError(`mixup needs a batch [N, …], got ${fmtShape(x)}`);
    if (pairs.length !== 2 || pairs[0] !== x[0] || pairs[1] !== 2)
      throw new ShapeError(`mixup needs pairs [${x[0]}, 2] (partner, λ) for ${fmtShape(x)}, got ${fmtShape(pairs)}`);
    return [x];
  },
  lower(_a, [x], _o, ctx) {
    const n = x[0],
      per = numel(x) / n;
    const g = grid(ceilDiv(n * per, WG), ctx.limits.maxComputeWorkgroupsPerDimension);
    return {
      dispatches: [
        makeDispatch(mixup, { n, per, wg: WG, gridX: g[0] }, g, [input(0), input(1), output(0)], {
          flops: 3 * n * per,
          bytes: 12 * n * per,
        }),
      ],
    };
  },
  ref(_a, [x, pairs]) {
    return [mixupRef(x, pairs.data)];
  },
};

/** mixup in plain TS (f32 arithmetic as the WGSL). */
export function mixupRef(x: HostTensor, pairs: Float32Array): HostTensor {
  const n = x.shape[0],
    per = x.data.length / n;
  const f = Math.fround;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < n; b++) {
    const p = Math.min(Math.trunc(pairs[2 * b]), n - 1),
      lam = pairs[2 * b + 1];
    for (let e = 0; e < per; e++)
      out[b * per + e] = f(f(lam * x.data[b * per + e]) + f(f(1 - lam) * x.data[p * per + e]));
  }
  return { shape: [...x.shape], data: out };
}
