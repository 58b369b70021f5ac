// A study plan (`npx cnnlab study --plan plan.json`): which runs a study needs, as models ×
// weights, each with its test resolutions, corruptions, sweeps and transfer protocols. It is
// checked whole before anything runs (every bad field named, e.g. `runs[1].resolutions[0]`) and
// expanded into one run folder per (model, weights), each with the arguments of the robustness
// and transfer commands that make it. cli/study.ts runs what is missing.
//
// {
//   "out": "study/",                       the study folder; runs go to <out>/runs/<name>/
//   "runtime": "node",                     default for every run (node or chrome; default node)
//   "runs": [{
//     "name": "mnv2",                      optional; default <model>-<weights> (suffixed when lists expand)
//     "model": "mobilenet_v2_synth",       a registered model, or a list of them
//     "weights": "builtin",                builtin | random | FILE (relative to the plan's folder), or a list
//     "seed": 0, "data": "DIR", "per_class": 2, "limit": 8, "batch": 16, "runtime": "node",
//     "resolutions": [64, 112],            test resolutions (px)
//     "corruptions": "all",                all | none | [names] | "a,b"
//     "severities": "1-5",                 "1-5" | "1,3" | [1, 3]
//     "sweeps": "none",                    none | [size, location, rotation]
//     "transfer": "fewshot"                a protocol, a list (fewshot, probe, vtab1k), or
//   }]                                     {"protocols": [...], "shots": [1, 5], "seeds": 3, "per_class": 10,
// }                                         "train": DIR, "test": DIR}

import path from 'node:path';
import { corruptionNames } from './corruptions/index.js';
import { SWEEPS } from './synth.js';
import { getModel, listModels } from '../models/registry.js';

export interface PlannedRun {
  /** The run folder's name under <out>/runs/. */
  name: string;
  model: string;
  weights: string;
  /** Arguments of `cnnlab robustness`, without --out and --resume. */
  robustness: string[];
  /** Arguments of `cnnlab transfer`, without --out; null when the run has no transfer. */
  transfer: string[] | null;
  /** The transfer protocols the summary must hold for the run to count as complete. */
  protocols: string[];
}

export interface StudyPlan {
  out: string | null;
  runs: PlannedRun[];
}

export class PlanError extends Error {
  override name = 'PlanError';
}

const RUN_FIELDS = [
  'name',
  'model',
  'weights',
  'seed',
  'data',
  'per_class',
  'limit',
  'batch',
  'runtime',
  'resolutions',
  'corruptions',
  'severities',
  'sweeps',
  'transfer',
];
const TRANSFER_FIELDS = ['protocols', 'protocol', 'shots', 'seeds', 'per_class', 'train', 'test'];
const PROTOCOLS = ['fewshot', 'probe', 'vtab1k'];

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v);

/** Checks a parsed plan and expands it; `planDir` resolves relative paths. Throws one PlanError listing every bad field. */
export function parsePlan(value: unknown, planDir: string): StudyPlan {
  const errors: string[] = [];
  const bad = (field: string, msg: string) => void errors.push(`${field}: ${msg}`);
  if (!isObj(value)) throw new PlanError('the plan is not a JSON object ({"runs": [...], "out": "study/"})');
  for (const k of Object.keys(value))
    if (!['out', 'runtime', 'runs'].includes(k)) bad(k, 'unknown field (known: out, runtime, runs)');
  if (value.out !== undefined && typeof value.out !== 'string')
    bad('out', `must be a folder name, got ${show(value.out)}`);
  const runtime = value.runtime ?? 'node';
  if (runtime !== 'node' && runtime !== 'chrome') bad('runtime', `must be "node" or "chrome", got ${show(runtime)}`);
  if (!Array.isArray(value.runs) || !value.runs.length) {
    bad('runs', 'must be a non-empty list of runs');
    throw new PlanError(`bad study plan:\n  ${errors.join('\n  ')}`);
  }
  const models = new Set(listModels().map((m) => m.name));
  const corruptions = corruptionNames();
  const out: PlannedRun[] = [];
  const rel = (p: string) => path.resolve(planDir, p);

  value.runs.forEach((r: unknown, i: number) => {
    const at = `runs[${i}]`;
    if (!isObj(r)) return bad(at, 'must be an object with at least "model"');
    for (const k of Object.keys(r))
      if (!RUN_FIELDS.includes(k)) bad(`${at}.${k}`, `unknown field (known: ${RUN_FIELDS.join(', ')})`);
    const strings = (k: string, v: unknown): string[] | null => {
      const vs = Array.isArray(v) ? v : [v];
      if (!vs.length || vs.some((x) => typeof x !== 'string' || !x)) {
        bad(`${at}.${k}`, `must be a name or a list of names, got ${show(v)}`);
        return null;
      }
      return vs as string[];
    };
    if (r.model === undefined) bad(`${at}.model`, 'missing');
    const ms = r.model === undefined ? null : strings('model', r.model);
    for (const m of ms ?? [])
      if (!models.has(m)) bad(`${at}.model`, `unknown model "${m}" (npx cnnlab models lists them)`);
    const ws = r.weights === undefined ? null : strings('weights', r.weights);
    const int = (k: string, min: number): number | undefined => {
      const v = r[k];
      if (v === undefined) return undefined;
      if (!Number.isInteger(v) || (v as number) < min) bad(`${at}.${k}`, `must be an integer ≥ ${min}, got ${show(v)}`);
      return v as number;
    };
    const seed = int('seed', 0),
      perClass = int('per_class', 1),
      limit = int('limit', 1),
      batch = int('batch', 1);
    const args: string[] = [];
    const opt = (flag: string, v: unknown) => {
      if (v !== undefined) args.push(`--${flag}`, String(v));
    };
    if (r.data !== undefined && typeof r.data !== 'string') bad(`${at}.data`, `must be a folder, got ${show(r.data)}`);
    const rt = r.runtime ?? runtime;
    if (rt !== 'node' && rt !== 'chrome') bad(`${at}.runtime`, `must be "node" or "chrome", got ${show(rt)}`);
    opt('runtime', rt);
    opt('seed', seed);
    opt('data', typeof r.data === 'string' ? rel(r.data) : undefined);
    opt('per-class', perClass);
    opt('limit', limit);
    opt('batch', batch);
    if (r.resolutions !== undefined) {
      if (!Array.isArray(r.resolutions) || !r.resolutions.length)
        bad(`${at}.resolutions`, `must be a list of sizes, got ${show(r.resolutions)}`);
      else {
        r.resolutions.forEach((s, j) => {
          if (!Number.isInteger(s) || (s as number) < 16)
            bad(`${at}.resolutions[${j}]`, `must be an integer ≥ 16 (px), got ${show(s)}`);
        });
        opt('resolutions', r.resolutions.join(','));
      }
    }
    const names = (k: string, v: unknown, known: readonly string[], special: string[]): string | undefined => {
      if (v === undefined) return undefined;
      if (typeof v === 'string' && special.includes(v)) return v;
      const vs =
        typeof v === 'string'
          ? v
              .split(',')
              .map((x) => x.trim())
              .filter(Boolean)
          : v;
      if (!Array.isArray(vs) || !vs.length) {
        bad(`${at}.${k}`, `must be ${special.map((s) => `"${s}"`).join(', ')} or a list of names, got ${show(v)}`);
        return undefined;
      }
      vs.forEach((x, j) => {
        if (typeof x !== 'string' || !known.includes(x))
          bad(`${at}.${k}[${j}]`, `unknown ${show(x)} (known: ${known.join(', ')})`);
      });
      return vs.join(',');
    };
    opt('corruptions', names('corruptions', r.corruptions, corruptions, ['all', 'none']));
    opt('sweeps', names('sweeps', r.sweeps, SWEEPS, ['none']));
    if (r.severities !== undefined) {
      const sv = Array.isArray(r.severities) ? r.severities.join(',') : r.severities;
      const ok =
        typeof sv === 'string' &&
        sv.split(',').every((p) => {
          const m = /^\s*([1-5])(?:-([1-5]))?\s*$/.exec(p);
          return !!m && Number(m[1]) <= Number(m[2] ?? m[1]);
        });
      if (!ok) bad(`${at}.severities`, `must be like "1-5", "1,3" or [1, 3] (1 to 5), got ${show(r.severities)}`);
      opt('severities', sv);
    }

    let transfer: string[] | null = null;
    let protocols: string[] = [];
    if (r.transfer !== undefined) {
      const t = isObj(r.transfer) ? r.transfer : { protocols: r.transfer };
      if (isObj(r.transfer)) {
        for (const k of Object.keys(t))
          if (!TRANSFER_FIELDS.includes(k))
            bad(`${at}.transfer.${k}`, `unknown field (known: ${TRANSFER_FIELDS.join(', ')})`);
      }
      const ps = t.protocols ?? t.protocol ?? 'fewshot';
      protocols = typeof ps === 'string' ? ps.split(',').map((x) => x.trim()) : Array.isArray(ps) ? ps.map(String) : [];
      if (!protocols.length || protocols.some((p) => !PROTOCOLS.includes(p))) {
        bad(`${at}.transfer`, `protocols must be among ${PROTOCOLS.join(', ')}, got ${show(ps)}`);
      }
      const targs = ['--protocol', protocols.join(',')];
      if (t.shots !== undefined) {
        if (
          !Array.isArray(t.shots) ||
          !t.shots.length ||
          t.shots.some((s) => !Number.isInteger(s) || (s as number) < 1)
        ) {
          bad(`${at}.transfer.shots`, `must be a list of positive integers, got ${show(t.shots)}`);
        } else targs.push('--shots', t.shots.join(','));
      }
      for (const [k, flag] of [
        ['seeds', 'seeds'],
        ['per_class', 'per-class'],
      ] as const) {
        if (t[k] === undefined) continue;
        if (!Number.isInteger(t[k]) || (t[k] as number) < 1)
          bad(`${at}.transfer.${k}`, `must be a positive integer, got ${show(t[k])}`);
        else targs.push(`--${flag}`, String(t[k]));
      }
      if ((t.train === undefined) !== (t.test === undefined))
        bad(`${at}.transfer`, 'give both "train" and "test" folders, or neither');
      for (const k of ['train', 'test'] as const) {
        if (t[k] === undefined) continue;
        if (typeof t[k] !== 'string') bad(`${at}.transfer.${k}`, `must be a folder, got ${show(t[k])}`);
        else targs.push(`--${k}`, rel(t[k] as string));
      }
      if (seed !== undefined) targs.push('--seed', String(seed));
      transfer = targs;
    }
    if (r.name !== undefined && (typeof r.name !== 'string' || !/^[\w.-]+$/.test(r.name))) {
      bad(`${at}.name`, `must be a folder name (letters, digits, . _ -), got ${show(r.name)}`);
    }
    const modelList = ms ?? [],
      weightList = ws ?? [undefined];
    const expand = modelList.length * weightList.length > 1;
    for (const m of modelList) {
      for (const w of weightList) {
        const def = models.has(m) ? getModel(m) : undefined;
        const weights = w ?? (def?.builtinWeights ? 'builtin' : 'random');
        if (weights === 'builtin' && def && !def.builtinWeights)
          bad(`${at}.weights`, `${m} has no built-in weights (use "random" or a file)`);
        const file = weights !== 'builtin' && weights !== 'random';
        const tag = file
          ? path.basename(weights).replace(/\.safetensors$/, '')
          : weights === 'random'
            ? `random-s${seed ?? 0}`
            : weights;
        const auto = `${m}-${tag}`.replace(/[^\w.-]+/g, '-');
        const name = typeof r.name === 'string' ? (expand ? `${r.name}-${auto}` : r.name) : auto;
        const wArgs = ['--weights', file ? rel(weights) : weights];
        out.push({
          name,
          model: m,
          weights,
          robustness: ['--model', m, ...wArgs, ...args],
          transfer: transfer && ['--model', m, ...wArgs, ...transfer],
          protocols,
        });
      }
    }
  });
  const seen = new Map<string, number>();
  for (const r of out) seen.set(r.name, (seen.get(r.name) ?? 0) + 1);
  for (const [name, n] of seen)
    if (n > 1) bad('runs', `${n} runs would share the folder "${name}": give them distinct "name"s`);
  if (errors.length) throw new PlanError(`bad study plan:\n  ${errors.join('\n  ')}`);
  return { out: typeof value.out === 'string' ? value.out : null, runs: out };
}
