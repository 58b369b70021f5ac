// `npx cnnlab engine-demo`: a small network with every kernel family, checked against the CPU
// reference, with what ran, how long it took and a per-kernel profile; in Node or in the page.

import { writeFileSync } from 'node:fs';
import { type DemoReport, formatDemo, runDemo } from '../bench/demo.js';
import { createDevice } from '../engine/device.js';
import { WEB_ROOT, int, oneOf, parseCommand, withPage } from './common.js';

export async function engineDemoCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    runtime: { type: 'string', default: 'chrome' },
    size: { type: 'string', default: '64' },
    batch: { type: 'string', default: '1' },
    iters: { type: 'string', default: '5' },
    json: { type: 'string' },
  });
  const opts = {
    size: int('size', values.size!),
    batch: int('batch', values.batch!),
    iters: int('iters', values.iters!),
  };
  const runtime = oneOf('runtime', values.runtime, ['chrome', 'node']);
  const log = (s: string) => console.log(s);
  let report: DemoReport;
  if (runtime === 'node') {
    const device = await createDevice();
    report = await runDemo(device, { ...opts, log });
    device.destroy();
  } else {
    report = await withPage(
      { '/': WEB_ROOT },
      (page, url) => {
        log(`serving the page at ${url}; running in headless Chromium`);
        return page.evaluate(async (o) => {
          const c = window.cnnlab;
          return c.runDemo(await c.getDevice(), { ...o, log: (s: string) => window.cnnlabLog?.(s) });
        }, opts);
      },
      log,
    );
  }
  console.log(`\n${formatDemo(report)}`);
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  return report.maxAbsDiff <= 1e-3 * Math.max(1, report.maxAbsRef) ? 0 : 1;
}
