// `npx cnnlab models` (the registered models and their preprocessing) and `npx cnnlab random-weights`
// (a model's seeded random weights as a timm/torchvision-style checkpoint).

import { writeFileSync } from 'node:fs';
import { encodeSafetensors } from '../engine/safetensors.js';
import { listModels, randomCheckpoint } from '../models/registry.js';
import { parseCommand } from './common.js';

export function modelsCmd(): number {
  for (const m of listModels()) {
    const p = m.preprocess;
    console.log(
      `${m.name.padEnd(24)} ${m.family.padEnd(12)} ${p.size}px ${p.resizeMode === 'squash' ? 'squash' : `crop ${p.cropPct}`} ` +
        `${p.interpolation} mean ${p.mean.join('/')} std ${p.std.join('/')}`,
    );
  }
  return 0;
}

export function randomWeightsCmd(argv: string[]): number {
  const { values } = parseCommand(argv, {
    model: { type: 'string' },
    out: { type: 'string' },
    seed: { type: 'string', default: '0' },
    classes: { type: 'string', default: '1000' },
  });
  if (!values.model || !values.out) throw new Error('--model and --out are required');
  const ckpt = randomCheckpoint(values.model, { seed: Number(values.seed), classes: Number(values.classes) });
  writeFileSync(values.out, encodeSafetensors(ckpt, { model: values.model, seed: String(values.seed), format: 'pt' }));
  const params = Object.values(ckpt).reduce((a, t) => a + t.data.length, 0);
  console.log(`wrote ${values.out}: ${Object.keys(ckpt).length} tensors, ${params.toLocaleString('en-US')} values`);
  return 0;
}
