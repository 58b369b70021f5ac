// esbuild: the page (web/ → dist/web), the report chart module (report/charts/ →
// dist/web/report-charts.js, inlined into every report.html) and the Node CLI (cli/ → dist/cli.mjs).
import { build } from 'esbuild';
import { cpSync, mkdirSync } from 'node:fs';
import { reportChartsBuild } from './report/charts/build-options.mjs';

const common = { bundle: true, sourcemap: true, target: 'es2022', logLevel: 'warning', format: 'esm' };

mkdirSync('dist/web', { recursive: true });
for (const f of ['index.html', 'style.css']) cpSync(`web/${f}`, `dist/web/${f}`);

await Promise.all([
  build({
    ...common,
    entryPoints: { main: 'web/main.ts' },
    outdir: 'dist/web',
    platform: 'browser',
    // The benchmark peers (ORT, TF.js) are loaded on demand, in chunks of their own.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    // Node-only branches (engine/device.ts, file writers in eval/) import these; the browser never reaches them.
    external: ['webgpu', 'node:*', 'sharp'],
  }),
  build(reportChartsBuild),
  build({
    ...common,
    entryPoints: { cli: 'cli/main.ts' },
    outdir: 'dist',
    outExtension: { '.js': '.mjs' },
    platform: 'node',
    packages: 'external',
  }),
]);
