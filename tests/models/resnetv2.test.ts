// BiT ResNet-v2 against the PyTorch mirror of timm's ResNetV2 (tests/fixtures/make_bit.py),
// the registered names' shapes and parameter counts, and the errors a wrong file gives.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import { optimize } from '../../engine/passes.js';
import {
  type SafetensorsFile,
  WeightFileError,
  encodeSafetensors,
  openSafetensorsPath,
} from '../../engine/safetensors.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { NetBuilder, type WeightSource } from '../../models/layers.js';
import { getModel, loadModel } from '../../models/index.js';
import { RESNETV2_CONFIGS, type ResNetV2Config, makeResNetV2, resnetv2Widths } from '../../models/resnetv2.js';
import { WeightMismatchError } from '../../models/weights.js';
import { rand, testDevice } from '../helpers.js';
import { checkFixture, fixturePath, readFixture } from './fixture.js';

const fixtureDef = (name: string, cfg?: Partial<ResNetV2Config>) =>
  makeResNetV2(name, { ...(readFixture(name).config as unknown as ResNetV2Config), ...cfg });

const readFixtureTensorCount = (name: string) => {
  const bytes = readFileSync(fixturePath(name, 'safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  return Object.keys(JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as object).filter(
    (k) => k !== '__metadata__',
  ).length;
};

const constCount = (g: Graph) =>
  [...g.values.values()].filter((v) => v.kind === 'const').reduce((s, v) => s + (v.data?.length ?? 0), 0);

describe('resnetv2 (BiT) against PyTorch', () => {
  for (const name of ['bit_tiny', 'bit_tiny_wf2_s97']) {
    it(`matches the fixture ${name}`, async () => {
      const { maxDiff, maxRef } = await checkFixture(name, fixtureDef(name));
      expect(maxRef).toBeGreaterThan(0.5); // the reference logits are not trivially small
      expect(maxDiff).toBeLessThanOrEqual(1e-3 * maxRef);
    });
  }
});

/** Zeros for every request, as views of one shared buffer: counting a 388M-parameter model costs no memory. */
class ZeroWeights implements WeightSource {
  private buf = new Float32Array(0);
  get(_name: string, shape: number[]): Float32Array {
    const n = shape.reduce((a, b) => a * b, 1);
    if (n > this.buf.length) this.buf = new Float32Array(n);
    return this.buf.subarray(0, n);
  }
}

describe('resnetv2 registered names', () => {
  // timm's counts with 1000 classes, checked by make_bit.py against its mirror of timm's ResNetV2.
  const counts: Record<string, number> = {
    resnetv2_50x1_bit: 25_549_352,
    resnetv2_50x3_bit: 217_319_080,
    resnetv2_101x1_bit: 44_541_480,
    resnetv2_101x3_bit: 387_934_888,
    resnetv2_152x2_bit: 236_335_208,
  };

  it('are all registered with BiT preprocessing', () => {
    expect(Object.keys(RESNETV2_CONFIGS).sort()).toEqual(Object.keys(counts).sort());
    for (const name of Object.keys(counts)) {
      const def = getModel(name);
      expect(def.family).toBe('resnetv2');
      expect(def.preprocess).toEqual({
        size: 448,
        resizeMode: 'squash',
        cropPct: 1,
        interpolation: 'bilinear',
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
      });
    }
  });

  for (const name of ['resnetv2_50x1_bit', 'resnetv2_101x1_bit']) {
    it(`${name} builds with random weights: shapes and ${counts[name].toLocaleString('en')} parameters`, async () => {
      const m = await loadModel(name, { weights: 'random' });
      expect(m.graph.shape(m.logits)).toEqual([1, 1000]);
      expect(m.graph.shape(m.features)).toEqual([1, 2048]);
      expect(m.graph.shape('stages.3.blocks.2.add')).toEqual([1, 14, 14, 2048]); // 448 / 32
      expect(constCount(m.graph)).toBe(counts[name]);
    });
  }

  for (const name of ['resnetv2_50x3_bit', 'resnetv2_101x3_bit', 'resnetv2_152x2_bit']) {
    it(`${name} has ${counts[name].toLocaleString('en')} parameters and the right shapes`, () => {
      const cfg = RESNETV2_CONFIGS[name];
      const g = new Graph();
      const x = g.input('image', [1, 448, 448, 3]);
      const { logits, features } = getModel(name).build(new NetBuilder(g, new ZeroWeights()), x, 1000);
      const width = 2048 * cfg.wf;
      expect(g.shape(logits)).toEqual([1, 1000]);
      expect(g.shape(features)).toEqual([1, width]);
      expect(resnetv2Widths(cfg).mid[3]).toBe(width / 4);
      expect(constCount(g)).toBe(counts[name]);
    });
  }

  it('resnetv2_50x1_bit with random weights gives logits of order 1 (64×64 input)', async () => {
    const m = await loadModel('resnetv2_50x1_bit', { weights: 'random', size: 64, batch: 2 });
    const plan = await compile(await testDevice(), optimize(m.graph).graph);
    try {
      const { outputs } = await plan.run({ image: rand(2 * 3 * 64 * 64, 5) }, { outputs: [m.logits] });
      const l = outputs[m.logits].data;
      const rms = Math.sqrt(l.reduce((s, v) => s + v * v, 0) / l.length);
      expect(l.every(Number.isFinite)).toBe(true);
      expect(rms).toBeGreaterThan(0.1);
      expect(rms).toBeLessThan(10);
    } finally {
      plan.dispose();
    }
  }, 60_000);
});

describe('resnetv2 refuses files that do not fit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cnnlab-bit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const open = (name: string) => openSafetensorsPath(fixturePath(name, 'safetensors'));

  /** The fixture's tensors, edited by `edit`, written to the temp dir and opened. */
  async function edited(name: string, edit: (t: Record<string, HostTensor>) => void): Promise<SafetensorsFile> {
    const src = await open(name);
    const tensors: Record<string, HostTensor> = {};
    for (const k of src.tensors.keys()) tensors[k] = await src.read(k);
    edit(tensors);
    const path = join(dir, `${name}-edited.safetensors`);
    writeFileSync(path, encodeSafetensors(tensors));
    return openSafetensorsPath(path);
  }

  async function mismatch(p: Promise<unknown>): Promise<WeightMismatchError> {
    const e = await p.then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(WeightMismatchError);
    return e as WeightMismatchError;
  }

  it('a deeper model than the file: lists the missing blocks', async () => {
    const e = await mismatch(
      loadModel(fixtureDef('bit_tiny', { layers: [3, 1, 1, 1] }), { weights: await open('bit_tiny'), size: 64 }),
    );
    const missing = e.missing.map((m) => m.name);
    expect(missing).toContain('stages.0.blocks.2.conv2.weight');
    expect(missing).toContain('stages.0.blocks.2.norm1.bias');
    expect(missing.every((n) => n.startsWith('stages.0.blocks.2.'))).toBe(true);
    expect(missing).toHaveLength(9); // 3 convs, 3 norms × (weight, bias)
    expect(e.unexpected).toEqual([]);
    expect(e.message).toContain('stages.0.blocks.2.conv3.weight [32,8,1,1]');
  });

  it('a shallower model than the file: lists the unexpected blocks', async () => {
    const e = await mismatch(
      loadModel(fixtureDef('bit_tiny', { layers: [1, 1, 1, 1] }), { weights: await open('bit_tiny'), size: 64 }),
    );
    expect(e.missing).toEqual([]);
    expect(e.unexpected.map((u) => u.name).sort()).toEqual(
      [
        'conv1.weight',
        'conv2.weight',
        'conv3.weight',
        'norm1.bias',
        'norm1.weight',
        'norm2.bias',
        'norm2.weight',
        'norm3.bias',
        'norm3.weight',
      ].map((s) => `stages.0.blocks.1.${s}`),
    );
  });

  it('a wider model than the file: every tensor is mis-shaped', async () => {
    const e = await mismatch(
      loadModel(fixtureDef('bit_tiny', { wf: 2 }), { weights: await open('bit_tiny'), size: 64 }),
    );
    expect(e.missing).toEqual([]);
    expect(e.unexpected).toEqual([]);
    expect(e.misshaped).toHaveLength(readFixtureTensorCount('bit_tiny') - 1); // all but head.fc.bias [10]
    expect(e.misshaped[0]).toEqual({ name: 'stem.conv.weight', expected: [32, 3, 7, 7], found: [16, 3, 7, 7] });
  });

  it('another depth layout with the same widths: missing and unexpected blocks side by side', async () => {
    // bit_tiny_wf2_s97 resolves to bit_tiny's widths but has layers [1,1,2,1] instead of [2,1,1,1].
    const e = await mismatch(loadModel(fixtureDef('bit_tiny'), { weights: await open('bit_tiny_wf2_s97'), size: 64 }));
    expect(e.misshaped).toEqual([]);
    expect(e.missing.map((m) => m.name)).toContain('stages.0.blocks.1.conv1.weight');
    expect(e.unexpected.map((m) => m.name)).toContain('stages.2.blocks.1.conv1.weight');
    expect(e.message).toMatch(/9 missing, 9 unexpected, 0 mis-shaped/);
  });

  it('a ResNet-v1 (torchvision) checkpoint: names the head it lacks', async () => {
    const t = (shape: number[]): HostTensor => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    const path = join(dir, 'resnet-v1.safetensors');
    writeFileSync(
      path,
      encodeSafetensors({
        'conv1.weight': t([16, 3, 7, 7]),
        'bn1.weight': t([16]),
        'bn1.bias': t([16]),
        'bn1.running_mean': t([16]),
        'bn1.running_var': t([16]),
        'layer1.0.conv1.weight': t([8, 16, 1, 1]),
        'fc.weight': t([10, 128]),
        'fc.bias': t([10]),
      }),
    );
    const file = await openSafetensorsPath(path);
    await expect(loadModel(fixtureDef('bit_tiny'), { weights: file })).rejects.toThrow(
      /no "head\.fc\.weight".*resnetv2 checkpoint/,
    );
    // With a BiT head grafted on, the body's names are all reported at once.
    const head = await open('bit_tiny');
    const tensors: Record<string, HostTensor> = {
      'head.fc.weight': await head.read('head.fc.weight'),
      'head.fc.bias': await head.read('head.fc.bias'),
      'conv1.weight': t([16, 3, 7, 7]),
      'fc.weight': t([10, 128]),
    };
    writeFileSync(path, encodeSafetensors(tensors));
    const e = await mismatch(loadModel(fixtureDef('bit_tiny'), { weights: await openSafetensorsPath(path), size: 64 }));
    expect(e.missing.map((m) => m.name)).toContain('stem.conv.weight');
    expect(e.missing.map((m) => m.name)).toContain('stages.3.blocks.0.downsample.conv.weight');
    expect(e.unexpected.map((m) => m.name).sort()).toEqual(['conv1.weight', 'fc.weight']);
  });

  it('a mis-shaped tensor is named with both shapes', async () => {
    const file = await edited('bit_tiny', (t) => {
      const w = t['stages.1.blocks.0.conv2.weight']; // [16, 16, 3, 3] → [16, 16, 1, 1]
      t['stages.1.blocks.0.conv2.weight'] = { shape: [16, 16, 1, 1], data: w.data.slice(0, 256) };
    });
    const e = await mismatch(loadModel(fixtureDef('bit_tiny'), { weights: file, size: 64 }));
    expect(e.missing).toEqual([]);
    expect(e.unexpected).toEqual([]);
    expect(e.misshaped).toEqual([
      { name: 'stages.1.blocks.0.conv2.weight', expected: [16, 16, 3, 3], found: [16, 16, 1, 1] },
    ]);
    expect(e.message).toContain('stages.1.blocks.0.conv2.weight: file has [16,16,1,1], model needs [16,16,3,3]');
  });

  it('a truncated file is refused when opened', async () => {
    const bytes = readFileSync(fixturePath('bit_tiny', 'safetensors'));
    const path = join(dir, 'truncated.safetensors');
    writeFileSync(path, bytes.subarray(0, bytes.length - 1000));
    await expect(openSafetensorsPath(path)).rejects.toThrow(WeightFileError);
    await expect(openSafetensorsPath(path)).rejects.toThrow(/truncated/);
  });
});
