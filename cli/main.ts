// `npx cnnlab <command>`: each command runs in Node (Dawn) or in headless Chromium driving the
// same page a user would open (the default for the demo).

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DemoReport, formatDemo, runDemo } from '../bench/demo.js';
import { createDevice, describeDevice } from '../engine/device.js';
import { launchChromium, openPage } from './chromium.js';
import { serve } from './serve.js';

const HELP = `cnnlab: hand-written WebGPU kernels for CNN/ViT robustness and transfer studies

usage: npx cnnlab <command> [options]

commands:
  demo     run a small network with every kernel family, check it against the CPU
           reference, print what ran, how long it took and a per-kernel profile
             --runtime chrome|node   where to run (default chrome: headless Chromium, WebGPU)
             --size N --batch N      input size and batch (default 64, 1)
             --iters N               steady-state runs to time (default 5)
             --json FILE             also write the report as JSON
  info     print the WebGPU adapter Node sees
  serve    serve the page on http://localhost:PORT (--port, default 8080) for a browser
  help     this text
`;

export const WEB_ROOT = fileURLToPath(new URL('./web/', import.meta.url));

async function demo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runtime: { type: 'string', default: 'chrome' },
      size: { type: 'string', default: '64' },
      batch: { type: 'string', default: '1' },
      iters: { type: 'string', default: '5' },
      json: { type: 'string' },
    },
  });
  const opts = { size: Number(values.size), batch: Number(values.batch), iters: Number(values.iters) };
  for (const [k, v] of Object.entries(opts)) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
  const log = (s: string) => console.log(s);
  let report: DemoReport;
  if (values.runtime === 'node') {
    const device = await createDevice();
    report = await runDemo(device, { ...opts, log });
    device.destroy();
  } else if (values.runtime === 'chrome') {
    const server = await serve({ '/': WEB_ROOT });
    const browser = await launchChromium();
    try {
      log(`serving the page at ${server.url}; running in headless Chromium`);
      const page = await openPage(browser, `${server.url}/`, log);
      report = await page.evaluate(async (o) => {
        const c = window.cnnlab;
        return c.runDemo(await c.getDevice(), { ...o, log: (s: string) => window.cnnlabLog?.(s) });
      }, opts);
    } finally {
      await browser.close();
      await server.close();
    }
  } else {
    throw new Error(`--runtime must be chrome or node, got ${values.runtime}`);
  }
  console.log(`\n${formatDemo(report)}`);
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  return report.maxAbsDiff <= 1e-3 * Math.max(1, report.maxAbsRef) ? 0 : 1;
}

async function info(): Promise<number> {
  const d = await createDevice();
  console.log(describeDevice(d));
  console.log(JSON.stringify(d.info, null, 2));
  d.destroy();
  return 0;
}

async function serveCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { port: { type: 'string', default: '8080' } } });
  const s = await serve({ '/': WEB_ROOT }, Number(values.port));
  console.log(`cnnlab page at ${s.url}/ (Ctrl-C to stop)`);
  await new Promise(() => {});
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'demo': return await demo(rest);
      case 'info': return await info();
      case 'serve': return await serveCmd(rest);
      case undefined: case 'help': case '--help': case '-h':
        console.log(HELP);
        return 0;
      default:
        console.error(`unknown command "${cmd}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (process.env.CNNLAB_DEBUG) console.error(e);
    return 1;
  }
}
