// `binary`: y = a ∘ b for ∘ in {sub, mul, div} with numpy broadcasting, the ONNX importer's Sub, Mul
// and Div (addition is `add` in elementwise.ts, which the passes fuse into producers). The case
// that matters most is a squeeze-and-excitation gate, [N,H,W,C] · [N,1,1,C]: every output element
// reads the gate of its image and channel.
//
// Mapping: as `add` (elementwise.ts): one invocation per 4 output elements; vec4 loads when both
// operands have the output's shape and the count is a multiple of 4, otherwise each invocation
// unravels its indices against the broadcast strides baked into the shader.

import { type BroadcastLayout, broadcastBinaryRef, broadcastBinaryWgsl, broadcastLayout } from './elementwise.js';
import {
  type KernelFamily,
  type OpDef,
  broadcastShapes,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';

export type BinaryKind = 'sub' | 'mul' | 'div';
const KINDS: readonly BinaryKind[] = ['sub', 'mul', 'div'];
const SYMBOL: Record<BinaryKind, string> = { sub: '-', mul: '*', div: '/' };

interface BinaryConfig extends BroadcastLayout {
  op: BinaryKind;
}

const binary: KernelFamily<BinaryConfig> = {
  name: 'binary',
  wgsl: (c) => broadcastBinaryWgsl(c, (a, b) => `${a} ${SYMBOL[c.op]} ${b}`),
};

export interface BinaryAttrs {
  op: BinaryKind;
}

const apply: Record<BinaryKind, (x: number, y: number) => number> = {
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  div: (x, y) => x / y,
};

function checkKind(a: BinaryAttrs): BinaryKind {
  if (!KINDS.includes(a.op)) throw new ShapeError(`binary op "${String(a.op)}" is not one of ${KINDS.join(', ')}`);
  return a.op;
}

export const binaryOp: OpDef<BinaryAttrs> = {
  op: 'binary',
  arity: [2, 2],
  infer(a, [x, y]) {
    checkKind(a);
    return [broadcastShapes(x, y)];
  },
  lower(a, [x, y], [out], ctx) {
    const { layout, grid: g } = broadcastLayout(x, y, out, ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: BinaryConfig = { ...layout, op: checkKind(a) };
    const n = layout.n;
    return {
      dispatches: [
        makeDispatch(binary, cfg, g, [input(0), input(1), output(0)], {
          flops: n,
          bytes: 4 * (numel(x) + numel(y) + n),
        }),
      ],
    };
  },
  ref(a, [x, y]) {
    return [broadcastBinaryRef(x, y, apply[checkKind(a)])];
  },
};
