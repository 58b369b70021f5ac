// Central finite differences for the backward tests of the normalisations and attention
// (tests/kernels/backward-norm*.test.ts, backward-attention*.test.ts, tests/engine/grad-norm*.test.ts).
//
// The loss is L = Σ w ⊙ f(inputs) with a fixed random w (summed in double), so dL/dy = w and a
// backward op fed dy = w must return dL/dinput. The forward references round their outputs to
// f32, so with inputs of size ~1 and h = 1e-2 the difference quotient carries a rounding error
// of about 1e-5 and a truncation error of about h²·|f'''|/6 ≲ 1e-4: the tests allow 2e-3 of the
// gradient's largest magnitude, far below the O(1) error of a wrong formula.

import type { HostTensor } from '../../kernels/kernel.js';

export const FD_STEP = 1e-2;

/** L = Σ w·y in double precision. */
export function weightedSum(y: Float32Array, w: Float32Array): number {
  if (y.length !== w.length) throw new Error(`weightedSum: ${y.length} values against ${w.length} weights`);
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * w[i];
  return s;
}

/** dL/d(inputs[k]) by central differences, L = loss(inputs) (inputs are copied, not changed). */
export function numericGrad(loss: (inputs: HostTensor[]) => number, inputs: HostTensor[], k: number, h = FD_STEP) {
  const data = Float32Array.from(inputs[k].data);
  const at = (v: Float32Array) => inputs.map((t, i) => (i === k ? { shape: t.shape, data: v } : t));
  const g = new Float32Array(data.length);
  for (let e = 0; e < data.length; e++) {
    const plus = Float32Array.from(data);
    const minus = Float32Array.from(data);
    plus[e] += h;
    minus[e] -= h;
    // The step actually taken after rounding to f32.
    g[e] = (loss(at(plus)) - loss(at(minus))) / (plus[e] - minus[e]);
  }
  return { shape: [...inputs[k].shape], data: g } satisfies HostTensor;
}

/** The tolerance of a finite-difference check against `want`: 2e-3·max|want| absolute, 1e-2 relative. */
export function fdTol(want: HostTensor): { atol: number; rtol: number } {
  let m = 0;
  for (const v of want.data) m = Math.max(m, Math.abs(v));
  return { atol: 2e-3 * Math.max(m, 1e-3), rtol: 1e-2 };
}
