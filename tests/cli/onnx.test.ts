// `--model FILE.onnx` through the CLI's main(), like a built-in name: infer on a torchvision
// fixture (tests/fixtures/make_onnx.py) gives PyTorch's logits in Node and in headless Chromium
// (a CNN with squeeze-and-excitation, and the ViT)
// (the page fetches the file and registers it under its path); preprocessing comes from
// --preprocess or a sidecar JSON beside the file; what does not apply to ONNX models is refused.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { decodeNpy } from '../../engine/npy.js';

const FIXTURE = 'tests/fixtures/onnx/regnety_400mf';
let dir: string;
let out: string[] = [];
let err: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-onnx-cli-'));
});

async function run(...args: string[]): Promise<number> {
  out = [];
  err = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a) => void err.push(a.join(' ')));
  try {
    return await main(args);
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('cnnlab infer --model FILE.onnx', () => {
  for (const [fixture, runtime] of [
    [FIXTURE, 'node'],
    [FIXTURE, 'chrome'],
    ['tests/fixtures/onnx/vit_b16', 'chrome'],
  ]) {
    it(`gives PyTorch's logits on ${path.basename(fixture)}'s input (--runtime ${runtime})`, async () => {
      const y = path.join(dir, `y-${runtime}.npy`);
      const args = ['--input', `${fixture}.input.npy`, '--output', y, '--runtime', runtime];
      expect(await run('infer', '--model', `${fixture}.onnx`, ...args)).toBe(0);
      expect(out.join('\n')).toMatch(/logits \[2,10\]/);
      const got = await decodeNpy(readFileSync(y));
      const want = await decodeNpy(readFileSync(`${fixture}.logits.npy`));
      const ref = Math.max(...want.data.map(Math.abs));
      const diff = Math.max(...want.data.map((v, i) => Math.abs(v - got.data[i])));
      expect(diff, `${runtime}: max|Δ| ${diff}, max|ref| ${ref}`).toBeLessThanOrEqual(1e-3 * ref);
    }, 300_000);
  }

  it('reads preprocessing from --preprocess, else from the sidecar JSON, else ImageNet defaults', async () => {
    const img = path.join(dir, 'img.png');
    await sharp({ create: { width: 90, height: 71, channels: 3, background: { r: 20, g: 130, b: 90 } } })
      .png()
      .toFile(img);
    const model = path.join(dir, 'net.onnx');
    copyFileSync(`${FIXTURE}.onnx`, model);
    expect(await run('infer', '--model', model, '--image', img)).toBe(0);
    expect(out.join('\n')).toMatch(/90×71 → short side resize, bilinear, crop 67, mean 0.485\/0.456\/0.406/);
    writeFileSync(path.join(dir, 'net.json'), JSON.stringify({ interpolation: 'bicubic', mean: [0.5, 0.5, 0.5] }));
    expect(await run('infer', '--model', model, '--image', img)).toBe(0);
    expect(out.join('\n')).toMatch(/bicubic, crop 67, mean 0.5\/0.5\/0.5/);
    expect(await run('infer', '--model', model, '--image', img, '--preprocess', '{"resizeMode":"squash"}')).toBe(0);
    expect(out.join('\n')).toMatch(/→ squash resize, bilinear, crop 67/);
    expect(out.join('\n')).toMatch(/top-5:/);
  }, 300_000);

  it('runs a robustness evaluation on an image folder (Node), the file keyed by its SHA-256', async () => {
    const data = path.join(dir, 'data');
    for (const [k, c] of ['n01440764', 'n01443537'].entries())
      for (let i = 0; i < 2; i++) {
        mkdirSync(path.join(data, c), { recursive: true });
        await sharp({
          create: { width: 70 + 9 * i, height: 67, channels: 3, background: { r: 90 * k, g: 40 * i, b: 150 } },
        })
          .png()
          .toFile(path.join(data, c, `${i}.png`));
      }
    const runDir = path.join(dir, 'rob');
    const m = `${FIXTURE}.onnx`;
    const args = ['--model', m, '--data', data, '--runtime', 'node', '--corruptions', 'contrast', '--severities', '2'];
    expect(await run('robustness', ...args, '--resolutions', '67,80', '--out', runDir)).toBe(1);
    expect(err.join('\n')).toMatch(/--resolutions 67,80: .*regnety_400mf\.onnx runs only at 67px/);
    expect(await run('robustness', ...args, '--batch', '4', '--out', runDir)).toBe(0);
    const summary = JSON.parse(readFileSync(path.join(runDir, 'summary.json'), 'utf8'));
    expect(summary.model).toBe(m);
    expect(summary.weights).toMatch(/^regnety_400mf\.onnx \(ONNX, pytorch 1\.13/);
    expect(summary.clean.n).toBe(4);
    const runJson = JSON.parse(readFileSync(path.join(runDir, 'run.json'), 'utf8'));
    expect(JSON.stringify(runJson)).toMatch(/"weights_sha256":"[0-9a-f]{64}"/);
  }, 300_000);

  it('refuses what does not apply, naming it', async () => {
    const m = `${FIXTURE}.onnx`;
    expect(await run('infer', '--model', m, '--weights', 'w.safetensors', '--input', `${FIXTURE}.input.npy`)).toBe(1);
    expect(err.join('\n')).toMatch(/carries its own weights; leave --weights out/);
    expect(await run('infer', '--model', m, '--preprocess', '{"crop":1,"size":0}', '--input', 'x.npy')).toBe(1);
    expect(err.join('\n')).toMatch(/--preprocess: unknown field "crop".*; size 0 is not a positive integer/);
    expect(await run('infer', '--model', 'resnet18', '--preprocess', '{}', '--weights', 'random')).toBe(1);
    expect(err.join('\n')).toMatch(/--preprocess applies to ONNX models/);
    expect(await run('infer', '--model', 'missing.onnx', '--input', 'x.npy')).toBe(1);
    expect(err.join('\n')).toMatch(/--model missing\.onnx: no such file/);
  });
});
