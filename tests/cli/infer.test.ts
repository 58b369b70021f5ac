// `npx cnnlab infer` end to end, through the CLI's main(): both runtimes give the same logits,
// images go through the model's preprocessing, and bad inputs fail with a clear message.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main.js';
import { decodeNpy, encodeNpy } from '../../engine/npy.js';
import { expectClose, rand } from '../helpers.js';

let dir: string;
let out: string[] = [];
let err: string[] = [];

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-infer-test-'));
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

describe('cnnlab infer', () => {
  it('gives the same logits in Node and in headless Chromium', async () => {
    const x = path.join(dir, 'x.npy');
    writeFileSync(x, encodeNpy({ shape: [2, 3, 64, 64], data: rand(2 * 3 * 64 * 64, 5) }));
    const yn = path.join(dir, 'y-node.npy'),
      yc = path.join(dir, 'y-chrome.npy');
    expect(
      await run('infer', '--model', 'resnet18', '--weights', 'random', '--seed', '3', '--input', x, '--output', yn),
    ).toBe(0);
    expect(out.join('\n')).toMatch(/logits \[2,1000\]/);
    expect(
      await run(
        'infer',
        '--model',
        'resnet18',
        '--weights',
        'random',
        '--seed',
        '3',
        '--input',
        x,
        '--output',
        yc,
        '--runtime',
        'chrome',
      ),
    ).toBe(0);
    const a = await decodeNpy(readFileSync(yn)),
      b = await decodeNpy(readFileSync(yc));
    expect(a.shape).toEqual([2, 1000]);
    // Same WGSL on the same SwiftShader adapter.
    expectClose(b, a, { atol: 1e-5, rtol: 1e-5 }, 'chrome vs node');
    const spread = Math.max(...a.data) - Math.min(...a.data);
    expect(spread).toBeGreaterThan(0.1); // logits are not all equal
  });

  it('preprocesses an image and prints the top-5 with ImageNet class names', async () => {
    const img = path.join(dir, 'img.png');
    await sharp({ create: { width: 97, height: 61, channels: 3, background: { r: 200, g: 30, b: 90 } } })
      .png()
      .toFile(img);
    expect(await run('infer', '--model', 'mobilenet_v2', '--weights', 'random', '--image', img)).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/97×61 → short side resize, bilinear, crop 224/);
    expect(text).toMatch(/top-5:/);
    expect(text.split('\n').filter((l) => /^\s+\d+\.\d+%\s+\d+ \S/.test(l)).length).toBe(5);
  });

  it('refuses bad inputs with a clear message', async () => {
    const bad = path.join(dir, 'f64.npy');
    const f32 = encodeNpy({ shape: [1, 3, 8, 8], data: new Float32Array(192) });
    writeFileSync(bad, Buffer.from(Buffer.from(f32).toString('latin1').replace("'<f4'", "'<f8'"), 'latin1'));
    expect(await run('infer', '--model', 'resnet18', '--weights', 'random', '--input', bad)).toBe(1);
    expect(err.join('\n')).toMatch(/float64.*float32/);

    const x = path.join(dir, 'x3.npy');
    writeFileSync(x, encodeNpy({ shape: [1, 4, 32, 32], data: new Float32Array(4 * 32 * 32) }));
    expect(await run('infer', '--model', 'resnet18', '--weights', 'random', '--input', x)).toBe(1);
    expect(err.join('\n')).toMatch(/NCHW \[N,3,S,S\].*\[1,4,32,32\]/);

    const notImage = path.join(dir, 'broken.jpg');
    writeFileSync(notImage, 'this is not a jpeg');
    expect(await run('infer', '--model', 'resnet18', '--weights', 'random', '--image', notImage)).toBe(1);
    expect(err.join('\n')).toMatch(/broken\.jpg: cannot decode as an image/);

    expect(await run('infer', '--model', 'resnet17', '--weights', 'random', '--image', notImage)).toBe(1);
    expect(err.join('\n')).toMatch(/unknown model "resnet17"; known: .*resnet18/);

    const trunc = path.join(dir, 'trunc.safetensors');
    writeFileSync(trunc, Buffer.from([1, 2, 3]));
    expect(await run('infer', '--model', 'resnet18', '--weights', trunc, '--input', x)).toBe(1);
    expect(err.join('\n')).toMatch(/trunc\.safetensors: 3 bytes is too short/);
  });
});
