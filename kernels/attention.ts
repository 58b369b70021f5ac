// Multi-head scaled dot-product attention: out = softmax(q kᵀ · scale) v per (batch, head).
//
// Inputs: one packed qkv [B, T, 3·D] (timm ViT: q = qkv[..., 0:D], k = qkv[..., D:2D],
// v = qkv[..., 2D:3D]; head h owns columns h·dh .. h·dh+dh-1 of each), or q [B, Tq, D],
// k [B, Tk, D], v [B, Tk, D]. Output [B, Tq, D] with the heads concatenated
// (out[b, t, h·dh + d]), i.e. timm's x.transpose(1, 2).reshape(B, N, C), ready for `proj`.
// dh = D / heads is baked in; rows are read as vec4 when dh % 4 == 0, as f32 otherwise.
//
// Paths (ctx.prefer.attention, an AttentionVariant):
//   'fused' (family `attention`) — FlashAttention-style: each invocation owns `rows` query rows
//     of one (b, h), walks the keys in tiles of `keyTile` and keeps, per row, a running max m,
//     a running denominator l and a running output o (online softmax: on a new max m', o and l
//     are rescaled by exp(m - m')). The Tq × Tk score matrix never exists; q (pre-scaled) and o
//     stay in the invocation. Keys past the last full tile run as one shorter tile. Each k/v
//     load serves all `rows` rows. `unroll` spells the head dimension out so q and o are named
//     registers (SwiftShader: ~15x faster than loop-indexed private arrays, slower to compile).
//   'naive' (family `attention-naive`, three dispatches) — the explicit form, the GPU oracle and
//     the fallback: scores = q kᵀ · scale into a scratch [B, heads, Tq, Tk], a stable softmax
//     per row in place, then scores @ v.
// In the kernels/variant.ts syntax: 'naive', or 'fused' with optional 'ktile=<keyTile>',
// 'rows=<rows>', 'wg=<size>', 'head=unrolled|loop' (e.g. 'fused,ktile=8,rows=2,head=loop');
// unset fields keep the heuristic.

import {
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type OpDef,
  type Shape,
  ceilDiv,
  expectRank,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
  temp,
} from './kernel.js';
import { flatMain, range, vecType } from './wgsl.js';
import { defineVariant } from './variant.js';

export interface AttentionAttrs {
  heads: number;
  /** Multiplies q kᵀ; default 1/sqrt(dh). */
  scale?: number;
}

/** The problem, shared by both paths' configs. */
export interface AttentionShape {
  B: number;
  Tq: number;
  Tk: number;
  heads: number;
  dh: number;
  /** One qkv input [B, T, 3D] (else q, k, v). */
  packed: boolean;
  scale: number;
  /** Rows read as vec4 (dh % 4 == 0). */
  vec: boolean;
}

export interface FusedAttentionConfig extends AttentionShape {
  keyTile: number;
  rows: number;
  wg: number;
  gridX: number;
  /** Unroll the head dimension: q and o in named registers instead of loop-indexed private arrays. */
  unroll: boolean;
}

export interface NaiveAttentionConfig extends AttentionShape {
  stage: 'scores' | 'softmax' | 'pv';
  wg: number;
  gridX: number;
}

/** Addressing in units of the row element type (vec4 or f32), baked into WGSL. */
function addressing(c: AttentionShape) {
  const W = c.vec ? 4 : 1;
  const D = c.heads * c.dh;
  return {
    T: vecType(c.vec),
    /** Elements (of type T) per head row, per token row of the inputs, of the output. */
    C: c.dh / W,
    RS: (c.packed ? 3 * D : D) / W,
    OS: D / W,
    /** Where k and v start within a token row. */
    kOff: c.packed ? D / W : 0,
    vOff: c.packed ? (2 * D) / W : 0,
    dotv: c.vec
      ? 'fn dotv(a: vec4<f32>, b: vec4<f32>) -> f32 { return dot(a, b); }'
      : 'fn dotv(a: f32, b: f32) -> f32 { return a * b; }',
    Q: c.packed ? 'QKV' : 'Q',
    K: c.packed ? 'QKV' : 'K',
    V: c.packed ? 'QKV' : 'V',
  };
}

function inputDecls(
  c: AttentionShape,
  use: { q?: boolean; k?: boolean; v?: boolean },
  first: number,
): { decls: string[]; next: number } {
  const { T } = addressing(c);
  const D = c.heads * c.dh;
  if (c.packed) {
    return {
      decls: [
        `@group(0) @binding(${first}) var<storage, read> QKV: array<${T}>;   // input  qkv [${c.B}, ${c.Tq}, ${3 * D}]`,
      ],
      next: first + 1,
    };
  }
  const decls: string[] = [];
  let b = first;
  if (use.q)
    decls.push(`@group(0) @binding(${b++}) var<storage, read> Q: array<${T}>;   // input  q [${c.B}, ${c.Tq}, ${D}]`);
  if (use.k)
    decls.push(`@group(0) @binding(${b++}) var<storage, read> K: array<${T}>;   // input  k [${c.B}, ${c.Tk}, ${D}]`);
  if (use.v)
    decls.push(`@group(0) @binding(${b++}) var<storage, read> V: array<${T}>;   // input  v [${c.B}, ${c.Tk}, ${D}]`);
  return { decls, next: b };
}

// ---- fused -----------------------------------------------------------------------------------

export const fusedAttentionFamily: KernelFamily<FusedAttentionConfig> = {
  name: 'attention',
  wgsl(c) {
    const a = addressing(c);
    const { C, RS, OS } = a;
    const R = c.rows,
      KT = c.keyTile;
    const QB = ceilDiv(c.Tq, R);
    const total = c.B * c.heads * QB;
    const full = Math.floor(c.Tk / KT),
      rem = c.Tk % KT;
    const { decls, next } = inputDecls(c, { q: true, k: true, v: true }, 0);
    const rs = range(R);

    // overC emits `body` for every head-dim element c (unrolled: tag "_c", index "cu") or once
    // inside a WGSL loop (tag "", index "c"); q and o are named registers q{r}_{c}, o{r}_{c} when
    // unrolled, private arrays otherwise.
    const cs = range(C);
    const qv = (r: number, tag: string, ix: string) => (c.unroll ? `q${r}${tag}` : `q${r}[${ix}]`);
    const ov = (r: number, tag: string, ix: string) => (c.unroll ? `o${r}${tag}` : `o${r}[${ix}]`);
    const overC = (ind: string, body: (tag: string, ix: string, ind: string) => string[]): string[] =>
      c.unroll
        ? cs.flatMap((cc) => body(`_${cc}`, `${cc}u`, ind))
        : [`${ind}for (var c = 0u; c < ${C}u; c++) {`, ...body('', 'c', `${ind}  `), `${ind}}`];
    // One key tile of n keys starting at j0: scores, new max, rescale, accumulate p·v.
    const tile = (n: number, ind: string): string => {
      const js = range(n);
      const L: string[] = [];
      for (const r of rs) for (const j of js) L.push(`${ind}var s${r}_${j} = 0.0;`);
      L.push(
        ...overC(ind, (tag, ix, i2) => [
          ...js.map((j) => `${i2}let k${j}${tag} = ${a.K}[kb + (j0 + ${j}u) * ${RS}u + ${ix}];`),
          ...rs.flatMap((r) => js.map((j) => `${i2}s${r}_${j} += dotv(${qv(r, tag, ix)}, k${j}${tag});`)),
        ]),
      );
      for (const r of rs) {
        const mx = js.reduce((e, j) => (e ? `max(${e}, s${r}_${j})` : `s${r}_${j}`), '');
        L.push(`${ind}let mn${r} = max(m${r}, ${mx});`);
        L.push(`${ind}let al${r} = exp(m${r} - mn${r});`);
        for (const j of js) L.push(`${ind}let p${r}_${j} = exp(s${r}_${j} - mn${r});`);
        L.push(`${ind}l${r} = l${r} * al${r} + ${js.map((j) => `p${r}_${j}`).join(' + ')};`);
        L.push(`${ind}m${r} = mn${r};`);
      }
      L.push(
        ...overC(ind, (tag, ix, i2) => [
          ...js.map((j) => `${i2}let v${j}${tag} = ${a.V}[vb + (j0 + ${j}u) * ${RS}u + ${ix}];`),
          ...rs.map(
            (r) =>
              `${i2}${ov(r, tag, ix)} = ${ov(r, tag, ix)} * al${r} + ${js.map((j) => `p${r}_${j} * v${j}${tag}`).join(' + ')};`,
          ),
        ]),
      );
      return L.join('\n');
    };

    const L: string[] = [];
    L.push(a.dotv);
    L.push(...decls);
    L.push(
      `@group(0) @binding(${next}) var<storage, read_write> Out: array<${a.T}>;   // output [${c.B}, ${c.Tq}, ${c.heads * c.dh}]`,
    );
    L.push('');
    L.push(flatMain(c.wg, c.gridX));
    L.push(`  if (t >= ${total}u) { return; }`);
    // Query blocks fastest, so neighbouring invocations read the same keys and values.
    L.push(`  let i0 = (t % ${QB}u) * ${R}u;`);
    L.push(`  let h = (t / ${QB}u) % ${c.heads}u;`);
    L.push(`  let b = t / ${QB * c.heads}u;`);
    L.push(`  let kb = b * ${c.Tk * RS}u + ${a.kOff}u + h * ${C}u;`);
    L.push(`  let vb = b * ${c.Tk * RS}u + ${a.vOff}u + h * ${C}u;`);
    for (const r of rs) {
      L.push(`  let qr${r} = (b * ${c.Tq}u + min(i0 + ${r}u, ${c.Tq - 1}u)) * ${RS}u + h * ${C}u;`);
      if (c.unroll) {
        for (const cc of cs) L.push(`  let q${r}_${cc} = ${a.Q}[qr${r} + ${cc}u] * ${f32Lit(c.scale)};`);
        for (const cc of cs) L.push(`  var o${r}_${cc} = ${a.T}(0.0);`);
      } else {
        L.push(`  var q${r}: array<${a.T}, ${C}>;`);
        L.push(`  var o${r}: array<${a.T}, ${C}>;`);
        L.push(`  for (var c = 0u; c < ${C}u; c++) { q${r}[c] = ${a.Q}[qr${r} + c] * ${f32Lit(c.scale)}; }`);
      }
      L.push(`  var m${r} = -3.0e38;`);
      L.push(`  var l${r} = 0.0;`);
    }
    if (full > 0) {
      L.push(`  for (var j0 = 0u; j0 < ${full * KT}u; j0 += ${KT}u) {`);
      L.push(tile(KT, '    '));
      L.push('  }');
    }
    if (rem > 0) {
      L.push('  {');
      L.push(`    let j0 = ${full * KT}u;`);
      L.push(tile(rem, '    '));
      L.push('  }');
    }
    for (const r of rs) {
      L.push(`  if (i0 + ${r}u < ${c.Tq}u) {`);
      L.push(`    let ob = (b * ${c.Tq}u + i0 + ${r}u) * ${OS}u + h * ${C}u;`);
      L.push(`    let inv = 1.0 / l${r};`);
      if (c.unroll) for (const cc of cs) L.push(`    Out[ob + ${cc}u] = o${r}_${cc} * inv;`);
      else L.push(`    for (var c = 0u; c < ${C}u; c++) { Out[ob + c] = o${r}[c] * inv; }`);
      L.push('  }');
    }
    L.push('}');
    return L.join('\n');
  },
};

// ---- naive -----------------------------------------------------------------------------------

export const naiveAttentionFamily: KernelFamily<NaiveAttentionConfig> = {
  name: 'attention-naive',
  wgsl(c) {
    const a = addressing(c);
    const { C, RS, OS } = a;
    const { B, Tq, Tk, heads: H } = c;
    const L: string[] = [];
    const head = (total: number) => {
      L.push('');
      L.push(flatMain(c.wg, c.gridX));
      L.push(`  if (t >= ${total}u) { return; }`);
    };
    const S = `@group(0) @binding(%) var<storage, read_write> S: array<f32>;   // scratch: scores [${B}, ${H}, ${Tq}, ${Tk}]`;
    if (c.stage === 'scores') {
      // One invocation per score S[b, h, i, j] (t is its flat index).
      const { decls, next } = inputDecls(c, { q: true, k: true }, 0);
      L.push(a.dotv, ...decls, S.replace('%', String(next)));
      head(B * H * Tq * Tk);
      L.push(`  let j = t % ${Tk}u;`);
      L.push(`  let i = (t / ${Tk}u) % ${Tq}u;`);
      L.push(`  let h = (t / ${Tk * Tq}u) % ${H}u;`);
      L.push(`  let b = t / ${Tk * Tq * H}u;`);
      L.push(`  let qb = (b * ${Tq}u + i) * ${RS}u + h * ${C}u;`);
      L.push(`  let kb = (b * ${Tk}u + j) * ${RS}u + ${a.kOff}u + h * ${C}u;`);
      L.push('  var s = 0.0;');
      L.push(`  for (var c = 0u; c < ${C}u; c++) { s += dotv(${a.Q}[qb + c], ${a.K}[kb + c]); }`);
      L.push(`  S[t] = s * ${f32Lit(c.scale)};`);
    } else if (c.stage === 'softmax') {
      // One invocation per row: max, exp and sum, normalise.
      L.push(S.replace('%', '0'));
      head(B * H * Tq);
      L.push(`  let r = t * ${Tk}u;`);
      L.push('  var m = S[r];');
      L.push(`  for (var j = 1u; j < ${Tk}u; j++) { m = max(m, S[r + j]); }`);
      L.push('  var l = 0.0;');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) { let e = exp(S[r + j] - m); S[r + j] = e; l += e; }`);
      L.push('  let inv = 1.0 / l;');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) { S[r + j] *= inv; }`);
    } else {
      // One invocation per output element (vec4 when dh % 4 == 0) out[b, i, h, c] (t is its flat index).
      const { decls, next } = inputDecls(c, { v: true }, 1);
      L.push(S.replace('%', '0'), ...decls);
      L.push(
        `@group(0) @binding(${next}) var<storage, read_write> Out: array<${a.T}>;   // output [${B}, ${Tq}, ${H * c.dh}]`,
      );
      head(B * Tq * OS);
      L.push(`  let c = t % ${C}u;`);
      L.push(`  let h = (t / ${C}u) % ${H}u;`);
      L.push(`  let i = (t / ${OS}u) % ${Tq}u;`);
      L.push(`  let b = t / ${OS * Tq}u;`);
      L.push(`  let sr = ((b * ${H}u + h) * ${Tq}u + i) * ${Tk}u;`);
      L.push(`  let vb = b * ${Tk * RS}u + ${a.vOff}u + h * ${C}u + c;`);
      L.push(`  var acc = ${a.T}(0.0);`);
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) { acc += S[sr + j] * ${a.V}[vb + j * ${RS}u]; }`);
      L.push('  Out[t] = acc;');
    }
    L.push('}');
    return L.join('\n');
  },
};

// ---- shapes and choice -----------------------------------------------------------------------

function geometry(attrs: AttentionAttrs, inputs: Shape[]): Omit<AttentionShape, 'vec'> {
  const H = attrs.heads;
  if (!Number.isInteger(H) || H < 1) throw new ShapeError(`attention: heads must be a positive integer, got ${H}`);
  let B: number, Tq: number, Tk: number, D: number;
  if (inputs.length === 1) {
    const [qkv] = inputs;
    expectRank('attention: packed qkv', qkv, 3);
    if (qkv[2] % 3 !== 0) throw new ShapeError(`attention: packed qkv ${fmtShape(qkv)} must have a last dim of 3·D`);
    [B, Tq, D] = [qkv[0], qkv[1], qkv[2] / 3];
    Tk = Tq;
  } else if (inputs.length === 3) {
    const [q, k, v] = inputs;
    expectRank('attention: q', q, 3);
    expectRank('attention: k', k, 3);
    expectRank('attention: v', v, 3);
    if (k[0] !== q[0] || v[0] !== q[0] || k[2] !== q[2] || v[2] !== q[2] || v[1] !== k[1]) {
      throw new ShapeError(
        `attention: q ${fmtShape(q)}, k ${fmtShape(k)}, v ${fmtShape(v)} must be [B, Tq, D], [B, Tk, D], [B, Tk, D]`,
      );
    }
    [B, Tq, Tk, D] = [q[0], q[1], k[1], q[2]];
  } else {
    throw new ShapeError(
      `attention: takes qkv or q, k, v; got ${inputs.length} inputs ${inputs.map(fmtShape).join(', ')}`,
    );
  }
  if (D % H !== 0)
    throw new ShapeError(`attention: D = ${D} of ${inputs.map(fmtShape).join(', ')} is not divisible by heads = ${H}`);
  const dh = D / H;
  return { B, Tq, Tk, heads: H, dh, packed: inputs.length === 1, scale: attrs.scale ?? 1 / Math.sqrt(dh) };
}

export interface AttentionChoice {
  path: 'fused' | 'naive';
  keyTile: number;
  rows: number;
  wg: number;
  unroll: boolean;
}

/** ctx.prefer.attention; unset fields are the heuristic's. */
export interface AttentionVariant {
  path?: 'fused' | 'naive';
  /** Fused: keys per tile, query rows per invocation, and whether the head dimension is unrolled. */
  ktile?: number;
  rows?: number;
  head?: 'unrolled' | 'loop';
  /** Invocations per workgroup (both paths). */
  wg?: number;
}

export const attentionVariant = defineVariant<AttentionVariant>('attention', [
  { kind: 'enum', key: 'path', values: ['fused', 'naive'], bare: true },
  { kind: 'int', key: 'ktile', min: 1 },
  { kind: 'int', key: 'rows', min: 1 },
  { kind: 'int', key: 'wg', min: 1 },
  { kind: 'enum', key: 'head', values: ['unrolled', 'loop'] },
]);

/** ctx.prefer.attention values covering both paths (tests and tuners iterate these). */
export const ATTENTION_VARIANTS = [
  'naive',
  'fused',
  'fused,rows=8',
  'fused,ktile=4,rows=2',
  'fused,ktile=3,rows=3,head=loop',
  'fused,ktile=8,rows=1,wg=32,head=loop',
] as const;

/** Register budget of the fused path: q and o of every row live in registers. */
const FUSED_MAX_DH = 256;

function choose(g: Omit<AttentionShape, 'vec'>, ctx: LowerContext): AttentionChoice {
  const p = attentionVariant.of(ctx.prefer) ?? {};
  const path = p.path ?? (g.dh <= FUSED_MAX_DH ? 'fused' : 'naive');
  // SwiftShader (measured, ViT-B attention, 2 cores): many query rows per invocation, so each
  // k/v load serves them all, with an unrolled head dimension, beat key tiling: rows 8 / tile 1
  // ~28 ms, rows 1 / tile 8 ~450 ms, naive ~210 ms. Rows 4 run as fast as rows 8 within the noise
  // (54 vs 57 ms, 107 vs 104 ms on a busier machine) and build 2.6-3.3× faster (2.0 s vs 5.2-6.6 s,
  // half of ViT-B's whole compile), so rows are capped so q and o stay ≤ 2·256 floats (4 at dh 64);
  // 'fused,rows=8' stays in the tune space.
  const rows = p.rows ?? Math.max(1, Math.min(8, Math.floor(256 / g.dh)));
  const wg = p.wg ?? 64;
  if (wg > ctx.limits.maxComputeInvocationsPerWorkgroup) {
    throw new Error(
      `attention variant: workgroup ${wg} exceeds maxComputeInvocationsPerWorkgroup ${ctx.limits.maxComputeInvocationsPerWorkgroup}`,
    );
  }
  return { path, keyTile: Math.min(p.ktile ?? 1, g.Tk), rows: Math.min(rows, g.Tq), wg, unroll: p.head !== 'loop' };
}

// ---- op --------------------------------------------------------------------------------------

export const attentionOp: OpDef<AttentionAttrs> = {
  op: 'attention',
  arity: [1, 3],
  infer(attrs, inputs) {
    const g = geometry(attrs, inputs);
    return [[g.B, g.Tq, g.heads * g.dh]];
  },
  lower(attrs, inputs, _outs, ctx) {
    const g = geometry(attrs, inputs);
    const shape: AttentionShape = { ...g, vec: g.dh % 4 === 0 };
    const { B, Tq, Tk, heads: H, dh } = g;
    const ch = choose(g, ctx);
    const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const flops = 4 * B * H * Tq * Tk * dh;
    const ioBytes = 4 * (inputs.reduce((s, x) => s + numel(x), 0) + B * Tq * H * dh);
    const qk = g.packed ? [input(0)] : [input(0), input(1)];
    const v = g.packed ? input(0) : input(2);
    if (ch.path === 'fused') {
      const wgs = grid(ceilDiv(B * H * ceilDiv(Tq, ch.rows), ch.wg), maxDim);
      const cfg: FusedAttentionConfig = {
        ...shape,
        keyTile: ch.keyTile,
        rows: ch.rows,
        wg: ch.wg,
        unroll: ch.unroll,
        gridX: wgs[0],
      };
      return {
        dispatches: [
          makeDispatch(fusedAttentionFamily, cfg, wgs, [...qk, ...(g.packed ? [] : [v]), output(0)], {
            flops,
            bytes: ioBytes,
          }),
        ],
      };
    }
    const scores = B * H * Tq * Tk;
    const stage = (st: NaiveAttentionConfig['stage'], count: number) => {
      const wgs = grid(ceilDiv(count, ch.wg), maxDim);
      return { cfg: { ...shape, stage: st, wg: ch.wg, gridX: wgs[0] } as NaiveAttentionConfig, wgs };
    };
    const s1 = stage('scores', scores),
      s2 = stage('softmax', B * H * Tq),
      s3 = stage('pv', B * Tq * H * (shape.vec ? dh / 4 : dh));
    return {
      temps: [scores],
      dispatches: [
        makeDispatch(naiveAttentionFamily, s1.cfg, s1.wgs, [...qk, temp(0)], { flops: flops / 2, bytes: 4 * scores }),
        makeDispatch(naiveAttentionFamily, s2.cfg, s2.wgs, [temp(0)], { flops: 3 * scores, bytes: 8 * scores }),
        makeDispatch(naiveAttentionFamily, s3.cfg, s3.wgs, [temp(0), v, output(0)], {
          flops: flops / 2,
          bytes: 4 * scores,
        }),
      ],
    };
  },
  ref(attrs, inputs) {
    return [attentionRef(attrs, inputs)];
  },
  tuneSpace: () => ({ family: 'attention', candidates: [...ATTENTION_VARIANTS] }),
};

/** Plain-TS attention: explicit scores, a max-subtracted softmax, then @ v (double precision). */
export function attentionRef(attrs: AttentionAttrs, inputs: HostTensor[]): HostTensor {
  const g = geometry(
    attrs,
    inputs.map((t) => t.shape),
  );
  const { B, Tq, Tk, heads: H, dh, scale } = g;
  const D = H * dh;
  const rs = g.packed ? 3 * D : D;
  const [qd, kd, vd] = g.packed ? [inputs[0].data, inputs[0].data, inputs[0].data] : inputs.map((t) => t.data);
  const [qo, ko, vo] = g.packed ? [0, D, 2 * D] : [0, 0, 0];
  const out = new Float32Array(B * Tq * D);
  const s = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Tq; i++) {
        const qr = (b * Tq + i) * rs + qo + h * dh;
        for (let j = 0; j < Tk; j++) {
          const kr = (b * Tk + j) * rs + ko + h * dh;
          let d = 0;
          for (let c = 0; c < dh; c++) d += qd[qr + c] * kd[kr + c];
          s[j] = d * scale;
        }
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) m = Math.max(m, s[j]);
        let l = 0;
        for (let j = 0; j < Tk; j++) l += s[j] = Math.exp(s[j] - m);
        for (let c = 0; c < dh; c++) {
          let acc = 0;
          for (let j = 0; j < Tk; j++) acc += s[j] * vd[(b * Tk + j) * rs + vo + h * dh + c];
          out[(b * Tq + i) * D + h * dh + c] = acc / l;
        }
      }
    }
  }
  return { shape: [B, Tq, D], data: out };
}
