// Weather corruptions (snow, frost, fog, spatter): the `corrupt` node on the GPU against each
// corruption's plain-TS reference, range, determinism, batch independence, severity ordering,
// and the CPU textures.

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph, runReference } from '../../engine/graph.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { gaussianWeights, motionKernel, zoomAxis } from '../../eval/corruptions/common.js';
import { getCorruption } from '../../eval/corruptions/index.js';
import { corruptOp } from '../../eval/corruptions/op.js';
import { fogBank, frostTexture, plasmaFractal, Draws } from '../../eval/corruptions/textures.js';
import { expectClose, rand, testDevice } from '../helpers.js';

const NAMES = ['snow', 'frost', 'fog', 'spatter'] as const;

/** A smooth, image-like RGB batch in [0.05, 0.95]: sky gradient, soft blobs, texture, grain. */
function naturalImages(n: number, h: number, w: number, seed: number): HostTensor {
  const r = rand(n * 16, seed, 0, 1);
  const grain = rand(n * h * w * 3, seed + 1, -0.03, 0.03);
  const data = new Float32Array(n * h * w * 3);
  for (let b = 0; b < n; b++) {
    const q = (k: number) => r[b * 16 + k];
    for (let i = 0; i < h; i++) {
      for (let j = 0; j < w; j++) {
        const u = i / h,
          v = j / w;
        const blob1 = Math.exp(-((u - q(0)) ** 2 + (v - q(1)) ** 2) / (0.02 + 0.05 * q(2)));
        const blob2 = Math.exp(-((u - q(3)) ** 2 + (v - q(4)) ** 2) / (0.01 + 0.03 * q(5)));
        const tex = 0.08 * Math.sin(20 * u * (1 + q(6)) + 13 * v * q(7)) * Math.cos(17 * v);
        const base = [0.35 + 0.3 * (1 - u) * q(8), 0.4 + 0.25 * (1 - u), 0.5 + 0.3 * (1 - u) * q(9)];
        const tint = [q(10), q(11), q(12)];
        for (let ch = 0; ch < 3; ch++) {
          const o = ((b * h + i) * w + j) * 3 + ch;
          const val = base[ch] * (1 - 0.6 * blob1) + 0.5 * blob2 * tint[ch] + tex + grain[o];
          data[o] = Math.min(0.95, Math.max(0.05, val));
        }
      }
    }
  }
  return { shape: [n, h, w, 3], data };
}

interface Run {
  gpu: HostTensor;
  ref: HostTensor;
  ms: number;
}

/** One `corrupt` node: x and ids are graph inputs, the corruption's textures graph constants. */
async function corrupt(
  name: string,
  severity: number,
  seed: number,
  x: HostTensor,
  ids: number[],
  withRef = true,
): Promise<Run> {
  const def = getCorruption(name);
  const p = def.params[severity - 1];
  const assets = def.assets?.(p, seed, x.shape) ?? [];
  const g = new Graph();
  g.input('x', x.shape);
  g.input('ids', [ids.length]);
  const names = assets.map((a, k) => g.constant(`asset${k}`, a.shape, a.data));
  const y = g.op(corruptOp.op, ['x', 'ids', ...names], { name, severity, seed }, 'corrupt');
  g.markOutputs(y);
  const plan = await compile(await testDevice(), g);
  try {
    const t0 = performance.now();
    const { outputs } = await plan.run({ x: x.data, ids: Float32Array.from(ids) });
    const ms = performance.now() - t0;
    // the CPU interpreter runs the registered op's ref with the same constants
    const ref = withRef ? runReference(g, { x: x.data, ids: Float32Array.from(ids) })[y] : outputs[y];
    return { gpu: outputs[y], ref, ms };
  } finally {
    plan.dispose();
  }
}

function expectInRange(t: HostTensor, what: string): void {
  let lo = Infinity,
    hi = -Infinity;
  for (const v of t.data) {
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  expect(Number.isNaN(lo) || Number.isNaN(hi), `${what}: NaN`).toBe(false);
  expect(lo, `${what}: min`).toBeGreaterThanOrEqual(0);
  expect(hi, `${what}: max`).toBeLessThanOrEqual(1);
}

const meanAbsDiff = (a: HostTensor, b: HostTensor) =>
  a.data.reduce((s, v, i) => s + Math.abs(v - b.data[i]), 0) / a.data.length;

/**
 * GPU against reference: |gpu − ref| ≤ 1e-5 everywhere (measured on SwiftShader: ≤ 1.5e-7). The
 * kernels draw normals with rng_normal (eval/rng.ts), whose cos is accurate to ~1e-7, so
 * thresholded noise (snow, spatter) lands on the same side of its threshold as the reference's.
 * On another adapter a value within rounding of a threshold could still flip a blob.
 */
const TOL = { atol: 1e-5, rtol: 0 };

describe('weather corruptions: GPU against the reference', () => {
  for (const [h, w] of [
    [32, 32],
    [37, 29],
  ] as const) {
    for (const name of NAMES) {
      it(`${name} ${h}×${w}, severities 1-5`, async () => {
        const x = naturalImages(2, h, w, 7);
        for (let s = 1; s <= 5; s++) {
          const { gpu, ref } = await corrupt(name, s, 3, x, [4, 1234567]);
          expectInRange(gpu, `${name} s${s} gpu`);
          expectInRange(ref, `${name} s${s} ref`);
          expectClose(gpu, ref, TOL, `${name} severity ${s}`);
          expect(meanAbsDiff(gpu, x), `${name} s${s} changes the image`).toBeGreaterThan(1e-3);
        }
      });
    }
  }
});

describe('weather corruptions: randomness', () => {
  it('same seed is bit-identical, another seed differs, an image does not depend on its batch', async () => {
    const x2 = naturalImages(2, 32, 32, 11);
    const x1: HostTensor = { shape: [1, 32, 32, 3], data: x2.data.slice(32 * 32 * 3) };
    // spatter 2 takes the liquid path, 5 the mud path
    for (const [name, s] of [
      ['snow', 3],
      ['frost', 3],
      ['fog', 3],
      ['spatter', 2],
      ['spatter', 5],
    ] as const) {
      const a = await corrupt(name, s, 5, x2, [3, 9], false);
      const b = await corrupt(name, s, 5, x2, [3, 9], false);
      expect(Buffer.from(a.gpu.data.buffer).equals(Buffer.from(b.gpu.data.buffer)), `${name}: same seed`).toBe(true);
      const c = await corrupt(name, s, 6, x2, [3, 9], false);
      expect(meanAbsDiff(a.gpu, c.gpu), `${name}: another seed`).toBeGreaterThan(1e-3);
      // image id 9 alone, and at position 1 of a batch
      const alone = await corrupt(name, s, 5, x1, [9], false);
      expect([...alone.gpu.data], `${name}: batch independence`).toEqual([...a.gpu.data.subarray(32 * 32 * 3)]);
      // the two images of the batch got different draws
      const swapped = await corrupt(name, s, 5, x2, [9, 3], false);
      expect(meanAbsDiff(swapped.gpu, a.gpu), `${name}: ids matter`).toBeGreaterThan(1e-4);
    }
  });
});

describe('weather corruptions: severity', () => {
  // Over 4 image-like 64×64 images and ids, from the references. Mean |y − x| is what grows with
  // severity, except where the reference's own parameters do not order it, left out here:
  // snow 2 → 3 (same blend .7; the layer goes from dense and faint to sparse and bright) and
  // spatter 3 → 4 (water → mud). Frost blends y = c0·x + c1·frost with c0 = 1, .8, .7, .65, .6
  // and c1 = .4, .6, .7, .7, .75, so y − x = c1·frost − (1 − c0)·x is not ordered (for a frost
  // of mean .43 on a mid-grey image severity 1 moves pixels most); what is ordered is how much
  // of the image is left: the correlation of y with x falls at every step.
  const x = naturalImages(4, 64, 64, 21);
  const ids = Float32Array.from([0, 1, 2, 3]);
  const outputs = (name: string) => {
    const def = getCorruption(name);
    return def.params.map((p) => def.ref(p, 1, x, ids, def.assets?.(p, 1, x.shape) ?? []));
  };
  const corr = (a: HostTensor, b: HostTensor) => {
    const n = a.data.length;
    const ma = a.data.reduce((s, v) => s + v, 0) / n,
      mb = b.data.reduce((s, v) => s + v, 0) / n;
    let ab = 0,
      aa = 0,
      bb = 0;
    for (let i = 0; i < n; i++) {
      const da = a.data[i] - ma,
        db = b.data[i] - mb;
      ab += da * db;
      aa += da * da;
      bb += db * db;
    }
    return ab / Math.sqrt(aa * bb);
  };
  const increasing = (e: number[], steps: [number, number][]) => {
    for (const [a, b] of steps)
      expect(e[b - 1], `severity ${b} (${e[b - 1]}) vs ${a} (${e[a - 1]})`).toBeGreaterThan(e[a - 1]);
  };
  const chain: [number, number][] = [
    [1, 2],
    [2, 3],
    [3, 4],
    [4, 5],
  ];
  it('snow: mean |y − x|', () =>
    increasing(
      outputs('snow').map((y) => meanAbsDiff(y, x)),
      [
        [1, 2],
        [1, 3],
        [3, 4],
        [4, 5],
      ],
    ));
  it('fog: mean |y − x|', () =>
    increasing(
      outputs('fog').map((y) => meanAbsDiff(y, x)),
      chain,
    ));
  it('spatter: mean |y − x|', () =>
    increasing(
      outputs('spatter').map((y) => meanAbsDiff(y, x)),
      [
        [1, 2],
        [2, 3],
        [4, 5],
      ],
    ));
  it('frost: 1 − corr(y, x)', () =>
    increasing(
      outputs('frost').map((y) => 1 - corr(y, x)),
      chain,
    ));
});

describe('weather textures and helpers', () => {
  it('plasma fractal, fog bank and frost texture are deterministic, seeded and in [0,1]', () => {
    const draws = (seed: number) => {
      const d = new Draws(seed, 1);
      return () => d.next();
    };
    const p1 = plasmaFractal(64, 1.7, draws(1));
    expect([...p1]).toEqual([...plasmaFractal(64, 1.7, draws(1))]);
    expect(Math.min(...p1)).toBe(0);
    expect(Math.max(...p1)).toBe(1);
    const b1 = fogBank(2, 64, 2, 1);
    expect(b1.length).toBe(2 * 64 * 64);
    expect([...b1]).toEqual([...fogBank(2, 64, 2, 1)]);
    expect(meanAbsDiff({ shape: [], data: b1 }, { shape: [], data: fogBank(2, 64, 2, 2) })).toBeGreaterThan(0.05);
    const f1 = frostTexture(128, 1);
    expect(f1.length).toBe(128 * 128 * 3);
    expect([...f1]).toEqual([...frostTexture(128, 1)]);
    expect(meanAbsDiff({ shape: [], data: f1 }, { shape: [], data: frostTexture(128, 2) })).toBeGreaterThan(0.02);
    expect(Math.min(...f1)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...f1)).toBeLessThanOrEqual(1);
    // the corruptions' assets: shapes, and the same object for the same key
    const fogDef = getCorruption('fog'),
      frostDef = getCorruption('frost');
    const fa = fogDef.assets!(fogDef.params[0], 1, [2, 224, 224, 3]);
    expect(fa[0].shape).toEqual([8, 256, 256]);
    expect(fogDef.assets!(fogDef.params[0], 1, [2, 224, 224, 3])[0].data).toBe(fa[0].data);
    expect(frostDef.assets!(frostDef.params[4], 1, [1, 224, 224, 3])[0].shape).toEqual([512, 512, 3]);
  });

  it('clipped_zoom geometry, motion-blur kernel, Gaussian taps', () => {
    // scipy: crop ⌈224/z⌉ centred, zoom to round(ch·z), trim to 224
    expect(zoomAxis(224, 3)).toEqual({ top: 74, ch: 75, trim: 0, ratio: 74 / 224 });
    expect(zoomAxis(224, 2)).toEqual({ top: 56, ch: 112, trim: 0, ratio: 111 / 223 });
    expect(zoomAxis(224, 4.5)).toMatchObject({ top: 87, ch: 50, trim: 0 });
    const k = motionKernel(12, 8);
    expect(k.length).toBe(25);
    expect(k.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(k[0]).toBeGreaterThan(k[24]);
    expect(gaussianWeights(4, 4).length).toBe(33); // radius ⌊4σ + ½⌋
    expect(gaussianWeights(1.5, 4).length).toBe(13);
  });
});

describe('weather corruptions at 224×224', () => {
  it('severity 5 (and spatter 3, the water path) in range, no NaN', async () => {
    const x = naturalImages(1, 224, 224, 31);
    const times: string[] = [];
    for (const [name, s] of [
      ['snow', 5],
      ['frost', 5],
      ['fog', 5],
      ['spatter', 5],
      ['spatter', 3],
    ] as const) {
      const { gpu, ms } = await corrupt(name, s, 1, x, [17], false);
      expectInRange(gpu, `${name} ${s} at 224`);
      expect(meanAbsDiff(gpu, x)).toBeGreaterThan(1e-3);
      times.push(`${name} ${s}: ${ms.toFixed(0)} ms`);
    }
    console.log(`one 224×224 image on this adapter: ${times.join(', ')}`);
  });
});
