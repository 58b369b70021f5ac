// `npx cnnlab <command>`: each command runs in Node (Dawn) or in headless Chromium driving the
// same page a user would open (the default for the demo). This file reads the command and hands
// over to the command's file; cli/common.ts holds what the commands share.

import { benchCmd } from './bench.js';
import { WEB_ROOT } from './common.js';
import { corruptCmd } from './corrupt.js';
import { demoCmd } from './demo.js';
import { engineDemoCmd } from './engine-demo.js';
import { finetuneCmd } from './finetune.js';
import { gradCmd } from './grad.js';
import { inferCmd } from './infer.js';
import { infoCmd } from './info.js';
import { modelsCmd, randomWeightsCmd } from './models.js';
import { mergeCmd, robustnessCmd } from './robustness.js';
import { ensureRuntimeDir } from './runtime-dir.js';
import { serveCmd } from './serve-page.js';
import { studyCmd } from './study.js';
import { synthCmd } from './synth.js';
import { transferCmd } from './transfer.js';
import { tuneCmd } from './tune.js';

const HELP = `cnnlab: hand-written WebGPU kernels for CNN/ViT robustness and transfer studies

usage: npx cnnlab <command> [options]

commands:
  demo     the built-in default: a robustness run of the built-in model on the synthetic test set
           (all corruptions, sweeps, resolutions), few-shot transfer to held-out synthetic classes and
           the model fine-tuned on them (test accuracy beside k-shot transfer), into --out (default out/demo): summary.json, report.html; resumes if interrupted
  engine-demo  run a small network with every kernel family, check it against the CPU
           reference, print what ran, how long it took and a per-kernel profile
             --runtime chrome|node   where to run (default chrome: headless Chromium, WebGPU)
             --size N --batch N      input size and batch (default 64, 1)
             --iters N               steady-state runs to time (default 5)
             --json FILE             also write the report as JSON
  infer    run a model on an input
             --model NAME            a registered model (npx cnnlab models lists them)
             --model FILE.onnx       or an ONNX file (its weights inside; docs/onnx-import.md)
             --preprocess JSON|FILE  for an ONNX model: size, resizeMode, cropPct, interpolation, mean, std
                                     (default: FILE.json beside it, else ImageNet's at the file's input size)
             --weights FILE|random   a timm/torchvision .safetensors checkpoint, or seeded random weights
             --weights hf:ORG/REPO[@REV][/FILE]   from the Hugging Face Hub, cached (model and preprocessing
                                     from its config.json, so --model may be left out; docs/hub.md)
             --seed N                seed for random weights (default 0)
             --input x.npy           float32 C-order NCHW [N,3,S,S], already preprocessed
             --image f.jpg|png|webp  instead of --input: apply the model's preprocessing, print top-5
             --output y.npy          write the logits [N,classes] (float32)
             --runtime node|chrome   where to run (default node)
  bench    models against ONNX Runtime Web, TF.js and LiteRT.js in headless Chromium, plus kernels
             --models a,b            default resnet50,mobilenet_v2,vit_base_patch16_224 (FILE.onnx too)
             --preprocess JSON|FILE  for an ONNX model, as for infer
             --batch 1,8             batch sizes (default 1,8; --quick: 1)
             --size N                input side (default 224; --quick: 112)
             --iters N               timed runs (default 10; --quick: 2)
             --warmup N              untimed runs before them (default 2; --quick: 0)
             --quick                 a few minutes on a 2-core machine without a GPU
             --peers p,q             ort-webgpu,tfjs-webgpu,litert-webgpu,litert-wasm,ort-wasm,ort-wasm-1t
                                     (default all; "none" for cnnlab alone)
             --kernels               also benchmark every kernel on the models' layer shapes
             --tuning FILE|none      tuned kernel choices (default .cnnlab-cache/tuning.json); with a table
                                     for this adapter, cnnlab runs tuned and untuned ("cnnlab-untuned")
             --tune                  tune the models' layers first (as \`tune\` does), adding to --tuning
             --out DIR               writes DIR/bench.json and DIR/report.html (required)
             --train                 instead: one training step (forward, loss, backward, SGD-momentum update)
                                     of cnnlab against TF.js (--peers tfjs-webgpu|none)
             --lr X                  with --train: the learning rate (default 0.01)
             --records               instead: records/s of parsing, resuming and merging results files
                                     (in a temporary folder, removed after)
             --sizes a,b,c           with --records: the file sizes in records (default 1e5,1e6,1e7)
             --dir DIR               with --records: where the temporary folder goes (default the system's)
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
             --weights FILE|random|builtin|hf:ORG/REPO   default builtin when the model ships weights
             --data DIR              an ImageFolder (ImageNet synset folders map to ImageNet labels);
                                     default: the built-in synthetic test set (--per-class N, default 2)
             --corruptions all|none|a,b      default all 19 (15 ImageNet-C + 4 extras)
             --severities 1-5        e.g. 1-5, 3, 1,3,5
             --sweeps size,location,rotation|none   SI-Score-style sweeps (default: all, synthetic data only)
             --resolutions a,b,c     test resolutions (default 0.75×, 1×, 1.25× the model's)
             --limit N               N images sampled stratified over classes with --seed
             --shard k/n             a deterministic slice (k 0-based; k=env reads $JOB_COMPLETION_INDEX)
             --imagenet-c-protocol   store each corrupted image as the released ImageNet-C did (uint8, JPEG q85)
             --shard auto[/n]        the shard from a Slurm job array or a Kubernetes Indexed Job (deploy/README.md)
             --batch N --seed N      batch size (default 16), corruption seed (default 0)
             --runtime chrome|node   where to run (default chrome: the page in headless Chromium; node: Dawn)
             --resume                continue the run in --out (nothing lost, nothing counted twice)
             --force-unlock          take over --out's lock left by a process that is gone
             --out DIR               results.jsonl, run.json, summary.json, report.html
  merge    combine shards: npx cnnlab merge DIR1 DIR2 … --out DIR
  study    many run folders in one table and report: accuracy vs mCE, mCE vs transfer, top-1 vs test
           resolution, SI-Score sweeps side by side, ECE vs accuracy
             npx cnnlab study runs/* --out DIR   writes DIR/study.json (every point and its run) and DIR/report.html
             --skip-bad              leave out folders without a readable summary.json, with a warning
             --plan plan.json        make the plan's runs first (models × weights, resolutions, corruptions,
                                     transfer; README "Studies"), each in DIR/runs/<name>: complete ones are
                                     skipped, partial ones resumed
  corrupt  write corrupted images as PNG: --input IMAGE|FOLDER --corruption NAME|all --severity 1-5|all [--seed N] --out DIR
  transfer few-shot linear transfer / linear probe / VTAB-1k-style on frozen features
             --model NAME --weights FILE|random|builtin|hf:ORG/REPO   as for robustness
             --train DIR --test DIR  ImageFolders (default: the synthetic held-out classes, --per-class N train images)
             --shots 1,5,10,25 --seeds 3   few-shot settings (big_vision fewshot_lsr)
             --protocol fewshot|probe|vtab1k   one or several, comma-separated (default fewshot)
             --cache DIR             feature cache (default .cnnlab-cache/features)
             --out DIR               transfer.json; also adds to DIR/summary.json and report.html
  finetune fine-tune a model's whole network with a new head on an ImageFolder (docs/finetune.md)
             --model NAME --weights FILE|random|builtin   as for robustness
             --train DIR             ImageFolder to train on (the head gets one class per sub-folder);
                                     without it: the 8 held-out synthetic classes, transfer's test images
             --per-class N           without --train: training images per held-out class (default 30)
             --val DIR --test DIR    ImageFolders to evaluate on (classes a subset of --train's)
             --schedule bit-hyperrule|cosine   default bit-hyperrule (steps, lr, crops and MixUp from the rule)
             --steps N --batch N     override the rule's steps; batch (default 32; lr scales with it)
             --micro-batches M       accumulate M batches per step (effective batch M × --batch)
             --lr X                  base lr at batch 512 (BiT: 0.003; cosine: 0.01)
             --size N --precrop N    train crop and the square resize before it (default: the rule's)
             --protocol standard|vtab1k   vtab1k: 800/200 schedule check, then refit on the 1000
             --checkpoint-every N --eval-every N   default 100 and 0 (only at the end)
             --resume                continue from --out's last checkpoint, with the same result
             --seed N --out DIR      checkpoints/<phase>/*.safetensors (timm/torchvision names), summary.json, report.html
  grad     the loss and every parameter's gradient for one batch, in the checkpoint's names and layouts
             --model NAME --weights FILE|random|builtin|hf:ORG/REPO
             --input x.npy           NCHW [N,3,S,S], preprocessed (as infer's --input)
             --labels y.npy          [N] class indices or [N,K] target probabilities
             --bn train|frozen       BatchNorm with batch statistics (default, as fine-tuning) or running ones
             --out g.safetensors     every gradient under its checkpoint name, plus 'loss'
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

/** A command's part of HELP: its line and the indented lines under it (`npx cnnlab <command> --help`). */
function commandHelp(cmd: string): string {
  const lines = HELP.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`  ${cmd} `));
  if (start < 0) throw new Error(`HELP has no section for the command "${cmd}"`);
  const end = lines.findIndex((l, i) => i > start && !l.startsWith('   '));
  return lines.slice(start, end).join('\n');
}

const COMMANDS: Record<string, (argv: string[]) => number | Promise<number>> = {
  demo: demoCmd,
  'engine-demo': engineDemoCmd,
  infer: inferCmd,
  bench: benchCmd,
  tune: (argv) => tuneCmd(argv, WEB_ROOT),
  robustness: robustnessCmd,
  merge: mergeCmd,
  study: studyCmd,
  corrupt: corruptCmd,
  transfer: transferCmd,
  finetune: finetuneCmd,
  grad: gradCmd,
  synth: synthCmd,
  models: modelsCmd,
  'random-weights': randomWeightsCmd,
  info: infoCmd,
  serve: serveCmd,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(HELP);
    return 0;
  }
  const run = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!run) {
    const commands = [...Object.keys(COMMANDS), 'help'].join(', ');
    console.error(`error: unknown command "${cmd}"; commands: ${commands} (npx cnnlab help describes them)`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(commandHelp(cmd));
    return 0;
  }
  // Chromium and Dawn probe for a display and complain into the terminal without it (cli/runtime-dir.ts).
  ensureRuntimeDir();
  try {
    return await run(rest);
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    if (process.env.CNNLAB_DEBUG) console.error(e);
    return 1;
  }
}
