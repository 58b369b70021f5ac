// The fine-tune section of the page (docs/finetune.md): the model picked above (its weights file,
// its built-in weights, or random) gets a new zero-initialised head and is fine-tuned on the 8
// synthetic classes it never saw (or on the train and test folders picked in the transfer
// section), with eval/finetune's loop, feeds and recipes as `npx cnnlab finetune` runs them, but
// without checkpoints (no CheckpointStore). Each step's loss goes to a live Chart.js chart; the
// end gives the test accuracy. Stop ends the run after the step in flight.

import {
  Chart,
  type ChartConfiguration,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';
import type { Device } from '../engine/device.js';
import { blobSource, openSafetensors } from '../engine/safetensors.js';
import { Trainer } from '../engine/train.js';
import { assignLabels, type Dataset } from '../eval/data.js';
import { decodeImageBlob } from '../eval/decode-browser.js';
import { evalPreprocess, type Decode, imageEvalFeed, imageTrainFeed } from '../eval/finetune/feed.js';
import { buildFinetuneModel } from '../eval/finetune/model.js';
import { type EvalFeed, finetuneLoop, type StepInfo } from '../eval/finetune/run.js';
import { bitHyperRule, bitResolution, cosineRecipe, type Recipe, SCHEDULE_KINDS } from '../eval/finetune/schedule.js';
import { renderSynthImage, SYNTH_CLASSES, SYNTH_HELDOUT_CLASSES } from '../eval/synth.js';
import { getModel, type ModelDef, resizeTarget } from '../models/registry.js';
import { PALETTE } from '../report/palette.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

Chart.register(LineController, LineElement, PointElement, LinearScale, Legend, Tooltip);

/** Thrown into the loop (from the training feed) when Stop is pressed. */
class StoppedError extends Error {
  override name = 'StoppedError';
}

/** A task: the training and test ImageFolders (as datasets) and how to decode their items. */
interface Task {
  train: Dataset;
  test: Dataset;
  decode: Decode;
  /** Side of the images, for BiT-HyperRule's resolution rule. */
  imageSize: { height: number; width: number };
  what: string;
}

/**
 * The synthetic held-out classes as ImageFolders that exist only as names: an item's location
 * `<class>/<split>-<k>` decodes by rendering that image (eval/synth.ts), at `side` pixels.
 */
function synthTask(perClass: number, testPerClass: number, side: number): Task {
  const classes = SYNTH_HELDOUT_CLASSES.map((c) => SYNTH_CLASSES[c].name);
  const ds = (split: 'train' | 'test', n: number): Dataset => ({
    root: '',
    source: 'url',
    classes,
    labelSource: 'sorted',
    items: classes.flatMap((name, label) =>
      Array.from({ length: n }, (_, k) => ({ path: `${name}/${split}-${k}`, label, classFolder: name })),
    ),
  });
  const decode: Decode = async (location) => {
    const m = /^([^/]+)\/(train|test)-(\d+)$/.exec(decodeURIComponent(location));
    const label = m ? classes.indexOf(m[1]) : -1;
    if (!m || label < 0) throw new Error(`not a synthetic held-out image: ${location}`);
    return renderSynthImage(SYNTH_HELDOUT_CLASSES[label], Number(m[3]), {
      size: side,
      seed: 0,
      split: m[2] as 'train' | 'test',
    });
  };
  return {
    train: ds('train', perClass),
    test: ds('test', testPerClass),
    decode,
    imageSize: { height: side, width: side },
    what: `${classes.length} synthetic held-out classes, ${perClass} train and ${testPerClass} test images each`,
  };
}

/** Two picked folders (<class>/<image>): classes in the train folder's sorted order, test classes among them. */
async function folderTask(trainFiles: File[], testFiles: File[]): Promise<Task> {
  const byPath = new Map<string, File>();
  const scan = (files: File[], prefix: string) => {
    const paths: string[] = [];
    for (const f of files) {
      const parts = (f.webkitRelativePath || f.name).split('/');
      if (parts.length >= 3 && /\.(jpe?g|png|webp)$/i.test(f.name)) {
        const p = `${prefix}/${parts.slice(1).join('/')}`;
        byPath.set(p, f);
        paths.push(p);
      }
    }
    return paths.sort();
  };
  const trainPaths = scan(trainFiles, 'train'),
    testPaths = scan(testFiles, 'test');
  const classOf = (p: string) => p.split('/')[1];
  const classes = [...new Set(trainPaths.map(classOf))].sort();
  if (classes.length < 2) throw new Error('the train folder needs at least 2 class sub-folders with images');
  const { labels } = assignLabels(classes, { labels: 'sorted' });
  const labelOf = new Map(classes.map((c, i) => [c, labels[i]]));
  const ds = (paths: string[]): Dataset => ({
    root: '',
    source: 'url',
    classes,
    labelSource: 'sorted',
    items: paths.map((p) => {
      const label = labelOf.get(classOf(p));
      if (label === undefined) throw new Error(`test class "${classOf(p)}" is not among the train classes`);
      return { path: p, label, classFolder: classOf(p) };
    }),
  });
  const decode: Decode = (location) => {
    const f = byPath.get(decodeURIComponent(location));
    if (!f) throw new Error(`no picked file at ${location}`);
    return decodeImageBlob(f);
  };
  const first = await decodeImageBlob(byPath.get(trainPaths[0])!);
  return {
    train: ds(trainPaths),
    test: ds(testPaths),
    decode,
    imageSize: { height: first.height, width: first.width },
    what: `${classes.length} classes, ${trainPaths.length} train and ${testPaths.length} test images`,
  };
}

/** The recipe at crop size `size`, as `npx cnnlab finetune --schedule … --size` makes it. */
function recipeFor(kind: string, def: ModelDef, task: Task, o: { steps: number; batch: number; size: number }): Recipe {
  if (kind === 'bit-hyperrule') {
    const r = bitHyperRule(task.train.items.length, task.imageSize, { batch: o.batch, steps: o.steps });
    const rule = bitResolution(task.imageSize.height, task.imageSize.width);
    r.crop = { kind: 'crop', precrop: Math.round((o.size * rule.precrop) / rule.size), size: o.size };
    return r;
  }
  if (kind === 'cosine')
    return cosineRecipe({
      steps: o.steps,
      batch: o.batch,
      size: o.size,
      base: resizeTarget({ ...def.preprocess, size: o.size }),
    });
  throw new Error(`schedule must be one of ${SCHEDULE_KINDS.join(', ')}, got ${kind}`);
}

/** The loss chart: one point per step (the loss) and the learning rate on a second axis. */
function lossChart(canvas: HTMLCanvasElement): Chart<'line', { x: number; y: number }[]> {
  Chart.getChart(canvas)?.destroy();
  const config: ChartConfiguration<'line', { x: number; y: number }[]> = {
    type: 'line',
    data: {
      datasets: [
        { label: 'loss', data: [], borderColor: PALETTE[0], backgroundColor: PALETTE[0], pointRadius: 0, yAxisID: 'y' },
        {
          label: 'learning rate',
          data: [],
          borderColor: PALETTE[1],
          backgroundColor: PALETTE[1],
          borderDash: [4, 3],
          pointRadius: 0,
          borderWidth: 1,
          yAxisID: 'lr',
        },
      ],
    },
    options: {
      animation: false,
      parsing: false,
      responsive: true,
      maintainAspectRatio: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'step' } },
        y: { min: 0, title: { display: true, text: 'training loss (cross-entropy)' } },
        lr: { position: 'right', min: 0, grid: { drawOnChartArea: false }, title: { display: true, text: 'lr' } },
      },
    },
  };
  return new Chart(canvas, config);
}

const num = (id: string, lo: number) => {
  const v = Number($<HTMLInputElement>(id).value);
  if (!Number.isInteger(v) || v < lo) throw new Error(`${id.replace(/^ft-/, '')} must be an integer ≥ ${lo}`);
  return v;
};

export function setupFinetuneUi(getDevice: () => Promise<Device>): void {
  const button = $<HTMLButtonElement>('ft-run');
  const progress = $('ft-progress'),
    acc = $('ft-acc');
  const canvas = $<HTMLCanvasElement>('ft-chart');
  let stopRequested: boolean | undefined;
  button.addEventListener('click', async () => {
    if (stopRequested === false) {
      stopRequested = true;
      button.textContent = 'Stopping…';
      button.disabled = true;
      return;
    }
    stopRequested = false;
    button.textContent = 'Stop';
    acc.textContent = '';
    progress.textContent = 'preparing…';
    canvas.dataset.points = '0';
    const chart = lossChart(canvas);
    let trainer: Trainer | undefined;
    let dispose = () => {};
    try {
      const device = await getDevice();
      const def = getModel($<HTMLSelectElement>('rob-model').value);
      const wFile = $<HTMLInputElement>('rob-weights').files?.[0];
      const weights = wFile
        ? await openSafetensors(blobSource(wFile))
        : def.builtinWeights
          ? await openSafetensors(blobSource(await (await fetch(`/${def.builtinWeights}`)).blob(), def.builtinWeights))
          : ('random' as const);
      const steps = num('ft-steps', 1),
        batch = num('ft-batch', 2),
        size = num('ft-size', 8);
      const trainFiles = [...($<HTMLInputElement>('tr-train').files ?? [])],
        testFiles = [...($<HTMLInputElement>('tr-test').files ?? [])];
      const task =
        trainFiles.length && testFiles.length
          ? await folderTask(trainFiles, testFiles)
          : synthTask(num('ft-per-class', 1), num('ft-test-per-class', 1), Math.round(size * 1.25));
      const recipe = recipeFor($<HTMLSelectElement>('ft-schedule').value, def, task, { steps, batch, size });
      const K = task.train.classes.length;
      const model = await buildFinetuneModel(def, {
        weights,
        seed: 0,
        classes: K,
        batch,
        size: recipe.crop.size,
        zeroHead: recipe.zeroHead,
      });
      // As cli/finetune.ts makeTrainer: targets arrive smoothed and mixed by the feed; BN in train mode.
      const t = await Trainer.create(device, model.graph, {
        logits: model.logits,
        trainable: model.trainable,
        optimizer: recipe.optimizer,
        clipNorm: recipe.clipNorm,
        labelSmoothing: 0,
        batchNorm: 'train',
      });
      trainer = t;
      const feed = imageTrainFeed({
        device,
        ds: task.train,
        decode: task.decode,
        recipe,
        preprocess: def.preprocess,
        classes: K,
        seed: 0,
        batch,
      });
      dispose = () => feed.dispose();
      const test: EvalFeed = imageEvalFeed({
        split: 'test',
        device,
        ds: task.test,
        positions: task.test.items.map((_, i) => i),
        decode: task.decode,
        preprocess: evalPreprocess(recipe, def.preprocess),
      });
      const head = `${def.name} (${model.weights}) on ${task.what}: ${recipe.schedule.kind}, ${steps} steps of ${batch}`;
      progress.textContent = head;
      const show = (s: StepInfo) => {
        progress.textContent =
          `${head}\nstep ${s.step}/${s.steps} · loss ${s.loss.toFixed(4)} · lr ${s.lr.toExponential(2)} · ` +
          `${s.imagesPerSecond.toFixed(1)} img/s · ETA ${Math.round(s.etaSeconds)} s`;
        chart.data.datasets[0].data.push({ x: s.step, y: s.loss });
        chart.data.datasets[1].data.push({ x: s.step, y: s.lr });
        chart.update();
        canvas.dataset.points = String(chart.data.datasets[0].data.length);
      };
      const r = await finetuneLoop({
        trainer: t,
        schedule: recipe.schedule,
        feed: {
          batch: (step, items, micro) => {
            if (stopRequested) throw new StoppedError(`stopped after step ${step}`);
            return feed.batch(step, items, micro);
          },
        },
        train: task.train.items.map((_, i) => i),
        seed: 0,
        dataKey: 'page',
        evals: [test],
        onStep: show,
      });
      const e = r.progress.evals.find((x) => x.split === 'test');
      if (!e) throw new Error('the run ended without a test evaluation');
      acc.textContent = `test accuracy ${(100 * e.accuracy).toFixed(1)}% on ${e.n} images after ${e.step} steps`;
    } catch (e) {
      if (e instanceof StoppedError) progress.textContent += ` · ${e.message}`;
      else progress.textContent += `\nerror: ${(e as Error).message}`;
    } finally {
      dispose();
      trainer?.dispose();
      stopRequested = undefined;
      button.textContent = 'Start';
      button.disabled = false;
    }
  });
}
