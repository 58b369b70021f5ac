import { describe, expect, it } from 'vitest';
import {
  type ImagePreprocessAttrs,
  centerCropOffset,
  imageNormalizeOp,
  imagePreprocessOp,
  preprocessGeometry,
} from '../../kernels/image.js';
import { type HostTensor, ShapeError } from '../../kernels/kernel.js';
import { type RgbImage, preprocessImage } from '../../models/preprocess.js';
import type { Preprocess } from '../../models/registry.js';
import { expectClose, rand, runOp } from '../helpers.js';

/** A seeded RGB image with smooth structure plus noise, so both edges and gradients are exercised. */
function image(width: number, height: number, seed: number): RgbImage {
  const noise = rand(width * height * 3, seed, 0, 1);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) {
        const i = (y * width + x) * 3 + c;
        const smooth = 127 + 100 * Math.sin((x * (c + 1)) / 7 + y / 5);
        data[i] = Math.max(0, Math.min(255, Math.round(smooth + 60 * (noise[i] - 0.5) + ((x + y) % 9 === 0 ? 90 : 0))));
      }
  return { width, height, data };
}

const srcTensor = (img: RgbImage): HostTensor => ({
  shape: [img.height, img.width, 3],
  data: Float32Array.from(img.data),
});

/** NCHW [3,S,S] → NHWC [1,S,S,3]. */
function toNhwc(x: Float32Array, s: number): HostTensor {
  const data = new Float32Array(x.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < s * s; i++) data[i * 3 + c] = x[c * s * s + i];
  return { shape: [1, s, s, 3], data };
}

const IMAGENET = {
  mean: [0.485, 0.456, 0.406] as [number, number, number],
  std: [0.229, 0.224, 0.225] as [number, number, number],
};
// |d| ≤ 1e-4 + 0 · |ref| in normalised units (1 pixel level is 1/255/0.229 ≈ 0.017).
const TOL = { atol: 1e-4, rtol: 0 };

describe('image_preprocess against models/preprocess.ts (GPU)', () => {
  // Sizes chosen so torchvision's centre-crop offsets are whole numbers: on a .5 tie
  // preprocess.ts's Math.round and torchvision's round-half-to-even differ by a pixel (see below).
  const cases: [number, number, Preprocess][] = [];
  for (const interpolation of ['bilinear', 'bicubic'] as const) {
    // Downscale with a crop (97×61, 300×200), upscale (50×80 → short side 104), squash.
    cases.push([97, 61, { size: 34, resizeMode: 'short', cropPct: 0.875, interpolation, ...IMAGENET }]);
    cases.push([300, 200, { size: 54, resizeMode: 'short', cropPct: 0.9, interpolation, ...IMAGENET }]);
    cases.push([50, 80, { size: 96, resizeMode: 'short', cropPct: 0.92, interpolation, ...IMAGENET }]);
    cases.push([
      97,
      61,
      { size: 40, resizeMode: 'squash', cropPct: 1, interpolation, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    ]);
  }
  // A crop larger than the resized image (cropPct > 1): zero padding before normalisation.
  cases.push([61, 97, { size: 34, resizeMode: 'short', cropPct: 1.2, interpolation: 'bicubic', ...IMAGENET }]);

  for (const [w, h, p] of cases) {
    it(`${w}×${h} → ${p.size}, ${p.resizeMode}, ${p.interpolation}, crop ${p.cropPct}`, async () => {
      const g = preprocessGeometry(h, w, p);
      expect(g.rh < p.size || (g.rh - p.size) % 2 === 0, 'no tie in the top offset').toBe(true);
      expect(g.rw < p.size || (g.rw - p.size) % 2 === 0, 'no tie in the left offset').toBe(true);
      const img = image(w, h, w * 7 + h);
      const want = toNhwc(preprocessImage(img, p), p.size);
      const [got] = await runOp('image_preprocess', { ...p }, [srcTensor(img)]);
      expectClose(got, want, TOL, 'GPU vs preprocessImage');
      // The op's own reference agrees too (it is what the CPU interpreter runs).
      expectClose(
        imagePreprocessOp.ref(p, [srcTensor(img)])[0],
        want,
        { atol: 1e-5, rtol: 0 },
        'ref vs preprocessImage',
      );
    });
  }

  it('on a .5 crop offset, rounds half to even as torchvision, on the GPU and in preprocess.ts', async () => {
    const img = image(97, 61, 11);
    const p: Preprocess = { size: 32, resizeMode: 'short', cropPct: 0.875, interpolation: 'bilinear', ...IMAGENET };
    expect(preprocessGeometry(61, 97, p)).toMatchObject({ rw: 57, left: 12 }); // (57 − 32)/2 = 12.5 → 12
    const [got] = await runOp('image_preprocess', { ...p }, [srcTensor(img)]);
    expectClose(got, imagePreprocessOp.ref(p, [srcTensor(img)])[0], TOL, 'GPU vs ref');
    expectClose(got, toNhwc(preprocessImage(img, p), 32), TOL, 'GPU vs preprocess.ts');
  });

  it('normalize: false gives the [0,1] crop; image_normalize then matches the normalised output', async () => {
    const img = image(97, 61, 3);
    const p: Preprocess = { size: 32, resizeMode: 'short', cropPct: 0.875, interpolation: 'bicubic', ...IMAGENET };
    const [unit] = await runOp('image_preprocess', { ...p, normalize: false }, [srcTensor(img)]);
    const want = imagePreprocessOp.ref({ ...p, normalize: false }, [srcTensor(img)])[0];
    expectClose(unit, want, { atol: 1e-6, rtol: 0 }, '[0,1] crop');
    expect(Math.min(...unit.data)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...unit.data)).toBeLessThanOrEqual(1);
    const [norm] = await runOp('image_normalize', { mean: p.mean, std: p.std }, [unit]);
    expectClose(norm, imagePreprocessOp.ref(p, [srcTensor(img)])[0], TOL, 'normalised afterwards');
    expectClose(
      norm,
      imageNormalizeOp.ref({ mean: p.mean, std: p.std }, [unit])[0],
      { atol: 1e-6, rtol: 1e-6 },
      'normalize ref',
    );
  });

  it('antialias: false (support not widened) matches its reference', async () => {
    const img = image(120, 90, 5);
    for (const interpolation of ['bilinear', 'bicubic'] as const) {
      const p: ImagePreprocessAttrs = {
        size: 24,
        resizeMode: 'short',
        cropPct: 0.875,
        interpolation,
        ...IMAGENET,
        antialias: false,
      };
      const [got] = await runOp('image_preprocess', { ...p }, [srcTensor(img)]);
      expectClose(got, imagePreprocessOp.ref(p, [srcTensor(img)])[0], TOL, `no antialias, ${interpolation}`);
    }
  });
});

describe('image_preprocess geometry and shapes', () => {
  const p: ImagePreprocessAttrs = {
    size: 224,
    resizeMode: 'short',
    cropPct: 0.875,
    interpolation: 'bilinear',
    ...IMAGENET,
  };

  it('follows torchvision: short side 256, long side int(256·long/short), centre crop offsets', () => {
    const g = preprocessGeometry(375, 500, p); // a typical ImageNet val image, h 375, w 500
    expect([g.rh, g.rw, g.top, g.left]).toEqual([256, 341, 16, 58]); // round(58.5) = 58 in Python
    // The horizontal pass only computes the source rows the cropped output reads.
    expect(g.rowLo).toBeGreaterThan(0);
    expect(g.rowHi).toBeLessThan(375);
    expect(preprocessGeometry(500, 375, p).rw).toBe(256);
    expect(preprocessGeometry(10, 20, { ...p, resizeMode: 'squash' })).toMatchObject({
      rh: 224,
      rw: 224,
      top: 0,
      left: 0,
    });
  });

  it('centre-crop offsets: half to even, and −⌊pad/2⌋ when the crop is larger', () => {
    expect([centerCropOffset(341, 224), centerCropOffset(343, 224), centerCropOffset(226, 224)]).toEqual([58, 60, 1]);
    expect([centerCropOffset(224, 224), centerCropOffset(221, 224), centerCropOffset(222, 224)]).toEqual([0, -1, -1]);
  });

  it('rejects bad shapes and attributes', () => {
    expect(() => imagePreprocessOp.infer(p, [[1, 10, 10, 3]])).toThrow(ShapeError);
    expect(() => imagePreprocessOp.infer(p, [[10, 10, 4]])).toThrow(/RGB image/);
    expect(() => imagePreprocessOp.infer({ ...p, std: [1, 0, 1] }, [[10, 10, 3]])).toThrow(/std/);
    expect(() => imagePreprocessOp.infer({ ...p, size: 0 }, [[10, 10, 3]])).toThrow(/size/);
    expect(imagePreprocessOp.infer(p, [[61, 97, 3]])).toEqual([[1, 224, 224, 3]]);
    expect(() => imageNormalizeOp.infer({ mean: [0, 0, 0], std: [1, 1, 1] }, [[2, 4, 4, 1]])).toThrow(/RGB/);
  });
});
