// The page used interactively (as in any WebGPU browser): the robustness and transfer sections
// run on the built-in model and synthetic data and show their results.

import { type ChildProcess, spawn } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../cli/chromium.js';

let srv: ChildProcess;
let browser: Browser;
let page: Page;
const errors: string[] = [];
const PORT = 18000 + (process.pid % 1000);

beforeAll(async () => {
  srv = spawn(process.execPath, ['bin/cnnlab.mjs', 'serve', '--port', String(PORT)], { stdio: 'ignore' });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  for (let i = 0; i < 50; i++) {
    try {
      await page.goto(`http://localhost:${PORT}/`);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  await page.waitForFunction(() => document.querySelector('#rob-model option'));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  srv?.kill();
});

describe('the page, interactively', () => {
  it('runs a robustness evaluation with live progress and shows the report', async () => {
    await page.fill('#rob-per-class', '1');
    await page.fill('#rob-corruption-list', 'contrast');
    await page.fill('#rob-severities', '2');
    await page.click('#rob-run');
    await page.waitForFunction(() => /done|error/.test(document.getElementById('rob-progress')!.textContent!), null, { timeout: 240_000 });
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
    await page.waitForFunction(() => /shot|error/.test(document.getElementById('tr-out')!.textContent!) && !(document.getElementById('tr-run') as HTMLButtonElement).disabled, null, { timeout: 240_000 });
    const text = await page.textContent('#tr-out');
    expect(text).toMatch(/40 train, 160 test images, 1280 features/);
    expect(text).toMatch(/ 5-shot: [\d.]+%/);
    expect(errors).toEqual([]);
  }, 300_000);
});
