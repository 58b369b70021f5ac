// `npx cnnlab serve`: the page on http://localhost:PORT for any WebGPU browser.

import { existsSync } from 'node:fs';
import path from 'node:path';
import { listModels } from '../models/registry.js';
import { REPO_ROOT, WEB_ROOT, parseCommand, resolveDist } from './common.js';
import { serve } from './serve.js';

/** What `serve` serves: the page, the peers' and Chart.js's files, and each built-in weights file (not their folder). */
export function pageMounts(): Record<string, string> {
  const mounts: Record<string, string> = {
    '/': WEB_ROOT,
    '/vendor/ort/': resolveDist('onnxruntime-web', '.'),
    '/vendor/litert/': resolveDist('@litertjs/core', '../wasm'),
    '/vendor/chart/': resolveDist('chart.js', '.'),
  };
  for (const def of listModels()) {
    const file = def.builtinWeights && path.join(REPO_ROOT, def.builtinWeights);
    if (file && existsSync(file)) mounts[`/${def.builtinWeights}`] = file;
  }
  return mounts;
}

export async function serveCmd(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, { port: { type: 'string', default: '8080' } });
  const s = await serve(pageMounts(), Number(values.port));
  console.log(`cnnlab page at ${s.url}/ (Ctrl-C to stop)`);
  await new Promise(() => {});
  return 0;
}
