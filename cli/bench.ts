// `npx cnnlab bench`: models against ONNX Runtime Web, TF.js and LiteRT.js in headless Chromium (plus
// kernels), into bench.json and report.html, rewritten as results arrive. One server and one
// browser; the roofline, tuning and kernels run on a setup page, and every engine on every model
// and batch in a page (browser context, GPU device) opened for it alone (bench/harness.ts).

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatKernelTable } from '../bench/kernels.js';
import { PEERS, type PeerName } from '../bench/models.js';
import { formatBenchTable, formatTargets, renderReport, targetChecks } from '../bench/report.js';
import type { BenchJson } from '../bench/schema.js';
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
    peers: { type: 'string', default: PEERS.join(',') },
    kernels: { type: 'boolean', default: false },
    iters: { type: 'string' },
    warmup: { type: 'string' },
    size: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    tuning: { type: 'string', default: DEFAULT_TUNING_FILE },
    tune: { type: 'boolean', default: false },
  });
  const models = list(values.models!);
  const peers = values.peers === 'none' ? [] : list(values.peers!);
  for (const p of peers)
    if (!PEERS.includes(p as PeerName)) throw new Error(`unknown peer "${p}"; known: ${PEERS.join(', ')}`);
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
    models,
    peers: peers as PeerName[],
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
  } finally {
    await session.close();
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
