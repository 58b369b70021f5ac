// `npx cnnlab demo`, the README's main command, into one folder: a robustness run of the built-in
// model on the synthetic test set; few-shot linear transfer of its frozen features to the 8
// held-out synthetic classes; then the whole network fine-tuned on those classes' training images
// (docs/finetune.md, "The demo"), tested on the same test images as transfer. It ends with the
// two side by side.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FinetuneSummary } from '../eval/finetune/summary.js';
import { SYNTH_HELDOUT_TEST_PER_CLASS } from '../eval/sources.js';
import type { TransferSummary } from '../eval/summary-schema.js';
import { SYNTH_HELDOUT_CLASSES } from '../eval/synth.js';
import { parseCommand } from './common.js';
import { finetuneCmd } from './finetune.js';
import { robustnessCmd } from './robustness.js';
import { transferCmd } from './transfer.js';

/** Held-out training images per class: enough that each k-shot sample is a real draw. */
export const DEMO_PER_CLASS = 30;

/** Few-shot transfer: shots per class and how many seeded draws of them. */
export const DEMO_TRANSFER = ['--shots', '1,5,10', '--seeds', '5'];

/**
 * Fine-tuning (docs/finetune.md, "The demo"): BiT-HyperRule scaled to a short run at a small crop,
 * with a base learning rate chosen on the seed-1 synthetic task (other images, both splits), not on
 * the images reported here.
 */
export const DEMO_FINETUNE = [
  '--schedule',
  'bit-hyperrule',
  '--steps',
  '128',
  '--batch',
  '16',
  '--size',
  '64',
  '--lr',
  '0.1',
  '--checkpoint-every',
  '32',
];

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The demo's closing lines: fine-tuned test accuracy beside k-shot linear transfer. */
export function demoSummaryLines(transfer: TransferSummary | undefined, ft: FinetuneSummary | undefined): string[] {
  const lines = [
    `held-out synthetic classes (${SYNTH_HELDOUT_CLASSES.length}), the same ${SYNTH_HELDOUT_CLASSES.length * SYNTH_HELDOUT_TEST_PER_CLASS} test images:`,
  ];
  for (const [k, r] of Object.entries(transfer?.fewshot ?? {}).sort(([a], [b]) => Number(a) - Number(b)))
    lines.push(
      `  ${`${k}-shot linear (frozen features)`.padEnd(36)} ${pct(r.mean)} ± ${(100 * r.std).toFixed(1)} over ${r.per_seed.length} draws`,
    );
  if (ft?.final.test !== undefined)
    lines.push(
      `  ${'fine-tuned (whole network)'.padEnd(36)} ${pct(ft.final.test)} (${ft.phases[ft.phases.length - 1].examples} images, ${ft.steps} steps, ${ft.recipe.crop.size} px)`,
    );
  return lines;
}

export async function demoCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { out: { type: 'string', default: 'out/demo' } });
  const out = values.out!;
  console.log(
    `cnnlab demo: robustness of the built-in synthetic-class MobileNetV2, then few-shot transfer and fine-tuning, into ${out}/\n`,
  );
  const t0 = performance.now();
  const r = await robustnessCmd(['--out', out, '--resume']);
  if (r) return r;
  const per = ['--per-class', String(DEMO_PER_CLASS)];
  const t = await transferCmd(['--out', out, ...per, ...DEMO_TRANSFER]);
  if (t) return t;
  const f = await finetuneCmd(['--out', out, ...per, ...DEMO_FINETUNE, '--resume']);
  if (f) return f;
  const s = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as {
    transfer?: TransferSummary;
    finetune?: FinetuneSummary;
  };
  console.log(`\n${demoSummaryLines(s.transfer, s.finetune).join('\n')}`);
  console.log(
    `\ndemo finished in ${((performance.now() - t0) / 1000).toFixed(0)} s; open ${path.join(out, 'report.html')}`,
  );
  return 0;
}
