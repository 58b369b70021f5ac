// Matrix multiply: the linear layer (a [..., M, K] @ w [K, N] + bias), batched matmul
// (a [..., M, K] @ b [..., K, N]) and q @ kᵀ (transB), with a fused bias + activation epilogue.
//
// Layout: row-major f32. With transB, b is [N, K] / [..., N, K] (PyTorch Linear weights, keys).
// A shared rank-2 weight folds a's leading dims into M, so [B, T, D] @ [D, N] is one GEMM of
// M = B·T rows. Batched b broadcasts its leading dims against a's (numpy rules).
//
// Mapping (family `matmul`): each invocation owns a TM × TN tile of one output matrix (TN is a
// multiple of 4, so accumulators are TM·TN/4 vec4 registers); a workgroup of wgX × wgY
// invocations owns (wgY·TM) × (wgX·TN). The flat workgroup index unravels to
// (tile column, tile row, batch, k-split). Out-of-range rows/columns are clamped on load and
// skipped on store, so any M, N, K works.
// Variants (all config values, chosen in `lower`, forced with ctx.prefer.matmul, a MatmulVariant):
//   kind 'reg'   — register blocking straight from global memory. vec4 loads along K for a
//                  (K % 4 == 0), along N for b (N % 4 == 0) or along K for transB; scalar
//                  loads otherwise. Fast on SwiftShader (no barriers, no workgroup memory).
//   kind 'wgmem' — the classic shared-memory tiling for real GPUs: the workgroup stages a
//                  (wgY·TM) × TK slab of a and a TK × (wgX·TN) slab of b in workgroup memory
//                  per K step, with two barriers per step; the slabs are loaded and kept as
//                  vec4s where K (a, transB b) and N (b) allow. The tilings the tuner tries are
//                  sized from the device limits (matmulWgmemTilings; docs/kernels-gpu.md).
//   'f16=w|all'  — b (a constant weight) stored as halves, made once at load: 'w' widens them to
//                  f32 (unpack2x16float, any adapter), 'all' computes in f16 (needs shader-f16);
//                  see kernels/f16.ts. The tuner offers both only where the adapter has shader-f16.
//                  With 'wgmem' ('all'), the slabs are f16 too: half the workgroup memory.
//   'sg'         — b's rows shared across a subgroup by subgroupBroadcast, S = the adapter's
//                  smallest subgroup size (≤ 16) lanes loading one row each: right for any
//                  subgroup size in subgroupMinSize..subgroupMaxSize (MatmulConfig.sg, sgWide).
//   'pk'         — b (a constant [K, N] weight) packed at compile time as [⌈N/TN⌉, K, TN], so a
//                  tile streams its own contiguous block (MatmulConfig.packB).
//   'sg2'        — both operands shared across a subgroup of S lanes laid out Sr × Sc (2×2 for
//                  S = 4): the subgroup owns (Sr·TM) × (Sc·TN) outputs, each lane loads 1/S of
//                  the a and b vec4s a K step of 4 needs, and every lane gets its own by
//                  subgroupBroadcast (Sr or Sc broadcasts and a select per vec4). Needs one
//                  fixed subgroup size (min = max) of 4, 8 or 16 (MatmulConfig.sg2).
//   splitK > 1   — for small M·N with large K: each of splitK workgroup slices sums a kChunk
//                  range of K into a scratch buffer [splitK, batch, M, N]; a second dispatch
//                  (family `matmul-splitk-reduce`) adds the slices, the bias and the activation.
//
// ctx.prefer.matmul in the kernels/variant.ts syntax, every field optional (the rest heuristic):
//   'reg' | 'wgmem', 'tile=<tm>x<tn>' (tn a multiple of 4), 'wg=<x>x<y>' (workgroup shape),
//   'tk=<tk>' (wgmem K tile), 'splitk=<S>' (1 disables), 'sg' (subgroup-shared b), 'pk' (packed b),
//   'sg2' (both shared, 2-D lanes; wg=1x<lanes>), 'f16=w' / 'f16=all' (half-precision b).
//   E.g. 'reg,tile=4x4,splitk=3', 'wgmem,tile=8x8,wg=16x16,tk=8', 'tile=8x16,wg=1x8,sg,pk'.

import { defineVariant } from './variant.js';
import { type F16Mode, UNPACK_F16_WGSL, toF16Words } from './f16.js';
import { lowerMatmulGeneric } from './matmul-generic.js';
import {
  type Activation,
  type HostTensor,
  type KernelFamily,
  type LowerContext,
  type Lowering,
  type OpDef,
  type Shape,
  activationRef,
  activationWgsl,
  broadcastShapes,
  ceilDiv,
  fmtShape,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
  temp,
} from './kernel.js';
import { XYZW, actTWgsl, ceilPow2, flatMain, range, vecType, wgsl, workgroupIndex } from './wgsl.js';

export interface MatmulAttrs {
  act?: Activation;
  /** b is [N, K] / [..., N, K] instead of [K, N] / [..., K, N]. */
  transB?: boolean;
}

export interface MatmulConfig {
  /** One output matrix is M × N, summed over K; `batch` matrices in all. */
  M: number;
  N: number;
  K: number;
  batch: number;
  /** Output batch dims and element strides of a and b over them (0 where broadcast); [] when batch = 1. */
  batchShape: readonly number[];
  aBatchStrides: readonly number[];
  bBatchStrides: readonly number[];
  transB: boolean;
  /** Epilogue (off in the split-K partial pass, where the reduce applies it). */
  bias: boolean;
  act: Activation;
  kind: 'reg' | 'wgmem';
  /** Outputs per invocation (TN a multiple of 4), invocations per workgroup, K tile of 'wgmem' (0 for 'reg'). */
  TM: number;
  TN: number;
  wgX: number;
  wgY: number;
  TK: number;
  /**
   * Subgroup sharing of b ('reg' only; 0 = off, else the device's fixed subgroup size S, with
   * wgX = 1 so a subgroup's invocations share their columns): per step of S along K, lane l
   * loads row k + l of b's column block once and subgroupBroadcast hands each row to every
   * lane. On SwiftShader (S = 4) a per-lane load is a scalarised gather and a broadcast one
   * shuffle, so this cuts b's loads by S.
   */
  sg: number;
  /**
   * The device's subgroups may be wider than `sg` (subgroupMaxSize > sg): each lane then loads
   * row k + (lane mod sg), and the broadcasts read lanes 0..sg−1 only, which is right for any
   * subgroup size ≥ sg (see matmulSgWidth).
   */
  sgWide: boolean;
  /**
   * 2-D subgroup sharing ('reg' only, needs vecA, vecB, !transB; `sg` is then the fixed subgroup
   * size S): the S lanes are laid out sgRows × (S / sgRows), lane sl at row sl / Sc and column
   * sl % Sc of the subgroup's (sgRows·TM) × (Sc·TN) block, and the workgroup (wgX = Sc, wgY =
   * lanes / Sc) stacks subgroups along M. Per K step of 4, lane sl loads a rows ms + j·S + sl
   * (j < TM / Sc) and the b vec4s numbered j·S + sl (j < TN / sgRows) of the block's 4 × Sc·TN/4,
   * and takes what it needs by subgroupBroadcast (Sr, resp. Sc, broadcasts and a select per
   * vec4). A lane's divergent vec4 loads per step: TM/Sc + TN/sgRows, against TM + TN unshared
   * and TM + TN/S for 'sg' (a's loads fall by Sc, b's by sgRows: by 2 on each side for S = 4).
   * It relies on a subgroup being S consecutive invocations (true on SwiftShader). 0 = off.
   */
  sgRows: number;
  /**
   * b in half precision (kernels/f16.ts; b a constant, read as vec4s): 'w' stores it as halves
   * widened to f32 on load, 'all' also computes in f16 (needs 'shader-f16'). 'none': f32.
   */
  f16: F16Mode;
  /** K is cut into splitK slices of kChunk; > 1 writes partial sums to the scratch buffer. */
  splitK: number;
  kChunk: number;
  /** vec4 loads of a (along K), of b (along its contiguous dim), vec4 stores of y and bias. */
  vecA: boolean;
  vecB: boolean;
  vecY: boolean;
  /**
   * b (a [K, N] weight) is read in the packed layout [⌈N/TN⌉, K, TN] made at compile time
   * (Lowering.constLayouts; zero-padded past N): a tile's TN columns of consecutive k are
   * contiguous, so the loop streams its block of b instead of striding N per k.
   */
  packB: boolean;
  gridX: number;
}

/** Tile counts and the workgroup count the dispatch and the shader both use. */
function tiling(c: MatmulConfig) {
  const NW = ceilDiv(ceilDiv(c.N, c.TN), c.wgX);
  const MW = ceilDiv(ceilDiv(c.M, c.TM), c.wgY);
  return { NW, MW, total: NW * MW * c.batch * c.splitK };
}

/** WGSL computing aOff/bOff (element offsets of this batch's matrices) from `bi`. */
function batchOffsets(c: MatmulConfig): string {
  if (c.batchShape.length === 0) return '  let aOff = 0u;\n  let bOff = 0u;\n';
  let s = '  var aOff = 0u;\n  var bOff = 0u;\n  var rb = bi;\n';
  for (let d = c.batchShape.length - 1; d >= 0; d--) {
    s += `  { let q = rb % ${c.batchShape[d]}u; rb = rb / ${c.batchShape[d]}u; aOff += q * ${c.aBatchStrides[d]}u; bOff += q * ${c.bBatchStrides[d]}u; }\n`;
  }
  return s;
}

/** A vec4 load of b at index `i` (in vec4 units), widened from halves when c.f16 is set. */
const ldB = (c: MatmulConfig, i: string): string => (c.f16 === 'none' ? `B[${i}]` : `ldb(${i})`);
/** A load of a, converted to f16 in the full-f16 variant. */
const cvA = (c: MatmulConfig, e: string): string => (c.f16 === 'all' ? `${c.vecA ? 'vec4<f16>' : 'f16'}(${e})` : e);
/** The accumulator type. */
const accT = (c: MatmulConfig): string => (c.f16 === 'all' ? 'vec4<f16>' : 'vec4<f32>');

/** The register-blocked inner loop over [kBegin, kEnd), reading global memory directly. */
function regLoop(c: MatmulConfig): string {
  if (c.sgRows) return sg2Loop(c);
  const { M, N, K, TM, TN } = c;
  const J4 = TN / 4;
  const L: string[] = [];
  // Row bases of a (clamped rows), in vec4 units when vecA.
  for (const i of range(TM))
    L.push(`  let ra${i} = (aOff + min(row0 + ${i}u, ${M - 1}u) * ${K}u)${c.vecA ? ' / 4u' : ''};`);
  if (c.transB) {
    for (const j of range(TN))
      L.push(`  let rb${j} = (bOff + min(col0 + ${j}u, ${N - 1}u) * ${K}u)${c.vecB ? ' / 4u' : ''};`);
  } else if (c.packB) {
    L.push(`  let pb = (col0 / ${TN}u) * ${K}u;  // this tile's block of the packed b`);
  } else if (c.vecB) {
    for (const jj of range(J4)) L.push(`  let cb${jj} = min(col0 + ${4 * jj}u, ${N - 4}u) / 4u;`);
  } else {
    for (const j of range(TN)) L.push(`  let cb${j} = min(col0 + ${j}u, ${N - 1}u);`);
  }
  if (c.sg) return sgLoop(c, L);
  const step = c.vecA ? 4 : 1;
  L.push(`  for (var k = kBegin; k < kEnd; k += ${step}u) {`);
  const ka = c.vecA ? 'k / 4u' : 'k';
  for (const i of range(TM)) L.push(`    let a${i} = ${cvA(c, `A[ra${i} + ${ka}]`)};`);
  if (c.transB) {
    for (const j of range(TN)) L.push(`    let b${j} = ${c.vecB ? ldB(c, `rb${j} + ${ka}`) : `B[rb${j} + ${ka}]`};`);
    for (const i of range(TM)) {
      for (const jj of range(J4)) {
        const js = range(4).map((e) => 4 * jj + e);
        L.push(
          c.vecA
            ? `    acc${i}_${jj} += ${accT(c)}(${js.map((j) => `dot(a${i}, b${j})`).join(', ')});`
            : `    acc${i}_${jj} += a${i} * vec4<f32>(${js.map((j) => `b${j}`).join(', ')});`,
        );
      }
    }
  } else {
    // b row k + kk, as TN/4 vec4s.
    for (const kk of range(step)) {
      L.push(
        c.packB
          ? `    let rk${kk} = (pb + k + ${kk}u) * ${TN / 4}u;`
          : c.vecB
            ? `    let rk${kk} = (bOff + (k + ${kk}u) * ${N}u) / 4u;`
            : `    let rk${kk} = bOff + (k + ${kk}u) * ${N}u;`,
      );
      for (const jj of range(J4)) {
        L.push(
          c.packB
            ? `    let b${kk}_${jj} = ${ldB(c, `rk${kk} + ${jj}u`)};`
            : c.vecB
              ? `    let b${kk}_${jj} = ${ldB(c, `rk${kk} + cb${jj}`)};`
              : `    let b${kk}_${jj} = vec4<f32>(${range(4)
                  .map((e) => `B[rk${kk} + cb${4 * jj + e}]`)
                  .join(', ')});`,
        );
      }
      for (const i of range(TM)) {
        const a = c.vecA ? `a${i}.${XYZW[kk]}` : `a${i}`;
        for (const jj of range(J4)) L.push(`    acc${i}_${jj} += ${a} * b${kk}_${jj};`);
      }
    }
  }
  L.push('  }');
  return L.join('\n');
}

/**
 * The subgroup-shared variant of regLoop (needs vecA, vecB, !transB, K and kChunk multiples of
 * S): lane sl loads b row k + sl, and row k + s reaches every lane by subgroupBroadcast(·, s).
 */
function sgLoop(c: MatmulConfig, L: string[]): string {
  const { N, TM, TN, sg: S } = c;
  const J4 = TN / 4;
  // Lanes past the first S (a wider subgroup) load a copy of lane (l mod S)'s row, unused.
  const lane = c.sgWide ? `(sl % ${S}u)` : 'sl';
  L.push(`  for (var k = kBegin; k < kEnd; k += ${S}u) {`);
  L.push(
    c.packB ? `    let rl = (pb + k + ${lane}) * ${TN / 4}u;` : `    let rl = (bOff + (k + ${lane}) * ${N}u) / 4u;`,
  );
  for (const jj of range(J4)) L.push(`    let bl${jj} = ${ldB(c, c.packB ? `rl + ${jj}u` : `rl + cb${jj}`)};`);
  for (let k4 = 0; k4 < S; k4 += 4) {
    for (const i of range(TM)) L.push(`    let a${i}_${k4} = ${cvA(c, `A[ra${i} + (k + ${k4}u) / 4u]`)};`);
    for (const kk of range(4)) {
      for (const jj of range(J4)) L.push(`    let b${kk}_${jj} = subgroupBroadcast(bl${jj}, ${k4 + kk}u);`);
      for (const i of range(TM))
        for (const jj of range(J4)) L.push(`    acc${i}_${jj} += a${i}_${k4}.${XYZW[kk]} * b${kk}_${jj};`);
    }
  }
  L.push('  }');
  return L.join('\n');
}

/** Lanes per subgroup row of the 2-D layout (MatmulConfig.sgRows) for a subgroup of S lanes. */
export const sg2Rows = (S: number): number => (S >= 16 ? 4 : 2);

/**
 * The 2-D subgroup-shared loop (MatmulConfig.sgRows; vecA, vecB, !transB, K and kChunk multiples
 * of 4). `ms` is the subgroup's first row, `lr`/`lc` the lane's row and column in the subgroup.
 */
function sg2Loop(c: MatmulConfig): string {
  const { M, N, K, TM, TN, sg: S, sgRows: SR } = c;
  const SC = S / SR;
  const J4 = TN / 4;
  const BV = SC * J4; // vec4 columns of the subgroup's block
  const L: string[] = [];
  // a: lane sl loads rows ms + j·S + sl (item q = j·S + sl of the block's SR·TM rows).
  for (const j of range(TM / SC)) L.push(`  let ra${j} = (aOff + min(ms + ${j * S}u + sl, ${M - 1}u) * ${K}u) / 4u;`);
  // b: item q = j·S + sl of the block's 4 × BV vec4s: row q / BV of the step, vec4 column q % BV.
  for (const j of range(TN / SR)) {
    L.push(`  let bq${j} = ${j * S}u + sl;`);
    L.push(`  let bk${j} = bq${j} / ${BV}u;`);
    L.push(`  let bc${j} = min(n0 + (bq${j} % ${BV}u) * 4u, ${N - 4}u) / 4u;`);
  }
  // The value of item q for this lane, one of `n` candidates picked by `sel` (lr or lc).
  const pick = (n: number, sel: string, item: (o: number) => number, v: string) => {
    let e = '';
    for (const o of range(n)) {
      const q = item(o);
      const b = `subgroupBroadcast(${v}${Math.floor(q / S)}, ${q % S}u)`;
      e = o === 0 ? b : `select(${e}, ${b}, ${sel} == ${o}u)`;
    }
    return e;
  };
  L.push('  for (var k = kBegin; k < kEnd; k += 4u) {');
  for (const j of range(TM / SC)) L.push(`    let al${j} = A[ra${j} + k / 4u];`);
  for (const j of range(TN / SR)) L.push(`    let bl${j} = B[(bOff + (k + bk${j}) * ${N}u) / 4u + bc${j}];`);
  for (const i of range(TM)) L.push(`    let a${i} = ${pick(SR, 'lr', (r) => r * TM + i, 'al')};`);
  for (const kk of range(4)) {
    for (const jj of range(J4))
      L.push(`    let b${kk}_${jj} = ${pick(SC, 'lc', (cc) => kk * BV + cc * J4 + jj, 'bl')};`);
    for (const i of range(TM))
      for (const jj of range(J4)) L.push(`    acc${i}_${jj} += a${i}.${XYZW[kk]} * b${kk}_${jj};`);
  }
  L.push('  }');
  return L.join('\n');
}

/**
 * The workgroup-memory inner loop: per K step the workgroup stages a BM × TK slab of a and a
 * TK × BN slab of b (BM = wgY·TM, BN = wgX·TN), barrier, every invocation multiplies its TM × TN
 * register tile out of them, barrier. vecA: a's slab is loaded and kept as vec4s along K; vecB:
 * b's slab as vec4s along N ([TK, BN/4]), or with transB along K ([BN, TK/4], and the product is
 * a dot of a's and b's vec4s). Loads past the edge (rows, columns, the end of this K slice) are
 * zeros; their indices are clamped so every read is in bounds.
 */
function wgmemLoop(c: MatmulConfig): string {
  const { M, N, K, TM, TN, TK } = c;
  const BM = c.wgY * TM,
    BN = c.wgX * TN,
    WG = c.wgX * c.wgY;
  const J4 = TN / 4;
  const TK4 = TK / 4,
    BN4 = BN / 4;
  const L: string[] = [];
  L.push(`  for (var k0 = kBegin; k0 < kEnd; k0 += ${TK}u) {`);
  // a's slab [BM, TK] (vec4: [BM, TK/4]).
  if (c.vecA) {
    L.push(`    for (var e = li; e < ${BM * TK4}u; e += ${WG}u) {`);
    L.push(`      let gr = m0 + e / ${TK4}u;`);
    L.push(`      let gk = k0 + (e % ${TK4}u) * 4u;`);
    L.push(
      `      As[e] = ${cvA(c, `select(vec4<f32>(0.0), A[(aOff + min(gr, ${M - 1}u) * ${K}u + min(gk, ${K - 4}u)) / 4u], gr < ${M}u && gk < kEnd)`)};`,
    );
  } else {
    L.push(`    for (var e = li; e < ${BM * TK}u; e += ${WG}u) {`);
    L.push(`      let gr = m0 + e / ${TK}u;`);
    L.push(`      let gk = k0 + e % ${TK}u;`);
    L.push(
      `      As[e] = ${cvA(c, `select(0.0, A[aOff + min(gr, ${M - 1}u) * ${K}u + min(gk, ${K - 1}u)], gr < ${M}u && gk < kEnd)`)};`,
    );
  }
  L.push('    }');
  // b's slab.
  if (c.vecB && c.transB) {
    L.push(`    for (var e = li; e < ${BN * TK4}u; e += ${WG}u) {`);
    L.push(`      let gn = n0 + e / ${TK4}u;`);
    L.push(`      let gk = k0 + (e % ${TK4}u) * 4u;`);
    L.push(
      `      Bs[e] = select(${accT(c)}(0.0), ${ldB(c, `(bOff + min(gn, ${N - 1}u) * ${K}u + min(gk, ${K - 4}u)) / 4u`)}, gn < ${N}u && gk < kEnd);`,
    );
  } else if (c.vecB) {
    L.push(`    for (var e = li; e < ${TK * BN4}u; e += ${WG}u) {`);
    L.push(`      let gk = k0 + e / ${BN4}u;`);
    L.push(`      let gn = n0 + (e % ${BN4}u) * 4u;`);
    L.push(
      `      Bs[e] = select(${accT(c)}(0.0), ${ldB(c, `(bOff + min(gk, ${K - 1}u) * ${N}u + min(gn, ${N - 4}u)) / 4u`)}, gn < ${N}u && gk < kEnd);`,
    );
  } else {
    const bAt = c.transB
      ? `bOff + min(gn, ${N - 1}u) * ${K}u + min(gk, ${K - 1}u)`
      : `bOff + min(gk, ${K - 1}u) * ${N}u + min(gn, ${N - 1}u)`;
    L.push(`    for (var e = li; e < ${TK * BN}u; e += ${WG}u) {`);
    L.push(`      let gk = k0 + e / ${BN}u;`);
    L.push(`      let gn = n0 + e % ${BN}u;`);
    L.push(`      Bs[e] = select(0.0, B[${bAt}], gn < ${N}u && gk < kEnd);`);
  }
  L.push('    }');
  L.push('    workgroupBarrier();');
  // b's row kk as TN/4 vec4s (for the [TK, BN] layouts).
  const bRow = (kk: string, ind: string) => {
    for (const jj of range(J4)) {
      if (c.vecB) {
        L.push(`${ind}let b${jj} = Bs[${kk} * ${BN4}u + lid.x * ${J4}u + ${jj}u];`);
      } else {
        L.push(`${ind}let o${jj} = ${kk} * ${BN}u + lid.x * ${TN}u + ${4 * jj}u;`);
        L.push(`${ind}let b${jj} = vec4<f32>(Bs[o${jj}], Bs[o${jj} + 1u], Bs[o${jj} + 2u], Bs[o${jj} + 3u]);`);
      }
    }
  };
  if (c.vecA && c.vecB && c.transB) {
    L.push(`    for (var kq = 0u; kq < ${TK4}u; kq++) {`);
    for (const i of range(TM)) L.push(`      let a${i} = As[(lid.y * ${TM}u + ${i}u) * ${TK4}u + kq];`);
    for (const j of range(TN)) L.push(`      let b${j} = Bs[(lid.x * ${TN}u + ${j}u) * ${TK4}u + kq];`);
    for (const i of range(TM))
      for (const jj of range(J4)) {
        const dots = range(4).map((e) => `dot(a${i}, b${4 * jj + e})`);
        L.push(`      acc${i}_${jj} += ${accT(c)}(${dots.join(', ')});`);
      }
  } else if (c.vecA) {
    L.push(`    for (var kq = 0u; kq < ${TK4}u; kq++) {`);
    for (const i of range(TM)) L.push(`      let a${i} = As[(lid.y * ${TM}u + ${i}u) * ${TK4}u + kq];`);
    for (const e of range(4)) {
      L.push('      {');
      bRow(`(kq * 4u + ${e}u)`, '        ');
      for (const i of range(TM))
        for (const jj of range(J4)) L.push(`        acc${i}_${jj} += a${i}.${XYZW[e]} * b${jj};`);
      L.push('      }');
    }
  } else {
    L.push(`    for (var kk = 0u; kk < ${TK}u; kk++) {`);
    for (const i of range(TM)) L.push(`      let a${i} = As[(lid.y * ${TM}u + ${i}u) * ${TK}u + kk];`);
    bRow('kk', '      ');
    for (const i of range(TM)) for (const jj of range(J4)) L.push(`      acc${i}_${jj} += a${i} * b${jj};`);
  }
  L.push('    }');
  L.push('    workgroupBarrier();');
  L.push('  }');
  return L.join('\n');
}

export const matmulFamily: KernelFamily<MatmulConfig> = {
  name: 'matmul',
  wgsl(c) {
    const { M, N, K, TM, TN } = c;
    const { NW, MW, total } = tiling(c);
    const J4 = TN / 4;
    const partial = c.splitK > 1;
    const bShape = c.transB ? 'N, K' : 'K, N';
    const wg = c.kind === 'wgmem';
    const acc = range(TM).flatMap((i) => range(J4).map((jj) => `  var acc${i}_${jj} = ${accT(c)}(0.0);`));
    // The accumulator as f32 for the epilogue.
    const acc32 = (i: number, jj: number) => (c.f16 === 'all' ? `vec4<f32>(acc${i}_${jj})` : `acc${i}_${jj}`);
    const bType = c.f16 === 'w' ? 'vec2<u32>' : c.f16 === 'all' ? 'vec4<f16>' : vecType(c.vecB);
    const bNote = c.f16 === 'none' ? '' : ', as halves';
    // Slabs in f16 for full f16 (half the workgroup memory).
    const st = c.f16 === 'all' ? 'f16' : 'f32';
    const wgA = c.vecA ? `vec4<${st}>, ${(c.wgY * TM * c.TK) / 4}` : `${st}, ${c.wgY * TM * c.TK}`;
    const wgB = c.vecB ? `vec4<${st}>, ${(c.TK * c.wgX * TN) / 4}` : `${st}, ${c.TK * c.wgX * TN}`;
    // Epilogue: bias, activation, store (rows and columns past the edge skipped).
    const epi: string[] = [];
    for (const i of range(TM)) {
      epi.push(`  if (row0 + ${i}u < ${M}u) {`);
      epi.push(`    let yr = yb + (row0 + ${i}u) * ${N}u;`);
      for (const jj of range(J4)) {
        const col = `col0 + ${4 * jj}u`;
        if (c.vecY) {
          epi.push(`    if (${col} < ${N}u) {`);
          epi.push(`      let v = ${acc32(i, jj)}${c.bias ? ` + bias[(${col}) / 4u]` : ''};`);
          epi.push(`      Y[(yr + ${col}) / 4u] = actT(v);`);
          epi.push('    }');
        } else {
          for (const e of range(4)) {
            const ce = `${col} + ${e}u`;
            epi.push(
              `    if (${ce} < ${N}u) { Y[yr + ${ce}] = act(${acc32(i, jj)}.${XYZW[e]}${c.bias ? ` + bias[${ce}]` : ''}); }`,
            );
          }
        }
      }
      epi.push('  }');
    }
    // 'reg' has no barriers, so idle invocations may leave; 'wgmem' needs them for the loads,
    // 'sg' every lane for the broadcasts (its rows are clamped on load, its columns in range).
    return wgsl`
#if ${c.f16 === 'all'}
enable f16;
#endif
#if ${c.sg}
enable subgroups;
#endif
${activationWgsl(c.act)}
${actTWgsl(c.vecY)}
@group(0) @binding(0) var<storage, read> A: array<${vecType(c.vecA)}>;   // input  a [batch, ${M}, ${K}]
@group(0) @binding(1) var<storage, read> B: array<${bType}>;   // input  b [batch?, ${bShape}] = [${c.transB ? `${N}, ${K}` : `${K}, ${N}`}]${c.packB ? `, packed [${Math.ceil(N / TN)}, ${K}, ${TN}]` : ''}${bNote}
#if ${c.bias}
@group(0) @binding(2) var<storage, read> bias: array<${vecType(c.vecY)}>;   // input  bias [${N}]
#endif
@group(0) @binding(${c.bias ? 3 : 2}) var<storage, read_write> Y: array<${vecType(c.vecY)}>;   // ${partial ? `scratch: partial sums [${c.splitK}, ${c.batch}, ${M}, ${N}]` : `output [${c.batch}, ${M}, ${N}]`}
#if ${wg}
var<workgroup> As: array<${wgA}>;   // a slab [wgY·TM, TK]
var<workgroup> Bs: array<${wgB}>;   // b slab [TK, wgX·TN] (transB with vec4s: [wgX·TN, TK])
#endif
#if ${c.f16 === 'w'}
${UNPACK_F16_WGSL}
fn ldb(i: u32) -> vec4<f32> { return ldw4(B[i]); }
#elif ${c.f16 === 'all'}
fn ldb(i: u32) -> vec4<f16> { return B[i]; }
#endif

@compute @workgroup_size(${c.wgX}, ${c.wgY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32${c.sg ? ', @builtin(subgroup_invocation_id) sl: u32' : ''}) {
  let w = ${workgroupIndex(c.gridX)};
  if (w >= ${total}u) { return; }
  let nw = w % ${NW}u;
  let mw = (w / ${NW}u) % ${MW}u;
  let bs = w / ${NW * MW}u;
  let bi = bs % ${c.batch}u;
  let ks = bs / ${c.batch}u;
  let m0 = mw * ${c.wgY * TM}u;
  let n0 = nw * ${c.wgX * TN}u;
#if ${c.sgRows > 0}
  let ms = m0 + (subgroupBroadcast(li, 0u) / ${c.sg}u) * ${c.sgRows * TM}u;  // this subgroup's rows
  let lr = sl / ${c.sg / (c.sgRows || 1)}u;
  let lc = sl % ${c.sg / (c.sgRows || 1)}u;
  let row0 = ms + lr * ${TM}u;
  let col0 = n0 + lc * ${TN}u;
#else
  let row0 = m0 + lid.y * ${TM}u;
  let col0 = n0 + lid.x * ${TN}u;
#endif
#if ${!wg && !c.sg}
  if (row0 >= ${M}u || col0 >= ${N}u) { return; }
#endif
${batchOffsets(c)}
  let kBegin = ks * ${c.kChunk}u;
  let kEnd = min(kBegin + ${c.kChunk}u, ${K}u);
${acc.join('\n')}
${wg ? wgmemLoop(c) : regLoop(c)}
  let yb = ${partial ? `(ks * ${c.batch}u + bi)` : 'bi'} * ${M * N}u;
${epi.join('\n')}
}`;
  },
};

// ---- split-K reduce --------------------------------------------------------------------------

export interface SplitKReduceConfig {
  /** Output elements (batch·M·N), the row length N, the number of slices. */
  n: number;
  N: number;
  splitK: number;
  bias: boolean;
  act: Activation;
  vec4: boolean;
  wg: number;
  gridX: number;
}

export const splitKReduceFamily: KernelFamily<SplitKReduceConfig> = {
  name: 'matmul-splitk-reduce',
  wgsl(c) {
    const T = vecType(c.vec4);
    const n4 = c.n / 4;
    // The other slices' partial sums of output element `i` (an expression).
    const rest = (i: string, stride: number, ind: string) =>
      range(c.splitK)
        .slice(1)
        .map((k) => `${ind}s += P[${i} + ${k * stride}u];`)
        .join('\n');
    return wgsl`
${activationWgsl(c.act)}
${actTWgsl(c.vec4)}
@group(0) @binding(0) var<storage, read> P: array<${T}>;   // scratch: partial sums [${c.splitK}, ${c.n}]
#if ${c.bias}
@group(0) @binding(1) var<storage, read> bias: array<${T}>;   // input  bias [${c.N}]
#endif
@group(0) @binding(${c.bias ? 2 : 1}) var<storage, read_write> Y: array<${T}>;   // output [${c.n / c.N} rows, ${c.N}]

${flatMain(c.wg, c.gridX)}
#if ${c.vec4}
  if (t >= ${n4}u) { return; }
  var s = P[t];
${rest('t', n4, '  ')}
#if ${c.bias}
  s += bias[t % ${c.N / 4}u];
#endif
  Y[t] = actT(s);
#else
  for (var e = 0u; e < 4u; e++) {
    let i = t * 4u + e;
    if (i >= ${c.n}u) { return; }
    var s = P[i];
${rest('i', c.n, '    ')}
#if ${c.bias}
    s += bias[i % ${c.N}u];
#endif
    Y[i] = actT(s);
  }
#endif
}`;
  },
};

// ---- shapes ----------------------------------------------------------------------------------

interface MatmulGeometry {
  M: number;
  N: number;
  K: number;
  /** Output batch dims (the leading dims of the output). */
  outBatch: number[];
  /** Whether b is one shared matrix (a's batch folds into M). */
  shared: boolean;
  aBatch: number[];
  bBatch: number[];
}

function geometry(attrs: MatmulAttrs, inputs: Shape[]): MatmulGeometry {
  const [a, b, bias] = inputs;
  if (a.length < 2) throw new ShapeError(`matmul: a must be [..., M, K], got ${fmtShape(a)}`);
  if (b.length < 2)
    throw new ShapeError(
      `matmul: b must be ${attrs.transB ? '[N, K] or [..., N, K]' : '[K, N] or [..., K, N]'}, got ${fmtShape(b)}`,
    );
  const M = a[a.length - 2],
    K = a[a.length - 1];
  const [bK, N] = attrs.transB ? [b[b.length - 1], b[b.length - 2]] : [b[b.length - 2], b[b.length - 1]];
  if (bK !== K) {
    throw new ShapeError(
      `matmul: inner dimensions differ: a ${fmtShape(a)} has K = ${K}, b ${fmtShape(b)}${attrs.transB ? ' (transB, [..., N, K])' : ''} has K = ${bK}`,
    );
  }
  if (bias && (bias.length !== 1 || bias[0] !== N))
    throw new ShapeError(`matmul: bias must be [${N}] for b ${fmtShape(b)}, got ${fmtShape(bias)}`);
  const aBatch = a.slice(0, -2),
    bBatch = b.slice(0, -2);
  if (numel(bBatch) === 1 && bBatch.length <= aBatch.length)
    return { M, N, K, outBatch: aBatch, shared: true, aBatch, bBatch };
  let outBatch: number[];
  try {
    outBatch = broadcastShapes(aBatch, bBatch);
  } catch {
    throw new ShapeError(`matmul: batch dims of a ${fmtShape(a)} and b ${fmtShape(b)} do not broadcast`);
  }
  return { M, N, K, outBatch, shared: false, aBatch, bBatch };
}

/** Element strides of a batch of matrices of `size` elements with dims `s`, read against `out` (0 where broadcast). */
function batchStrides(s: Shape, out: Shape, size: number): number[] {
  const r = out.length;
  const st = new Array<number>(r).fill(0);
  let acc = size;
  for (let i = r - 1; i >= 0; i--) {
    const d = s[s.length - r + i] ?? 1;
    st[i] = d === 1 ? 0 : acc;
    acc *= d;
  }
  return st;
}

// ---- variant choice --------------------------------------------------------------------------

export interface MatmulChoice {
  kind: 'reg' | 'wgmem';
  TM: number;
  TN: number;
  wgX: number;
  wgY: number;
  TK: number;
  splitK: number;
  /** Share b across a subgroup (see MatmulConfig.sg); the size comes from the device. */
  sg: boolean;
  /** Read b packed (MatmulConfig.packB); needs b a constant [K, N] weight. */
  pk: boolean;
  /** Share both operands over a 2-D subgroup layout (MatmulConfig.sgRows). */
  sg2: boolean;
  /** b in half precision (MatmulConfig.f16). */
  f16: F16Mode;
}

/** ctx.prefer.matmul: unset fields are the heuristic's (see the header). */
export interface MatmulVariant {
  kind?: 'reg' | 'wgmem';
  /** Register tile: outputs per invocation, tn a multiple of 4. */
  tm?: number;
  tn?: number;
  /** Workgroup shape in invocations. */
  wgx?: number;
  wgy?: number;
  /** K tile of 'wgmem'. */
  tk?: number;
  /** K slices (1: no split). */
  splitk?: number;
  /** Share b across a subgroup (see MatmulConfig.sg). */
  sg?: boolean;
  /** Read b packed (MatmulConfig.packB). */
  pk?: boolean;
  /** Share a and b over a 2-D subgroup layout (MatmulConfig.sgRows); wgy counts lanes, wgx is 1. */
  sg2?: boolean;
  /** b (a constant weight) in half precision: 'w' f16 storage, 'all' f16 arithmetic too (MatmulConfig.f16). */
  f16?: 'w' | 'all';
  /** b a constant weight: the shape-generic kernel (kernels/matmul-generic.ts), one pipeline for all such layers. */
  generic?: boolean;
}

export const matmulVariant = defineVariant<MatmulVariant>('matmul', [
  { kind: 'enum', key: 'kind', values: ['reg', 'wgmem'], bare: true },
  { kind: 'pair', name: 'tile', keys: ['tm', 'tn'], min: [1, 4], multipleOf: [1, 4] },
  { kind: 'pair', name: 'wg', keys: ['wgx', 'wgy'], min: [1, 1] },
  { kind: 'int', key: 'tk', min: 1 },
  { kind: 'int', key: 'splitk', min: 1 },
  { kind: 'flag', key: 'sg' },
  { kind: 'flag', key: 'pk' },
  { kind: 'flag', key: 'sg2' },
  { kind: 'enum', key: 'f16', values: ['w', 'all'] },
  { kind: 'flag', key: 'generic' },
]);

/** Examples of ctx.prefer.matmul values covering every variant (tests iterate these). */
export const MATMUL_VARIANTS = [
  'reg,tile=4x4',
  'reg,tile=8x8',
  'reg,tile=1x4',
  'reg,tile=4x8',
  'wgmem,tile=4x4',
  'wgmem,tile=8x8,wg=4x4,tk=8',
  'reg,tile=4x4,splitk=3',
  'wgmem,tile=4x4,splitk=2',
] as const;

/**
 * How many lanes share b's rows in the 'sg' variant: the adapter's smallest subgroup size, at
 * most 16 (a power of two ≥ 4 by the WebGPU spec; 0 without subgroups). Lanes 0..S−1 load one
 * row each and every lane reads them by subgroupBroadcast from those lanes, so the kernel is
 * right for any subgroup size from subgroupMinSize to subgroupMaxSize, as long as subgroups are
 * full: the workgroup must be a multiple of subgroupMaxSize (matmulSgWorkgroupOk).
 */
export function matmulSgWidth(ctx: LowerContext): number {
  const min = ctx.subgroupMinSize ?? ctx.subgroupSize ?? 0;
  return min >= 4 && min % 4 === 0 ? Math.min(min, 16) : 0;
}

/** A workgroup of `invocations` holds whole subgroups of every size the device may use. */
export function matmulSgWorkgroupOk(invocations: number, ctx: LowerContext): boolean {
  const max = ctx.subgroupMaxSize ?? ctx.subgroupSize ?? 0;
  return max > 0 && invocations % max === 0;
}

/** Whether the subgroup-shared variant can run this product on this device. */
export function matmulSgOk(N: number, K: number, transB: boolean, ctx: LowerContext): boolean {
  const S = matmulSgWidth(ctx);
  return S >= 4 && !transB && K % S === 0 && N % 4 === 0;
}

/**
 * The subgroup size of the 2-D variant ('sg2'): the adapter's one fixed size when it is 4, 8 or
 * 16 (min = max), else 0. The layout maps lanes to output tiles by subgroup_invocation_id, so a
 * size that can change between pipelines would move the tiles.
 */
export function matmulSg2Size(ctx: LowerContext): number {
  const min = ctx.subgroupMinSize ?? ctx.subgroupSize ?? 0;
  const max = ctx.subgroupMaxSize ?? ctx.subgroupSize ?? 0;
  return min === max && [4, 8, 16].includes(min) ? min : 0;
}

/** Whether 'sg2' with a TM-row tile can run this product on this device. */
export function matmulSg2Ok(N: number, K: number, TM: number, transB: boolean, ctx: LowerContext): boolean {
  const S = matmulSg2Size(ctx);
  return S > 0 && !transB && K % 4 === 0 && N % 4 === 0 && TM % (S / sg2Rows(S)) === 0;
}

/**
 * Workgroup-memory tilings for real GPUs (kind 'wgmem'), from the largest output tile down,
 * each kept only where the device's limits allow it: wgX·wgY ≤ maxComputeInvocationsPerWorkgroup
 * and the two slabs, 4·TK·(wgY·TM + wgX·TN) bytes, ≤ maxComputeWorkgroupStorageSize.
 *   64×64 output, 16×16 invocations of 4×4, K step 16 (8 KiB) or 32 (16 KiB);
 *   64×64 output, 8×8 invocations of 8×8, K step 8 (4 KiB);
 *   32×32 output, 8×8 invocations of 4×4, K step 32 (8 KiB).
 */
export function matmulWgmemTilings(limits: LowerContext['limits']): string[] {
  const all: [number, number, number, number, number][] = [
    [4, 4, 16, 16, 16],
    [4, 4, 16, 16, 32],
    [8, 8, 8, 8, 8],
    [4, 4, 8, 8, 32],
  ];
  return all
    .filter(
      ([tm, tn, wx, wy, tk]) =>
        wx * wy <= limits.maxComputeInvocationsPerWorkgroup &&
        4 * tk * (wy * tm + wx * tn) <= limits.maxComputeWorkgroupStorageSize,
    )
    .map(([tm, tn, wx, wy, tk]) => `wgmem,tile=${tm}x${tn},wg=${wx}x${wy},tk=${tk}`);
}

function choose(M: number, N: number, K: number, batch: number, transB: boolean, ctx: LowerContext): MatmulChoice {
  const p: MatmulVariant = { ...matmulVariant.of(ctx.prefer) };
  const kind = p.kind ?? 'reg';
  if (p.sg && (kind !== 'reg' || !matmulSgOk(N, K, transB, ctx))) {
    throw new Error(
      `matmul variant "${matmulVariant.format(p)}": 'sg' needs kind reg, b as [K, N], K a multiple of the subgroup sharing width (${matmulSgWidth(ctx)}) and N of 4`,
    );
  }
  if (p.sg2) {
    const S = matmulSg2Size(ctx);
    const tm = p.tm ?? 8;
    if (kind !== 'reg' || p.sg || p.pk || p.f16 || (p.wgx ?? 1) !== 1 || !matmulSg2Ok(N, K, tm, transB, ctx)) {
      throw new Error(
        `matmul variant "${matmulVariant.format(p)}": 'sg2' needs kind reg without sg, pk or f16, wg=1x<lanes>, b as [K, N], ` +
          `K and N multiples of 4, one fixed subgroup size of 4, 8 or 16 (this device: ${ctx.subgroupMinSize ?? ctx.subgroupSize ?? 0}..${ctx.subgroupMaxSize ?? ctx.subgroupSize ?? 0}) ` +
          `and the tile's rows (${tm}) a multiple of ${S ? S / sg2Rows(S) : 'the lanes per subgroup row'}`,
      );
    }
  }
  if (p.f16 === 'all' && !ctx.shaderF16) {
    throw new Error(
      `matmul variant "${matmulVariant.format(p)}": 'f16=all' needs the device feature shader-f16, which this adapter lacks`,
    );
  }
  // The heuristic shares b by subgroup broadcasts where it can and nothing else was asked for:
  // 'tile=8x16,wg=1x8,sg' won 1.1-1.3× on every ViT-B linear layer in Chromium's SwiftShader.
  const sgAuto =
    p.sg === undefined &&
    !p.sg2 &&
    p.kind === undefined &&
    p.tm === undefined &&
    p.wgx === undefined &&
    M >= 64 &&
    N % 16 === 0 &&
    matmulSgOk(N, K, transB, ctx) &&
    ctx.subgroupSize === 4;
  const sg = !!p.sg || sgAuto;
  if (sgAuto) Object.assign(p, { tm: 8, tn: 16, wgy: 8 });
  // Bigger register tiles pay off once both sides have the rows and columns to fill them.
  const TM = p.tm ?? (p.sg2 || (M >= 32 && N >= 32) ? 8 : Math.min(M, 4));
  const TN = p.tn ?? (TM === 8 ? 8 : 4);
  const Mt = ceilDiv(M, TM),
    Nt = ceilDiv(N, TN);
  let wgX: number, wgY: number;
  if (p.sg2) {
    // wgy lanes (default 64) in whole subgroups, each laid out sgRows × Sc over the output.
    const S = matmulSg2Size(ctx);
    const lanes = p.wgy ?? 64;
    if (lanes % S !== 0) {
      throw new Error(
        `matmul variant "${matmulVariant.format(p)}": 'sg2' needs the lanes (${lanes}) in whole subgroups of ${S}`,
      );
    }
    [wgX, wgY] = [S / sg2Rows(S), lanes / (S / sg2Rows(S))];
  } else if (sg) {
    // A subgroup's lanes must share their columns: the workgroup spans rows only, in whole subgroups.
    [wgX, wgY] = [1, p.wgy ?? 64];
    if (!matmulSgWorkgroupOk(wgY, ctx)) {
      throw new Error(
        `matmul variant "${matmulVariant.format(p)}": 'sg' needs the workgroup (${wgY}) to be a multiple of the largest subgroup size (${ctx.subgroupMaxSize ?? ctx.subgroupSize ?? 0})`,
      );
    }
  } else if (p.wgx && p.wgy) {
    [wgX, wgY] = [p.wgx, p.wgy];
  } else if (kind === 'wgmem') {
    [wgX, wgY] = [8, 8];
  } else {
    wgX = Math.min(16, ceilPow2(Nt));
    wgY = Math.max(1, Math.min(64 / wgX, ceilPow2(Mt)));
  }
  if (wgX * wgY > ctx.limits.maxComputeInvocationsPerWorkgroup) {
    throw new Error(
      `matmul variant: workgroup ${wgX}x${wgY} exceeds maxComputeInvocationsPerWorkgroup ${ctx.limits.maxComputeInvocationsPerWorkgroup}`,
    );
  }
  const TK = kind === 'wgmem' ? (p.tk ?? 16) : 0;
  const wgBytes = (p.f16 === 'all' ? 2 : 4) * TK * (wgY * TM + wgX * TN);
  if (wgBytes > ctx.limits.maxComputeWorkgroupStorageSize) {
    throw new Error(
      `matmul variant: wgmem slabs need ${wgBytes} bytes of workgroup memory, over maxComputeWorkgroupStorageSize ${ctx.limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  // Split K when there are few output tiles to go round and a long K to share out.
  const tiles = batch * Mt * Nt;
  const auto = K >= 1024 && tiles < 256 ? Math.max(2, Math.min(16, Math.floor(K / 256), ceilDiv(1024, tiles))) : 1;
  let splitK = p.splitk ?? auto;
  splitK = Math.max(1, Math.min(splitK, ceilDiv(K, 4)));
  return { kind, TM, TN, wgX, wgY, TK, splitK, sg, pk: !!p.pk, sg2: !!p.sg2, f16: p.f16 ?? 'none' };
}

// ---- op --------------------------------------------------------------------------------------

export const matmulOp: OpDef<MatmulAttrs> = {
  op: 'matmul',
  arity: [2, 3],
  infer(attrs, inputs) {
    const g = geometry(attrs, inputs);
    return [[...g.outBatch, g.M, g.N]];
  },
  lower(attrs, inputs, _outs, ctx): Lowering {
    const g = geometry(attrs, inputs);
    const { N, K } = g;
    const transB = !!attrs.transB;
    const hasBias = inputs.length === 3;
    const act = attrs.act ?? 'none';
    // A shared weight folds a's batch into rows; otherwise a batch of M × N products.
    const M = g.shared ? numel(g.outBatch) * g.M : g.M;
    const batch = g.shared ? 1 : numel(g.outBatch);
    if (matmulVariant.of(ctx.prefer)?.generic) return lowerGeneric(g, transB, hasBias, act, inputs, ctx);
    const ch = choose(M, N, K, batch, transB, ctx);
    const vecK = K % 4 === 0,
      vecN = N % 4 === 0;
    const reg = ch.kind === 'reg';
    const constW = g.shared && g.bBatch.length === 0 && !!ctx.constInputs?.[1];
    if (ch.pk && !(reg && !transB && constW)) {
      throw new Error(
        `matmul variant "${matmulVariant.format(matmulVariant.of(ctx.prefer) ?? {})}": 'pk' needs kind reg and b a constant [K, N] weight`,
      );
    }
    const f16Vec = reg ? ch.pk || (transB ? vecK : vecN) : transB ? vecK && ch.TK % 4 === 0 : vecN;
    if (ch.f16 !== 'none' && !(constW && f16Vec)) {
      throw new Error(
        `matmul variant "${matmulVariant.format(matmulVariant.of(ctx.prefer) ?? {})}": 'f16' needs b a constant weight read as vec4s (${transB ? 'K' : 'N'} a multiple of 4, or 'pk')`,
      );
    }
    // Each slice but the last covers kChunk (a multiple of 4 so vec4 reads of a stay aligned,
    // and of the subgroup size for 'sg').
    const sgWidth = ch.sg ? matmulSgWidth(ctx) : ch.sg2 ? matmulSg2Size(ctx) : 0;
    const kAlign = Math.max(4, sgWidth);
    // wgmem stages vec4s of a along K when K and its K step allow (and then of b along K too with transB).
    const wgVecK = vecK && ch.TK % 4 === 0;
    const kChunk = ch.splitK > 1 ? ceilDiv(ceilDiv(K, ch.splitK), kAlign) * kAlign : K;
    const splitK = ceilDiv(K, kChunk);
    const partial = splitK > 1;
    const cfg: MatmulConfig = {
      M,
      N,
      K,
      batch,
      batchShape: batch > 1 ? g.outBatch : [],
      aBatchStrides: batch > 1 ? batchStrides(g.aBatch, g.outBatch, g.M * K) : [],
      bBatchStrides: batch > 1 ? batchStrides(g.bBatch, g.outBatch, K * N) : [],
      transB,
      bias: hasBias && !partial,
      act: partial ? 'none' : act,
      kind: ch.kind,
      TM: ch.TM,
      TN: ch.TN,
      wgX: ch.wgX,
      wgY: ch.wgY,
      TK: ch.TK,
      sg: sgWidth,
      sgWide: ch.sg && (ctx.subgroupMaxSize ?? ctx.subgroupSize ?? 0) > sgWidth,
      sgRows: ch.sg2 ? sg2Rows(sgWidth) : 0,
      f16: ch.f16,
      splitK,
      kChunk,
      vecA: reg ? vecK : wgVecK,
      vecB: reg ? ch.pk || (transB ? vecK : vecN) : transB ? wgVecK : vecN,
      vecY: vecN,
      packB: ch.pk,
      gridX: 0,
    };
    const { TN } = ch;
    // Packed and/or half-precision b, made once at load (Lowering.constLayouts).
    const half = ch.f16 !== 'none';
    const f32Elems = ch.pk ? ceilDiv(N, TN) * TN * K : K * N;
    const constLayouts =
      ch.pk || half
        ? [
            {
              input: 1,
              layout: `${ch.pk ? `kn-tiles${TN}` : 'as-is'}${half ? '-f16' : ''}`,
              elements: half ? f32Elems / 2 : f32Elems,
              apply: (b: Float32Array) => {
                const packed = ch.pk ? packKN(b, K, N, TN) : b;
                return half ? toF16Words(packed) : packed;
              },
            },
          ]
        : undefined;
    const wgs = grid(tiling(cfg).total, ctx.limits.maxComputeWorkgroupsPerDimension);
    cfg.gridX = wgs[0];
    const flops = 2 * batch * M * N * K;
    const outElems = batch * M * N;
    const bytes = 4 * (numel(inputs[0]) + numel(inputs[1]) + outElems + (hasBias ? N : 0));
    if (!partial) {
      const bindings = hasBias ? [input(0), input(1), input(2), output(0)] : [input(0), input(1), output(0)];
      return { dispatches: [makeDispatch(matmulFamily, cfg, wgs, bindings, { flops, bytes })], constLayouts };
    }
    const wg = 64;
    const rg = grid(ceilDiv(ceilDiv(outElems, 4), wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const red: SplitKReduceConfig = { n: outElems, N, splitK, bias: hasBias, act, vec4: vecN, wg, gridX: rg[0] };
    return {
      constLayouts,
      temps: [splitK * outElems],
      dispatches: [
        makeDispatch(matmulFamily, cfg, wgs, [input(0), input(1), temp(0)], {
          flops,
          bytes: bytes + 4 * (splitK - 1) * outElems,
        }),
        makeDispatch(splitKReduceFamily, red, rg, hasBias ? [temp(0), input(2), output(0)] : [temp(0), output(0)], {
          flops: splitK * outElems,
          bytes: 4 * (splitK + 1) * outElems,
        }),
      ],
    };
  },
  ref(attrs, inputs) {
    return [matmulRef(attrs, inputs[0], inputs[1], inputs[2])];
  },
  tuneSpace(attrs, inputs, ctx) {
    const g = geometry(attrs, inputs);
    const transB = !!attrs.transB;
    const M = g.shared ? numel(g.outBatch) * g.M : g.M;
    const c = ['reg,tile=4x8', 'reg,tile=8x8', 'wgmem,tile=4x4'];
    if (g.N >= 16 && M >= 8) c.push('reg,tile=8x16', 'reg,tile=4x16');
    // Workgroup-memory tiles for real GPUs, where they fill at least one tile of 32 rows.
    if (M >= 32 && g.N >= 32 && !ctx.cpuAdapter) c.push(...matmulWgmemTilings(ctx.limits));
    const sg = matmulSgOk(g.N, g.K, transB, ctx) && M >= 8;
    if (sg) {
      const sgc = [
        'tile=4x16,wg=1x16,sg',
        'tile=8x16,wg=1x8,sg',
        'tile=4x8,wg=1x32,sg',
        ...(g.N % 32 === 0 && M >= 64 ? ['tile=8x32,wg=1x8,sg'] : []),
      ];
      c.push(...sgc.filter((v) => matmulSgWorkgroupOk(matmulVariant.parse(v).wgy!, ctx)));
    }
    // Both operands shared over 2 × 2 lanes with a 32 × 32 subgroup block (SwiftShader: 1.15× on
    // ViT-B fc1, docs/kernels-gpu.md; smaller tiles lose to 'sg', whose block is as large).
    if (M >= 64 && g.N % 32 === 0 && matmulSg2Ok(g.N, g.K, 16, transB, ctx)) c.push('tile=16x16,wg=1x8,sg2');
    // Packed b: only for a constant weight, which the compile-time relayout needs.
    const constW = g.shared && g.bBatch.length === 0 && !!ctx.constInputs?.[1];
    if (!transB && constW && M >= 8) {
      c.push(sg && matmulSgWorkgroupOk(8, ctx) ? 'tile=8x16,wg=1x8,sg,pk' : 'reg,tile=8x8,pk', 'reg,tile=8x16,pk');
    }
    // Half-precision weights where the adapter has shader-f16 (both precisions; the tuner's
    // check against the f32 reference drops either where it breaks the tolerance).
    if (ctx.shaderF16 && constW && M >= 8 && (transB ? g.K : g.N) % 4 === 0) {
      c.push('reg,tile=8x8,f16=w', 'reg,tile=8x8,f16=all');
      if (!transB) c.push('reg,tile=8x16,pk,f16=w', 'reg,tile=8x16,pk,f16=all');
      const big = 'wgmem,tile=4x4,wg=16x16,tk=16';
      if (M >= 32 && g.N >= 32 && !ctx.cpuAdapter && matmulWgmemTilings(ctx.limits).includes(big))
        c.push(`${big},f16=all`);
    }
    // One pipeline for every Linear layer with this epilogue (kernels/matmul-generic.ts).
    if (constW && g.K % 4 === 0 && g.N % 8 === 0) c.push('tile=8x8,generic');
    const tiles = (g.shared ? 1 : numel(g.outBatch)) * ceilDiv(M, 4) * ceilDiv(g.N, 8);
    if (g.K >= 512 && tiles < 512) c.push('reg,tile=4x8,splitk=4', 'reg,tile=4x4,splitk=8');
    return { family: 'matmul', candidates: c };
  },
};

/** The shape-generic kernel ('generic'): b a constant [K, N] or [N, K] weight, K and N multiples of 4. */
function lowerGeneric(
  g: MatmulGeometry,
  transB: boolean,
  bias: boolean,
  act: Activation,
  inputs: Shape[],
  ctx: LowerContext,
): Lowering {
  const p = matmulVariant.of(ctx.prefer)!;
  const { generic: _, tm, tn, ...rest } = p;
  const tile = { tm: tm ?? 8, tn: tn ?? (g.N % 8 === 0 ? 8 : 4) };
  const constW = g.shared && g.bBatch.length === 0 && !!ctx.constInputs?.[1];
  if (Object.values(rest).some((x) => x !== undefined) || !constW || g.K % 4 !== 0 || g.N % 4 !== 0) {
    throw new Error(
      `matmul variant "${matmulVariant.format(p)}": 'generic' takes only tile=<tm>x<tn>, and b a constant [K, N] or [N, K] weight with K and N multiples of 4 (got K ${g.K}, N ${g.N})`,
    );
  }
  const rows = numel(g.outBatch) * g.M;
  const cost = {
    flops: 2 * rows * g.N * g.K,
    bytes: 4 * (numel(inputs[0]) + numel(inputs[1]) + rows * g.N + (bias ? g.N : 0)),
  };
  return lowerMatmulGeneric(
    { rows, k: g.K, n: g.N, transB, bias, act },
    tile,
    ctx.limits.maxComputeWorkgroupsPerDimension,
    cost,
  );
}

/** b [K, N] → [⌈N/tn⌉, K, tn], column blocks of tn contiguous per k, zero past N (MatmulConfig.packB). */
export function packKN(b: Float32Array, K: number, N: number, tn: number): Float32Array {
  const blocks = ceilDiv(N, tn);
  const out = new Float32Array(blocks * K * tn);
  for (let nb = 0; nb < blocks; nb++) {
    const w = Math.min(tn, N - nb * tn);
    for (let k = 0; k < K; k++) out.set(b.subarray(k * N + nb * tn, k * N + nb * tn + w), (nb * K + k) * tn);
  }
  return out;
}

/** Plain-TS matmul with the same shape rules as the op, accumulating in double precision. */
export function matmulRef(attrs: MatmulAttrs, a: HostTensor, b: HostTensor, bias?: HostTensor): HostTensor {
  const g = geometry(attrs, bias ? [a.shape, b.shape, bias.shape] : [a.shape, b.shape]);
  const { M, N, K } = g;
  const f = activationRef(attrs.act ?? 'none');
  const batch = numel(g.outBatch);
  const aStr = batchStrides(g.aBatch, g.outBatch, M * K);
  const bStr = g.shared ? g.outBatch.map(() => 0) : batchStrides(g.bBatch, g.outBatch, K * N);
  const out = new Float32Array(batch * M * N);
  for (let bi = 0; bi < batch; bi++) {
    let r = bi,
      ao = 0,
      bo = 0;
    for (let d = g.outBatch.length - 1; d >= 0; d--) {
      const q = r % g.outBatch[d];
      r = Math.floor(r / g.outBatch[d]);
      ao += q * aStr[d];
      bo += q * bStr[d];
    }
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = bias ? bias.data[n] : 0;
        for (let k = 0; k < K; k++) {
          const bv = attrs.transB ? b.data[bo + n * K + k] : b.data[bo + k * N + n];
          s += a.data[ao + m * K + k] * bv;
        }
        out[(bi * M + m) * N + n] = f(s);
      }
    }
  }
  return { shape: [...g.outBatch, M, N], data: out };
}
