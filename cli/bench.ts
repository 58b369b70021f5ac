// `npx cnnlab bench`: models against ONNX Runtime Web, TF.js and LiteRT.js in headless Chromium (plus
// kernels), into bench.json and report.html, rewritten as results arrive. `--train` times the
// training step instead, cnnlab against TF.js (bench/train.ts). One server and one
// browser; the roofline, tuning and kernels run on a setup page, and every engine on every model
// and batch in a page (browser context, GPU device) opened for it alone (bench/harness.ts).

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatKernelTable } from '../bench/kernels.js';
import { PEERS, type PeerName } from '../bench/models.js';
import { formatBenchTable, formatTargets, renderReport, targetChecks } from '../bench/report.js';
import type { BenchJson, TrainEngineName } from '../bench/schema.js';
import { TRAIN_LR, formatTrainTable, runTrainBench } from '../bench/train.js';
import { formatTuneTable } from '../bench/tune.js';
import { type BenchHost, runBench } from '../bench/run.js';
import { WEB_ROOT, list, parseCommand, readChartJs, resolveDist, startBrowser } from './common.js';
import { DEFAULT_TUNING_FILE, readTuningFile, writeTuningFile } from './tune.js';
import { emptyTuningFile } from '../engine/tuning.js';

export async function benchCmd(argv: string[]): Promise<number> {
  if (argv.includes('--records')) return recordsCmd(argv.filter((a) => a !== '--records'));
  const { values } = parseCommand(argv, {
    models: { type: 'string', default: 'resnet50,mobilenet_v2,vit_base_patch16_224' },
    batch: { type: 'string' },
    peers: { type: 'string' },
    kernels: { type: 'boolean', default: false },
    iters: { type: 'string' },
    warmup: { type: 'string' },
    size: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    tuning: { type: 'string', default: DEFAULT_TUNING_FILE },
    tune: { type: 'boolean', default: false },
    train: { type: 'boolean', default: false },
    lr: { type: 'string' },
  });
  const models = list(values.models!);
  const train = values.train!;
  // The training bench has one peer: TF.js (ORT-web trains on WASM only, LiteRT.js not at all).
  const known: string[] = train ? ['tfjs-webgpu'] : PEERS;
  const peers = values.peers === 'none' ? [] : list(values.peers ?? known.join(','));
  for (const p of peers)
    if (!known.includes(p))
      throw new Error(`unknown ${train ? 'training ' : ''}peer "${p}"; known: ${known.join(', ')}`);
  if (train && (values.kernels || values.tune))
    throw new Error('--train runs the training bench alone: drop --kernels/--tune');
  if (!train && values.lr !== undefined) throw new Error('--lr is for --train');
  const lr = values.lr === undefined ? TRAIN_LR : Number(values.lr);
  if (!(lr > 0)) throw new Error(`--lr must be a positive number, got ${values.lr}`);
  if (!values.out) throw new Error('--out DIR is required');
  const quick = values.quick!;
  const tuningPath = values.tuning === 'none' ? null : values.tuning!;
  if (values.tune && !tuningPath) throw new Error('--tune needs a --tuning file to write to');
  if (tuningPath && tuningPath !== DEFAULT_TUNING_FILE && !values.tune && !existsSync(tuningPath)) {
    throw new Error(
      `--tuning ${tuningPath}: no such file (npx cnnlab tune --table ${tuningPath} writes one; --tuning none runs untuned)`,
    );
  }
  const tuningFile = tuningPath ? readTuningFile(tuningPath) : undefined;
  const int = (name: string, v: string | undefined, dflt: number, min = 1) => {
    const n = v === undefined ? dflt : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}, got ${v}`);
    return n;
  };
  const opts = {
    models: train ? [] : models,
    peers: train ? [] : (peers as PeerName[]),
    batches: values.batch ? list(values.batch).map((b) => int('batch', b, 1)) : quick ? [1] : [1, 8],
    iters: int('iters', values.iters, quick ? 2 : 10),
    warmup: int('warmup', values.warmup, quick ? 0 : 2, 0),
    size: int('size', values.size, quick ? 112 : 224),
    quick,
    kernels: values.kernels!,
    command: `npx cnnlab bench ${argv.join(' ')}`,
    ortWasmPaths: '/vendor/ort/',
    litertWasmDir: '/vendor/litert/',
    tuningFile: tuningFile ?? emptyTuningFile(),
    tune: values.tune!,
  };
  mkdirSync(values.out, { recursive: true });
  const jsonPath = path.join(values.out, 'bench.json');
  const write = (b: BenchJson) => {
    writeFileSync(jsonPath, JSON.stringify(b, null, 1));
    writeFileSync(path.join(values.out!, 'report.html'), renderReport(b, { chartJs: readChartJs() }));
  };
  const mounts = {
    '/': WEB_ROOT,
    '/vendor/ort/': resolveDist('onnxruntime-web', '.'),
    '/vendor/litert/': resolveDist('@litertjs/core', '../wasm'),
  };
  const session = await startBrowser(mounts, (s) => console.log(s));
  /** A fresh page for `fn`, closed after it (with its browser context). */
  const inPage = async <T>(fn: (page: import('playwright-core').Page) => Promise<T>): Promise<T> => {
    const page = await session.newPage();
    try {
      return await fn(page);
    } finally {
      await page.close();
    }
  };
  const host: BenchHost = {
    isolation: 'page per engine and model',
    setup: ({ log: _log, onTuning: _onTuning, ...o }) =>
      inPage(async (page) => {
        await page.exposeFunction('cnnlabTuning', (json: string) => {
          if (tuningPath) writeTuningFile(tuningPath, JSON.parse(json));
        });
        return page.evaluate((so) => window.cnnlab.benchSetup(so), o);
      }),
    engine: (job, c) =>
      inPage((page) => page.evaluate(([j, cc]) => window.cnnlab.benchEngine(j, cc), [job, c] as const)),
  };
  let result: BenchJson;
  try {
    result = await runBench(host, { ...opts, log: (s) => console.log(s), onPartial: write });
    if (train) {
      const b = result;
      b.settings.models = models;
      b.settings.peers = peers;
      b.train = await runTrainBench(
        (job) => inPage((page) => page.evaluate((j) => window.cnnlab.benchTrainEngine(j), job)),
        {
          models,
          batches: opts.batches,
          engines: ['cnnlab', ...(peers as TrainEngineName[])],
          size: opts.size,
          iters: opts.iters,
          warmup: opts.warmup,
          lr,
          log: (s) => console.log(s),
          notes: b.notes,
          onPartial: (t) => write({ ...b, train: t }),
        },
      );
    }
  } finally {
    await session.close();
  }
  write(result);
  if (result.train) console.log(`\n${formatTrainTable(result.train)}`);
  else console.log(`\n${formatBenchTable(result)}`);
  const checks = targetChecks(result);
  if (checks.length) console.log(`\ntargets (batch 1):\n${formatTargets(checks)}`);
  if (result.tune?.length) console.log(`\n${formatTuneTable(result.tune)}`);
  if (result.kernels?.length) console.log(`\n${formatKernelTable(result.kernels)}`);
  console.log(`\nwrote ${jsonPath} and ${path.join(values.out, 'report.html')}`);
  return 0;
}

/** `bench --records`: records/s of parsing, resuming and merging results files of growing size. */
async function recordsCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { sizes: { type: 'string', default: '1e5,1e6,1e7' }, dir: { type: 'string' } });
  const sizes = list(values.sizes!).map((s) => Math.round(Number(s)));
  for (const n of sizes)
    if (!Number.isInteger(n) || n < 1000) throw new Error(`--sizes: ${n} is not a record count ≥ 1000`);
  const { formatRecordsTable, measureRecords } = await import('../bench/records.js');
  const root = mkdtempSync(path.join(values.dir ?? tmpdir(), 'cnnlab-bench-records-'));
  const results = [];
  try {
    for (const n of sizes) {
      console.log(`${n.toLocaleString('en')} records…`);
      results.push(await measureRecords(root, n));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`\n${formatRecordsTable(results)}`);
  return 0;
}
