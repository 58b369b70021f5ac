// The loss of multinomial logistic regression (softmax cross-entropy of a linear model, L2 on the
// weights) and its gradient, in f64 on row-major Float64Array as eval/linalg.ts; minimised by
// eval/lbfgs.ts for the linear probe of eval/transfer.ts (docs/calibration-transfer.md). The
// loops skip zero features (post-ReLU features are often sparse).

/**
 * Softmax cross-entropy of a linear model and its gradient. θ = [W (d×c row-major), b (c)],
 * X n×d (already standardised), labels y. Returns
 *   L(θ) = (1/n) Σ_i [logsumexp(x_i·W + b) − (x_i·W + b)_{y_i}] + (l2/2)·‖W‖²_F
 * (the bias is not regularised) and, when `grad` is given, writes ∂L/∂θ into it:
 *   ∂L/∂W = Xᵀ(P − Y)/n + l2·W,  ∂L/∂b = Σ_i (p_i − y_i)/n.
 */
export function softmaxLoss(
  theta: Float64Array,
  x: Float64Array,
  y: Int32Array,
  n: number,
  d: number,
  c: number,
  l2: number,
  grad?: Float64Array,
): number {
  const wEnd = d * c;
  if (theta.length !== wEnd + c) throw new Error(`softmaxLoss: θ has ${theta.length} values, expected ${wEnd + c}`);
  if (grad) grad.fill(0);
  const z = new Float64Array(c);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const r = i * d;
    for (let k = 0; k < c; k++) z[k] = theta[wEnd + k];
    for (let j = 0; j < d; j++) {
      const xv = x[r + j];
      if (xv === 0) continue;
      const wj = j * c;
      for (let k = 0; k < c; k++) z[k] += xv * theta[wj + k];
    }
    let max = -Infinity;
    for (let k = 0; k < c; k++) max = Math.max(max, z[k]);
    let sum = 0;
    for (let k = 0; k < c; k++) sum += Math.exp(z[k] - max);
    const lse = max + Math.log(sum);
    loss += lse - z[y[i]];
    if (!grad) continue;
    // z becomes the residual (p − onehot)/n, then is scattered into the gradient.
    for (let k = 0; k < c; k++) z[k] = Math.exp(z[k] - lse) / n;
    z[y[i]] -= 1 / n;
    for (let k = 0; k < c; k++) grad[wEnd + k] += z[k];
    for (let j = 0; j < d; j++) {
      const xv = x[r + j];
      if (xv === 0) continue;
      const wj = j * c;
      for (let k = 0; k < c; k++) grad[wj + k] += xv * z[k];
    }
  }
  loss /= n;
  let sq = 0;
  for (let j = 0; j < wEnd; j++) {
    sq += theta[j] * theta[j];
    if (grad) grad[j] += l2 * theta[j];
  }
  return loss + 0.5 * l2 * sq;
}
