// The op registry: every op the graph IR knows, by name. A new kernel family adds its OpDefs here.

import { activationOp, addOp } from './elementwise.js';
import type { OpDef } from './kernel.js';

const ops: OpDef[] = [activationOp, addOp];

export const OPS: ReadonlyMap<string, OpDef> = new Map(ops.map((o) => [o.op, o]));

export function getOp(op: string): OpDef {
  const d = OPS.get(op);
  if (!d) throw new Error(`unknown op "${op}" (known: ${[...OPS.keys()].sort().join(', ')})`);
  return d;
}
