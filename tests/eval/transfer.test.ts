import { describe, expect, it } from 'vitest';
import { uniforms } from '../helpers.js';
import { addDiagonal, cholesky, choleskySolve, gram, matmul, matmulTN, transpose } from '../../eval/linalg.js';
import { lbfgs } from '../../eval/lbfgs.js';
import { softmaxLoss } from '../../eval/logistic.js';
import {
  BIAS_CONSTANT,
  type FeatureSet,
  fewshotLsr,
  fitStandardizer,
  linearProbe,
  ridgeSolve,
  seededPermutation,
  standardize,
  vtab1k,
  vtab1kSplits,
} from '../../eval/transfer.js';

/** Seeded uniforms in [0,1) (tests/helpers.ts), so the synthetic sets are the same on every run. */
const rng = uniforms;

function gaussian(seed: number): () => number {
  const u = rng(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
}

function randMat(rows: number, cols: number, seed: number): Float64Array {
  const g = gaussian(seed);
  return Float64Array.from({ length: rows * cols }, g);
}

interface Clusters {
  classes: number;
  d: number;
  /** Std of the class means along each of the first `signalDims` dims. */
  sep: number;
  /** Std of the within-class noise on every dim. */
  noise: number;
  /** Dims that carry class information (the rest are pure noise); default all. */
  signalDims?: number;
}

/** Class c: mean μ_c (drawn once from `meanSeed`) plus isotropic Gaussian noise. */
function clusters(spec: Clusters, perClass: number, seed: number, meanSeed = 1): FeatureSet {
  const { classes, d, sep, noise } = spec;
  const sig = spec.signalDims ?? d;
  const gm = gaussian(meanSeed);
  const mu = Float64Array.from({ length: classes * d }, (_, i) => (i % d < sig ? sep * gm() : 0));
  const g = gaussian(seed);
  const n = classes * perClass;
  const x = new Float32Array(n * d);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % classes; // interleaved, so class order is not row order
    y[i] = c;
    for (let j = 0; j < d; j++) x[i * d + j] = mu[c * d + j] + noise * g();
  }
  return { x, y, n, d };
}

/** Dense solve by Gaussian elimination with partial pivoting: the independent oracle. */
function gaussSolve(a: Float64Array, b: Float64Array, n: number, c: number): Float64Array {
  const A = Float64Array.from(a);
  const B = Float64Array.from(b);
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r * n + col]) > Math.abs(A[p * n + col])) p = r;
    if (p !== col) {
      for (let k = 0; k < n; k++) [A[col * n + k], A[p * n + k]] = [A[p * n + k], A[col * n + k]];
      for (let k = 0; k < c; k++) [B[col * c + k], B[p * c + k]] = [B[p * c + k], B[col * c + k]];
    }
    for (let r = col + 1; r < n; r++) {
      const f = A[r * n + col] / A[col * n + col];
      for (let k = col; k < n; k++) A[r * n + k] -= f * A[col * n + k];
      for (let k = 0; k < c; k++) B[r * c + k] -= f * B[col * c + k];
    }
  }
  const X = new Float64Array(n * c);
  for (let r = n - 1; r >= 0; r--) {
    for (let k = 0; k < c; k++) {
      let s = B[r * c + k];
      for (let q = r + 1; q < n; q++) s -= A[r * n + q] * X[q * c + k];
      X[r * c + k] = s / A[r * n + r];
    }
  }
  return X;
}

/** Naive triple loop, the oracle for the products. */
function naiveMatmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** Ridge by the primal normal equations, formed and solved naively. */
function naiveRidge(x: Float64Array, y: Float64Array, n: number, d: number, c: number, l2: number): Float64Array {
  const xt = transpose(x, n, d);
  const a = naiveMatmul(xt, x, d, n, d);
  for (let i = 0; i < d; i++) a[i * d + i] += l2;
  return gaussSolve(a, naiveMatmul(xt, y, d, n, c), d, c);
}

/** max |a − b| / max(1, max |b|): the relative error the 1e-8 bounds below are stated in. */
function relErr(a: Float64Array, b: Float64Array): number {
  let e = 0;
  let m = 1;
  for (let i = 0; i < b.length; i++) {
    e = Math.max(e, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return e / m;
}

/** Standardised features + bias column + 2·onehot − 1 targets, as fewshot_lsr prepares them. */
function lsrDesign(s: FeatureSet, classes: number): { X: Float64Array; Y: Float64Array } {
  const st = fitStandardizer(s.x, s.n, s.d);
  const X = standardize(s.x, s.n, s.d, st, { bias: BIAS_CONSTANT });
  const Y = new Float64Array(s.n * classes).fill(-1);
  for (let i = 0; i < s.n; i++) Y[i * classes + s.y[i]] = 1;
  return { X, Y };
}

describe('linalg', () => {
  it('products match the naive triple loop', () => {
    const a = randMat(7, 5, 1);
    const b = randMat(5, 3, 2);
    expect(relErr(matmul(a, b, 7, 5, 3), naiveMatmul(a, b, 7, 5, 3))).toBeLessThan(1e-14);
    const at = transpose(a, 7, 5);
    const c = randMat(7, 3, 3);
    expect(relErr(matmulTN(a, c, 7, 5, 3), naiveMatmul(at, c, 5, 7, 3))).toBeLessThan(1e-14);
    // Odd row counts exercise gram's 2×4 block remainders.
    for (const n of [1, 2, 3, 5, 8, 11]) {
      const x = randMat(n, 9, 10 + n);
      expect(relErr(gram(x, n, 9), naiveMatmul(x, transpose(x, n, 9), n, 9, n))).toBeLessThan(1e-14);
    }
  });

  it('Cholesky solve matches Gaussian elimination on an SPD system', () => {
    const n = 37,
      c = 4;
    const x = randMat(n, 50, 4);
    const a = addDiagonal(gram(x, n, 50), n, 0.5);
    const b = randMat(n, c, 5);
    const l = cholesky(a, n)!;
    expect(relErr(naiveMatmul(l, transpose(l, n, n), n, n, n), a)).toBeLessThan(1e-13);
    const r = choleskySolve(a, b, n, c);
    expect(r.jitter).toBe(0);
    expect(relErr(r.x, gaussSolve(a, b, n, c))).toBeLessThan(1e-10);
  });

  it('falls back to a reported jitter on a singular Gram matrix', () => {
    const n = 12;
    const x = randMat(n, 4, 6); // rank 4 < 12
    const a = gram(x, n, 4);
    expect(cholesky(a, n)).toBeNull();
    const b = matmul(a, randMat(n, 2, 7), n, n, 2); // in A's range, so x stays bounded
    const r = choleskySolve(a, b, n, 2);
    expect(r.jitter).toBeGreaterThan(0);
    const aj = addDiagonal(Float64Array.from(a), n, r.jitter);
    expect(relErr(naiveMatmul(aj, r.x, n, n, 2), b)).toBeLessThan(1e-8);
    expect(() => choleskySolve(Float64Array.from([1, 0, 0, -1]), Float64Array.from([1, 1]), 2, 1)).toThrow(
      /not positive definite/,
    );
  });
});

describe('ridgeSolve', () => {
  const spec: Clusters = { classes: 4, d: 12, sep: 3, noise: 1 };

  it('matches the naively solved normal equations to 1e-8 (primal N ≥ D, dual N < D)', () => {
    for (const [perClass, l2] of [
      [10, 1024],
      [2, 1024],
      [10, 0.3],
      [2, 0.3],
    ] as const) {
      const s = clusters(spec, perClass, 20 + perClass);
      const { X, Y } = lsrDesign(s, 4);
      const d = s.d + 1;
      const want = naiveRidge(X, Y, s.n, d, 4, l2);
      const got = ridgeSolve(X, Y, s.n, d, 4, l2);
      expect(relErr(got, want), `N=${s.n} D=${d} λ=${l2}`).toBeLessThan(1e-8);
    }
  });

  it('primal and dual agree when both apply', () => {
    for (const perClass of [2, 10]) {
      // N = 8 < D = 13 and N = 40 > D
      const s = clusters(spec, perClass, 30 + perClass);
      const { X, Y } = lsrDesign(s, 4);
      for (const l2 of [1024, 1, 1e-3]) {
        const p = ridgeSolve(X, Y, s.n, 13, 4, l2, 'primal');
        const q = ridgeSolve(X, Y, s.n, 13, 4, l2, 'dual');
        expect(relErr(p, q), `N=${s.n} λ=${l2}`).toBeLessThan(1e-8);
      }
    }
  });

  it('dual solve for N = 1000, D = 2048, 10 classes is fast enough (prints the time)', () => {
    const n = 1000,
      d = 2048,
      c = 10;
    const s = clusters({ classes: c, d, sep: 1, noise: 1 }, n / c, 40);
    const { X, Y } = lsrDesign(s, c); // D = 2049 with the bias column: dual form
    const t0 = performance.now();
    const w = ridgeSolve(X, Y, n, d + 1, c, 2 ** 10);
    const ms = performance.now() - t0;
    console.log(`ridgeSolve dual N=${n} D=${d + 1} C=${c}: ${ms.toFixed(0)} ms`);
    expect(w.length).toBe((d + 1) * c);
    // The ridge optimality condition Xᵀ(XW − Y) + λW = 0, as a cheap correctness check at size.
    const r = matmul(X, w, n, d + 1, c);
    for (let i = 0; i < r.length; i++) r[i] -= Y[i];
    const g = matmulTN(X, r, n, d + 1, c);
    let worst = 0;
    for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] + 2 ** 10 * w[i]));
    expect(worst).toBeLessThan(1e-7);
    expect(ms).toBeLessThan(10_000); // sanity bound only: the machine is shared
  });
});

describe('fewshotLsr', () => {
  const spec: Clusters = { classes: 5, d: 16, sep: 1.2, noise: 1 };
  const train = clusters(spec, 30, 50);
  const test = clusters(spec, 40, 51);

  it('mirrors the protocol: per-sample standardisation, bias 100, ±1 targets, ridge, argmax', () => {
    const r = fewshotLsr(train, test, { shots: [1, 5, 25], seeds: 2 });
    expect(Object.keys(r)).toEqual(['1', '5', '25']);
    // Rebuild seed 1, k = 5 by hand: per class a seeded shuffle of its indices, the first 5.
    const byClass = Array.from({ length: 5 }, (_, c) => Array.from(train.y.keys()).filter((i) => train.y[i] === c));
    for (const [k, seed] of [
      [5, 1],
      [25, 0],
      [1, 1],
    ] as const) {
      const rows = byClass.flatMap((idx, c) => Array.from(seededPermutation(idx, seed, c, 0x5107).subarray(0, k)));
      const sel: FeatureSet = {
        x: Float32Array.from(rows.flatMap((i) => Array.from(train.x.subarray(i * 16, i * 16 + 16)))),
        y: Int32Array.from(rows.map((i) => train.y[i])),
        n: rows.length,
        d: 16,
      };
      const { X, Y } = lsrDesign(sel, 5);
      const W = naiveRidge(X, Y, sel.n, 17, 5, 2 ** 10);
      const st = fitStandardizer(sel.x, sel.n, 16);
      const Xt = standardize(test.x, test.n, 16, st, { bias: BIAS_CONSTANT });
      const scores = naiveMatmul(Xt, W, test.n, 17, 5);
      let correct = 0;
      for (let i = 0; i < test.n; i++) {
        let best = 0;
        for (let c = 1; c < 5; c++) if (scores[i * 5 + c] > scores[i * 5 + best]) best = c;
        if (best === test.y[i]) correct++;
      }
      expect(r[String(k)].per_seed[seed], `k=${k} seed=${seed}`).toBe(correct / test.n);
    }
    const v = r['25'].per_seed;
    expect(r['25'].mean).toBeCloseTo((v[0] + v[1]) / 2, 12);
    expect(r['25'].std).toBeCloseTo(Math.abs(v[0] - v[1]) / 2, 12);
    expect(r['25'].mean).toBeGreaterThan(r['1'].mean); // more shots help on these clusters
    expect(r['25'].mean).toBeGreaterThan(0.6);
  });

  it('is reproducible, and different seeds draw different samples', () => {
    const a = fewshotLsr(train, test, { shots: [1, 5], seeds: 3 });
    const b = fewshotLsr(train, test, { shots: [1, 5], seeds: 3 });
    expect(b).toEqual(a);
    const idx = Array.from({ length: 30 }, (_, i) => i * 5);
    const p0 = Array.from(seededPermutation(idx, 0, 0, 0x5107));
    expect(Array.from(seededPermutation(idx, 0, 0, 0x5107))).toEqual(p0);
    expect([...p0].sort((x, y) => x - y)).toEqual(idx);
    expect(Array.from(seededPermutation(idx, 1, 0, 0x5107))).not.toEqual(p0);
    expect(Array.from(seededPermutation(idx, 0, 1, 0x5107))).not.toEqual(p0); // classes differ too
    // 1-shot accuracy from one example per class varies between samples.
    expect(new Set(a['1'].per_seed).size).toBeGreaterThan(1);
  });

  it('rejects a class with fewer than k examples, naming class, k and count', () => {
    const keep = Array.from(train.y.keys()).filter((i) => train.y[i] !== 3 || i < 20); // class 3: 4 left
    const x = Float32Array.from(keep.flatMap((i) => Array.from(train.x.subarray(i * 16, i * 16 + 16))));
    const short: FeatureSet = { x, y: Int32Array.from(keep.map((i) => train.y[i])), n: keep.length, d: 16 };
    expect(() => fewshotLsr(short, test, { shots: [1, 5] })).toThrow(
      'class 3 has 4 training example(s), fewer than k = 5 shots',
    );
    expect(() => fewshotLsr(short, test, { shots: [1, 4], seeds: 1 })).not.toThrow();
    expect(() => fewshotLsr(short, test, { shots: [1], classes: 7 })).toThrow('class 5 has 0 training example(s)');
  });
});

describe('linear probe', () => {
  it('softmaxLoss gradient matches central finite differences', () => {
    const n = 9,
      d = 4,
      c = 3,
      l2 = 0.37;
    const x = randMat(n, d, 60);
    const y = Int32Array.from({ length: n }, (_, i) => (i * 7) % c);
    const theta = randMat(1, d * c + c, 61);
    const g = new Float64Array(theta.length);
    softmaxLoss(theta, x, y, n, d, c, l2, g);
    const h = 1e-5;
    for (let i = 0; i < theta.length; i++) {
      const tp = Float64Array.from(theta);
      tp[i] += h;
      const tm = Float64Array.from(theta);
      tm[i] -= h;
      const fd = (softmaxLoss(tp, x, y, n, d, c, l2) - softmaxLoss(tm, x, y, n, d, c, l2)) / (2 * h);
      expect(Math.abs(g[i] - fd), `θ[${i}]`).toBeLessThan(1e-8 + 1e-6 * Math.abs(fd));
    }
  });

  it('L-BFGS reaches the optimum of a strictly convex problem', () => {
    // Convex quadratic with a known minimiser, condition number 100. (scipy's L-BFGS-B, memory
    // 10, needs ~94 iterations on this spectrum; this one ~90.)
    const P = 20;
    const diag = Float64Array.from({ length: P }, (_, i) => 10 ** ((2 * i) / (P - 1)));
    const opt = randMat(1, P, 62);
    const r = lbfgs(
      (t, g) => {
        let f = 0;
        for (let i = 0; i < P; i++) {
          const e = t[i] - opt[i];
          f += 0.5 * diag[i] * e * e;
          g[i] = diag[i] * e;
        }
        return f;
      },
      new Float64Array(P),
      { maxIter: 500, gtol: 1e-9, ftol: 0 },
    );
    expect(r.converged).toBe(true);
    expect(relErr(r.x, opt)).toBeLessThan(1e-8);
  });

  it('reaches high accuracy on separable clusters', () => {
    const spec: Clusters = { classes: 4, d: 10, sep: 3, noise: 1 };
    const r = linearProbe(clusters(spec, 25, 70), clusters(spec, 25, 71), clusters(spec, 100, 72));
    expect(r.accuracy).toBeGreaterThan(0.95);
    expect(Object.keys(r.val)).toHaveLength(9);
    expect(r.converged).toBe(true);
  });

  it('picks a larger L2 when most features are noise', () => {
    const clean: Clusters = { classes: 3, d: 40, sep: 3, noise: 1 };
    const noisy: Clusters = { classes: 3, d: 40, sep: 0.6, noise: 1, signalDims: 2 };
    const grid = [1e-4, 1e-3, 1e-2, 1e-1, 1, 10];
    const a = linearProbe(clusters(clean, 10, 80), clusters(clean, 100, 81), clusters(clean, 100, 82), {
      l2Grid: grid,
    });
    const b = linearProbe(clusters(noisy, 10, 80), clusters(noisy, 100, 81), clusters(noisy, 100, 82), {
      l2Grid: grid,
    });
    console.log(`probe L2: clean ${a.l2} (acc ${a.accuracy.toFixed(3)}), noisy ${b.l2} (acc ${b.accuracy.toFixed(3)})`);
    expect(b.l2).toBeGreaterThan(a.l2);
    expect(a.accuracy).toBeGreaterThan(b.accuracy);
  });
});

describe('VTAB-1k', () => {
  const labels = Int32Array.from({ length: 1500 }, (_, i) => i % 7);

  it('selects 800 + 200 disjoint examples deterministically from the pool', () => {
    const s = vtab1kSplits(1500, labels, 3);
    expect(s.train.length).toBe(800);
    expect(s.val.length).toBe(200);
    expect(s.complete).toBe(true);
    const all = new Set([...s.train, ...s.val]);
    expect(all.size).toBe(1000);
    for (const i of all) expect(i >= 0 && i < 1500).toBe(true);
    expect(vtab1kSplits(1500, labels, 3)).toEqual(s);
    expect(Array.from(vtab1kSplits(1500, labels, 4).train)).not.toEqual(Array.from(s.train));
    expect(s.missing_in_train).toEqual([]);
  });

  it('refuses a short pool unless told, then uses all of it and says so', () => {
    expect(() => vtab1kSplits(900, labels.subarray(0, 900), 0)).toThrow(/needs 1000 examples, the pool has 900/);
    const s = vtab1kSplits(900, labels.subarray(0, 900), 0, { allowFewer: true });
    expect([s.train.length, s.val.length, s.complete]).toEqual([720, 180, false]);
    expect(s.note).toMatch(/900 < 1000/);
  });

  it('runs the probe on 800/200, refits on 1000, reports test accuracy', () => {
    const spec: Clusters = { classes: 5, d: 6, sep: 2, noise: 1 };
    const r = vtab1k(clusters(spec, 240, 90), clusters(spec, 60, 91), { l2Grid: [1e-3, 1e-1, 10], seed: 1 });
    expect(r.n_train).toBe(1000);
    expect(r.complete).toBe(true);
    expect([1e-3, 1e-1, 10]).toContain(r.l2);
    expect(r.accuracy).toBeGreaterThan(0.7);
  });
});
