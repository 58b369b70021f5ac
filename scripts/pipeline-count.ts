// How many pipelines MobileNetV2 needs with and without the shape-generic pointwise kernel
// (conv2d 'gemm,tile=8x8,generic' on every 1×1 conv), each on a fresh device, with the compile
// time and a check that both plans give the same logits. Run:
//   npx esbuild scripts/pipeline-count.ts --bundle --platform=node --format=esm \
//     --external:webgpu --outfile=dist/pipeline-count.mjs && node dist/pipeline-count.mjs [size]
import { createDevice, describeDevice } from '../engine/device.js';
import { cachedPipelineCount, compile } from '../engine/executor.js';
import { optimize } from '../engine/passes.js';
import { TuningTable, adapterKey, layerKey } from '../engine/tuning.js';
import { conv2dGeometry, isPointwise } from '../kernels/conv2d.js';
import { loadModel } from '../models/index.js';

const size = Number(process.argv[2] ?? 224);
const model = await loadModel('mobilenet_v2', { weights: 'random', batch: 1, size, seed: 1 });
const { graph } = optimize(model.graph);
const input = model.input;
const x = Float32Array.from({ length: graph.shape(input).reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37));
const logits: Float32Array[] = [];
for (const generic of [false, true]) {
  const device = await createDevice();
  if (!generic) console.log(describeDevice(device));
  let tuning: TuningTable | undefined;
  let pointwise = 0;
  if (generic) {
    tuning = new TuningTable(adapterKey(device.info));
    for (const n of graph.nodes) {
      if (n.op !== 'conv2d') continue;
      const shapes = n.inputs.map((v) => [...graph.shape(v)]);
      const g = conv2dGeometry(n.attrs, shapes);
      const constW = graph.value(n.inputs[1]).kind === 'const';
      if (!isPointwise(g) || g.groups !== 1 || g.cin % 4 || g.cout % 8 || !constW) continue;
      pointwise++;
      tuning.set(layerKey(n.op, n.attrs, shapes), {
        family: 'conv2d',
        prefer: 'gemm,tile=8x8,generic',
        ms: 0,
        heuristicMs: 0,
      });
    }
  }
  const t0 = performance.now();
  const plan = await compile(device, graph, { tuning });
  const ms = performance.now() - t0;
  const out = await plan.run({ [input]: x });
  logits.push(out.outputs[model.logits].data);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t1 = performance.now();
    await plan.run({ [input]: x });
    best = Math.min(best, performance.now() - t1);
  }
  console.log(
    `${generic ? `generic pointwise (${pointwise} 1x1 convs)` : 'heuristics'}: ${cachedPipelineCount(device.gpu)} pipelines, ` +
      `${plan.steps.length} dispatches, compile ${ms.toFixed(0)} ms, run ${best.toFixed(0)} ms (best of 3), ` +
      `tuned nodes ${plan.tuning.used}`,
  );
  plan.dispose();
  device.destroy();
}
let d = 0,
  ref = 0;
for (let i = 0; i < logits[0].length; i++) {
  d = Math.max(d, Math.abs(logits[0][i] - logits[1][i]));
  ref = Math.max(ref, Math.abs(logits[0][i]));
}
console.log(`logits max|Δ| ${d.toExponential(2)} of max|ref| ${ref.toExponential(2)}`);
process.exit(0);
