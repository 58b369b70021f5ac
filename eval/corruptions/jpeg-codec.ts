// The JPEG codec of ImageNet-C's jpeg_compression: Pillow's save + load at `quality`, bit for
// bit, in integer arithmetic, as TS (jpegRoundTripU8, any 8-bit RGB image) and as WGSL
// (JPEG_INT_WGSL's jpeg_block, used by jpeg-compression.ts's kernels).
//
// libjpeg-turbo's integer pipeline with Pillow's defaults (4:2:0, islow DCTs, fancy upsampling):
// RGB→YCbCr in 16.16 fixed point (jccolor.c); h2v2 downsampling with its alternating rounding
// bias; edge pixels, rows and columns replicated to whole blocks as jcprepct/jcsample do;
// jpeg_fdct_islow; quantisation by libjpeg-turbo's reciprocal multiply with the IJG tables
// scaled by quality (jpeg_set_quality, baseline); jpeg_idct_islow with its range-limit table;
// h2v2_fancy_upsample (plain replication for planes 2 samples wide or less); YCbCr→RGB
// (jdcolor.c). Entropy coding is lossless and left out. Integer maths is exact in JS numbers and
// on the GPU, so the kernels, this reference and sharp's libjpeg agree exactly (see the tests).

/** ITU T.81 Annex K tables (libjpeg's std_luminance/chrominance_quant_tbl), natural order. */
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
  87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
  72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_Q = [
  17,
  18,
  24,
  47,
  99,
  99,
  99,
  99,
  18,
  21,
  26,
  66,
  99,
  99,
  99,
  99,
  24,
  26,
  56,
  99,
  99,
  99,
  99,
  99,
  47,
  66,
  99,
  99,
  99,
  99,
  99,
  99,
  ...new Array<number>(32).fill(99),
];

/** libjpeg jpeg_set_quality(quality, force_baseline = TRUE): both tables scaled, clamped to [1, 255]. */
export function jpegQuantTables(quality: number): { luma: number[]; chroma: number[] } {
  const q = Math.min(Math.max(Math.trunc(quality), 1), 100);
  const scale = q < 50 ? Math.trunc(5000 / q) : 200 - q * 2;
  const scaled = (t: number[]) => t.map((v) => Math.min(Math.max(Math.trunc((v * scale + 50) / 100), 1), 255));
  return { luma: scaled(LUMA_Q), chroma: scaled(CHROMA_Q) };
}

/**
 * libjpeg-turbo's quantiser (jcdctmgr.c compute_reciprocal, 16-bit DCTELEM as in SIMD builds):
 * |coef| = ((|t| + corr) · recip) >> shift for divisor 8q (the islow FDCT output is scaled by 8).
 */
export function jpegReciprocal(divisor: number): { recip: number; corr: number; shift: number } {
  const b = 31 - Math.clz32(divisor);
  let r = 16 + b;
  let fq = Math.floor(2 ** r / divisor);
  const fr = 2 ** r % divisor;
  let c = Math.floor(divisor / 2);
  if (fr === 0) {
    fq = Math.floor(fq / 2);
    r--;
  } else if (fr <= Math.floor(divisor / 2)) {
    c++;
  } else {
    fq++;
  }
  return { recip: fq, corr: c, shift: r };
}

/** libjpeg's FIX(): a constant in 16.16 fixed point (jccolor.c, jdcolor.c). */
const FIX = (x: number): number => Math.trunc(x * 65536 + 0.5);

// jfdctint.c / jidctint.c constants (CONST_BITS 13).
const DCT_K = {
  c0_298631336: 2446,
  c0_390180644: 3196,
  c0_541196100: 4433,
  c0_765366865: 6270,
  c0_899976223: 7373,
  c1_175875602: 9633,
  c1_501321110: 12299,
  c1_847759065: 15137,
  c1_961570560: 16069,
  c2_053119869: 16819,
  c2_562915447: 20995,
  c3_072711026: 25172,
} as const;

/** WGSL: descale, fdct8, idct8, range_limit and jpeg_block (one 8×8 block through FDCT, quantisation and IDCT, in place). */
export const JPEG_INT_WGSL = /* wgsl */ `
fn descale(x: i32, n: u32) -> i32 { return (x + (1i << (n - 1u))) >> n; }

// jpeg_fdct_islow, one 8-point pass (rows: last = false, output ×4; columns: last = true, ×8 overall).
fn fdct8(d: array<i32, 8>, last: bool) -> array<i32, 8> {
  let t0 = d[0] + d[7]; let t7 = d[0] - d[7];
  let t1 = d[1] + d[6]; let t6 = d[1] - d[6];
  let t2 = d[2] + d[5]; let t5 = d[2] - d[5];
  let t3 = d[3] + d[4]; let t4 = d[3] - d[4];
  let t10 = t0 + t3; let t13 = t0 - t3; let t11 = t1 + t2; let t12 = t1 - t2;
  let n = select(11u, 15u, last);
  var o: array<i32, 8>;
  o[0] = select((t10 + t11) * 4, descale(t10 + t11, 2u), last);
  o[4] = select((t10 - t11) * 4, descale(t10 - t11, 2u), last);
  let z1 = (t12 + t13) * ${DCT_K.c0_541196100};
  o[2] = descale(z1 + t13 * ${DCT_K.c0_765366865}, n);
  o[6] = descale(z1 - t12 * ${DCT_K.c1_847759065}, n);
  let q3 = t4 + t6; let q4 = t5 + t7;
  let z5 = (q3 + q4) * ${DCT_K.c1_175875602};
  let y1 = (t4 + t7) * -${DCT_K.c0_899976223};
  let y2 = (t5 + t6) * -${DCT_K.c2_562915447};
  let y3 = q3 * -${DCT_K.c1_961570560} + z5;
  let y4 = q4 * -${DCT_K.c0_390180644} + z5;
  o[7] = descale(t4 * ${DCT_K.c0_298631336} + y1 + y3, n);
  o[5] = descale(t5 * ${DCT_K.c2_053119869} + y2 + y4, n);
  o[3] = descale(t6 * ${DCT_K.c3_072711026} + y2 + y3, n);
  o[1] = descale(t7 * ${DCT_K.c1_501321110} + y1 + y4, n);
  return o;
}

// jpeg_idct_islow, one 8-point pass (columns of dequantised coefficients: last = false;
// rows: last = true, descaled by 2^18 and range-limited by the caller).
fn idct8(c: array<i32, 8>, last: bool) -> array<i32, 8> {
  let z1 = (c[2] + c[6]) * ${DCT_K.c0_541196100};
  let e2 = z1 - c[6] * ${DCT_K.c1_847759065};
  let e3 = z1 + c[2] * ${DCT_K.c0_765366865};
  let e0 = (c[0] + c[4]) * 8192;
  let e1 = (c[0] - c[4]) * 8192;
  let t10 = e0 + e3; let t13 = e0 - e3; let t11 = e1 + e2; let t12 = e1 - e2;
  let q3 = c[7] + c[3]; let q4 = c[5] + c[1];
  let z5 = (q3 + q4) * ${DCT_K.c1_175875602};
  let y1 = (c[7] + c[1]) * -${DCT_K.c0_899976223};
  let y2 = (c[5] + c[3]) * -${DCT_K.c2_562915447};
  let y3 = q3 * -${DCT_K.c1_961570560} + z5;
  let y4 = q4 * -${DCT_K.c0_390180644} + z5;
  let a0 = c[7] * ${DCT_K.c0_298631336} + y1 + y3;
  let a1 = c[5] * ${DCT_K.c2_053119869} + y2 + y4;
  let a2 = c[3] * ${DCT_K.c3_072711026} + y2 + y3;
  let a3 = c[1] * ${DCT_K.c1_501321110} + y1 + y4;
  let n = select(11u, 18u, last);
  return array<i32, 8>(descale(t10 + a3, n), descale(t11 + a2, n), descale(t12 + a1, n), descale(t13 + a0, n),
                       descale(t13 - a0, n), descale(t12 - a1, n), descale(t11 - a2, n), descale(t10 - a3, n));
}

// libjpeg's post-IDCT range_limit[x & RANGE_MASK] table, wrap-around included.
fn range_limit(x: i32) -> i32 {
  let i = x & 1023;
  return select(select(select(i - 896, 0, i < 896), 255, i < 512), i + 128, i < 128);
}

// One 8×8 block of samples (0-255) through FDCT, quantisation, dequantisation and IDCT, in place.
fn jpeg_block(s: ptr<function, array<i32, 64>>, qt: ptr<function, array<i32, 64>>, recip: ptr<function, array<u32, 64>>,
              corr: ptr<function, array<u32, 64>>, shift: ptr<function, array<u32, 64>>) {
  var v: array<i32, 8>;
  for (var r = 0u; r < 8u; r++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[r * 8u + k] - 128; }
    v = fdct8(v, false);
    for (var k = 0u; k < 8u; k++) { (*s)[r * 8u + k] = v[k]; }
  }
  for (var c = 0u; c < 8u; c++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[k * 8u + c]; }
    v = fdct8(v, true);
    for (var k = 0u; k < 8u; k++) { (*s)[k * 8u + c] = v[k]; }
  }
  for (var i = 0u; i < 64u; i++) {
    let t = (*s)[i];
    let m = i32(((u32(abs(t)) + (*corr)[i]) * (*recip)[i]) >> (*shift)[i]);
    (*s)[i] = select(m, -m, t < 0) * (*qt)[i];   // quantised, then dequantised as the decoder does
  }
  for (var c = 0u; c < 8u; c++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[k * 8u + c]; }
    v = idct8(v, false);
    for (var k = 0u; k < 8u; k++) { (*s)[k * 8u + c] = v[k]; }
  }
  for (var r = 0u; r < 8u; r++) {
    for (var k = 0u; k < 8u; k++) { v[k] = (*s)[r * 8u + k]; }
    v = idct8(v, true);
    for (var k = 0u; k < 8u; k++) { (*s)[r * 8u + k] = range_limit(v[k]); }
  }
}`;

// The same integer arithmetic in TS. JS numbers hold every intermediate exactly (< 2^31 for
// 8-bit data, as libjpeg's 32-bit design guarantees), and >> is the same arithmetic shift.
const descale = (x: number, n: number): number => (x + (1 << (n - 1))) >> n;

function fdct8(d: number[], last: boolean): number[] {
  const K = DCT_K;
  const t0 = d[0] + d[7],
    t7 = d[0] - d[7],
    t1 = d[1] + d[6],
    t6 = d[1] - d[6];
  const t2 = d[2] + d[5],
    t5 = d[2] - d[5],
    t3 = d[3] + d[4],
    t4 = d[3] - d[4];
  const t10 = t0 + t3,
    t13 = t0 - t3,
    t11 = t1 + t2,
    t12 = t1 - t2;
  const n = last ? 15 : 11;
  const z1 = (t12 + t13) * K.c0_541196100;
  const q3 = t4 + t6,
    q4 = t5 + t7,
    z5 = (q3 + q4) * K.c1_175875602;
  const y1 = (t4 + t7) * -K.c0_899976223,
    y2 = (t5 + t6) * -K.c2_562915447;
  const y3 = q3 * -K.c1_961570560 + z5,
    y4 = q4 * -K.c0_390180644 + z5;
  return [
    last ? descale(t10 + t11, 2) : (t10 + t11) * 4,
    descale(t7 * K.c1_501321110 + y1 + y4, n),
    descale(z1 + t13 * K.c0_765366865, n),
    descale(t6 * K.c3_072711026 + y2 + y3, n),
    last ? descale(t10 - t11, 2) : (t10 - t11) * 4,
    descale(t5 * K.c2_053119869 + y2 + y4, n),
    descale(z1 - t12 * K.c1_847759065, n),
    descale(t4 * K.c0_298631336 + y1 + y3, n),
  ];
}

function idct8(c: number[], last: boolean): number[] {
  const K = DCT_K;
  const z1 = (c[2] + c[6]) * K.c0_541196100,
    e2 = z1 - c[6] * K.c1_847759065,
    e3 = z1 + c[2] * K.c0_765366865;
  const e0 = (c[0] + c[4]) * 8192,
    e1 = (c[0] - c[4]) * 8192;
  const t10 = e0 + e3,
    t13 = e0 - e3,
    t11 = e1 + e2,
    t12 = e1 - e2;
  const q3 = c[7] + c[3],
    q4 = c[5] + c[1],
    z5 = (q3 + q4) * K.c1_175875602;
  const y1 = (c[7] + c[1]) * -K.c0_899976223,
    y2 = (c[5] + c[3]) * -K.c2_562915447;
  const y3 = q3 * -K.c1_961570560 + z5,
    y4 = q4 * -K.c0_390180644 + z5;
  const a0 = c[7] * K.c0_298631336 + y1 + y3,
    a1 = c[5] * K.c2_053119869 + y2 + y4;
  const a2 = c[3] * K.c3_072711026 + y2 + y3,
    a3 = c[1] * K.c1_501321110 + y1 + y4;
  const n = last ? 18 : 11;
  return [t10 + a3, t11 + a2, t12 + a1, t13 + a0, t13 - a0, t12 - a1, t11 - a2, t10 - a3].map((v) => descale(v, n));
}

const rangeLimit = (x: number): number => {
  const i = x & 1023;
  return i < 128 ? i + 128 : i < 512 ? 255 : i < 896 ? 0 : i - 896;
};

/** One block of 64 samples (0-255, row-major) through the encoder and decoder at table q: 64 samples. */
export function jpegBlockRoundTrip(samples: readonly number[], q: readonly number[]): number[] {
  const d = samples.map((v) => v - 128);
  const col = (k: number) => [0, 1, 2, 3, 4, 5, 6, 7].map((r) => d[r * 8 + k]);
  for (let r = 0; r < 8; r++) d.splice(r * 8, 8, ...fdct8(d.slice(r * 8, r * 8 + 8), false));
  for (let k = 0; k < 8; k++)
    fdct8(col(k), true).forEach((v, r) => {
      d[r * 8 + k] = v;
    });
  for (let i = 0; i < 64; i++) {
    const { recip, corr, shift } = jpegReciprocal(q[i] * 8);
    const m = Math.floor(((Math.abs(d[i]) + corr) * recip) / 2 ** shift);
    d[i] = (d[i] < 0 ? -m : m) * q[i];
  }
  for (let k = 0; k < 8; k++)
    idct8(col(k), false).forEach((v, r) => {
      d[r * 8 + k] = v;
    });
  for (let r = 0; r < 8; r++) d.splice(r * 8, 8, ...idct8(d.slice(r * 8, r * 8 + 8), true).map(rangeLimit));
  return d;
}

// jccolor.c (RGB → YCbCr, 16.16 fixed point, Cb/Cr rounded with 0.5 − ε) and jdcolor.c (back).
export const YCC = {
  yr: FIX(0.299),
  yg: FIX(0.587),
  yb: FIX(0.114),
  cbr: FIX(0.16874),
  cbg: FIX(0.33126),
  half: FIX(0.5),
  crg: FIX(0.41869),
  crb: FIX(0.08131),
  rcr: FIX(1.402),
  bcb: FIX(1.772),
  gcb: FIX(0.34414),
  gcr: FIX(0.71414),
} as const;

/** The 8-bit input libjpeg sees: round(x·255), computed in f32 as the GPU does. */
export const toU8 = (v: number): number =>
  Math.min(Math.max(Math.floor(Math.fround(Math.fround(v * 255) + 0.5)), 0), 255);

/** Pillow's JPEG save + load at `quality` (4:2:0, islow DCTs, fancy upsampling) on 8-bit RGB [h,w,3]. */
export function jpegRoundTripU8(rgb: ArrayLike<number>, h: number, w: number, quality: number): Uint8Array {
  const q = jpegQuantTables(quality);
  const ch = Math.ceil(h / 2),
    cw = Math.ceil(w / 2);
  const px = (r: number, c: number) => {
    const o = (Math.min(r, h - 1) * w + Math.min(c, w - 1)) * 3;
    return [rgb[o], rgb[o + 1], rgb[o + 2]];
  };
  const toY = ([r, g, b]: number[]) => (YCC.yr * r + YCC.yg * g + YCC.yb * b + 32768) >> 16;
  const toCb = ([r, g, b]: number[]) => (-YCC.cbr * r - YCC.cbg * g + YCC.half * b + (128 << 16) + 32767) >> 16;
  const toCr = ([r, g, b]: number[]) => (YCC.half * r - YCC.crg * g - YCC.crb * b + (128 << 16) + 32767) >> 16;
  const Y = new Int32Array(h * w);
  for (let by = 0; by < Math.ceil(h / 8); by++)
    for (let bx = 0; bx < Math.ceil(w / 8); bx++) {
      const out = jpegBlockRoundTrip(
        Array.from({ length: 64 }, (_, i) => toY(px(by * 8 + (i >> 3), bx * 8 + (i & 7)))),
        q.luma,
      );
      out.forEach((v, i) => {
        const r = by * 8 + (i >> 3),
          c = bx * 8 + (i & 7);
        if (r < h && c < w) Y[r * w + c] = v;
      });
    }
  const C = [new Int32Array(ch * cw), new Int32Array(ch * cw)];
  [toCb, toCr].forEach((f, k) => {
    for (let by = 0; by < Math.ceil(ch / 8); by++)
      for (let bx = 0; bx < Math.ceil(cw / 8); bx++) {
        const samples = Array.from({ length: 64 }, (_, i) => {
          // h2v2_downsample with its 1, 2, 1, 2… rounding bias; rows past the plane repeat its last row.
          const cy = Math.min(by * 8 + (i >> 3), ch - 1),
            cx = bx * 8 + (i & 7);
          return (
            (f(px(2 * cy, 2 * cx)) +
              f(px(2 * cy, 2 * cx + 1)) +
              f(px(2 * cy + 1, 2 * cx)) +
              f(px(2 * cy + 1, 2 * cx + 1)) +
              1 +
              (cx & 1)) >>
            2
          );
        });
        jpegBlockRoundTrip(samples, q.chroma).forEach((v, i) => {
          const r = by * 8 + (i >> 3),
            c = bx * 8 + (i & 7);
          if (r < ch && c < cw) C[k][r * cw + c] = v;
        });
      }
  });
  const out = new Uint8Array(h * w * 3);
  const clampU8 = (v: number) => Math.min(Math.max(v, 0), 255);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const cy = y >> 1,
        cx = x >> 1;
      const ny = Math.min(Math.max(y & 1 ? cy + 1 : cy - 1, 0), ch - 1);
      const nx = Math.min(Math.max(x & 1 ? cx + 1 : cx - 1, 0), cw - 1);
      const [cb, cr] = C.map((P) => {
        if (cw <= 2) return P[cy * cw + cx]; // libjpeg upsamples planes this narrow by replication
        const colsum = (c: number) => 3 * P[cy * cw + c] + P[ny * cw + c];
        return (3 * colsum(cx) + colsum(nx) + (x & 1 ? 7 : 8)) >> 4;
      });
      const l = Y[y * w + x],
        xb = cb - 128,
        xr = cr - 128;
      const o = (y * w + x) * 3;
      out[o] = clampU8(l + ((YCC.rcr * xr + 32768) >> 16));
      out[o + 1] = clampU8(l + ((-YCC.gcb * xb + 32768 - YCC.gcr * xr) >> 16));
      out[o + 2] = clampU8(l + ((YCC.bcb * xb + 32768) >> 16));
    }
  return out;
}
