// Metrics for robustness runs: accuracy, NLL, Brier, ECE (+ reliability bins), ImageNet-C
// (m)CE and relative (m)CE, SI-Score sweeps. All functions are pure.
//
// A run keeps one compact record per image (one JSONL line), not the 1000 probabilities:
//
//   label    true class index (in the model's output space)
//   top5     the 5 best class indices, best first (fewer if the model has < 5 classes)
//   conf     max softmax probability (top-label confidence, what ECE bins)
//   p_label  softmax probability of the true label (NLL)
//   sq       Σ_k (p_k − y_k)², the per-image multi-class Brier term, computed at run time
//
// `summarizeLogits` makes that record from one image's logits. Every metric below reads only
// these records, so shards merge by concatenating their records: no metric keeps per-shard state
// (ECE's adaptive bins, in particular, are recomputed from the pooled confidences).
//
// Conventions (robustness_metrics, google-research/robustness_metrics metrics/uncertainty.py,
// the evaluation code of the seed study; docs/calibration-transfer.md, docs/seed-study.md):
// - Ties in the logits go to the lower class index (tf.argmax / np.argmax keep the first
//   maximum). So with logits [1, 3, 3] and label 2, top-1 is wrong (class 1 wins) and top-5 right.
// - NLL = mean −log p_label with p_label clamped at 1e-12 (so a confidently wrong image costs at
//   most 27.6 nats instead of ∞). Keras' SparseCategoricalCrossentropy, which robustness_metrics
//   wraps, clips at 1e-7 instead (cap 16.1); the two agree whenever p_label ≥ 1e-7.
// - Brier = mean Σ_k (p_k − y_k)², i.e. robustness_metrics' `num_classes · MSE(p, onehot)`;
//   0 for a perfect one-hot prediction, 1 − 1/K for a uniform one, at most 2.
// - ECE uses the top-label confidence and L1: ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|.
//   'equal-width': bin = min(⌊conf·bins⌋, bins − 1), as robustness_metrics' "ece" metric
//     (tf.histogram_fixed_width_bins on [0, 1]; default there 15 bins).
//   'adaptive' (equal mass, Minderer et al. 2021: 100 bins; robustness_metrics "gce" with
//     binning_scheme='adaptive', max_prob, not class-conditional, l1): sort the confidences,
//     take edge positions round(m·N/bins) for m = 1..bins−1 (numpy rounding: halves to even, so
//     N = 10, bins = 4 gives sizes 2, 3, 3, 2), upper bounds = the confidences at those
//     positions plus 1.0, and put each image in the bin numpy.digitize picks: the number of
//     upper bounds ≤ conf. Consequences kept on purpose, as in the reference: equal
//     confidences always share a bin (a tie at an edge moves the whole tie up, so bins are only
//     nearly equal mass), bins can be empty, and confidences equal to 1.0 (common in float32 for
//     confident models) form an extra last bin of their own.
//   Empty bins contribute 0. `reliability` returns the bins themselves for a diagram.
// - Means over zero images are NaN, not 0: an empty shard must not look perfect.

/** One image's prediction as the model produced it; one of `logits` or `probs`. */
export interface Prediction {
  label: number;
  logits?: Float32Array;
  probs?: Float32Array;
}

/** The per-image record a run stores (one JSONL line); extra fields (id, severity…) are fine. */
export interface ImageResult {
  readonly label: number;
  readonly top5: readonly number[];
  readonly conf: number;
  readonly p_label: number;
  readonly sq: number;
}

/** Clamp for p_label in NLL (see header). */
export const NLL_EPS = 1e-12;

/**
 * The record for one image from its logits, with a stable softmax (max subtracted, f64).
 * `labelSet` restricts the prediction to a subset of the outputs, as robustness_metrics'
 * `use_dataset_labelset` does for ImageNet-A/-R (200 classes): the softmax runs over
 * logits[labelSet] only (= renormalising the full softmax over the subset), and top5 and label
 * stay in the model's class ids; the label must be in the set.
 */
export function summarizeLogits(logits: Float32Array, label: number, labelSet?: readonly number[]): ImageResult {
  const classes = checkInputs(logits, label, labelSet, 'logits');
  let max = -Infinity;
  for (const c of classes) max = Math.max(max, logits[c]);
  const p = new Float64Array(classes.length);
  let sum = 0;
  for (let i = 0; i < classes.length; i++) sum += p[i] = Math.exp(logits[classes[i]] - max);
  for (let i = 0; i < p.length; i++) p[i] /= sum;
  return fromProbs(p, classes, label);
}

/** The record from probabilities the model already normalised (used as given, not renormalised). */
export function summarizeProbs(probs: Float32Array, label: number, labelSet?: readonly number[]): ImageResult {
  const classes = checkInputs(probs, label, labelSet, 'probs');
  const p = new Float64Array(classes.length);
  let sum = 0;
  for (let i = 0; i < classes.length; i++) sum += p[i] = probs[classes[i]];
  // A subset of a softmax needs renormalising to be a distribution over that subset.
  if (labelSet) for (let i = 0; i < p.length; i++) p[i] /= sum;
  return fromProbs(p, classes, label);
}

export function summarize(pred: Prediction, labelSet?: readonly number[]): ImageResult {
  if (pred.logits) return summarizeLogits(pred.logits, pred.label, labelSet);
  if (pred.probs) return summarizeProbs(pred.probs, pred.label, labelSet);
  throw new Error('Prediction has neither logits nor probs');
}

function checkInputs(
  v: Float32Array,
  label: number,
  labelSet: readonly number[] | undefined,
  what: string,
): readonly number[] {
  for (let i = 0; i < v.length; i++) {
    if (!Number.isFinite(v[i])) throw new Error(`${what}[${i}] = ${v[i]} is not finite`);
  }
  const classes = labelSet ?? Array.from({ length: v.length }, (_, i) => i);
  if (classes.length === 0) throw new Error(`empty ${what}`);
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= v.length) {
      throw new Error(`class ${c} outside 0..${v.length - 1}`);
    }
  }
  if (!Number.isInteger(label) || !classes.includes(label)) {
    throw new Error(`label ${label} is not one of the ${classes.length} classes`);
  }
  return classes;
}

/** p[i] is the probability of class classes[i]. */
function fromProbs(p: Float64Array, classes: readonly number[], label: number): ImageResult {
  // Best first; equal probabilities keep the lower class id first (argmax convention).
  const order = Array.from(classes.keys()).sort((a, b) => p[b] - p[a] || classes[a] - classes[b]);
  const best = order.slice(0, 5).map((i) => classes[i]);
  let sq = 0;
  let pLabel = 0;
  for (let i = 0; i < p.length; i++) {
    const y = classes[i] === label ? 1 : 0;
    if (y) pLabel = p[i];
    sq += (p[i] - y) ** 2;
  }
  return { label, top5: best, conf: p[order[0]], p_label: pLabel, sq };
}

// ---- accuracy, NLL, Brier --------------------------------------------------------------------

const correct1 = (r: ImageResult): boolean => r.top5.length > 0 && r.top5[0] === r.label;
const correct5 = (r: ImageResult): boolean => r.top5.slice(0, 5).includes(r.label);

function meanOf(results: readonly ImageResult[], f: (r: ImageResult) => number): number {
  if (results.length === 0) return NaN;
  let s = 0;
  for (const r of results) s += f(r);
  return s / results.length;
}

/** Top-1 accuracy in [0, 1]. */
export const top1 = (results: readonly ImageResult[]): number => meanOf(results, (r) => (correct1(r) ? 1 : 0));

/** Top-5 accuracy in [0, 1]. */
export const top5 = (results: readonly ImageResult[]): number => meanOf(results, (r) => (correct5(r) ? 1 : 0));

/** Mean −log max(p_label, 1e-12), in nats. */
export const nll = (results: readonly ImageResult[]): number =>
  meanOf(results, (r) => -Math.log(Math.max(r.p_label, NLL_EPS)));

/** Mean Σ_k (p_k − y_k)² (multi-class Brier, robustness_metrics' scaling). */
export const brier = (results: readonly ImageResult[]): number => meanOf(results, (r) => r.sq);

// ---- calibration ------------------------------------------------------------------------------

export type BinScheme = 'adaptive' | 'equal-width';

export interface EceOptions {
  bins: number;
  scheme: BinScheme;
}

/** Minderer et al. 2021 standard (docs/calibration-transfer.md). */
export const ECE_ADAPTIVE_100: EceOptions = { bins: 100, scheme: 'adaptive' };
/** The common alternative (Guo et al.; robustness_metrics' "ece" default). */
export const ECE_EQUAL_WIDTH_15: EceOptions = { bins: 15, scheme: 'equal-width' };

export interface ReliabilityBin {
  /** Bin range: [lo, hi) except the last equal-width bin, which includes 1. */
  lo: number;
  hi: number;
  /** Mean confidence and accuracy of the bin's images (NaN when empty). */
  conf: number;
  acc: number;
  count: number;
}

/**
 * Per-bin confidence, accuracy and count. Equal-width: exactly `bins` entries. Adaptive:
 * `bins` entries, plus an entry {lo: 1, hi: 1} when some confidences are ≥ 1 (numpy.digitize's
 * overflow bin, see header); lo/hi are the bin's edges taken from the data.
 */
export function reliability(results: readonly ImageResult[], bins: number, scheme: BinScheme): ReliabilityBin[] {
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`bins must be a positive integer, got ${bins}`);
  // Sorting first makes every sum below independent of record order (equal confidences are
  // equal numbers), so merged shards give bit-identical ECE whatever the order.
  const sorted = [...results].sort((a, b) => a.conf - b.conf);
  const n = sorted.length;
  let lower: number[];
  let upper: number[];
  let binOf: (conf: number) => number;
  if (scheme === 'equal-width') {
    lower = Array.from({ length: bins }, (_, m) => m / bins);
    upper = Array.from({ length: bins }, (_, m) => (m + 1) / bins);
    binOf = (c) => Math.min(Math.max(Math.floor(c * bins), 0), bins - 1);
  } else if (scheme === 'adaptive') {
    // Upper bounds as robustness_metrics' _get_adaptive_bins; with no data, equal width.
    const edges =
      n === 0
        ? Array.from({ length: bins }, (_, m) => m / bins)
        : Array.from({ length: bins }, (_, m) => sorted[Math.min(roundHalfEven(m * (n / bins)), n - 1)].conf);
    const bounds = [...edges.slice(1), 1];
    lower = [0, ...bounds];
    upper = [...bounds, 1];
    binOf = (c) => countAtMost(bounds, c);
  } else {
    throw new Error(`unknown bin scheme "${scheme as string}"`);
  }
  const out: ReliabilityBin[] = lower.map((lo, m) => ({ lo, hi: upper[m], conf: 0, acc: 0, count: 0 }));
  for (const r of sorted) {
    const b = out[binOf(r.conf)];
    b.conf += r.conf;
    b.acc += correct1(r) ? 1 : 0;
    b.count++;
  }
  for (const b of out) {
    b.conf = b.count ? b.conf / b.count : NaN;
    b.acc = b.count ? b.acc / b.count : NaN;
  }
  // The overflow bin exists only for adaptive binning and is reported only when used.
  if (scheme === 'adaptive' && out[bins].count === 0) out.pop();
  return out;
}

/** ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|; default 100 adaptive bins (docs/calibration-transfer.md). */
export function ece(results: readonly ImageResult[], opts: EceOptions = ECE_ADAPTIVE_100): number {
  if (results.length === 0) return NaN;
  let e = 0;
  for (const b of reliability(results, opts.bins, opts.scheme)) {
    if (b.count) e += (b.count / results.length) * Math.abs(b.acc - b.conf);
  }
  return e;
}

/** numpy.round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** How many of the non-decreasing `bounds` are ≤ x (numpy.digitize, right=False). */
function countAtMost(bounds: readonly number[], x: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (bounds[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// ---- ImageNet-C -------------------------------------------------------------------------------

/** The 15 corruptions that enter mCE, named as in hendrycks/robustness (and eval/corruptions). */
export const IMAGENET_C_CORRUPTIONS = [
  'gaussian_noise',
  'shot_noise',
  'impulse_noise',
  'defocus_blur',
  'glass_blur',
  'motion_blur',
  'zoom_blur',
  'snow',
  'frost',
  'fog',
  'brightness',
  'contrast',
  'elastic_transform',
  'pixelate',
  'jpeg_compression',
] as const;
export type ImageNetCCorruption = (typeof IMAGENET_C_CORRUPTIONS)[number];

/**
 * AlexNet top-1 error per corruption, docs/imagenet-c.md. Each number is AlexNet's error averaged
 * over the 5 severities (hendrycks/robustness divides a model's mean-over-severities error by
 * it). Since both sides average the same 5 severities, CE_c = Σ_s E(s,c) / Σ_s E_AlexNet(s,c)
 * = mean_s E(s,c) / ALEXNET_ERR[c], which is how it is computed here.
 */
export const ALEXNET_ERR: Readonly<Record<ImageNetCCorruption, number>> = {
  gaussian_noise: 0.886428,
  shot_noise: 0.894468,
  impulse_noise: 0.92264,
  defocus_blur: 0.81988,
  glass_blur: 0.826268,
  motion_blur: 0.785948,
  zoom_blur: 0.79836,
  snow: 0.866816,
  frost: 0.826572,
  fog: 0.819324,
  brightness: 0.564592,
  contrast: 0.853204,
  elastic_transform: 0.646056,
  pixelate: 0.71784,
  jpeg_compression: 0.6065,
};
export const ALEXNET_CLEAN_ERR = 0.4348;

const SEVERITIES = 5;

function checkCorruption(c: string): asserts c is ImageNetCCorruption {
  if (!(c in ALEXNET_ERR)) {
    throw new Error(`"${c}" is not one of the 15 mCE corruptions (${IMAGENET_C_CORRUPTIONS.join(', ')})`);
  }
}

/** Mean error over severities 1..5; exactly 5, each in [0, 1]. */
function meanSeverityErr(errBySeverity: readonly number[], c: string): number {
  if (errBySeverity.length !== SEVERITIES) {
    throw new Error(`${c}: need top-1 errors for severities 1..5, got ${errBySeverity.length}`);
  }
  for (const e of errBySeverity) {
    if (!(e >= 0 && e <= 1)) throw new Error(`${c}: error ${e} outside [0, 1]`);
  }
  return errBySeverity.reduce((a, b) => a + b, 0) / SEVERITIES;
}

/** CE_c (1 = AlexNet; papers print it ×100). errBySeverity: top-1 errors at severities 1..5. */
export function ce(errBySeverity: readonly number[], corruption: string): number {
  checkCorruption(corruption);
  return meanSeverityErr(errBySeverity, corruption) / ALEXNET_ERR[corruption];
}

/** Relative CE_c = Σ_s (E(s,c) − E_clean) / Σ_s (E_AlexNet(s,c) − E_AlexNet,clean). */
export function relativeCe(errBySeverity: readonly number[], cleanErr: number, corruption: string): number {
  checkCorruption(corruption);
  if (!(cleanErr >= 0 && cleanErr <= 1)) throw new Error(`clean error ${cleanErr} outside [0, 1]`);
  return (meanSeverityErr(errBySeverity, corruption) - cleanErr) / (ALEXNET_ERR[corruption] - ALEXNET_CLEAN_ERR);
}

export interface MceResult {
  /** Mean CE over the corruptions used (NaN if none). */
  mce: number;
  /** CE per corruption used. */
  ce: Partial<Record<ImageNetCCorruption, number>>;
  /** True when all 15 were present with 5 severities each; only then is `mce` the mCE. */
  complete: boolean;
  /** Standard corruptions absent from the input. */
  missing: ImageNetCCorruption[];
  /** Standard corruptions present without exactly 5 severities (left out of the mean). */
  incomplete: ImageNetCCorruption[];
  /** Keys that are not among the 15 (the extras: speckle_noise, gaussian_blur…), ignored. */
  ignored: string[];
}

function meanOverCorruptions(
  errors: Readonly<Record<string, readonly number[]>>,
  perCorruption: (errs: readonly number[], c: ImageNetCCorruption) => number,
): MceResult {
  const res: MceResult = { mce: NaN, ce: {}, complete: true, missing: [], incomplete: [], ignored: [] };
  for (const k of Object.keys(errors)) if (!(k in ALEXNET_ERR)) res.ignored.push(k);
  let sum = 0;
  let n = 0;
  for (const c of IMAGENET_C_CORRUPTIONS) {
    const errs = errors[c];
    if (!errs) res.missing.push(c);
    else if (errs.length !== SEVERITIES) res.incomplete.push(c);
    else {
      const v = perCorruption(errs, c);
      res.ce[c] = v;
      sum += v;
      n++;
    }
  }
  res.complete = n === IMAGENET_C_CORRUPTIONS.length;
  res.mce = n ? sum / n : NaN;
  return res;
}

/**
 * mCE over the 15 standard corruptions. errors[c] = top-1 errors at severities 1..5. A partial
 * run still reports the mean over what is there, with complete = false and what is missing.
 */
export function mce(errors: Readonly<Record<string, readonly number[]>>): MceResult {
  return meanOverCorruptions(errors, (e, c) => ce(e, c));
}

/** Relative mCE (mean relative CE); `ce` in the result holds the relative CEs. */
export function relativeMce(errors: Readonly<Record<string, readonly number[]>>, cleanErr: number): MceResult {
  return meanOverCorruptions(errors, (e, c) => relativeCe(e, cleanErr, c));
}

// ---- SI-Score and aggregation -----------------------------------------------------------------

/** Items grouped by key, in first-seen order (a Map, so numeric-looking keys keep that order). */
export function groupBy<T>(items: readonly T[], key: (item: T) => string | number): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const it of items) {
    const k = String(key(it));
    const g = out.get(k);
    if (g) g.push(it);
    else out.set(k, [it]);
  }
  return out;
}

export interface GroupAccuracy {
  n: number;
  top1: number;
  top5: number;
}

/** Top-1/top-5 accuracy per key (per corruption × severity, per factor value…). */
export function accuracyByKey<T extends ImageResult>(
  results: readonly T[],
  key: (r: T) => string | number,
): Map<string, GroupAccuracy> {
  const out = new Map<string, GroupAccuracy>();
  for (const [k, g] of groupBy(results, key)) out.set(k, { n: g.length, top1: top1(g), top5: top5(g) });
  return out;
}

export interface SweepResult {
  /** Top-1 accuracy per factor value. */
  byValue: Record<string, number>;
  /** Images per factor value. */
  counts: Record<string, number>;
  /** Mean over factor values (each value weighs the same, whatever its image count). */
  mean: number;
}

/**
 * One SI-Score sweep (docs/si-score.md): accuracy per factor value (object size, location "x,y",
 * rotation angle…) and the sweep average. Groups: e.g. `groupBy(results, r => r.area)`.
 */
export function siScoreSweep(
  groups: ReadonlyMap<string, readonly ImageResult[]> | Readonly<Record<string, readonly ImageResult[]>>,
): SweepResult {
  const entries = groups instanceof Map ? [...groups.entries()] : Object.entries(groups);
  const res: SweepResult = { byValue: {}, counts: {}, mean: NaN };
  let sum = 0;
  for (const [v, g] of entries) {
    if (g.length === 0) throw new Error(`SI-Score factor value ${v} has no images`);
    const a = top1(g);
    res.byValue[v] = a;
    res.counts[v] = g.length;
    sum += a;
  }
  if (entries.length) res.mean = sum / entries.length;
  return res;
}

export interface MetricsSummary {
  n: number;
  top1: number;
  top5: number;
  nll: number;
  brier: number;
  /** 100 equal-mass bins (the standard) and 15 equal-width bins. */
  eceAdaptive100: number;
  eceEqualWidth15: number;
}

/** Every scalar metric of one set of records, for run summaries. */
export function summarizeResults(results: readonly ImageResult[]): MetricsSummary {
  return {
    n: results.length,
    top1: top1(results),
    top5: top5(results),
    nll: nll(results),
    brier: brier(results),
    eceAdaptive100: ece(results, ECE_ADAPTIVE_100),
    eceEqualWidth15: ece(results, ECE_EQUAL_WIDTH_15),
  };
}
