// CPU-side textures for the weather corruptions (fog.ts, frost.ts), made once per
// (seed, size) and bound to the `corrupt` node as constants:
//
//   plasmaFractal  a port of hendrycks/robustness `plasma_fractal` (diamond-square, toroidal
//                  because the reference averages with np.roll), the heightmap behind fog. It is
//                  sequential by construction, so it stays on the CPU.
//   fogBank        K such fractals stacked [K,M,M]; each image picks one and a roll/flip of it.
//   frostTexture   a generated stand-in [S,S,3] for the reference's frost photographs, which we
//                  cannot ship: two octaves of cloudy value noise (the hazy ice film), dendrites
//                  grown from random seeds with ±60° side branches (hexagonal ice) drawn as thin
//                  soft lines plus a blurred glow, fine grain, tinted greyish blue.
//
// All randomness comes from the shared counter-based RNG (eval/rng.ts) under a reserved image id,
// so a texture is a pure function of its arguments, on every machine.

import { rngUniform } from '../rng.js';
import { clamp01 } from './common.js';

/** Image id reserved for texture randomness; real image ids are below 2^24. */
export const ASSET_ID = 0xffffffff;

/** RNG streams of the textures (each image-level corruption uses its own, in its file). */
const STREAM = { plasma: 0x706c0000, haze: 0x66720001, crystals: 0x66720002, grain: 0x66720003 } as const;

/** Sequential uniform draws in [0,1) from the counter-based RNG: one stream, index counting up. */
export class Draws {
  private i = 0;
  constructor(
    private readonly seed: number,
    private readonly stream: number,
  ) {}
  next(): number {
    return rngUniform(this.seed, ASSET_ID, this.stream, this.i++);
  }
}

// ---- plasma fractal (fog) --------------------------------------------------------------------

/**
 * `plasma_fractal(mapsize, wibbledecay)` of corruptions.py: diamond-square on a torus, starting
 * with wibble 100 and dividing it by `wibbleDecay` per octave; normalised to [0,1]. The
 * reference's quirk is kept: the noise added at each point is wibble · U(−wibble, wibble).
 * Draws are taken in numpy's row-major order, from `rand` instead of numpy's generator.
 */
export function plasmaFractal(mapsize: number, wibbleDecay: number, rand: () => number): Float32Array {
  if (mapsize < 2 || (mapsize & (mapsize - 1)) !== 0)
    throw new Error(`plasma fractal size must be a power of two, got ${mapsize}`);
  const M = mapsize;
  const a = new Float64Array(M * M); // a[0,0] = 0 as in the reference; every other point is written before it is read
  let step = M;
  let wibble = 100;
  const wibbled = (sum: number) => sum / 4 + wibble * (-wibble + 2 * wibble * rand());
  while (step >= 2) {
    const h = step / 2;
    const n = M / step;
    // Squares: each centre from its four corners (wrapping, as np.roll does).
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const r0 = i * step,
          r1 = ((i + 1) % n) * step,
          c0 = j * step,
          c1 = ((j + 1) % n) * step;
        a[(r0 + h) * M + c0 + h] = wibbled(a[r0 * M + c0] + a[r1 * M + c0] + a[r0 * M + c1] + a[r1 * M + c1]);
      }
    }
    // Diamonds: the midpoints of horizontal edges (centres above/below, corners left/right)…
    const centre = (i: number, j: number) => a[(((i + n) % n) * step + h) * M + ((j + n) % n) * step + h];
    const corner = (i: number, j: number) => a[(i % n) * step * M + (j % n) * step];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++)
        a[i * step * M + j * step + h] = wibbled(centre(i, j) + centre(i - 1, j) + corner(i, j) + corner(i, j + 1));
    }
    // …then of vertical edges (centres left/right, corners above/below).
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++)
        a[(i * step + h) * M + j * step] = wibbled(centre(i, j) + centre(i, j - 1) + corner(i, j) + corner(i + 1, j));
    }
    step = h;
    wibble /= wibbleDecay;
  }
  let lo = Infinity,
    hi = -Infinity;
  for (const v of a) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  const out = new Float32Array(M * M);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] - lo) / (hi - lo);
  return out;
}

/** `count` independent plasma fractals, [count, mapsize, mapsize] row-major. */
export function fogBank(count: number, mapsize: number, wibbleDecay: number, seed: number): Float32Array {
  const out = new Float32Array(count * mapsize * mapsize);
  for (let k = 0; k < count; k++) {
    const d = new Draws(seed, STREAM.plasma + k);
    out.set(
      plasmaFractal(mapsize, wibbleDecay, () => d.next()),
      k * mapsize * mapsize,
    );
  }
  return out;
}

// ---- frost -----------------------------------------------------------------------------------

/** Periodic value noise, smoothstep-interpolated, `cell` pixels per lattice cell; size % cell === 0. */
function valueNoise(size: number, cell: number, d: Draws): Float32Array {
  const p = size / cell;
  const lattice = new Float32Array(p * p);
  for (let i = 0; i < lattice.length; i++) lattice[i] = d.next();
  const out = new Float32Array(size * size);
  const s = (t: number) => t * t * (3 - 2 * t);
  for (let y = 0; y < size; y++) {
    const gy = y / cell,
      y0 = Math.floor(gy),
      fy = s(gy - y0),
      r0 = (y0 % p) * p,
      r1 = ((y0 + 1) % p) * p;
    for (let x = 0; x < size; x++) {
      const gx = x / cell,
        x0 = Math.floor(gx),
        fx = s(gx - x0),
        c0 = x0 % p,
        c1 = (x0 + 1) % p;
      const top = lattice[r0 + c0] * (1 - fx) + lattice[r0 + c1] * fx;
      const bottom = lattice[r1 + c0] * (1 - fx) + lattice[r1 + c1] * fx;
      out[y * size + x] = top * (1 - fy) + bottom * fy;
    }
  }
  return out;
}

/** Fractal (fBm) value noise over octaves of cell size `cells`, halving amplitude, rescaled to [0,1]. */
function fbm(size: number, cells: number[], d: Draws): Float32Array {
  const out = new Float32Array(size * size);
  let amp = 1;
  for (const cell of cells) {
    const o = valueNoise(size, Math.min(cell, size), d);
    for (let i = 0; i < out.length; i++) out[i] += amp * o[i];
    amp /= 2;
  }
  let lo = Infinity,
    hi = -Infinity;
  for (const v of out) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  for (let i = 0; i < out.length; i++) out[i] = (out[i] - lo) / Math.max(hi - lo, 1e-12);
  return out;
}

/** Separable box blur of radius r, wrapping (the textures are toroidal). */
function boxBlurWrap(src: Float32Array, size: number, r: number): Float32Array {
  const tmp = new Float32Array(src.length);
  const out = new Float32Array(src.length);
  const norm = 1 / (2 * r + 1);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += src[y * size + ((x + k + size) % size)];
      tmp[y * size + x] = s * norm;
    }
  }
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += tmp[((y + k + size) % size) * size + x];
      out[y * size + x] = s * norm;
    }
  }
  return out;
}

/**
 * Thin bright ice dendrites: from random seeds (denser where `density` is high), needles that
 * wander slightly and throw side branches at about ±60° every few pixels, two levels deep, drawn
 * as soft dots with max-compositing on a torus.
 */
function dendrites(size: number, density: Float32Array, d: Draws): Float32Array {
  const lines = new Float32Array(size * size);
  const stamp = (x: number, y: number, r: number, v: number) => {
    const x0 = Math.floor(x - r - 1),
      y0 = Math.floor(y - r - 1);
    for (let py = y0; py <= y + r + 1; py++) {
      for (let px = x0; px <= x + r + 1; px++) {
        const dd = Math.hypot(px + 0.5 - x, py + 0.5 - y);
        if (dd > r + 0.5) continue;
        const w = v * Math.min(1, r + 0.5 - dd);
        const idx = (((py % size) + size) % size) * size + (((px % size) + size) % size);
        if (w > lines[idx]) lines[idx] = w;
      }
    }
  };
  const grow = (x: number, y: number, angle: number, len: number, depth: number, v: number, r: number): void => {
    const spacing = 3 + Math.floor(d.next() * 4);
    let a = angle;
    for (let s = 1; s <= len; s++) {
      x += Math.cos(a);
      y += Math.sin(a);
      a += (d.next() - 0.5) * 0.12;
      stamp(x, y, r, v * (1 - 0.55 * (s / len)));
      if (depth > 0 && s % spacing === 0 && s < len - 2) {
        const rest = (len - s) * (0.3 + 0.35 * d.next());
        for (const side of [1, -1]) {
          grow(x, y, a + side * (Math.PI / 3) * (0.85 + 0.3 * d.next()), rest, depth - 1, v * 0.85, r * 0.7);
        }
      }
    }
  };
  const seeds = Math.round((size * size) / 900);
  for (let k = 0; k < seeds; k++) {
    const x = d.next() * size,
      y = d.next() * size;
    const local = density[Math.floor(y) * size + Math.floor(x)];
    const v = 0.35 + 0.65 * local * d.next();
    const len = size * (0.04 + 0.12 * d.next()) * (0.5 + local);
    if (d.next() < 0.35) {
      // a six-armed star
      const a0 = d.next() * Math.PI;
      for (let arm = 0; arm < 6; arm++) grow(x, y, a0 + (arm * Math.PI) / 3, len * 0.5, 1, v, 0.9);
    } else {
      grow(x, y, d.next() * 2 * Math.PI, len, 2, v, 1.1);
    }
  }
  return lines;
}

/**
 * A frost texture [size,size,3] in [0,1] (row-major HWC), greyish blue like the reference's
 * photographs of frost on glass: hazy film + dendrites + glow + grain. Mean about 0.4.
 */
export function frostTexture(size: number, seed: number): Float32Array {
  const haze = fbm(
    size,
    [size / 4, size / 8, size / 16, size / 32, size / 64].filter((c) => c >= 2 && size % c === 0),
    new Draws(seed, STREAM.haze),
  );
  const lines = dendrites(size, haze, new Draws(seed, STREAM.crystals));
  const glow = boxBlurWrap(boxBlurWrap(lines, size, 2), size, 2);
  const grain = new Draws(seed, STREAM.grain);
  const out = new Float32Array(size * size * 3);
  for (let i = 0; i < size * size; i++) {
    const v = 0.1 + 0.45 * haze[i] + 0.45 * lines[i] + 0.5 * glow[i] + 0.06 * (grain.next() - 0.5);
    out[3 * i] = clamp01(0.86 * v + 0.02);
    out[3 * i + 1] = clamp01(0.93 * v + 0.03);
    out[3 * i + 2] = clamp01(v + 0.07);
  }
  return out;
}

// ---- memo ------------------------------------------------------------------------------------

const cache = new Map<string, Float32Array>();

/** Textures are pure functions of their key; keep the last few (a graph build asks again per severity). */
export function memoTexture(key: string, make: () => Float32Array): Float32Array {
  let t = cache.get(key);
  if (!t) {
    t = make();
    if (cache.size >= 8) cache.delete(cache.keys().next().value!);
    cache.set(key, t);
  }
  return t;
}
