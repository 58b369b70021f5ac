// ResNet (models/resnet.ts) against torchvision: reduced fixtures from
// tests/fixtures/make_torchvision.py run on the GPU, the registered full-size names built (not
// run) with random weights and their parameter counts, and checkpoints that do not fit.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Graph } from '../../engine/graph.js';
import { openSafetensorsPath, WeightFileError, encodeSafetensors } from '../../engine/safetensors.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { loadModel } from '../../models/index.js';
import { makeMobileNetV2 } from '../../models/mobilenetv2.js';
import { RESNET_CONFIGS, type ResNetConfig, makeResNet } from '../../models/resnet.js';
import { WeightMismatchError } from '../../models/weights.js';
import { checkFixture, fixturePath, readFixture } from './fixture.js';

/** PyTorch's parameters() count: every constant but BN running statistics. */
function paramCount(g: Graph): number {
  let n = 0;
  for (const v of g.values.values()) {
    if (v.kind === 'const' && !/\.running_(mean|var)$/.test(v.name)) n += v.shape.reduce((a, d) => a * d, 1);
  }
  return n;
}

const fixtureDef = (name: string) => makeResNet(name, readFixture(name).config as unknown as ResNetConfig);

describe('resnet fixtures (torchvision, 224×224, batch 2)', () => {
  for (const name of ['resnet_basic', 'resnet_bottleneck']) {
    it(name, async () => {
      const { maxDiff, maxRef } = await checkFixture(name, fixtureDef(name));
      console.log(`${name}: max|Δ| ${maxDiff.toExponential(2)}, max|ref| ${maxRef.toFixed(3)}`);
    });
  }
});

describe('registered resnets (random weights, built not run)', () => {
  const counts: Record<string, number> = {
    resnet18: 11_689_512,
    resnet34: 21_797_672,
    resnet50: 25_557_032,
    resnet101: 44_549_160,
    resnet152: 60_192_808,
  };
  it('lists exactly the known names', () => {
    expect(Object.keys(RESNET_CONFIGS)).toEqual(Object.keys(counts));
  });
  for (const [name, count] of Object.entries(counts)) {
    it(`${name}: ${count.toLocaleString('en')} parameters, logits [1,1000]`, async () => {
      const m = await loadModel(name, { weights: 'random' });
      expect(paramCount(m.graph)).toBe(count);
      expect(m.graph.shape(m.logits)).toEqual([1, 1000]);
      expect(m.graph.shape(m.features)).toEqual([1, RESNET_CONFIGS[name].block === 'basic' ? 512 : 2048]);
      expect(m.preprocess).toMatchObject({ size: 224, resizeMode: 'short', cropPct: 0.875, interpolation: 'bilinear' });
      // v1.5: a bottleneck's stride is on its 3×3 conv (conv2), a basic block's on conv1
      const stride = (conv: string) => m.graph.nodes.find((n) => n.name === `layer2.0.${conv}`)!.attrs.stride;
      const bottleneck = RESNET_CONFIGS[name].block === 'bottleneck';
      expect([stride('conv1'), stride('conv2')]).toEqual(
        bottleneck
          ? [
              [1, 1],
              [2, 2],
            ]
          : [
              [2, 2],
              [1, 1],
            ],
      );
    });
  }
});

describe('checkpoints that do not fit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cnnlab-resnet-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('basic-block weights for a bottleneck net: every missing conv3 named', async () => {
    const file = await openSafetensorsPath(fixturePath('resnet_basic', 'safetensors'));
    const err = await loadModel(fixtureDef('resnet_bottleneck'), { weights: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    const e = err as WeightMismatchError;
    const conv3 = e.missing.map((m) => m.name).filter((n) => n.endsWith('.conv3.weight'));
    expect(conv3).toEqual([
      'layer1.0.conv3.weight',
      'layer2.0.conv3.weight',
      'layer2.1.conv3.weight',
      'layer3.0.conv3.weight',
      'layer4.0.conv3.weight',
    ]);
    expect(e.message).toContain('\n  layer1.0.conv3.weight [32,8,1,1]\n');
    expect(e.unexpected.map((u) => u.name)).toContain('layer1.1.bn2.running_var'); // the file's layer1 has 2 blocks
    expect(e.misshaped).toContainEqual({ name: 'layer1.0.conv1.weight', expected: [8, 8, 1, 1], found: [8, 8, 3, 3] });
  });

  it('one mis-shaped tensor is named with both shapes', async () => {
    const src = await openSafetensorsPath(fixturePath('resnet_basic', 'safetensors'));
    const tensors: Record<string, HostTensor> = {};
    for (const name of src.tensors.keys()) tensors[name] = await src.read(name);
    const w = tensors['layer3.0.conv2.weight']; // [16,16,3,3] → [16,15,3,3]
    tensors['layer3.0.conv2.weight'] = { shape: [16, 15, 3, 3], data: w.data.subarray(0, 16 * 15 * 9) };
    const path = join(dir, 'misshaped.safetensors');
    writeFileSync(path, encodeSafetensors(tensors));
    const err = await loadModel(fixtureDef('resnet_basic'), { weights: await openSafetensorsPath(path) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WeightMismatchError);
    const e = err as WeightMismatchError;
    expect(e.missing).toEqual([]);
    expect(e.unexpected).toEqual([]);
    expect(e.misshaped).toEqual([{ name: 'layer3.0.conv2.weight', expected: [16, 16, 3, 3], found: [16, 15, 3, 3] }]);
    expect(e.message).toContain('layer3.0.conv2.weight: file has [16,15,3,3], model needs [16,16,3,3]');
  });

  it('a truncated file is refused when opened', async () => {
    const bytes = readFileSync(fixturePath('resnet_basic', 'safetensors'));
    const path = join(dir, 'truncated.safetensors');
    writeFileSync(path, bytes.subarray(0, bytes.length - 1000));
    const err = await openSafetensorsPath(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as Error).message).toMatch(/truncated/);
  });

  it('a MobileNetV2 checkpoint for a ResNet: no fc.weight', async () => {
    const file = await openSafetensorsPath(fixturePath('mobilenetv2_035', 'safetensors'));
    const err = await loadModel('resnet18', { weights: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightFileError);
    expect((err as Error).message).toMatch(/has no "fc\.weight", the head of resnet18.*features\.0\.0\.weight/s);
    // and the other way round
    const back = await loadModel(makeMobileNetV2('m', {}), {
      weights: await openSafetensorsPath(fixturePath('resnet_basic', 'safetensors')),
    }).catch((e: unknown) => e);
    expect((back as Error).message).toMatch(/has no "classifier\.1\.weight"/);
  });
});
