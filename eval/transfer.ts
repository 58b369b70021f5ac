// Transfer protocols on frozen features (docs/calibration-transfer.md): few-shot linear regression as
// big_vision's `fewshot_lsr`, a multinomial logistic-regression linear probe, and VTAB-1k splits
// for that probe. Plain TS numerics in f64 (eval/linalg.ts; the probe's loss in eval/logistic.ts,
// minimised by eval/lbfgs.ts); features come in as f32 rows.
//
// A feature set is { x: Float32Array n×d row-major, y: Int32Array n labels in 0..C−1, n, d }.
//
// ---- Few-shot LSR (google-research/big_vision, big_vision/evaluators/fewshot_lsr.py and
//      big_vision/configs/common_fewshot.py), what is mirrored:
//   - shots [1, 5, 10, 25], seeds 0, 1, 2 (`range(num_seeds)`), l2_reg = 2^10.
//   - sampling: per seed, one permutation of each class's training indices; k shots take its
//     first k, so the subsets are nested across k within a seed. The sample is concatenated
//     class by class. big_vision draws the permutations from numpy's
//     default_rng(seed).permutation; here each (seed, class) permutation is a Fisher–Yates
//     shuffle of the class's indices in ascending order, driven by the shared counter-based hash
//     (eval/rng.ts `rngU32(seed, class, FEWSHOT_STREAM, step)`, the step-i draw
//     picking j = ⌊u32·(i+1)/2³²⌋ ∈ [0, i]). So the protocol is the same but the exact examples
//     differ from big_vision's; runs are reproducible from (seed, class) and independent of the
//     order classes are listed in.
//   - the mean and std of each feature are those of the k-shot sample itself (not the whole
//     training split); std is the population std (jnp.std, ddof 0) plus 1e-5, and test features
//     are standardised with the sample's statistics.
//   - a constant column of 100 (BIAS_CONSTANT) is appended after standardising: a bias that is
//     almost unregularised because its weight can be 100× smaller.
//   - targets 2·onehot − 1 over all C classes.
//   - W = (XᵀX + λI)⁻¹XᵀY when N ≥ D else Xᵀ(XXᵀ + λI)⁻¹Y, with D counting the bias column
//     (big_vision compares N with x.shape[1] after the pad); prediction argmax(XW), ties to the
//     lower class (np.argmax).
//   Differences: big_vision solves through an eigendecomposition (eigh) in f32 so that several
//   λ can reuse it; with one λ a Cholesky solve in f64 gives the same W (to f32 rounding).
//   big_vision silently uses fewer than k shots for a class that has fewer examples; here that is
//   an error naming the class. The result adds the mean and population std over seeds.
//
// ---- Linear probe: multinomial logistic regression, documented at `linearProbe`.
// ---- VTAB-1k: documented at `vtab1kSplits` / `vtab1k`.

import { rngU32 } from './rng.js';
import { lbfgs } from './lbfgs.js';
import { addDiagonal, choleskySolve, gram, matmulTN, toF64, transpose } from './linalg.js';
import { softmaxLoss } from './logistic.js';

export interface FeatureSet {
  /** Features, n×d row-major. */
  x: Float32Array;
  /** Labels, n values in 0..C−1. */
  y: Int32Array;
  n: number;
  d: number;
}

/** big_vision fewshot_lsr's BIAS_CONSTANT: the value of the appended bias column. */
export const BIAS_CONSTANT = 100;
/** Added to each feature's std before dividing (big_vision `jnp.std(x) + 1e-5`). */
export const STD_EPS = 1e-5;
/** big_vision common_fewshot.py defaults. */
export const FEWSHOT_DEFAULTS = { shots: [1, 5, 10, 25], seeds: 3, l2: 2 ** 10 } as const;
/** Default L2 grid of the probe: 1e-6, 1e-5, …, 1e2. */
export const DEFAULT_L2_GRID: readonly number[] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100];

// Streams of the shared hash, so the few-shot and VTAB shuffles never draw the same numbers.
const FEWSHOT_STREAM = 0x5107;
const VTAB_STREAM = 0x7ab1;

// ---- feature sets ----------------------------------------------------------------------------

function checkSet(s: FeatureSet, what: string): void {
  if (!Number.isInteger(s.n) || s.n < 0 || !Number.isInteger(s.d) || s.d < 1) {
    throw new Error(`${what}: bad shape n=${s.n}, d=${s.d}`);
  }
  if (s.x.length !== s.n * s.d) throw new Error(`${what}: x has ${s.x.length} values, expected n·d = ${s.n * s.d}`);
  if (s.y.length !== s.n) throw new Error(`${what}: y has ${s.y.length} labels, expected n = ${s.n}`);
  for (let i = 0; i < s.n; i++) {
    if (s.y[i] < 0) throw new Error(`${what}: label y[${i}] = ${s.y[i]} is negative`);
  }
}

/** The number of classes: `given`, or 1 + the largest label; every label must fit. */
function classCount(sets: readonly FeatureSet[], given?: number): number {
  let max = -1;
  for (const s of sets) for (let i = 0; i < s.n; i++) max = Math.max(max, s.y[i]);
  if (given === undefined) return max + 1;
  if (!Number.isInteger(given) || given < 1) throw new Error(`classes must be a positive integer, got ${given}`);
  if (max >= given) throw new Error(`label ${max} does not fit ${given} classes`);
  return given;
}

/** The rows `rows` of a feature set, as a new set. */
export function subset(s: FeatureSet, rows: ArrayLike<number>): FeatureSet {
  const n = rows.length;
  const x = new Float32Array(n * s.d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (!(r >= 0 && r < s.n)) throw new Error(`subset: row ${r} outside 0..${s.n - 1}`);
    x.set(s.x.subarray(r * s.d, (r + 1) * s.d), i * s.d);
    y[i] = s.y[r];
  }
  return { x, y, n, d: s.d };
}

/** Two sets stacked (train + val for a refit). */
export function concat(a: FeatureSet, b: FeatureSet): FeatureSet {
  if (a.d !== b.d) throw new Error(`concat: feature dims differ (${a.d} vs ${b.d})`);
  const x = new Float32Array((a.n + b.n) * a.d);
  x.set(a.x);
  x.set(b.x, a.x.length);
  const y = new Int32Array(a.n + b.n);
  y.set(a.y);
  y.set(b.y, a.n);
  return { x, y, n: a.n + b.n, d: a.d };
}

/**
 * A seeded permutation of `items`: Fisher–Yates, the swap at step i (from the end) picking
 * j = ⌊rngU32(seed, id, stream, i)·(i+1)/2³²⌋ (bias below 2⁻²⁰ for fewer than 4096 items).
 */
export function seededPermutation(items: ArrayLike<number>, seed: number, id: number, stream: number): Int32Array {
  const p = Int32Array.from(items);
  for (let i = p.length - 1; i > 0; i--) {
    const j = Math.floor((rngU32(seed >>> 0, id >>> 0, stream, i) * (i + 1)) / 4294967296);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

// ---- standardisation (shared) ----------------------------------------------------------------

export interface Standardizer {
  mean: Float64Array;
  /** Population std plus eps: the divisor itself. */
  std: Float64Array;
}

/**
 * Per-feature mean and population std (+ eps) over the rows `rows` of x (n×d; all rows when
 * omitted), two-pass in f64.
 */
export function fitStandardizer(
  x: Float32Array | Float64Array,
  n: number,
  d: number,
  rows?: ArrayLike<number>,
  eps = STD_EPS,
): Standardizer {
  const idx = rows ?? Int32Array.from({ length: n }, (_, i) => i);
  const m = idx.length;
  if (m === 0) throw new Error('fitStandardizer: no rows');
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  for (let i = 0; i < m; i++) {
    const r = idx[i] * d;
    for (let j = 0; j < d; j++) mean[j] += x[r + j];
  }
  for (let j = 0; j < d; j++) mean[j] /= m;
  for (let i = 0; i < m; i++) {
    const r = idx[i] * d;
    for (let j = 0; j < d; j++) {
      const v = x[r + j] - mean[j];
      std[j] += v * v;
    }
  }
  for (let j = 0; j < d; j++) std[j] = Math.sqrt(std[j] / m) + eps;
  return { mean, std };
}

/**
 * (x − mean)/std for the rows `rows` of x (all when omitted), as an f64 matrix; with `bias`, a
 * last column of that constant is appended (width d + 1).
 */
export function standardize(
  x: Float32Array | Float64Array,
  n: number,
  d: number,
  st: Standardizer,
  o: { rows?: ArrayLike<number>; bias?: number } = {},
): Float64Array {
  const idx = o.rows ?? Int32Array.from({ length: n }, (_, i) => i);
  const w = o.bias === undefined ? d : d + 1;
  const out = new Float64Array(idx.length * w);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i] * d;
    const o2 = i * w;
    for (let j = 0; j < d; j++) out[o2 + j] = (x[r + j] - st.mean[j]) / st.std[j];
    if (o.bias !== undefined) out[o2 + d] = o.bias;
  }
  return out;
}

/**
 * Accuracy of the linear scores ((x − mean)/std)·W + b (W d×c, b c) on a raw set. The
 * standardisation is folded into the weights (W/std, b − mean·W/std), which is the same map
 * without materialising a standardised copy of a large test set. Ties go to the lower class.
 */
export function linearAccuracy(s: FeatureSet, st: Standardizer, w: Float64Array, b: Float64Array, c: number): number {
  const { d } = s;
  const wf = new Float64Array(d * c);
  const bf = Float64Array.from(b);
  for (let j = 0; j < d; j++) {
    for (let k = 0; k < c; k++) {
      const v = w[j * c + k] / st.std[j];
      wf[j * c + k] = v;
      bf[k] -= st.mean[j] * v;
    }
  }
  let correct = 0;
  const z = new Float64Array(c);
  for (let i = 0; i < s.n; i++) {
    z.set(bf);
    const r = i * d;
    for (let j = 0; j < d; j++) {
      const xv = s.x[r + j];
      if (xv === 0) continue; // post-ReLU features are often sparse
      const wj = j * c;
      for (let k = 0; k < c; k++) z[k] += xv * wf[wj + k];
    }
    let best = 0;
    for (let k = 1; k < c; k++) if (z[k] > z[best]) best = k;
    if (best === s.y[i]) correct++;
  }
  return s.n === 0 ? NaN : correct / s.n;
}

// ---- ridge regression ------------------------------------------------------------------------

/**
 * Ridge regression W = argmin ‖XW − Y‖² + l2‖W‖² for X n×d, Y n×c (any row-major numeric
 * arrays), returning W d×c in f64. 'primal' solves (XᵀX + l2·I)W = XᵀY (a d×d system);
 * 'dual' solves (XXᵀ + l2·I)A = Y and returns W = XᵀA (an n×n system); 'auto' takes primal
 * when n ≥ d, as big_vision. Both are Cholesky solves (eval/linalg.ts, with its jitter fallback
 * for l2 ≈ 0).
 */
export function ridgeSolve(
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  n: number,
  d: number,
  c: number,
  l2: number,
  form: 'auto' | 'primal' | 'dual' = 'auto',
): Float64Array {
  if (x.length !== n * d) throw new Error(`ridgeSolve: X has ${x.length} values, expected ${n}×${d}`);
  if (y.length !== n * c) throw new Error(`ridgeSolve: Y has ${y.length} values, expected ${n}×${c}`);
  if (!(l2 >= 0)) throw new Error(`ridgeSolve: l2 must be ≥ 0, got ${l2}`);
  const X = toF64(x);
  const Y = toF64(y);
  const primal = form === 'primal' || (form === 'auto' && n >= d);
  if (primal) {
    const g = addDiagonal(gram(transpose(X, n, d), d, n), d, l2); // XᵀX + λI
    return choleskySolve(g, matmulTN(X, Y, n, d, c), d, c).x;
  }
  const k = addDiagonal(gram(X, n, d), n, l2); // XXᵀ + λI
  const a = choleskySolve(k, Y, n, c).x;
  return matmulTN(X, a, n, d, c); // Xᵀ A
}

// ---- few-shot LSR ----------------------------------------------------------------------------

export interface FewshotOptions {
  /** Shots per class; default [1, 5, 10, 25]. */
  shots?: readonly number[];
  /** Number of seeds, run as seeds 0..seeds−1; default 3. */
  seeds?: number;
  /** Ridge λ; default 2^10. */
  l2?: number;
  /** Number of classes; default 1 + the largest label in train or test. */
  classes?: number;
}

export interface FewshotResult {
  mean: number;
  /** Population std over seeds (np.std). */
  std: number;
  per_seed: number[];
}

/**
 * big_vision's few-shot linear regression (header): for each seed and each k, fit ridge on k
 * examples per class of `train` and report test accuracy. Keyed by String(k).
 */
export function fewshotLsr(train: FeatureSet, test: FeatureSet, o: FewshotOptions = {}): Record<string, FewshotResult> {
  checkSet(train, 'fewshotLsr train');
  checkSet(test, 'fewshotLsr test');
  if (train.d !== test.d) throw new Error(`fewshotLsr: train has ${train.d} features, test ${test.d}`);
  const shots = [...(o.shots ?? FEWSHOT_DEFAULTS.shots)];
  const seeds = o.seeds ?? FEWSHOT_DEFAULTS.seeds;
  const l2 = o.l2 ?? FEWSHOT_DEFAULTS.l2;
  for (const k of shots)
    if (!Number.isInteger(k) || k < 1) throw new Error(`fewshotLsr: shots must be positive integers, got ${k}`);
  if (!Number.isInteger(seeds) || seeds < 1)
    throw new Error(`fewshotLsr: seeds must be a positive integer, got ${seeds}`);
  const C = classCount([train, test], o.classes);
  const _d = train.d;

  const byClass: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < train.n; i++) byClass[train.y[i]].push(i);
  for (const k of [...shots].sort((a, b) => a - b)) {
    for (let cls = 0; cls < C; cls++) {
      if (byClass[cls].length < k) {
        throw new Error(
          `fewshotLsr: class ${cls} has ${byClass[cls].length} training example(s), fewer than k = ${k} shots`,
        );
      }
    }
  }

  const perSeed: Record<string, number[]> = {};
  for (const k of shots) perSeed[String(k)] = [];
  for (let seed = 0; seed < seeds; seed++) {
    const perms = byClass.map((idx, cls) => seededPermutation(idx, seed, cls, FEWSHOT_STREAM));
    for (const k of shots) {
      const rows = new Int32Array(C * k);
      for (let cls = 0; cls < C; cls++) rows.set(perms[cls].subarray(0, k), cls * k);
      perSeed[String(k)].push(lsrAccuracy(train, test, rows, C, l2));
    }
  }
  const out: Record<string, FewshotResult> = {};
  for (const k of shots) {
    const v = perSeed[String(k)];
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    out[String(k)] = { mean, std, per_seed: v };
  }
  return out;
}

/** One few-shot fit on the training rows `rows` and its test accuracy. */
function lsrAccuracy(train: FeatureSet, test: FeatureSet, rows: Int32Array, C: number, l2: number): number {
  const { d } = train;
  const N = rows.length;
  const st = fitStandardizer(train.x, train.n, d, rows);
  const X = standardize(train.x, train.n, d, st, { rows, bias: BIAS_CONSTANT });
  const Y = new Float64Array(N * C).fill(-1);
  for (let i = 0; i < N; i++) Y[i * C + train.y[rows[i]]] = 1;
  const W = ridgeSolve(X, Y, N, d + 1, C, l2);
  // The bias column's weights times its constant are the intercept.
  const b = new Float64Array(C);
  for (let k = 0; k < C; k++) b[k] = BIAS_CONSTANT * W[d * C + k];
  return linearAccuracy(test, st, W.subarray(0, d * C), b, C);
}

// ---- linear probe ----------------------------------------------------------------------------

export interface ProbeOptions {
  /** Candidate L2 strengths; default 1e-6, 1e-5, …, 1e2. */
  l2Grid?: readonly number[];
  /** L-BFGS iterations per fit; default 300. */
  maxIter?: number;
  /** Number of classes; default 1 + the largest label seen. */
  classes?: number;
}

export interface ProbeResult {
  /** Test accuracy of the refit on train + val. */
  accuracy: number;
  /** The chosen L2. */
  l2: number;
  /** Validation accuracy per L2, keyed by String(l2). */
  val: Record<string, number>;
  /** Whether the final refit met the L-BFGS stopping test within maxIter. */
  converged: boolean;
}

interface SoftmaxFit {
  theta: Float64Array;
  converged: boolean;
}

function fitSoftmax(
  X: Float64Array,
  y: Int32Array,
  n: number,
  d: number,
  c: number,
  l2: number,
  init: Float64Array,
  maxIter: number,
): SoftmaxFit {
  const r = lbfgs((t, g) => softmaxLoss(t, X, y, n, d, c, l2, g), init, { maxIter });
  return { theta: r.x, converged: r.converged };
}

/** Mean cross-entropy on a raw set (unregularised), with the folded standardisation. */
function meanNll(s: FeatureSet, st: Standardizer, theta: Float64Array, c: number): number {
  const X = standardize(s.x, s.n, s.d, st);
  return softmaxLoss(theta, X, s.y, s.n, s.d, c, 0);
}

/**
 * Linear probe: multinomial logistic regression (softmax cross-entropy + (l2/2)‖W‖², bias
 * unregularised, loss averaged over examples; `softmaxLoss`) on features standardised with the
 * training split's mean and population std (+1e-5), fitted by L-BFGS (`lbfgs`, θ₀ = 0).
 *   1. For each L2 in the grid, from the largest down, fit on `train`, warm-started from the
 *      previous (more regularised) solution, a continuation that keeps the weakly regularised
 *      fits cheap; score accuracy on `val`.
 *   2. Choose the L2 with the best val accuracy; ties go to the lower val cross-entropy, then to
 *      the larger L2.
 *   3. Refit on train + val (restandardised with their joint statistics) with that L2,
 *      warm-started from its train fit, and report accuracy on `test`.
 */
export function linearProbe(train: FeatureSet, val: FeatureSet, test: FeatureSet, o: ProbeOptions = {}): ProbeResult {
  checkSet(train, 'linearProbe train');
  checkSet(val, 'linearProbe val');
  checkSet(test, 'linearProbe test');
  if (val.d !== train.d || test.d !== train.d) {
    throw new Error(`linearProbe: feature dims differ (train ${train.d}, val ${val.d}, test ${test.d})`);
  }
  if (train.n === 0 || val.n === 0) throw new Error('linearProbe: train and val must be non-empty');
  const grid = [...(o.l2Grid ?? DEFAULT_L2_GRID)].sort((a, b) => b - a);
  if (grid.length === 0 || grid.some((v) => !(v >= 0))) throw new Error(`linearProbe: bad l2Grid ${grid}`);
  const maxIter = o.maxIter ?? 300;
  const C = classCount([train, val, test], o.classes);
  const { d } = train;
  const P = d * C + C;

  const st = fitStandardizer(train.x, train.n, d);
  const X = standardize(train.x, train.n, d, st);
  const valAcc: Record<string, number> = {};
  let best: { l2: number; acc: number; nll: number; theta: Float64Array } | undefined;
  let theta: Float64Array = new Float64Array(P);
  for (const l2 of grid) {
    theta = fitSoftmax(X, train.y, train.n, d, C, l2, theta, maxIter).theta;
    const acc = linearAccuracy(val, st, theta.subarray(0, d * C), theta.subarray(d * C), C);
    const nll = meanNll(val, st, theta, C);
    valAcc[String(l2)] = acc;
    // The grid runs from large to small L2, so a strict improvement is needed to move to a
    // smaller one: exact ties stay with the larger L2.
    if (!best || acc > best.acc || (acc === best.acc && nll < best.nll)) best = { l2, acc, nll, theta };
  }
  const chosen = best!;

  const all = concat(train, val);
  const st2 = fitStandardizer(all.x, all.n, d);
  const X2 = standardize(all.x, all.n, d, st2);
  const fit = fitSoftmax(X2, all.y, all.n, d, C, chosen.l2, chosen.theta, maxIter);
  const accuracy = linearAccuracy(test, st2, fit.theta.subarray(0, d * C), fit.theta.subarray(d * C), C);
  return { accuracy, l2: chosen.l2, val: valAcc, converged: fit.converged };
}

// ---- VTAB-1k ---------------------------------------------------------------------------------

export interface Vtab1kSplits {
  /** Indices into the pool, ascending: 800 (or 80% of a short pool). */
  train: Int32Array;
  /** Indices into the pool, ascending: 200 (or the rest of a short pool). */
  val: Int32Array;
  /** False when the pool had fewer than 1000 examples and all of them were used. */
  complete: boolean;
  /** Classes present in the chosen 1000 but absent from the train part (worth knowing for
   * many-class tasks, where 800 examples may miss some). */
  missing_in_train: number[];
  note?: string;
}

/**
 * VTAB-1k's 800 train + 200 val examples from a training pool of n: a seeded permutation of
 * 0..n−1 (`seededPermutation`, stream VTAB_STREAM), the first 800 for train and the next 200 for
 * val. VTAB itself takes fixed slices of the TFDS splits (800 from the train split, 200 from a
 * held-out slice); a seeded shuffle of whatever pool the caller has plays that role here. Fewer than 1000 examples
 * is an error unless `allowFewer`, which then splits all n 80/20 and says so (`complete`,
 * `note`).
 */
export function vtab1kSplits(
  n: number,
  labels: ArrayLike<number>,
  seed: number,
  o: { allowFewer?: boolean } = {},
): Vtab1kSplits {
  if (labels.length !== n) throw new Error(`vtab1kSplits: ${labels.length} labels for a pool of ${n}`);
  let nTrain = 800;
  let nVal = 200;
  let note: string | undefined;
  if (n < 1000) {
    if (!o.allowFewer)
      throw new Error(
        `vtab1kSplits: VTAB-1k needs 1000 examples, the pool has ${n} (pass allowFewer to split all of them 80/20)`,
      );
    if (n < 2) throw new Error(`vtab1kSplits: a pool of ${n} cannot be split`);
    nTrain = Math.max(1, Math.round(0.8 * n));
    nVal = n - nTrain;
    note = `pool of ${n} < 1000: used all of it, ${nTrain} train + ${nVal} val`;
  }
  const perm = seededPermutation(
    Int32Array.from({ length: n }, (_, i) => i),
    seed,
    0,
    VTAB_STREAM,
  );
  const train = perm.slice(0, nTrain).sort();
  const val = perm.slice(nTrain, nTrain + nVal).sort();
  const inTrain = new Set<number>();
  for (const i of train) inTrain.add(labels[i]);
  const missing = new Set<number>();
  for (const i of val) if (!inTrain.has(labels[i])) missing.add(labels[i]);
  return {
    train,
    val,
    complete: n >= 1000,
    missing_in_train: [...missing].sort((a, b) => a - b),
    ...(note ? { note } : {}),
  };
}

export interface Vtab1kOptions extends ProbeOptions {
  /** Seed of the 800/200 selection; default 0. */
  seed?: number;
  allowFewer?: boolean;
}

export interface Vtab1kResult {
  accuracy: number;
  l2: number;
  /** Examples in the final fit: 1000, or the whole pool when it was smaller. */
  n_train: number;
  val: Record<string, number>;
  complete: boolean;
  note?: string;
}

/**
 * VTAB-1k with the linear probe: L2 chosen on 800 train / 200 val, final fit on all 1000, test
 * accuracy. VTAB's published numbers (and BiT's) fine-tune the whole network (docs/calibration-transfer.md);
 * this is the frozen-feature variant, comparable only with other linear-probe numbers.
 */
export function vtab1k(trainPool: FeatureSet, test: FeatureSet, o: Vtab1kOptions = {}): Vtab1kResult {
  checkSet(trainPool, 'vtab1k trainPool');
  const sp = vtab1kSplits(trainPool.n, trainPool.y, o.seed ?? 0, { allowFewer: o.allowFewer });
  const C = classCount([trainPool, test], o.classes);
  const r = linearProbe(subset(trainPool, sp.train), subset(trainPool, sp.val), test, { ...o, classes: C });
  return {
    accuracy: r.accuracy,
    l2: r.l2,
    n_train: sp.train.length + sp.val.length,
    val: r.val,
    complete: sp.complete,
    ...(sp.note ? { note: sp.note } : {}),
  };
}
