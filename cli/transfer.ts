// `npx cnnlab transfer`: few-shot linear transfer, a linear probe and VTAB-1k-style splits on
// frozen features of a registered model, next to its robustness results in the same folder.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { createDevice, type Device } from '../engine/device.js';
import { encodeSafetensors, openSafetensorsPath } from '../engine/safetensors.js';
import { extractFeatures, featureCacheKey, type FeatureRequest } from '../eval/features.js';
import { folderKey, randomWeightsKey, sha256File } from '../eval/provenance.js';
import { renderRobustnessReport, type TransferSummary } from '../eval/report.js';
import type { ImageSource } from '../eval/robustness.js';
import { SYNTH_HELDOUT_TEST_PER_CLASS, synthClassSource, synthHeldoutKey } from '../eval/sources.js';
import type { Summary } from '../eval/summary-schema.js';
import { SYNTH_HELDOUT_CLASSES } from '../eval/synth.js';
import { FEWSHOT_DEFAULTS, type FeatureSet, fewshotLsr, linearProbe, subset, vtab1k } from '../eval/transfer.js';
import { getModel, type Preprocess } from '../models/registry.js';
import { list, parseCommand, readChartJs, resolveWeights } from './common.js';
import { hubWeightsOption } from './hub.js';

async function folderSource(device: Device, dir: string, labelMap?: Record<string, number>) {
  const { imageFolderSource } = await import('./data-source.js');
  const { scanImageFolder } = await import('../eval/data.js');
  const ds = await scanImageFolder(dir, { labelMap, labels: 'sorted' });
  const map = labelMap ?? Object.fromEntries(ds.classes.map((c, i) => [c, i]));
  return {
    source: await imageFolderSource(device, dir, {
      limit: null,
      shard: null,
      classes: Number.MAX_SAFE_INTEGER,
      labelMap: map,
    }),
    map,
  };
}

/** Features from the cache, or extracted and cached. */
async function features(
  device: Device,
  r: FeatureRequest & { weightsKey: string },
  source: ImageSource,
  p: Preprocess,
  cacheDir: string,
  what: string,
): Promise<FeatureSet & { file: string }> {
  const file = path.join(cacheDir, `${featureCacheKey(r, p, source.items.length)}.safetensors`);
  if (existsSync(file)) {
    const f = await openSafetensorsPath(file);
    const x = await f.read('features'),
      y = await f.read('labels');
    console.log(`${what}: ${x.shape[0]} cached features from ${file}`);
    return { x: x.data, y: Int32Array.from(y.data), n: x.shape[0], d: x.shape[1], file };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${what} features {bar} {value}/{total} images | ETA {eta_formatted}` },
    cliProgress.Presets.shades_classic,
  );
  bar.start(source.items.length, 0);
  const t0 = performance.now();
  const fs = await extractFeatures(device, r, source, p, (done) => bar.update(done));
  bar.stop();
  if (fs.unreadable.length)
    console.warn(
      `${what}: ${fs.unreadable.length} unreadable images skipped: ${fs.unreadable
        .map((u) => u.id)
        .slice(0, 5)
        .join(', ')}`,
    );
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(
    file,
    encodeSafetensors(
      { features: { shape: [fs.n, fs.d], data: fs.x }, labels: { shape: [fs.n], data: Float32Array.from(fs.y) } },
      { model: r.model, weights: r.weightsName, weights_key: r.weightsKey, data: r.datasetKey },
    ),
  );
  console.log(
    `${what}: ${fs.n} × ${fs.d} features in ${((performance.now() - t0) / 1000).toFixed(1)} s, cached in ${file}`,
  );
  return { ...fs, file };
}

export async function transferCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    seed: { type: 'string', default: '0' },
    train: { type: 'string' },
    test: { type: 'string' },
    shots: { type: 'string', default: FEWSHOT_DEFAULTS.shots.join(',') },
    seeds: { type: 'string', default: String(FEWSHOT_DEFAULTS.seeds) },
    protocol: { type: 'string', default: 'fewshot' },
    'per-class': { type: 'string', default: '30' },
    batch: { type: 'string', default: '16' },
    cache: { type: 'string', default: '.cnnlab-cache/features' },
    out: { type: 'string' },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const hub = await hubWeightsOption(values.weights, values.model);
  const def = hub?.def ?? getModel(values.model ?? 'mobilenet_v2_synth');
  if (!values.train !== !values.test)
    throw new Error('give both --train and --test folders, or neither (the synthetic held-out classes)');
  const protocols = list(values.protocol!);
  for (const p of protocols)
    if (!['fewshot', 'probe', 'vtab1k'].includes(p))
      throw new Error(`--protocol: unknown "${p}" (fewshot, probe, vtab1k)`);
  const shots = list(values.shots!).map(Number);
  const seed = Number(values.seed),
    batch = Number(values.batch);
  const embedded = def.embeddedWeights !== undefined;
  if (embedded && values.weights)
    throw new Error(`--weights: ${def.name} carries its own weights; leave --weights out`);
  const weightsArg = values.weights ?? (def.builtinWeights ? 'builtin' : 'random');
  const weightsPath = hub ? hub.weightsPath : weightsArg === 'random' ? null : resolveWeights(def, weightsArg);
  const weights = weightsPath ? await openSafetensorsPath(weightsPath) : ('random' as const);
  const weightsName = hub
    ? hub.weightsName
    : (def.embeddedWeights ?? (weightsPath ? path.basename(weightsPath) : `random (seed ${seed})`));
  // An ONNX model's features are keyed by the file's content, as a checkpoint's are.
  const keyFile = embedded ? def.name : weightsPath;
  const weightsKey = keyFile ? `sha256:${await sha256File(keyFile)}` : randomWeightsKey(def.name, seed);
  const p = def.preprocess;
  const device = await createDevice();
  let train: FeatureSet & { file: string }, test: FeatureSet & { file: string };
  let dataDesc: string;
  try {
    const req = (datasetKey: string) => ({
      model: def.name,
      weights,
      weightsName,
      weightsKey,
      seed,
      datasetKey,
      batch,
    });
    if (values.train) {
      const tr = await folderSource(device, values.train);
      const te = await folderSource(device, values.test!, tr.map);
      train = await features(device, req((await folderKey(values.train)).key), tr.source, p, values.cache!, 'train');
      test = await features(device, req((await folderKey(values.test!)).key), te.source, p, values.cache!, 'test');
      dataDesc = `${values.train} → ${values.test}`;
    } else {
      const perClass = Number(values['per-class']);
      const cls = [...SYNTH_HELDOUT_CLASSES];
      train = await features(
        device,
        req(synthHeldoutKey('train', perClass, seed)),
        synthClassSource(cls, { perClass, seed, split: 'train' }),
        p,
        values.cache!,
        'train',
      );
      test = await features(
        device,
        req(synthHeldoutKey('test', SYNTH_HELDOUT_TEST_PER_CLASS, seed)),
        synthClassSource(cls, { perClass: SYNTH_HELDOUT_TEST_PER_CLASS, seed, split: 'test' }),
        p,
        values.cache!,
        'test',
      );
      dataDesc = `synthetic held-out classes (${cls.length}, never seen by the built-in model)`;
    }
  } finally {
    device.destroy();
  }

  const result: TransferSummary & { data: string; model: string; weights: string; timings_ms: Record<string, number> } =
    {
      model: def.name,
      weights: weightsName,
      data: dataDesc,
      features: `${train.file}, ${test.file}`,
      timings_ms: {},
    };
  if (protocols.includes('fewshot')) {
    const t0 = performance.now();
    result.fewshot = fewshotLsr(train, test, { shots, seeds: Number(values.seeds) });
    result.timings_ms.fewshot = performance.now() - t0;
  }
  if (protocols.includes('probe')) {
    // Hold out every 5th training example for choosing the L2 strength.
    const idx = Array.from({ length: train.n }, (_, i) => i);
    const t0 = performance.now();
    const r = linearProbe(
      subset(
        train,
        idx.filter((i) => i % 5 !== 4),
      ),
      subset(
        train,
        idx.filter((i) => i % 5 === 4),
      ),
      test,
    );
    result.probe = { accuracy: r.accuracy, l2: r.l2 };
    result.timings_ms.probe = performance.now() - t0;
  }
  if (protocols.includes('vtab1k')) {
    const t0 = performance.now();
    const r = vtab1k(train, test, { allowFewer: true });
    result.vtab1k = { accuracy: r.accuracy, l2: r.l2 };
    result.timings_ms.vtab1k = performance.now() - t0;
  }

  mkdirSync(values.out, { recursive: true });
  writeFileSync(path.join(values.out, 'transfer.json'), JSON.stringify(result, null, 1));
  // Next to a robustness run in the same folder: one summary and one report for the backbone.
  const summaryPath = path.join(values.out, 'summary.json');
  const summary: Summary = existsSync(summaryPath)
    ? (JSON.parse(readFileSync(summaryPath, 'utf8')) as Summary)
    : {
        version: 1,
        model: def.name,
        weights: weightsName,
        data: dataDesc,
        preprocessing: p,
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
  summary.transfer = result;
  writeFileSync(summaryPath, JSON.stringify(summary, null, 1));
  writeFileSync(path.join(values.out, 'report.html'), renderRobustnessReport(summary, { chartJs: readChartJs() }));

  console.log(
    `\ntransfer of ${def.name} (${weightsName}) to ${dataDesc}: ${train.n} train, ${test.n} test images, ${train.d} features`,
  );
  for (const [k, r] of Object.entries(result.fewshot ?? {})) {
    console.log(
      `  ${k.padStart(2)}-shot: ${(100 * r.mean).toFixed(1)}% ± ${(100 * r.std).toFixed(1)} (seeds: ${r.per_seed.map((a) => (100 * a).toFixed(1)).join(', ')})`,
    );
  }
  if (result.probe) console.log(`  linear probe: ${(100 * result.probe.accuracy).toFixed(1)}% (L2 ${result.probe.l2})`);
  if (result.vtab1k) console.log(`  VTAB-1k-style: ${(100 * result.vtab1k.accuracy).toFixed(1)}%`);
  console.log(
    `  solve times: ${Object.entries(result.timings_ms)
      .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
      .join(', ')}`,
  );
  console.log(`\nwrote ${path.join(values.out, 'transfer.json')}, summary.json and report.html`);
  return 0;
}
