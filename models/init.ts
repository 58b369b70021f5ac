// Seeded random weights for benchmarks, tests and the demo: He-normal convs and linears,
// identity-ish norm statistics, so activations keep their scale through deep networks.

/** A seeded generator of uniforms (mulberry32) and normals (Box–Muller). */
export class Rng {
  private s: number;
  private spare: number | null = null;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  uniform(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    const u = Math.max(this.uniform(), 1e-12),
      v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  normals(n: number, std = 1, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + std * this.normal();
    return out;
  }
  uniforms(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * this.uniform();
    return out;
  }
}

/** He-normal (fan-in, gain √2) for a weight whose fan-in is `fanIn`. */
export function heNormal(rng: Rng, n: number, fanIn: number): Float32Array {
  return rng.normals(n, Math.sqrt(2 / fanIn));
}

/** Batch-norm statistics near identity: γ≈1, β≈0, mean≈0, var≈1, with a little spread. */
export function bnParams(
  rng: Rng,
  c: number,
): { gamma: Float32Array; beta: Float32Array; mean: Float32Array; variance: Float32Array } {
  return {
    gamma: rng.uniforms(c, 0.8, 1.2),
    beta: rng.normals(c, 0.05),
    mean: rng.normals(c, 0.05),
    variance: rng.uniforms(c, 0.8, 1.2),
  };
}
