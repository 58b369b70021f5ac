// Axis orders for the ONNX importer (docs/onnx-import.md, "Layout"): a computed ONNX value is held
// as a cnnlab value plus a permutation `perm`, cnnlab.shape[k] = onnx.shape[perm[k]]. These are the
// pure functions on permutations that models/onnx/convert.ts decides holdings with: whether a
// permutation keeps memory order, and which holding makes a reshape of a held value an alias.

/** NCHW held as NHWC: what conv, norms and pooling read and write. */
export const NHWC = [0, 2, 3, 1];

export const ident = (r: number) => Array.from({ length: r }, (_, k) => k);
export const isIdent = (p: number[]) => p.every((d, k) => d === k);
export const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, k) => v === b[k]);
export const invert = (p: number[]) => {
  const inv = new Array<number>(p.length);
  p.forEach((d, k) => {
    inv[d] = k;
  });
  return inv;
};

/** Permuting a tensor of `shape` by `p` keeps its row-major memory order: only size-1 dims move. */
export function keepsOrder(shape: readonly number[], p: readonly number[]): boolean {
  const big = p.filter((d) => shape[d] !== 1);
  return big.every((d, k) => k === 0 || d > big[k - 1]);
}

/**
 * The holding of `target` that makes an ONNX reshape of a tensor of `shape` held by `perm` a pure
 * alias, or undefined when there is none. The non-1 dims of input and output are split into
 * groups of equal product (each group merges/splits among itself); the reshape is free when every
 * input group sits contiguous and in order in the held layout. The output holding lists the
 * groups in held order, each group's output dims ascending; size-1 output dims go after the
 * largest smaller dim already placed.
 */
export function reshapedPerm(shape: number[], perm: number[], target: number[]): number[] | undefined {
  const inDims = shape.flatMap((d, k) => (d !== 1 ? [k] : []));
  const outDims = target.flatMap((d, k) => (d !== 1 ? [k] : []));
  const groups: { ins: number[]; outs: number[] }[] = [];
  let i = 0;
  let j = 0;
  while (i < inDims.length || j < outDims.length) {
    const g = { ins: [] as number[], outs: [] as number[] };
    let pi = 1;
    let pj = 1;
    do {
      if (pi <= pj && i < inDims.length) {
        g.ins.push(inDims[i]);
        pi *= shape[inDims[i++]];
      } else if (j < outDims.length) {
        g.outs.push(outDims[j]);
        pj *= target[outDims[j++]];
      } else return undefined;
    } while (pi !== pj || g.ins.length === 0 || g.outs.length === 0);
    groups.push(g);
  }
  const heldOrder = perm.filter((d) => shape[d] !== 1);
  const order: typeof groups = [];
  let k = 0;
  while (k < heldOrder.length) {
    const g = groups.find((x) => x.ins[0] === heldOrder[k]);
    if (!g || !sameList(heldOrder.slice(k, k + g.ins.length), g.ins)) return undefined;
    order.push(g);
    k += g.ins.length;
  }
  const out = order.flatMap((g) => g.outs);
  for (let d = 0; d < target.length; d++) {
    if (target[d] !== 1) continue;
    let at = 0;
    out.forEach((e, idx) => {
      if (e < d) at = idx + 1;
    });
    out.splice(at, 0, d);
  }
  return out;
}
