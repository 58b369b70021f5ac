// The reports' browser check, shared: write a report.html to a temporary folder, open it from
// file:// in headless Chromium, wait until the chart module has drawn (<body data-charts>), and
// return what `inspect` reads in the page with every page error and every request that left it.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromiumPath, launchChromium } from '../cli/chromium.js';

/** Whether Chromium is installed (the browser checks are skipped without it). */
export const haveChromium = (() => {
  try {
    return existsSync(chromiumPath());
  } catch {
    return false;
  }
})();

/** The real Chart.js UMD build, as the CLI inlines it. */
export function chartJsSource(): string {
  return readFileSync(join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.js'), 'utf8');
}

export interface OpenedReport<T> {
  /** Page errors and console errors. */
  errors: string[];
  /** URLs requested outside file:// (a self-contained report makes none). */
  requests: string[];
  result: T;
}

export async function openReport<T>(html: string, inspect: () => T): Promise<OpenedReport<T>> {
  const dir = mkdtempSync(join(tmpdir(), 'cnnlab-report-'));
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()}`);
    });
    const requests: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith('file:')) requests.push(r.url());
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForFunction(() => document.body.hasAttribute('data-charts'), undefined, { timeout: 10_000 });
    return { errors, requests, result: await page.evaluate(inspect) };
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
