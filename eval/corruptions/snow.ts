// ImageNet-C snow, ported from hendrycks/robustness `imagenet_c/corruptions.py` (parameters:
// docs/imagenet-c.md):
//
//   x' = b·x + (1−b)·max(x, gray(x)·1.5 + 0.5);  y = clip(x' + s + rot180(s))
//
// Layout: x, y [N,H,W,3] NHWC in [0,1]; ids [N]; temps [N,H,W] single-channel maps. Stages (stage
// kernels of common.ts, one invocation per pixel each, no workgroup memory):
//   layer  N(loc, scale) noise → clipped_zoom (common.ts zoomAxis; bilinear, as scipy zoom
//          order 1) → zero below the threshold → clip [0,1]                      temp 0
//   blur   ImageMagick MotionBlurImage (common.ts motionKernel): one-sided Gaussian of width
//          2·⌈radius⌉+1 along an angle U(−135°, −45°) per image, offsets ⌈k·cos a − ½⌉,
//          ⌈k·sin a − ½⌉, edge pixels repeated                                  temp 1
//   blend  the formula above (gray = cv2 RGB2GRAY weights)                       output
// Randomness: the counter RNG (eval/rng.ts); the angle's cosine is cos_2pi (accurate on every
// adapter), so blur taps agree between the GPU and the reference.
//
// Deviations: the snow layer is not quantised to 8 bits before and after the motion blur (the
// reference round-trips it through PNG); clipped_zoom is applied per axis, so non-square images
// work (the reference assumes square).

import { type KernelFamily, f32Lit, input, output, temp } from '../../kernels/kernel.js';
import { RNG_WGSL, rngNormal, rngUniform } from '../rng.js';
import {
  type Dims,
  type Launch,
  STAGE_BORDER_WGSL,
  STAGE_PIXEL,
  borderIndex,
  clamp01,
  dims,
  five,
  motionKernel,
  stageDispatch,
  stageShader,
  zoomAxis,
} from './common.js';
import type { CorruptionDef } from './corruption.js';

/** RNG streams of snow (other files use other ranges). */
const STREAM = { snowNoise: 0x736e0001, snowAngle: 0x736e0002 } as const;

const f = f32Lit;
const fr = Math.fround;

export interface SnowParams {
  loc: number;
  scale: number;
  zoom: number;
  threshold: number;
  radius: number;
  sigma: number;
  blend: number;
}

type SnowConfig = Dims &
  Launch &
  (
    | {
        stage: 'layer';
        seed: number;
        loc: number;
        scale: number;
        threshold: number;
        zy: readonly number[];
        zx: readonly number[];
      }
    | { stage: 'blur'; seed: number; kernel: readonly number[] }
    | { stage: 'blend'; blend: number }
  );

const snowFamily: KernelFamily<SnowConfig> = {
  name: 'snow',
  wgsl(c) {
    switch (c.stage) {
      case 'layer': {
        // zy/zx = [top, ch, trim, ratio]
        const [ty, chy, ry, ay] = c.zy,
          [tx, chx, rx, ax] = c.zx;
        return stageShader(
          c,
          `
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read_write> layer: array<f32>;  // temp   [N,H,W] snow layer`,
          `
${STAGE_PIXEL}
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
  layer[t] = clamp(v, 0.0, 1.0);`,
          `${RNG_WGSL}
fn noise(id: u32, r: u32, col: u32) -> f32 {
  return ${f(c.loc)} + ${f(c.scale)} * rng_normal(${c.seed}u, id, ${STREAM.snowNoise}u, r * W + col);
}`,
        );
      }
      case 'blur':
        return stageShader(
          c,
          `
@group(0) @binding(0) var<storage, read> ids: array<f32>;          // input  [N] image ids
@group(0) @binding(1) var<storage, read> layer: array<f32>;        // temp   [N,H,W] snow layer
@group(0) @binding(2) var<storage, read_write> blurred: array<f32>; // temp  [N,H,W] motion-blurred layer`,
          `
${STAGE_PIXEL}
  let id = u32(ids[n]);
  // angle U(−135°, −45°) in turns; cos_2pi rather than the adapter's cos, so taps agree everywhere
  let turns = -0.375 + 0.25 * rng_uniform(${c.seed}u, id, ${STREAM.snowAngle}u, 0u);
  let ca = cos_2pi(turns);
  let sa = cos_2pi(turns - 0.25);
  var acc = 0.0;
  for (var k = 0u; k < ${c.kernel.length}u; k++) {
    let r = clampi(i32(i) + i32(ceil(f32(k) * sa - 0.5)), H);
    let col = clampi(i32(j) + i32(ceil(f32(k) * ca - 0.5)), W);
    acc += KW[k] * layer[(n * H + r) * W + col];
  }
  blurred[t] = acc;`,
          `${RNG_WGSL}${STAGE_BORDER_WGSL}
var<private> KW: array<f32, ${c.kernel.length}> = array<f32, ${c.kernel.length}>(${c.kernel.map(f).join(', ')});`,
        );
      case 'blend':
        return stageShader(
          c,
          `
@group(0) @binding(0) var<storage, read> x: array<f32>;          // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read> snow: array<f32>;       // temp   [N,H,W] blurred snow layer
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // output [N,H,W,3]`,
          `
${STAGE_PIXEL}
  let s = snow[t] + snow[(n * H + H - 1u - i) * W + W - 1u - j];
  let gray = 0.299 * x[t * 3u] + 0.587 * x[t * 3u + 1u] + 0.114 * x[t * 3u + 2u];
  for (var ch = 0u; ch < 3u; ch++) {
    let v = x[t * 3u + ch];
    let xb = ${f(c.blend)} * v + ${f(1 - c.blend)} * max(v, gray * 1.5 + 0.5);
    y[t * 3u + ch] = clamp(xb + s, 0.0, 1.0);
  }`,
        );
    }
  },
};

function snowStages(p: SnowParams, h: number, w: number) {
  const zy = zoomAxis(h, p.zoom),
    zx = zoomAxis(w, p.zoom);
  return { zy, zx, kernel: motionKernel(p.radius, p.sigma) };
}

export const snow: CorruptionDef<SnowParams> = {
  name: 'snow',
  params: five(
    [
      [0.1, 0.3, 3, 0.5, 10, 4, 0.8],
      [0.2, 0.3, 2, 0.5, 12, 4, 0.7],
      [0.55, 0.3, 4, 0.9, 12, 8, 0.7],
      [0.55, 0.3, 4.5, 0.85, 12, 8, 0.65],
      [0.55, 0.3, 2.5, 0.85, 12, 12, 0.55],
    ] as const,
    ([loc, scale, zoom, threshold, radius, sigma, blend]) => ({ loc, scale, zoom, threshold, radius, sigma, blend }),
  ),
  lower(p, seed, shape, ctx) {
    const d = dims(shape);
    const px = d.n * d.h * d.w;
    const { zy, zx, kernel } = snowStages(p, d.h, d.w);
    const axis = (z: typeof zy) => [z.top, z.ch, z.trim, z.ratio];
    const s = seed >>> 0;
    return {
      dispatches: [
        stageDispatch(
          snowFamily,
          {
            ...d,
            stage: 'layer',
            seed: s,
            loc: p.loc,
            scale: p.scale,
            threshold: p.threshold,
            zy: axis(zy),
            zx: axis(zx),
          },
          px,
          [input(1), temp(0)],
          ctx,
        ),
        stageDispatch(snowFamily, { ...d, stage: 'blur', seed: s, kernel }, px, [input(1), temp(0), temp(1)], ctx),
        stageDispatch(
          snowFamily,
          { ...d, stage: 'blend', blend: p.blend },
          px,
          [input(0), temp(1), output(0)],
          ctx,
          4 * px * 8,
        ),
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
      const noise = (r: number, c: number) => p.loc + p.scale * rngNormal(s, id, STREAM.snowNoise, r * w + c);
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          const cy = fr((i + zy.trim) * fr(zy.ratio)),
            cx = fr((j + zx.trim) * fr(zx.ratio));
          const y0 = Math.min(Math.floor(cy), zy.ch - 1),
            x0 = Math.min(Math.floor(cx), zx.ch - 1);
          const y1 = Math.min(y0 + 1, zy.ch - 1),
            x1 = Math.min(x0 + 1, zx.ch - 1);
          const fy = cy - y0,
            fx = cx - x0;
          const top = noise(zy.top + y0, zx.top + x0) * (1 - fx) + noise(zy.top + y0, zx.top + x1) * fx;
          const bottom = noise(zy.top + y1, zx.top + x0) * (1 - fx) + noise(zy.top + y1, zx.top + x1) * fx;
          let v = top * (1 - fy) + bottom * fy;
          if (v < fr(p.threshold)) v = 0;
          layer[(b * h + i) * w + j] = clamp01(v);
        }
      }
      const turns = fr(-0.375 + 0.25 * rngUniform(s, id, STREAM.snowAngle, 0));
      const ca = fr(Math.cos(2 * Math.PI * turns)),
        sa = fr(Math.cos(2 * Math.PI * fr(turns - 0.25)));
      const offsets = kernel.map((_, k) => [Math.ceil(fr(fr(k * sa) - 0.5)), Math.ceil(fr(fr(k * ca) - 0.5))]);
      for (let i = 0; i < h; i++) {
        for (let j = 0; j < w; j++) {
          let acc = 0;
          kernel.forEach((kw, k) => {
            acc +=
              fr(kw) *
              layer[
                (b * h + borderIndex('clamp', i + offsets[k][0], h)) * w + borderIndex('clamp', j + offsets[k][1], w)
              ];
          });
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
