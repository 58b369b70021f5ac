// The counter-based RNG shared by the corruptions (GPU and reference), the synthetic data and the
// transfer protocols' shuffles: u = hash(seed, id, stream, index), identical in WGSL and TS, so the
// GPU and a plain-TS reference draw the same numbers, and a draw depends only on its key, never on
// batching, sharding or the order of other draws.
//
//   rng_u32 / rngU32          four rounds of a 32-bit integer mix (the "lowbias32" finaliser), one
//                             per key part
//   rng_uniform / rngUniform  the top 24 bits as a float in [0, 1)
//   rng_normal / rngNormal    Box–Muller from the draws at 2i and 2i + 1 (u1 floored at 1e-7)
//
// Keys: seed (a run's u32 seed), id (an image's global index, below 2^24 so f32 holds it exactly;
// textures use a reserved id), stream (one per random quantity; each module reserves its own
// range), index (the element or draw counter).

/** WGSL: `fn rng_u32(a: u32, b: u32, c: u32, d: u32) -> u32`, `fn rng_uniform(...) -> f32` in [0,1), `fn rng_normal(...)`. */
export const RNG_WGSL = /* wgsl */ `
fn rng_mix(h: u32) -> u32 {
  var x = h;
  x ^= x >> 16u; x *= 0x7feb352du;
  x ^= x >> 15u; x *= 0x846ca68bu;
  x ^= x >> 16u;
  return x;
}
fn rng_u32(seed: u32, id: u32, stream: u32, i: u32) -> u32 {
  return rng_mix(rng_mix(rng_mix(rng_mix(seed) ^ id) ^ stream) ^ i);
}
fn rng_uniform(seed: u32, id: u32, stream: u32, i: u32) -> f32 {
  return f32(rng_u32(seed, id, stream, i) >> 8u) * (1.0 / 16777216.0);
}
// cos(2π·u) to ~1e-7 by exact range reduction on u and a Taylor polynomial on [0, π/4]: WGSL lets
// cos be off by 2^-11 and SwiftShader's is off by ~2e-4, which moves thresholded noise (snow,
// spatter) by whole blobs against the TS reference; with this, draws agree to ~1e-7 on any adapter.
fn cos_2pi(u: f32) -> f32 {
  let a = abs(u - round(u));                 // [0, 0.5], exact
  let flip = a > 0.25;
  let b = select(a, 0.5 - a, flip);          // [0, 0.25], exact (Sterbenz)
  let useSin = b > 0.125;
  let th = select(b, 0.25 - b, useSin) * 6.283185307179586;  // [0, π/4]
  let t2 = th * th;
  let c = 1.0 + t2 * (-0.5 + t2 * (0.041666666666666664 + t2 * (-0.001388888888888889 + t2 * 0.0000248015873015873)));
  let s = th * (1.0 + t2 * (-0.16666666666666666 + t2 * (0.008333333333333333 + t2 * (-0.0001984126984126984 + t2 * 0.0000027557319223985893))));
  let v = select(c, s, useSin);
  return select(v, -v, flip);
}
fn rng_normal(seed: u32, id: u32, stream: u32, i: u32) -> f32 {
  let u1 = max(rng_uniform(seed, id, stream, 2u * i), 1e-7);
  let u2 = rng_uniform(seed, id, stream, 2u * i + 1u);
  return sqrt(-2.0 * log(u1)) * cos_2pi(u2);
}`;

function mix(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  x ^= x >>> 16;
  return x >>> 0;
}

export function rngU32(seed: number, id: number, stream: number, i: number): number {
  return mix(mix(mix(mix(seed) ^ id) ^ stream) ^ i);
}

export function rngUniform(seed: number, id: number, stream: number, i: number): number {
  return Math.fround((rngU32(seed, id, stream, i) >>> 8) * (1 / 16777216));
}

/** Box–Muller, as the WGSL (results agree to f32 rounding of log/cos). */
export function rngNormal(seed: number, id: number, stream: number, i: number): number {
  const u1 = Math.max(rngUniform(seed, id, stream, 2 * i), 1e-7);
  const u2 = rngUniform(seed, id, stream, 2 * i + 1);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}
