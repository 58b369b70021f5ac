// The `corrupt` graph op (contract: corruption.ts): a corruption by name, severity and seed,
// lowered to that corruption's dispatches, with its plain-TS reference as the op's `ref`.
// Importing this module registers the op, so whatever builds a corrupt node (addCorruption, or
// g.op(corruptOp.op, …)) imports it and works from any entry point.

import type { Graph } from '../../engine/graph.js';
import { OPS, registerOp } from '../../kernels/index.js';
import { type OpDef, fmtShape, ShapeError } from '../../kernels/kernel.js';
import type { CorruptAttrs } from './corruption.js';
import { corruptionParams, getCorruption } from './index.js';

export const corruptOp: OpDef<CorruptAttrs> = {
  op: 'corrupt',
  arity: [2, 8],
  infer(a, [x, ids]) {
    if (x.length !== 4 || x[3] !== 3) throw new ShapeError(`corrupt needs RGB images [N,H,W,3], got ${fmtShape(x)}`);
    if (ids.length !== 1 || ids[0] !== x[0])
      throw new ShapeError(`corrupt needs ids [N] = [${x[0]}], got ${fmtShape(ids)}`);
    corruptionParams(a);
    return [x];
  },
  lower(a, [x], _o, ctx) {
    return getCorruption(a.name).lower(corruptionParams(a), a.seed, x, ctx);
  },
  ref(a, [x, ids, ...assets]) {
    return [getCorruption(a.name).ref(corruptionParams(a), a.seed, x, ids.data, assets)];
  },
};

// registerOp refuses a name twice; the guard makes a second evaluation of this module against the
// same registry (a hot-reloading dev server) harmless.
if (!OPS.has(corruptOp.op)) registerOp(corruptOp);

/**
 * Add a `corrupt` node to `g`: the corruption's textures become graph constants (inputs 2, 3, …).
 * Returns the corrupted images' value name.
 */
export function addCorruption(g: Graph, x: string, ids: string, a: CorruptAttrs, name = 'corrupt'): string {
  const def = getCorruption(a.name);
  const assets = def.assets?.(corruptionParams(a), a.seed, g.shape(x)) ?? [];
  const names = assets.map((t, k) => g.constant(`${name}.asset${k}`, t.shape, t.data));
  return g.op(corruptOp.op, [x, ids, ...names], { ...a }, name);
}
