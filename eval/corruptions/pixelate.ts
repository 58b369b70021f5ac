// ImageNet-C pixelate, ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters:
// docs/imagenet-c.md): PIL resize to ⌊n·c⌋ with BOX, then back with BOX.
//
// Upscaling with BOX is a nearest neighbour (source ⌊(o+½)·in/out⌋). PIL's BOX weights are 0/1 on
// input pixels whose centres fall in the output pixel's footprint; the row/column windows are
// computed here in f64 exactly as Pillow's precompute_coeffs and baked into the WGSL. The
// arithmetic is Pillow's 8-bit resampler's, so the result is bit-exact (tests/eval/corruptions-
// reference.test.ts): the input rounded to 8 bits (the reference gets a uint8 PIL image), weights
// 1/count in fixed point (normalize_coeffs_8bpc: ⌊2^22/count + ½⌋), the horizontal pass rounded
// and clipped to 8 bits ((Σ + 2^21) >> 22), then the vertical pass likewise; the upscale copies.
// Layout: x, y [N,H,W,3] NHWC in [0,1]. Mapping: one invocation per output pixel (all channels),
// through pixelMain. Output k · f32(1/255). Deviation: none.

import { type KernelFamily, f32Lit, input, makeDispatch, output } from '../../kernels/kernel.js';
import { type PixelGrid, constArray, pixelGrid, pixelMain, storeRgb } from './common.js';
import type { CorruptionDef } from './corruption.js';
import { toU8 } from './jpeg-codec.js';

/** Pillow's precompute_coeffs for BOX: per output index, the first input index and how many (0/1 weights). */
export function pilBoxWindows(inSize: number, outSize: number): { start: number[]; count: number[] } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 0.5 * filterscale;
  const ss = 1 / filterscale;
  const start: number[] = [],
    count: number[] = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    let first = -1,
      n = 0;
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

interface PixelateConfig extends PixelGrid {
  rows: readonly number[];
  cols: readonly number[];
  kk: readonly number[];
}

/** Pillow's PRECISION_BITS for 8-bit resampling (32 − 8 − 2). */
const PRECISION_BITS = 22;

/** Pillow's fixed-point weight of a 0/1 BOX window of `count` pixels (normalize_coeffs_8bpc). */
export const pilBoxWeight = (count: number): number => Math.trunc(0.5 + (1 / count) * 2 ** PRECISION_BITS);

/** Pillow's rounding and clip8 of a fixed-point sum. */
const pilClip8 = (acc: number): number =>
  Math.min(Math.floor((acc + 2 ** (PRECISION_BITS - 1)) / 2 ** PRECISION_BITS), 255);

const pack = (w: { start: number[]; count: number[] }) => w.start.map((s, i) => s + w.count[i] * 65536);

const pixelateFamily: KernelFamily<PixelateConfig> = {
  name: 'corrupt-pixelate',
  wgsl: (c) => `
// Per output row / column: first input index | count << 16.
${constArray('ROWS', 'u32', c.rows)}
${constArray('COLS', 'u32', c.cols)}
// Fixed-point weight of a window of k pixels, by k.
${constArray('KK', 'u32', c.kk)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]

// Pillow's rounding of a fixed-point sum to 8 bits, clipped.
fn clip8(acc: vec3<u32>) -> vec3<u32> {
  return min((acc + vec3<u32>(${2 ** (PRECISION_BITS - 1)}u)) >> vec3<u32>(${PRECISION_BITS}u), vec3<u32>(255u));
}
${pixelMain(
  c,
  `
  let rw = ROWS[yy];
  let cw = COLS[xx];
  let r0 = rw & 0xffffu;
  let c0 = cw & 0xffffu;
  let kr = KK[rw >> 16u];
  let kc = KK[cw >> 16u];
  var acc = vec3<u32>(0u);
  for (var r = r0; r < r0 + (rw >> 16u); r++) {
    var row = vec3<u32>(0u);
    for (var s = c0; s < c0 + (cw >> 16u); s++) {
      let o = ((b * ${c.h}u + r) * ${c.w}u + s) * 3u;
      let v8 = clamp(floor(vec3<f32>(x[o], x[o + 1u], x[o + 2u]) * 255.0 + 0.5), vec3<f32>(0.0), vec3<f32>(255.0));
      row += vec3<u32>(v8) * kc;
    }
    acc += clip8(row) * kr;
  }
  let v = vec3<f32>(clip8(acc)) * ${f32Lit(1 / 255)};   // as the reference: k · f32(1/255)
${storeRgb('v')}`,
)}`,
};

export const pixelate: CorruptionDef<number> = {
  name: 'pixelate',
  params: [0.6, 0.5, 0.4, 0.3, 0.25],
  lower(c, _seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const rows = pixelateWindows(g.h, c),
      cols = pixelateWindows(g.w, c);
    const kk = Array.from({ length: Math.max(...rows.count, ...cols.count) + 1 }, (_, k) => (k ? pilBoxWeight(k) : 0));
    const cfg: PixelateConfig = { ...g, rows: pack(rows), cols: pack(cols), kk };
    return {
      dispatches: [makeDispatch(pixelateFamily, cfg, groups, [input(0), output(0)], { bytes: 24 * g.n * g.h * g.w })],
    };
  },
  ref(c, _seed, x) {
    const [n, h, w] = x.shape;
    const rows = pixelateWindows(h, c),
      cols = pixelateWindows(w, c);
    const out = new Float32Array(x.data.length);
    for (let b = 0; b < n; b++)
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          const o = ((b * h + yy) * w + xx) * 3;
          const kr = pilBoxWeight(rows.count[yy]),
            kc = pilBoxWeight(cols.count[xx]);
          for (let k = 0; k < 3; k++) {
            let acc = 0;
            for (let r = rows.start[yy]; r < rows.start[yy] + rows.count[yy]; r++) {
              let row = 0;
              for (let s = cols.start[xx]; s < cols.start[xx] + cols.count[xx]; s++)
                row += toU8(x.data[((b * h + r) * w + s) * 3 + k]) * kc;
              acc += pilClip8(row) * kr;
            }
            out[o + k] = Math.fround(pilClip8(acc) * Math.fround(1 / 255));
          }
        }
    return { shape: [...x.shape], data: out };
  },
};
