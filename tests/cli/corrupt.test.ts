import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { corruptCmd } from '../../cli/corrupt.js';

describe('cnnlab corrupt', () => {
  it('writes each corruption and severity of an image as a 224×224 PNG', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cnnlab-corrupt-'));
    const img = path.join(dir, 'in.png');
    const w = 300,
      h = 240;
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px.set([x % 256, y % 256, (x * y) % 256], (y * w + x) * 3);
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(img);
    const out = path.join(dir, 'out');
    const log = console.log;
    console.log = () => {};
    try {
      expect(
        await corruptCmd([
          '--input',
          img,
          '--corruption',
          'gaussian_noise,brightness',
          '--severity',
          '1,5',
          '--out',
          out,
        ]),
      ).toBe(0);
    } finally {
      console.log = log;
    }
    for (const c of ['gaussian_noise', 'brightness']) {
      for (const s of ['1', '5']) {
        const f = path.join(out, c, s, 'in.png');
        expect(existsSync(f)).toBe(true);
        const meta = await sharp(f).metadata();
        expect([meta.width, meta.height]).toEqual([224, 224]);
      }
    }
    const a = await sharp(path.join(out, 'brightness', '1', 'in.png'))
      .raw()
      .toBuffer();
    const b = await sharp(path.join(out, 'brightness', '5', 'in.png'))
      .raw()
      .toBuffer();
    const mean = (buf: Buffer) => buf.reduce((s, v) => s + v, 0) / buf.length;
    expect(mean(b)).toBeGreaterThan(mean(a)); // brighter at severity 5
    await expect(corruptCmd(['--input', img, '--corruption', 'fog2', '--out', out])).rejects.toThrow(
      /unknown corruption "fog2"/,
    );
  }, 120_000);
});
