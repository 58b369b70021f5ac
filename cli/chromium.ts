// Headless Chromium for running the page: Debian's /usr/bin/chromium (which carries
// SwiftShader, so WebGPU works without a GPU) driven by playwright-core.

import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { runtimeDir } from './runtime-dir.js';

export const CHROMIUM_INSTALL = 'apt-get update && apt-get install -y chromium libvulkan1';

/** Flags for WebGPU in headless Chromium on SwiftShader. CNNLAB_CHROMIUM_FLAGS adds more (e.g. for a real GPU:
 *  "--enable-features=Vulkan --use-angle=vulkan --enable-unsafe-swiftshader=false"). */
export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--disable-dev-shm-usage',
  '--enable-features=Vulkan',
];

export function chromiumPath(): string {
  const p = process.env.CNNLAB_CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) {
    throw new Error(
      `Chromium not found at ${p}. Install Debian's chromium (it carries SwiftShader for WebGPU without a GPU):\n  ${CHROMIUM_INSTALL}\nor set CNNLAB_CHROMIUM to another Chromium binary.`,
    );
  }
  return p;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const extra = (process.env.CNNLAB_CHROMIUM_FLAGS ?? '').split(/\s+/).filter(Boolean);
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [...CHROMIUM_FLAGS, ...extra],
    env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir() },
  });
}

/** Open `url`, forward the page's console and errors to `log`, and wait for `window.cnnlab`. */
export async function openPage(browser: Browser, url: string, log: (s: string) => void = () => {}): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (m) => {
    // TFLite's runtime (LiteRT.js) prints its informational log ("INFO: Created TensorFlow Lite
    // delegate…") on stderr, which the page reports as errors: about 15 lines a model, dropped.
    // LiteRT's warnings still show, and the LiteRT peer records them in its row (bench/peers/litert.ts).
    if (m.type() === 'error' && m.text().startsWith('INFO: ')) return;
    if (m.type() === 'error' || m.type() === 'warning') log(`[page ${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => log(`[page error] ${e.message}`));
  await page.exposeFunction('cnnlabLog', (s: string) => log(s));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { cnnlab?: unknown }).cnnlab !== undefined, undefined, {
    timeout: 60_000,
  });
  return page;
}
