// Studies over many runs: the summary.json of each run folder (different models, sizes, weights,
// test resolutions) → one table and the points of the comparisons the seed study draws
// (docs/seed-study.md): accuracy vs mCE, mCE vs transfer accuracy, top-1 vs test resolution per
// run, the SI-Score sweeps side by side, calibration (ECE) vs accuracy. Pure: the CLI reads the
// folders (cli/study.ts), report/study.ts renders the page, and the page (web/) does the same
// from a study.json it opens.
//
// study.json keeps every point with where it came from (run folder, model, weights name or
// SHA-256; the run's settings are in `runs`). A run that lacks a quantity stays in the table and
// is listed under that plot's `left_out` with the reason: never dropped silently. Numbers are
// fractions in [0,1] as in summary.json (resolutions in pixels); the charts show percent.

import { DASH, fix, isNum, numericKeys, pct } from '../report/format.js';
import type { Summary } from './summary-schema.js';

/** One run folder as read: its summary.json, and its run.json when it has one (a transfer-only folder has none). */
export interface StudyInput {
  dir: string;
  summary: Summary;
  run?: Record<string, unknown> | null;
}

/** The settings a run was made with, as far as run.json (or the summary's own copy) tells. */
export interface StudySettings {
  data?: string;
  corruptions?: string[];
  severities?: number[];
  sweeps?: string[];
  resolutions?: number[];
  limit?: number | null;
  seed?: number;
  imagenet_c_protocol?: boolean;
  shards?: Summary['shards'];
}

/** One row of the table: a run folder's headline numbers and its provenance. */
export interface StudyRun {
  /** A short unique label: the folder's name (with its parent when names collide). */
  id: string;
  dir: string;
  model: string;
  /** The weights' file name, 'random (seed N)', … as the run recorded it. */
  weights: string;
  /** SHA-256 of the weights file when the run recorded it. */
  weights_sha256: string | null;
  data: string;
  /** The model's own input size. */
  size: number | null;
  created: string | null;
  settings: StudySettings | null;
  /** Clean images, top-1, top-5, ECE (100 adaptive bins; 15 equal-width), NLL. */
  n: number | null;
  top1: number | null;
  top5: number | null;
  ece: number | null;
  ece15: number | null;
  nll: number | null;
  mce: number | null;
  /** false: the mCE averages fewer than the 15 corruptions (or unequal image sets). */
  mce_complete: boolean | null;
  relative_mce: number | null;
  /** Whether the run says its numbers compare with published ImageNet-C (null: it does not say). */
  imagenet_c_comparable: boolean | null;
  /** SI-Score sweep means. */
  sweeps: { size?: number; location?: number; rotation?: number };
  /** Clean top-1 per test resolution, by size. */
  resolutions: { size: number; top1: number | null }[];
  /** Transfer accuracies by metric ('1-shot', '5-shot', 'linear probe', 'VTAB-1k', 'fine-tune'). */
  transfer: Record<string, number>;
  /** Quantities this run does not have, in words. */
  missing: string[];
}

/** A point of a scatter plot, with where it came from. */
export interface StudyPoint {
  run: string;
  dir: string;
  model: string;
  weights: string;
  x: number;
  y: number;
  /** The mCE averages fewer than the 15 corruptions: drawn hollow. */
  incomplete?: boolean;
}

export interface LeftOut {
  run: string;
  why: string;
}

export interface StudySeries {
  run: string;
  dir: string;
  model: string;
  weights: string;
  points: { x: number; y: number | null }[];
}

export interface StudyPlots {
  /** x: clean top-1, y: mCE. */
  accuracy_mce: { points: StudyPoint[]; left_out: LeftOut[] };
  /** x: mCE, y: transfer accuracy; one series per transfer metric. */
  mce_transfer: { series: { metric: string; points: StudyPoint[] }[]; left_out: LeftOut[] };
  /** x: test resolution (px), y: clean top-1; one line per run; `native` its own size. */
  resolution: { series: (StudySeries & { native: number | null })[]; left_out: LeftOut[] };
  /** size: x object area; rotation: x angle (mean over areas); location: x distance of the object's centre from the image's. */
  sweeps: Record<SweepKind, { series: StudySeries[]; left_out: LeftOut[] }>;
  /** x: clean top-1, y: ECE (100 adaptive bins). */
  calibration: { points: StudyPoint[]; left_out: LeftOut[] };
}

export type SweepKind = 'size' | 'location' | 'rotation';
export const SWEEP_KINDS: readonly SweepKind[] = ['size', 'location', 'rotation'];

export interface StudyJson {
  version: 1;
  kind: 'cnnlab-study';
  created: string;
  runs: StudyRun[];
  /** Folders that could not be read (with --skip-bad), and why. */
  skipped: { dir: string; error: string }[];
  plots: StudyPlots;
  /** What a reader must know to compare the points (incomplete mCE, non-comparable numbers). */
  notes: string[];
}

/** A run folder that cannot be part of a study: the message names the folder. */
export class StudyInputError extends Error {
  override name = 'StudyInputError';
}

// ---- reading one summary -------------------------------------------------------------------

const num = (x: unknown): number | null => (isNum(x) ? x : null);
const obj = (x: unknown): Record<string, unknown> | null =>
  x && typeof x === 'object' && !Array.isArray(x) ? (x as Record<string, unknown>) : null;

/** A parsed summary.json checked for what a study needs (an object with a model name), or an error naming the folder. */
export function checkSummary(dir: string, value: unknown): Summary {
  const o = obj(value);
  if (!o) throw new StudyInputError(`${dir}: summary.json is not a JSON object`);
  if (typeof o.model !== 'string')
    throw new StudyInputError(`${dir}: summary.json has no "model" (not a cnnlab summary)`);
  for (const k of ['corruptions', 'sweeps', 'resolutions'] as const) {
    if (o[k] !== undefined && o[k] !== null && !obj(o[k]))
      throw new StudyInputError(`${dir}: summary.json's "${k}" is not an object`);
  }
  return value as Summary;
}

/** Transfer accuracies by metric: few-shot per shots, probe, VTAB-1k, and fine-tuning when a later run adds it. */
function transferOf(s: Summary): { values: Record<string, number>; unknown: string[] } {
  const values: Record<string, number> = {};
  const unknown: string[] = [];
  const t = obj(s.transfer);
  const fewshot = obj(t?.fewshot);
  for (const k of numericKeys(Object.keys(fewshot ?? {}))) {
    const m = num(obj(fewshot![k])?.mean);
    if (m !== null) values[`${k}-shot`] = m;
  }
  const probe = num(obj(t?.probe)?.accuracy);
  if (probe !== null) values['linear probe'] = probe;
  const vtab = num(obj(t?.vtab1k)?.accuracy);
  if (vtab !== null) values['VTAB-1k'] = vtab;
  // Fine-tuning results may come under `finetune` (in the summary or its transfer): {accuracy} or {task: {accuracy}}.
  const ft = (s as { finetune?: unknown }).finetune ?? t?.finetune;
  if (ft !== undefined && ft !== null) {
    const direct = num(obj(ft)?.accuracy);
    if (direct !== null) values['fine-tune'] = direct;
    else {
      const tasks = Object.entries(obj(ft) ?? {}).flatMap(([k, v]) => {
        const a = num(obj(v)?.accuracy);
        return a === null ? [] : [[`fine-tune ${k}`, a] as const];
      });
      for (const [k, a] of tasks) values[k] = a;
      if (!tasks.length) unknown.push('fine-tune results in a form this study does not read');
    }
  }
  if (t && !Object.keys(values).length) unknown.push('transfer results in a form this study does not read');
  return { values, unknown };
}

function settingsOf(s: Summary, run: Record<string, unknown> | null | undefined): StudySettings | null {
  const r = run ?? obj((s as { settings?: unknown }).settings);
  if (!r) return s.shards ? { shards: s.shards } : null;
  const out: StudySettings = {};
  if (typeof r.data === 'string') out.data = r.data;
  for (const k of ['corruptions', 'sweeps'] as const) if (Array.isArray(r[k])) out[k] = (r[k] as unknown[]).map(String);
  for (const k of ['severities', 'resolutions'] as const)
    if (Array.isArray(r[k])) out[k] = (r[k] as unknown[]).filter(isNum);
  if (r.limit === null || isNum(r.limit)) out.limit = r.limit as number | null;
  if (isNum(r.seed)) out.seed = r.seed;
  if (typeof r.imagenet_c_protocol === 'boolean') out.imagenet_c_protocol = r.imagenet_c_protocol;
  if (s.shards) out.shards = s.shards;
  return out;
}

/** Unique short labels: each folder's last path segment, or more of its path where those collide. */
export function runLabels(dirs: string[]): string[] {
  const parts = dirs.map((d) =>
    d
      .replace(/\\/g, '/')
      .split('/')
      .filter((p) => p && p !== '.'),
  );
  const label = (i: number, k: number) => parts[i].slice(-k).join('/') || dirs[i];
  const depth = dirs.map(() => 1);
  for (let round = 0; round < 32; round++) {
    const labels = dirs.map((_, i) => label(i, depth[i]));
    const seen = new Map<string, number[]>();
    labels.forEach((l, i) => seen.set(l, [...(seen.get(l) ?? []), i]));
    const clash = [...seen.values()].filter((is) => is.length > 1).flat();
    if (!clash.length) return labels;
    for (const i of clash) {
      if (depth[i] < parts[i].length) depth[i]++;
    }
    if (clash.every((i) => depth[i] >= parts[i].length)) break;
  }
  // Same path given twice: number them.
  const labels = dirs.map((_, i) => label(i, depth[i]));
  const count = new Map<string, number>();
  return labels.map((l) => {
    const n = (count.get(l) ?? 0) + 1;
    count.set(l, n);
    return n > 1 ? `${l} (${n})` : l;
  });
}

function studyRun(id: string, inp: StudyInput): StudyRun {
  const s = inp.summary;
  const r = inp.run ?? obj((s as { settings?: unknown }).settings);
  const c = obj(s.clean);
  const ece = obj(c?.ece);
  const mce = obj(s.mce),
    rel = obj(s.relative_mce);
  const sweeps: StudyRun['sweeps'] = {};
  for (const k of SWEEP_KINDS) {
    const m = num(obj(obj(s.sweeps)?.[k])?.mean);
    if (m !== null) sweeps[k] = m;
  }
  const res = obj(s.resolutions) ?? {};
  const resolutions = numericKeys(Object.keys(res))
    .filter((k) => isNum(Number(k)))
    .map((k) => ({ size: Number(k), top1: num(obj(res[k])?.top1) }));
  const tr = transferOf(s);
  const comparable = obj((s as { comparable?: unknown }).comparable);
  const sha = r?.weights_sha256 ?? (s as { weights_sha256?: unknown }).weights_sha256;
  const row: StudyRun = {
    id,
    dir: inp.dir,
    model: s.model,
    weights: typeof s.weights === 'string' ? s.weights : DASH,
    weights_sha256: typeof sha === 'string' ? sha : null,
    data: typeof s.data === 'string' ? s.data : DASH,
    size: num(obj(s.preprocessing)?.size),
    created: typeof s.created === 'string' ? s.created : null,
    settings: settingsOf(s, inp.run),
    n: num(c?.n),
    top1: num(c?.top1),
    top5: num(c?.top5),
    ece: num(ece?.adaptive_100),
    ece15: num(ece?.equal_width_15),
    nll: num(c?.nll),
    mce: num(mce?.value),
    mce_complete: typeof mce?.complete === 'boolean' ? mce.complete : null,
    relative_mce: num(rel?.value),
    imagenet_c_comparable: typeof comparable?.imagenet_c === 'boolean' ? comparable.imagenet_c : null,
    sweeps,
    resolutions,
    transfer: tr.values,
    missing: [],
  };
  const missing = row.missing;
  if (row.top1 === null) missing.push('clean accuracy');
  if (row.ece === null) missing.push('ECE');
  if (row.mce === null) missing.push('mCE');
  if (resolutions.filter((p) => p.top1 !== null).length < 2) missing.push('test resolutions');
  if (!Object.keys(sweeps).length) missing.push('SI-Score sweeps');
  if (!Object.keys(tr.values).length) missing.push('transfer');
  missing.push(...tr.unknown);
  return row;
}

// ---- the plots -------------------------------------------------------------------------------

const from = (r: StudyRun) => ({ run: r.id, dir: r.dir, model: r.model, weights: r.weights });

/** Why a run has no mCE, in words a reader can act on. */
const noMce = (r: StudyRun) =>
  r.settings?.corruptions?.length === 0
    ? 'no mCE: ran no corruptions'
    : 'no mCE: no ImageNet-C corruption ran at all 5 severities';
const noClean = 'no clean accuracy (a transfer-only folder, or the clean set did not run)';

/** Rotation keys 'area@angle', location keys 'cx,cy'. */
function pair(key: string, sep: string): [number, number] | null {
  const p = key.split(sep).map((x) => Number(x.trim()));
  return p.length === 2 && p.every(Number.isFinite) ? [p[0], p[1]] : null;
}

/** Mean of the values in each group, groups sorted by key. */
function meanBy(entries: [number, number][]): { x: number; y: number }[] {
  const g = new Map<number, number[]>();
  for (const [x, y] of entries) g.set(x, [...(g.get(x) ?? []), y]);
  return [...g.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([x, ys]) => ({ x, y: ys.reduce((a, b) => a + b, 0) / ys.length }));
}

/** One sweep as a curve: size by area, rotation by angle (mean over areas), location by distance from the centre. */
export function sweepCurve(kind: SweepKind, accuracy: Record<string, unknown>): { x: number; y: number }[] {
  const acc = Object.entries(accuracy).filter((e): e is [string, number] => isNum(e[1]));
  if (kind === 'size') return meanBy(acc.filter(([k]) => isNum(Number(k))).map(([k, v]) => [Number(k), v]));
  if (kind === 'rotation') {
    return meanBy(
      acc.flatMap(([k, v]) => {
        const p = pair(k, '@');
        return p ? [[p[1], v] as [number, number]] : [];
      }),
    );
  }
  return meanBy(
    acc.flatMap(([k, v]) => {
      const p = pair(k, ',');
      return p ? [[Math.round(1000 * Math.hypot(p[0] - 0.5, p[1] - 0.5)) / 1000, v] as [number, number]] : [];
    }),
  );
}

function plots(runs: StudyRun[], summaries: Map<string, Summary>): StudyPlots {
  const p: StudyPlots = {
    accuracy_mce: { points: [], left_out: [] },
    mce_transfer: { series: [], left_out: [] },
    resolution: { series: [], left_out: [] },
    sweeps: {
      size: { series: [], left_out: [] },
      location: { series: [], left_out: [] },
      rotation: { series: [], left_out: [] },
    },
    calibration: { points: [], left_out: [] },
  };
  const metrics = new Map<string, StudyPoint[]>();
  for (const r of runs) {
    const incomplete = r.mce_complete === false ? { incomplete: true } : {};
    if (r.top1 === null) p.accuracy_mce.left_out.push({ run: r.id, why: noClean });
    else if (r.mce === null) p.accuracy_mce.left_out.push({ run: r.id, why: noMce(r) });
    else p.accuracy_mce.points.push({ ...from(r), x: r.top1, y: r.mce, ...incomplete });

    const tr = Object.keys(r.transfer);
    if (!tr.length)
      p.mce_transfer.left_out.push({ run: r.id, why: 'no transfer results (npx cnnlab transfer --out <its folder>)' });
    else if (r.mce === null) p.mce_transfer.left_out.push({ run: r.id, why: noMce(r) });
    else {
      for (const m of tr)
        metrics.set(m, [...(metrics.get(m) ?? []), { ...from(r), x: r.mce, y: r.transfer[m], ...incomplete }]);
    }

    const res = r.resolutions.filter((q) => q.top1 !== null);
    if (res.length < 2) {
      p.resolution.left_out.push({
        run: r.id,
        why: res.length ? `one test resolution only (${res[0].size})` : 'no test resolutions',
      });
    } else {
      p.resolution.series.push({
        ...from(r),
        native: r.size,
        points: r.resolutions.map((q) => ({ x: q.size, y: q.top1 })),
      });
    }

    for (const k of SWEEP_KINDS) {
      const acc = obj(obj(obj(summaries.get(r.id)?.sweeps)?.[k])?.accuracy);
      const pts = acc ? sweepCurve(k, acc) : [];
      if (pts.length) p.sweeps[k].series.push({ ...from(r), points: pts });
      else p.sweeps[k].left_out.push({ run: r.id, why: `no ${k} sweep` });
    }

    if (r.top1 === null) p.calibration.left_out.push({ run: r.id, why: noClean });
    else if (r.ece === null) p.calibration.left_out.push({ run: r.id, why: 'no ECE' });
    else p.calibration.points.push({ ...from(r), x: r.top1, y: r.ece });
  }
  // Few-shot by shots, then probe, VTAB-1k, fine-tuning.
  const rank = (m: string) =>
    /^\d+-shot$/.test(m) ? parseInt(m, 10) : m === 'linear probe' ? 1e6 : m === 'VTAB-1k' ? 1e6 + 1 : 1e6 + 2;
  p.mce_transfer.series = [...metrics.entries()]
    .sort((a, b) => rank(a[0]) - rank(b[0]) || (a[0] < b[0] ? -1 : 1))
    .map(([metric, points]) => ({ metric, points }));
  return p;
}

function notesOf(runs: StudyRun[]): string[] {
  const notes: string[] = [];
  const incomplete = runs.filter((r) => r.mce !== null && r.mce_complete === false).map((r) => r.id);
  if (incomplete.length) {
    notes.push(
      `mCE over fewer than the 15 ImageNet-C corruptions at 5 severities (drawn hollow): ${incomplete.join(', ')}; ` +
        'such an mCE is the mean over what ran and compares only with runs of the same corruptions.',
    );
  }
  const withMce = runs.filter((r) => r.mce !== null);
  const notComparable = withMce.filter((r) => r.imagenet_c_comparable !== true).map((r) => r.id);
  if (notComparable.length) {
    notes.push(
      `mCE is normalised by AlexNet's ImageNet-C errors; not comparable with published ImageNet-C numbers ` +
        `(other data, labels, image sets or storage step, or not stated): ${notComparable.join(', ')}.`,
    );
  }
  const models = new Set(runs.map((r) => r.model));
  const data = new Set(runs.map((r) => r.settings?.data ?? r.data));
  if (data.size > 1) notes.push(`The runs used ${data.size} different data sets: compare accuracies only within one.`);
  if (runs.length > 1 && models.size === 1)
    notes.push(`All runs are of one model (${[...models][0]}): the points differ in weights or settings.`);
  return notes;
}

/** The study of `inputs` (skipped: folders --skip-bad left out, with their errors). Runs are ordered by model, then label. */
export function buildStudy(
  inputs: StudyInput[],
  skipped: StudyJson['skipped'] = [],
  created = new Date().toISOString(),
): StudyJson {
  const labels = runLabels(inputs.map((i) => i.dir));
  const rows = inputs.map((inp, i) => ({ row: studyRun(labels[i], inp), summary: inp.summary }));
  rows.sort((a, b) =>
    a.row.model < b.row.model
      ? -1
      : a.row.model > b.row.model
        ? 1
        : a.row.id < b.row.id
          ? -1
          : a.row.id > b.row.id
            ? 1
            : 0,
  );
  const runs = rows.map((r) => r.row);
  return {
    version: 1,
    kind: 'cnnlab-study',
    created,
    runs,
    skipped,
    plots: plots(runs, new Map(rows.map((r) => [r.row.id, r.summary]))),
    notes: notesOf(runs),
  };
}

/** A study.json read back (the page opens one): checked for its kind and version, else an error saying what it is not. */
export function parseStudyJson(text: string, name = 'study.json'): StudyJson {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new StudyInputError(`${name}: not JSON (${(e as Error).message})`);
  }
  const o = obj(v);
  if (o?.kind !== 'cnnlab-study')
    throw new StudyInputError(`${name}: not a cnnlab study.json (no "kind": "cnnlab-study")`);
  if (o.version !== 1)
    throw new StudyInputError(`${name}: study.json version ${JSON.stringify(o.version)}; this cnnlab reads version 1`);
  if (!Array.isArray(o.runs) || !obj(o.plots))
    throw new StudyInputError(`${name}: study.json without "runs" and "plots"`);
  return v as StudyJson;
}

// ---- terminal table --------------------------------------------------------------------------

const short = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** One row per run: what ran, clean top-1, ECE, mCE (* incomplete), sweep means, top-1 by resolution, transfer, what is missing. */
export function formatStudyTable(st: StudyJson): string {
  const head = [
    'run',
    'model',
    'weights',
    'n',
    'top-1',
    'ECE',
    'mCE',
    'size/loc/rot',
    'top-1 by resolution',
    'transfer',
    'missing',
  ];
  const rows = st.runs.map((r) => [
    r.id,
    r.model,
    // The name is shortened, never the hash: two files of one name differ only there.
    r.weights_sha256 ? `${short(r.weights, 32)} ${r.weights_sha256.slice(0, 8)}` : short(r.weights, 32),
    r.n === null ? DASH : String(r.n),
    pct(r.top1),
    fix(r.ece, 3),
    r.mce === null ? DASH : `${pct(r.mce)}${r.mce_complete === false ? '*' : ''}`,
    SWEEP_KINDS.map((k) => (r.sweeps[k] === undefined ? DASH : pct(r.sweeps[k], 0))).join('/'),
    r.resolutions.map((q) => `${q.size}:${pct(q.top1, 0)}`).join(' ') || DASH,
    Object.entries(r.transfer)
      .map(([k, v]) => `${k} ${pct(v, 0)}`)
      .join(', ') || DASH,
    r.missing.join(', ') || DASH,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const numeric = new Set([3, 4, 5, 6]);
  const line = (r: string[]) =>
    r
      .map((x, i) => (numeric.has(i) ? x.padStart(widths[i]) : x.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [line(head), ...rows.map(line)];
  if (st.runs.some((r) => r.mce_complete === false))
    out.push('* mCE over fewer than the 15 corruptions × 5 severities');
  const left: string[] = [];
  const plotNames: [string, LeftOut[]][] = [
    ['accuracy vs mCE', st.plots.accuracy_mce.left_out],
    ['mCE vs transfer', st.plots.mce_transfer.left_out],
    ['top-1 vs resolution', st.plots.resolution.left_out],
    ['calibration vs accuracy', st.plots.calibration.left_out],
    ...SWEEP_KINDS.map((k) => [`${k} sweep`, st.plots.sweeps[k].left_out] as [string, LeftOut[]]),
  ];
  for (const [name, lo] of plotNames)
    if (lo.length) left.push(`  ${name}: ${lo.map((l) => `${l.run} (${l.why})`).join('; ')}`);
  if (left.length) out.push('left out of plots:', ...left);
  for (const s of st.skipped) out.push(`skipped: ${s.error}`);
  for (const n of st.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
