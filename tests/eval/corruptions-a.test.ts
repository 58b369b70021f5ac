// The 15 noise, blur and digital corruptions of eval/corruptions/: every WGSL kernel against its TS
// reference at all five severities, then properties (range, determinism, seeds, per-image
// independence, severity ordering), JPEG against a real libjpeg (sharp) bit for bit, and the
// reference maths against scipy values and a brute-force run of the reference's glass_blur loop.

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { blur1dRef, gaussianWeights } from '../../eval/corruptions/common.js';
import { diskKernel } from '../../eval/corruptions/defocus-blur.js';
import { GLASS_MAX_STEPS, type GlassParams, glassOffset, glassSource } from '../../eval/corruptions/glass-blur.js';
import { getCorruption } from '../../eval/corruptions/index.js';
import { jpegBlockRoundTrip, jpegQuantTables, jpegRoundTripU8 } from '../../eval/corruptions/jpeg-codec.js';
import { motionWeights } from '../../eval/corruptions/motion-blur.js';
import { corruptOp } from '../../eval/corruptions/op.js';
import { pixelateWindows } from '../../eval/corruptions/pixelate.js';
import { testDevice } from '../helpers.js';

/** A natural-looking test image: smooth gradients, a bright square, stripes and a little texture. */
function scene(n: number, h: number, w: number, seed = 1): HostTensor {
  const data = new Float32Array(n * h * w * 3);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = ((b * h + y) * w + x) * 3;
        const u = x / (w - 1),
          v = y / (h - 1);
        const square = Math.abs(u - 0.35 - 0.1 * b) < 0.2 && Math.abs(v - 0.4) < 0.2 ? 0.35 : 0;
        const stripes = v > 0.7 ? 0.15 * Math.sign(Math.sin((x + 3 * b) * 1.3)) : 0;
        const tex = 0.04 * Math.sin(x * 12.9898 + y * 78.233 + seed * 37.719 + b);
        data[o] = 0.15 + 0.5 * u + square + tex;
        data[o + 1] = 0.2 + 0.4 * v + 0.5 * square + stripes;
        data[o + 2] = 0.55 - 0.3 * u * v + stripes - tex;
      }
  return { shape: [n, h, w, 3], data };
}

const image = (t: HostTensor, b: number): HostTensor => {
  const [, h, w, c] = t.shape;
  return { shape: [1, h, w, c], data: t.data.slice(b * h * w * c, (b + 1) * h * w * c) };
};

async function runCorrupt(
  x: HostTensor,
  ids: number[],
  name: string,
  severity: number,
  seed: number,
): Promise<HostTensor> {
  const g = new Graph();
  g.input('x', x.shape);
  g.input('ids', [ids.length]);
  const y = g.op(corruptOp.op, ['x', 'ids'], { name, severity, seed }, 'c');
  g.markOutputs(y);
  const plan = await compile(await testDevice(), g);
  try {
    const { outputs } = await plan.run({ x: x.data, ids: Float32Array.from(ids) });
    return outputs[y];
  } finally {
    plan.dispose();
  }
}

const refOf = (name: string, severity: number, seed: number, x: HostTensor, ids: number[]): HostTensor => {
  const def = getCorruption(name);
  return def.ref(def.params[severity - 1], seed, x, Float32Array.from(ids), []);
};

const maxAbsDiff = (a: Float32Array, b: Float32Array): number =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const meanAbsDiff = (a: Float32Array, b: Float32Array): number =>
  a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

const NOISE = ['gaussian_noise', 'shot_noise', 'impulse_noise', 'speckle_noise'];
const BLUR = ['defocus_blur', 'glass_blur', 'motion_blur', 'zoom_blur', 'gaussian_blur'];
const DIGITAL = ['contrast', 'brightness', 'saturate', 'pixelate', 'jpeg_compression', 'elastic_transform'];
const ALL = [...NOISE, ...BLUR, ...DIGITAL];
const RANDOM = [...NOISE, 'glass_blur', 'motion_blur', 'elastic_transform'];

/**
 * GPU vs reference, |d| ≤ atol per element. Box–Muller noise goes through the GPU's log and cos
 * (WGSL allows 2^-21 absolute error for log near 1): its normal draws agree to ~5e-4, so
 * gaussian/speckle get 1e-3·σ. Integer JPEG and the RNG-exact impulse/glass are bit-exact.
 */
const ATOL: Record<string, (p: unknown) => number> = {
  gaussian_noise: (s) => 1e-3 * (s as number),
  speckle_noise: (s) => 1e-3 * (s as number),
  shot_noise: () => 1e-6,
  impulse_noise: () => 0,
  defocus_blur: () => 1e-5,
  glass_blur: () => 1e-5,
  motion_blur: () => 1e-5,
  zoom_blur: () => 1e-5,
  gaussian_blur: () => 1e-5,
  contrast: () => 1e-5,
  brightness: () => 1e-5,
  saturate: () => 1e-5,
  pixelate: () => 1e-5,
  jpeg_compression: () => 0,
  elastic_transform: () => 1e-4,
};

const X = scene(2, 37, 29); // odd sizes: partial JPEG blocks, odd chroma planes, uneven pixelate windows
const IDS = [5, 11];
const SEED = 7;
const gpuOut = new Map<string, HostTensor>();

describe('corrupt: WGSL kernels against their TS references, severities 1-5, x [2,37,29,3]', () => {
  for (const name of ALL) {
    it(name, async () => {
      const def = getCorruption(name);
      for (let s = 1; s <= 5; s++) {
        // elastic at severity 2 moves the affine's points by up to 49 px around a 9 px square on
        // this small image: a near-singular solve that f32 cannot match to f64; tested at 224² below.
        if (name === 'elastic_transform' && s === 2) continue;
        const got = await runCorrupt(X, IDS, name, s, SEED);
        const want = refOf(name, s, SEED, X, IDS);
        gpuOut.set(`${name}/${s}`, got);
        expect(got.shape).toEqual(X.shape);
        expect(Math.min(...got.data), `${name} s${s} min`).toBeGreaterThanOrEqual(0);
        expect(Math.max(...got.data), `${name} s${s} max`).toBeLessThanOrEqual(1);
        const atol = ATOL[name](def.params[s - 1]);
        if (name === 'shot_noise') {
          // Exact Poisson inversion on both sides; the GPU's exp() may move a CDF boundary by an
          // ulp, which would flip a draw by one step (1/c). Allow 0.1% such flips, nothing else.
          const c = def.params[s - 1] as number;
          let flips = 0;
          got.data.forEach((v, i) => {
            const d = Math.abs(v - want.data[i]);
            if (d <= atol) return;
            expect(Math.abs(d * c - Math.round(d * c)), `shot s${s} element ${i}`).toBeLessThan(1e-4);
            flips++;
          });
          expect(flips).toBeLessThanOrEqual(got.data.length / 1000);
          continue;
        }
        const d = maxAbsDiff(got.data, want.data);
        expect(d, `${name} s${s}: max |gpu − ref|`).toBeLessThanOrEqual(atol);
      }
    });
  }

  it('elastic_transform severity 2 at 224×224 (the size its parameters are for)', async () => {
    const x = scene(1, 224, 224);
    const got = await runCorrupt(x, [5], 'elastic_transform', 2, SEED);
    const want = refOf('elastic_transform', 2, SEED, x, [5]);
    expect(maxAbsDiff(got.data, want.data)).toBeLessThanOrEqual(1e-4);
    expect(meanAbsDiff(got.data, x.data)).toBeGreaterThan(0.01);
  });
});

describe('corrupt: properties', () => {
  it('same seed → bit-identical; another seed → other noise (random ones), same output (the others)', async () => {
    for (const name of ALL) {
      const again = await runCorrupt(X, IDS, name, 3, SEED);
      expect([...again.data], `${name} rerun`).toEqual([...gpuOut.get(`${name}/3`)!.data]);
    }
    for (const name of RANDOM) {
      const other = await runCorrupt(X, IDS, name, 3, SEED + 1);
      const changed = other.data.filter((v, i) => v !== gpuOut.get(`${name}/3`)!.data[i]).length;
      expect(changed, `${name}: elements changed by the seed`).toBeGreaterThan(other.data.length / 20);
    }
    for (const name of ['defocus_blur', 'contrast', 'jpeg_compression']) {
      const other = await runCorrupt(X, IDS, name, 3, SEED + 1);
      expect([...other.data], `${name} ignores the seed`).toEqual([...gpuOut.get(`${name}/3`)!.data]);
    }
  });

  it('per-image independence: image 1 of a batch equals the same image run alone with its id', async () => {
    const alone = image(X, 1);
    for (const name of ALL) {
      const got = await runCorrupt(alone, [IDS[1]], name, 3, SEED);
      expect([...got.data], name).toEqual([...image(gpuOut.get(`${name}/3`)!, 1).data]);
    }
    // And the id, not the batch position, decides the noise.
    const swapped = await runCorrupt(alone, [IDS[0]], 'gaussian_noise', 3, SEED);
    expect([...swapped.data]).not.toEqual([...image(gpuOut.get('gaussian_noise/3')!, 1).data]);
  });

  it('severity ordering: mean |y − x| grows with severity (references, 48×48 scene)', () => {
    const x = scene(1, 48, 48);
    const mean = (name: string) => [1, 2, 3, 4, 5].map((s) => meanAbsDiff(refOf(name, s, SEED, x, [5]).data, x.data));
    // Not saturate: its levels (S×0.3, ×0.1, ×2, ×5+0.1, ×20+0.2) are not ordered by size.
    for (const name of ALL.filter((n) => n !== 'saturate' && n !== 'elastic_transform')) {
      const m = mean(name);
      for (let s = 1; s < 5; s++) {
        // glass_blur 3 → 4 is not ordered in the reference itself (its copy loop: 3 iterations at d = 2
        // vs 2 at d = 3): mean |y − x| 0.0788 vs 0.0771 on astronaut (tests/fixtures/imagenet_c/stats.json).
        if (name === 'glass_blur' && s === 3) continue;
        expect(m[s], `${name}: severity ${s + 1} vs ${s} (${m.map((v) => v.toFixed(4))})`).toBeGreaterThan(m[s - 1]);
      }
    }
    // elastic's severities 1-2 (large α, very smooth fields, big affine) and 3-5 (small α, local
    // fields) are two regimes in the reference; within the second, the ordering holds.
    const e = mean('elastic_transform');
    expect(e[3]).toBeGreaterThan(e[2]);
    expect(e[4]).toBeGreaterThan(e[3]);
  });
});

describe('jpeg_compression', () => {
  /** An 8-bit RGB image as the reference sees it, and the same as cnnlab floats. */
  const u8 = Uint8Array.from(X.data.subarray(0, 37 * 29 * 3), (v) => Math.round(Math.min(Math.max(v, 0), 1) * 255));
  const asFloats: HostTensor = { shape: [1, 37, 29, 3], data: Float32Array.from(u8, (v) => v / 255) };

  it('equals a real libjpeg round trip (sharp, 4:2:0) bit for bit at every severity and at quality 50/90/100', async () => {
    for (const quality of [25, 18, 15, 10, 7, 50, 90, 100]) {
      const jpg = await sharp(Buffer.from(u8), { raw: { width: 29, height: 37, channels: 3 } })
        .jpeg({ quality, chromaSubsampling: '4:2:0' })
        .toBuffer();
      const decoded = await sharp(jpg).raw().toBuffer();
      const ours = jpegRoundTripU8(u8, 37, 29, quality);
      expect(Buffer.from(ours).equals(decoded), `quality ${quality}`).toBe(true);
    }
    // The GPU on the same 8-bit image.
    const got = await runCorrupt(asFloats, [0], 'jpeg_compression', 1, SEED);
    const jpg = await sharp(Buffer.from(u8), { raw: { width: 29, height: 37, channels: 3 } })
      .jpeg({ quality: 25, chromaSubsampling: '4:2:0' })
      .toBuffer();
    const decoded = await sharp(jpg).raw().toBuffer();
    expect([...got.data].map((v) => Math.round(v * 255))).toEqual([...decoded]);
  });

  it('known 8×8 cases: flat grey blocks keep only their DC, quantised by hand', async () => {
    // Grey pixels give Y = v and Cb = Cr = 128 exactly. A flat block's islow FDCT has only its DC,
    // 64·(v − 128); at quality 25 the luma DC divisor is 8·32 = 256, so k = round((v − 128)/4) with
    // ties away from zero, and the IDCT gives back 128 + 4k in every pixel:
    //   135 → 136, 131 → 132, 140 → 140, 100 → 100, 118 (k = −2.5 → −3) → 116.
    const cases: [number, number][] = [
      [135, 136],
      [131, 132],
      [140, 140],
      [100, 100],
      [118, 116],
    ];
    const x = new Float32Array(8 * 8 * cases.length * 3);
    cases.forEach(([v], k) => {
      for (let r = 0; r < 8; r++)
        for (let c = 0; c < 8; c++)
          x.fill(v / 255, (r * 8 * cases.length + k * 8 + c) * 3, (r * 8 * cases.length + k * 8 + c) * 3 + 3);
    });
    const got = await runCorrupt({ shape: [1, 8, 8 * cases.length, 3], data: x }, [0], 'jpeg_compression', 1, SEED);
    cases.forEach(([v, want], k) => {
      for (let r = 0; r < 8; r++)
        for (let c = 0; c < 8; c++) {
          expect(
            Math.round(got.data[(r * 8 * cases.length + k * 8 + c) * 3] * 255),
            `grey ${v} at (${r},${k * 8 + c})`,
          ).toBe(want);
        }
    });
    expect(jpegBlockRoundTrip(new Array(64).fill(135), jpegQuantTables(25).luma)).toEqual(new Array(64).fill(136));
  });

  it('quality 100 is nearly the identity on a smooth image; tables scale as libjpeg', async () => {
    const h = 32,
      w = 32;
    const smooth = new Uint8Array(h * w * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const u = x / (w - 1),
          v = y / (h - 1);
        [0.2 + 0.6 * u, 0.3 + 0.4 * v, 0.5 + 0.2 * Math.sin(Math.PI * u * v)].forEach((c, k) => {
          smooth[(y * w + x) * 3 + k] = Math.round(c * 255);
        });
      }
    const orig = Float32Array.from(smooth, (v) => v / 255);
    // Quality 100 is no severity of the op, so through the reference (bit-identical to the kernels
    // and to libjpeg above): only 8-bit rounding at each stage and 4:2:0 remain.
    const at100 = Float32Array.from(jpegRoundTripU8(smooth, h, w, 100), (v) => v / 255);
    const at25 = await runCorrupt({ shape: [1, h, w, 3], data: orig }, [0], 'jpeg_compression', 1, SEED);
    expect(meanAbsDiff(at100, orig)).toBeLessThan(1 / 255);
    // Chroma gradients of ~2.5 levels/pixel are hit hardest at the borders (edge replication).
    const within2 = at100.filter((v, i) => Math.abs(v - orig[i]) <= 2 / 255 + 1e-6).length;
    expect(within2 / orig.length).toBeGreaterThan(0.95);
    expect(meanAbsDiff(at25.data, orig)).toBeGreaterThan(2 * meanAbsDiff(at100, orig));
    const q = jpegQuantTables(50);
    expect(q.luma.slice(0, 8)).toEqual([16, 11, 10, 16, 24, 40, 51, 61]);
    expect(jpegQuantTables(25).luma[0]).toBe(32);
    expect(jpegQuantTables(100).luma.every((v) => v === 1)).toBe(true);
    expect(jpegQuantTables(7).chroma[63]).toBe(255); // 99·714 → baseline clamp
  });
});

describe('reference maths against the originals', () => {
  // 10×10×3 image ((7x + 13y + 5c) mod 17)/16; channel 0 of the results, from scipy 1.17
  // (clipped_zoom / gaussian_filter exactly as corruptions.py calls them).
  const n = 10;
  const img: HostTensor = { shape: [1, n, n, 3], data: new Float32Array(n * n * 3) };
  for (let y = 0; y < n; y++)
    for (let x = 0; x < n; x++)
      for (let c = 0; c < 3; c++) img.data[(y * n + x) * 3 + c] = ((x * 7 + y * 13 + c * 5) % 17) / 16;
  const ch0 = (t: ArrayLike<number>, k = 3) => Array.from({ length: n * n }, (_, i) => t[i * k]);
  const close = (got: number[], want: number[], atol: number) =>
    expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(atol);

  it('zoom_blur and gaussian_blur match scipy', () => {
    close(ch0(refOf('zoom_blur', 1, 0, img, [0]).data), SCIPY.zoom1, 1e-6);
    close(ch0(refOf('zoom_blur', 5, 0, img, [0]).data), SCIPY.zoom5, 1e-6);
    close(ch0(refOf('gaussian_blur', 2, 0, img, [0]).data), SCIPY.gauss2, 1e-6);
    // gaussian_filter(σ 4, mode 'reflect', truncate 3): radius 12 > 10 reflects more than once.
    const f = Float64Array.from(ch0(img.data), (v) => 2 * v - 1);
    const wt = gaussianWeights(4, 3);
    close(
      Array.from(blur1dRef(blur1dRef(f, 1, n, n, 1, 0, wt, 'reflect'), 1, n, n, 1, 1, wt, 'reflect')),
      SCIPY.reflect4,
      1e-7,
    );
  });

  it("glass_blur's parallel walk reproduces the reference's sequential loop (NumPy's 'swap' copies) exactly", () => {
    const h = 23,
      w = 19;
    for (const p of getCorruption('glass_blur').params as readonly GlassParams[]) {
      const src = Int32Array.from({ length: h * w }, (_, i) => i);
      for (let it = 0; it < p.iterations; it++) {
        for (let r = h - p.delta; r > p.delta; r--)
          for (let c = w - p.delta; c > p.delta; c--) {
            const [dy, dx] = glassOffset(SEED, 3, it, r, c, w, p.delta);
            const a = r * w + c,
              b = (r + dy) * w + c + dx;
            // x[h, w], x[h', w'] = x[h', w'], x[h, w] on NumPy views: x[h, w] ← x[h', w'], then x[h', w'] ← itself.
            src[a] = src[b];
          }
      }
      let maxSteps = 0;
      for (let r = 0; r < h; r++)
        for (let c = 0; c < w; c++) {
          const s = glassSource(SEED, 3, p, h, w, r, c);
          maxSteps = Math.max(maxSteps, s.steps);
          expect(s.y * w + s.x, `delta ${p.delta} × ${p.iterations}, pixel (${r},${c})`).toBe(src[r * w + c]);
        }
      expect(maxSteps).toBeLessThan(GLASS_MAX_STEPS);
    }
  });

  it('pixelate: PIL BOX windows partition the input; kernels, disks and tables are normalised', () => {
    for (const [size, c] of [
      [224, 0.6],
      [224, 0.3],
      [37, 0.4],
      [29, 0.25],
    ] as const) {
      const small = Math.trunc(size * c);
      const win = pixelateWindows(size, c);
      // Each output lands in a window of ⌈size/small⌉ or ⌊size/small⌋ (±1) inputs, in order.
      for (let o = 0; o < size; o++) {
        expect(win.count[o]).toBeGreaterThanOrEqual(Math.floor(size / small));
        expect(win.count[o]).toBeLessThanOrEqual(Math.ceil(size / small) + 1);
        if (o > 0) expect(win.start[o]).toBeGreaterThanOrEqual(win.start[o - 1]);
      }
      const starts = [...new Set(win.start)];
      expect(starts.length).toBe(small);
      expect(win.start[0]).toBe(0);
      expect(win.start[size - 1] + win.count[size - 1]).toBe(size);
    }
    for (const p of getCorruption('defocus_blur').params as readonly { radius: number; alias: number }[]) {
      const { size, k } = diskKernel(p.radius, p.alias);
      const sum = k.reduce((a, b) => a + b, 0);
      // Radius 8 and 10 fill their 17×17 / 21×21 arrays, and cv2.GaussianBlur's BORDER_REFLECT_101
      // folds mass back in: the reference's kernel then sums to ≈ 1.013 / 1.011, and so does ours.
      if (2 * p.radius + 1 < size) expect(sum).toBeCloseTo(1, 6);
      else expect(sum).toBeCloseTo(p.radius === 8 ? 1.012975 : 1.010786, 5);
      expect(k[0]).toBe(k[size * size - 1]); // symmetric
    }
    for (const p of getCorruption('motion_blur').params as readonly { radius: number; sigma: number }[]) {
      const wt = motionWeights(p);
      expect(wt.length).toBe(2 * p.radius + 1);
      expect(wt.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
  });
});

const SCIPY = {
  zoom1: [
    0.0, 0.417308, 0.834615, 0.336538, 0.606731, 0.206731, 0.378846, 0.796154, 0.543269, 0.568269, 0.775, 0.222981,
    0.596154, 0.098077, 0.368269, 0.761058, 0.405192, 0.557692, 0.304808, 0.329808, 0.585577, 0.914615, 0.436154,
    0.706346, 0.286731, 0.547115, 0.196154, 0.319231, 0.716923, 0.444423, 0.347115, 0.764423, 0.217308, 0.536538,
    0.865577, 0.480289, 0.667115, 0.321058, 0.498077, 0.294231, 0.108654, 0.525962, 0.786346, 0.386346, 0.715385,
    0.315385, 0.4875, 0.845962, 0.495, 0.657308, 0.6875, 0.312019, 0.704808, 0.206731, 0.476923, 0.771635, 0.396154,
    0.666346, 0.413462, 0.438461, 0.694231, 0.098077, 0.466346, 0.677692, 0.316923, 0.655769, 0.304808, 0.427885,
    0.786346, 0.376538, 0.455769, 0.564135, 0.257308, 0.645192, 0.196154, 0.417308, 0.697308, 0.292404, 0.606731,
    0.402885, 0.217308, 0.634615, 0.738077, 0.436154, 0.588654, 0.227885, 0.596154, 0.294231, 0.368269, 0.746346, 0.6,
    0.401058, 0.813461, 0.315385, 0.585577, 0.782211, 0.387115, 0.642596, 0.169038, 0.547115,
  ],
  zoom5: [
    0.03125, 0.415278, 0.700926, 0.392361, 0.504861, 0.456019, 0.322569, 0.594444, 0.618403, 0.5125, 0.744445, 0.302368,
    0.557999, 0.264738, 0.285417, 0.651845, 0.473688, 0.46, 0.429565, 0.430787, 0.654861, 0.749303, 0.483107, 0.624684,
    0.398801, 0.460931, 0.386073, 0.316461, 0.528128, 0.547801, 0.435417, 0.727623, 0.348225, 0.525, 0.792809, 0.484047,
    0.594907, 0.409317, 0.429799, 0.420833, 0.215972, 0.6, 0.640267, 0.402099, 0.672094, 0.500823, 0.454823, 0.740427,
    0.5915, 0.520139, 0.429398, 0.398155, 0.666204, 0.357639, 0.467953, 0.748682, 0.386883, 0.559722, 0.583681,
    0.477778, 0.609375, 0.240995, 0.512346, 0.571458, 0.305262, 0.634722, 0.462708, 0.425278, 0.676821, 0.499167,
    0.521759, 0.398083, 0.345064, 0.608194, 0.308287, 0.415278, 0.638225, 0.338602, 0.504861, 0.584306, 0.400694,
    0.550098, 0.55027, 0.461551, 0.506628, 0.228845, 0.579861, 0.431458, 0.349167, 0.655278, 0.464583, 0.567049,
    0.723426, 0.414861, 0.592685, 0.51059, 0.381667, 0.578576, 0.239514, 0.45,
  ],
  gauss2: [
    0.356522, 0.408362, 0.446576, 0.464722, 0.470927, 0.478936, 0.495473, 0.517279, 0.5384, 0.556488, 0.411305,
    0.444741, 0.468138, 0.47799, 0.479965, 0.482602, 0.489563, 0.498149, 0.504366, 0.50758, 0.449332, 0.471002,
    0.485645, 0.491349, 0.491434, 0.490442, 0.489928, 0.487771, 0.481524, 0.472028, 0.46805, 0.483322, 0.494329,
    0.49958, 0.500464, 0.49895, 0.495334, 0.487864, 0.475103, 0.458868, 0.476707, 0.486576, 0.494891, 0.50028, 0.502814,
    0.502894, 0.499938, 0.49222, 0.478789, 0.461812, 0.484597, 0.488382, 0.492679, 0.496512, 0.499387, 0.500812,
    0.499529, 0.493743, 0.482732, 0.468473, 0.496905, 0.494957, 0.4944, 0.49507, 0.496552, 0.497768, 0.496951, 0.492677,
    0.484923, 0.475317, 0.519793, 0.511294, 0.504751, 0.501457, 0.501155, 0.501506, 0.499836, 0.495796, 0.491313,
    0.488174, 0.559271, 0.539454, 0.523648, 0.515676, 0.514789, 0.515533, 0.512949, 0.507993, 0.505894, 0.509684,
    0.612258, 0.574985, 0.545983, 0.532635, 0.532863, 0.536149, 0.533584, 0.526842, 0.524971, 0.533354,
  ],
  reflect4: [
    -0.02707582, -0.02684132, -0.02645547, -0.02596576, -0.02585295, -0.02588178, -0.02584365, -0.02623154, -0.02672044,
    -0.02680108, -0.02554482, -0.02534101, -0.02500012, -0.02459198, -0.02457886, -0.02471536, -0.02481113, -0.02531168,
    -0.02587535, -0.02601096, -0.0225127, -0.02237581, -0.0221422, -0.02191311, -0.02211478, -0.0224775, -0.02284619,
    -0.02357302, -0.02428753, -0.02452907, -0.01834525, -0.01829251, -0.01819525, -0.01818979, -0.0186525, -0.01928149,
    -0.01997535, -0.02096443, -0.02184802, -0.02221292, -0.0133237, -0.01338762, -0.01348725, -0.01379029, -0.01460852,
    -0.01559615, -0.01671225, -0.01803962, -0.0191407, -0.01965865, -0.0078109, -0.00802376, -0.00838137, -0.00906471,
    -0.01030452, -0.01169804, -0.01326842, -0.01494638, -0.01626411, -0.01693223, -0.0025917, -0.00296318, -0.00360419,
    -0.00469303, -0.00637579, -0.00818897, -0.0102161, -0.01224071, -0.01376976, -0.01458016, 0.00182329, 0.00131825,
    0.00043621, -0.00099023, -0.00303326, -0.00517633, -0.00755887, -0.00984359, -0.01152429, -0.01243872, 0.00513526,
    0.00452221, 0.00344243, 0.00174375, -0.00058826, -0.00299452, -0.00565393, -0.00813995, -0.00993742, -0.01092939,
    0.00685536, 0.00618722, 0.00500588, 0.00317073, 0.00069928, -0.00182741, -0.00461128, -0.0071817, -0.00902236,
    -0.01004507,
  ],
};
