// `npx cnnlab grad`: the loss and every parameter's gradient for one batch, in the checkpoint's own
// tensor names and layouts (timm/torchvision), so anyone can check our gradients against their
// framework. What is computed is eval/finetune/grad.ts's, in Node (Dawn, --runtime node) or in
// the page in headless Chromium (--runtime chrome, web/api.ts gradFromUrls); both write the same
// file. docs/autodiff.md says how this is checked against PyTorch.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { createDevice } from '../engine/device.js';
import { encodeNpy, readNpyPath } from '../engine/npy.js';
import { openSafetensorsPath } from '../engine/safetensors.js';
import { checkpointGradients, encodeGradients } from '../eval/finetune/grad.js';
import { fmtShape } from '../kernels/kernel.js';
import { getModel } from '../models/registry.js';
import { oneOf, parseCommand, resolveWeights, WEB_ROOT, withPage } from './common.js';
import { hubWeightsOption } from './hub.js';
import { weightsUrl } from './serve.js';

export { targetsFrom } from '../eval/finetune/grad.js';

export interface GradCliOptions {
  /** Runs on the page before the gradients (--runtime chrome), e.g. to register a model only Node knows. */
  preparePage?: (page: Page) => Promise<void>;
}

export async function gradCmd(argv: string[], o: GradCliOptions = {}): Promise<number> {
  const { values } = parseCommand(argv, {
    model: { type: 'string' },
    weights: { type: 'string' },
    input: { type: 'string' },
    labels: { type: 'string' },
    bn: { type: 'string', default: 'train' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
    runtime: { type: 'string', default: 'node' },
  });
  if (!values.input || !values.labels || !values.out)
    throw new Error(
      'usage: npx cnnlab grad --model NAME --weights FILE --input x.npy --labels y.npy --out g.safetensors [--runtime node|chrome]',
    );
  const hub = await hubWeightsOption(values.weights, values.model);
  if (!values.model && !hub) throw new Error('--model is required (npx cnnlab models lists them)');
  const def = hub?.def ?? getModel(values.model!);
  if (def.embeddedWeights !== undefined)
    throw new Error(`${def.name}: gradients are written in a checkpoint's names; an ONNX model has none`);
  if (!values.weights) throw new Error('--weights is required: a .safetensors file, builtin, random or hf:ORG/REPO');
  const bn = oneOf('bn', values.bn, ['train', 'frozen']);
  const runtime = oneOf('runtime', values.runtime, ['node', 'chrome']);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
  const input = await readNpyPath(values.input);
  const labels = await readNpyPath(values.labels);
  const weightsPath = hub ? hub.weightsPath : values.weights === 'random' ? null : resolveWeights(def, values.weights);

  let file: Uint8Array, loss: number, count: number, weights: string;
  if (runtime === 'node') {
    const device = await createDevice();
    try {
      const r = await checkpointGradients(device, {
        def,
        weights: weightsPath ? await openSafetensorsPath(weightsPath) : 'random',
        seed,
        input,
        labels,
        bn,
      });
      file = encodeGradients(r, { model: def.name, bn });
      ({ loss, weights } = r);
      count = Object.keys(r.gradients).length;
    } finally {
      device.destroy();
    }
  } else {
    const job = mkdtempSync(path.join(tmpdir(), 'cnnlab-grad-'));
    try {
      writeFileSync(path.join(job, 'input.npy'), encodeNpy(input));
      writeFileSync(path.join(job, 'labels.npy'), encodeNpy(labels));
      const mounts: Record<string, string> = { '/': WEB_ROOT, '/job/': job };
      if (weightsPath) mounts[weightsUrl(weightsPath)] = weightsPath; // the file, not its folder
      const r = await withPage(mounts, async (page) => {
        await o.preparePage?.(page);
        return page.evaluate((a) => window.cnnlab.gradFromUrls(a), {
          model: def.name,
          seed,
          bn,
          inputUrl: '/job/input.npy',
          labelsUrl: '/job/labels.npy',
          weightsUrl: weightsPath ? weightsUrl(weightsPath) : undefined,
        });
      });
      file = Buffer.from(r.file, 'base64');
      ({ loss, count, weights } = r);
    } finally {
      rmSync(job, { recursive: true, force: true });
    }
  }
  writeFileSync(values.out, file);
  console.log(
    `${def.name} (${weights}), input ${fmtShape(input.shape)}, BN ${bn}, ${runtime}: loss ${loss.toPrecision(7)}; ` +
      `${count} gradients → ${path.resolve(values.out)}`,
  );
  return 0;
}
