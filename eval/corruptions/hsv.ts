// ImageNet-C brightness and the extra saturate, ported from hendrycks/robustness
// `imagenet_c/corruptions.py` (parameters: docs/imagenet-c.md): skimage's HSV round trip,
//
//   brightness  rgb2hsv, V ← clip(V + c), hsv2rgb
//   saturate    the same with S ← clip(S·a + b)
//
// rgb2hsv resolves ties between max channels as skimage does (blue over green over red). One
// kernel family serves both (the channel and (mul, add) are config). Layout: x, y [N,H,W,3] NHWC
// in [0,1]. Mapping: one invocation per pixel (all channels), through pixelMain. Deviation: none
// beyond f32 arithmetic.

import { type KernelFamily, f32Lit, input, makeDispatch, output } from '../../kernels/kernel.js';
import { type PixelGrid, clamp01, pixelGrid, pixelMain, storeRgb, toImage } from './common.js';
import type { CorruptionDef } from './corruption.js';

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
  const p = v * (1 - s),
    q = v * (1 - f * s),
    t = v * (1 - (1 - f) * s);
  switch (((hi % 6) + 6) % 6) {
    case 0:
      return [v, t, p];
    case 1:
      return [q, v, p];
    case 2:
      return [p, v, t];
    case 3:
      return [p, q, v];
    case 4:
      return [t, p, v];
    default:
      return [v, p, q];
  }
}

/** V ← clip(V + add) (brightness) or S ← clip(S·mul + add) (saturate). */
interface HsvConfig extends PixelGrid {
  channel: 'v' | 's';
  mul: number;
  add: number;
}

const hsvFamily: KernelFamily<HsvConfig> = {
  name: 'corrupt-hsv',
  wgsl: (c) => `
${HSV_WGSL}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(
  c,
  `
  var hsv = rgb2hsv(vec3<f32>(x[p * 3u], x[p * 3u + 1u], x[p * 3u + 2u]));
  hsv.${c.channel === 'v' ? 'z' : 'y'} = clamp(hsv.${c.channel === 'v' ? 'z' : 'y'} * ${f32Lit(c.mul)} + ${f32Lit(c.add)}, 0.0, 1.0);
  let r = clamp(hsv2rgb(hsv), vec3<f32>(0.0), vec3<f32>(1.0));
${storeRgb('r')}`,
)}`,
};

function hsvDef<P>(
  name: string,
  params: [P, P, P, P, P],
  cfg: (p: P) => { channel: 'v' | 's'; mul: number; add: number },
  extra = false,
): CorruptionDef<P> {
  return {
    name,
    extra,
    params,
    lower(p, _seed, shape, ctx) {
      const { g, groups } = pixelGrid(shape, ctx);
      return {
        dispatches: [
          makeDispatch(hsvFamily, { ...g, ...cfg(p) }, groups, [input(0), output(0)], { bytes: 24 * g.n * g.h * g.w }),
        ],
      };
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

export const brightness = hsvDef('brightness', [0.1, 0.2, 0.3, 0.4, 0.5], (c: number) => ({
  channel: 'v',
  mul: 1,
  add: c,
}));

/** saturate's (multiplier, offset) on S. */
export type SaturateParams = readonly [number, number];

export const saturate = hsvDef<SaturateParams>(
  'saturate',
  [
    [0.3, 0],
    [0.1, 0],
    [2, 0],
    [5, 0.1],
    [20, 0.2],
  ],
  ([mul, add]) => ({ channel: 's', mul, add }),
  true,
);
