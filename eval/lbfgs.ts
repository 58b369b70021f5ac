// L-BFGS (the two-loop recursion of Nocedal & Wright, Numerical Optimization §7.2) with a backtracking
// Armijo line search, in f64 on Float64Array: the optimiser of eval/transfer.ts's linear probe
// (eval/logistic.ts's loss). Generic: any smooth f with its gradient. Documented at `lbfgs`.

export interface LbfgsOptions {
  maxIter?: number;
  /** History length. */
  memory?: number;
  /** Stop when max |gradient| ≤ gtol. */
  gtol?: number;
  /** Stop when an accepted step lowers f by ≤ ftol·max(|f|, 1). */
  ftol?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  f: number;
  iters: number;
  converged: boolean;
}

/**
 * Minimises f with L-BFGS: the two-loop recursion over the last `memory` (s, y) pairs with the
 * initial scaling γ = sᵀy/yᵀy, and a backtracking (Armijo, c₁ = 1e-4, halving) line search from
 * t = 1. The first step, and any step after the direction stops being a descent direction, is
 * steepest descent scaled to unit length. Pairs with sᵀy ≤ 1e-10·yᵀy are skipped, which keeps the
 * implicit Hessian positive definite without a Wolfe curvature test. `fg(x, g)` returns f(x) and
 * writes ∇f(x) into g.
 */
export function lbfgs(
  fg: (x: Float64Array, g: Float64Array) => number,
  x0: Float64Array,
  o: LbfgsOptions = {},
): LbfgsResult {
  const maxIter = o.maxIter ?? 300;
  const m = o.memory ?? 10;
  const gtol = o.gtol ?? 1e-6;
  const ftol = o.ftol ?? 1e-10;
  const P = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(P);
  let f = fg(x, g);
  const S: Float64Array[] = [];
  const Yh: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(m);
  const dir = new Float64Array(P);
  let iters = 0;
  let converged = false;
  for (; iters < maxIter; iters++) {
    let gmax = 0;
    for (let i = 0; i < P; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    if (gmax <= gtol) {
      converged = true;
      break;
    }

    // dir = −H·g (two-loop recursion).
    for (let i = 0; i < P; i++) dir[i] = -g[i];
    for (let h = S.length - 1; h >= 0; h--) {
      alpha[h] = rho[h] * dot(S[h], dir);
      axpy(-alpha[h], Yh[h], dir);
    }
    if (S.length > 0) {
      const last = S.length - 1;
      scale(dir, 1 / (rho[last] * dot(Yh[last], Yh[last])));
      for (let h = 0; h < S.length; h++) axpy(alpha[h] - rho[h] * dot(Yh[h], dir), S[h], dir);
    } else {
      scale(dir, 1 / Math.sqrt(dot(g, g)));
    }
    let slope = dot(g, dir);
    if (!(slope < 0)) {
      S.length = Yh.length = rho.length = 0;
      for (let i = 0; i < P; i++) dir[i] = -g[i];
      scale(dir, 1 / Math.sqrt(dot(g, g)));
      slope = dot(g, dir);
    }

    let t = 1;
    const xn = new Float64Array(P);
    const gn = new Float64Array(P);
    let fn = NaN;
    for (;;) {
      for (let i = 0; i < P; i++) xn[i] = x[i] + t * dir[i];
      fn = fg(xn, gn);
      if (fn <= f + 1e-4 * t * slope) break;
      t *= 0.5;
      if (t < 1e-20) break;
    }
    if (!(fn <= f + 1e-4 * t * slope)) break; // no decrease found: x is as good as it gets

    const s = new Float64Array(P);
    const yv = new Float64Array(P);
    for (let i = 0; i < P; i++) {
      s[i] = xn[i] - x[i];
      yv[i] = gn[i] - g[i];
    }
    const sy = dot(s, yv);
    if (sy > 1e-10 * dot(yv, yv)) {
      S.push(s);
      Yh.push(yv);
      rho.push(1 / sy);
      if (S.length > m) {
        S.shift();
        Yh.shift();
        rho.shift();
      }
    }
    const decrease = f - fn;
    x = xn;
    g = gn;
    f = fn;
    if (decrease <= ftol * Math.max(Math.abs(f), 1)) {
      converged = true;
      iters++;
      break;
    }
  }
  return { x, f, iters, converged };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] += a * x[i];
}
function scale(x: Float64Array, a: number): void {
  for (let i = 0; i < x.length; i++) x[i] *= a;
}
