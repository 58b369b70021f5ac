// MobileNetV2 (models/mobilenetv2.ts) against torchvision: a reduced fixture from
// tests/fixtures/make_torchvision.py run on the GPU, torchvision's channel rounding, the
// registered full-size net built (not run) with random weights, and checkpoints that do not fit.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph } from '../../engine/graph.js';
import { encodeSafetensors, openSafetensorsPath, WeightFileError } from '../../engine/safetensors.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { loadModel } from '../../models/index.js';
import { NetBuilder } from '../../models/layers.js';
import { type MobileNetV2Config, makeDivisible, makeMobileNetV2 } from '../../models/mobilenetv2.js';
import { RecordingWeights, WeightMismatchError } from '../../models/weights.js';
import { checkFixture, fixturePath, readFixture } from './fixture.js';

/** PyTorch's parameters() count: every constant but BN running statistics. */
function paramCount(g: Graph): number {
  let n = 0;
  for (const v of g.values.values()) {
    if (v.kind === 'const' && !/\.running_(mean|var)$/.test(v.name)) n += v.shape.reduce((a, d) => a * d, 1);
  }
  return n;
}

const FIXTURE = 'mobilenetv2_035';
const fixtureConfig = () => readFixture(FIXTURE).config as unknown as MobileNetV2Config;

it(`${FIXTURE} (torchvision mobilenet_v2, width 0.35, table cut after the 96-channel row, 224×224, batch 2)`, async () => {
  const { maxDiff, maxRef } = await checkFixture(FIXTURE, makeMobileNetV2(FIXTURE, fixtureConfig()));
  console.log(`${FIXTURE}: max|Δ| ${maxDiff.toExponential(2)}, max|ref| ${maxRef.toFixed(4)}`);
});

describe('channel rounding (torchvision _make_divisible)', () => {
  it('rounds to the nearest multiple of 8, never below 8 or 90% of the value', () => {
    expect([4, 5.6, 11.2, 12, 22.4, 33.6, 56, 112, 1280 * 1.4].map((v) => makeDivisible(v))).toEqual([
      8, 8, 16, 16, 24, 32, 56, 112, 1792,
    ]);
  });
  // torchvision.models.mobilenet_v2(width_mult=w): sum(p.numel() for p in m.parameters())
  const counts: [number, number][] = [
    [0.25, 1_519_112],
    [0.35, 1_677_128],
    [0.5, 1_968_680],
    [0.75, 2_636_424],
    [1.3, 5_386_792],
    [1.4, 6_108_776],
  ];
  for (const [width, count] of counts) {
    it(`width ${width}: ${count.toLocaleString('en')} parameters, as torchvision`, () => {
      const b = new NetBuilder(new Graph(), new RecordingWeights()); // zeros: only the shapes matter
      const x = b.g.input('image', [1, 224, 224, 3]);
      makeMobileNetV2('m', { widthMult: width }).build(b, x, 1000);
      expect(paramCount(b.g)).toBe(count);
    });
  }
});

it('mobilenet_v2 (random weights, built not run): 3,504,872 parameters, logits [1,1000]', async () => {
  const m = await loadModel('mobilenet_v2', { weights: 'random' });
  expect(paramCount(m.graph)).toBe(3_504_872);
  expect(m.graph.shape(m.logits)).toEqual([1, 1000]);
  expect(m.graph.shape(m.features)).toEqual([1, 1280]);
  expect(m.preprocess).toMatchObject({ size: 224, resizeMode: 'short', cropPct: 0.875, interpolation: 'bilinear' });
  const node = (name: string) => m.graph.nodes.find((n) => n.name === name)!;
  // features.1 (t = 1) has no expansion: its depthwise conv is conv.0.0; the others expand first
  expect(node('features.1.conv.0.0').attrs.groups).toBe(32);
  expect(node('features.2.conv.1.0').attrs).toMatchObject({ groups: 96, stride: [2, 2] });
  expect(node('features.18.0').attrs.pad).toEqual([0, 0, 0, 0]);
  // identity shortcuts where the stride is 1 and the channels match: 10 of the 17 blocks
  expect(m.graph.nodes.filter((n) => n.op === 'add').map((n) => n.name)).toEqual(
    [3, 5, 6, 8, 9, 10, 12, 13, 15, 16].map((i) => `features.${i}.add`),
  );
});

describe('checkpoints that do not fit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cnnlab-mobilenetv2-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the fixture as the full table: blocks missing where the file has its last conv', async () => {
    const file = await openSafetensorsPath(fixturePath(FIXTURE, 'safetensors'));
    const err = await loadModel(makeMobileNetV2('m', { widthMult: 0.35 }), { weights: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    const e = err as WeightMismatchError;
    expect(e.missing.map((m) => m.name)).toContain('features.12.conv.0.0.weight');
    expect(e.missing.map((m) => m.name)).toContain('features.18.0.weight');
    expect(e.unexpected.map((u) => u.name)).toContain('features.12.0.weight');
    expect(e.message).toMatch(/does not fit m: \d+ missing, \d+ unexpected, \d+ mis-shaped/);
  });

  it('the fixture at another width: mis-shaped tensors', async () => {
    const file = await openSafetensorsPath(fixturePath(FIXTURE, 'safetensors'));
    const err = await loadModel(makeMobileNetV2('m', { ...fixtureConfig(), widthMult: 0.5 }), { weights: file }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WeightMismatchError);
    const e = err as WeightMismatchError;
    expect(e.missing).toEqual([]);
    expect(e.unexpected).toEqual([]);
    // stem: 32·0.5 = 16 channels wanted, 32·0.35 → 16 as well; features.1 projects to 8 at both
    // widths; features.2 expands 8 → 48 in the file and the model alike, then 24·0.5 → 16 vs 8
    expect(e.misshaped).toContainEqual({
      name: 'features.2.conv.2.weight',
      expected: [16, 48, 1, 1],
      found: [8, 48, 1, 1],
    });
  });

  it('one mis-shaped depthwise weight is named with both shapes', async () => {
    const src = await openSafetensorsPath(fixturePath(FIXTURE, 'safetensors'));
    const tensors: Record<string, HostTensor> = {};
    for (const name of src.tensors.keys()) tensors[name] = await src.read(name);
    const name = 'features.2.conv.1.0.weight';
    const w = tensors[name]; // a 3×3 depthwise kernel; the file now claims 5×5
    expect(w.shape).toEqual([48, 1, 3, 3]);
    tensors[name] = { shape: [48, 1, 5, 5], data: new Float32Array(48 * 25) };
    const path = join(dir, 'misshaped.safetensors');
    writeFileSync(path, encodeSafetensors(tensors));
    const err = await loadModel(makeMobileNetV2('m', fixtureConfig()), {
      weights: await openSafetensorsPath(path),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as WeightMismatchError).misshaped).toEqual([{ name, expected: [48, 1, 3, 3], found: [48, 1, 5, 5] }]);
  });

  it('a file cut inside its header or its data is refused when opened', async () => {
    const bytes = readFileSync(fixturePath(FIXTURE, 'safetensors'));
    for (const [cut, msg] of [
      [100, /header length \d+ runs past the end/],
      [bytes.length - 4, /truncated/],
    ] as const) {
      const path = join(dir, `cut${cut}.safetensors`);
      writeFileSync(path, bytes.subarray(0, cut));
      const err = await openSafetensorsPath(path).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WeightFileError);
      expect((err as Error).message).toMatch(msg);
    }
  });
});
