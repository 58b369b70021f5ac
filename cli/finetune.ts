// `npx cnnlab finetune`: fine-tune a registered model on an ImageFolder (or, without --train, on
// the held-out synthetic classes that `cnnlab transfer` uses, with its test images) with a new head
// (docs/finetune.md): BiT-HyperRule or cosine with warm-up, GPU augmentation, checkpoints in the
// model's timm/torchvision names every N steps and at the end, `--resume` after a kill, VTAB-1k's
// 800/200 check and 1000 refit, evaluation on val/test, and the results in the run folder's
// summary.json (`finetune`) and report.html beside the robustness and transfer results.
//
// The training step itself is a TrainerLike (eval/finetune/types.ts): engine/train.ts's Trainer,
// made by makeTrainer below (tests may pass a plain-TS one).

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { createDevice, type Device } from '../engine/device.js';
import { openSafetensorsPath } from '../engine/safetensors.js';
import { Trainer } from '../engine/train.js';
import { type Dataset, itemLocation, scanImageFolder } from '../eval/data.js';
import { decodeImageFile } from '../eval/decode-node.js';
import { protocolPhases, type PhasePlan } from '../eval/finetune/data.js';
import { type Decode, evalPreprocess, imageEvalFeed, imageTrainFeed } from '../eval/finetune/feed.js';
import { buildFinetuneModel, type FinetuneModel } from '../eval/finetune/model.js';
import { type EvalFeed, finetuneLoop, FINAL_WEIGHTS, STATE_FILE } from '../eval/finetune/run.js';
import {
  bitHyperRule,
  bitResolution,
  cosineRecipe,
  type Recipe,
  SCHEDULE_KINDS,
  type ScheduleKind,
} from '../eval/finetune/schedule.js';
import { bestOf, finalOf, type FinetunePhaseSummary, type FinetuneSummary } from '../eval/finetune/summary.js';
import type { TrainerLike } from '../eval/finetune/types.js';
import { folderKey } from '../eval/provenance.js';
import { SYNTH_HELDOUT_TEST_PER_CLASS, synthClassDataset, synthHeldoutKey } from '../eval/sources.js';
import { SYNTH_HELDOUT_CLASSES } from '../eval/synth.js';
import { renderRobustnessReport } from '../eval/report.js';
import type { Summary } from '../eval/summary-schema.js';
import { getModel, type ModelDef, resizeTarget } from '../models/registry.js';
import { int, oneOf, parseCommand, readChartJs, resolveWeights } from './common.js';

/** Makes the trainer of one fine-tuning phase: the forward graph, what to train and how. */
export type MakeTrainer = (device: Device, model: FinetuneModel, recipe: Recipe) => Promise<TrainerLike>;

/**
 * The WebGPU trainer: forward, backward and the optimiser update as one command buffer
 * (engine/train.ts). Targets arrive already smoothed and mixed (eval/finetune/feed.ts), so the
 * trainer adds no label smoothing of its own; BatchNorm trains with batch statistics as in
 * PyTorch's train mode.
 */
export const makeTrainer: MakeTrainer = (device, model, recipe) =>
  Trainer.create(device, model.graph, {
    logits: model.logits,
    trainable: model.trainable,
    optimizer: recipe.optimizer,
    clipNorm: recipe.clipNorm,
    labelSmoothing: 0,
    batchNorm: 'train',
  });

const num = (name: string, v: string | undefined, lo: number, hi = Number.POSITIVE_INFINITY) => {
  const x = Number(v);
  if (v === undefined || !Number.isFinite(x) || x < lo || x > hi)
    throw new Error(`--${name} must be a number in [${lo}, ${hi}], got ${v}`);
  return x;
};

/** The median height and width of up to 9 images spread over the dataset (BiT's resolution rule). */
async function typicalSize(ds: Dataset, decode: Decode): Promise<{ height: number; width: number }> {
  const n = ds.items.length,
    k = Math.min(9, n);
  const picks = Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
  const sizes = await Promise.all(picks.map((p) => decode(itemLocation(ds, ds.items[p].path))));
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { height: med(sizes.map((s) => s.height)), width: med(sizes.map((s) => s.width)) };
}

/** What a run trains and is evaluated on: datasets with their decoders, a key and descriptions. */
interface FinetuneData {
  train: Dataset;
  decode: Decode;
  val?: { ds: Dataset; decode: Decode };
  test?: { ds: Dataset; decode: Decode };
  /** Identifies the training data (a resume from other data is refused). */
  key: string;
  trainDesc: string;
  testDesc: string | null;
}

/** ImageFolders: classes from the training folder (sorted); val/test may hold a subset of them. */
async function folderData(
  train: string,
  val: string | undefined,
  test: string | undefined,
  decode: Decode,
): Promise<FinetuneData> {
  const trainDs = await scanImageFolder(train, { labels: 'sorted' });
  const labelMap = Object.fromEntries(trainDs.classes.map((c, i) => [c, i]));
  const other = async (dir: string | undefined, what: string) => {
    if (!dir) return undefined;
    const ds = await scanImageFolder(dir, { labels: 'sorted' });
    const missing = ds.classes.filter((c) => !(c in labelMap));
    if (missing.length)
      throw new Error(`--${what} ${dir} has classes the training folder lacks: ${missing.join(', ')}`);
    return {
      ds: await scanImageFolder(dir, { labelMap: Object.fromEntries(ds.classes.map((c) => [c, labelMap[c]])) }),
      decode,
    };
  };
  return {
    train: trainDs,
    decode,
    val: await other(val, 'val'),
    test: await other(test, 'test'),
    key: (await folderKey(train)).key,
    trainDesc: train,
    testDesc: test ?? null,
  };
}

/** Training images per held-out synthetic class when no --train folder is given (transfer's default). */
export const SYNTH_FINETUNE_PER_CLASS = 30;

/**
 * No folders: the 8 held-out synthetic classes the built-in model never saw, `perClass` training
 * images each, tested on the same test images as `cnnlab transfer` (eval/sources.ts, rendered
 * with the data seed).
 */
function synthData(perClass: number, seed: number): FinetuneData {
  const cls = [...SYNTH_HELDOUT_CLASSES];
  // Training reads each image many times: render once, keep (8 · perClass images of 150 kB).
  const train = synthClassDataset(cls, { perClass, seed, split: 'train', keep: true });
  const test = synthClassDataset(cls, { perClass: SYNTH_HELDOUT_TEST_PER_CLASS, seed, split: 'test' });
  const what = `synthetic held-out classes (${cls.length}, never seen by the built-in model)`;
  return {
    train: train.ds,
    decode: train.decode,
    test,
    key: synthHeldoutKey('train', perClass, seed),
    trainDesc: `${what}: ${perClass} train images per class, seed ${seed}`,
    testDesc: `${what}: ${SYNTH_HELDOUT_TEST_PER_CLASS} test images per class, seed ${seed}`,
  };
}

export interface FinetuneCliOptions {
  /** The trainer factory (tests pass a plain-TS one); default makeTrainer. */
  makeTrainer?: MakeTrainer;
  /** The image decoder; default sharp (eval/decode-node.ts). */
  decode?: Decode;
}

export async function finetuneCmd(argv: string[], o: FinetuneCliOptions = {}): Promise<number> {
  const { values: v } = parseCommand(argv, {
    model: { type: 'string', default: 'mobilenet_v2_synth' },
    weights: { type: 'string' },
    seed: { type: 'string', default: '0' },
    train: { type: 'string' },
    'per-class': { type: 'string' },
    val: { type: 'string' },
    test: { type: 'string' },
    schedule: { type: 'string', default: 'bit-hyperrule' },
    steps: { type: 'string' },
    batch: { type: 'string', default: '32' },
    'micro-batches': { type: 'string', default: '1' },
    lr: { type: 'string' },
    warmup: { type: 'string' },
    size: { type: 'string' },
    precrop: { type: 'string' },
    mixup: { type: 'string' },
    'label-smoothing': { type: 'string', default: '0' },
    protocol: { type: 'string', default: 'standard' },
    'allow-fewer': { type: 'boolean', default: false },
    'checkpoint-every': { type: 'string', default: '100' },
    'eval-every': { type: 'string', default: '0' },
    resume: { type: 'boolean', default: false },
    out: { type: 'string' },
  });
  const def: ModelDef = getModel(v.model!);
  if (!v.out) throw new Error('--out DIR is required');
  if (!v.train && (v.val || v.test))
    throw new Error(
      '--val/--test need --train DIR (an ImageFolder, one sub-folder per class); give none for the synthetic held-out classes',
    );
  const kind = oneOf<ScheduleKind>('schedule', v.schedule, SCHEDULE_KINDS);
  const protocol = oneOf('protocol', v.protocol, ['standard', 'vtab1k'] as const);
  if (protocol === 'vtab1k' && v.val) throw new Error('--protocol vtab1k takes its val split from --train; drop --val');
  const seed = int('seed', v.seed!, 0);
  const batch = int('batch', v.batch!);
  const micro = int('micro-batches', v['micro-batches']!);
  /** Examples per optimiser step: the lr scales with it. */
  const effective = batch * micro;
  const steps = v.steps === undefined ? undefined : int('steps', v.steps);
  if (kind === 'cosine' && steps === undefined) throw new Error('--schedule cosine needs --steps N');
  const baseLr = v.lr === undefined ? undefined : num('lr', v.lr, Number.MIN_VALUE);
  const size = v.size === undefined ? undefined : int('size', v.size);
  const checkpointEvery = int('checkpoint-every', v['checkpoint-every']!, 0);
  const evalEvery = int('eval-every', v['eval-every']!, 0);
  const build = o.makeTrainer ?? makeTrainer;

  if (v.train && v['per-class'] !== undefined)
    throw new Error('--per-class sets the synthetic training images; with --train DIR the folder says');
  const data = v.train
    ? await folderData(v.train, v.val, v.test, o.decode ?? decodeImageFile)
    : synthData(int('per-class', v['per-class'] ?? String(SYNTH_FINETUNE_PER_CLASS)), seed);
  const { train: trainDs, decode } = data;
  const K = trainDs.classes.length;
  const valDs = data.val;
  const testDs = data.test;
  const plan = protocolPhases(
    protocol,
    trainDs.items.map((it) => it.label),
    seed,
    { allowFewer: v['allow-fewer'] },
  );
  const notes = plan.note ? [plan.note] : [];

  const weightsArg = v.weights ?? (def.builtinWeights ? 'builtin' : 'random');
  const weightsPath = weightsArg === 'random' ? null : resolveWeights(def, weightsArg);
  const weights = weightsPath ? await openSafetensorsPath(weightsPath) : ('random' as const);

  // The recipe is fixed by the examples of the training phase (VTAB-1k: its 1000).
  const examples = plan.phases[plan.phases.length - 1].train.length;
  let recipe: Recipe;
  if (kind === 'bit-hyperrule') {
    const img = await typicalSize(trainDs, decode);
    recipe = bitHyperRule(examples, img, { batch: effective, steps, baseLr });
    if (size !== undefined) {
      const rule = bitResolution(img.height, img.width);
      const precrop =
        v.precrop === undefined ? Math.round((size * rule.precrop) / rule.size) : int('precrop', v.precrop);
      if (precrop < size) throw new Error(`--precrop ${precrop} is smaller than the crop --size ${size}`);
      recipe.crop = { kind: 'crop', precrop, size };
    }
    notes.push(`typical training image ${img.height}×${img.width} px`);
  } else {
    const s = size ?? def.preprocess.size;
    recipe = cosineRecipe({
      steps: steps!,
      batch: effective,
      baseLr,
      warmup: v.warmup === undefined ? undefined : int('warmup', v.warmup, 0),
      size: s,
      base: v.precrop === undefined ? resizeTarget({ ...def.preprocess, size: s }) : int('precrop', v.precrop),
    });
  }
  if (v.mixup !== undefined) recipe.mixupAlpha = num('mixup', v.mixup, 0);
  recipe.labelSmoothing = num('label-smoothing', v['label-smoothing'], 0, 0.999);

  const out = v.out;
  mkdirSync(out, { recursive: true });
  const trainKey = data.key;
  const device = await createDevice();
  const phases: FinetunePhaseSummary[] = [];
  try {
    for (const ph of plan.phases) phases.push(await runPhase(ph));
  } finally {
    device.destroy();
  }

  async function runPhase(ph: PhasePlan): Promise<FinetunePhaseSummary> {
    const model = await buildFinetuneModel(def, {
      weights,
      seed,
      classes: K,
      batch,
      size: recipe.crop.size,
      zeroHead: recipe.zeroHead,
    });
    const trainer = await build(device, model, recipe);
    if (trainer.batch !== batch || trainer.classes !== K)
      throw new Error(`the trainer takes batch ${trainer.batch} × ${trainer.classes} classes, not ${batch} × ${K}`);
    const feed = imageTrainFeed({
      device,
      ds: trainDs,
      decode,
      recipe,
      preprocess: def.preprocess,
      classes: K,
      seed,
      batch,
    });
    const ep = evalPreprocess(recipe, def.preprocess);
    const all = (ds: Dataset) => ds.items.map((_, i) => i);
    const evals: EvalFeed[] = [];
    const add = (split: 'val' | 'test', d: { ds: Dataset; decode: Decode }, positions: number[]) =>
      evals.push(imageEvalFeed({ split, device, ds: d.ds, positions, decode: d.decode, preprocess: ep }));
    if (ph.val.length) add('val', { ds: trainDs, decode }, ph.val);
    else if (valDs && ph.name !== 'check') add('val', valDs, all(valDs.ds));
    // The VTAB-1k check phase picks the schedule on its 200; the test split is for the refit.
    if (testDs && ph.name !== 'check') add('test', testDs, all(testDs.ds));

    const dir = path.join(out, 'checkpoints', ph.name);
    if (v.resume && !existsSync(path.join(dir, STATE_FILE))) {
      console.log(`${ph.name}: --resume, but ${dir} has no ${STATE_FILE}: starting at step 0`);
      notes.push(`${ph.name}: --resume found no checkpoint, started at step 0`);
    }
    const bar = new cliProgress.SingleBar(
      {
        format: `${ph.name} {bar} {value}/{total} steps | loss {loss} | lr {lr} | {ips} img/s | ETA {etaText}{evalText}`,
        hideCursor: true,
        noTTYOutput: true,
        notTTYSchedule: 15_000,
      },
      cliProgress.Presets.shades_classic,
    );
    let ips: number | null = null;
    bar.start(recipe.schedule.steps, 0, { loss: '-', lr: '-', ips: '-', etaText: '-', evalText: '' });
    try {
      const r = await finetuneLoop({
        trainer,
        schedule: recipe.schedule,
        feed,
        train: ph.train,
        microBatches: micro,
        seed,
        dataKey: `${trainKey} ${ph.name} n=${ph.train.length} batch=${batch}x${micro}`,
        evals,
        evalEvery,
        checkpointEvery,
        dir,
        resume: v.resume,
        weights: { model: def.name, requests: model.requests, mapping: def.mapping, initial: model.initial },
        onStep: (s) => {
          ips = s.imagesPerSecond;
          bar.update(s.step, {
            loss: s.loss.toFixed(4),
            lr: s.lr.toExponential(2),
            ips: s.imagesPerSecond.toFixed(1),
            etaText: `${Math.round(s.etaSeconds)} s`,
          });
        },
        onEval: (e) => bar.update({ evalText: ` | ${e.split} ${(100 * e.accuracy).toFixed(1)}% @${e.step}` }),
      });
      bar.update(r.progress.step);
      const p = r.progress;
      if (r.resumedFrom > 0) notes.push(`${ph.name}: resumed at step ${r.resumedFrom}`);
      return {
        name: ph.name,
        examples: ph.train.length,
        steps: recipe.schedule.steps,
        loss: p.loss,
        lr: p.lr,
        evals: p.evals,
        final: finalOf(p.evals, recipe.schedule.steps),
        best: bestOf(p.evals),
        checkpoint: path.relative(out, path.join(dir, FINAL_WEIGHTS)),
        images_per_s: ips,
      };
    } finally {
      bar.stop();
      feed.dispose();
      trainer.dispose();
    }
  }

  const last = phases[phases.length - 1];
  const { schedule, ...rest } = recipe;
  const ft: FinetuneSummary = {
    model: def.name,
    weights: weightsPath ? path.basename(weightsPath) : `random (seed ${seed})`,
    train: data.trainDesc,
    val: protocol === 'vtab1k' ? `200 of ${data.trainDesc} (VTAB-1k)` : (v.val ?? null),
    test: data.testDesc,
    classes: trainDs.classes,
    protocol,
    seed,
    batch,
    micro_batches: micro,
    schedule,
    recipe: rest,
    steps: last.steps,
    final: last.final,
    best: last.best,
    loss: last.loss,
    phases,
    notes,
  };
  const summaryPath = path.join(out, 'summary.json');
  const summary: Summary = existsSync(summaryPath)
    ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Summary)
    : {
        version: 1,
        model: def.name,
        weights: ft.weights,
        data: data.trainDesc,
        preprocessing: def.preprocess,
        created: new Date().toISOString(),
        shards: null,
        clean: null,
        corruptions: {},
        mce: null,
        relative_mce: null,
        sweeps: {},
        resolutions: {},
        unreadable: [],
      };
  summary.finetune = ft;
  writeFileSync(summaryPath, JSON.stringify(summary, null, 1));
  writeFileSync(path.join(out, 'report.html'), renderRobustnessReport(summary, { chartJs: readChartJs() }));

  console.log(
    `\nfine-tuned ${def.name} (${ft.weights}) on ${data.trainDesc}: ${K} classes, batch ${batch}` +
      `${micro > 1 ? ` × ${micro} micro-batches` : ''}, seed ${seed}`,
  );
  for (const p of phases) {
    const acc = (x: number | undefined) => (x === undefined ? '—' : `${(100 * x).toFixed(1)}%`);
    console.log(
      `  ${p.name}: ${p.steps} steps on ${p.examples} images, last loss ${p.loss[p.loss.length - 1]?.toFixed(4)}, ` +
        `val ${acc(p.final.val)}, test ${acc(p.final.test)}; weights ${p.checkpoint}`,
    );
  }
  console.log(`\nwrote ${summaryPath} and report.html`);
  return 0;
}
