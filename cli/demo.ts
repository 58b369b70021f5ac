// `npx cnnlab demo`, the README's main command: a robustness run of the built-in model on the
// synthetic test set, then few-shot transfer to the held-out synthetic classes, into one folder.

import path from 'node:path';
import { parseCommand } from './common.js';
import { robustnessCmd } from './robustness.js';
import { transferCmd } from './transfer.js';

export async function demoCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { out: { type: 'string', default: 'out/demo' } });
  const out = values.out!;
  console.log(
    `cnnlab demo: robustness of the built-in synthetic-class MobileNetV2, then few-shot transfer, into ${out}/\n`,
  );
  const t0 = performance.now();
  const r = await robustnessCmd(['--out', out, '--resume']);
  if (r) return r;
  const t = await transferCmd(['--out', out, '--per-class', '10', '--shots', '1,5,10']);
  console.log(
    `\ndemo finished in ${((performance.now() - t0) / 1000).toFixed(0)} s; open ${path.join(out, 'report.html')}`,
  );
  return t;
}
