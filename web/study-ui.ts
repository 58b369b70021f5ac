// The study section of the page: open a study.json written by `npx cnnlab study` (file picker)
// and read its report in place, the same page the CLI writes to report.html, in an iframe.

import { parseStudyJson } from '../eval/study.js';
import { studyHtml } from '../report/study.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** Chart.js and the report chart module, as the served page has them. */
async function chartScripts(): Promise<{ chartJs: string; charts: string }> {
  const [chartJs, charts] = await Promise.all(
    ['/vendor/chart/chart.umd.js', '/report-charts.js'].map(async (u) => {
      const r = await fetch(u);
      if (!r.ok) throw new Error(`${u}: ${r.status} ${r.statusText}`);
      return r.text();
    }),
  );
  return { chartJs, charts };
}

export function setupStudyUi(): void {
  const input = $<HTMLInputElement>('study-file');
  input.addEventListener('change', async () => {
    const out = $('study-out');
    const file = input.files?.[0];
    if (!file) return;
    try {
      const study = parseStudyJson(await file.text(), file.name);
      $<HTMLIFrameElement>('study-report').srcdoc = studyHtml(study, await chartScripts());
      out.textContent = `${file.name}: ${study.runs.length} runs, created ${study.created}`;
    } catch (e) {
      out.textContent = `error: ${(e as Error).message}`;
    }
  });
}
