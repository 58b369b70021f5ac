// The demo the README's main command runs until the robustness run lands: a small network that
// touches every kernel family (a ResNet block, a MobileNetV2 block, a BiT-style WS-conv +
// GroupNorm, a ViT-style attention block), optimised, compiled and run on the GPU, checked
// against the CPU reference, with a per-kernel profile.

import { type Device, describeDevice } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph, runReference } from '../engine/graph.js';
import { optimize } from '../engine/passes.js';
import { formatProfile, type Profile } from '../engine/profiler.js';
import { NetBuilder, RandomWeights } from '../models/layers.js';
import { Rng } from '../models/init.js';

export interface DemoOptions {
  size?: number;
  batch?: number;
  classes?: number;
  seed?: number;
  iters?: number;
  log?: (line: string) => void;
}

/** A small mixed network, NHWC input [batch, size, size, 3] → logits [batch, classes]. */
export function demoNetwork(o: { size?: number; batch?: number; classes?: number; seed?: number } = {}): Graph {
  const size = o.size ?? 64,
    batch = o.batch ?? 1,
    classes = o.classes ?? 10;
  const g = new Graph();
  const b = new NetBuilder(g, new RandomWeights(o.seed ?? 0));
  let x = g.input('image', [batch, size, size, 3]);
  // Stem: conv 3×3/2 → BN → ReLU → maxpool 3×3/2.
  x = b.act(b.batchnorm('stem.bn', b.conv('stem.conv', x, 16, 3, { stride: 2 })), 'relu');
  x = g.op('maxpool', [x], { kernel: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, 'stem.pool');
  // ResNet basic block.
  let y = b.act(b.batchnorm('res.bn1', b.conv('res.conv1', x, 16, 3)), 'relu');
  y = b.batchnorm('res.bn2', b.conv('res.conv2', y, 16, 3));
  x = b.act(b.add(y, x), 'relu');
  // MobileNetV2 inverted residual: expand 1×1, depthwise 3×3, project 1×1.
  y = b.act(b.batchnorm('mb.bn1', b.conv('mb.expand', x, 64, 1)), 'relu6');
  y = b.act(b.batchnorm('mb.bn2', b.conv('mb.dw', y, 64, 3, { groups: 64 })), 'relu6');
  y = b.batchnorm('mb.bn3', b.conv('mb.project', y, 16, 1));
  x = b.add(y, x);
  // BiT-style: GroupNorm + ReLU, then a weight-standardised 3×3/2 conv.
  x = b.groupnorm('bit.gn', x, 4, 'relu');
  const w = b.param('bit.conv.weight', [3, 3, 16, 32], 'conv', 3 * 3 * 16);
  const ws = g.op('weight_standardize', [w], { eps: 1e-8 }, 'bit.ws');
  x = g.op('conv2d', [x, ws], { stride: [2, 2], pad: [1, 1, 1, 1] }, 'bit.conv');
  // ViT-style block on the feature map's tokens (NHWC makes [B,h,w,C] → [B,h·w,C] free).
  const [, h, wd, c] = g.shape(x);
  let t = g.op('reshape', [x], { shape: [batch, h * wd, c] }, 'tokens');
  const qkv = b.linear('attn.qkv', b.layernorm('norm1', t), 3 * c);
  const a = g.op('attention', [qkv], { heads: 2 }, 'attn');
  t = b.add(t, b.linear('attn.proj', a, c));
  t = b.add(t, b.linear('mlp.fc2', b.linear('mlp.fc1', b.layernorm('norm2', t), 2 * c, { act: 'gelu' }), c));
  // Head: back to a feature map, global average pool, linear, softmax.
  x = g.op('reshape', [t], { shape: [batch, h, wd, c] }, 'unflatten');
  x = g.op('global_avgpool', [x], {}, 'pool');
  const logits = b.linear('head', x, classes);
  g.markOutputs(logits, g.op('softmax', [logits], {}, 'probs'));
  return g;
}

export interface DemoReport {
  device: string;
  nodesBefore: number;
  nodesAfter: number;
  fused: Record<string, number>;
  dispatches: number;
  pipelines: number;
  compileMs: number;
  firstRunMs: number;
  steadyMs: { min: number; median: number };
  memory: { weightBytes: number; activationBytes: number; activationBytesUnplanned: number; peakBytes: number };
  maxAbsDiff: number;
  maxAbsRef: number;
  top: { cls: number; p: number }[];
  profile?: Profile;
}

export async function runDemo(device: Device, o: DemoOptions = {}): Promise<DemoReport> {
  const log = o.log ?? (() => {});
  const size = o.size ?? 64,
    batch = o.batch ?? 1;
  const raw = demoNetwork(o);
  const { graph, report } = optimize(raw);
  log(
    `network: ${report.before} nodes → ${report.after} after passes (${Object.entries(report.counts)
      .map(([k, v]) => `${k} −${v}`)
      .join(', ')})`,
  );
  const t0 = performance.now();
  const plan = await compile(device, graph);
  const compileMs = performance.now() - t0;
  log(
    `compiled: ${plan.dispatchCount} dispatches, ${new Set(plan.kernels).size} pipelines in ${compileMs.toFixed(0)} ms`,
  );
  const image = new Rng(o.seed ?? 0 + 1).uniforms(batch * size * size * 3, -1, 1);
  const first = await plan.run({ image });
  const times: number[] = [];
  for (let i = 0; i < (o.iters ?? 5); i++) times.push((await plan.run({ image })).ms);
  times.sort((a, b) => a - b);
  const { profile } = await plan.run({ image }, { profile: true });
  const ref = runReference(raw, { image });
  const [logitsName, probsName] = graph.outputs;
  const got = first.outputs[logitsName].data,
    want = ref[raw.outputs[0]].data;
  let maxAbsDiff = 0,
    maxAbsRef = 0;
  want.forEach((v, i) => {
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(v - got[i]));
    maxAbsRef = Math.max(maxAbsRef, Math.abs(v));
  });
  const probs = first.outputs[probsName].data;
  const classes = probs.length / batch;
  const top = [...probs.slice(0, classes)]
    .map((p, cls) => ({ cls, p }))
    .sort((a, b) => b.p - a.p)
    .slice(0, 3);
  const r: DemoReport = {
    device: describeDevice(device),
    nodesBefore: report.before,
    nodesAfter: report.after,
    fused: report.counts,
    dispatches: plan.dispatchCount,
    pipelines: new Set(plan.kernels).size,
    compileMs,
    firstRunMs: first.ms,
    steadyMs: { min: times[0], median: times[Math.floor(times.length / 2)] },
    memory: plan.memory,
    maxAbsDiff,
    maxAbsRef,
    top,
    profile,
  };
  plan.dispose();
  return r;
}

export function formatDemo(r: DemoReport): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  return [
    `device:      ${r.device}`,
    `graph:       ${r.nodesBefore} nodes → ${r.nodesAfter} after folding BN and fusing bias/activations (${Object.entries(
      r.fused,
    )
      .map(([k, v]) => `${k}: −${v}`)
      .join(', ')})`,
    `plan:        ${r.dispatches} dispatches in one command buffer, ${r.pipelines} pipelines, compiled in ${r.compileMs.toFixed(0)} ms`,
    `memory:      weights ${mib(r.memory.weightBytes)}, activations ${mib(r.memory.activationBytes)} (${mib(r.memory.activationBytesUnplanned)} without the liveness plan), peak ${mib(r.memory.peakBytes)}`,
    `time:        first run ${r.firstRunMs.toFixed(1)} ms; steady state min ${r.steadyMs.min.toFixed(1)} ms, median ${r.steadyMs.median.toFixed(1)} ms`,
    `check:       max |GPU − CPU reference| = ${r.maxAbsDiff.toExponential(2)} (max |ref| ${r.maxAbsRef.toFixed(3)}) ${r.maxAbsDiff <= 1e-3 * Math.max(1, r.maxAbsRef) ? 'OK' : 'MISMATCH'}`,
    `top classes: ${r.top.map((t) => `${t.cls} (${(100 * t.p).toFixed(1)}%)`).join(', ')}`,
    '',
    r.profile ? formatProfile(r.profile, 5) : '',
  ].join('\n');
}
