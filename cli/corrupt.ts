// `npx cnnlab corrupt`: ImageNet-C corruptions of your images as PNG files, to look at them and
// compare with the reference implementation. Each image is resized (short side 256) and centre-
// cropped to 224 as ImageNet-C's were, then corrupted on the GPU.

import { mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { createDevice } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph } from '../engine/graph.js';
import { corruptionNames } from '../eval/corruptions/index.js';
import { addCorruption } from '../eval/corruptions/op.js';
import { decodeImageFile } from '../eval/decode-node.js';
import { cropOf } from '../eval/sources.js';
import { IMAGENET_MEAN, IMAGENET_STD, type Preprocess } from '../models/registry.js';
import { parseCommand, parseSeverities } from './common.js';

const CROP: Preprocess = {
  size: 224,
  resizeMode: 'short',
  cropPct: 224 / 256,
  interpolation: 'bilinear',
  mean: IMAGENET_MEAN,
  std: IMAGENET_STD,
};

export async function corruptCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    input: { type: 'string' },
    corruption: { type: 'string', default: 'all' },
    severity: { type: 'string', default: 'all' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string' },
  });
  if (!values.input || !values.out)
    throw new Error(
      'usage: npx cnnlab corrupt --input IMAGE|FOLDER --corruption NAME|all --severity 1-5|all --out DIR',
    );
  const known = corruptionNames();
  const names = values.corruption === 'all' ? known : values.corruption!.split(',');
  for (const n of names)
    if (!known.includes(n)) throw new Error(`unknown corruption "${n}"; known: ${known.join(', ')}`);
  const severities = parseSeverities(values.severity === 'all' ? '1-5' : values.severity!);
  const seed = Number(values.seed);
  const files = statSync(values.input).isDirectory()
    ? readdirSync(values.input)
        .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
        .sort()
        .map((f) => path.join(values.input!, f))
    : [values.input];
  if (!files.length) throw new Error(`${values.input}: no JPEG, PNG or WebP images`);
  const device = await createDevice();
  try {
    for (const [index, file] of files.entries()) {
      const crop = cropOf(await decodeImageFile(file), CROP);
      const stem = path.basename(file).replace(/\.[^.]+$/, '');
      for (const name of names) {
        for (const severity of severities) {
          const g = new Graph();
          g.input('x', [1, 224, 224, 3]);
          g.input('ids', [1]);
          g.markOutputs(addCorruption(g, 'x', 'ids', { name, severity, seed }));
          const plan = await compile(device, g);
          const y = (await plan.run({ x: crop, ids: new Float32Array([index]) })).outputs[g.outputs[0]].data;
          plan.dispose();
          const dir = path.join(values.out, name, String(severity));
          mkdirSync(dir, { recursive: true });
          const px = Buffer.from(Uint8Array.from(y, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255)));
          await sharp(px, { raw: { width: 224, height: 224, channels: 3 } })
            .png()
            .toFile(path.join(dir, `${stem}.png`));
        }
      }
      console.log(
        `${file}: ${names.length} corruptions × ${severities.length} severities → ${values.out}/<corruption>/<severity>/${stem}.png`,
      );
    }
  } finally {
    device.destroy();
  }
  return 0;
}
