// Records → summary.json. Pure: a merge of shards is the summary of their concatenated records,
// so one run and the same run split over shards give the same summary.

import type { Preprocess } from '../models/registry.js';
import {
  ECE_EQUAL_WIDTH_15, type ImageResult, IMAGENET_C_CORRUPTIONS, mce, reliability, relativeMce, siScoreSweep,
  summarizeResults, top1, top5,
} from './metrics.js';
import { type ImageRecord, isUnreadable, type RunRecord, type RunSettings } from './record-format.js';
import type { ConditionMetrics, Summary } from './summary-schema.js';

const cm = (rs: readonly ImageResult[]): ConditionMetrics => ({ n: rs.length, top1: top1(rs), top5: top5(rs) });

export function summarizeRun(
  settings: RunSettings, preprocessing: Preprocess, records: RunRecord[], shards: Summary['shards'] = null,
): Summary {
  // Sorted, so sums (ECE, NLL, Brier) do not depend on record order: a merge equals one run.
  const images = records.filter((r): r is ImageRecord => !isUnreadable(r))
    .sort((a, b) => (a.cond < b.cond ? -1 : a.cond > b.cond ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byCond = new Map<string, ImageRecord[]>();
  for (const r of images) {
    const g = byCond.get(r.cond);
    if (g) g.push(r);
    else byCond.set(r.cond, [r]);
  }

  const cleanRs = byCond.get('clean') ?? [];
  let clean: Summary['clean'] = null;
  if (cleanRs.length) {
    const m = summarizeResults(cleanRs);
    clean = {
      n: m.n, top1: m.top1, top5: m.top5, nll: m.nll, brier: m.brier,
      ece: { adaptive_100: m.eceAdaptive100, equal_width_15: m.eceEqualWidth15 },
      reliability: reliability(cleanRs, ECE_EQUAL_WIDTH_15.bins, ECE_EQUAL_WIDTH_15.scheme)
        .map((b) => ({ conf: b.count ? b.conf : null, acc: b.count ? b.acc : null, count: b.count })),
    };
  }

  const corruptions: Summary['corruptions'] = {};
  const resolutions: Summary['resolutions'] = {};
  const sweepGroups: Record<string, Map<string, ImageRecord[]>> = {};
  for (const [cond, rs] of byCond) {
    const [kind, a, b] = cond.split('/');
    if (kind === 'c') (corruptions[a] ??= {})[b] = cm(rs);
    else if (kind === 'res') resolutions[a] = cm(rs);
    else if (kind === 'si') (sweepGroups[a] ??= new Map()).set(b, rs);
  }

  // The model's own resolution is the clean condition.
  if (clean && !resolutions[String(preprocessing.size)]) resolutions[String(preprocessing.size)] = { n: clean.n, top1: clean.top1, top5: clean.top5 };

  // mCE needs all five severities of a corruption; partial ones are reported as incomplete.
  const errs: Record<string, number[]> = {};
  for (const [name, sev] of Object.entries(corruptions)) {
    const s = [1, 2, 3, 4, 5].map((k) => sev[String(k)]);
    if (s.every(Boolean)) errs[name] = s.map((x) => 1 - x.top1);
  }
  const standard = Object.keys(errs).filter((k) => (IMAGENET_C_CORRUPTIONS as readonly string[]).includes(k));
  const m = standard.length ? mce(errs) : null;
  const rm = standard.length && clean ? relativeMce(errs, 1 - clean.top1) : null;
  const pack = (r: ReturnType<typeof mce> | null) =>
    r && { value: r.mce, complete: r.complete, missing: [...r.missing, ...r.incomplete], per_corruption: r.ce as Record<string, number> };

  const sweeps: Summary['sweeps'] = {};
  for (const [name, groups] of Object.entries(sweepGroups)) {
    const r = siScoreSweep(groups);
    sweeps[name as 'size'] = { accuracy: r.byValue, n: r.counts, mean: r.mean };
  }

  return {
    version: 1,
    model: settings.model,
    weights: settings.weights,
    data: settings.data,
    preprocessing,
    created: new Date().toISOString(),
    shards,
    clean,
    corruptions,
    mce: pack(m),
    relative_mce: pack(rm),
    sweeps,
    resolutions,
    unreadable: records.filter(isUnreadable).map((r) => ({ id: r.id, error: r.error })),
  };
}
