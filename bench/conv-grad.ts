// Quick GFLOP/s of the conv2d backward kernels on one layer, beside the forward conv, each
// validated against its reference first. Not part of `cnnlab bench`; run by hand:
//
//   npx esbuild bench/conv-grad.ts --bundle --platform=node --format=esm --packages=external \
//     --outfile=dist/conv-grad.mjs && node dist/conv-grad.mjs [N H W Cin Cout K stride [groups]] [op=variant ...]
//
// e.g. `node dist/conv-grad.mjs 2 28 28 64 64 3 1 conv2d_grad_weight=tile=4x8,split=2`.
// Times are the fastest of 3 profiled runs (timestamp queries on SwiftShader), after one warm run.

import { createDevice } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { conv2dGradInputRef, conv2dGradWeightRef } from '../kernels/backward/conv2d.js';
import type { Conv2dAttrs } from '../kernels/conv-geometry.js';
import { conv2dRef } from '../kernels/conv2d.js';
import type { HostTensor } from '../kernels/kernel.js';
import { Rng } from '../models/init.js';

const argv = process.argv.slice(2);
const dims = argv.filter((a) => /^\d+$/.test(a)).map(Number);
const prefs = argv.filter((a) => a.includes('='));
const [n, h, w, cin, cout, k, s, groups] = dims.length >= 7 ? [...dims, 1] : [2, 28, 28, 64, 64, 3, 1, 1];
const attrs: Conv2dAttrs = { stride: [s, s], pad: [(k - 1) >> 1, (k - 1) >> 1, k >> 1, k >> 1], groups };

const rnd = (shape: number[], seed: number): HostTensor => {
  const size = shape.reduce((a, b) => a * b, 1);
  return { shape, data: new Rng(seed).uniforms(size, -1, 1) };
};
const x = rnd([n, h, w, cin], 1);
const wt = rnd([k, k, cin / groups, cout], 2);
const y = conv2dRef(attrs, x, wt);
const dy = rnd(y.shape, 3);
const xShape = x.shape as [number, number, number, number];
const wShape = wt.shape as [number, number, number, number];
const flops = (2 * y.data.length * k * k * cin) / groups;

const cases: { op: string; attrs: object; inputs: HostTensor[]; want: HostTensor }[] = [
  { op: 'conv2d', attrs, inputs: [x, wt], want: y },
  {
    op: 'conv2d_grad_input',
    attrs: { ...attrs, xShape },
    inputs: [dy, wt],
    want: conv2dGradInputRef({ ...attrs, xShape }, dy, wt),
  },
  {
    op: 'conv2d_grad_weight',
    attrs: { ...attrs, wShape },
    inputs: [x, dy],
    want: conv2dGradWeightRef({ ...attrs, wShape }, x, dy),
  },
];

const device = await createDevice();
console.log(
  `layer N=${n} ${h}x${w} ${cin}->${cout} ${k}x${k} stride ${s} groups ${groups}: ${(flops / 1e9).toFixed(3)} GFLOP per pass`,
);
for (const c of cases) {
  const prefer: Record<string, string> = {};
  for (const p of prefs) {
    const i = p.indexOf('=');
    if (p.slice(0, i) === c.op) prefer[c.op] = p.slice(i + 1);
  }
  const g = new Graph();
  const names = c.inputs.map((t, i) => g.input(`in${i}`, t.shape));
  g.markOutputs(g.op(c.op, names, c.attrs as Record<string, unknown>, 'op'));
  const t0 = performance.now();
  const plan = await compile(device, g, { prefer });
  const feeds = Object.fromEntries(c.inputs.map((t, i) => [`in${i}`, t.data]));
  const { outputs } = await plan.run(feeds);
  const compileMs = performance.now() - t0;
  let worst = 0;
  for (let i = 0; i < c.want.data.length; i++) {
    worst = Math.max(worst, Math.abs(outputs.op.data[i] - c.want.data[i]) / (1e-3 + Math.abs(c.want.data[i])));
  }
  if (!(worst < 1e-2)) throw new Error(`${c.op}: GPU result off the reference (worst relative error ${worst})`);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const { profile } = await plan.run(feeds, { profile: true, outputs: [] });
    best = Math.min(
      best,
      profile!.entries.reduce((a, e) => a + e.ms, 0),
    );
  }
  const gf = flops / best / 1e6;
  console.log(
    `${c.op.padEnd(20)} ${(prefer[c.op] ?? 'default').padEnd(22)} ${best.toFixed(2).padStart(8)} ms ` +
      `${gf.toFixed(2).padStart(6)} GFLOP/s  (first run incl. compile ${compileMs.toFixed(0)} ms; ${plan.kernels.length} kernel(s))`,
  );
  plan.dispose();
}
device.destroy();
process.exit(0);
