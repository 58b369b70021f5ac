// `npx cnnlab <command>`: each command runs in Node (Dawn) or in headless Chromium driving the
// same page a user would open (the default for the demo).

import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DemoReport, formatDemo, runDemo } from '../bench/demo.js';
import { createDevice, describeDevice } from '../engine/device.js';
import { encodeNpy, readNpyPath } from '../engine/npy.js';
import { openSafetensorsPath } from '../engine/safetensors.js';
import { decodeImageFile } from '../eval/decode-node.js';
import type { HostTensor } from '../kernels/kernel.js';
import '../models/index.js';
import { getModel, listModels } from '../models/registry.js';
import { preprocessImage } from '../models/preprocess.js';
import { type InferResult, infer, topK } from '../models/run.js';
import IMAGENET_CLASSES from '../models/imagenet-classes.json';
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
  infer    run a model on an input
             --model NAME            a registered model (npx cnnlab models lists them)
             --weights FILE|random   a timm/torchvision .safetensors checkpoint, or seeded random weights
             --seed N                seed for random weights (default 0)
             --input x.npy           float32 C-order NCHW [N,3,S,S], already preprocessed
             --image f.jpg|png|webp  instead of --input: apply the model's preprocessing, print top-5
             --output y.npy          write the logits [N,classes] (float32)
             --runtime node|chrome   where to run (default node)
  models   list the registered models and their preprocessing
  info     print the WebGPU adapter Node sees
  serve    serve the page on http://localhost:PORT (--port, default 8080) for a browser
  help     this text
`;

/** The built page: dist/web beside the CLI bundle (dist/cli.mjs), or from source (cli/main.ts in tests). */
export const WEB_ROOT = [new URL('./web/', import.meta.url), new URL('../dist/web/', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(path.join(p, 'index.html'))) ?? fileURLToPath(new URL('../dist/web/', import.meta.url));

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

async function inferCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' }, weights: { type: 'string' }, seed: { type: 'string', default: '0' },
      input: { type: 'string' }, image: { type: 'string' }, output: { type: 'string' },
      runtime: { type: 'string', default: 'node' },
    },
  });
  if (!values.model) throw new Error('--model is required (npx cnnlab models lists them)');
  if (!values.weights) throw new Error('--weights is required: a .safetensors file or "random"');
  if (!values.input === !values.image) throw new Error('give exactly one of --input x.npy or --image file');
  const def = getModel(values.model);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const weightsPath = values.weights === 'random' ? null : path.resolve(values.weights);
  let input: HostTensor;
  if (values.input) {
    input = await readNpyPath(values.input);
  } else {
    const img = await decodeImageFile(values.image!);
    input = { shape: [1, 3, def.preprocess.size, def.preprocess.size], data: preprocessImage(img, def.preprocess) };
    console.log(`${values.image}: ${img.width}×${img.height} → ${def.preprocess.resizeMode === 'squash' ? 'squash' : 'short side'} resize, ` +
      `${def.preprocess.interpolation}, crop ${def.preprocess.size}, mean ${def.preprocess.mean.join('/')}, std ${def.preprocess.std.join('/')}`);
  }
  const log = (s: string) => console.log(s);
  let r: InferResult;
  if (values.runtime === 'node') {
    const device = await createDevice();
    r = await infer(device, {
      model: def.name, weights: weightsPath ? await openSafetensorsPath(weightsPath) : 'random', seed, input, log,
    });
    device.destroy();
  } else if (values.runtime === 'chrome') {
    const job = mkdtempSync(path.join(tmpdir(), 'cnnlab-infer-'));
    writeFileSync(path.join(job, 'input.npy'), encodeNpy(input));
    const mounts: Record<string, string> = { '/': WEB_ROOT, '/job/': job };
    if (weightsPath) mounts['/weights/'] = path.dirname(weightsPath);
    const server = await serve(mounts);
    const browser = await launchChromium();
    try {
      const page = await openPage(browser, `${server.url}/`, log);
      const res = await page.evaluate((o) => window.cnnlab.inferFromUrls(o), {
        model: def.name, seed, inputUrl: '/job/input.npy',
        weightsUrl: weightsPath ? `/weights/${encodeURIComponent(path.basename(weightsPath))}` : undefined,
      });
      r = { ...res, logits: { shape: res.logits.shape, data: new Float32Array(res.logits.data) } };
    } finally {
      await browser.close();
      await server.close();
      rmSync(job, { recursive: true, force: true });
    }
  } else {
    throw new Error(`--runtime must be node or chrome, got ${values.runtime}`);
  }
  console.log(`device: ${r.device}`);
  console.log(`input ${JSON.stringify(input.shape)} → logits ${JSON.stringify(r.logits.shape)}; compile ${r.compileMs.toFixed(0)} ms, run ${r.runMs.toFixed(1)} ms`);
  if (values.output) {
    writeFileSync(values.output, encodeNpy(r.logits));
    console.log(`wrote ${values.output}`);
  }
  if (values.image) {
    const names = r.classes === 1000 ? (IMAGENET_CLASSES as string[]) : null;
    console.log('top-5:');
    for (const t of topK(r.logits, 5)) console.log(`  ${(100 * t.p).toFixed(2).padStart(6)}%  ${t.cls}${names ? ` ${names[t.cls]}` : ''}`);
  }
  return 0;
}

function modelsCmd(): number {
  for (const m of listModels()) {
    const p = m.preprocess;
    console.log(`${m.name.padEnd(24)} ${m.family.padEnd(12)} ${p.size}px ${p.resizeMode === 'squash' ? 'squash' : `crop ${p.cropPct}`} ${p.interpolation} mean ${p.mean.join('/')} std ${p.std.join('/')}`);
  }
  return 0;
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
      case 'infer': return await inferCmd(rest);
      case 'models': return modelsCmd();
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
