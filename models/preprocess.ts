// Evaluation preprocessing on the CPU, as torchvision/timm do it on PIL images: resize with
// PIL's antialiased filters (triangle for bilinear, Keys a = −0.5 for bicubic, support
// widened by the downscale factor), centre crop, scale to [0,1], normalise by mean/std.
// Output is NCHW [3, size, size], ready for a model's 'image' input.

import { centerCropOffset } from '../kernels/image.js';
import { type Preprocess, resizeTarget } from './types.js';

/** An 8-bit RGB image, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

type Filter = { support: number; f: (x: number) => number };

const FILTERS: Record<Preprocess['interpolation'], Filter> = {
  bilinear: { support: 1, f: (x) => (Math.abs(x) < 1 ? 1 - Math.abs(x) : 0) },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5; // PIL's bicubic
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
};

/** Per output index: first source index and normalised weights (PIL's precompute_coeffs). */
function coefficients(inSize: number, outSize: number, box0: number, box1: number, filter: Filter) {
  const scale = (box1 - box0) / outSize;
  const fscale = Math.max(scale, 1);
  const support = filter.support * fscale;
  const out: { start: number; w: Float64Array }[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = box0 + (i + 0.5) * scale;
    const start = Math.max(0, Math.floor(center - support + 0.5));
    const end = Math.min(inSize, Math.floor(center + support + 0.5));
    const w = new Float64Array(end - start);
    let sum = 0;
    for (let j = start; j < end; j++) sum += w[j - start] = filter.f((j - center + 0.5) / fscale);
    if (sum !== 0) for (let j = 0; j < w.length; j++) w[j] /= sum;
    out.push({ start, w });
  }
  return out;
}

/** Resize a float image [h, w, 3] (0..255) to [oh, ow, 3] over the source box, separably. */
function resize(
  src: Float32Array,
  w: number,
  h: number,
  ow: number,
  oh: number,
  box: [number, number, number, number],
  filter: Filter,
): Float32Array {
  const cx = coefficients(w, ow, box[0], box[2], filter);
  const tmp = new Float32Array(h * ow * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < ow; x++) {
      const { start, w: k } = cx[x];
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += k[j] * src[(y * w + start + j) * 3 + c];
        tmp[(y * ow + x) * 3 + c] = s;
      }
    }
  const cy = coefficients(h, oh, box[1], box[3], filter);
  const out = new Float32Array(oh * ow * 3);
  for (let y = 0; y < oh; y++) {
    const { start, w: k } = cy[y];
    for (let x = 0; x < ow; x++)
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += k[j] * tmp[((start + j) * ow + x) * 3 + c];
        // PIL rounds and clamps to 8 bits between the passes and at the end; we keep floats but clamp.
        out[(y * ow + x) * 3 + c] = Math.min(255, Math.max(0, s));
      }
  }
  return out;
}

/** Resize + crop + normalise one image to NCHW [3, p.size, p.size]. */
export function preprocessImage(img: RgbImage, p: Preprocess): Float32Array {
  const { width: w, height: h } = img;
  if (w < 1 || h < 1 || img.data.length !== w * h * 3)
    throw new Error(`image data of ${img.data.length} bytes does not match ${w}×${h} RGB`);
  const src = Float32Array.from(img.data);
  const filter = FILTERS[p.interpolation];
  let rw: number, rh: number;
  if (p.resizeMode === 'squash') {
    rw = rh = p.size;
  } else {
    const t = resizeTarget(p);
    // torchvision Resize(int): the short side becomes t, the long side int(t * long / short).
    if (w <= h) {
      rw = t;
      rh = Math.floor((t * h) / w);
    } else {
      rh = t;
      rw = Math.floor((t * w) / h);
    }
  }
  const resized = resize(src, w, h, rw, rh, [0, 0, w, h], filter);
  // torchvision CenterCrop: top = round((rh − size) / 2) with Python's round-half-to-even.
  const top = centerCropOffset(rh, p.size),
    left = centerCropOffset(rw, p.size);
  const s = p.size;
  const out = new Float32Array(3 * s * s);
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s; x++) {
      const sy = y + top,
        sx = x + left;
      const inside = sy >= 0 && sy < rh && sx >= 0 && sx < rw;
      for (let c = 0; c < 3; c++) {
        const v = inside ? resized[(sy * rw + sx) * 3 + c] / 255 : 0;
        out[c * s * s + y * s + x] = (v - p.mean[c]) / p.std[c];
      }
    }
  return out;
}
