import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Graph } from '../../engine/graph.js';
import { WeightFileError, encodeSafetensors, openSafetensorsPath } from '../../engine/safetensors.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { NetBuilder } from '../../models/layers.js';
import { type ModelDef, getModel, loadModel } from '../../models/registry.js';
import { resampleBicubic, resamplePosEmbed } from '../../models/resample.js';
import { VIT_CONFIGS, type ViTConfig, makeViT } from '../../models/vit.js';
import { RecordingWeights, WeightMismatchError } from '../../models/weights.js';
import { rand } from '../helpers.js';
import { checkFixture, fixturePath, readFixture } from './fixture.js';

const fixtureDef = (name: string) => makeViT(name, readFixture(name).config as unknown as ViTConfig);

describe('ViT against the PyTorch mirror of timm', () => {
  it.each(['vit_small_test', 'vit_p32_test'])('%s at 224', async (name) => {
    const r = await checkFixture(name, fixtureDef(name));
    console.log(`${name}: max|Δ| ${r.maxDiff.toExponential(2)}, max|ref| ${r.maxRef.toFixed(3)}`);
  });

  it.each(['vit_small_test_288', 'vit_small_test_160'])(
    '%s: the 224 weights with pos_embed resampled',
    async (name) => {
      const meta = readFixture(name);
      const r = await checkFixture(name, makeViT(meta.weights!, meta.config as unknown as ViTConfig));
      console.log(`${name}: max|Δ| ${r.maxDiff.toExponential(2)}, max|ref| ${r.maxRef.toFixed(3)}`);
    },
  );
});

describe('resampleBicubic', () => {
  it('by hand: [0, 1] → 4 wide overshoots as Keys A = −0.75 with clamped borders', () => {
    // dst 0: src −0.25, taps (0,0,0,1) with weights cc2(1.75), cc1(0.75), cc1(0.25), cc2(1.25).
    const out = resampleBicubic(Float32Array.from([0, 1]), 1, 1, 2, 1, 4);
    expect([...out]).toEqual([-0.10546875, 0.2265625, 0.7734375, 1.10546875]);
    // Channels stay apart (channels-last), a constant stays constant, the same size is the identity.
    const two = resampleBicubic(Float32Array.from([0, 5, 1, 5]), 2, 1, 2, 1, 4);
    expect([...two]).toEqual([-0.10546875, 5, 0.2265625, 5, 0.7734375, 5, 1.10546875, 5]);
    const x = rand(3 * 4 * 5, 1);
    expect([...resampleBicubic(x, 3, 4, 5, 4, 5)]).toEqual([...x]);
  });

  it('matches F.interpolate(mode=bicubic, align_corners=False) with and without antialias', () => {
    const fx = JSON.parse(readFileSync(fixturePath('resample_bicubic', 'json'), 'utf8')) as {
      cases: {
        channels: number;
        inH: number;
        inW: number;
        outH: number;
        outW: number;
        antialias: boolean;
        input: number[];
        output: number[];
      }[];
    };
    expect(fx.cases.length).toBeGreaterThanOrEqual(8);
    for (const c of fx.cases) {
      const got = resampleBicubic(Float32Array.from(c.input), c.channels, c.inH, c.inW, c.outH, c.outW, {
        antialias: c.antialias,
      });
      const what = `${c.inH}×${c.inW}×${c.channels} → ${c.outH}×${c.outW} antialias ${c.antialias}`;
      expect(got.length, what).toBe(c.output.length);
      c.output.forEach((v, i) =>
        expect(Math.abs(got[i] - v), `${what} [${i}]`).toBeLessThanOrEqual(1e-5 + 1e-5 * Math.abs(v)),
      );
    }
  });

  it('resamplePosEmbed keeps the class token, resamples the grid, and checks its input', () => {
    const D = 3,
      pos = rand((1 + 4 * 4) * D, 2);
    expect(resamplePosEmbed(pos, D, 4)).toBe(pos);
    const out = resamplePosEmbed(pos, D, 6);
    expect(out.length).toBe((1 + 36) * D);
    expect([...out.subarray(0, D)]).toEqual([...pos.subarray(0, D)]);
    expect([...out.subarray(D)]).toEqual([...resampleBicubic(pos.subarray(D), D, 4, 4, 6, 6)]);
    expect(() => resamplePosEmbed(rand(12 * D, 3), D, 4)).toThrow(/square grid/);
    expect(() => resampleBicubic(rand(5, 1), 1, 2, 2, 3, 3)).toThrow(/5 values .* 2×2×1/);
  });
});

describe('registered ViTs', () => {
  const PARAMS: Record<string, number> = {
    vit_tiny_patch16_224: 5_717_416,
    vit_small_patch16_224: 22_050_664,
    vit_base_patch16_224: 86_567_656,
    vit_base_patch32_224: 88_224_232,
    vit_large_patch16_224: 304_326_632,
  };
  const count = (g: { values: Map<string, { kind: string; shape: number[] }> }) =>
    [...g.values.values()]
      .filter((v) => v.kind === 'const')
      .reduce((s, v) => s + v.shape.reduce((a, b) => a * b, 1), 0);

  it('every name is registered with timm preprocessing', () => {
    for (const name of Object.keys(PARAMS)) {
      const d = getModel(name);
      expect(d.family).toBe('vit');
      expect(d.preprocess).toEqual({
        size: 224,
        resizeMode: 'short',
        cropPct: 0.9,
        interpolation: 'bicubic',
        mean: [0.5, 0.5, 0.5],
        std: [0.5, 0.5, 0.5],
      });
    }
    expect(Object.keys(VIT_CONFIGS).sort()).toEqual(Object.keys(PARAMS).sort());
  });

  // Random weights for all but the largest (304 M normals take ~12 s here); its count comes from a
  // dry build that records what it asks for, the same requests a checkpoint load checks.
  const RANDOM = Object.keys(PARAMS).filter((n) => n !== 'vit_large_patch16_224');
  it.each(RANDOM)('%s builds with random weights: timm parameter count and output shapes', async (name) => {
    const m = await loadModel(name, { weights: 'random' });
    const D = VIT_CONFIGS[name].dim;
    expect(count(m.graph)).toBe(PARAMS[name]);
    expect(m.graph.shape(m.logits)).toEqual([1, 1000]);
    expect(m.graph.shape(m.features)).toEqual([1, D]);
    const grid = 224 / VIT_CONFIGS[name].patch;
    expect(m.graph.shape('pos_embed')).toEqual([1, 1 + grid * grid, D]);
  });

  it('vit_large_patch16_224: timm parameter count and output shapes from a dry build', () => {
    const g = new Graph();
    const rec = new RecordingWeights();
    const x = g.input('image', [1, 224, 224, 3]);
    const { logits, features } = getModel('vit_large_patch16_224').build(new NetBuilder(g, rec), x, 1000);
    expect(rec.requests.reduce((s, r) => s + r.shape.reduce((a, b) => a * b, 1), 0)).toBe(PARAMS.vit_large_patch16_224);
    expect(count(g)).toBe(PARAMS.vit_large_patch16_224);
    expect(g.shape(logits)).toEqual([1, 1000]);
    expect(g.shape(features)).toEqual([1, 1024]);
  });

  it('at 384 the position embedding is resampled to the 24×24 grid', async () => {
    const m = await loadModel('vit_tiny_patch16_224', { weights: 'random', size: 384, batch: 2, classes: 7 });
    expect(m.graph.shape('pos_embed')).toEqual([1, 1 + 24 * 24, 192]);
    expect(m.graph.shape('cls_token.concat')).toEqual([2, 577, 192]);
    expect(m.graph.shape(m.logits)).toEqual([2, 7]);
    expect(m.preprocess.size).toBe(384);
  });

  it('an input side that is not a multiple of the patch is refused by name', async () => {
    await expect(loadModel('vit_tiny_patch16_224', { weights: 'random', size: 230 })).rejects.toThrow(
      /side 230 is not a multiple of the patch size 16/,
    );
    await expect(loadModel('vit_base_patch32_224', { weights: 'random', size: 240 })).rejects.toThrow(
      /side 240 .* patch size 32/,
    );
  });
});

describe('bad ViT weights', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cnnlab-vit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const small = readFixture('vit_small_test').config as unknown as ViTConfig;
  const open = () => openSafetensorsPath(fixturePath('vit_small_test', 'safetensors'));
  async function mismatch(def: ModelDef, file: Awaited<ReturnType<typeof open>>): Promise<WeightMismatchError> {
    try {
      await loadModel(def, { weights: file });
    } catch (e) {
      expect(e).toBeInstanceOf(WeightMismatchError);
      return e as WeightMismatchError;
    }
    throw new Error('expected a WeightMismatchError');
  }

  it('a deeper model than the checkpoint lists every missing tensor', async () => {
    const e = await mismatch(makeViT('vit_depth3', { ...small, depth: 3 }), await open());
    expect(e.missing.map((m) => m.name).sort()).toEqual([
      'blocks.2.attn.proj.bias',
      'blocks.2.attn.proj.weight',
      'blocks.2.attn.qkv.bias',
      'blocks.2.attn.qkv.weight',
      'blocks.2.mlp.fc1.bias',
      'blocks.2.mlp.fc1.weight',
      'blocks.2.mlp.fc2.bias',
      'blocks.2.mlp.fc2.weight',
      'blocks.2.norm1.bias',
      'blocks.2.norm1.weight',
      'blocks.2.norm2.bias',
      'blocks.2.norm2.weight',
    ]);
    expect(e.unexpected).toEqual([]);
    expect(e.message).toMatch(/12 missing, 0 unexpected, 0 mis-shaped/);
  });

  it('a shallower model lists the unexpected tensors', async () => {
    const e = await mismatch(makeViT('vit_depth1', { ...small, depth: 1 }), await open());
    expect(e.missing).toEqual([]);
    expect(e.unexpected.length).toBe(12);
    expect(e.unexpected.every((u) => u.name.startsWith('blocks.1.'))).toBe(true);
  });

  it("another ViT's checkpoint (patch 32, width 12) is reported as mis-shaped tensors", async () => {
    const e = await mismatch(
      makeViT('vit_small_test', small),
      await openSafetensorsPath(fixturePath('vit_p32_test', 'safetensors')),
    );
    expect(e.misshaped.map((m) => m.name)).toContain('patch_embed.proj.weight');
    expect(e.misshaped.find((m) => m.name === 'pos_embed')).toEqual({
      name: 'pos_embed',
      expected: [1, 197, 32],
      found: [1, 50, 12],
    });
  });

  it('a pos_embed for another grid is mis-shaped, naming both shapes', async () => {
    const src = await open();
    const tensors: Record<string, HostTensor> = {};
    for (const name of src.tensors.keys()) tensors[name] = await src.read(name);
    tensors.pos_embed = { shape: [1, 1 + 7 * 7, 32], data: rand(50 * 32, 4) };
    const path = join(dir, 'pos.safetensors');
    await writeFile(path, encodeSafetensors(tensors));
    const e = await mismatch(makeViT('vit_small_test', small), await openSafetensorsPath(path));
    expect(e.misshaped).toEqual([{ name: 'pos_embed', expected: [1, 197, 32], found: [1, 50, 32] }]);
    expect(e.message).toMatch(/pos_embed: file has \[1,50,32\], model needs \[1,197,32\]/);
  });

  it('a truncated file is refused', async () => {
    const bytes = readFileSync(fixturePath('vit_small_test', 'safetensors'));
    const path = join(dir, 'short.safetensors');
    await writeFile(path, bytes.subarray(0, bytes.length - 1000));
    await expect(
      (async () => loadModel(makeViT('vit_small_test', small), { weights: await openSafetensorsPath(path) }))(),
    ).rejects.toThrow(WeightFileError);
  });
});
