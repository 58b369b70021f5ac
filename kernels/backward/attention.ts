// Backward of multi-head scaled dot-product attention (kernels/attention.ts), the explicit path:
// the probabilities are recomputed, not stored by the forward (docs/backward-norm.md).
//
// Per (batch b, head h), with S = q kᵀ · scale, P = softmax(S) by rows, out = P v, and dO the
// gradient of out:
//   dv = Pᵀ dO
//   dP = dO vᵀ
//   dS = P ⊙ (dP - rowsum(P ⊙ dP))            (softmax backward, row by row)
//   dq = scale · dS k,   dk = scale · dSᵀ q
// Inputs: the forward's inputs (one packed qkv [B, T, 3D], or q [B, Tq, D], k [B, Tk, D],
// v [B, Tk, D]) followed by dO [B, Tq, D]; attrs as the forward's (heads, scale). Outputs: d(qkv)
// [B, T, 3D] packed like its input, or dq, dk, dv.
//
// Paths (ctx.prefer.attention_grad, an AttentionGradVariant: 'fused' or 'naive'; scalar loads,
// one invocation per row or element):
//   naive (family `attention_grad`): the explicit form, the oracle. Stages:
//     probs    per score row (b, h, i): scores, stable softmax -> P, scratch [B, H, Tq, Tk]
//     dscores  per score row: dP_j = dO_i · v_j, then dS = P (dP - Σ P dP) -> dS, scratch
//     grads    per element of one gradient ('q', 'k', 'v', or all of a packed 'qkv'): a dot
//              product along a row (dq) or a column (dk, dv) of dS or P
//     The scratch is 2·B·H·Tq·Tk floats (ViT-B/16 at batch 32: 119 MB).
//   fused (family `attention_grad_fused`, FlashAttention-2's backward without tiles): P is never
//     stored. Stages:
//     rowstats per query row: lse_i = log Σ_j exp(s_ij) and D_i = Σ_j P_ij (dO_i · v_j), both
//              by one online pass over the keys (rescaled on a new max), into a scratch [B, H, Tq, 2]
//     dq       per query row: for every key, P_ij = exp(s_ij - lse_i) and
//              dS_ij = P_ij (dO_i · v_j - D_i); dq_i = scale · Σ_j dS_ij k_j
//     dkv      per key row: the same P_ij and dS_ij for every query; dv_j = Σ_i P_ij dO_i,
//              dk_j = scale · Σ_i dS_ij q_i
//     Scores are computed three times (about 2x the naive path's arithmetic) for a scratch of
//     2·B·H·Tq floats. Each invocation owns `rows` rows, so one load of the other side's row
//     serves all of them; rows and accumulators are named registers ('head=unrolled', default)
//     or private arrays of dh floats ('head=loop').
// Default: fused for dh ≤ 256 (the forward's register budget), naive beyond.

import {
  type HostTensor,
  type KernelFamily,
  type Lowering,
  type OpDef,
  type Shape,
  ceilDiv,
  f32Lit,
  fmtShape,
  grid,
  input,
  makeDispatch,
  output,
  ShapeError,
  temp,
} from '../kernel.js';
import { type AttentionAttrs, attentionOp } from '../attention.js';
import { defineVariant } from '../variant.js';
import { flatMain, range } from '../wgsl.js';

/** ctx.prefer.attention_grad; unset fields are the heuristic's. */
export interface AttentionGradVariant {
  path?: 'fused' | 'naive';
  /** Fused: the head dimension spelled out in registers (default) or looped over private arrays. */
  head?: 'unrolled' | 'loop';
  /** Fused: rows per invocation, sharing each load of the other side's rows. */
  rows?: number;
}

export const attentionGradVariant = defineVariant<AttentionGradVariant>('attention_grad', [
  { kind: 'enum', key: 'path', values: ['fused', 'naive'], bare: true },
  { kind: 'int', key: 'rows', min: 1 },
  { kind: 'enum', key: 'head', values: ['unrolled', 'loop'] },
]);

/** Longest head the fused path keeps in private arrays (as the forward's fused path). */
const FUSED_MAX_DH = 256;

interface AttnDims {
  B: number;
  Tq: number;
  Tk: number;
  H: number;
  dh: number;
  packed: boolean;
  scale: number;
}

interface AttentionGradConfig extends AttnDims {
  stage: 'probs' | 'dscores' | 'q' | 'k' | 'v' | 'qkv';
  wg: number;
  gridX: number;
}

/** The forward's geometry from the backward's inputs (forward inputs, then dO). */
function dims(attrs: AttentionAttrs, inputs: Shape[]): AttnDims {
  if (inputs.length !== 2 && inputs.length !== 4) {
    throw new ShapeError(
      `attention_grad takes [qkv, dO] or [q, k, v, dO], got ${inputs.length} inputs ${inputs.map(fmtShape).join(', ')}`,
    );
  }
  const fwd = inputs.slice(0, -1);
  const [out] = attentionOp.infer(attrs, fwd);
  const dO = inputs[inputs.length - 1];
  if (fmtShape(dO) !== fmtShape(out)) {
    throw new ShapeError(`attention_grad: dO ${fmtShape(dO)} must have the attention output's shape ${fmtShape(out)}`);
  }
  const [B, Tq, D] = out;
  const H = attrs.heads,
    dh = D / H;
  return {
    B,
    Tq,
    Tk: fwd.length === 1 ? Tq : fwd[1][1],
    H,
    dh,
    packed: fwd.length === 1,
    scale: attrs.scale ?? 1 / Math.sqrt(dh),
  };
}

const attentionGrad: KernelFamily<AttentionGradConfig> = {
  name: 'attention_grad',
  wgsl(c) {
    const { B, Tq, Tk, H, dh } = c;
    const D = H * dh;
    const RS = c.packed ? 3 * D : D; // input row stride
    const [qOff, kOff, vOff] = c.packed ? [0, D, 2 * D] : [0, 0, 0];
    const L: string[] = [];
    let b = 0;
    const ro = (name: string, what: string) =>
      L.push(`@group(0) @binding(${b++}) var<storage, read> ${name}: array<f32>;   // input  ${what}`);
    const rw = (name: string, what: string) =>
      L.push(`@group(0) @binding(${b++}) var<storage, read_write> ${name}: array<f32>;   // ${what}`);
    const inputs = (use: string) => {
      if (c.packed) ro('QKV', `qkv [${B}, ${Tq}, ${3 * D}]`);
      else for (const n of use) ro(n, `${n.toLowerCase()} [${B}, ${n === 'Q' ? Tq : Tk}, ${D}]`);
    };
    const Qa = c.packed ? 'QKV' : 'Q',
      Ka = c.packed ? 'QKV' : 'K',
      Va = c.packed ? 'QKV' : 'V';
    const P = `scratch: probabilities [${B}, ${H}, ${Tq}, ${Tk}]`;
    const dS = `scratch: score gradients [${B}, ${H}, ${Tq}, ${Tk}]`;
    // Row bases: q/dO row (b, i) and k/v row (b, j) of head h.
    const qRow = (i: string) => `(b * ${Tq}u + ${i}) * ${RS}u + ${qOff}u + h * ${dh}u`;
    const kRow = (j: string) => `(b * ${Tk}u + ${j}) * ${RS}u + ${kOff}u + h * ${dh}u`;
    const vRow = (j: string) => `(b * ${Tk}u + ${j}) * ${RS}u + ${vOff}u + h * ${dh}u`;
    const oRow = (i: string) => `(b * ${Tq}u + ${i}) * ${D}u + h * ${dh}u`;
    const sRow = (i: string) => `((b * ${H}u + h) * ${Tq}u + ${i}) * ${Tk}u`;
    const rowHead = [
      `  if (t >= ${B * H * Tq}u) { return; }`,
      `  let i = t % ${Tq}u;`,
      `  let h = (t / ${Tq}u) % ${H}u;`,
      `  let b = t / ${Tq * H}u;`,
      `  let r = ${sRow('i')};`,
    ];
    if (c.stage === 'probs') {
      inputs('QK');
      rw('P', P);
      L.push('', flatMain(c.wg, c.gridX), ...rowHead);
      L.push(`  let qb = ${qRow('i')};`);
      L.push('  var m = -3.0e38;');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) {`);
      L.push(`    let kb = ${kRow('j')};`);
      L.push('    var s = 0.0;');
      L.push(`    for (var e = 0u; e < ${dh}u; e++) { s += ${Qa}[qb + e] * ${Ka}[kb + e]; }`);
      L.push(`    s *= ${f32Lit(c.scale)};`);
      L.push('    P[r + j] = s;');
      L.push('    m = max(m, s);');
      L.push('  }');
      L.push('  var l = 0.0;');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) { let p = exp(P[r + j] - m); P[r + j] = p; l += p; }`);
      L.push('  let inv = 1.0 / l;');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) { P[r + j] *= inv; }`);
    } else if (c.stage === 'dscores') {
      inputs('V');
      ro('dO', `dO [${B}, ${Tq}, ${D}]`);
      rw('P', P);
      rw('dS', dS);
      L.push('', flatMain(c.wg, c.gridX), ...rowHead);
      L.push(`  let ob = ${oRow('i')};`);
      L.push('  var pd = 0.0;');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) {`);
      L.push(`    let vb = ${vRow('j')};`);
      L.push('    var d = 0.0;');
      L.push(`    for (var e = 0u; e < ${dh}u; e++) { d += dO[ob + e] * ${Va}[vb + e]; }`);
      L.push('    dS[r + j] = d;');
      L.push('    pd += P[r + j] * d;');
      L.push('  }');
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) { dS[r + j] = P[r + j] * (dS[r + j] - pd); }`);
    } else {
      // One invocation per element of the gradient(s) this stage writes.
      const part = c.stage;
      if (part === 'q') inputs('K');
      if (part === 'k') inputs('Q');
      if (part === 'qkv') inputs('');
      if (part === 'v' || part === 'qkv') ro('dO', `dO [${B}, ${Tq}, ${D}]`);
      if (part !== 'v') rw('dS', dS);
      if (part === 'v' || part === 'qkv') rw('P', P);
      const rows = part === 'q' ? Tq : Tk;
      const W = part === 'qkv' ? 3 * D : D;
      rw('G', `output d${part} [${B}, ${rows}, ${W}]`);
      L.push('', flatMain(c.wg, c.gridX));
      L.push(`  if (t >= ${B * rows * W}u) { return; }`);
      L.push(`  let col = t % ${W}u;`);
      L.push(`  let row = (t / ${W}u) % ${rows}u;`);
      L.push(`  let b = t / ${W * rows}u;`);
      L.push(`  let part = col / ${D}u;`);
      L.push(`  let h = (col % ${D}u) / ${dh}u;`);
      L.push(`  let e = col % ${dh}u;`);
      L.push('  var acc = 0.0;');
      const dq = [
        `    for (var j = 0u; j < ${Tk}u; j++) { acc += dS[${sRow('row')} + j] * ${Ka}[${kRow('j')} + e]; }`,
        `    acc *= ${f32Lit(c.scale)};`,
      ];
      const dk = [
        `    for (var i = 0u; i < ${Tq}u; i++) { acc += dS[${sRow('i')} + row] * ${Qa}[${qRow('i')} + e]; }`,
        `    acc *= ${f32Lit(c.scale)};`,
      ];
      const dv = [`    for (var i = 0u; i < ${Tq}u; i++) { acc += P[${sRow('i')} + row] * dO[${oRow('i')} + e]; }`];
      if (part === 'qkv') {
        L.push('  if (part == 0u) {', ...dq, '  } else if (part == 1u) {', ...dk, '  } else {', ...dv, '  }');
      } else {
        L.push('  {', ...(part === 'q' ? dq : part === 'k' ? dk : dv), '  }');
      }
      L.push('  G[t] = acc;');
    }
    L.push('}');
    return L.join('\n');
  },
};

// ---- fused ---------------------------------------------------------------------------------------

interface FusedGradConfig extends AttnDims {
  stage: 'rowstats' | 'dq' | 'dkv';
  /** Held rows and accumulators as named registers (else loop-indexed private arrays). */
  unroll: boolean;
  /** Rows (query rows for rowstats and dq, key rows for dkv) per invocation. */
  rows: number;
  wg: number;
  gridX: number;
}

const attentionGradFused: KernelFamily<FusedGradConfig> = {
  name: 'attention_grad_fused',
  wgsl(c) {
    const { B, Tq, Tk, H, dh } = c;
    const D = H * dh;
    const RS = c.packed ? 3 * D : D;
    const [qOff, kOff, vOff] = c.packed ? [0, D, 2 * D] : [0, 0, 0];
    const L: string[] = [];
    let b = 0;
    const ro = (name: string, what: string) =>
      L.push(`@group(0) @binding(${b++}) var<storage, read> ${name}: array<f32>;   // input  ${what}`);
    const rw = (name: string, what: string) =>
      L.push(`@group(0) @binding(${b++}) var<storage, read_write> ${name}: array<f32>;   // ${what}`);
    if (c.packed) ro('QKV', `qkv [${B}, ${Tq}, ${3 * D}]`);
    else {
      ro('Q', `q [${B}, ${Tq}, ${D}]`);
      ro('K', `k [${B}, ${Tk}, ${D}]`);
      ro('V', `v [${B}, ${Tk}, ${D}]`);
    }
    ro('dO', `dO [${B}, ${Tq}, ${D}]`);
    rw('st', `scratch: (lse, D) per query row [${B}, ${H}, ${Tq}, 2]`);
    const Qa = c.packed ? 'QKV' : 'Q',
      Ka = c.packed ? 'QKV' : 'K',
      Va = c.packed ? 'QKV' : 'V';
    const qRow = (i: string) => `(b * ${Tq}u + ${i}) * ${RS}u + ${qOff}u + h * ${dh}u`;
    const kRow = (j: string) => `(b * ${Tk}u + ${j}) * ${RS}u + ${kOff}u + h * ${dh}u`;
    const vRow = (j: string) => `(b * ${Tk}u + ${j}) * ${RS}u + ${vOff}u + h * ${dh}u`;
    const oRow = (i: string) => `(b * ${Tq}u + ${i}) * ${D}u + h * ${dh}u`;
    const stRow = (i: string) => `((b * ${H}u + h) * ${Tq}u + ${i}) * 2u`;
    const sc = f32Lit(c.scale);
    const R = c.rows;
    const rs = range(R);
    // Vectors of dh values an invocation holds per row r (a row of q, k, v or dO, or an
    // accumulator): named registers `n{r}_{e}` when unrolled, private arrays `n{r}` otherwise.
    // over() emits statements for every element e: `ix` its index expression, at(n, r) the held
    // element of row r. Values loaded once per e inside over() serve all R rows.
    const E = range(dh);
    type At = (n: string, r: number) => string;
    const over = (ind: string, body: (ix: string, at: At) => string[]): string[] =>
      c.unroll
        ? E.flatMap((e) => {
            // A block per element, so its loads (`let ke = …`) are local to it.
            const ls = body(`${e}u`, (n, r) => `${n}${r}_${e}`);
            return ls.length === 1 ? [`${ind}${ls[0]}`] : [`${ind}{ ${ls.join(' ')} }`];
          })
        : [
            `${ind}for (var e = 0u; e < ${dh}u; e++) {`,
            ...body('e', (n, r) => `${n}${r}[e]`).map((l) => `${ind}  ${l}`),
            `${ind}}`,
          ];
    const hold = (n: string, load: (ix: string, r: number) => string): string[] =>
      c.unroll
        ? rs.flatMap((r) => E.map((e) => `  let ${n}${r}_${e} = ${load(`${e}u`, r)};`))
        : [
            ...rs.map((r) => `  var ${n}${r}: array<f32, ${dh}>;`),
            ...over('  ', (ix, at) => rs.map((r) => `${at(n, r)} = ${load(ix, r)};`)),
          ];
    const zero = (n: string): string[] =>
      c.unroll
        ? rs.flatMap((r) => E.map((e) => `  var ${n}${r}_${e} = 0.0;`))
        : rs.map((r) => `  var ${n}${r}: array<f32, ${dh}>;`);
    const vars = (ind: string, names: string[]) => rs.flatMap((r) => names.map((n) => `${ind}var ${n}${r} = 0.0;`));
    const rows = (n: number) => [
      '',
      flatMain(c.wg, c.gridX),
      // Row blocks fastest, so neighbouring invocations read the same keys (or queries).
      `  if (t >= ${B * H * ceilDiv(n, R)}u) { return; }`,
      `  let i0 = (t % ${ceilDiv(n, R)}u) * ${R}u;`,
      `  let h = (t / ${ceilDiv(n, R)}u) % ${H}u;`,
      `  let b = t / ${ceilDiv(n, R) * H}u;`,
      // Rows past the end load row n - 1 and write nothing.
      ...rs.map((r) => `  let r${r} = min(i0 + ${r}u, ${n - 1}u);`),
    ];
    const guard = (n: number, r: number, body: string[]) => [
      `  if (i0 + ${r}u < ${n}u) {`,
      ...body.map((l) => `  ${l}`),
      '  }',
    ];
    if (c.stage === 'rowstats') {
      L.push(...rows(Tq));
      L.push(...rs.flatMap((r) => [`  let qb${r} = ${qRow(`r${r}`)};`, `  let ob${r} = ${oRow(`r${r}`)};`]));
      L.push(...hold('q', (ix, r) => `${Qa}[qb${r} + ${ix}]`), ...hold('g', (ix, r) => `dO[ob${r} + ${ix}]`));
      L.push(...rs.flatMap((r) => [`  var m${r} = -3.0e38;`, `  var l${r} = 0.0;`, `  var d${r} = 0.0;`]));
      L.push(`  for (var j = 0u; j < ${Tk}u; j++) {`);
      L.push(`    let kb = ${kRow('j')};`, `    let vb = ${vRow('j')};`);
      L.push(...vars('    ', ['s', 'dp']));
      L.push(
        ...over('    ', (ix, at) => [
          `let ke = ${Ka}[kb + ${ix}];`,
          `let ve = ${Va}[vb + ${ix}];`,
          ...rs.map((r) => `s${r} += ${at('q', r)} * ke; dp${r} += ${at('g', r)} * ve;`),
        ]),
      );
      for (const r of rs) {
        L.push(`    let mn${r} = max(m${r}, s${r} * ${sc});`);
        L.push(`    let al${r} = exp(m${r} - mn${r});`, `    let p${r} = exp(s${r} * ${sc} - mn${r});`);
        L.push(
          `    l${r} = l${r} * al${r} + p${r};`,
          `    d${r} = d${r} * al${r} + p${r} * dp${r};`,
          `    m${r} = mn${r};`,
        );
      }
      L.push('  }');
      for (const r of rs)
        L.push(
          ...guard(Tq, r, [
            `st[${stRow(`r${r}`)}] = m${r} + log(l${r});`,
            `st[${stRow(`r${r}`)} + 1u] = d${r} / l${r};`,
          ]),
        );
    } else {
      // Gradient outputs: packed, one buffer [B, T, 3D] (dq, dk, dv at column 0, D, 2D); else one each.
      const GS = c.packed ? 3 * D : D;
      const gRow = (row: string, part: number) =>
        `(b * ${c.stage === 'dq' ? Tq : Tk}u + ${row}) * ${GS}u + ${c.packed ? part * D : 0}u + h * ${dh}u`;
      if (c.stage === 'dq') {
        rw(
          'G',
          c.packed
            ? `output d(qkv) [${B}, ${Tq}, ${3 * D}] (columns 0..${D - 1} here)`
            : `output dq [${B}, ${Tq}, ${D}]`,
        );
        L.push(...rows(Tq));
        L.push(...rs.flatMap((r) => [`  let qb${r} = ${qRow(`r${r}`)};`, `  let ob${r} = ${oRow(`r${r}`)};`]));
        L.push(
          ...rs.flatMap((r) => [
            `  let lse${r} = st[${stRow(`r${r}`)}];`,
            `  let dd${r} = st[${stRow(`r${r}`)} + 1u];`,
          ]),
        );
        L.push(
          ...hold('q', (ix, r) => `${Qa}[qb${r} + ${ix}]`),
          ...hold('g', (ix, r) => `dO[ob${r} + ${ix}]`),
          ...zero('a'),
        );
        L.push(`  for (var j = 0u; j < ${Tk}u; j++) {`);
        L.push(`    let kb = ${kRow('j')};`, `    let vb = ${vRow('j')};`);
        L.push(...vars('    ', ['s', 'dp']));
        L.push(
          ...over('    ', (ix, at) => [
            `let ve = ${Va}[vb + ${ix}];`,
            `let ke = ${Ka}[kb + ${ix}];`,
            ...rs.map((r) => `s${r} += ${at('q', r)} * ke; dp${r} += ${at('g', r)} * ve;`),
          ]),
        );
        L.push(...rs.map((r) => `    let ds${r} = exp(s${r} * ${sc} - lse${r}) * (dp${r} - dd${r});`));
        L.push(
          ...over('    ', (ix, at) => [
            `let ke = ${Ka}[kb + ${ix}];`,
            ...rs.map((r) => `${at('a', r)} += ds${r} * ke;`),
          ]),
          '  }',
        );
        for (const r of rs)
          L.push(
            ...guard(Tq, r, [
              `let gb = ${gRow(`r${r}`, 0)};`,
              ...over('', (ix, at) => [`G[gb + ${ix}] = ${at('a', r)} * ${sc};`]),
            ]),
          );
      } else {
        if (c.packed) rw('G', `output d(qkv) [${B}, ${Tk}, ${3 * D}] (columns ${D}..${3 * D - 1} here)`);
        else {
          rw('GK', `output dk [${B}, ${Tk}, ${D}]`);
          rw('GV', `output dv [${B}, ${Tk}, ${D}]`);
        }
        L.push(...rows(Tk));
        L.push(...rs.flatMap((r) => [`  let kb${r} = ${kRow(`r${r}`)};`, `  let vb${r} = ${vRow(`r${r}`)};`]));
        L.push(...hold('k', (ix, r) => `${Ka}[kb${r} + ${ix}]`), ...hold('v', (ix, r) => `${Va}[vb${r} + ${ix}]`));
        L.push(...zero('ak'), ...zero('av'));
        L.push(`  for (var i = 0u; i < ${Tq}u; i++) {`);
        L.push(`    let qb = ${qRow('i')};`, `    let ob = ${oRow('i')};`);
        L.push(`    let lse = st[${stRow('i')}];`, `    let dd = st[${stRow('i')} + 1u];`);
        L.push(...vars('    ', ['s', 'dp']));
        L.push(
          ...over('    ', (ix, at) => [
            `let qe = ${Qa}[qb + ${ix}];`,
            `let ge = dO[ob + ${ix}];`,
            ...rs.map((r) => `s${r} += qe * ${at('k', r)}; dp${r} += ge * ${at('v', r)};`),
          ]),
        );
        L.push(
          ...rs.flatMap((r) => [
            `    let p${r} = exp(s${r} * ${sc} - lse);`,
            `    let ds${r} = p${r} * (dp${r} - dd);`,
          ]),
        );
        L.push(
          ...over('    ', (ix, at) => [
            `let qe = ${Qa}[qb + ${ix}];`,
            `let ge = dO[ob + ${ix}];`,
            ...rs.map((r) => `${at('av', r)} += p${r} * ge; ${at('ak', r)} += ds${r} * qe;`),
          ]),
          '  }',
        );
        for (const r of rs)
          L.push(
            ...guard(Tk, r, [
              `let gk = ${gRow(`r${r}`, 1)};`,
              `let gv = ${gRow(`r${r}`, 2)};`,
              ...over('', (ix, at) => [
                `${c.packed ? 'G' : 'GK'}[gk + ${ix}] = ${at('ak', r)} * ${sc};`,
                `${c.packed ? 'G' : 'GV'}[gv + ${ix}] = ${at('av', r)};`,
              ]),
            ]),
          );
      }
    }
    L.push('}');
    return L.join('\n');
  },
};

export const attentionGradOp: OpDef<AttentionAttrs> = {
  op: 'attention_grad',
  arity: [2, 4],
  infer(attrs, inputs) {
    dims(attrs, inputs);
    return inputs.slice(0, -1).map((s) => [...s]);
  },
  lower(attrs, inputs, _o, ctx) {
    const d = dims(attrs, inputs);
    const { B, Tq, Tk, H, dh } = d;
    const D = H * dh;
    const maxDim = ctx.limits.maxComputeWorkgroupsPerDimension;
    const wg = 64;
    const v = attentionGradVariant.of(ctx.prefer) ?? {};
    const path = v.path ?? (dh <= FUSED_MAX_DH ? 'fused' : 'naive');
    if (path === 'fused') {
      // Held values per invocation: up to 4 vectors of dh per row; keep them near 512 floats.
      const rows = v.rows ?? Math.max(1, Math.min(4, Math.floor(512 / (4 * dh))));
      return lowerFused(d, inputs.length - 1, maxDim, v.head !== 'loop', rows);
    }
    const scores = B * H * Tq * Tk;
    const stage = (st: AttentionGradConfig['stage'], count: number) => {
      const wgs = grid(ceilDiv(count, wg), maxDim);
      return { cfg: { ...d, stage: st, wg, gridX: wgs[0] } as AttentionGradConfig, wgs };
    };
    const cost = { flops: 2 * scores * dh, bytes: 4 * scores };
    const s1 = stage('probs', B * H * Tq);
    const s2 = stage('dscores', B * H * Tq);
    const dO = input(inputs.length - 1);
    const dispatches = [
      makeDispatch(attentionGrad, s1.cfg, s1.wgs, [...(d.packed ? [input(0)] : [input(0), input(1)]), temp(0)], cost),
      makeDispatch(attentionGrad, s2.cfg, s2.wgs, [d.packed ? input(0) : input(2), dO, temp(0), temp(1)], cost),
    ];
    if (d.packed) {
      const s = stage('qkv', B * Tq * 3 * D);
      dispatches.push(
        makeDispatch(attentionGrad, s.cfg, s.wgs, [input(0), dO, temp(1), temp(0), output(0)], {
          flops: 3 * cost.flops,
          bytes: 4 * (3 * scores + 3 * B * Tq * D),
        }),
      );
    } else {
      const sq = stage('q', B * Tq * D),
        sk = stage('k', B * Tk * D),
        sv = stage('v', B * Tk * D);
      dispatches.push(
        makeDispatch(attentionGrad, sq.cfg, sq.wgs, [input(1), temp(1), output(0)], cost),
        makeDispatch(attentionGrad, sk.cfg, sk.wgs, [input(0), temp(1), output(1)], cost),
        makeDispatch(attentionGrad, sv.cfg, sv.wgs, [dO, temp(0), output(2)], cost),
      );
    }
    return { dispatches, temps: [scores, scores] };
  },
  ref(attrs, inputs) {
    return attentionGradRef(attrs, inputs);
  },
  tuneSpace: () => ({
    family: 'attention_grad',
    candidates: ['naive', 'fused,rows=1', 'fused,rows=2', 'fused,rows=4', 'fused,rows=8', 'fused,head=loop'],
  }),
};

function lowerFused(d: AttnDims, dOIndex: number, maxDim: number, unroll: boolean, rows: number): Lowering {
  const { B, Tq, Tk, H, dh } = d;
  const wg = 64;
  const dO = input(dOIndex);
  const qkv = d.packed ? [input(0)] : [input(0), input(1), input(2)];
  const stage = (st: FusedGradConfig['stage'], n: number) => {
    const R = Math.min(rows, n);
    const wgs = grid(ceilDiv(B * H * ceilDiv(n, R), wg), maxDim);
    return { cfg: { ...d, stage: st, unroll, rows: R, wg, gridX: wgs[0] } as FusedGradConfig, wgs };
  };
  const pairs = B * H * Tq * Tk;
  const s1 = stage('rowstats', Tq),
    s2 = stage('dq', Tq),
    s3 = stage('dkv', Tk);
  return {
    temps: [2 * B * H * Tq],
    dispatches: [
      makeDispatch(attentionGradFused, s1.cfg, s1.wgs, [...qkv, dO, temp(0)], { flops: 4 * pairs * dh }),
      makeDispatch(attentionGradFused, s2.cfg, s2.wgs, [...qkv, dO, temp(0), output(0)], { flops: 6 * pairs * dh }),
      makeDispatch(
        attentionGradFused,
        s3.cfg,
        s3.wgs,
        [...qkv, dO, temp(0), ...(d.packed ? [output(0)] : [output(1), output(2)])],
        {
          flops: 8 * pairs * dh,
        },
      ),
    ],
  };
}

/** Plain-TS attention backward in double precision: [d(qkv)] packed, or [dq, dk, dv]. */
export function attentionGradRef(attrs: AttentionAttrs, inputs: HostTensor[]): HostTensor[] {
  const d = dims(
    attrs,
    inputs.map((t) => t.shape),
  );
  const { B, Tq, Tk, H, dh, scale } = d;
  const D = H * dh;
  const rs = d.packed ? 3 * D : D;
  const fwd = inputs.slice(0, -1);
  const dO = inputs[inputs.length - 1].data;
  const [qd, kd, vd] = d.packed ? [fwd[0].data, fwd[0].data, fwd[0].data] : fwd.map((t) => t.data);
  const [qo, ko, vo] = d.packed ? [0, D, 2 * D] : [0, 0, 0];
  const grads = fwd.map((t) => new Float64Array(t.data.length));
  const [gq, gk, gv] = d.packed ? [grads[0], grads[0], grads[0]] : grads;
  const p = new Float64Array(Tk);
  const ds = new Float64Array(Tk);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < Tq; i++) {
        const qr = (b * Tq + i) * rs + qo + h * dh;
        const orow = (b * Tq + i) * D + h * dh;
        let m = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const kr = (b * Tk + j) * rs + ko + h * dh;
          let s = 0;
          for (let e = 0; e < dh; e++) s += qd[qr + e] * kd[kr + e];
          p[j] = s * scale;
          m = Math.max(m, p[j]);
        }
        let l = 0;
        for (let j = 0; j < Tk; j++) l += p[j] = Math.exp(p[j] - m);
        let pd = 0;
        for (let j = 0; j < Tk; j++) {
          p[j] /= l;
          const vr = (b * Tk + j) * rs + vo + h * dh;
          let dp = 0;
          for (let e = 0; e < dh; e++) {
            dp += dO[orow + e] * vd[vr + e];
            gv[vr + e] += p[j] * dO[orow + e];
          }
          ds[j] = dp;
          pd += p[j] * dp;
        }
        for (let j = 0; j < Tk; j++) {
          const g = p[j] * (ds[j] - pd) * scale;
          const kr = (b * Tk + j) * rs + ko + h * dh;
          for (let e = 0; e < dh; e++) {
            gq[qr + e] += g * kd[kr + e];
            gk[kr + e] += g * qd[qr + e];
          }
        }
      }
    }
  }
  return fwd.map((t, i) => ({ shape: [...t.shape], data: Float32Array.from(grads[i]) }));
}

export const attentionGradOps: OpDef[] = [attentionGradOp];
