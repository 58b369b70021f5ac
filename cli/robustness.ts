// `npx cnnlab robustness` and `npx cnnlab merge`: runs that append per-image results as they go,
// resume after a kill, split into shards for a job runner, and end in summary.json + report.html.

import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { createDevice } from '../engine/device.js';
import { openSafetensorsPath } from '../engine/safetensors.js';
import { corruptionNames } from '../eval/corruptions/index.js';
import { runProvenance } from '../eval/provenance.js';
import { DirLock, readRuns, RecordLog, type RunRecord, type RunSettings } from '../eval/records.js';
import { renderRobustnessReport, formatRobustnessTable } from '../eval/report.js';
import { runRobustness, type Progress } from '../eval/robustness.js';
import { comparableNote } from '../report/robustness.js';
import type { PageRunOptions } from '../web/robustness-page.js';
import { syntheticRunSources } from '../eval/sources.js';
import { SWEEPS, type SweepName } from '../eval/synth.js';
import type { Summary } from '../eval/summary-schema.js';
import { getModel, type ModelDef } from '../models/registry.js';
import {
  WEB_ROOT,
  list,
  oneOf,
  parseCommand,
  parseSeverities,
  parseShard,
  readChartJs,
  resolveWeights,
  withPage,
} from './common.js';
import { hubWeightsOption } from './hub.js';
import { weightsUrl } from './serve.js';

const DEFAULT_MODEL = 'mobilenet_v2_synth';

function writeOutputs(out: string, s: Summary): void {
  writeFileSync(path.join(out, 'summary.json'), JSON.stringify(s, null, 1));
  writeFileSync(path.join(out, 'report.html'), renderRobustnessReport(s, { chartJs: readChartJs() }));
}

export async function robustnessCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    seed: { type: 'string', default: '0' },
    data: { type: 'string' },
    corruptions: { type: 'string', default: 'all' },
    severities: { type: 'string', default: '1-5' },
    sweeps: { type: 'string' },
    resolutions: { type: 'string' },
    limit: { type: 'string' },
    shard: { type: 'string' },
    batch: { type: 'string', default: '16' },
    resume: { type: 'boolean', default: false },
    out: { type: 'string' },
    'per-class': { type: 'string', default: '2' },
    runtime: { type: 'string', default: 'chrome' },
    'imagenet-c-protocol': { type: 'boolean', default: false },
    'force-unlock': { type: 'boolean', default: false },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const hub = await hubWeightsOption(values.weights, values.model);
  const def = hub?.def ?? getModel(values.model ?? DEFAULT_MODEL);
  if (def.embeddedWeights !== undefined && values.weights)
    throw new Error(`--weights: ${def.name} carries its own weights; leave --weights out`);
  const weightsArg = values.weights ?? (def.builtinWeights ? 'builtin' : 'random');
  const weightsPath = hub ? hub.weightsPath : weightsArg === 'random' ? null : resolveWeights(def, weightsArg);
  if (weightsPath && !existsSync(weightsPath)) throw new Error(`weights file ${weightsPath} does not exist`);
  const known = corruptionNames();
  const corruptions =
    values.corruptions === 'none' ? [] : values.corruptions === 'all' ? known : list(values.corruptions!);
  for (const c of corruptions)
    if (!known.includes(c)) throw new Error(`unknown corruption "${c}"; known: ${known.join(', ')}`);
  const synthetic = !values.data;
  const sweeps = (
    values.sweeps === 'none' ? [] : values.sweeps ? list(values.sweeps) : synthetic ? [...SWEEPS] : []
  ) as SweepName[];
  for (const s of sweeps) if (!SWEEPS.includes(s)) throw new Error(`unknown sweep "${s}"; known: ${SWEEPS.join(', ')}`);
  const size = def.preprocess.size;
  const resolutions = values.resolutions
    ? list(values.resolutions).map(Number)
    : def.fixedSize
      ? [def.fixedSize]
      : [0.75, 1, 1.25].map((f) => Math.round((size * f) / 16) * 16);
  if (def.fixedSize && resolutions.some((r) => r !== def.fixedSize))
    throw new Error(
      `--resolutions ${resolutions.join(',')}: ${def.name} runs only at ${def.fixedSize}px (export it with dynamic H and W to vary it)`,
    );
  for (const r of resolutions) if (!Number.isInteger(r) || r < 16) throw new Error(`--resolutions: ${r} is not a size`);
  const seed = Number(values.seed),
    batch = Number(values.batch);
  const limit = values.limit ? Number(values.limit) : null;
  const shard = parseShard(values.shard);
  const runtime = oneOf('runtime', values.runtime, ['chrome', 'node']);
  const settings: RunSettings = {
    model: def.name,
    weights: hub
      ? hub.weightsName
      : (def.embeddedWeights ?? (weightsPath ? path.basename(weightsPath) : `random (seed ${seed})`)),
    data: values.data ? path.resolve(values.data) : `built-in synthetic test set (${values['per-class']} per class)`,
    ...(await runProvenance({
      // An ONNX model's weights are the file itself.
      weightsPath: def.embeddedWeights !== undefined ? def.name : weightsPath,
      data: values.data ?? null,
      perClass: Number(values['per-class']),
    })),
    corruptions,
    severities: parseSeverities(values.severities!),
    sweeps,
    resolutions,
    limit,
    seed,
    shard,
    imagenet_c_protocol: values['imagenet-c-protocol']!,
  };
  // A Hub config's preprocessing is part of the run (merge and study summarise with it).
  if (JSON.stringify(def.preprocess) !== JSON.stringify(getModel(def.name).preprocess))
    settings.preprocess = def.preprocess;
  const log = await RecordLog.open(values.out, settings, {
    resume: values.resume!,
    forceUnlock: values['force-unlock'],
    log: (s) => console.warn(s),
  });
  try {
    return await runLogged(values.out, log, settings, def, {
      runtime,
      weightsPath,
      corruptions,
      sweeps,
      resolutions,
      seed,
      batch,
      limit,
      shard,
      synthetic,
      data: values.data,
      perClass: Number(values['per-class']),
    });
  } finally {
    await log.close();
  }
}

/** The run itself, once its folder is locked and its records are read. */
async function runLogged(
  out: string,
  log: RecordLog,
  settings: RunSettings,
  def: ModelDef,
  o: {
    runtime: 'chrome' | 'node';
    weightsPath: string | null;
    corruptions: string[];
    sweeps: SweepName[];
    resolutions: number[];
    seed: number;
    batch: number;
    limit: number | null;
    shard: { k: number; n: number } | null;
    synthetic: boolean;
    data: string | undefined;
    perClass: number;
  },
): Promise<number> {
  const { runtime, weightsPath, corruptions, sweeps, resolutions, seed, batch, limit, shard, synthetic } = o;
  const synth = syntheticRunSources(def, { perClass: o.perClass, seed, sweeps, limit, shard, noTestSet: !synthetic });
  if (runtime === 'chrome') {
    return chromeRun(
      out,
      log,
      settings,
      {
        model: def.name,
        preprocess: def.preprocess,
        seed,
        corruptions,
        severities: settings.severities,
        resolutions,
        batch,
        sweeps,
        limit,
        shard,
        perClass: o.perClass,
        weightsPath,
        data: o.data ?? null,
        imagenetCProtocol: settings.imagenet_c_protocol,
      },
      def.preprocess,
    );
  }
  const device = await createDevice();
  let source = synth.source;
  if (!synthetic) {
    const { imageFolderSource } = await import('./data-source.js');
    const classes = weightsPath
      ? ((await openSafetensorsPath(weightsPath)).tensors.get(def.headWeight)?.shape[0] ?? 1000)
      : 1000;
    const f = await imageFolderSource(device, o.data!, { limit, seed, shard, classes });
    console.log(`${o.data}: ${f.items.length} images in ${f.classCount} classes (labels: ${f.labelSource})`);
    source = f;
  }
  const sweepSet = synth.sweeps;

  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {percentage}% | {value}/{total} | {ips} img/s | ETA {eta_formatted} | {cond}',
      hideCursor: true,
      etaBuffer: 50,
      noTTYOutput: true,
      notTTYSchedule: 15_000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const progress = (p: Progress) => {
    if (!started) {
      bar.start(p.total, 0, { ips: '-', cond: p.cond });
      started = true;
    }
    bar.update(p.done, { ips: p.imagesPerSecond.toFixed(1), cond: p.cond });
  };
  try {
    await runRobustness(
      device,
      {
        model: def.name,
        preprocess: def.preprocess,
        weights: weightsPath ? await openSafetensorsPath(weightsPath) : 'random',
        seed,
        corruptions,
        severities: settings.severities,
        resolutions,
        batch,
        imagenetCProtocol: settings.imagenet_c_protocol,
      },
      source,
      sweepSet,
      { done: log.done, append: (r) => log.append(r), progress, log: (s) => console.log(s) },
    );
  } finally {
    if (started) bar.stop();
    device.destroy();
  }
  return finish(out, log, settings, def.preprocess);
}

function finish(out: string, log: RecordLog, settings: RunSettings, p: ModelDef['preprocess']): number {
  const summary = log.summary.result(
    settings,
    p,
    settings.shard ? { merged: [settings.shard.k], of: settings.shard.n } : null,
  );
  writeOutputs(out, summary);
  console.log(`\n${formatRobustnessTable(summary)}`);
  console.log(`comparable with published ImageNet-C: ${comparableNote(summary)}`);
  console.log(`\nwrote ${path.join(out, 'results.jsonl')}, summary.json and report.html`);
  return 0;
}

/** The same run inside the page in headless Chromium: records come back through an exposed function. */
async function chromeRun(
  out: string,
  log: RecordLog,
  settings: RunSettings,
  o: PageRunOptions,
  p: ModelDef['preprocess'],
): Promise<number> {
  const mounts: Record<string, string> = { '/': WEB_ROOT };
  const job = mkdtempSync(path.join(tmpdir(), 'cnnlab-rob-'));
  const bar = new cliProgress.SingleBar(
    {
      format: '{bar} {percentage}% | {value}/{total} | {ips} img/s | ETA {eta_formatted} | {cond}',
      noTTYOutput: true,
      notTTYSchedule: 15_000,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  try {
    if (o.weightsPath) mounts[weightsUrl(o.weightsPath)] = o.weightsPath; // the file, not its folder
    if (o.data) {
      const { scanImageFolder, buildIndex } = await import('../eval/data.js');
      const classes = o.weightsPath
        ? ((await openSafetensorsPath(o.weightsPath)).tensors.get(getModel(o.model).headWeight)?.shape[0] ?? 1000)
        : 1000;
      writeFileSync(
        path.join(job, 'index.json'),
        JSON.stringify(buildIndex(await scanImageFolder(o.data, { classes }))),
      );
      mounts['/data/'] = o.data;
    }
    mounts['/job/'] = job;
    await withPage(mounts, async (page) => {
      await page.exposeFunction('cnnlabRecords', (json: string) => log.append(JSON.parse(json) as RunRecord[]));
      await page.exposeFunction('cnnlabProgress', (json: string) => {
        const pr = JSON.parse(json) as Progress;
        if (!started) {
          bar.start(pr.total, 0, { ips: '-', cond: pr.cond });
          started = true;
        }
        bar.update(pr.done, { ips: pr.imagesPerSecond.toFixed(1), cond: pr.cond });
      });
      await page.evaluate((args) => window.cnnlab.robustness(args), {
        ...o,
        weightsUrl: o.weightsPath ? weightsUrl(o.weightsPath) : null,
        dataIndexUrl: o.data ? '/job/index.json' : null,
        done: log.done.pack(),
      });
    });
  } finally {
    if (started) bar.stop();
    rmSync(job, { recursive: true, force: true });
  }
  return finish(out, log, settings, p);
}

export async function mergeCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    { out: { type: 'string' }, 'force-unlock': { type: 'boolean', default: false } },
    true,
  );
  if (!values.out || !positionals.length) throw new Error('usage: npx cnnlab merge <run dirs…> --out DIR');
  const out = values.out;
  const same = positionals.find((d) => path.resolve(d) === path.resolve(out));
  if (same) throw new Error(`merge: --out ${out} is one of the runs being merged; choose a new folder`);
  mkdirSync(out, { recursive: true });
  const lock = await DirLock.acquire(out, { forceUnlock: values['force-unlock'], log: (s) => console.warn(s) });
  let records = 0;
  try {
    // The merged folder is a run folder again (run.json + de-duplicated results.jsonl): it can be
    // merged further, reopened by `study`, or resumed to fill the shards that are missing.
    const file = RecordLog.file(out);
    const tmpFile = `${file}.partial`;
    const fh = await fsp.open(tmpFile, 'w');
    let text = '';
    let pending: Promise<unknown> = Promise.resolve();
    const merged = await (async () => {
      try {
        const m = await readRuns(
          positionals,
          (s) => console.warn(s),
          (r) => {
            text += `${JSON.stringify(r)}\n`;
            if (text.length > 1 << 20) {
              const chunk = text;
              text = '';
              pending = pending.then(() => fh.write(chunk));
            }
          },
        );
        await pending;
        if (text) await fh.write(text);
        return m;
      } finally {
        await fh.close();
      }
    })();
    const { settings, summary: acc, shards, of: n } = merged;
    records = acc.records;
    if (shards.length < n) console.warn(`warning: merging ${shards.length} of ${n} shards (have ${shards.join(', ')})`);
    if (acc.duplicates) console.warn(`warning: ${acc.duplicates} duplicate records across the runs, counted once`);
    const preprocess = settings.preprocess ?? getModel(settings.model).preprocess;
    const summary = acc.result(settings, preprocess, { merged: shards, of: n });
    renameSync(tmpFile, file);
    writeFileSync(path.join(out, 'run.json'), JSON.stringify(settings, null, 1));
    writeOutputs(out, summary);
    console.log(formatRobustnessTable(summary));
    console.log(`comparable with published ImageNet-C: ${comparableNote(summary)}`);
  } finally {
    lock.release();
  }
  console.log(`\nmerged ${records} records from ${positionals.length} runs into ${out}`);
  return 0;
}
