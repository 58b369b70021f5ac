// A conv's geometry: its attrs, the shapes they give (validated) and the pointwise test. Apart
// from kernels/conv2d.ts so that the kernels conv2d.ts lowers to (kernels/conv-generic.ts) can
// take the same geometry without importing the file that imports them.

import { type Activation, type Shape, ShapeError, expectRank, fmtShape } from './kernel.js';

export interface Conv2dAttrs {
  stride?: [number, number];
  /** [top, left, bottom, right] */
  pad?: [number, number, number, number];
  dilation?: [number, number];
  groups?: number;
  act?: Activation;
}

/** Everything about one conv's shapes, attrs resolved to their defaults. */
export interface Conv2dGeometry {
  n: number;
  h: number;
  w: number;
  cin: number;
  oh: number;
  ow: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  /** [top, left, bottom, right] */
  pad: [number, number, number, number];
  dh: number;
  dw: number;
  groups: number;
  /** Channels per group, in and out. */
  cig: number;
  cog: number;
  bias: boolean;
  /** A residual input [N,OH,OW,Cout] (4th) is added before the activation. */
  residual: boolean;
  act: Activation;
}

export const isPosInt = (v: number): boolean => Number.isInteger(v) && v >= 1;

/** Validate shapes and attrs; throws ShapeError naming the shapes. */
export function conv2dGeometry(a: Conv2dAttrs, inputs: Shape[]): Conv2dGeometry {
  const [x, w, b, r] = inputs;
  expectRank('conv2d input x (NHWC)', x, 4);
  expectRank('conv2d weights w (HWIO)', w, 4);
  const [sh, sw] = a.stride ?? [1, 1];
  const pad = a.pad ?? [0, 0, 0, 0];
  const [dh, dw] = a.dilation ?? [1, 1];
  const groups = a.groups ?? 1;
  if (!isPosInt(sh) || !isPosInt(sw))
    throw new ShapeError(`conv2d stride must be positive integers, got ${JSON.stringify(a.stride)}`);
  if (!isPosInt(dh) || !isPosInt(dw))
    throw new ShapeError(`conv2d dilation must be positive integers, got ${JSON.stringify(a.dilation)}`);
  if (pad.length !== 4 || !pad.every((p) => Number.isInteger(p) && p >= 0)) {
    throw new ShapeError(
      `conv2d pad must be [top, left, bottom, right] of integers >= 0, got ${JSON.stringify(a.pad)}`,
    );
  }
  if (!isPosInt(groups)) throw new ShapeError(`conv2d groups must be a positive integer, got ${groups}`);
  if (![...x, ...w].every(isPosInt))
    throw new ShapeError(`conv2d needs positive dims, got input ${fmtShape(x)} and weights ${fmtShape(w)}`);
  const [n, h, wd, cin] = x;
  const [kh, kw, wcin, cout] = w;
  if (cin % groups !== 0)
    throw new ShapeError(`conv2d input ${fmtShape(x)}: Cin = ${cin} is not divisible by groups = ${groups}`);
  if (cout % groups !== 0)
    throw new ShapeError(`conv2d weights ${fmtShape(w)}: Cout = ${cout} is not divisible by groups = ${groups}`);
  if (wcin !== cin / groups) {
    throw new ShapeError(
      `conv2d weights ${fmtShape(w)} need dim 2 = Cin/groups = ${cin}/${groups} = ${cin / groups} for input ${fmtShape(x)}`,
    );
  }
  if (b !== undefined && (b.length !== 1 || b[0] !== cout)) {
    throw new ShapeError(`conv2d bias ${fmtShape(b)} must be [${cout}] (Cout of weights ${fmtShape(w)})`);
  }
  const oh = Math.floor((h + pad[0] + pad[2] - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + pad[1] + pad[3] - dw * (kw - 1) - 1) / sw) + 1;
  if (!(oh >= 1 && ow >= 1)) {
    throw new ShapeError(
      `conv2d output would be ${oh}x${ow}: input ${fmtShape(x)} with pad ${fmtShape(pad)} is smaller than ` +
        `weights ${fmtShape(w)} with dilation [${dh},${dw}]`,
    );
  }
  if (r !== undefined && (r.length !== 4 || r[0] !== n || r[1] !== oh || r[2] !== ow || r[3] !== cout)) {
    throw new ShapeError(`conv2d residual ${fmtShape(r)} must have the output's shape ${fmtShape([n, oh, ow, cout])}`);
  }
  return {
    n,
    h,
    w: wd,
    cin,
    oh,
    ow,
    cout,
    kh,
    kw,
    sh,
    sw,
    pad: [pad[0], pad[1], pad[2], pad[3]],
    dh,
    dw,
    groups,
    cig: cin / groups,
    cog: cout / groups,
    bias: b !== undefined,
    residual: r !== undefined,
    act: a.act ?? 'none',
  };
}

/** A 1×1 window at stride 1 without padding: each output pixel reads only its own input pixel. */
export function isPointwise(g: Conv2dGeometry): boolean {
  return g.kh === 1 && g.kw === 1 && g.sh === 1 && g.sw === 1 && g.pad.every((p) => p === 0);
}
