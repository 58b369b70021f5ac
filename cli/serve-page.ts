// `npx cnnlab serve`: the page on http://localhost:PORT for any WebGPU browser.

import path from 'node:path';
import { WEB_ROOT, parseCommand, resolveDist } from './common.js';
import { serve } from './serve.js';

/** What `serve` serves: the page, the peers' and Chart.js's files, and the built-in weights. */
export function pageMounts(): Record<string, string> {
  return {
    '/': WEB_ROOT, '/vendor/ort/': resolveDist('onnxruntime-web', '.'), '/vendor/chart/': resolveDist('chart.js', '.'),
    '/models/weights/': path.join(path.dirname(WEB_ROOT), '..', 'models', 'weights'),
  };
}

export async function serveCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { port: { type: 'string', default: '8080' } });
  const s = await serve(pageMounts(), Number(values.port));
  console.log(`cnnlab page at ${s.url}/ (Ctrl-C to stop)`);
  await new Promise(() => {});
  return 0;
}
