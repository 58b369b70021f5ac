// `npx cnnlab bench --records`: how run bookkeeping scales. Writes synthetic results files of
// 10⁵…10⁷ records (76 conditions, clean + 15 corruptions × 5 severities, over N/76 images, as an
// ImageNet-C run writes them) to a temporary folder, then times, per size: parse (stream every
// record of results.jsonl), resume (RecordLog.open with --resume: done keys + the running summary)
// and merge (two shards into one summary). Prints records/s, time per record and the growth
// exponent k of time ∝ Nᵏ between sizes (1 is linear); removes the files after.

import { once } from 'node:events';
import { createWriteStream, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { IMAGENET_C_CORRUPTIONS } from '../eval/metrics.js';
import { readRecordFile, readRuns, RecordLog, type RunSettings } from '../eval/records.js';
import { getModel } from '../models/registry.js';

/** clean + the 15 ImageNet-C corruptions × 5 severities. */
export const IMAGENET_C_CONDITIONS = [
  'clean',
  ...IMAGENET_C_CORRUPTIONS.flatMap((c) => [1, 2, 3, 4, 5].map((s) => `c/${c}/${s}`)),
];

export function syntheticSettings(shard: { k: number; n: number } | null = null): RunSettings {
  return {
    model: 'mobilenet_v2_synth',
    weights: 'bench.safetensors',
    weights_sha256: '0'.repeat(64),
    weights_path: null,
    data: 'synthetic bench records',
    data_key: 'synthetic:bench',
    labels: 'imagenet-synsets',
    corruptions: [...IMAGENET_C_CORRUPTIONS],
    severities: [1, 2, 3, 4, 5],
    sweeps: [],
    resolutions: [],
    limit: null,
    seed: 0,
    imagenet_c_protocol: false,
    shard,
  };
}

/** The id of synthetic image i: an ImageNet-style relative path. */
export const syntheticId = (i: number) =>
  `n${String(1440764 + (i % 1000) * 7).padStart(8, '0')}/ILSVRC2012_val_${String(i + 1).padStart(8, '0')}.JPEG`;

/**
 * Write results.jsonl (and run.json) of `images` images × `conds` conditions into `dir`, condition
 * by condition as a run writes; with `shard`, only that shard's images (i mod n = k). Records are
 * pseudo-random predictions, the same for a (condition, image) whichever shard writes it. Returns the records written and the file's bytes.
 */
export async function writeSyntheticRun(
  dir: string,
  o: { conds: readonly string[]; images: number; shard?: { k: number; n: number } | null },
): Promise<{ records: number; bytes: number }> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'run.json'), JSON.stringify(syntheticSettings(o.shard ?? null), null, 1));
  const file = RecordLog.file(dir);
  const out = createWriteStream(file);
  let chunk = '';
  let records = 0;
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const flush = async () => {
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
  };
  for (const [ci, cond] of o.conds.entries()) {
    for (let i = 0; i < o.images; i++) {
      if (o.shard && i % o.shard.n !== o.shard.k) continue;
      seed = Math.imul(ci * 1_000_003 + i, 2654435761) >>> 0; // per (condition, image): shards write the same records
      const label = i % 1000;
      const right = rand() < 0.6;
      const top = right ? label : (label + 1 + Math.floor(rand() * 998)) % 1000;
      const conf = Number((0.2 + 0.8 * rand()).toFixed(6));
      const pLabel = right ? conf : Number((rand() * (1 - conf)).toFixed(6));
      chunk +=
        `{"cond":"${cond}","id":"${syntheticId(i)}","label":${label},"top5":[${top},${(top + 1) % 1000},${(top + 2) % 1000},${label},${(top + 3) % 1000}],` +
        `"conf":${conf},"p_label":${pLabel},"sq":${Number(rand().toFixed(6))}}\n`;
      records++;
      if (chunk.length > 1 << 20) await flush();
    }
  }
  await flush();
  out.end();
  await once(out, 'close');
  return { records, bytes: statSync(file).size };
}

export interface SizeResult {
  records: number;
  bytes: number;
  seconds: { parse: number; resume: number; merge: number };
}

const time = async (f: () => Promise<unknown>) => {
  const t0 = performance.now();
  await f();
  return (performance.now() - t0) / 1000;
};

/** Parse, resume and merge timings for a run of about `n` records (written under `root`, removed after). */
export async function measureRecords(
  root: string,
  n: number,
  conds: readonly string[] = IMAGENET_C_CONDITIONS,
): Promise<SizeResult> {
  const images = Math.ceil(n / conds.length);
  const one = path.join(root, `run-${n}`),
    shards = [0, 1].map((k) => path.join(root, `shard-${n}-${k}`));
  try {
    const w = await writeSyntheticRun(one, { conds, images });
    for (const [k, d] of shards.entries()) await writeSyntheticRun(d, { conds, images, shard: { k, n: 2 } });
    let count = 0;
    const parse = await time(() => readRecordFile(RecordLog.file(one), () => count++));
    if (count !== w.records) throw new Error(`parsed ${count} records of ${w.records}`);
    const resume = await time(async () => {
      const log = await RecordLog.open(one, syntheticSettings(), { resume: true });
      await log.close();
      if (log.done.size !== w.records) throw new Error(`resume found ${log.done.size} records of ${w.records}`);
    });
    const merge = await time(async () => {
      const m = await readRuns(shards);
      const s = m.summary.result(m.settings, getModel(m.settings.model).preprocess, { merged: m.shards, of: 2 });
      if (s.clean?.n !== images) throw new Error(`merged clean has ${s.clean?.n} images of ${images}`);
    });
    return { records: w.records, bytes: w.bytes, seconds: { parse, resume, merge } };
  } finally {
    for (const d of [one, ...shards]) rmSync(d, { recursive: true, force: true });
  }
}

/** k in time ∝ Nᵏ between two sizes. */
export const growthExponent = (a: { n: number; t: number }, b: { n: number; t: number }) =>
  Math.log(b.t / a.t) / Math.log(b.n / a.n);

export function formatRecordsTable(rs: SizeResult[]): string {
  const ops = ['parse', 'resume', 'merge'] as const;
  const lines = [
    `${'records'.padStart(12)} ${'file MB'.padStart(8)} ${ops.map((o) => `${`${o} s`.padStart(9)} ${'rec/s'.padStart(10)} ${'µs/rec'.padStart(7)}`).join(' ')}`,
  ];
  for (const r of rs) {
    lines.push(
      `${r.records.toLocaleString('en').padStart(12)} ${(r.bytes / 2 ** 20).toFixed(0).padStart(8)} ${ops
        .map((o) => {
          const t = r.seconds[o];
          return `${t.toFixed(2).padStart(9)} ${Math.round(r.records / t)
            .toLocaleString('en')
            .padStart(10)} ${((1e6 * t) / r.records).toFixed(2).padStart(7)}`;
        })
        .join(' ')}`,
    );
  }
  for (let i = 1; i < rs.length; i++) {
    const a = rs[i - 1],
      b = rs[i];
    lines.push(
      `growth ${a.records.toExponential(0)} → ${b.records.toExponential(0)} (time ∝ Nᵏ, 1 = linear): ${ops
        .map(
          (o) =>
            `${o} k = ${growthExponent({ n: a.records, t: a.seconds[o] }, { n: b.records, t: b.seconds[o] }).toFixed(2)}`,
        )
        .join(', ')}`,
    );
  }
  return lines.join('\n');
}
