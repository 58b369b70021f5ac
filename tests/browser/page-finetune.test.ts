// The page's fine-tune section, interactively: the built-in model fine-tuned for 3 steps at a tiny
// crop on the synthetic held-out classes; the live chart must have received one loss point per
// step, the progress line the last step, and the test accuracy must appear. Then Stop: a longer
// run stopped after its first step ends with fewer points than steps and no accuracy.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PageSession, startPage } from '../../cli/common.js';
import { pageMounts } from '../../cli/serve-page.js';

let session: PageSession;
let page: Page;
const errors: string[] = [];

beforeAll(async () => {
  if (!existsSync('dist/web/index.html')) execFileSync(process.execPath, ['build.mjs']);
  session = await startPage(pageMounts());
  page = session.page;
  page.on('pageerror', (e) => errors.push(e.message));
  await page.waitForFunction(() => document.querySelector('#rob-model option'));
}, 60_000);

afterAll(async () => {
  await session?.close();
});

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
    expect(progress).toMatch(/^step 3\/3 · loss \d+\.\d{4} · lr [\d.]+e-\d+ · [\d.]+ img\/s · ETA 0 s$/);
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
});
