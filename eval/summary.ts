// Records → summary.json, incrementally: `SummaryAccumulator` takes records one at a time
// (from a file being streamed, from several shards, from a run as it goes) and keeps only
// per-condition counts and exact sums, the clean images' confidences and correctness (for ECE)
// and the compact key set, so a summary of N records needs O(conditions + images) memory.
// Sums are exact (order-independent, correctly rounded), so a merge of shards in any order
// gives the summary one run gives. The first record of a (condition, image) counts; later
// duplicates are counted as such and ignored.

import type { Preprocess } from '../models/registry.js';
import {
  ECE_ADAPTIVE_100,
  ECE_EQUAL_WIDTH_15,
  ece,
  type ImageResult,
  IMAGENET_C_CORRUPTIONS,
  mce,
  type MceResult,
  NLL_EPS,
  reliability,
  relativeMce,
} from './metrics.js';
import {
  type Bitset,
  isUnreadable,
  LIMIT_SAMPLING,
  KeySet,
  type RunRecord,
  type RunSettings,
} from './record-format.js';
import type { ConditionMetrics, MceSummary, Summary } from './summary-schema.js';

/** Images in the ImageNet (ILSVRC-2012) validation set, which published ImageNet-C numbers use whole. */
export const IMAGENET_VAL_IMAGES = 50_000;

/**
 * An exact running sum of doubles (Shewchuk's non-overlapping partials, as Python's math.fsum):
 * `value()` is the correctly rounded sum, whatever the order the terms came in.
 */
export class ExactSum {
  private readonly p: number[] = [];
  /** Non-finite terms (a damaged record) are summed plainly, so they still show. */
  private special = 0;

  add(x: number): void {
    if (!Number.isFinite(x)) {
      this.special += x;
      return;
    }
    const p = this.p;
    let i = 0;
    for (let j = 0; j < p.length; j++) {
      let y = p[j];
      if (Math.abs(x) < Math.abs(y)) [x, y] = [y, x];
      const hi = x + y;
      const lo = y - (hi - x);
      if (lo !== 0) p[i++] = lo;
      x = hi;
    }
    p.length = i;
    p.push(x);
  }

  value(): number {
    if (this.special !== 0 || Number.isNaN(this.special)) return this.special;
    const p = this.p;
    let n = p.length;
    if (!n) return 0;
    let hi = p[--n];
    let lo = 0;
    while (n > 0) {
      const x = hi;
      const y = p[--n];
      hi = x + y;
      lo = y - (hi - x);
      if (lo !== 0) break;
    }
    // Round half to even across the partials left over (math.fsum's last step).
    if (n > 0 && ((lo < 0 && p[n - 1] < 0) || (lo > 0 && p[n - 1] > 0))) {
      const y = lo * 2;
      const x = hi + y;
      if (y === x - hi) hi = x;
    }
    return hi;
  }
}

interface CondStats {
  n: number;
  top1: number;
  top5: number;
}

const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export class SummaryAccumulator {
  /** Every (condition, image) counted, unreadable ones included. */
  readonly keys = new KeySet();
  /** Records counted, and duplicates ignored. */
  records = 0;
  duplicates = 0;
  private readonly conds = new Map<string, CondStats>();
  private readonly nll = new ExactSum();
  private readonly brier = new ExactSum();
  private conf = new Float64Array(1024);
  private correct = new Uint8Array(1024);
  private clean = 0;
  private readonly unreadable: { id: string; error: string }[] = [];

  /** Counts `r`; false when its (condition, image) was already counted. */
  add(r: RunRecord): boolean {
    if (!this.keys.add(r.cond, r.id)) {
      this.duplicates++;
      return false;
    }
    this.records++;
    if (isUnreadable(r)) {
      this.unreadable.push({ id: r.id, error: r.error });
      return true;
    }
    let s = this.conds.get(r.cond);
    if (!s) this.conds.set(r.cond, (s = { n: 0, top1: 0, top5: 0 }));
    const hit1 = r.top5.length > 0 && r.top5[0] === r.label;
    s.n++;
    if (hit1) s.top1++;
    if (r.top5.slice(0, 5).includes(r.label)) s.top5++;
    if (r.cond === 'clean') {
      this.nll.add(-Math.log(Math.max(r.p_label, NLL_EPS)));
      this.brier.add(r.sq);
      if (this.clean === this.conf.length) {
        const conf = new Float64Array(this.clean * 2),
          correct = new Uint8Array(this.clean * 2);
        conf.set(this.conf);
        correct.set(this.correct);
        this.conf = conf;
        this.correct = correct;
      }
      this.conf[this.clean] = r.conf;
      this.correct[this.clean++] = hit1 ? 1 : 0;
    }
    return true;
  }

  result(settings: RunSettings, preprocessing: Preprocess, shards: Summary['shards'] = null): Summary {
    const cm = (s: CondStats): ConditionMetrics => ({ n: s.n, top1: s.top1 / s.n, top5: s.top5 / s.n });
    const cleanStats = this.conds.get('clean');
    let clean: Summary['clean'] = null;
    if (cleanStats) {
      // ECE reads only confidence and correctness: stand-in results carry exactly those.
      const rs: ImageResult[] = Array.from({ length: this.clean }, (_, i) => ({
        label: 0,
        top5: [this.correct[i] ? 0 : 1],
        conf: this.conf[i],
        p_label: 0,
        sq: 0,
      }));
      const n = cleanStats.n;
      clean = {
        ...cm(cleanStats),
        nll: this.nll.value() / n,
        brier: this.brier.value() / n,
        ece: { adaptive_100: ece(rs, ECE_ADAPTIVE_100), equal_width_15: ece(rs, ECE_EQUAL_WIDTH_15) },
        reliability: reliability(rs, ECE_EQUAL_WIDTH_15.bins, ECE_EQUAL_WIDTH_15.scheme).map((b) => ({
          conf: b.count ? b.conf : null,
          acc: b.count ? b.acc : null,
          count: b.count,
        })),
      };
    }

    const corruptions: Summary['corruptions'] = {};
    const resolutions: Summary['resolutions'] = {};
    const sweepGroups: Record<string, [string, CondStats][]> = {};
    for (const cond of [...this.conds.keys()].sort(byCodeUnits)) {
      const s = this.conds.get(cond)!;
      const [kind, a, b] = cond.split('/');
      if (kind === 'c') (corruptions[a] ??= {})[b] = cm(s);
      else if (kind === 'res') resolutions[a] = cm(s);
      else if (kind === 'si') (sweepGroups[a] ??= []).push([b, s]);
    }

    // The model's own resolution is the clean condition.
    if (clean && !resolutions[String(preprocessing.size)])
      resolutions[String(preprocessing.size)] = { n: clean.n, top1: clean.top1, top5: clean.top5 };

    // mCE needs all five severities of a corruption; partial ones are reported as incomplete.
    const errs: Record<string, number[]> = {};
    for (const [name, sev] of Object.entries(corruptions)) {
      const s = [1, 2, 3, 4, 5].map((k) => sev[String(k)]);
      if (s.every(Boolean)) errs[name] = s.map((x) => 1 - x.top1);
    }
    const standard = Object.keys(errs).filter((k) => (IMAGENET_C_CORRUPTIONS as readonly string[]).includes(k));
    const sets = this.sameImagesAsClean(standard);
    const m = standard.length ? mce(errs) : null;
    const rm = standard.length && clean ? relativeMce(errs, 1 - clean.top1) : null;
    const pack = (r: MceResult | null): MceSummary | null =>
      r && {
        value: r.mce,
        complete: r.complete && !sets.length,
        missing: [...r.missing, ...r.incomplete],
        per_corruption: r.ce as Record<string, number>,
        reasons: mceReasons(r, sets),
      };

    const sweeps: Summary['sweeps'] = {};
    for (const [name, groups] of Object.entries(sweepGroups)) {
      const accuracy: Record<string, number> = {},
        n: Record<string, number> = {};
      let sum = 0;
      for (const [v, s] of groups) {
        accuracy[v] = s.top1 / s.n;
        n[v] = s.n;
        sum += accuracy[v];
      }
      sweeps[name as 'size'] = { accuracy, n, mean: sum / groups.length };
    }

    const mceOut = pack(m);
    const unreadable = [...this.unreadable].sort((a, b) => byCodeUnits(a.id, b.id));
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
      mce: mceOut,
      relative_mce: pack(rm),
      sweeps,
      resolutions,
      unreadable,
      settings,
      limit: settings.limit === null ? null : { n: settings.limit, sampling: LIMIT_SAMPLING },
      comparable: imagenetCComparability(settings, clean, mceOut, unreadable.length),
    };
  }

  /** For each counted corruption × severity whose images are not exactly clean's: why. */
  private sameImagesAsClean(corruptions: string[]): string[] {
    const cleanIds = this.keys.images('clean');
    const out: string[] = [];
    for (const c of corruptions) {
      for (let s = 1; s <= 5; s++) {
        const ids = this.keys.images(`c/${c}/${s}`)!;
        if (!cleanIds) out.push(`${c} severity ${s}: no clean images to compare with`);
        else if (!ids.equals(cleanIds)) out.push(setDifference(`${c} severity ${s}`, ids, cleanIds));
      }
    }
    return out;
  }
}

function setDifference(what: string, ids: Bitset, clean: Bitset): string {
  return `${what} covers ${ids.count} images, clean ${clean.count} (${clean.missingFrom(ids)} of clean's missing, ${ids.missingFrom(clean)} not in clean)`;
}

function mceReasons(r: MceResult, sets: string[]): string[] {
  const out: string[] = [];
  if (r.missing.length) out.push(`missing corruptions: ${r.missing.join(', ')}`);
  if (r.incomplete.length) out.push(`fewer than 5 severities: ${r.incomplete.join(', ')}`);
  out.push(...sets.slice(0, 10));
  if (sets.length > 10) out.push(`and ${sets.length - 10} more conditions whose images differ from clean's`);
  return out;
}

/**
 * Whether the numbers can stand next to published ImageNet-C ones: ImageNet-1k labels, all 15
 * corruptions × 5 severities over exactly clean's images, the full 50,000-image validation set,
 * and the released data set's storage step (8-bit, JPEG quality 85); otherwise why not.
 */
export function imagenetCComparability(
  s: RunSettings,
  clean: Summary['clean'],
  m: MceSummary | null,
  unreadable: number,
): { imagenet_c: boolean; reasons: string[] } {
  const reasons: string[] = [];
  if (s.labels === 'synthetic') reasons.push('the data is the built-in synthetic set, not ImageNet');
  else if (s.labels !== 'imagenet-synsets')
    reasons.push(`the labels are not ImageNet-1k's (class folders labelled by ${s.labels})`);
  if (s.weights_sha256 === null) reasons.push('random weights');
  if (!m) reasons.push('no mCE: no ImageNet-C corruption has all 5 severities');
  else if (!m.complete) reasons.push(`mCE is incomplete (${(m.reasons ?? m.missing).join('; ')})`);
  if (s.limit !== null) reasons.push(`--limit ${s.limit}: a subset of the images`);
  if (!clean) reasons.push('no clean condition');
  else if (clean.n !== IMAGENET_VAL_IMAGES)
    reasons.push(
      `${clean.n} clean images, not the full ${IMAGENET_VAL_IMAGES.toLocaleString('en')}-image validation set`,
    );
  if (unreadable) reasons.push(`${unreadable} unreadable images`);
  if (!s.imagenet_c_protocol)
    reasons.push(
      'corrupted images are not stored as 8-bit JPEG (quality 85) as in the released ImageNet-C (--imagenet-c-protocol)',
    );
  return { imagenet_c: reasons.length === 0, reasons };
}

/** The summary of `records` (any order, duplicates counted once): one run, or the shards of one. */
export function summarizeRun(
  settings: RunSettings,
  preprocessing: Preprocess,
  records: Iterable<RunRecord>,
  shards: Summary['shards'] = null,
): Summary {
  const acc = new SummaryAccumulator();
  for (const r of records) acc.add(r);
  return acc.result(settings, preprocessing, shards);
}
