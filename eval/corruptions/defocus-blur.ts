// ImageNet-C defocus_blur, ported from hendrycks/robustness `imagenet_c/corruptions.py`
// (parameters: docs/imagenet-c.md): cv2.filter2D with disk(radius, alias_blur).
//
// The kernel: the aliased disk blurred by cv2.GaussianBlur (3×3 or 5×5, BORDER_REFLECT_101),
// computed here in f64 and baked into the WGSL as a tap list; the image is correlated with it
// under BORDER_REFLECT_101. Layout: x, y [N,H,W,3] NHWC in [0,1]. Mapping: one invocation per
// output pixel (all channels), through common.ts's pixelMain; no workgroup memory.
//
// Deviations: taps below 1e-9 of the peak are dropped (their total weight < 1e-6); otherwise
// exact, quirks included: at radius 8 and 10 the disk fills its array and the reflecting alias
// blur folds mass back in, so those kernels sum to 1.013 and 1.011 in the reference and here.

import { type KernelFamily, input, makeDispatch, output } from '../../kernels/kernel.js';
import { type PixelGrid, BORDER_WGSL, borderIndex, constArray, pixelGrid, pixelMain, toImage } from './common.js';
import type { CorruptionDef } from './corruption.js';

export interface DefocusParams {
  radius: number;
  alias: number;
}

/** cv2.getGaussianKernel(ksize, σ) for σ > 0, as float32 (GaussianBlur's kernel type for float images). */
function cvGaussianKernel(ksize: number, sigma: number): number[] {
  const g: number[] = [];
  let sum = 0;
  for (let i = 0; i < ksize; i++) {
    const x = i - (ksize - 1) / 2;
    const v = Math.exp((-0.5 / (sigma * sigma)) * x * x);
    g.push(v);
    sum += v;
  }
  return g.map((v) => Math.fround(v / sum));
}

/** The reference's disk(radius, alias_blur): a 2-D kernel of side 2L+1, row-major. */
export function diskKernel(radius: number, alias: number): { size: number; k: Float64Array } {
  const L = Math.max(radius, 8);
  const ksize = radius <= 8 ? 3 : 5;
  const size = 2 * L + 1;
  const disk = new Float64Array(size * size);
  let count = 0;
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      const inside = (i - L) ** 2 + (j - L) ** 2 <= radius * radius;
      disk[i * size + j] = inside ? 1 : 0;
      count += inside ? 1 : 0;
    }
  for (let i = 0; i < disk.length; i++) disk[i] = Math.fround(disk[i] / count);
  // cv2.GaussianBlur: separable, rows then columns, BORDER_REFLECT_101 at the kernel array's edges.
  const g = cvGaussianKernel(ksize, alias);
  const h = (ksize - 1) / 2;
  const tmp = new Float64Array(size * size);
  const k = new Float64Array(size * size);
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      let s = 0;
      for (let a = 0; a < ksize; a++) s += g[a] * disk[i * size + borderIndex('reflect101', j + a - h, size)];
      tmp[i * size + j] = Math.fround(s);
    }
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      let s = 0;
      for (let a = 0; a < ksize; a++) s += g[a] * tmp[borderIndex('reflect101', i + a - h, size) * size + j];
      k[i * size + j] = Math.fround(s);
    }
  return { size, k };
}

/** The taps worth reading: offsets from the centre and weights (f32), negligible ones dropped. */
export function defocusTaps(p: DefocusParams): { dy: number[]; dx: number[]; wt: number[] } {
  const { size, k } = diskKernel(p.radius, p.alias);
  const L = (size - 1) / 2;
  const peak = Math.max(...k);
  const t = { dy: [] as number[], dx: [] as number[], wt: [] as number[] };
  for (let i = 0; i < size; i++)
    for (let j = 0; j < size; j++) {
      if (k[i * size + j] < 1e-9 * peak) continue;
      t.dy.push(i - L);
      t.dx.push(j - L);
      t.wt.push(k[i * size + j]);
    }
  return t;
}

interface DefocusConfig extends PixelGrid {
  dy: readonly number[];
  dx: readonly number[];
  wt: readonly number[];
}

const defocusFamily: KernelFamily<DefocusConfig> = {
  name: 'corrupt-defocus',
  wgsl: (c) => `
${BORDER_WGSL}
${constArray('TY', 'i32', c.dy)}
${constArray('TX', 'i32', c.dx)}
${constArray('TW', 'f32', c.wt)}
@group(0) @binding(0) var<storage, read> x: array<f32>;        // input  [N,H,W,3]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // output [N,H,W,3]
${pixelMain(
  c,
  `
  var acc = vec3<f32>(0.0);
  for (var k = 0; k < ${c.wt.length}; k++) {
    let sy = b_reflect101(yy + TY[k], ${c.h});
    let sx = b_reflect101(xx + TX[k], ${c.w});
    let o = ((b * ${c.h}u + u32(sy)) * ${c.w}u + u32(sx)) * 3u;
    acc += TW[k] * vec3<f32>(x[o], x[o + 1u], x[o + 2u]);
  }
  acc = clamp(acc, vec3<f32>(0.0), vec3<f32>(1.0));
  y[p * 3u] = acc.x; y[p * 3u + 1u] = acc.y; y[p * 3u + 2u] = acc.z;`,
)}`,
};

export const defocusBlur: CorruptionDef<DefocusParams> = {
  name: 'defocus_blur',
  params: [
    { radius: 3, alias: 0.1 },
    { radius: 4, alias: 0.5 },
    { radius: 6, alias: 0.5 },
    { radius: 8, alias: 0.5 },
    { radius: 10, alias: 0.5 },
  ],
  lower(p, _seed, shape, ctx) {
    const { g, groups } = pixelGrid(shape, ctx);
    const t = defocusTaps(p);
    const px = g.n * g.h * g.w;
    return {
      dispatches: [
        makeDispatch(defocusFamily, { ...g, ...t }, groups, [input(0), output(0)], {
          flops: 6 * px * t.wt.length,
          bytes: 24 * px,
        }),
      ],
    };
  },
  ref(p, _seed, x) {
    const [n, h, w] = x.shape;
    const t = defocusTaps(p);
    const out = new Float64Array(x.data.length);
    for (let b = 0; b < n; b++)
      for (let yy = 0; yy < h; yy++)
        for (let xx = 0; xx < w; xx++) {
          const o = ((b * h + yy) * w + xx) * 3;
          for (let k = 0; k < t.wt.length; k++) {
            const i =
              ((b * h + borderIndex('reflect101', yy + t.dy[k], h)) * w + borderIndex('reflect101', xx + t.dx[k], w)) *
              3;
            for (let c = 0; c < 3; c++) out[o + c] += t.wt[k] * x.data[i + c];
          }
        }
    return toImage(x.shape, out);
  },
};
