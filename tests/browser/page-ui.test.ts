// The page used interactively (as in any WebGPU browser): the robustness and transfer sections
// run on the built-in model and synthetic data and show their results.

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
  // What `npx cnnlab serve` serves (the page, the vendored libraries, the built-in weights).
  // An error while the page loads leaves window.cnnlab unset, and startPage fails.
  session = await startPage(pageMounts());
  page = session.page;
  page.on('pageerror', (e) => errors.push(e.message));
  await page.waitForFunction(() => document.querySelector('#rob-model option'));
}, 60_000);

afterAll(async () => {
  await session?.close();
});

describe('the page, interactively', () => {
  it('runs a robustness evaluation with live progress and shows the report', async () => {
    await page.fill('#rob-per-class', '1');
    await page.fill('#rob-corruption-list', 'contrast');
    await page.fill('#rob-severities', '2');
    await page.click('#rob-run');
    await page.waitForFunction(() => /done|error/.test(document.getElementById('rob-progress')!.textContent!), null, {
      timeout: 240_000,
    });
    expect(await page.textContent('#rob-progress')).toMatch(/^\d+\/\d+ · [\d.]+ img\/s .* done$/);
    const report = await page.$eval('#rob-report', (f) => (f as HTMLIFrameElement).srcdoc);
    expect(report).toMatch(/mobilenet_v2_synth/);
    expect(report).toMatch(/contrast/);
    expect(await page.isEnabled('#rob-save')).toBe(true);
  }, 300_000);

  it('runs few-shot transfer to the held-out synthetic classes', async () => {
    await page.fill('#tr-per-class', '5');
    await page.fill('#tr-shots', '1,5');
    await page.click('#tr-run');
    await page.waitForFunction(
      () =>
        /shot|error/.test(document.getElementById('tr-out')!.textContent!) &&
        !(document.getElementById('tr-run') as HTMLButtonElement).disabled,
      null,
      { timeout: 240_000 },
    );
    const text = await page.textContent('#tr-out');
    expect(text).toMatch(/40 train, 160 test images, 1280 features/);
    expect(text).toMatch(/ 5-shot: [\d.]+%/);
    expect(errors).toEqual([]);
  }, 300_000);
});
