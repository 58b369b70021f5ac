// Half precision for the f16 kernel variants (kernels/matmul.ts and kernels/conv2d.ts `f16`).
//
// Two precisions, both for constant weights only (activations stay f32 in every buffer):
//   'w'   — f16 storage, f32 arithmetic: the weight is rounded to f16 once at load (a
//           Lowering.constLayouts entry) and stored as pairs of halves in u32 words; the shader
//           reads a vec4 of weights as vec2<u32> and widens it with unpack2x16float, which is core
//           WGSL, so this variant runs on every adapter (SwiftShader included) and halves the
//           weight bytes a layer streams. Error: each weight moves by at most 2⁻¹¹ of itself.
//   'all' — full f16: the same stored weights read as vec4<f16>, activations converted to f16 on
//           load, products summed in f16 accumulators, widened to f32 for the epilogue. Needs
//           the device feature 'shader-f16' (WGSL `enable f16;`). Error grows with the length
//           of the sum (each f16 add rounds by up to 2⁻¹¹ of the running sum), so long-K layers
//           can break the tuner's tolerance; bench/tune.ts then drops the candidate ('wrong').
// The bytes of a halves array are the same for both (element 0 in the low half of word 0, as
// WGSL's unpack2x16float and a little-endian array<vec4<f16>> both read them). docs/kernels-gpu.md
// states the tolerances the tests hold each precision to.

export type F16Mode = 'none' | 'w' | 'all';

const f32 = new Float32Array(1);
const bits = new Uint32Array(f32.buffer);

/** The IEEE binary16 bits of `x`, rounded to nearest even (overflow → ±∞, NaN stays NaN). */
export function f16Bits(x: number): number {
  f32[0] = x;
  const b = bits[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): value = (1.man · 2²³) · 2^(e − 38), in units of 2⁻²⁴.
    if (e < -10) return sign;
    const m = man | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is right (up to ∞)
  return sign | h;
}

/** The value of binary16 bits `h`. */
export function f16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** `x` rounded to f16 and back (what the 'w' variants compute with). */
export const f16Round = (x: number): number => f16Value(f16Bits(x));

/**
 * `data` (an even number of f32 values) as halves packed two to a 32-bit word, returned as a
 * Float32Array over those bytes (the executor uploads a layout's bytes as they are), so
 * `data.length / 2` elements.
 */
export function toF16Words(data: Float32Array): Float32Array {
  if (data.length % 2 !== 0) throw new Error(`f16 packing needs an even number of values, got ${data.length}`);
  const out = new Float32Array(data.length / 2);
  const halves = new Uint16Array(out.buffer);
  for (let i = 0; i < data.length; i++) halves[i] = f16Bits(data[i]);
  return out;
}

/** WGSL: `fn ldw4(v) -> vec4<f32>` widening a vec4 of weights stored as halves ('w'). */
export const UNPACK_F16_WGSL =
  'fn ldw4(v: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)); }';
