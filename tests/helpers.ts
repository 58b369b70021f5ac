// Shared test helpers: one device per test file, seeded data, tolerance checks, one-op runs.

import { expect } from 'vitest';
import { type Device, createDevice } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { Rng } from '../models/init.js';
import { type HostTensor, type Shape, numel } from '../kernels/kernel.js';

let device: Promise<Device> | undefined;
export function testDevice(): Promise<Device> {
  return (device ??= createDevice());
}

/** A seeded stream of uniforms in [0,1) (mulberry32, as models/init.ts's Rng). */
export function uniforms(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.uniform();
}

/** Deterministic uniform values in [lo, hi): the inputs the PyTorch fixtures were made with. */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  return new Rng(seed).uniforms(n, lo, hi);
}

export function randTensor(shape: Shape, seed: number, lo = -1, hi = 1): HostTensor {
  return { shape: [...shape], data: rand(numel(shape), seed, lo, hi) };
}

export interface Tol {
  atol: number;
  rtol: number;
}

/** Asserts |got − want| ≤ atol + rtol·|want| elementwise, reporting the worst element. */
export function expectClose(got: HostTensor, want: HostTensor, tol: Tol, what = 'output'): void {
  expect(got.shape, `${what} shape`).toEqual(want.shape);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.data.length; i++) {
    const g = got.data[i],
      w = want.data[i];
    const excess = Math.abs(g - w) - (tol.atol + tol.rtol * Math.abs(w));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${what}: element ${worst} is ${got.data[worst]}, reference ${want.data[worst]} ` +
        `(|d| = ${Math.abs(got.data[worst] - want.data[worst]).toExponential(3)} > ${tol.atol} + ${tol.rtol}·|ref|)`,
    );
  }
}

/**
 * Run one op on the GPU through the executor. Inputs listed in `constants` become graph
 * constants (as weights are), the rest graph inputs; `prefer` forces kernel variants.
 */
export async function runOp(
  op: string,
  attrs: Record<string, unknown>,
  inputs: HostTensor[],
  constants: number[] = [],
  prefer?: Record<string, string>,
): Promise<HostTensor[]> {
  const dev = await testDevice();
  const g = new Graph();
  const names = inputs.map((t, i) =>
    constants.includes(i) ? g.constant(`c${i}`, t.shape, t.data) : g.input(`x${i}`, t.shape),
  );
  const outs = g.add(op, names, attrs, 'op');
  g.markOutputs(...outs);
  const plan = await compile(dev, g, { prefer });
  try {
    const feed: Record<string, Float32Array> = {};
    inputs.forEach((t, i) => {
      if (!constants.includes(i)) feed[`x${i}`] = t.data;
    });
    const { outputs } = await plan.run(feed);
    return outs.map((o) => outputs[o]);
  } finally {
    plan.dispose();
  }
}
