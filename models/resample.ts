// Bicubic resampling on the CPU, as PyTorch's F.interpolate(mode='bicubic', align_corners=False)
// computes it, for a ViT's position embedding at build time (timm's resample_abs_pos_embed) and
// for anything else that wants PyTorch's numbers (e.g. image resizing).
//
// Layout: channels last. `data` holds inH × inW pixels of `channels` values each, row-major
// (data[(y·inW + x)·channels + c]): an NHWC image without its batch dim, or the grid part of a
// pos_embed [1, 1+N, D] (its tokens are the grid row-major, D last), so neither needs a transpose.
//
// Two paths, matching PyTorch 1.13 on the CPU:
//   antialias false (default): per output index, src = (dst + 0.5)·(in/out) − 0.5, the 4 taps
//     ⌊src⌋−1 .. ⌊src⌋+2 clamped to the border, Keys cubic weights with A = −0.75.
//   antialias true: a separable filter (width first, then height) whose support widens by in/out
//     when shrinking, Keys cubic with A = −0.5 (PIL's), taps cut at the border and the weights
//     renormalised (timm ≥ 0.9's resample_abs_pos_embed default; PIL-like image resizing).

export interface ResampleOptions {
  antialias?: boolean;
}

const f = Math.fround;

function cubic1(x: number, a: number): number {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}
function cubic2(x: number, a: number): number {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/** One axis of a separable resampling: for output i, `taps` input indices and their weights. */
interface AxisWeights {
  taps: number;
  index: Int32Array;
  weight: Float64Array;
}

/** PyTorch's upsample_bicubic2d (no antialias): 4 clamped taps, A = −0.75, float32 index maths. */
function cubicAxis(inSize: number, outSize: number): AxisWeights {
  const A = -0.75;
  const scale = f(inSize / outSize);
  const index = new Int32Array(outSize * 4);
  const weight = new Float64Array(outSize * 4);
  for (let i = 0; i < outSize; i++) {
    const src = f(f(scale * f(i + 0.5)) - 0.5);
    const i0 = Math.floor(src);
    const t = f(src - i0);
    const w = [cubic2(t + 1, A), cubic1(t, A), cubic1(1 - t, A), cubic2(2 - t, A)];
    for (let j = 0; j < 4; j++) {
      index[i * 4 + j] = Math.min(Math.max(i0 - 1 + j, 0), inSize - 1);
      weight[i * 4 + j] = f(w[j]);
    }
  }
  return { taps: 4, index, weight };
}

/** PyTorch's _upsample_bicubic2d_aa: support 2·max(scale, 1), A = −0.5, border taps dropped. */
function antialiasAxis(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const support = 2 * Math.max(scale, 1);
  const invscale = scale >= 1 ? 1 / scale : 1;
  const taps = Math.ceil(support) * 2 + 1;
  const index = new Int32Array(outSize * taps);
  const weight = new Float64Array(outSize * taps);
  const filter = (x: number) => {
    x = Math.abs(x);
    return x < 1 ? cubic1(x, -0.5) : x < 2 ? cubic2(x, -0.5) : 0;
  };
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let j = 0; j < xsize; j++) total += filter((j + xmin - center + 0.5) * invscale);
    for (let j = 0; j < taps; j++) {
      index[i * taps + j] = Math.min(xmin + j, inSize - 1);
      weight[i * taps + j] = j < xsize && total !== 0 ? filter((j + xmin - center + 0.5) * invscale) / total : 0;
    }
  }
  return { taps, index, weight };
}

/**
 * Resample a channels-last grid [inH, inW, channels] to [outH, outW, channels] bicubically,
 * as F.interpolate(x, size=(outH, outW), mode='bicubic', align_corners=False, antialias=…) does
 * on the NCHW view of the same values.
 */
export function resampleBicubic(
  data: Float32Array,
  channels: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  o: ResampleOptions = {},
): Float32Array {
  for (const [what, v] of [
    ['channels', channels],
    ['inH', inH],
    ['inW', inW],
    ['outH', outH],
    ['outW', outW],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`resampleBicubic: ${what} must be a positive integer, got ${v}`);
  }
  if (data.length !== inH * inW * channels) {
    throw new Error(`resampleBicubic: ${data.length} values do not make a ${inH}×${inW}×${channels} grid`);
  }
  const axis = o.antialias ? antialiasAxis : cubicAxis;
  const wx = axis(inW, outW),
    wy = axis(inH, outH);
  if (o.antialias) {
    // Width first into a float32 [inH, outW, C] (as PyTorch), then height.
    const tmp = new Float32Array(inH * outW * channels);
    for (let y = 0; y < inH; y++)
      sweep(
        data,
        tmp,
        wx,
        outW,
        channels,
        (i) => (y * inW + i) * channels,
        (i) => (y * outW + i) * channels,
      );
    const out = new Float32Array(outH * outW * channels);
    for (let x = 0; x < outW; x++)
      sweep(
        tmp,
        out,
        wy,
        outH,
        channels,
        (i) => (i * outW + x) * channels,
        (i) => (i * outW + x) * channels,
      );
    return out;
  }
  // Not separable in PyTorch's rounding, but 4×4 taps with both weights: sum_j wy_j · sum_k wx_k · v.
  const out = new Float32Array(outH * outW * channels);
  const acc = new Float64Array(channels);
  for (let oy = 0; oy < outH; oy++) {
    for (let ox = 0; ox < outW; ox++) {
      acc.fill(0);
      for (let j = 0; j < 4; j++) {
        const y = wy.index[oy * 4 + j],
          ay = wy.weight[oy * 4 + j];
        for (let k = 0; k < 4; k++) {
          const x = wx.index[ox * 4 + k],
            w = ay * wx.weight[ox * 4 + k];
          const base = (y * inW + x) * channels;
          for (let c = 0; c < channels; c++) acc[c] += w * data[base + c];
        }
      }
      out.set(acc, (oy * outW + ox) * channels);
    }
  }
  return out;
}

/** One separable pass along an axis: out[at(i)] = Σ_j w_ij · src[from(index_ij)], per channel. */
function sweep(
  src: Float32Array,
  dst: Float32Array,
  a: AxisWeights,
  outSize: number,
  channels: number,
  from: (i: number) => number,
  to: (i: number) => number,
): void {
  for (let i = 0; i < outSize; i++) {
    const o = to(i);
    for (let c = 0; c < channels; c++) {
      let s = 0;
      for (let j = 0; j < a.taps; j++) {
        const w = a.weight[i * a.taps + j];
        if (w !== 0) s += w * src[from(a.index[i * a.taps + j]) + c];
      }
      dst[o + c] = s;
    }
  }
}

/**
 * timm's resample_abs_pos_embed for a square grid: keep the `prefix` tokens (the class token),
 * resample the [gs, gs, D] grid of the rest to [newGrid, newGrid, D], concatenate.
 * `posEmbed` is [1, prefix + gs², D] row-major; returns [1, prefix + newGrid², D].
 * Returns the input itself when the grid already has the size, as timm does.
 */
export function resamplePosEmbed(
  posEmbed: Float32Array,
  dim: number,
  newGrid: number,
  prefix = 1,
  o: ResampleOptions = {},
): Float32Array {
  const tokens = posEmbed.length / dim;
  const gs = Math.round(Math.sqrt(tokens - prefix));
  if (!Number.isInteger(tokens) || gs * gs !== tokens - prefix) {
    throw new Error(
      `resamplePosEmbed: ${posEmbed.length} values are not [1, ${prefix} + gs², ${dim}] for a square grid gs`,
    );
  }
  if (gs === newGrid) return posEmbed;
  const grid = resampleBicubic(posEmbed.subarray(prefix * dim), dim, gs, gs, newGrid, newGrid, o);
  const out = new Float32Array((prefix + newGrid * newGrid) * dim);
  out.set(posEmbed.subarray(0, prefix * dim));
  out.set(grid, prefix * dim);
  return out;
}
