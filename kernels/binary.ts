// `binary`: y = a ∘ b for ∘ in {sub, mul, div} with numpy broadcasting, the ONNX importer's Sub, Mul
// and Div (addition is `add` in elementwise.ts, which the passes fuse into producers). The case
// that matters most is a squeeze-and-excitation gate, [N,H,W,C] · [N,1,1,C]: every output element
// reads the gate of its image and channel.
//
// Mapping: as `add` (elementwise.ts): one invocation per 4 output elements; vec4 loads when both
// operands have the output's shape and the count is a multiple of 4, otherwise each invocation
// unravels its indices against the broadcast strides baked into the shader.

import { broadcastStrides } from './elementwise.js';
import {
  type HostTensor,
  type KernelFamily,
  type OpDef,
  broadcastShapes,
  ceilDiv,
  grid,
  input,
  makeDispatch,
  numel,
  output,
  ShapeError,
} from './kernel.js';
import { flatMain, vecType, wgsl } from './wgsl.js';

export type BinaryKind = 'sub' | 'mul' | 'div';
const KINDS: readonly BinaryKind[] = ['sub', 'mul', 'div'];
const SYMBOL: Record<BinaryKind, string> = { sub: '-', mul: '*', div: '/' };

interface BinaryConfig {
  op: BinaryKind;
  n: number;
  wg: number;
  gridX: number;
  /** Output shape and operand strides; empty when both operands match the output (fast path). */
  shape: readonly number[];
  aStrides: readonly number[];
  bStrides: readonly number[];
  vec4: boolean;
}

const binary: KernelFamily<BinaryConfig> = {
  name: 'binary',
  wgsl(c) {
    const T = vecType(c.vec4);
    const same = c.shape.length === 0;
    let unravel = '';
    if (!same) {
      unravel = '    var r = i;\n    var ia = 0u;\n    var ib = 0u;\n';
      for (let d = c.shape.length - 1; d >= 0; d--) {
        unravel += `    { let q = r % ${c.shape[d]}u; r = r / ${c.shape[d]}u; ia += q * ${c.aStrides[d]}u; ib += q * ${c.bStrides[d]}u; }\n`;
      }
    }
    const s = SYMBOL[c.op];
    return wgsl`
@group(0) @binding(0) var<storage, read> a: array<${T}>;        // input  a (broadcast to output)
@group(0) @binding(1) var<storage, read> b: array<${T}>;        // input  b (broadcast to output)
@group(0) @binding(2) var<storage, read_write> y: array<${T}>;  // output [${c.shape.join(',')}]

${flatMain(c.wg, c.gridX)}
#if ${c.vec4}
  if (t >= ${c.n / 4}u) { return; }
  y[t] = a[t] ${s} b[t];
#else
  for (var k = 0u; k < 4u; k++) {
    let i = t * 4u + k;
    if (i >= ${c.n}u) { return; }
${same ? '    let ia = i;\n    let ib = i;\n' : unravel}    y[i] = a[ia] ${s} b[ib];
  }
#endif
}`;
  },
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
    const n = numel(out);
    const same = numel(x) === n && numel(y) === n;
    const wg = 64;
    const g = grid(ceilDiv(ceilDiv(n, 4), wg), ctx.limits.maxComputeWorkgroupsPerDimension);
    const cfg: BinaryConfig = {
      op: checkKind(a),
      n,
      wg,
      gridX: g[0],
      vec4: same && n % 4 === 0,
      shape: same ? [] : [...out],
      aStrides: same ? [] : broadcastStrides(x, out),
      bStrides: same ? [] : broadcastStrides(y, out),
    };
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
    const f = apply[checkKind(a)];
    const shape = broadcastShapes(x.shape, y.shape);
    const n = numel(shape);
    const sa = broadcastStrides(x.shape, shape);
    const sb = broadcastStrides(y.shape, shape);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let r = i,
        ia = 0,
        ib = 0;
      for (let d = shape.length - 1; d >= 0; d--) {
        const q = r % shape[d];
        r = Math.floor(r / shape[d]);
        ia += q * sa[d];
        ib += q * sb[d];
      }
      data[i] = f(x.data[ia], y.data[ib]);
    }
    return [{ shape, data } satisfies HostTensor];
  },
};
