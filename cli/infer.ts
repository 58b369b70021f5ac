// `npx cnnlab infer`: a registered model on an .npy input or an image file, in Node (Dawn) or in
// the page in headless Chromium; prints the logits' shape and timings, or an image's top-5.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createDevice } from '../engine/device.js';
import { encodeNpy, readNpyPath } from '../engine/npy.js';
import { openSafetensorsPath } from '../engine/safetensors.js';
import { decodeImageFile } from '../eval/decode-node.js';
import type { HostTensor } from '../kernels/kernel.js';
import IMAGENET_CLASSES from '../models/imagenet-classes.json';
import { preprocessImage } from '../models/preprocess.js';
import { getModel } from '../models/registry.js';
import { type InferResult, infer, topK } from '../models/run.js';
import { WEB_ROOT, oneOf, parseCommand, withPage } from './common.js';
import { hubWeightsOption } from './hub.js';
import { weightsUrl } from './serve.js';

export async function inferCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    seed: { type: 'string', default: '0' },
    input: { type: 'string' },
    image: { type: 'string' },
    output: { type: 'string' },
    runtime: { type: 'string', default: 'node' },
  });
  const hub = await hubWeightsOption(values.weights, values.model);
  if (!values.model && !hub) throw new Error('--model is required (npx cnnlab models lists them)');
  const def = hub?.def ?? getModel(values.model!);
  const embedded = def.embeddedWeights !== undefined;
  if (embedded && values.weights)
    throw new Error(`--weights: ${def.name} carries its own weights; leave --weights out`);
  if (!values.weights && !embedded)
    throw new Error('--weights is required: a .safetensors file or "random" (or hf:ORG/REPO)');
  if (!values.input === !values.image) throw new Error('give exactly one of --input x.npy or --image file');
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const runtime = oneOf('runtime', values.runtime, ['node', 'chrome']);
  const weightsPath = hub
    ? hub.weightsPath
    : !values.weights || values.weights === 'random'
      ? null
      : path.resolve(values.weights);
  let input: HostTensor;
  if (values.input) {
    input = await readNpyPath(values.input);
  } else {
    const img = await decodeImageFile(values.image!);
    input = { shape: [1, 3, def.preprocess.size, def.preprocess.size], data: preprocessImage(img, def.preprocess) };
    console.log(
      `${values.image}: ${img.width}×${img.height} → ${def.preprocess.resizeMode === 'squash' ? 'squash' : 'short side'} resize, ` +
        `${def.preprocess.interpolation}, crop ${def.preprocess.size}, mean ${def.preprocess.mean.join('/')}, std ${def.preprocess.std.join('/')}`,
    );
  }
  const log = (s: string) => console.log(s);
  let r: InferResult;
  if (runtime === 'node') {
    const device = await createDevice();
    r = await infer(device, {
      model: def.name,
      weights: weightsPath ? await openSafetensorsPath(weightsPath) : 'random',
      seed,
      input,
      log,
    });
    device.destroy();
  } else {
    const job = mkdtempSync(path.join(tmpdir(), 'cnnlab-infer-'));
    try {
      writeFileSync(path.join(job, 'input.npy'), encodeNpy(input));
      const mounts: Record<string, string> = { '/': WEB_ROOT, '/job/': job };
      if (weightsPath) mounts[weightsUrl(weightsPath)] = weightsPath; // the file, not its folder
      const res = await withPage(
        mounts,
        (page) =>
          page.evaluate((o) => window.cnnlab.inferFromUrls(o), {
            model: def.name,
            seed,
            inputUrl: '/job/input.npy',
            weightsUrl: weightsPath ? weightsUrl(weightsPath) : undefined,
          }),
        log,
      );
      r = { ...res, logits: { shape: res.logits.shape, data: new Float32Array(res.logits.data) } };
    } finally {
      rmSync(job, { recursive: true, force: true });
    }
  }
  console.log(`device: ${r.device}`);
  console.log(
    `input ${JSON.stringify(input.shape)} → logits ${JSON.stringify(r.logits.shape)}; compile ${r.compileMs.toFixed(0)} ms, run ${r.runMs.toFixed(1)} ms`,
  );
  if (values.output) {
    writeFileSync(values.output, encodeNpy(r.logits));
    console.log(`wrote ${values.output}`);
  }
  if (values.image) {
    const names = r.classes === 1000 ? (IMAGENET_CLASSES as string[]) : null;
    console.log('top-5:');
    for (const t of topK(r.logits, 5))
      console.log(`  ${(100 * t.p).toFixed(2).padStart(6)}%  ${t.cls}${names ? ` ${names[t.cls]}` : ''}`);
  }
  return 0;
}
