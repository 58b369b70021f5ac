// SI-Score-style synthetic data (docs/si-score.md; google-research/si-score, Djolonga et al.):
// segmented foreground objects pasted on uncluttered backgrounds, swept over one factor at a
// time (object size, location, rotation). SI-Score pastes real segmented photos; here the
// foregrounds are procedural classes (a shape, a colour family and a texture, with per-instance
// jitter) so a small model can learn them in minutes, and synth-files.ts's `loadCutouts` lets
// users pass real cut-outs in SI-Score's own folder layout instead.
//
// This module renders: everything is a pure function of its seed (the shared counter-based RNG
// of eval/rng.ts), runs on the CPU in the browser or Node, and needs no canvas. Compositing
// (PIL-style resize, rotate and paste) is synth-paste.ts; writing and reading image folders
// (Node: node:fs, sharp) is synth-files.ts, which the page never imports.
//
// Images are row-major 8-bit: RgbImage 3 bytes a pixel, RgbaImage 4 bytes a pixel with straight
// (not premultiplied) alpha, as PNG stores it.

import type { RgbImage } from '../models/preprocess.js';
import { rngU32 } from './rng.js';
import { type RgbaImage, fitBackground, paste, pasteGeometry } from './synth-paste.js';

export type { RgbImage, RgbaImage };

// ---------------------------------------------------------------------------------------------
// Randomness: every draw is rngU32(seed, id, stream, counter), so adding a class or an instance
// never shifts the numbers another one sees.

const STREAM = {
  object: 11,
  background: 12,
  sweepObject: 13,
  sweepBackground: 14,
  folder: 15,
  place: 16,
  cutoutBackground: 17,
} as const;

/** A sequential uniform stream in [lo, hi). */
function uniforms(seed: number, id: number, stream: number): (lo?: number, hi?: number) => number {
  let i = 0;
  return (lo = 0, hi = 1) => lo + (hi - lo) * (rngU32(seed >>> 0, id >>> 0, stream, i++) / 4294967296);
}

/** FNV-1a of a class name: the RNG id of a class, stable when the class list is reordered. */
function nameId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const clamp = (x: number, lo = 0, hi = 1) => (x < lo ? lo : Math.min(x, hi));

/** HSL (hue in degrees, s and l in [0,1]) to RGB in [0,255]. */
function hsl(h: number, s: number, l: number): [number, number, number] {
  h = ((h % 360) + 360) % 360;
  const c = (1 - Math.abs(2 * l - 1)) * s,
    x = c * (1 - Math.abs(((h / 60) % 2) - 1)),
    m = l - c / 2;
  const [r, g, b] =
    h < 60
      ? [c, x, 0]
      : h < 120
        ? [x, c, 0]
        : h < 180
          ? [0, c, x]
          : h < 240
            ? [0, x, c]
            : h < 300
              ? [x, 0, c]
              : [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}

// ---------------------------------------------------------------------------------------------
// Classes as data. A shape is a membership test in canonical coordinates (x right, y up, the
// shape inside [-1,1]²), built from a per-instance jitter j ∈ [0,1) that changes proportions.

export type Inside = (x: number, y: number) => boolean;
export type ShapeFn = (j: number) => Inside;
export type Texture = 'solid' | 'stripes' | 'checks' | 'dots' | 'gradient';

export interface SynthClass {
  name: string;
  shape: ShapeFn;
  /** Base colour (hue in degrees, saturation, lightness) and the texture's second colour as offsets. */
  palette: { hue: number; sat: number; light: number; hue2: number; light2: number };
  texture: Texture;
}

/** Even-odd point-in-polygon over a flat [x0,y0,x1,y1,…] vertex list. */
function polygon(v: number[]): Inside {
  return (x, y) => {
    let inside = false;
    for (let i = 0, k = v.length - 2; i < v.length; k = i, i += 2) {
      const xi = v[i],
        yi = v[i + 1],
        xk = v[k],
        yk = v[k + 1];
      if (yi > y !== yk > y && x < ((xk - xi) * (y - yi)) / (yk - yi) + xi) inside = !inside;
    }
    return inside;
  };
}

/** Vertices of a regular n-gon (r0 = r1) or an n-pointed star (alternating radii). */
function radial(n: number, r0: number, r1: number, start = Math.PI / 2): number[] {
  const v: number[] = [];
  const k = r0 === r1 ? n : 2 * n;
  for (let i = 0; i < k; i++) {
    const t = start + (2 * Math.PI * i) / k,
      r = i % 2 && r0 !== r1 ? r1 : r0;
    v.push(r * Math.cos(t), r * Math.sin(t));
  }
  return v;
}

const SHAPES: Record<string, ShapeFn> = {
  circle: () => (x, y) => x * x + y * y <= 0.9025,
  square: (j) => {
    const half = 0.9,
      rc = 0.05 + 0.2 * j; // rounded corners
    return (x, y) => {
      const qx = Math.max(Math.abs(x) - (half - rc), 0),
        qy = Math.max(Math.abs(y) - (half - rc), 0);
      return Math.abs(x) <= half && Math.abs(y) <= half && qx * qx + qy * qy <= rc * rc;
    };
  },
  triangle: () => polygon(radial(3, 1, 1)),
  star: (j) => polygon(radial(5, 1, 0.38 + 0.14 * j)),
  ring: (j) => {
    const inner = 0.42 + 0.18 * j;
    return (x, y) => {
      const r = x * x + y * y;
      return r <= 0.9025 && r >= inner * inner;
    };
  },
  cross: (j) => {
    const t = 0.24 + 0.1 * j;
    return (x, y) => (Math.abs(x) <= t && Math.abs(y) <= 0.95) || (Math.abs(y) <= t && Math.abs(x) <= 0.95);
  },
  heart: (j) => {
    const sx = 1.15 + 0.2 * j;
    return (x, y) => {
      const X = x * sx,
        Y = y * 1.15 + 0.12,
        q = X * X + Y * Y - 1;
      return q * q * q - X * X * Y * Y * Y <= 0;
    };
  },
  crescent: (j) => {
    const dx = 0.3 + 0.2 * j;
    return (x, y) => x * x + y * y <= 0.81 && (x - dx) * (x - dx) + (y - 0.15) * (y - 0.15) > 0.5625;
  },
  hexagon: () => polygon(radial(6, 0.95, 0.95, 0)),
  arrow: (j) => {
    const s = 0.16 + 0.1 * j;
    return polygon([-0.95, -s, 0.1, -s, 0.1, -0.6, 0.95, 0, 0.1, 0.6, 0.1, s, -0.95, s]);
  },
  diamond: (j) => {
    const w = 0.5 + 0.2 * j;
    return (x, y) => Math.abs(x) / w + Math.abs(y) / 0.95 <= 1;
  },
  pentagon: () => polygon(radial(5, 0.95, 0.95)),
  teardrop: (j) => {
    const top = 0.8 + 0.15 * j;
    return (x, y) =>
      x * x + (y + 0.3) * (y + 0.3) <= 0.36 ||
      (y >= -0.3 && y <= top && Math.abs(x) <= (0.6 * (top - y)) / (top + 0.3));
  },
  gear: (j) => {
    const hole = 0.18 + 0.12 * j;
    return (x, y) => {
      const r = Math.hypot(x, y);
      return r >= hole && r <= (Math.cos(8 * Math.atan2(y, x)) > 0 ? 0.95 : 0.74);
    };
  },
  lshape: (j) => {
    const t = 0.5 + 0.2 * j;
    return (x, y) => x >= -0.8 && y >= -0.9 && ((x <= -0.8 + t && y <= 0.9) || (x <= 0.8 && y <= -0.9 + t));
  },
  semicircle: () => (x, y) => y >= -0.45 && x * x + (y + 0.45) * (y + 0.45) <= 0.9025,
  flower: (j) => {
    const depth = 0.35 + 0.12 * j;
    return (x, y) => Math.hypot(x, y) <= 0.95 - depth + depth * Math.abs(Math.cos(2.5 * Math.atan2(y, x)));
  },
  bowtie: (j) => {
    const w = 0.08 + 0.1 * j;
    return polygon([-0.95, -0.7, -0.95, 0.7, 0, w, 0.95, 0.7, 0.95, -0.7, 0, -w]);
  },
};

function cls(
  name: string,
  texture: Texture,
  hue: number,
  sat: number,
  light: number,
  hue2: number,
  light2: number,
): SynthClass {
  return { name, shape: SHAPES[name], palette: { hue, sat, light, hue2, light2 }, texture };
}

/**
 * The procedural classes. The first SYNTH_TRAIN_COUNT (10) are the classes the demo model is
 * trained on; the rest (8) are held out for few-shot transfer. Labels are indices into this list.
 * Colour families repeat loosely across the split (red/coral, blue/navy, yellow/gold, …) so that
 * colour alone does not name a class.
 */
export const SYNTH_CLASSES: readonly SynthClass[] = [
  // train
  cls('circle', 'solid', 0, 0.75, 0.5, 0, -0.2),
  cls('square', 'checks', 215, 0.7, 0.5, 20, 0.28),
  cls('triangle', 'stripes', 125, 0.6, 0.42, -20, 0.3),
  cls('star', 'solid', 50, 0.9, 0.55, 0, -0.2),
  cls('ring', 'stripes', 275, 0.55, 0.5, 40, 0.3),
  cls('cross', 'checks', 28, 0.85, 0.52, 15, -0.25),
  cls('heart', 'gradient', 335, 0.7, 0.55, -25, -0.25),
  cls('crescent', 'dots', 180, 0.6, 0.4, 0, 0.35),
  cls('hexagon', 'dots', 30, 0.45, 0.35, 10, 0.3),
  cls('arrow', 'gradient', 90, 0.65, 0.45, 40, 0.2),
  // held out
  cls('diamond', 'stripes', 195, 0.75, 0.45, 0, 0.3),
  cls('pentagon', 'solid', 300, 0.6, 0.45, 0, -0.2),
  cls('teardrop', 'gradient', 235, 0.6, 0.3, -15, 0.3),
  cls('gear', 'checks', 65, 0.5, 0.38, 0, 0.3),
  cls('lshape', 'dots', 10, 0.7, 0.62, 0, -0.3),
  cls('semicircle', 'checks', 255, 0.5, 0.55, -30, -0.25),
  cls('flower', 'gradient', 42, 0.85, 0.5, -30, 0.2),
  cls('bowtie', 'stripes', 150, 0.55, 0.5, 30, -0.25),
];

export const SYNTH_TRAIN_COUNT = 10;
/** Indices of the classes the demo model learns. */
export const SYNTH_TRAIN_CLASSES: readonly number[] = SYNTH_CLASSES.slice(0, SYNTH_TRAIN_COUNT).map((_, i) => i);
/** Indices of the held-out classes, for few-shot transfer. */
export const SYNTH_HELDOUT_CLASSES: readonly number[] = SYNTH_CLASSES.slice(SYNTH_TRAIN_COUNT).map(
  (_, i) => i + SYNTH_TRAIN_COUNT,
);

/** A class by index into SYNTH_CLASSES (range-checked), or the class itself. */
export function classOf(c: number | SynthClass): SynthClass {
  if (typeof c !== 'number') return c;
  if (!Number.isInteger(c) || c < 0 || c >= SYNTH_CLASSES.length)
    throw new RangeError(`synthetic class ${c} not in 0..${SYNTH_CLASSES.length - 1}`);
  return SYNTH_CLASSES[c];
}

/** Texture mix t ∈ [0,1] between the two colours at canonical (x, y), already rotated by the texture angle. */
function texture(kind: Texture, x: number, y: number, phase: number, freq: number): number {
  const soft = (v: number) => clamp(0.5 + 2.5 * v); // soft edges: the texture itself is antialiased
  switch (kind) {
    case 'solid':
      return 0;
    case 'stripes':
      return soft(Math.sin(2 * Math.PI * (x * freq + phase)));
    case 'checks':
      return soft(Math.sin(Math.PI * (x * freq + phase)) * Math.sin(Math.PI * (y * freq + phase)) * 2);
    case 'dots': {
      const f = freq * 1.2,
        u = x * f + phase,
        v = y * f + phase;
      const d = Math.hypot(u - Math.round(u), v - Math.round(v));
      return soft((0.3 - d) * 4);
    }
    case 'gradient':
      return clamp((x + 1) / 2);
  }
}

const SUPERSAMPLE = 4; // 4×4 coverage samples a pixel: 17 alpha levels on the silhouette

/**
 * One instance of a class as an RGBA cut-out cropped to the shape's tight bounding box, its longer
 * side close to `size`. Per instance (from the seed): hue ±12°, saturation and lightness jitter,
 * aspect ×e^±0.18, tilt ±10°, the shape's proportions, texture phase, scale and angle.
 */
export function renderObject(c: number | SynthClass, seed: number, size: number): RgbaImage {
  const k = classOf(c);
  const u = uniforms(seed, nameId(k.name), STREAM.object);
  const aspect = Math.exp(u(-0.18, 0.18)),
    tilt = (u(-10, 10) * Math.PI) / 180,
    inside = k.shape(u());
  const p = k.palette;
  const hue = p.hue + u(-12, 12),
    sat = clamp(p.sat + u(-0.08, 0.08)),
    light = clamp(p.light + u(-0.07, 0.07), 0.15, 0.85);
  const colA = hsl(hue, sat, light),
    colB = hsl(hue + p.hue2, sat, clamp(light + p.light2, 0.05, 0.95));
  const phase = u(),
    freq = 2.2 * Math.exp(u(-0.25, 0.25)),
    tAngle = (u(-25, 25) * Math.PI) / 180;
  const sa = Math.sqrt(aspect),
    ct = Math.cos(tilt),
    st = Math.sin(tilt);
  // World (X right, Y up) → canonical: undo the tilt, then the aspect stretch.
  const toCanon = (X: number, Y: number): [number, number] => [(ct * X + st * Y) / sa, (-st * X + ct * Y) * sa];

  // Coarse pass: the shape's world bounding box, so the fine raster spends its pixels on the shape.
  const G = 96;
  let x0 = Infinity,
    x1 = -Infinity,
    y0 = Infinity,
    y1 = -Infinity;
  for (let i = 0; i <= G; i++)
    for (let jj = 0; jj <= G; jj++) {
      const x = -1 + (2 * i) / G,
        y = -1 + (2 * jj) / G;
      if (!inside(x, y)) continue;
      const X = ct * x * sa - st * (y / sa),
        Y = st * x * sa + ct * (y / sa);
      x0 = Math.min(x0, X);
      x1 = Math.max(x1, X);
      y0 = Math.min(y0, Y);
      y1 = Math.max(y1, Y);
    }
  const pad = (4 / G) * Math.max(sa, 1 / sa);
  x0 -= pad;
  x1 += pad;
  y0 -= pad;
  y1 += pad;
  const ppu = size / Math.max(x1 - x0, y1 - y0); // pixels per world unit
  const W = Math.max(1, Math.ceil((x1 - x0) * ppu)),
    H = Math.max(1, Math.ceil((y1 - y0) * ppu));

  // Pixel centres first (with a 1-pixel border); only pixels whose 3×3 neighbourhood disagrees
  // are on the silhouette and get supersampled: ~10× fewer shape tests at 224 pixels.
  const centre = new Uint8Array((W + 2) * (H + 2));
  for (let py = -1; py <= H; py++)
    for (let px = -1; px <= W; px++) {
      const [x, y] = toCanon(x0 + (px + 0.5) / ppu, y1 - (py + 0.5) / ppu);
      centre[(py + 1) * (W + 2) + px + 1] = inside(x, y) ? 1 : 0;
    }
  const out = new Uint8Array(W * H * 4);
  const ca = Math.cos(tAngle),
    sn = Math.sin(tAngle),
    full = SUPERSAMPLE * SUPERSAMPLE;
  for (let py = 0; py < H; py++)
    for (let px = 0; px < W; px++) {
      let n = 0;
      for (let dy = 0; dy < 3; dy++) for (let dx = 0; dx < 3; dx++) n += centre[(py + dy) * (W + 2) + px + dx];
      let hits = n === 9 ? full : 0;
      if (n > 0 && n < 9)
        for (let sy = 0; sy < SUPERSAMPLE; sy++)
          for (let sx = 0; sx < SUPERSAMPLE; sx++) {
            const [x, y] = toCanon(
              x0 + (px + (sx + 0.5) / SUPERSAMPLE) / ppu,
              y1 - (py + (sy + 0.5) / SUPERSAMPLE) / ppu,
            );
            if (inside(x, y)) hits++;
          }
      if (hits === 0) continue;
      const [x, y] = toCanon(x0 + (px + 0.5) / ppu, y1 - (py + 0.5) / ppu);
      const t = texture(k.texture, ca * x + sn * y, -sn * x + ca * y, phase, freq);
      const shade = 1 + 0.12 * (-0.5 * x + 0.5 * y); // light from the upper left, turning with the object
      const o = (py * W + px) * 4;
      for (let ch = 0; ch < 3; ch++)
        out[o + ch] = Math.round(clamp(((1 - t) * colA[ch] + t * colB[ch]) * shade, 0, 255));
      out[o + 3] = Math.round((255 * hits) / full);
    }
  return trimAlpha({ width: W, height: H, data: out });
}

/** Crop to the bounding box of alpha > 0 (SI-Score's area is the cut-out's box area). */
export function trimAlpha(img: RgbaImage): RgbaImage {
  const { width: W, height: H, data } = img;
  let x0 = W,
    x1 = -1,
    y0 = H,
    y1 = -1;
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++)
      if (data[(y * W + x) * 4 + 3] > 0) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
  if (x1 < 0) throw new Error('cut-out is fully transparent');
  if (x0 === 0 && y0 === 0 && x1 === W - 1 && y1 === H - 1) return img;
  const w = x1 - x0 + 1,
    h = y1 - y0 + 1,
    out = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++) out.set(data.subarray(((y + y0) * W + x0) * 4, ((y + y0) * W + x1 + 1) * 4), y * w * 4);
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------------------------------------
// Backgrounds: uncluttered, as SI-Score's (sky, sea, sand, grass photos): a soft two-colour
// gradient (linear or radial) in one low-saturation colour family, modulated by low-frequency
// value noise.

const BACKGROUND_FAMILIES = [
  { name: 'sky', hue: 205, sat: 0.4, light: 0.74 },
  { name: 'sea', hue: 190, sat: 0.35, light: 0.5 },
  { name: 'sand', hue: 38, sat: 0.35, light: 0.76 },
  { name: 'meadow', hue: 100, sat: 0.25, light: 0.62 },
  { name: 'stone', hue: 30, sat: 0.06, light: 0.62 },
  { name: 'dusk', hue: 340, sat: 0.22, light: 0.74 },
  { name: 'slate', hue: 220, sat: 0.12, light: 0.42 },
] as const;

export function renderBackground(seed: number, w: number, h: number): RgbImage {
  const u = uniforms(seed, 0, STREAM.background);
  const fam = BACKGROUND_FAMILIES[Math.floor(u() * BACKGROUND_FAMILIES.length)];
  const l1 = clamp(fam.light + u(-0.08, 0.08)),
    l2 = clamp(l1 + (u() < 0.5 ? -1 : 1) * u(0.08, 0.2), 0.1, 0.92);
  const c1 = hsl(fam.hue + u(-15, 15), clamp(fam.sat + u(-0.05, 0.05)), l1);
  const c2 = hsl(fam.hue + u(-25, 25), clamp(fam.sat + u(-0.05, 0.05)), l2);
  const radialMode = u() < 0.35,
    angle = u(0, 2 * Math.PI),
    rcx = u(),
    rcy = u();
  const g = 2 + Math.floor(u() * 3),
    amp = u(0.03, 0.08);
  const grid = Array.from({ length: (g + 1) * (g + 1) }, () => u(-1, 1));
  const smooth = (t: number) => t * t * (3 - 2 * t);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const fx = (x + 0.5) / w,
        fy = (y + 0.5) / h;
      const t = smooth(
        clamp(
          radialMode
            ? Math.hypot(fx - rcx, fy - rcy) / 1.1
            : (fx - 0.5) * Math.cos(angle) + (fy - 0.5) * Math.sin(angle) + 0.5,
        ),
      );
      const gx = fx * g,
        gy = fy * g,
        ix = Math.min(g - 1, Math.floor(gx)),
        iy = Math.min(g - 1, Math.floor(gy));
      const tx = smooth(gx - ix),
        ty = smooth(gy - iy),
        at = (i: number, j: number) => grid[j * (g + 1) + i];
      const n =
        (1 - ty) * ((1 - tx) * at(ix, iy) + tx * at(ix + 1, iy)) +
        ty * ((1 - tx) * at(ix, iy + 1) + tx * at(ix + 1, iy + 1));
      const o = (y * w + x) * 3;
      for (let ch = 0; ch < 3; ch++)
        out[o + ch] = Math.round(clamp(((1 - t) * c1[ch] + t * c2[ch]) * (1 + amp * n), 0, 255));
    }
  return { width: w, height: h, data: out };
}

// ---------------------------------------------------------------------------------------------
// Sweeps (docs/si-score.md). Per class and instance:
//   size      100 images: area 0.01 … 1.00 step 0.01, centred, no rotation           quick: 10 (0.10 … 1.00 step 0.10)
//   location  441 images: area 0.20, centre on a 21×21 grid, step 0.05               quick: 25 (5×5, step 0.25)
//   rotation   72 images: areas {0.2, 0.5, 0.8, 1.0} × angles 1°, 21°, …, 341°       quick: 12 ({0.2, 0.8} × 1°, 61°, …, 301°)
// Nothing is filtered out, so counts are exact; every item carries SI-Score's insideFrac so a
// caller can drop images as SI-Score does (min_pct_inside_image 0.95 for size and rotation).
//
// Location grid: SI-Score puts the centre on the 21×21 grid over the whole [0,1]² and drops
// images with too little of the object inside (the paper reports thresholds 0, 0.5 and 0.75).
// Our default, location: 'inside', puts the grid over the range of centres that keeps the object's
// box inside the image (u ∈ [0,1] ↦ cx = hx + u·(1 − 2hx), hx the half-width as a fraction), so
// the sweep measures position, not occlusion; the factor string is the grid value u,v either
// way. location: 'full' is SI-Score's grid as is (centre = u,v; objects clipped at the border).

export type SweepName = 'size' | 'location' | 'rotation';
export const SWEEPS: readonly SweepName[] = ['size', 'location', 'rotation'];

export interface SweepFactor {
  /** The factor value as a string: '0.37' (area), '0.25,0.50' (location grid), '0.50@21' (area@angle). */
  factor: string;
  area: number;
  /** Location grid value in [0,1]² (0.5, 0.5 = centred). */
  u: number;
  v: number;
  angleDeg: number;
}

const f2 = (x: number) => x.toFixed(2);

export function sweepFactors(sweep: SweepName, quick = false): SweepFactor[] {
  const out: SweepFactor[] = [];
  if (sweep === 'size') {
    for (let k = quick ? 10 : 1; k <= 100; k += quick ? 10 : 1)
      out.push({ factor: f2(k / 100), area: k / 100, u: 0.5, v: 0.5, angleDeg: 0 });
  } else if (sweep === 'location') {
    const step = quick ? 5 : 1;
    for (let j = 0; j <= 20; j += step)
      for (let i = 0; i <= 20; i += step)
        out.push({ factor: `${f2(i / 20)},${f2(j / 20)}`, area: 0.2, u: i / 20, v: j / 20, angleDeg: 0 });
  } else {
    const areas = quick ? [0.2, 0.8] : [0.2, 0.5, 0.8, 1.0];
    for (const area of areas)
      for (let k = 0; k < 18; k += quick ? 3 : 1)
        out.push({ factor: `${f2(area)}@${1 + 20 * k}`, area, u: 0.5, v: 0.5, angleDeg: 1 + 20 * k });
  }
  return out;
}

/** Where foregrounds and backgrounds come from: procedural by default, or user cut-outs (loadCutouts). */
export interface SynthSource {
  /** Instance i of class cls (i may exceed the number of instances: wrap it). */
  objects(cls: number, i: number): RgbaImage;
  /** Background i, any size (i is a 32-bit index: wrap it). */
  background(i: number): RgbImage;
  classNames: string[];
}

/** The procedural classes and backgrounds as a source; `size` is the cut-outs' longer side. */
export function proceduralSource(seed: number, size: number): SynthSource {
  return {
    objects: (c, i) => renderObject(c, rngU32(seed >>> 0, c, STREAM.sweepObject, i), size),
    background: (i) => renderBackground(rngU32(seed >>> 0, i >>> 0, STREAM.cutoutBackground, 0), size, size),
    classNames: SYNTH_CLASSES.map((c) => c.name),
  };
}

export interface SweepOptions {
  /** Image side (default 224). */
  size?: number;
  /** Class indices (into SYNTH_CLASSES, or into source.classNames). */
  classes: number[];
  instancesPerClass: number;
  seed: number;
  sweeps?: SweepName[];
  quick?: boolean;
  /** 'inside' (default): the location grid spans the centres that keep the object inside; 'full': SI-Score's [0,1]². */
  location?: 'inside' | 'full';
  source?: SynthSource;
}

export interface SweepItem {
  sweep: SweepName;
  factor: string;
  /** The class index (into SYNTH_CLASSES or source.classNames). */
  label: number;
  className: string;
  instance: number;
  image: RgbImage;
  /** Stable and unique within a run: `${sweep}-${className}-i${instance}-${factor}`, file-name safe. */
  id: string;
  area: number;
  cx: number;
  cy: number;
  angleDeg: number;
  insideFrac: number;
}

/** Images siScoreSweeps yields: classes × instances × Σ factors of the chosen sweeps. */
export function siScoreSweepCount(o: Pick<SweepOptions, 'classes' | 'instancesPerClass' | 'sweeps' | 'quick'>): number {
  const per = (o.sweeps ?? SWEEPS).reduce((n, s) => n + sweepFactors(s, o.quick).length, 0);
  return o.classes.length * o.instancesPerClass * per;
}

/** Where a grid value u puts the centre, for the 'inside' location mode (half = half the box, as a fraction). */
const insideCentre = (u: number, half: number) => (half >= 0.5 ? 0.5 : half + u * (1 - 2 * half));

export function* siScoreSweeps(o: SweepOptions): Generator<SweepItem> {
  const size = o.size ?? 224,
    src = o.source ?? proceduralSource(o.seed, size);
  for (const c of o.classes)
    if (!Number.isInteger(c) || c < 0 || c >= src.classNames.length)
      throw new RangeError(`class ${c} not in 0..${src.classNames.length - 1}`);
  for (const sweep of o.sweeps ?? SWEEPS) {
    const factors = sweepFactors(sweep, o.quick);
    for (const c of o.classes)
      for (let i = 0; i < o.instancesPerClass; i++) {
        const obj = src.objects(c, i);
        // One background per (class, instance), as SI-Score draws backgrounds per foreground instance.
        const bg = fitBackground(src.background(rngU32(o.seed >>> 0, c, STREAM.sweepBackground, i)), size);
        const name = src.classNames[c];
        for (const f of factors) {
          let cx = f.u,
            cy = f.v;
          if (sweep === 'location' && (o.location ?? 'inside') === 'inside') {
            const g = pasteGeometry(size, size, obj.width, obj.height, {
              area: f.area,
              cx: 0.5,
              cy: 0.5,
              angleDeg: f.angleDeg,
            });
            cx = insideCentre(f.u, g.boxW / 2 / size);
            cy = insideCentre(f.v, g.boxH / 2 / size);
          }
          const p = { area: f.area, cx, cy, angleDeg: f.angleDeg };
          yield {
            sweep,
            factor: f.factor,
            label: c,
            className: name,
            instance: i,
            image: paste(bg, obj, p),
            id: `${sweep}-${name}-i${i}-${f.factor.replace(',', '_').replace('@', 'r')}`,
            ...p,
            insideFrac: pasteGeometry(size, size, obj.width, obj.height, p).insideFrac,
          };
        }
      }
  }
}

// ---------------------------------------------------------------------------------------------
// Classification sets (written to disk by synth-files.ts writeSynthImageFolder).

export interface ImageFolderOptions {
  /** Class indices into SYNTH_CLASSES (default: the train classes). */
  classes?: number[];
  perClass: number;
  /** Image side. */
  size: number;
  seed: number;
  split?: 'train' | 'val' | 'test';
  /** Object box area range (default [0.2, 0.7]). */
  areaRange?: [number, number];
}

const SPLITS = { train: 0, val: 1, test: 2 } as const;

/**
 * Image `k` of class `c` in a split: one instance at a random area, angle and position (wholly
 * inside) on a random background. Splits draw disjoint seeds, so val/test never repeat train.
 */
export function renderSynthImage(c: number, k: number, o: Omit<ImageFolderOptions, 'classes' | 'perClass'>): RgbImage {
  const split = o.split ?? 'train',
    [a0, a1] = o.areaRange ?? [0.2, 0.7];
  const s = rngU32(o.seed >>> 0, c, STREAM.folder + 100 * SPLITS[split], k);
  const u = uniforms(s, 0, STREAM.place);
  const obj = renderObject(c, s, o.size),
    bg = renderBackground(rngU32(s, 1, STREAM.place, 0), o.size, o.size);
  const area = u(a0, a1),
    angleDeg = u(0, 360);
  const g = pasteGeometry(o.size, o.size, obj.width, obj.height, { area, cx: 0.5, cy: 0.5, angleDeg });
  const cx = insideCentre(u(), g.boxW / 2 / o.size),
    cy = insideCentre(u(), g.boxH / 2 / o.size);
  return paste(bg, obj, { area, cx, cy, angleDeg });
}
