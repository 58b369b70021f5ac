// Compositing for the synthetic data (synth.ts), as SI-Score builds its images with PIL: an
// antialiased bicubic resize (PIL's convolution resize, a = −0.5), a rotation by angleDeg on an
// expanded canvas (bicubic on premultiplied alpha, PIL's rotate(expand=True)) and an alpha paste
// (paste(mask=fg)), on the CPU and without a canvas, in the browser or Node.

import type { RgbImage } from '../models/preprocess.js';

/** An 8-bit RGBA image, row-major, straight alpha. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const clamp = (x: number, lo = 0, hi = 1) => (x < lo ? lo : Math.min(x, hi));

// ---------------------------------------------------------------------------------------------
// Resampling: PIL's antialiased convolution resize (bicubic a = −0.5, support widened by the
// downscale factor, weights renormalised at the borders), on float images with c channels.

function keys(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function resizeAxisCoeffs(inSize: number, outSize: number): { start: number; w: Float64Array }[] {
  const scale = inSize / outSize,
    fs = Math.max(scale, 1),
    support = 2 * fs;
  const out: { start: number; w: Float64Array }[] = [];
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const start = Math.max(0, Math.floor(centre - support + 0.5)),
      end = Math.min(inSize, Math.floor(centre + support + 0.5));
    const w = new Float64Array(Math.max(0, end - start));
    let sum = 0;
    for (let j = start; j < end; j++) sum += w[j - start] = keys((j - centre + 0.5) / fs);
    if (sum !== 0) for (let j = 0; j < w.length; j++) w[j] /= sum;
    out.push({ start, w });
  }
  return out;
}

/** Separable resize of a float image [h, w, c] to [oh, ow, c]. */
export function resizeFloat(src: Float32Array, w: number, h: number, c: number, ow: number, oh: number): Float32Array {
  const cx = resizeAxisCoeffs(w, ow),
    cy = resizeAxisCoeffs(h, oh);
  const tmp = new Float32Array(h * ow * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < ow; x++) {
      const { start, w: k } = cx[x];
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += k[j] * src[(y * w + start + j) * c + ch];
        tmp[(y * ow + x) * c + ch] = s;
      }
    }
  const out = new Float32Array(oh * ow * c);
  for (let y = 0; y < oh; y++) {
    const { start, w: k } = cy[y];
    for (let x = 0; x < ow; x++)
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += k[j] * tmp[((start + j) * ow + x) * c + ch];
        out[(y * ow + x) * c + ch] = s;
      }
  }
  return out;
}

/** A background of any size as size×size: centre square crop, then antialiased bicubic resize. */
export function fitBackground(bg: RgbImage, size: number): RgbImage {
  if (bg.width === size && bg.height === size) return bg;
  const s = Math.min(bg.width, bg.height),
    ox = Math.floor((bg.width - s) / 2),
    oy = Math.floor((bg.height - s) / 2);
  const sq = new Float32Array(s * s * 3);
  for (let y = 0; y < s; y++)
    for (let x = 0; x < s * 3; x++) sq[y * s * 3 + x] = bg.data[((y + oy) * bg.width + ox) * 3 + x];
  const r = resizeFloat(sq, s, s, 3, size, size);
  const data = new Uint8Array(r.length);
  for (let i = 0; i < r.length; i++) data[i] = Math.round(clamp(r[i], 0, 255));
  return { width: size, height: size, data };
}

// ---------------------------------------------------------------------------------------------
// Compositing, as SI-Score: scale the cut-out so its box area is `area` × image area, rotate it
// counter-clockwise by angleDeg on an expanded canvas, put the canvas centre at (cx, cy) ∈ [0,1]²
// of the image, alpha-blend and clip to the image.

export interface PasteOptions {
  /** Box area of the scaled (unrotated) object as a fraction of the image area. */
  area: number;
  /** Centre of the object in [0,1]² of the image (0,0 top left). */
  cx: number;
  cy: number;
  /** Counter-clockwise, degrees (PIL's rotate). */
  angleDeg?: number;
}

export interface PasteGeometry {
  /** Scaled object size in pixels (continuous; w·h = area · image area). */
  w: number;
  h: number;
  /** The rotated, expanded canvas in pixels. */
  boxW: number;
  boxH: number;
  /** Fraction of the expanded canvas inside the image (SI-Score's pct_inside_image). */
  insideFrac: number;
}

export function pasteGeometry(imgW: number, imgH: number, objW: number, objH: number, o: PasteOptions): PasteGeometry {
  if (!(o.area > 0)) throw new RangeError(`paste area ${o.area} must be > 0`);
  const s = Math.sqrt((o.area * imgW * imgH) / (objW * objH));
  const w = objW * s,
    h = objH * s,
    t = ((o.angleDeg ?? 0) * Math.PI) / 180;
  const c = Math.abs(Math.cos(t)),
    sn = Math.abs(Math.sin(t));
  const boxW = w * c + h * sn,
    boxH = w * sn + h * c;
  const X = o.cx * imgW,
    Y = o.cy * imgH;
  const ix = Math.max(0, Math.min(imgW, X + boxW / 2) - Math.max(0, X - boxW / 2));
  const iy = Math.max(0, Math.min(imgH, Y + boxH / 2) - Math.max(0, Y - boxH / 2));
  return { w, h, boxW, boxH, insideFrac: (ix * iy) / (boxW * boxH) };
}

/** Keys cubic weights for the 4 taps around a fractional offset t ∈ [0,1). */
function cubicWeights(t: number, w: Float64Array): void {
  w[0] = keys(t + 1);
  w[1] = keys(t);
  w[2] = keys(1 - t);
  w[3] = keys(2 - t);
}

export function paste(bg: RgbImage, obj: RgbaImage, o: PasteOptions): RgbImage {
  const { width: W, height: H } = bg;
  const g = pasteGeometry(W, H, obj.width, obj.height, o);
  // 1. Resize, premultiplied, with the antialiased filter (a plain bicubic lookup would alias
  //    when a 224-pixel cut-out lands on 1% of the image).
  const rw = Math.max(1, Math.round(g.w)),
    rh = Math.max(1, Math.round(g.h));
  const pm = new Float32Array(obj.width * obj.height * 4);
  for (let i = 0; i < pm.length; i += 4) {
    const a = obj.data[i + 3] / 255;
    pm[i] = obj.data[i] * a;
    pm[i + 1] = obj.data[i + 1] * a;
    pm[i + 2] = obj.data[i + 2] * a;
    pm[i + 3] = a;
  }
  const r = resizeFloat(pm, obj.width, obj.height, 4, rw, rh);
  // 2. Rotate and place in one inverse mapping: each image pixel looks up the resized object
  //    (bicubic, transparent outside it), so the canvas is implicitly expanded and the subpixel
  //    size w×h (not the rounded rw×rh) and centre are kept.
  const t = ((o.angleDeg ?? 0) * Math.PI) / 180,
    ct = Math.cos(t),
    st = Math.sin(t);
  const X = o.cx * W,
    Y = o.cy * H,
    kx = rw / g.w,
    ky = rh / g.h;
  const xa = Math.max(0, Math.floor(X - g.boxW / 2 - 2)),
    xb = Math.min(W, Math.ceil(X + g.boxW / 2 + 2));
  const ya = Math.max(0, Math.floor(Y - g.boxH / 2 - 2)),
    yb = Math.min(H, Math.ceil(Y + g.boxH / 2 + 2));
  const out = new Uint8Array(bg.data);
  const wx = new Float64Array(4),
    wy = new Float64Array(4),
    acc = new Float64Array(4);
  for (let y = ya; y < yb; y++)
    for (let x = xa; x < xb; x++) {
      const dx = x + 0.5 - X,
        dy = y + 0.5 - Y;
      // Inverse of a counter-clockwise turn on screen (y down).
      const sx = (dx * ct - dy * st) * kx + rw / 2 - 0.5,
        sy = (dx * st + dy * ct) * ky + rh / 2 - 0.5;
      if (sx < -2 || sy < -2 || sx > rw + 1 || sy > rh + 1) continue;
      const ix = Math.floor(sx),
        iy = Math.floor(sy);
      cubicWeights(sx - ix, wx);
      cubicWeights(sy - iy, wy);
      acc.fill(0);
      for (let j = 0; j < 4; j++) {
        const yy = iy - 1 + j;
        if (yy < 0 || yy >= rh) continue;
        for (let i = 0; i < 4; i++) {
          const xx = ix - 1 + i;
          if (xx < 0 || xx >= rw) continue;
          const wgt = wx[i] * wy[j],
            p = (yy * rw + xx) * 4;
          acc[0] += wgt * r[p];
          acc[1] += wgt * r[p + 1];
          acc[2] += wgt * r[p + 2];
          acc[3] += wgt * r[p + 3];
        }
      }
      const a = clamp(acc[3]);
      if (a <= 0) continue;
      const q = (y * W + x) * 3;
      for (let ch = 0; ch < 3; ch++)
        out[q + ch] = Math.round(clamp(out[q + ch] * (1 - a) + clamp(acc[ch], 0, 255 * a), 0, 255));
    }
  return { width: W, height: H, data: out };
}
