// The report chart module (report/charts/) as the reports inline it: build.mjs bundles it into
// dist/web/report-charts.js, where the page fetches it (to render a report in place) and where
// Node reads it: beside the CLI bundle (dist/cli.mjs) or, from source, in the repository's dist/.

/** Where the bundle may be; the first that exists wins. */
export const CHARTS_BUNDLE_PATHS = [
  new URL('./web/report-charts.js', import.meta.url), // this module bundled into dist/cli.mjs
  new URL('../dist/web/report-charts.js', import.meta.url), // this module run from source (report/)
];

/**
 * The bundled chart module's source (Node only: the page passes the text it fetched). Throws,
 * naming the command to run, when the bundle has not been built.
 */
export function chartsBundle(paths: URL[] = CHARTS_BUNDLE_PATHS): string {
  // A static import of node:fs would break the page bundle, which reaches this module through the reports.
  const fs = globalThis.process?.getBuiltinModule?.('node:fs');
  if (!fs) {
    throw new Error('the report chart module is read from disk only in Node (>= 20.16); pass its text as `charts`');
  }
  const found = paths.find((p) => fs.existsSync(p));
  if (!found) {
    const where = paths.map((p) => p.pathname).join(' or ');
    throw new Error(`the report chart module is not built (no ${where}): run \`node build.mjs\` (npm run build) first`);
  }
  return fs.readFileSync(found, 'utf8');
}
