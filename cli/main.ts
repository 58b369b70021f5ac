// `npx cnnlab <command>`: each command runs in Node (Dawn) or in headless Chromium driving the
// same page a user would open (the default for the demo).

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type DemoReport, formatDemo, runDemo } from '../bench/demo.js';
import { createDevice, describeDevice } from '../engine/device.js';
import { encodeNpy, readNpyPath } from '../engine/npy.js';
import { encodeSafetensors, openSafetensorsPath } from '../engine/safetensors.js';
import { decodeImageFile } from '../eval/decode-node.js';
import type { HostTensor } from '../kernels/kernel.js';
import '../models/index.js';
import { getModel, listModels, randomCheckpoint } from '../models/registry.js';
import { preprocessImage } from '../models/preprocess.js';
import { type InferResult, infer, topK } from '../models/run.js';
import IMAGENET_CLASSES from '../models/imagenet-classes.json';
import { formatKernelTable } from '../bench/kernels.js';
import { PEERS, type PeerName } from '../bench/models.js';
import { formatBenchTable, formatTargets, renderReport, targetChecks } from '../bench/report.js';
import { formatTuneTable } from '../bench/tune.js';
import type { BenchJson } from '../bench/schema.js';
import { launchChromium, openPage } from './chromium.js';
import { mergeCmd, robustnessCmd } from './robustness.js';
import { transferCmd } from './transfer.js';
import { corruptCmd } from './corrupt.js';
import { serve } from './serve.js';
import { DEFAULT_TUNING_FILE, readTuningFile, tuneCmd, writeTuningFile } from './tune.js';

const HELP = `cnnlab: hand-written WebGPU kernels for CNN/ViT robustness and transfer studies

usage: npx cnnlab <command> [options]

commands:
  demo     the built-in default: a robustness run of the built-in model on the synthetic test set
           (all corruptions, sweeps, resolutions) and few-shot transfer to held-out synthetic classes,
           into --out (default out/demo): summary.json, report.html; resumes if interrupted
  engine-demo  run a small network with every kernel family, check it against the CPU
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
  bench    models against ONNX Runtime Web and TF.js in the same headless Chromium, plus kernels
             --models a,b            default resnet50,mobilenet_v2,vit_base_patch16_224
             --batch 1,8             batch sizes (default 1,8; --quick: 1)
             --peers p,q             ort-webgpu,tfjs-webgpu,ort-wasm (default all; "none" for cnnlab alone)
             --kernels               also benchmark every kernel on the models' layer shapes
             --iters N --warmup N    timed and untimed runs (default 10 and 2; --quick: 2 and 0)
             --size N                input side (default 224; --quick: 112)
             --quick                 a few minutes on a 2-core machine without a GPU
             --tuning FILE|none      tuned kernel choices (default .cnnlab-cache/tuning.json); with a table
                                     for this adapter, cnnlab runs tuned and untuned ("cnnlab-untuned")
             --tune                  tune the models' layers first (as \`tune\` does), adding to --tuning
             --out DIR               writes DIR/bench.json and DIR/report.html (required)
             --records               instead: records/s of parsing, resuming and merging results files
                                     (--sizes 1e5,1e6,1e7; files in a temporary folder, removed after)
  tune     time each layer's kernel variants on this adapter, keep the fastest (checked against the reference)
             --models a,b            default resnet50,mobilenet_v2,vit_base_patch16_224
             --size N --batch N      layer shapes to tune (default 224, 1)
             --runtime chrome|node   where (default chrome: the adapter bench uses)
             --table FILE            default .cnnlab-cache/tuning.json; rewritten after every layer
             --reps N --force        profiled runs per candidate (default 2); retune layers already in the table
             --amortize N            a candidate's compile time counts as N runs' share (default 100)
             --warm-cache            time layers with their weights cache-resident (default: caches evicted first)
             --check-runs N          then run each model whole, tuned vs heuristics, N times each (default 3; 0 skips);
                                     a model the table does not speed up gets its layers back on the heuristics
             --json FILE             also write every candidate's result
  robustness  accuracy and calibration under ImageNet-C corruptions, SI-Score sweeps and test resolutions
             --model NAME            default mobilenet_v2_synth (the built-in model, trained on the synthetic classes)
             --weights FILE|random|builtin   default builtin when the model ships weights
             --data DIR              an ImageFolder (ImageNet synset folders map to ImageNet labels);
                                     default: the built-in synthetic test set (--per-class N, default 2)
             --corruptions all|none|a,b      default all 19 (15 ImageNet-C + 4 extras)
             --severities 1-5        e.g. 1-5, 3, 1,3,5
             --sweeps size,location,rotation|none   SI-Score-style sweeps (default: all, synthetic data only)
             --resolutions a,b,c     test resolutions (default 0.75×, 1×, 1.25× the model's)
             --limit N --shard k/n   first N images; a deterministic slice (k 0-based; k=env reads $JOB_COMPLETION_INDEX)
             --batch N --seed N      batch size (default 16), corruption seed (default 0)
             --runtime chrome|node   where to run (default chrome: the page in headless Chromium; node: Dawn)
             --resume                continue the run in --out (nothing lost, nothing counted twice)
             --force-unlock          take over --out's lock left by a process that is gone
             --out DIR               results.jsonl, run.json, summary.json, report.html
  merge    combine shards: npx cnnlab merge DIR1 DIR2 … --out DIR
  corrupt  write corrupted images as PNG: --input IMAGE|FOLDER --corruption NAME|all --severity 1-5|all [--seed N] --out DIR
  transfer few-shot linear transfer / linear probe / VTAB-1k-style on frozen features
             --model NAME --weights FILE|random|builtin   as for robustness
             --train DIR --test DIR  ImageFolders (default: the synthetic held-out classes, --per-class N train images)
             --shots 1,5,10,25 --seeds 3   few-shot settings (big_vision fewshot_lsr)
             --protocol fewshot|probe|vtab1k   one or several, comma-separated (default fewshot)
             --cache DIR             feature cache (default .cnnlab-cache/features)
             --out DIR               transfer.json; also adds to DIR/summary.json and report.html
  synth    write the built-in synthetic dataset (procedural object classes on plain backgrounds)
             --out DIR               an ImageFolder: DIR/<class>/<split>-NNNNN.png
             --per-class N           images per class (default 100)
             --classes train|heldout|all   the 10 train classes (default), the held-out ones, or all
             --split train|val|test  disjoint instance seeds per split (default train)
             --size N --seed N       image side (default 224), seed (default 0)
             --cutouts               instead: RGBA cut-outs + backgrounds (DIR/foregrounds/<class>/, DIR/backgrounds/)
  models   list the registered models and their preprocessing
  random-weights  write a model's seeded random weights as a timm/torchvision-style checkpoint
             --model NAME --out FILE.safetensors [--seed N] [--classes N]
  info     print the WebGPU adapter Node sees
  serve    serve the page on http://localhost:PORT (--port, default 8080) for a browser
  help     this text
`;

// Package exports hide these files from resolve(); find them beside the packages' main files.
const resolveDist = (pkg: string, file: string) => path.join(path.dirname(createRequire(import.meta.url).resolve(pkg)), file);
const CHART_JS = resolveDist('chart.js', 'chart.umd.js');

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

async function benchCmd(argv: string[]): Promise<number> {
  if (argv.includes('--records')) return (await import('../bench/records.js')).recordsBenchCmd(argv.filter((a) => a !== '--records'));
  const { values } = parseArgs({
    args: argv,
    options: {
      models: { type: 'string', default: 'resnet50,mobilenet_v2,vit_base_patch16_224' },
      batch: { type: 'string' }, peers: { type: 'string', default: PEERS.join(',') },
      kernels: { type: 'boolean', default: false }, iters: { type: 'string' }, warmup: { type: 'string' },
      size: { type: 'string' }, quick: { type: 'boolean', default: false }, out: { type: 'string' },
      tuning: { type: 'string', default: DEFAULT_TUNING_FILE }, tune: { type: 'boolean', default: false },
    },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const quick = values.quick!;
  const tuningPath = values.tuning === 'none' ? null : values.tuning!;
  if (values.tune && !tuningPath) throw new Error('--tune needs a --tuning file to write to');
  if (tuningPath && tuningPath !== DEFAULT_TUNING_FILE && !values.tune && !existsSync(tuningPath)) {
    throw new Error(`--tuning ${tuningPath}: no such file (npx cnnlab tune --table ${tuningPath} writes one; --tuning none runs untuned)`);
  }
  const tuningFile = tuningPath ? readTuningFile(tuningPath) : undefined;
  const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);
  const int = (name: string, v: string | undefined, dflt: number, min = 1) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`);
    return n;
  };
  const models = list(values.models!);
  for (const m of models) getModel(m);
  const peers = values.peers === 'none' ? [] : list(values.peers!);
  for (const p of peers) if (!PEERS.includes(p as PeerName)) throw new Error(`unknown peer "${p}"; known: ${PEERS.join(', ')}`);
  const opts = {
    models, peers: peers as PeerName[],
    batches: values.batch ? list(values.batch).map((b) => int('batch', b, 1)) : quick ? [1] : [1, 8],
    iters: int('iters', values.iters, quick ? 2 : 10), warmup: int('warmup', values.warmup, quick ? 0 : 2, 0),
    size: int('size', values.size, quick ? 112 : 224), quick, kernels: values.kernels!,
    command: `npx cnnlab bench ${argv.join(' ')}`, ortWasmPaths: '/vendor/ort/',
    tuningFile: tuningFile ?? { version: 1 as const, adapters: {} }, tune: values.tune!,
  };
  mkdirSync(values.out, { recursive: true });
  const jsonPath = path.join(values.out, 'bench.json');
  const write = (b: BenchJson) => {
    writeFileSync(jsonPath, JSON.stringify(b, null, 1));
    writeFileSync(path.join(values.out!, 'report.html'), renderReport(b, { chartJs: readFileSync(CHART_JS, 'utf8') }));
  };
  const ortDist = resolveDist('onnxruntime-web', '.');
  const server = await serve({ '/': WEB_ROOT, '/vendor/ort/': ortDist });
  const browser = await launchChromium();
  let result: BenchJson;
  try {
    const page = await openPage(browser, `${server.url}/`, (s) => console.log(s));
    await page.exposeFunction('cnnlabResult', (json: string) => write(JSON.parse(json) as BenchJson));
    await page.exposeFunction('cnnlabTuning', (json: string) => { if (tuningPath) writeTuningFile(tuningPath, JSON.parse(json)); });
    result = await page.evaluate((o) => window.cnnlab.bench(o), opts);
  } finally {
    await browser.close();
    await server.close();
  }
  write(result);
  console.log(`\n${formatBenchTable(result)}`);
  const checks = targetChecks(result);
  if (checks.length) console.log(`\ntargets (batch 1):\n${formatTargets(checks)}`);
  if (result.tune?.length) console.log(`\n${formatTuneTable(result.tune)}`);
  if (result.kernels?.length) console.log(`\n${formatKernelTable(result.kernels)}`);
  console.log(`\nwrote ${jsonPath} and ${path.join(values.out, 'report.html')}`);
  return 0;
}

async function synthCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' }, 'per-class': { type: 'string', default: '100' }, classes: { type: 'string', default: 'train' },
      split: { type: 'string', default: 'train' }, size: { type: 'string', default: '224' }, seed: { type: 'string', default: '0' },
      cutouts: { type: 'boolean', default: false },
    },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const synth = { ...(await import('../eval/synth.js')), ...(await import('../eval/synth-files.js')) };
  const classes = { train: synth.SYNTH_TRAIN_CLASSES, heldout: synth.SYNTH_HELDOUT_CLASSES, all: synth.SYNTH_CLASSES.map((_, i) => i) }[values.classes!];
  if (!classes) throw new Error(`--classes must be train, heldout or all, got ${values.classes}`);
  if (!['train', 'val', 'test'].includes(values.split!)) throw new Error(`--split must be train, val or test, got ${values.split}`);
  const perClass = Number(values['per-class']), size = Number(values.size), seed = Number(values.seed);
  for (const [k, v] of Object.entries({ 'per-class': perClass, size })) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);
  const t0 = performance.now();
  if (values.cutouts) {
    const r = await synth.writeCutouts(values.out, { classes: [...classes], perClass, size, seed });
    console.log(`wrote ${r.foregrounds.length} cut-outs and ${r.backgrounds.length} backgrounds to ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } else {
    const files = await synth.writeSynthImageFolder(values.out, { classes: [...classes], perClass, size, seed, split: values.split as 'train' });
    console.log(`wrote ${files.length} images (${classes.length} classes × ${perClass}) to ${values.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return 0;
}

function randomWeightsCmd(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string', default: '0' }, classes: { type: 'string', default: '1000' } },
  });
  if (!values.model || !values.out) throw new Error('--model and --out are required');
  const ckpt = randomCheckpoint(values.model, { seed: Number(values.seed), classes: Number(values.classes) });
  writeFileSync(values.out, encodeSafetensors(ckpt, { model: values.model, seed: String(values.seed), format: 'pt' }));
  const params = Object.values(ckpt).reduce((a, t) => a + t.data.length, 0);
  console.log(`wrote ${values.out}: ${Object.keys(ckpt).length} tensors, ${params.toLocaleString('en-US')} values`);
  return 0;
}

function modelsCmd(): number {
  for (const m of listModels()) {
    const p = m.preprocess;
    console.log(`${m.name.padEnd(24)} ${m.family.padEnd(12)} ${p.size}px ${p.resizeMode === 'squash' ? 'squash' : `crop ${p.cropPct}`} ${p.interpolation} mean ${p.mean.join('/')} std ${p.std.join('/')}`);
  }
  return 0;
}

async function mainDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { out: { type: 'string', default: 'out/demo' } } });
  const out = values.out!;
  console.log(`cnnlab demo: robustness of the built-in synthetic-class MobileNetV2, then few-shot transfer, into ${out}/\n`);
  const t0 = performance.now();
  const r = await robustnessCmd(['--out', out, '--resume']);
  if (r) return r;
  const t = await transferCmd(['--out', out, '--per-class', '10', '--shots', '1,5,10']);
  console.log(`\ndemo finished in ${((performance.now() - t0) / 1000).toFixed(0)} s; open ${path.join(out, 'report.html')}`);
  return t;
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
  const s = await serve({
    '/': WEB_ROOT, '/vendor/ort/': resolveDist('onnxruntime-web', '.'), '/vendor/chart/': resolveDist('chart.js', '.'),
    '/models/weights/': path.join(path.dirname(WEB_ROOT), '..', 'models', 'weights'),
  }, Number(values.port));
  console.log(`cnnlab page at ${s.url}/ (Ctrl-C to stop)`);
  await new Promise(() => {});
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'demo': return await mainDemo(rest);
      case 'engine-demo': return await demo(rest);
      case 'infer': return await inferCmd(rest);
      case 'models': return modelsCmd();
      case 'random-weights': return randomWeightsCmd(rest);
      case 'bench': return await benchCmd(rest);
      case 'tune': return await tuneCmd(rest, WEB_ROOT);
      case 'synth': return await synthCmd(rest);
      case 'robustness': return await robustnessCmd(rest);
      case 'merge': return await mergeCmd(rest);
      case 'corrupt': return await corruptCmd(rest);
      case 'transfer': return await transferCmd(rest);
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
