// The entry point build.mjs bundles into dist/web/report-charts.js, which every report inlines
// after Chart.js: it draws the charts of whichever report the page is, found by its data element.

import { BENCH_DATA_ID, drawBenchCharts } from './bench.js';
import { ROBUSTNESS_DATA_ID, drawRobustnessCharts } from './robustness.js';
import { STUDY_DATA_ID, drawStudyCharts } from './study.js';

const reports: [string, () => void][] = [
  [ROBUSTNESS_DATA_ID, drawRobustnessCharts],
  [BENCH_DATA_ID, drawBenchCharts],
  [STUDY_DATA_ID, drawStudyCharts],
];
const found = reports.find(([id]) => document.getElementById(id));
if (!found) {
  const ids = reports.map(([id]) => `#${id}`).join(', ');
  throw new Error(`report charts: the page has none of the data elements ${ids}`);
}
found[1]();
