// The page's fine-tune section, interactively: the built-in model fine-tuned for 3 steps at a tiny
// crop on the synthetic held-out classes; the live chart must have received one loss point per
// step, the progress line the last step, and the test accuracy must appear. Then Stop: a longer
// run stopped after its first step ends with fewer points than steps and no accuracy. Last, the
// transfer section's folder pickers: 3 classes of tiny PNGs (odd sizes) in place of the synthetic task.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PageSession, startPage } from '../../cli/common.js';
import { pageMounts } from '../../cli/serve-page.js';

let session: PageSession;
let page: Page;
const errors: string[] = [];
const root = mkdtempSync(path.join(tmpdir(), 'cnnlab-page-ft-'));

beforeAll(async () => {
  if (!existsSync('dist/web/index.html')) execFileSync(process.execPath, ['build.mjs']);
  session = await startPage(pageMounts());
  page = session.page;
  page.on('pageerror', (e) => errors.push(e.message));
  await page.waitForFunction(() => document.querySelector('#rob-model option'));
}, 60_000);

afterAll(async () => {
  await session?.close();
  rmSync(root, { recursive: true, force: true });
});

/** An ImageFolder of `perClass` PNGs for each of 3 classes, class c bright in channel c. */
async function writeFolder(dir: string, perClass: number) {
  for (let c = 0; c < 3; c++) {
    mkdirSync(path.join(dir, `class${c}`), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const w = 21 + i,
        h = 17 + 2 * i;
      const px = Uint8Array.from({ length: w * h * 3 }, (_, k) => (k % 3 === c ? 200 : 40) + ((k * 7 + i) % 31));
      await sharp(Buffer.from(px), { raw: { width: w, height: h, channels: 3 } })
        .png()
        .toFile(path.join(dir, `class${c}`, `${i}.png`));
    }
  }
}

const idle = () =>
  page.waitForFunction(() => document.getElementById('ft-run')!.textContent === 'Start', null, { timeout: 120_000 });

describe('the page’s fine-tune section', () => {
  it('fine-tunes with a live loss chart and shows the test accuracy', async () => {
    expect(await page.inputValue('#rob-model')).toBe('mobilenet_v2_synth');
    await page.fill('#ft-steps', '3');
    await page.fill('#ft-batch', '3');
    await page.fill('#ft-size', '24');
    await page.fill('#ft-per-class', '2');
    await page.fill('#ft-test-per-class', '1');
    await page.click('#ft-run');
    expect(await page.textContent('#ft-run')).toBe('Stop');
    await idle();
    const progress = await page.textContent('#ft-progress');
    expect(progress).not.toMatch(/error/);
    expect(progress).toMatch(/^mobilenet_v2_synth .* on 8 synthetic held-out classes, 2 train and 1 test images each/);
    expect(progress).toMatch(/\nstep 3\/3 · loss \d+\.\d{4} · lr [\d.]+e-\d+ · [\d.]+ img\/s · ETA 0 s$/);
    expect(await page.getAttribute('#ft-chart', 'data-points')).toBe('3');
    expect(await page.textContent('#ft-acc')).toMatch(/^test accuracy \d+\.\d% on 8 images after 3 steps$/);
    expect(errors).toEqual([]);
  }, 120_000);

  it('stops after the step in flight', async () => {
    await page.fill('#ft-steps', '50');
    await page.click('#ft-run');
    await page.waitForFunction(() => document.getElementById('ft-chart')!.dataset.points === '1', null, {
      timeout: 60_000,
    });
    await page.click('#ft-run');
    await idle();
    expect(await page.textContent('#ft-progress')).toMatch(/step \d+\/50 .* · stopped after step \d+$/);
    expect(Number(await page.getAttribute('#ft-chart', 'data-points'))).toBeLessThan(50);
    expect(await page.textContent('#ft-acc')).toBe('');
  }, 120_000);

  it('fine-tunes on the folders picked in the transfer section', async () => {
    await writeFolder(path.join(root, 'train'), 3);
    await writeFolder(path.join(root, 'test'), 1);
    await page.setInputFiles('#tr-train', path.join(root, 'train'));
    await page.setInputFiles('#tr-test', path.join(root, 'test'));
    await page.fill('#ft-steps', '2');
    await page.click('#ft-run');
    await idle();
    const progress = await page.textContent('#ft-progress');
    expect(progress).toMatch(/ on 3 classes, 9 train and 3 test images: bit-hyperrule, 2 steps of 3\n/);
    expect(progress).toMatch(/\nstep 2\/2 · /);
    expect(await page.getAttribute('#ft-chart', 'data-points')).toBe('2');
    expect(await page.textContent('#ft-acc')).toMatch(/^test accuracy \d+\.\d% on 3 images after 2 steps$/);
    expect(errors).toEqual([]);
  }, 120_000);
});
