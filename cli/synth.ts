// `npx cnnlab synth`: the built-in synthetic dataset as an ImageFolder, or as cut-outs and backgrounds.

import { int, oneOf, parseCommand } from './common.js';

export async function synthCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    out: { type: 'string' },
    'per-class': { type: 'string', default: '100' },
    classes: { type: 'string', default: 'train' },
    split: { type: 'string', default: 'train' },
    size: { type: 'string', default: '224' },
    seed: { type: 'string', default: '0' },
    cutouts: { type: 'boolean', default: false },
  });
  if (!values.out) throw new Error('--out DIR is required');
  const synth = { ...(await import('../eval/synth.js')), ...(await import('../eval/synth-files.js')) };
  const classes = {
    train: synth.SYNTH_TRAIN_CLASSES,
    heldout: synth.SYNTH_HELDOUT_CLASSES,
    all: synth.SYNTH_CLASSES.map((_, i) => i),
  }[oneOf('classes', values.classes, ['train', 'heldout', 'all'])];
  const split = oneOf('split', values.split, ['train', 'val', 'test']);
  const perClass = int('per-class', values['per-class']!),
    size = int('size', values.size!),
    seed = Number(values.seed);
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
  if (values.cutouts) {
    const r = await synth.writeCutouts(values.out, { classes: [...classes], perClass, size, seed });
    console.log(
      `wrote ${r.foregrounds.length} cut-outs and ${r.backgrounds.length} backgrounds to ${values.out} in ${secs()} s`,
    );
  } else {
    const files = await synth.writeSynthImageFolder(values.out, { classes: [...classes], perClass, size, seed, split });
    console.log(
      `wrote ${files.length} images (${classes.length} classes × ${perClass}) to ${values.out} in ${secs()} s`,
    );
  }
  return 0;
}
