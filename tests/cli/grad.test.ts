// `npx cnnlab grad` writes PyTorch's gradients: the resnet_basic gradient fixture
// (tests/fixtures/make_grads.py: train-mode BN, soft targets) through the command, compared by
// checkpoint name with what PyTorch autograd stored, in Node and in the page in headless Chromium
// (--runtime chrome); class-index labels become one-hot targets.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gradCmd, targetsFrom } from '../../cli/grad.js';
import { encodeNpy } from '../../engine/npy.js';
import { openSafetensorsPath } from '../../engine/safetensors.js';
import { registerModel } from '../../models/registry.js';
import { makeResNet, type ResNetConfig } from '../../models/resnet.js';
import { rand } from '../helpers.js';
import { fixturePath, readFixture } from '../models/fixture.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-grad-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = async <T>(f: () => Promise<T>): Promise<T> => {
  const log = console.log;
  console.log = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
  }
};

const meta = JSON.parse(readFileSync('tests/fixtures/grads/resnet_basic.json', 'utf8'));
const config = readFixture(meta.checkpoint).config as unknown as ResNetConfig;
registerModel(makeResNet('resnet_basic', config));
const args = ['--model', 'resnet_basic', '--weights', fixturePath(meta.checkpoint, 'safetensors')];

/** The fixture's input and soft targets as .npy files. */
function writeBatch(): { x: string; y: string } {
  const shape = meta.input.shape as number[];
  const x = path.join(dir, 'x.npy'),
    y = path.join(dir, 'y.npy');
  const n = shape.reduce((a, b) => a * b, 1);
  writeFileSync(x, encodeNpy({ shape, data: rand(n, meta.input.seed) }));
  const t = meta.targets as number[][];
  writeFileSync(y, encodeNpy({ shape: [t.length, t[0].length], data: Float32Array.from(t.flat()) }));
  return { x, y };
}

/** The file `out` against PyTorch's: the loss, the same names, every gradient within the tolerance. */
async function expectTorchGradients(out: string) {
  const [got, want] = [
    await openSafetensorsPath(out),
    await openSafetensorsPath('tests/fixtures/grads/resnet_basic.safetensors'),
  ];
  expect((await got.read('loss')).data[0]).toBeCloseTo(meta.loss, 5);
  const refNames = [...want.tensors.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
  expect([...got.tensors.keys()].filter((k) => k !== 'loss').sort()).toEqual(refNames.sort());
  for (const name of refNames) {
    const [g, r] = [await got.read(name), await want.read(`grad.${name}`)];
    expect(g.shape, name).toEqual(r.shape);
    const m = Math.max(...r.data.map(Math.abs));
    const d = Math.max(...g.data.map((v, i) => Math.abs(v - r.data[i])));
    expect(d, `${name}: max|Δ| ${d}, max|ref| ${m}`).toBeLessThanOrEqual(1e-4 * m + 1e-6);
  }
}

describe('npx cnnlab grad', () => {
  it('gives PyTorch autograd’s loss and gradients under the checkpoint’s names', async () => {
    const { x, y } = writeBatch();
    const out = path.join(dir, 'g.safetensors');
    expect(await quiet(() => gradCmd([...args, '--input', x, '--labels', y, '--out', out]))).toBe(0);
    await expectTorchGradients(out);
    await expect(gradCmd([...args, '--input', x, '--labels', x, '--out', out])).rejects.toThrow(/--labels must be/);
  }, 300_000);

  it('gives the same in the page (--runtime chrome)', async () => {
    const { x, y } = writeBatch();
    const out = path.join(dir, 'g-chrome.safetensors');
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => lines.push(s);
    try {
      const code = await gradCmd([...args, '--input', x, '--labels', y, '--out', out, '--runtime', 'chrome'], {
        preparePage: async (page) => {
          await page.evaluate((c) => window.cnnlab.registerResNet({ name: 'resnet_basic', config: c }), config);
        },
      });
      expect(code).toBe(0);
    } finally {
      console.log = log;
    }
    expect(lines.join('\n')).toMatch(/BN train, chrome: loss /);
    await expectTorchGradients(out);
  }, 300_000);

  it('turns class indices into one-hot rows and names a bad index', () => {
    const t = targetsFrom({ shape: [2], data: Float32Array.of(2, 0) }, 2, 3);
    expect(Array.from(t)).toEqual([0, 0, 1, 1, 0, 0]);
    expect(() => targetsFrom({ shape: [2], data: Float32Array.of(3, 0) }, 2, 3)).toThrow(/entry 0 is 3/);
  });
});
