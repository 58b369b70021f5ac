// conv2d backward kernels (kernels/backward/conv2d.ts): each reference against central finite
// differences of the forward reference, and each WGSL kernel against its reference on
// SwiftShader, on awkward shapes (odd H/W, channels not multiples of 4, stride 2, asymmetric
// padding, dilation 2, groups 2, depthwise, 1×1 and 7×7 windows, batch 2 and 3).

import { describe, expect, it } from 'vitest';
import { compile } from '../../engine/executor.js';
import { Graph } from '../../engine/graph.js';
import {
  type Conv2dGradInputAttrs,
  type Conv2dGradWeightAttrs,
  conv2dGradBiasRef,
  conv2dGradInputRef,
  conv2dGradWeightRef,
} from '../../kernels/backward/conv2d.js';
import type { Conv2dAttrs } from '../../kernels/conv-geometry.js';
import { conv2dRef } from '../../kernels/conv2d.js';
import { OPS } from '../../kernels/index.js';
import { type HostTensor, type Limits, ShapeError } from '../../kernels/kernel.js';
import { variantFamily } from '../../kernels/variant-families.js';
import { expectClose, randTensor, runOp, testDevice } from '../helpers.js';

type S4 = [number, number, number, number];

interface Case {
  name: string;
  x: S4;
  /** [KH, KW, Cin/groups, Cout] */
  w: S4;
  attrs: Conv2dAttrs;
}

const cases: Case[] = [
  { name: '3x3 pad 1, odd 7x5, Cin 3 -> Cout 5', x: [1, 7, 5, 3], w: [3, 3, 3, 5], attrs: { pad: [1, 1, 1, 1] } },
  {
    name: 'stride 2, asymmetric pad [0,1,2,1], Cin 6 -> Cout 8, batch 2',
    x: [2, 9, 8, 6],
    w: [3, 3, 6, 8],
    attrs: { stride: [2, 2], pad: [0, 1, 2, 1] },
  },
  {
    name: 'dilation 2, pad 2, Cin 4 -> Cout 7',
    x: [1, 8, 9, 4],
    w: [3, 3, 4, 7],
    attrs: { dilation: [2, 2], pad: [2, 2, 2, 2] },
  },
  {
    name: 'stem 7x7 stride 2 pad 3, Cin 3 -> Cout 8',
    x: [1, 13, 11, 3],
    w: [7, 7, 3, 8],
    attrs: { stride: [2, 2], pad: [3, 3, 3, 3] },
  },
  { name: '1x1, Cin 5 -> Cout 12, batch 3', x: [3, 5, 3, 5], w: [1, 1, 5, 12], attrs: {} },
  { name: '1x1 stride 2, Cin 8 -> Cout 4', x: [1, 7, 6, 8], w: [1, 1, 8, 4], attrs: { stride: [2, 2] } },
  {
    name: 'groups 2, Cin 6 -> Cout 10 (3 and 5 per group), stride [2,1]',
    x: [2, 7, 6, 6],
    w: [3, 3, 3, 10],
    attrs: { groups: 2, stride: [2, 1], pad: [1, 1, 1, 1] },
  },
  {
    name: 'groups 2, Cin 16 -> Cout 16 (vec4 per group)',
    x: [1, 5, 5, 16],
    w: [3, 3, 8, 16],
    attrs: { groups: 2, pad: [1, 0, 1, 2] },
  },
  {
    name: 'depthwise C 8, 3x3 stride 1 pad 1, batch 2',
    x: [2, 6, 7, 8],
    w: [3, 3, 1, 8],
    attrs: { groups: 8, pad: [1, 1, 1, 1] },
  },
  {
    name: 'depthwise C 6, 3x3 stride 2 pad [1,1,0,0]',
    x: [1, 9, 7, 6],
    w: [3, 3, 1, 6],
    attrs: { groups: 6, stride: [2, 2], pad: [1, 1, 0, 0] },
  },
  {
    name: 'depthwise multiplier 2, C 3 -> 6, 5x5 dilation 2 pad 4',
    x: [1, 7, 8, 3],
    w: [5, 5, 1, 6],
    attrs: { groups: 3, dilation: [2, 2], pad: [4, 4, 4, 4] },
  },
  {
    name: 'depthwise C 5, 5x5 dilation 2, asymmetric pad [4,3,2,4]',
    x: [1, 9, 8, 5],
    w: [5, 5, 1, 5],
    attrs: { groups: 5, dilation: [2, 2], pad: [4, 3, 2, 4] },
  },
  {
    name: 'depthwise C 4, 3x3 pad [1,0,1,0] (no tap leaves the columns), batch 3',
    x: [3, 6, 7, 4],
    w: [3, 3, 1, 4],
    attrs: { groups: 4, pad: [1, 0, 1, 0] },
  },
  {
    name: 'stride 3 with a 2x2 window (taps skipped), Cin 4 -> Cout 4',
    x: [1, 8, 10, 4],
    w: [2, 2, 4, 4],
    attrs: { stride: [3, 3], pad: [0, 1, 0, 0] },
  },
];

const outShape = (c: Case): S4 => {
  const y = conv2dRef(c.attrs, randTensor(c.x, 0), randTensor(c.w, 0)).shape;
  return [y[0], y[1], y[2], y[3]];
};
const inAttrs = (c: Case): Conv2dGradInputAttrs => ({ ...c.attrs, xShape: c.x });
const wAttrs = (c: Case): Conv2dGradWeightAttrs => ({ ...c.attrs, wShape: c.w });

// ---- references against finite differences ---------------------------------------------------

/** Σ y·r in f64. */
function dot(y: HostTensor, r: HostTensor): number {
  let s = 0;
  for (let i = 0; i < y.data.length; i++) s += y.data[i] * r.data[i];
  return s;
}

/**
 * Central differences of L = Σ conv(x, w, b)·r at `count` spread indices of the perturbed tensor.
 * L is linear in each input, so the step only meets f32 rounding of y: with ε = 0.25 the
 * difference is good to ~1e-6 here; |Δ| ≤ 1e-4 + 1e-4·|ref| leaves room for it.
 */
function checkFd(what: string, t: HostTensor, analytic: HostTensor, loss: () => number): void {
  const eps = 0.25;
  const n = t.data.length;
  const count = Math.min(n, 48);
  for (let k = 0; k < count; k++) {
    const i = Math.floor((k * n) / count + (k % 3));
    if (i >= n) continue;
    const v = t.data[i];
    t.data[i] = v + eps;
    const up = loss();
    t.data[i] = v - eps;
    const down = loss();
    t.data[i] = v;
    const fd = (up - down) / (2 * eps);
    const ref = analytic.data[i];
    if (!(Math.abs(fd - ref) <= 1e-4 + 1e-4 * Math.abs(ref))) {
      throw new Error(`${what}[${i}]: reference gradient ${ref}, finite difference ${fd}`);
    }
  }
}

describe('conv2d backward references vs finite differences', () => {
  cases.forEach((c, k) => {
    it(c.name, () => {
      const x = randTensor(c.x, 100 + k);
      const w = randTensor(c.w, 200 + k);
      const b = randTensor([c.w[3]], 300 + k);
      const r = randTensor(outShape(c), 400 + k);
      const loss = () => dot(conv2dRef(c.attrs, x, w, b), r);
      checkFd('dx', x, conv2dGradInputRef(inAttrs(c), r, w), loss);
      checkFd('dw', w, conv2dGradWeightRef(wAttrs(c), x, r), loss);
      checkFd('dbias', b, conv2dGradBiasRef(r), loss);
    });
  });
});

// ---- WGSL against the references -------------------------------------------------------------

// f32 sums of up to a few hundred products of values in [-1, 1] (the weight gradient of the
// batch-3 case sums 45 pixels × 1 tap; the stem's input gradient 16 taps × 8 channels).
const tol = { atol: 1e-5, rtol: 1e-4 };

/** Runs one op, returning its output and the kernel keys the plan compiled. */
async function runWithKernels(
  op: string,
  attrs: object,
  inputs: HostTensor[],
  prefer?: Record<string, string>,
): Promise<{ y: HostTensor; kernels: string[] }> {
  const dev = await testDevice();
  const g = new Graph();
  const names = inputs.map((t, i) => g.input(`x${i}`, t.shape));
  const y = g.op(op, names, attrs as Record<string, unknown>, 'op');
  g.markOutputs(y);
  const plan = await compile(dev, g, { prefer });
  try {
    const { outputs } = await plan.run(Object.fromEntries(inputs.map((t, i) => [`x${i}`, t.data])));
    return { y: outputs[y], kernels: plan.kernels };
  } finally {
    plan.dispose();
  }
}

describe('conv2d_grad_input on the GPU', () => {
  cases.forEach((c, k) => {
    const depthwise = (c.attrs.groups ?? 1) === c.x[3] && c.x[3] > 1;
    const stride1 = (c.attrs.stride ?? [1, 1]).every((v) => v === 1);
    // Stride 1 (depthwise only with multiplier 1) defaults to the forward kernels over flipped weights; 'gather' is
    // the own kernel, run on every case.
    for (const path of ['default', 'gather'] as const) {
      it(`${path}: ${c.name}`, async () => {
        const dy = randTensor(outShape(c), 500 + k);
        const w = randTensor(c.w, 600 + k);
        const prefer = path === 'gather' ? { conv2d_grad_input: 'gather' } : undefined;
        const { y, kernels } = await runWithKernels('conv2d_grad_input', inAttrs(c), [dy, w], prefer);
        const multiplier1 = c.w[3] === c.x[3];
        if (path === 'default' && stride1 && (!depthwise || multiplier1)) {
          const families = kernels.map((key) => key.slice(0, key.indexOf('{')));
          expect(families).toEqual(['conv2d_flip_weight', depthwise ? 'depthwise' : 'conv2d']);
        } else expect(kernels[0]).toContain(`"depthwise":${depthwise}`);
        expectClose(y, conv2dGradInputRef(inAttrs(c), dy, w), tol, 'dx');
      });
    }
  });

  // Subgroup-shared dy (SwiftShader's subgroups are 4 wide): channel blocks padded to whole
  // subgroups (idle lanes), groups, Cin/groups a multiple of 16.
  const sgCases: [string, Case][] = [
    ['gather,tile=4x4,sg', cases[1]], // Cin 6: 2 channel blocks, 2 idle lanes; stride 2
    ['gather,tile=4x4,sg', cases[7]], // groups 2, 8 channels per group
    [
      'gather,tile=4x4,sg',
      {
        name: 'stride 2, Cin 16 -> Cout 12, pad [1,0,1,1], batch 2',
        x: [2, 9, 7, 16],
        w: [3, 3, 16, 12],
        attrs: { stride: [2, 2], pad: [1, 0, 1, 1] },
      },
    ],
  ];
  for (const [pref, c] of sgCases) {
    it(`${pref || 'default'}: ${c.name}`, async () => {
      const dy = randTensor(outShape(c), 1400);
      const w = randTensor(c.w, 1401);
      const dev = await testDevice();
      const prefer = pref ? { conv2d_grad_input: pref } : undefined;
      const { y, kernels } = await runWithKernels('conv2d_grad_input', inAttrs(c), [dy, w], prefer);
      if (dev.info.subgroupSize === 4) expect(kernels[0]).toContain('"sg":4');
      expectClose(y, conv2dGradInputRef(inAttrs(c), dy, w), tol, pref);
    });
  }

  it("path 'conv' is refused where dx is not a stride-1 conv", async () => {
    const c = cases[1];
    await expect(
      runWithKernels('conv2d_grad_input', inAttrs(c), [randTensor(outShape(c), 1), randTensor(c.w, 2)], {
        conv2d_grad_input: 'conv',
      }),
    ).rejects.toThrow(/path 'conv' needs stride 1/);
  });

  const tiles: [string, number][] = [
    ['tile=1x1', 1],
    ['tile=3x2', 6], // 3 and 5 channels per group: tiles hang over both edges
    ['tile=5x3', 3], // stem: 5 pixels 2 apart on rows of 11
    ['tile=2x8', 7], // 8 channels per group, vec4 over Cout
  ];
  for (const [pref, k] of tiles) {
    it(`tile ${pref}: ${cases[k].name}`, async () => {
      const c = cases[k];
      const dy = randTensor(outShape(c), 700 + k);
      const w = randTensor(c.w, 800 + k);
      const { y, kernels } = await runWithKernels('conv2d_grad_input', inAttrs(c), [dy, w], {
        conv2d_grad_input: pref,
      });
      const [, tm, tn] = /tile=(\d+)x(\d+)/.exec(pref)!;
      expect(kernels[0]).toContain(`"tm":${tm}`);
      expect(kernels[0]).toContain(`"tn":${tn}`);
      expectClose(y, conv2dGradInputRef(inAttrs(c), dy, w), tol, pref);
    });
  }
});

describe('conv2d_grad_weight on the GPU', () => {
  cases.forEach((c, k) => {
    it(c.name, async () => {
      const x = randTensor(c.x, 900 + k);
      const dy = randTensor(outShape(c), 1000 + k);
      const { y } = await runWithKernels('conv2d_grad_weight', wAttrs(c), [x, dy]);
      expectClose(y, conv2dGradWeightRef(wAttrs(c), x, dy), tol, 'dw');
    });
  });

  const variants: [string, number][] = [
    ['split=1', 1],
    ['split=3', 4], // 15 rows in chunks of 5, plus the second pass
    ['tile=3x5,split=2', 6], // scalar tiles over 3 and 5 channels per group
    ['tile=8x8,split=7', 7], // vec4 x and dy; 5 rows in 7 chunks, 2 of them empty
    ['split=4', 9], // depthwise, no vec4 (C 6)
    ['tile=1x3', 2], // Cout 7, scalar
  ];
  // Subgroup-shared dy (SwiftShader's subgroups are 4 wide): input-channel blocks padded to whole
  // subgroups, output-channel tiles hanging over the group's edge.
  const sgCases: [string, Case][] = [
    [
      'tile=4x16,sg',
      {
        name: 'Cin 8 (2 blocks, 2 idle lanes) -> Cout 32, pad 1, batch 2',
        x: [2, 5, 6, 8],
        w: [3, 3, 8, 32],
        attrs: { pad: [1, 1, 1, 1] },
      },
    ],
    [
      'tile=4x32,split=3,sg',
      {
        name: 'Cin 12 -> Cout 48 (the second 32-wide tile half outside), stride 2',
        x: [1, 7, 6, 12],
        w: [3, 3, 12, 48],
        attrs: { stride: [2, 2], pad: [0, 1, 1, 0] },
      },
    ],
    [
      'tile=8x16,sg',
      {
        name: 'groups 2, 4 -> 16 channels per group',
        x: [1, 5, 5, 8],
        w: [3, 3, 4, 32],
        attrs: { groups: 2, pad: [1, 1, 1, 1] },
      },
    ],
    [
      '',
      { name: 'default on 64 channels picks sg', x: [1, 6, 5, 64], w: [3, 3, 64, 64], attrs: { pad: [1, 1, 1, 1] } },
    ],
  ];
  it('tile=4x16 without sg on a case sg could take', async () => {
    const c = sgCases[0][1];
    const x = randTensor(c.x, 1302);
    const dy = randTensor(outShape(c), 1303);
    const { y, kernels } = await runWithKernels('conv2d_grad_weight', wAttrs(c), [x, dy], {
      conv2d_grad_weight: 'tile=4x16',
    });
    expect(kernels[0]).toContain('"sg":0');
    expectClose(y, conv2dGradWeightRef(wAttrs(c), x, dy), tol, 'tile=4x16');
  });
  for (const [pref, c] of sgCases) {
    it(`${pref || 'default'}: ${c.name}`, async () => {
      const x = randTensor(c.x, 1300);
      const dy = randTensor(outShape(c), 1301);
      const dev = await testDevice();
      const { y, kernels } = await runWithKernels(
        'conv2d_grad_weight',
        wAttrs(c),
        [x, dy],
        pref ? { conv2d_grad_weight: pref } : undefined,
      );
      if (dev.info.subgroupSize === 4) expect(kernels[0]).toContain('"sg":4');
      expectClose(y, conv2dGradWeightRef(wAttrs(c), x, dy), tol, pref);
    });
  }
  for (const [pref, k] of variants) {
    it(`${pref}: ${cases[k].name}`, async () => {
      const c = cases[k];
      const x = randTensor(c.x, 1100 + k);
      const dy = randTensor(outShape(c), 1200 + k);
      const { y, kernels } = await runWithKernels('conv2d_grad_weight', wAttrs(c), [x, dy], {
        conv2d_grad_weight: pref,
      });
      const split = Number(/split=(\d+)/.exec(pref)?.[1] ?? 0);
      if (split) {
        expect(kernels[0]).toContain(`"split":${split}`);
        expect(kernels).toHaveLength(split > 1 ? 2 : 1);
      }
      expectClose(y, conv2dGradWeightRef(wAttrs(c), x, dy), tol, pref);
    });
  }
});

describe('conv2d_grad_bias on the GPU', () => {
  const shapes: S4[] = [
    [2, 5, 7, 5], // C not a multiple of 4
    [3, 9, 11, 8], // 297 rows: split into chunks, second pass
    [1, 1, 1, 12],
  ];
  for (const s of shapes) {
    it(`dy [${s}]`, async () => {
      const dy = randTensor(s, s[1] * 13 + s[3]);
      const [y] = await runOp('conv2d_grad_bias', {}, [dy]);
      expectClose(y, conv2dGradBiasRef(dy), tol, 'dbias');
    });
  }
});

describe('conv2d backward shape checks', () => {
  it('names dy and the conv shapes on a mismatch, and refuses a fused activation', () => {
    const g = new Graph();
    const dy = g.input('dy', [1, 4, 4, 5]);
    const w = g.input('w', [3, 3, 3, 5]);
    expect(() => g.op('conv2d_grad_input', [dy, w], { pad: [1, 1, 1, 1], xShape: [1, 5, 5, 3] })).toThrow(
      /dy \[1,4,4,5\] must be the conv output's shape \[1,5,5,5\]/,
    );
    expect(() => g.op('conv2d_grad_input', [dy, w], { act: 'relu', xShape: [1, 6, 6, 3] })).toThrow(ShapeError);
    expect(() => g.op('conv2d_grad_input', [dy, w], { pad: [1, 1, 1, 1] })).toThrow(/xShape/);
    const x = g.input('x', [1, 6, 6, 3]);
    expect(g.shape(g.op('conv2d_grad_weight', [x, dy], { wShape: [3, 3, 3, 5] }))).toEqual([3, 3, 3, 5]);
  });
});

describe('conv2d backward tune spaces', () => {
  it('list canonical variants of registered families, the gather path only where conv is the default', () => {
    const limits = { maxComputeWorkgroupsPerDimension: 65535 } as Limits;
    for (const [k, op] of [
      [0, 'conv2d_grad_input'],
      [1, 'conv2d_grad_input'],
      [8, 'conv2d_grad_input'],
      [0, 'conv2d_grad_weight'],
      [9, 'conv2d_grad_weight'],
    ] as const) {
      const c = cases[k];
      const attrs = op === 'conv2d_grad_input' ? inAttrs(c) : wAttrs(c);
      const ins = op === 'conv2d_grad_input' ? [outShape(c), c.w] : [c.x, outShape(c)];
      const space = OPS.get(op)!.tuneSpace!(attrs, ins, { limits, subgroupSize: 4 });
      if (op === 'conv2d_grad_input' && k === 8) {
        expect(space!.candidates, 'depthwise grad_input has no tiles').toEqual(['gather']);
        continue;
      }
      expect(space!.family).toBe(op);
      for (const cand of space!.candidates) {
        const schema = variantFamily(op);
        expect(schema.format(schema.parse(cand))).toBe(cand);
      }
      if (op === 'conv2d_grad_input') expect(space!.candidates.includes('gather')).toBe(k === 0);
    }
  });
});
