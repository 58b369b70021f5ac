// How build.mjs bundles the report chart module: one classic script, no source map, which every
// report inlines after Chart.js (report/page.ts). tests/report bundle it again in memory with
// these options to check that dist/ holds the current one.
export const reportChartsBuild = {
  entryPoints: { 'report-charts': 'report/charts/main.ts' },
  outdir: 'dist/web',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  logLevel: 'warning',
};
