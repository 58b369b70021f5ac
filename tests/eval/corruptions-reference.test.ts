// The corruptions of eval/corruptions/ against ImageNet-C's own code (hendrycks/robustness
// `imagenet_c/corruptions.py`, run by tests/fixtures/make_imagenet_c.py on skimage.data images;
// outputs in tests/fixtures/imagenet_c/), through the GPU kernels (SwiftShader in Node):
// - deterministic corruptions pixel for pixel: ≥ 50 dB PSNR (the issue asks ≥ 40; the fixture's
//   own 8-bit rounding caps PSNR near 59 dB), bit for bit where the reference's pipeline is integer
//   (pixelate and jpeg_compression: Pillow);
// - stochastic corruptions in distribution: distortion statistics of DRAWS draws against the
//   reference's seeds, within F× the larger seed-to-seed spread plus FLOOR;
// - the storage step of --imagenet-c-protocol (np.uint8, then Pillow JPEG quality 85).
// Measured numbers and the reference's quirks: docs/imagenet-c.md.

import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { addCorruption } from '../../eval/corruptions/op.js';
import { addImagenetCStorage } from '../../eval/corruptions/storage.js';
import { inputPlan } from '../../eval/robustness.js';
import type { Preprocess } from '../../models/registry.js';
import { testDevice } from '../helpers.js';

const DIR = new URL('../fixtures/imagenet_c/', import.meta.url).pathname;
const meta = JSON.parse(readFileSync(`${DIR}stats.json`, 'utf8'));

async function png(file: string): Promise<Uint8Array> {
  const { data, info } = await sharp(`${DIR}${file}`).raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== 224 || info.height !== 224)
    throw new Error(`${file}: ${info.width}×${info.height}×${info.channels}`);
  return new Uint8Array(data);
}

async function run(
  x: HostTensor,
  ids: number[],
  name: string | null,
  severity: number,
  seed: number,
  store = false,
): Promise<Float32Array> {
  const g = new Graph();
  let y = g.input('x', x.shape);
  g.input('ids', [ids.length]);
  if (name) y = addCorruption(g, y, 'ids', { name, severity, seed });
  if (store) y = addImagenetCStorage(g, y);
  g.markOutputs(y);
  const plan = await compile(await testDevice(), g);
  try {
    const feed: Record<string, Float32Array> = { x: x.data as Float32Array };
    if (g.values.has('ids') && plan.graph.values.has('ids')) feed.ids = Float32Array.from(ids);
    return (await plan.run(feed)).outputs[y].data as Float32Array;
  } finally {
    plan.dispose();
  }
}

const batchOf = (imgs: Uint8Array[]): HostTensor => {
  const data = new Float32Array(imgs.length * 224 * 224 * 3);
  imgs.forEach((im, b) => im.forEach((v, i) => (data[b * im.length + i] = v / 255)));
  return { shape: [imgs.length, 224, 224, 3], data };
};

const psnr = (y: Float32Array, off: number, ref: Uint8Array): number => {
  let se = 0;
  for (let i = 0; i < ref.length; i++) se += (y[off + i] * 255 - ref[i]) ** 2;
  return 10 * Math.log10(255 ** 2 / (se / ref.length));
};

function stats(x: Uint8Array, y: Float32Array, off: number) {
  const n = x.length;
  const mean = [0, 0, 0];
  let s = 0,
    s2 = 0,
    mad = 0,
    om = 0,
    os2 = 0,
    gr = 0,
    gc = 0;
  for (let i = 0; i < n; i++) {
    const v = y[off + i],
      d = v - x[i] / 255;
    mean[i % 3] += d;
    s += d;
    s2 += d * d;
    mad += Math.abs(d);
    om += v;
    os2 += v * v;
    if (i >= 224 * 3) gr += Math.abs(v - y[off + i - 224 * 3]);
    if (i % (224 * 3) >= 3) gc += Math.abs(v - y[off + i - 3]);
  }
  const m = s / n,
    omean = om / n;
  return {
    mean: mean.map((v) => v / (n / 3)),
    sd: Math.sqrt(s2 / n - m * m),
    mad: mad / n,
    grad: (gr / (223 * 224 * 3) + gc / (224 * 223 * 3)) / 2,
    out_mean: omean,
    out_sd: Math.sqrt(os2 / n - omean * omean),
  };
}

/** 4 copies of the first image with ids 0-3: four independent draws of a stochastic corruption. */
const DRAWS = 4;
type Stats = ReturnType<typeof stats>;
const STAT_KEYS = ['sd', 'mad', 'grad', 'out_sd', 'mean0', 'mean1', 'mean2'] as const;
const pick = (r: Stats, k: (typeof STAT_KEYS)[number]): number =>
  k === 'mean0' || k === 'mean1' || k === 'mean2' ? r.mean[Number(k[4])] : r[k];
const meanSd = (v: number[]) => {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return { m, sd: Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1)) };
};

/** Factor on the seed-to-seed spread, and an absolute floor (1/1000 of the range, f32 vs f64 and storage rounding). */
const F = 3,
  FLOOR = 1e-3;

describe('every deterministic corruption against hendrycks/robustness (tests/fixtures/make_imagenet_c.py)', () => {
  const EXACT = new Set(['pixelate', 'jpeg_compression']); // integer pipelines (Pillow): bit for bit
  for (const name of meta.deterministic.corruptions as string[]) {
    it(`${name}: ${EXACT.has(name) ? 'bit-exact' : '≥ 50 dB PSNR'} at every severity`, async () => {
      const A = await png('input-astronaut.png'),
        B = await png('input-chelsea.png');
      const x = batchOf([A, B]);
      const got: string[] = [];
      for (let s = 1; s <= 5; s++) {
        const y = await run(x, [0, 1], name, s, 0);
        const refs: [number, Uint8Array][] = [[0, await png(`det/${name}-${s}-astronaut.png`)]];
        if (s === 3) refs.push([A.length, await png(`det/${name}-3-chelsea.png`)]);
        for (const [off, ref] of refs) {
          const db = psnr(y, off, ref);
          got.push(`${s}: ${db.toFixed(1)} dB`);
          if (EXACT.has(name)) {
            let wrong = 0;
            for (let i = 0; i < ref.length; i++) if (Math.abs(y[off + i] * 255 - ref[i]) > 1e-3) wrong++;
            expect(wrong, `${name} severity ${s}: pixels off the reference`).toBe(0);
          } else {
            // The fixture is the reference's float output rounded to 8 bits: ≤ 0.5 grey levels
            // (≈ 59 dB) of storage error.
            expect(db, `${name} severity ${s}`).toBeGreaterThanOrEqual(50);
          }
        }
      }
      console.log(`${name}: ${got.join(', ')}`);
    }, 120_000);
  }
});

/**
 * Stochastic corruptions: the same distortion statistics on DRAWS draws of ours as on the
 * reference's seeds (stats.json): |mean ours − mean ref| ≤ F · max(spread ref, spread ours) + FLOOR
 * for the difference image's sd, mean |d| and per-channel mean, the output's mean gradient and sd.
 */
// frost passes, but weakly: cnnlab generates its frost texture (docs/imagenet-c.md) and the
// reference's seed-to-seed spread is wide (one of five photographs per seed).

describe('every stochastic corruption against hendrycks/robustness in distribution', () => {
  for (const name of Object.keys(meta.stochastic.stats)) {
    it(`${name}: distortion statistics within ${F}× the seed-to-seed spread`, async () => {
      const A = await png('input-astronaut.png');
      const xs = batchOf(Array(DRAWS).fill(A));
      const bad: string[] = [];
      for (let s = 1; s <= 5; s++) {
        const y = await run(xs, [0, 1, 2, 3], name, s, 0);
        const ours = Array.from({ length: DRAWS }, (_, k) => stats(A, y, k * A.length));
        const ref = meta.stochastic.stats[name][String(s)] as Stats[]; // the fixture script writes the same fields
        for (const key of STAT_KEYS) {
          const o = meanSd(ours.map((r) => pick(r, key))),
            r = meanSd(ref.map((q) => pick(q, key)));
          const tol = F * Math.max(o.sd, r.sd) + FLOOR;
          const show = (v: { m: number; sd: number }) => `${v.m.toFixed(4)}±${v.sd.toFixed(4)}`;
          if (!(Math.abs(o.m - r.m) <= tol)) bad.push(`severity ${s} ${key}: ours ${show(o)}, reference ${show(r)}`);
        }
      }
      expect(bad, `${name}`).toEqual([]);
    }, 120_000);
  }
});

describe('ImageNet-C storage step (--imagenet-c-protocol): np.uint8 truncation, then Pillow JPEG quality 85', () => {
  it("on the reference's own 8-bit outputs, our codec gives Pillow's decoded pixels bit for bit", async () => {
    for (const p of meta.protocol) {
      const u8 = await png(`protocol/${p.corruption}-${p.severity}-u8.png`);
      const q85 = await png(`protocol/${p.corruption}-${p.severity}-q85.png`);
      const y = await run(batchOf([u8]), [0], null, 0, 0, true);
      let wrong = 0;
      for (let i = 0; i < q85.length; i++) if (Math.abs(y[i] * 255 - q85[i]) > 1e-3) wrong++;
      expect(wrong, `${p.corruption} ${p.severity}`).toBe(0);
    }
  }, 120_000);

  it('end to end (our corruption, then the stage) matches the released files for deterministic ones', async () => {
    const A = await png('input-astronaut.png');
    const measured: Record<string, number> = {};
    for (const p of meta.protocol.filter((q: { seed: number | null }) => q.seed === null)) {
      const y = await run(batchOf([A]), [0], p.corruption, p.severity, 0, true);
      const db = psnr(y, 0, await png(`protocol/${p.corruption}-${p.severity}-q85.png`));
      measured[p.corruption] = db;
      // Measured: contrast bit-exact; gaussian_blur 64 dB (a few values truncate to the other side
      // of an integer in f32).
      expect(db, p.corruption).toBeGreaterThanOrEqual(50);
      // Every value is a JPEG decoder's 8-bit output.
      for (let i = 0; i < y.length; i++) expect(Math.abs(y[i] * 255 - Math.round(y[i] * 255))).toBeLessThan(1e-3);
    }
    console.log('protocol end to end PSNR', measured);
  }, 120_000);

  it("the robustness run's input plan adds the stage after the corruption only when the protocol is on", async () => {
    const A = await png('input-astronaut.png');
    // Identity normalisation (mean 0, std 1), so the plan's output is the stored image itself.
    const p: Preprocess = {
      size: 224,
      resizeMode: 'short',
      cropPct: 0.875,
      interpolation: 'bilinear',
      mean: [0, 0, 0],
      std: [1, 1, 1],
    };
    const x = batchOf([A]).data as Float32Array;
    const out = async (store: boolean) => {
      const plan = await inputPlan(await testDevice(), p, 1, { name: 'contrast', severity: 3, seed: 0 }, 224, store);
      try {
        const ops = plan.graph.nodes.map((n) => n.op);
        expect(ops.includes('imagenet_c_store')).toBe(store);
        return (await plan.run({ x, ids: new Float32Array(1) })).outputs[plan.graph.outputs[0]].data as Float32Array;
      } finally {
        plan.dispose();
      }
    };
    const stored = await out(true),
      plain = await out(false);
    const q85 = await png('protocol/contrast-3-q85.png');
    let wrong = 0,
      integral = 0;
    for (let i = 0; i < q85.length; i++) if (Math.abs(stored[i] * 255 - q85[i]) > 1e-3) wrong++;
    for (let i = 0; i < plain.length; i++) if (Math.abs(plain[i] * 255 - Math.round(plain[i] * 255)) < 1e-3) integral++;
    expect(wrong).toBe(0); // contrast then the stage: the released file's pixels, bit for bit
    expect(integral / plain.length).toBeLessThan(0.1); // without it: floats, no 8-bit step
  }, 120_000);
});
