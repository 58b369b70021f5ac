// `npx cnnlab tune`: time each heavy layer's kernel variants on this adapter (bench/tune.ts) and
// keep the fastest in a tuning file that `bench` reads (and the page, from IndexedDB). Default runtime
// chrome: the page in headless Chromium, the adapter the benchmarks run on. The file is
// rewritten after every layer, so an interrupted run keeps what it measured; layers already in
// the table are skipped unless --force.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type TuneModelsResult, formatTuneTable, tuneModels } from '../bench/tune.js';
import { createDevice } from '../engine/device.js';
import {
  type TuningFile,
  TuningVersionError,
  emptyTuningFile,
  parseTuningFile,
  readTuningText,
} from '../engine/tuning.js';
import { getModel } from '../models/registry.js';
import { parseCommand, withPage } from './common.js';

export const DEFAULT_TUNING_FILE = path.join('.cnnlab-cache', 'tuning.json');

/**
 * The tuning file at `p`, or an empty one if there is none yet; a malformed file is an error
 * naming it. A version 1 file is converted and written back in the current version, once.
 */
export function readTuningFile(p: string): TuningFile {
  if (!existsSync(p)) return emptyTuningFile();
  const { file, convertedFrom } = readTuningText(readFileSync(p, 'utf8'), p);
  if (convertedFrom !== undefined) {
    writeTuningFile(p, file);
    console.warn(`${p}: converted from tuning file version ${convertedFrom} to ${file.version}`);
  }
  return file;
}

/** Write atomically (temp file + rename), so a kill mid-write cannot leave half a file. */
export function writeTuningFile(p: string, f: TuningFile): void {
  mkdirSync(path.dirname(path.resolve(p)), { recursive: true });
  const tmp = `${p}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(f, null, 1));
  renameSync(tmp, p);
}

export async function tuneCmd(argv: string[], webRoot: string): Promise<number> {
  const { values } = parseCommand(argv, {
    models: { type: 'string', default: 'resnet50,mobilenet_v2,vit_base_patch16_224' },
    size: { type: 'string', default: '224' },
    batch: { type: 'string', default: '1' },
    reps: { type: 'string', default: '2' },
    runtime: { type: 'string', default: 'chrome' },
    table: { type: 'string', default: DEFAULT_TUNING_FILE },
    force: { type: 'boolean', default: false },
    json: { type: 'string' },
    amortize: { type: 'string', default: '100' },
    'warm-cache': { type: 'boolean', default: false },
    'check-runs': { type: 'string', default: '3' },
  });
  const models = values
    .models!.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const m of models) getModel(m);
  const int = (k: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
    return n;
  };
  const o = {
    models,
    size: int('size', values.size!),
    batch: int('batch', values.batch!),
    reps: int('reps', values.reps!),
    force: values.force!,
    amortizeRuns: int('amortize', values.amortize!),
    coldCache: !values['warm-cache'],
    checkRuns: values['check-runs'] === '0' ? 0 : int('check-runs', values['check-runs']!),
  };
  const file = values.table!;
  let tuningFile: TuningFile;
  try {
    tuningFile = readTuningFile(file);
  } catch (e) {
    // A file that cannot be converted is replaced under --force (what its error message advises).
    if (!(e instanceof TuningVersionError) || !o.force) throw e;
    console.warn(`${(e as Error).message}: --force, so it is replaced by a new file`);
    tuningFile = emptyTuningFile();
  }
  const save = (f: TuningFile) => writeTuningFile(file, f);
  const t0 = performance.now();
  let r: TuneModelsResult;
  if (values.runtime === 'node') {
    const device = await createDevice();
    try {
      r = await tuneModels(device, { ...o, tuningFile, log: (s) => console.log(s), onTuning: save });
    } finally {
      device.destroy();
    }
  } else if (values.runtime === 'chrome') {
    r = await withPage({ '/': webRoot }, async (page) => {
      await page.exposeFunction('cnnlabTuning', (json: string) => save(parseTuningFile(json, 'the page')));
      return page.evaluate((args) => window.cnnlab.tune(args), { ...o, tuningFile });
    });
  } else {
    throw new Error(`--runtime must be chrome or node, got ${values.runtime}`);
  }
  save(r.file);
  console.log(`\n${formatTuneTable(r.rows)}`);
  for (const c of r.checks) {
    console.log(
      `${c.model} whole model: tuned ${c.tuned_ms.toFixed(1)} ms (pipeline builds ${(c.build_delta_ms ?? 0).toFixed(0)} ms vs the heuristics) ` +
        `vs heuristics ${c.heuristic_ms.toFixed(1)} ms → ${c.kept ? 'table kept' : 'reverted to the heuristics'}`,
    );
  }
  if (values.json)
    writeFileSync(values.json, JSON.stringify({ adapter: r.adapter, rows: r.rows, checks: r.checks }, null, 1));
  console.log(
    `\n${r.adapter}: ${Object.keys(r.file.adapters[r.adapter]?.layers ?? {}).length} layers in ${file} ` +
      `(${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  );
  return 0;
}
