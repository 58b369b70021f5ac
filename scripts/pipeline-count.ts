// Cold start by plan: how many pipelines a model needs and how long they take to build, each plan
// on a fresh device:
//   specialised  every layer on its shape-specialised heuristic kernel (genericMaxFlops {})
//   default      what compile() does untuned: on a CPU adapter the shape-generic convs and small
//                matmuls (GENERIC_MAX_FLOPS)
//   generic      every layer whose op's tune space offers a 'generic' variant forced to it (through
//                a tuning table), the large matmuls too
// and each with '+stream' (CompileOptions.streamPipelines). Reports the pipelines built, compile time
// (to compile() returning), the first run, cold = both, the best of 3 steady runs, and whether each
// plan's logits equal the first plan's. `--builds` also lists every pipeline's build time, built one
// at a time (so the times do not overlap), slowest first. Run:
//   npx esbuild scripts/pipeline-count.ts --bundle --platform=node --format=esm \
//     --external:webgpu --outfile=dist/pipeline-count.mjs && \
//   node dist/pipeline-count.mjs [--model mobilenet_v2] [--size 224] [--plans specialised,default] [--builds]
import { parseArgs } from 'node:util';
import { createDevice, describeDevice, kernelContext } from '../engine/device.js';
import { cachedPipelineCount, compile } from '../engine/executor.js';
import { optimize } from '../engine/passes.js';
import { TuningTable, adapterKey, layerKey } from '../engine/tuning.js';
import { getOp } from '../kernels/index.js';
import { loadModel } from '../models/index.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'mobilenet_v2' },
    size: { type: 'string', default: '224' },
    plans: { type: 'string', default: 'specialised,default,generic' },
    builds: { type: 'boolean', default: false },
  },
});
const PLANS = ['specialised', 'default', 'generic'].flatMap((p) => [p, `${p}+stream`]);
const plans = a.plans!.split(',');
for (const p of plans) if (!PLANS.includes(p)) throw new Error(`unknown plan "${p}" (plans: ${PLANS.join(', ')})`);
const size = Number(a.size);
const model = await loadModel(a.model!, { weights: 'random', batch: 1, size, seed: 1 });
const { graph } = optimize(model.graph);
const input = model.input;
const x = Float32Array.from({ length: graph.shape(input).reduce((s, d) => s * d, 1) }, (_, i) => Math.sin(i * 0.37));
const logits: Float32Array[] = [];
console.log(`${a.model} at ${size}², batch 1, random weights; ${graph.nodes.length} nodes`);
for (const [k, name] of plans.entries()) {
  const device = await createDevice();
  if (k === 0) console.log(describeDevice(device));
  let tuning: TuningTable | undefined;
  const generic = new Map<string, number>();
  if (name.startsWith('generic')) {
    tuning = new TuningTable(adapterKey(device.info));
    const ctx = kernelContext(device.info);
    for (const n of graph.nodes) {
      const def = getOp(n.op);
      const shapes = n.inputs.map((v) => [...graph.shape(v)]);
      const space = def.tuneSpace?.(n.attrs, shapes, {
        ...ctx,
        constInputs: n.inputs.map((v) => graph.value(v).kind === 'const'),
      });
      const prefer = space?.candidates.find((c) => c.split(',').includes('generic'));
      if (!space || !prefer) continue;
      generic.set(`${space.family} ${prefer}`, (generic.get(`${space.family} ${prefer}`) ?? 0) + 1);
      tuning.set(layerKey(n.op, n.attrs, shapes), { family: space.family, prefer, ms: 0, heuristicMs: 0 });
    }
  }
  const builds: [string, number][] = [];
  if (a.builds) serialiseBuilds(device.gpu, builds);
  const t0 = performance.now();
  const plan = await compile(device, graph, {
    tuning,
    streamPipelines: name.endsWith('+stream'),
    ...(name.startsWith('specialised') ? { genericMaxFlops: {} } : {}),
  });
  const compileMs = performance.now() - t0;
  const out = await plan.run({ [input]: x });
  const coldMs = performance.now() - t0;
  logits.push(out.outputs[model.logits].data);
  let best = Infinity;
  for (let r = 0; r < 3; r++) {
    const t1 = performance.now();
    await plan.run({ [input]: x });
    best = Math.min(best, performance.now() - t1);
  }
  let d = 0;
  for (let i = 0; i < logits[0].length; i++) d = Math.max(d, Math.abs(logits[0][i] - logits[k][i]));
  const forced = [...generic].map(([v, c]) => `${c}× ${v}`).join(', ');
  console.log(
    `${name}${forced ? ` (${forced})` : ''}: ${cachedPipelineCount(device.gpu)} pipelines, ${plan.steps.length} dispatches, ` +
      `compile ${compileMs.toFixed(0)} ms, first run ${(coldMs - compileMs).toFixed(0)} ms, cold ${coldMs.toFixed(0)} ms, ` +
      `run ${best.toFixed(0)} ms (best of 3), tuned nodes ${plan.tuning.used}, logits max|Δ| vs ${plans[0]} ${d.toExponential(2)}`,
  );
  for (const [key, ms] of builds.sort((p, q) => q[1] - p[1])) console.log(`  ${ms.toFixed(0).padStart(6)} ms  ${key}`);
  plan.dispose();
  device.destroy();
}
process.exit(0);

/** Build `gpu`'s pipelines one at a time, recording each one's build time by its shader's label (the pipeline key). */
function serialiseBuilds(gpu: GPUDevice, into: [string, number][]): void {
  const build = gpu.createComputePipelineAsync.bind(gpu);
  let last: Promise<unknown> = Promise.resolve();
  gpu.createComputePipelineAsync = (desc: GPUComputePipelineDescriptor) => {
    const p = last.then(async () => {
      const t = performance.now();
      const pipeline = await build(desc);
      into.push([desc.compute.module.label, performance.now() - t]);
      return pipeline;
    });
    last = p.catch(() => {});
    return p;
  };
}
