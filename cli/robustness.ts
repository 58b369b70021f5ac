// `npx cnnlab robustness` and `npx cnnlab merge`: runs that append per-image results as they go,
// resume after a kill, split into shards for a job runner, and end in summary.json + report.html.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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
import '../models/index.js';
import { getModel, type ModelDef } from '../models/registry.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_MODEL = 'mobilenet_v2_synth';

const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);

/** '1-5', '1,3,5', '2' → severities. */
export function parseSeverities(v: string): number[] {
  const out = new Set<number>();
  for (const part of list(v)) {
    const m = /^(\d)(?:-(\d))?$/.exec(part);
    if (!m) throw new Error(`--severities: "${part}" is not a severity (1-5) or a range like 1-5`);
    const a = Number(m[1]), b = Number(m[2] ?? m[1]);
    if (a < 1 || b > 5 || a > b) throw new Error(`--severities: ${part} is outside 1-5`);
    for (let s = a; s <= b; s++) out.add(s);
  }
  return [...out].sort();
}

/** 'k/n' (0-based k, as a Kubernetes Indexed Job's completion index); k may be 'env' for $JOB_COMPLETION_INDEX. */
export function parseShard(v: string | undefined): { k: number; n: number } | null {
  if (!v) return null;
  const m = /^(\w+)\/(\d+)$/.exec(v);
  if (!m) throw new Error(`--shard must look like k/n (0-based k), got "${v}"`);
  const k = m[1] === 'env' ? Number(process.env.JOB_COMPLETION_INDEX) : Number(m[1]);
  const n = Number(m[2]);
  if (m[1] === 'env' && process.env.JOB_COMPLETION_INDEX === undefined) throw new Error('--shard env/n needs $JOB_COMPLETION_INDEX');
  if (!Number.isInteger(k) || !Number.isInteger(n) || n < 1 || k < 0 || k >= n) throw new Error(`--shard ${v}: need 0 ≤ k < n`);
  return { k, n };
}

function resolveWeights(def: ModelDef, w: string): string {
  if (w === 'builtin') {
    if (!def.builtinWeights) throw new Error(`${def.name} has no built-in weights; pass --weights FILE or random`);
    return path.join(REPO_ROOT, def.builtinWeights);
  }
  return w;
}

function writeOutputs(out: string, s: Summary): void {
  writeFileSync(path.join(out, 'summary.json'), JSON.stringify(s, null, 1));
  const chartJs = readFileSync(path.join(REPO_ROOT, 'node_modules/chart.js/dist/chart.umd.js'), 'utf8');
  writeFileSync(path.join(out, 'report.html'), renderRobustnessReport(s, { chartJs }));
}

export async function robustnessCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string', default: DEFAULT_MODEL }, weights: { type: 'string' }, seed: { type: 'string', default: '0' },
      data: { type: 'string' }, corruptions: { type: 'string', default: 'all' }, severities: { type: 'string', default: '1-5' },
      sweeps: { type: 'string' }, resolutions: { type: 'string' }, limit: { type: 'string' }, shard: { type: 'string' },
      batch: { type: 'string', default: '16' }, resume: { type: 'boolean', default: false }, out: { type: 'string' },
      'per-class': { type: 'string', default: '2' }, runtime: { type: 'string', default: 'chrome' },
      'force-unlock': { type: 'boolean', default: false },
    },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const def = getModel(values.model!);
  const weightsArg = values.weights ?? (def.builtinWeights ? 'builtin' : 'random');
  const weightsPath = weightsArg === 'random' ? null : resolveWeights(def, weightsArg);
  if (weightsPath && !existsSync(weightsPath)) throw new Error(`weights file ${weightsPath} does not exist`);
  const known = corruptionNames();
  const corruptions = values.corruptions === 'none' ? [] : values.corruptions === 'all' ? known : list(values.corruptions!);
  for (const c of corruptions) if (!known.includes(c)) throw new Error(`unknown corruption "${c}"; known: ${known.join(', ')}`);
  const synthetic = !values.data;
  const sweeps = (values.sweeps === 'none' ? [] : values.sweeps ? list(values.sweeps) : synthetic ? [...SWEEPS] : []) as SweepName[];
  for (const s of sweeps) if (!SWEEPS.includes(s)) throw new Error(`unknown sweep "${s}"; known: ${SWEEPS.join(', ')}`);
  const size = def.preprocess.size;
  const resolutions = values.resolutions ? list(values.resolutions).map(Number)
    : [0.75, 1, 1.25].map((f) => Math.round((size * f) / 16) * 16);
  for (const r of resolutions) if (!Number.isInteger(r) || r < 16) throw new Error(`--resolutions: ${r} is not a size`);
  const seed = Number(values.seed), batch = Number(values.batch);
  const limit = values.limit ? Number(values.limit) : null;
  const shard = parseShard(values.shard);
  const settings: RunSettings = {
    model: def.name, weights: weightsPath ? path.basename(weightsPath) : `random (seed ${seed})`,
    data: values.data ? path.resolve(values.data) : `built-in synthetic test set (${values['per-class']} per class)`,
    ...await runProvenance({ weightsPath, data: values.data ?? null, perClass: Number(values['per-class']) }),
    corruptions, severities: parseSeverities(values.severities!), sweeps, resolutions, limit, seed, imagenet_c_protocol: false, shard,
  };
  const log = await RecordLog.open(values.out, settings, { resume: values.resume!, forceUnlock: values['force-unlock'], log: (s) => console.warn(s) });
  try {
    return await runLogged(values, log, settings, def, { weightsPath, corruptions, sweeps, resolutions, seed, batch, limit, shard, synthetic });
  } finally {
    await log.close();
  }
}

async function runLogged(
  values: { [option: string]: string | boolean | undefined; out?: string; data?: string; runtime?: string; 'per-class'?: string }, log: RecordLog, settings: RunSettings, def: ModelDef,
  o: { weightsPath: string | null; corruptions: string[]; sweeps: SweepName[]; resolutions: number[]; seed: number; batch: number;
    limit: number | null; shard: { k: number; n: number } | null; synthetic: boolean },
): Promise<number> {
  const { weightsPath, corruptions, sweeps, resolutions, seed, batch, limit, shard, synthetic } = o;

  const synth = syntheticRunSources(def, { perClass: Number(values['per-class']), seed, sweeps, limit, shard, noTestSet: !synthetic });
  if (values.runtime === 'chrome') {
    return chromeRun(values.out!, log, settings, {
      model: def.name, seed, corruptions, severities: settings.severities, resolutions, batch, sweeps, limit, shard,
      perClass: Number(values['per-class']), weightsPath, data: values.data ?? null,
    }, def.preprocess);
  }
  if (values.runtime !== 'node') throw new Error(`--runtime must be chrome or node, got ${values.runtime}`);
  const device = await createDevice();
  let source = synth.source;
  if (!synthetic) {
    const { imageFolderSource } = await import('./data-source.js');
    const classes = weightsPath ? (await openSafetensorsPath(weightsPath)).tensors.get(def.headWeight)?.shape[0] ?? 1000 : 1000;
    const f = await imageFolderSource(device, values.data!, { limit, shard, classes });
    console.log(`${values.data}: ${f.items.length} images in ${f.classCount} classes (labels: ${f.labelSource})`);
    source = f;
  }
  const sweepSet = synth.sweeps;

  const bar = new cliProgress.SingleBar({
    format: '{bar} {percentage}% | {value}/{total} | {ips} img/s | ETA {eta_formatted} | {cond}',
    hideCursor: true, etaBuffer: 50, noTTYOutput: true, notTTYSchedule: 15_000,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  const progress = (p: Progress) => {
    if (!started) bar.start(p.total, 0, { ips: '-', cond: p.cond }), (started = true);
    bar.update(p.done, { ips: p.imagesPerSecond.toFixed(1), cond: p.cond });
  };
  try {
    await runRobustness(device, {
      model: def.name, weights: weightsPath ? await openSafetensorsPath(weightsPath) : 'random', seed,
      corruptions, severities: settings.severities, resolutions, batch,
    }, source, sweepSet, { done: log.done, append: (r) => log.append(r), progress, log: (s) => console.log(s) });
  } finally {
    if (started) bar.stop();
    device.destroy();
  }
  return finish(values.out!, log, settings, def.preprocess);
}

function finish(out: string, log: RecordLog, settings: RunSettings, p: ModelDef['preprocess']): number {
  const summary = log.summary.result(settings, p, settings.shard ? { merged: [settings.shard.k], of: settings.shard.n } : null);
  writeOutputs(out, summary);
  console.log(`\n${formatRobustnessTable(summary)}`);
  console.log(`comparable with published ImageNet-C: ${comparableNote(summary)}`);
  console.log(`\nwrote ${path.join(out, 'results.jsonl')}, summary.json and report.html`);
  return 0;
}

/** The same run inside the page in headless Chromium: records come back through an exposed function. */
async function chromeRun(out: string, log: RecordLog, settings: RunSettings, o: PageRunOptions, p: ModelDef['preprocess']): Promise<number> {
  const { launchChromium, openPage } = await import('./chromium.js');
  const { serve } = await import('./serve.js');
  const { WEB_ROOT } = await import('./main.js');
  const mounts: Record<string, string> = { '/': WEB_ROOT };
  const job = mkdtempSync(path.join(tmpdir(), 'cnnlab-rob-'));
  if (o.weightsPath) mounts['/weights/'] = path.dirname(o.weightsPath);
  if (o.data) {
    const { scanImageFolder, buildIndex } = await import('../eval/data.js');
    const classes = o.weightsPath ? (await openSafetensorsPath(o.weightsPath)).tensors.get(getModel(o.model).headWeight)?.shape[0] ?? 1000 : 1000;
    writeFileSync(path.join(job, 'index.json'), JSON.stringify(buildIndex(await scanImageFolder(o.data, { classes }))));
    mounts['/data/'] = o.data;
  }
  mounts['/job/'] = job;
  const server = await serve(mounts);
  const browser = await launchChromium();
  const bar = new cliProgress.SingleBar({ format: '{bar} {percentage}% | {value}/{total} | {ips} img/s | ETA {eta_formatted} | {cond}', noTTYOutput: true, notTTYSchedule: 15_000 }, cliProgress.Presets.shades_classic);
  let started = false;
  try {
    const page = await openPage(browser, `${server.url}/`, (s) => console.log(s));
    await page.exposeFunction('cnnlabRecords', (json: string) => log.append(JSON.parse(json) as RunRecord[]));
    await page.exposeFunction('cnnlabProgress', (json: string) => {
      const pr = JSON.parse(json) as Progress;
      if (!started) bar.start(pr.total, 0, { ips: '-', cond: pr.cond }), (started = true);
      bar.update(pr.done, { ips: pr.imagesPerSecond.toFixed(1), cond: pr.cond });
    });
    await page.evaluate((args) => window.cnnlab.robustness(args), {
      ...o, weightsUrl: o.weightsPath ? `/weights/${encodeURIComponent(path.basename(o.weightsPath))}` : null,
      dataIndexUrl: o.data ? '/job/index.json' : null, done: [...log.done],
    });
  } finally {
    if (started) bar.stop();
    await browser.close();
    await server.close();
    rmSync(job, { recursive: true, force: true });
  }
  return finish(out, log, settings, p);
}

export async function mergeCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, options: { out: { type: 'string' }, 'force-unlock': { type: 'boolean', default: false } }, allowPositionals: true,
  });
  if (!values.out || !positionals.length) throw new Error('usage: npx cnnlab merge <run dirs…> --out DIR');
  const { settings, summary: acc, shards, of: n } = await readRuns(positionals, (s) => console.warn(s));
  if (shards.length < n) console.warn(`warning: merging ${shards.length} of ${n} shards (have ${shards.join(', ')})`);
  if (acc.duplicates) console.warn(`warning: ${acc.duplicates} duplicate records across the runs, counted once`);
  const def = getModel(settings.model);
  const summary = acc.result(settings, def.preprocess, { merged: shards, of: n });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(values.out, { recursive: true });
  const lock = await DirLock.acquire(values.out, { forceUnlock: values['force-unlock'], log: (s) => console.warn(s) });
  try {
    writeOutputs(values.out, summary);
  } finally {
    lock.release();
  }
  console.log(formatRobustnessTable(summary));
  console.log(`comparable with published ImageNet-C: ${comparableNote(summary)}`);
  console.log(`\nmerged ${acc.records} records from ${positionals.length} runs into ${values.out}`);
  return 0;
}
