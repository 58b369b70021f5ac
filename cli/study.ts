// `npx cnnlab study`: many run folders (different models, sizes, resolutions, weights) → one
// table in the terminal, study.json (every point and where it came from) and one self-contained
// report.html with the seed study's comparisons. With --plan, the runs the plan lists are made
// first, each in its own folder under <out>/runs/: skipped when complete, resumed when partial.

import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parsePlan, PlanError, type PlannedRun } from '../eval/study-plan.js';
import {
  buildStudy,
  checkSummary,
  formatStudyTable,
  type StudyInput,
  StudyInputError,
  type StudyJson,
} from '../eval/study.js';
import type { Summary } from '../eval/summary-schema.js';
import { chartsBundle } from '../report/charts-bundle.js';
import { studyHtml } from '../report/study.js';
import { parseCommand, readChartJs } from './common.js';
import { robustnessCmd } from './robustness.js';
import { transferCmd } from './transfer.js';

/** A JSON file of a run folder, or an error naming the folder and what is wrong with the file. */
function readJsonIn(dir: string, file: string): unknown {
  const p = path.join(dir, file);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (e) {
    throw new StudyInputError(
      `${dir}: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new StudyInputError(`${dir}: ${file} is damaged: not JSON (${(e as Error).message})`);
  }
}

/** One run folder: its summary.json (required) and run.json (when there is one). */
export function readRunFolder(dir: string): StudyInput {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new StudyInputError(`${dir}: not a folder`);
  if (!existsSync(path.join(dir, 'summary.json'))) {
    const partial = existsSync(path.join(dir, 'run.json'));
    throw new StudyInputError(
      `${dir}: no summary.json` +
        (partial
          ? ': the run did not finish (resume it: npx cnnlab robustness … --resume --out DIR)'
          : ': not a cnnlab run folder'),
    );
  }
  const summary = checkSummary(dir, readJsonIn(dir, 'summary.json'));
  const run = existsSync(path.join(dir, 'run.json')) ? readJsonIn(dir, 'run.json') : null;
  if (run !== null && (typeof run !== 'object' || Array.isArray(run)))
    throw new StudyInputError(`${dir}: run.json is not a JSON object`);
  return { dir, summary, run: run as Record<string, unknown> | null };
}

/** What made a planned run's folder; a later plan must agree with it, or name the run otherwise. */
const RUN_RECORD = 'study-run.json';

function readSummaryIfAny(dir: string): Summary | null {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8')) as Summary;
  } catch {
    return null;
  }
}

/** Make one planned run: skipped when complete, resumed when partial, fresh otherwise; then its transfer if missing. */
async function ensureRun(dir: string, r: PlannedRun): Promise<void> {
  const made = { model: r.model, weights: r.weights, robustness: r.robustness, transfer: r.transfer };
  const recordFile = path.join(dir, RUN_RECORD);
  if (existsSync(recordFile)) {
    const before = JSON.stringify(readJsonIn(dir, RUN_RECORD)),
      now = JSON.stringify(made);
    if (before !== now) {
      throw new PlanError(
        `${dir} was made with other settings:\n  there: ${before}\n  now:   ${now}\n` +
          'delete the folder, or give this run another "name"',
      );
    }
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(recordFile, JSON.stringify(made, null, 1));
  const s = readSummaryIfAny(dir);
  const started = existsSync(path.join(dir, 'run.json'));
  if (s?.clean && started) {
    console.log(`study: ${dir}: robustness complete, skipped`);
  } else {
    console.log(`study: ${dir}: ${started ? 'resuming' : 'running'} robustness ${r.robustness.join(' ')}`);
    const rc = await robustnessCmd([...r.robustness, '--out', dir, ...(started ? ['--resume'] : [])]);
    if (rc !== 0) throw new Error(`${dir}: the robustness run failed (exit ${rc})`);
  }
  if (!r.transfer) return;
  const t = readSummaryIfAny(dir)?.transfer as Record<string, unknown> | undefined;
  const missing = r.protocols.filter((p) => !t || t[p] === undefined || t[p] === null);
  if (!missing.length) {
    console.log(`study: ${dir}: transfer complete, skipped`);
    return;
  }
  console.log(`study: ${dir}: transfer ${r.transfer.join(' ')}`);
  const rc = await transferCmd([...r.transfer, '--out', dir]);
  if (rc !== 0) throw new Error(`${dir}: the transfer run failed (exit ${rc})`);
}

/** The study of `dirs`: each folder read, bad ones an error (or, with skipBad, a listed warning). */
export function collectStudy(dirs: string[], o: { skipBad?: boolean; warn?: (s: string) => void } = {}): StudyJson {
  const inputs: StudyInput[] = [];
  const skipped: StudyJson['skipped'] = [];
  const errors: string[] = [];
  for (const dir of dirs) {
    try {
      inputs.push(readRunFolder(dir));
    } catch (e) {
      if (!(e instanceof StudyInputError)) throw e;
      if (o.skipBad) {
        skipped.push({ dir, error: e.message });
        o.warn?.(`warning: skipped ${e.message}`);
      } else {
        errors.push(e.message);
      }
    }
  }
  if (errors.length) {
    throw new StudyInputError(
      `${errors.length === 1 ? 'a run folder' : `${errors.length} run folders`} cannot be read ` +
        `(--skip-bad leaves them out with a warning):\n  ${errors.join('\n  ')}`,
    );
  }
  if (!inputs.length) throw new StudyInputError('no run folders to study');
  return buildStudy(inputs, skipped);
}

export async function studyCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(
    argv,
    {
      out: { type: 'string' },
      plan: { type: 'string' },
      'skip-bad': { type: 'boolean', default: false },
    },
    true,
  );
  let out = values.out;
  const dirs = [...positionals];
  if (values.plan) {
    const planFile = path.resolve(values.plan);
    let plan: ReturnType<typeof parsePlan>;
    try {
      plan = parsePlan(JSON.parse(readFileSync(planFile, 'utf8')), path.dirname(planFile));
    } catch (e) {
      if (e instanceof PlanError) throw new PlanError(`${values.plan}: ${e.message}`);
      throw new PlanError(`${values.plan}: cannot read the plan (${(e as Error).message})`);
    }
    out ??= plan.out ? path.resolve(path.dirname(planFile), plan.out) : undefined;
    if (!out) throw new Error('the study folder: give --out DIR or "out" in the plan');
    for (const r of plan.runs) {
      const dir = path.join(out, 'runs', r.name);
      await ensureRun(dir, r);
      dirs.push(dir);
    }
  }
  if (!out)
    throw new Error('usage: npx cnnlab study <run dirs…> --out DIR [--skip-bad] | --plan plan.json [--out DIR]');
  if (!dirs.length) throw new Error('no run folders: give them as arguments (e.g. runs/*) or a --plan');
  const study = collectStudy(dirs, { skipBad: values['skip-bad'], warn: (s) => console.warn(s) });
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'study.json'), JSON.stringify(study, null, 1));
  writeFileSync(path.join(out, 'report.html'), studyHtml(study, { chartJs: readChartJs(), charts: chartsBundle() }));
  console.log(`\n${formatStudyTable(study)}`);
  console.log(
    `\nwrote ${path.join(out, 'study.json')} and report.html (${study.runs.length} run${study.runs.length === 1 ? '' : 's'})`,
  );
  return 0;
}
