// Dense linear algebra for the transfer protocols (eval/transfer.ts; beside it, the probe's
// optimiser eval/lbfgs.ts and its loss eval/logistic.ts): plain TS on row-major Float64Array,
// no GPU. Sizes are those of a linear head on frozen features: N ≤ a few thousand examples,
// D ≤ a few thousand features, C ≤ a few hundred classes.
//
// Every matrix is a row-major Float64Array with its dimensions passed beside it
// (A is m×n: A[i·n + j]). Loop orders keep the innermost loop on contiguous memory:
//   gram       X·Xᵀ as dot products of rows, register-blocked 2 rows × 4 rows (the dominant
//              cost of a dual ridge solve: N²·D/2 multiply-adds)
//   matmul     A·B in i-k-j order (a row of B streams into a row of C)
//   matmulTN   Aᵀ·B without forming Aᵀ: one rank-1 update per row of A and B
//   cholesky   row-oriented (Cholesky–Banachiewicz): L[i][j] is a dot product of rows i and j
//   solves     forward substitution by rows, back substitution by the rows of L (= columns of Lᵀ)
// f64 throughout: the normal equations square the condition number, and f32 would lose the
// 1e-8 agreement the tests ask of the closed forms.

/** A row-major copy in f64 (no copy when it already is one and `copy` is false). */
export function toF64(a: ArrayLike<number>, copy = false): Float64Array {
  if (a instanceof Float64Array && !copy) return a;
  return Float64Array.from(a);
}

/** Aᵀ (n×m) of A (m×n). */
export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  checkSize(a, m * n, 'transpose: A');
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const r = i * n;
    for (let j = 0; j < n; j++) t[j * m + i] = a[r + j];
  }
  return t;
}

/** C = A·B with A m×k, B k×n (i-k-j order). */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  checkSize(a, m * k, 'matmul: A');
  checkSize(b, k * n, 'matmul: B');
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += av * b[bp + j];
    }
  }
  return c;
}

/** C = Aᵀ·B with A k×m, B k×n → C m×n (one rank-1 update per shared row). */
export function matmulTN(a: Float64Array, b: Float64Array, k: number, m: number, n: number): Float64Array {
  checkSize(a, k * m, 'matmulTN: A');
  checkSize(b, k * n, 'matmulTN: B');
  const c = new Float64Array(m * n);
  for (let p = 0; p < k; p++) {
    const ap = p * m;
    const bp = p * n;
    for (let i = 0; i < m; i++) {
      const av = a[ap + i];
      if (av === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j] += av * b[bp + j];
    }
  }
  return c;
}

/**
 * G = X·Xᵀ (n×n, symmetric, both triangles filled) for X n×d. For XᵀX pass transpose(X): the
 * same row-dot kernel then runs over contiguous columns.
 */
export function gram(x: Float64Array, n: number, d: number): Float64Array {
  checkSize(x, n * d, 'gram: X');
  const g = new Float64Array(n * n);
  const put = (i: number, j: number, v: number): void => {
    g[i * n + j] = v;
    g[j * n + i] = v;
  };
  const single = (i: number, j: number): void => {
    const ri = i * d,
      rj = j * d;
    let s = 0;
    for (let k = 0; k < d; k++) s += x[ri + k] * x[rj + k];
    put(i, j, s);
  };
  let i = 0;
  // Register block: rows i, i+1 against rows j..j+3 (j + 3 ≤ i), 6 loads per 8 multiply-adds
  // (a row-by-row dot product needs 2 per 1). About 1.3× faster than 1×4 in V8 here.
  for (; i + 1 < n; i += 2) {
    const ra = i * d,
      rb = ra + d;
    let j = 0;
    for (; j + 3 <= i; j += 4) {
      const r0 = j * d,
        r1 = r0 + d,
        r2 = r1 + d,
        r3 = r2 + d;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0,
        b0 = 0,
        b1 = 0,
        b2 = 0,
        b3 = 0;
      for (let k = 0; k < d; k++) {
        const xa = x[ra + k],
          xb = x[rb + k];
        const y0 = x[r0 + k],
          y1 = x[r1 + k],
          y2 = x[r2 + k],
          y3 = x[r3 + k];
        a0 += xa * y0;
        a1 += xa * y1;
        a2 += xa * y2;
        a3 += xa * y3;
        b0 += xb * y0;
        b1 += xb * y1;
        b2 += xb * y2;
        b3 += xb * y3;
      }
      put(i, j, a0);
      put(i, j + 1, a1);
      put(i, j + 2, a2);
      put(i, j + 3, a3);
      put(i + 1, j, b0);
      put(i + 1, j + 1, b1);
      put(i + 1, j + 2, b2);
      put(i + 1, j + 3, b3);
    }
    for (; j <= i + 1; j++) {
      if (j <= i) single(i, j);
      single(i + 1, j);
    }
  }
  for (; i < n; i++) for (let j = 0; j <= i; j++) single(i, j);
  return g;
}

/** A += v·I in place (A n×n). */
export function addDiagonal(a: Float64Array, n: number, v: number): Float64Array {
  checkSize(a, n * n, 'addDiagonal: A');
  for (let i = 0; i < n; i++) a[i * n + i] += v;
  return a;
}

/**
 * Lower-triangular L with A = L·Lᵀ (row-major n×n, upper triangle zero), or null when A is not
 * numerically positive definite (a pivot ≤ 1e-14 times its diagonal entry, or not finite).
 * Only the lower triangle of A is read.
 */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  checkSize(a, n * n, 'cholesky: A');
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      // Four partial sums: a single accumulator makes this loop latency-bound.
      let s0 = 0,
        s1 = 0,
        s2 = 0,
        s3 = 0;
      let k = 0;
      for (; k + 3 < j; k += 4) {
        s0 += l[ri + k] * l[rj + k];
        s1 += l[ri + k + 1] * l[rj + k + 1];
        s2 += l[ri + k + 2] * l[rj + k + 2];
        s3 += l[ri + k + 3] * l[rj + k + 3];
      }
      for (; k < j; k++) s0 += l[ri + k] * l[rj + k];
      const s = a[ri + j] - (s0 + s1 + (s2 + s3));
      if (i === j) {
        if (!(s > 1e-14 * Math.abs(a[ri + i])) || !Number.isFinite(s)) return null;
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
  return l;
}

/** Solves L·Lᵀ·X = B for X (n×c) given the factor L; B is not modified. */
export function choleskySubstitute(l: Float64Array, b: Float64Array, n: number, c: number): Float64Array {
  checkSize(l, n * n, 'choleskySubstitute: L');
  checkSize(b, n * c, 'choleskySubstitute: B');
  const x = Float64Array.from(b);
  // Forward: L·Y = B, row i of Y from the rows above it.
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    const xi = i * c;
    for (let k = 0; k < i; k++) {
      const lik = l[ri + k];
      if (lik === 0) continue;
      const xk = k * c;
      for (let j = 0; j < c; j++) x[xi + j] -= lik * x[xk + j];
    }
    const inv = 1 / l[ri + i];
    for (let j = 0; j < c; j++) x[xi + j] *= inv;
  }
  // Backward: Lᵀ·X = Y. Once row i of X is final, subtract its share from the rows above it;
  // Lᵀ[k][i] = L[i][k] is row i of L, so this reads L by rows.
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    const xi = i * c;
    const inv = 1 / l[ri + i];
    for (let j = 0; j < c; j++) x[xi + j] *= inv;
    for (let k = 0; k < i; k++) {
      const lik = l[ri + k];
      if (lik === 0) continue;
      const xk = k * c;
      for (let j = 0; j < c; j++) x[xk + j] -= lik * x[xi + j];
    }
  }
  return x;
}

export interface CholeskySolution {
  /** X (n×c) with (A + jitter·I)·X = B. */
  x: Float64Array;
  /** The diagonal jitter that made A factorisable; 0 when A was positive definite as given. */
  jitter: number;
}

/**
 * Solves A·X = B for symmetric positive (semi)definite A (n×n) and B (n×c). When the
 * factorisation fails (A singular or indefinite by rounding), retries with A + jitter·I,
 * jitter = 1e-12·mean(diag A) growing ×10 up to 1e-4·mean(diag A), and reports the jitter used;
 * beyond that it throws (the matrix is not a regularised Gram matrix). A is not modified.
 */
export function choleskySolve(a: Float64Array, b: Float64Array, n: number, c: number): CholeskySolution {
  checkSize(a, n * n, 'choleskySolve: A');
  checkSize(b, n * c, 'choleskySolve: B');
  let l = cholesky(a, n);
  let jitter = 0;
  if (!l) {
    let meanDiag = 0;
    for (let i = 0; i < n; i++) meanDiag += Math.abs(a[i * n + i]);
    meanDiag = meanDiag / n || 1;
    const work = new Float64Array(a.length);
    for (let scale = 1e-12; scale <= 1e-4 * 1.0001 && !l; scale *= 10) {
      jitter = scale * meanDiag;
      work.set(a);
      l = cholesky(addDiagonal(work, n, jitter), n);
    }
    if (!l) throw new Error(`choleskySolve: ${n}×${n} matrix is not positive definite even with jitter ${jitter}`);
  }
  return { x: choleskySubstitute(l, b, n, c), jitter };
}

function checkSize(a: ArrayLike<number>, size: number, what: string): void {
  if (a.length !== size) throw new Error(`${what} has ${a.length} entries, expected ${size}`);
}
