// summary.json → the robustness report: a terminal table, and the data the HTML page
// (report/robustness.ts) renders, for a robustness run (and the transfer results of the same
// backbone, when there are any).
//
// The chart series are derived here, in typed code, with the same key parsing and ordering the
// tables use, and inlined into the page as JSON beside the summary; the report chart module
// (report/charts/robustness.ts) only styles and draws them.
//
// summary.json comes through JSON, so every number may be null (a NaN written out) and every
// map may be empty: each section is rendered only when it has data, and missing numbers read '—'.

import { chartsBundle } from '../report/charts-bundle.js';
import type { RobustnessCharts, XY } from '../report/charts/robustness.js';
import { fix, isNum, type Num, numericKeys, pct } from '../report/format.js';
import { viridis } from '../report/palette.js';
import { incompleteNote, locationRange, robustnessHtml } from '../report/robustness.js';
import { IMAGENET_C_CORRUPTIONS } from './metrics.js';
import type { Summary, TransferSummary } from './summary-schema.js';

export type { TransferSummary } from './summary-schema.js';

// ---- keys ----------------------------------------------------------------------------------

/** For chart data: a fraction → percent, null when missing (Chart.js leaves a gap). */
const toPct = (x: Num): number | null => (isNum(x) ? 100 * x : null);

/** The 15 mCE corruptions in ImageNet-C order, then the extras alphabetically. */
function corruptionOrder(names: Iterable<string>): string[] {
  const set = new Set(names);
  const known: string[] = IMAGENET_C_CORRUPTIONS.filter((c) => set.has(c));
  return [...known, ...[...set].filter((c) => !known.includes(c)).sort()];
}
const isMceCorruption = (c: string) => (IMAGENET_C_CORRUPTIONS as readonly string[]).includes(c);

/** Severities across all corruptions: 1..5 always, plus any others present. */
function severitiesOf(s: Summary): string[] {
  const set = new Set(['1', '2', '3', '4', '5']);
  for (const bySev of Object.values(s.corruptions)) for (const k of Object.keys(bySev)) set.add(k);
  return numericKeys(set);
}

/** Rotation keys are 'area@angle' ('0.50@21'); location keys 'cx,cy' ('0.25,0.50'). */
function parsePair(key: string, sep: string): [number, number] | undefined {
  const parts = key.split(sep);
  if (parts.length !== 2) return undefined;
  const [a, b] = parts.map((p) => Number(p.trim()));
  return Number.isFinite(a) && Number.isFinite(b) ? [a, b] : undefined;
}

/** The transfer results to show: the caller's, else a recognisable `s.transfer`, keeping only well-formed fields. */
function transferOf(s: Summary, given: TransferSummary | undefined): { t?: TransferSummary; raw?: unknown } {
  const v = given ?? s.transfer;
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object') return { raw: v };
  const o = v as Record<string, unknown>;
  const t: TransferSummary = {};
  if (o.fewshot && typeof o.fewshot === 'object') {
    const fs: NonNullable<TransferSummary['fewshot']> = {};
    for (const [k, r] of Object.entries(o.fewshot as Record<string, unknown>)) {
      const e = r as { mean?: unknown; std?: unknown; per_seed?: unknown } | null;
      if (e && isNum(e.mean)) {
        fs[k] = {
          mean: e.mean,
          std: isNum(e.std) ? e.std : NaN,
          per_seed: Array.isArray(e.per_seed) ? e.per_seed.filter(isNum) : [],
        };
      }
    }
    if (Object.keys(fs).length) t.fewshot = fs;
  }
  const p = o.probe as { accuracy?: unknown; l2?: unknown } | undefined;
  if (p && isNum(p.accuracy)) t.probe = { accuracy: p.accuracy, l2: isNum(p.l2) ? p.l2 : NaN };
  const v1 = o.vtab1k as { accuracy?: unknown; l2?: unknown } | undefined;
  if (v1 && isNum(v1.accuracy)) t.vtab1k = { accuracy: v1.accuracy, ...(isNum(v1.l2) ? { l2: v1.l2 } : {}) };
  if (typeof o.features === 'string') t.features = o.features;
  return t.fewshot || t.probe || t.vtab1k ? { t } : { raw: v };
}

// ---- terminal table ------------------------------------------------------------------------

/** Clean metrics, one row per corruption (top-1 per severity, CE, relative CE), mCE, sweeps, resolutions, unreadable. */
export function formatRobustnessTable(s: Summary): string {
  const out = [
    `${s.model} · weights ${s.weights} · data ${s.data} · ${s.created}${s.shards ? ` · shards ${s.shards.merged.join(',')} of ${s.shards.of}` : ''}`,
  ];
  const c = s.clean;
  out.push(
    c
      ? `clean (n=${c.n}): top-1 ${pct(c.top1, 2)}  top-5 ${pct(c.top5, 2)}  ECE (100 adaptive bins) ${fix(c.ece?.adaptive_100, 4)}  ` +
          `ECE (15 equal-width bins) ${fix(c.ece?.equal_width_15, 4)}  NLL ${fix(c.nll, 3)}  Brier ${fix(c.brier, 4)}`
      : 'clean: not run',
  );
  const names = corruptionOrder(Object.keys(s.corruptions));
  if (names.length) {
    const sevs = severitiesOf(s);
    const head = ['corruption', ...sevs.map((k) => `s${k}`), 'CE', 'rel CE'];
    const rows = names.map((n) => [
      isMceCorruption(n) ? n : `${n}*`,
      ...sevs.map((k) => pct(s.corruptions[n][k]?.top1)),
      pct(s.mce?.per_corruption[n]),
      pct(s.relative_mce?.per_corruption[n]),
    ]);
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ');
    out.push(line(head), ...rows.map(line));
    if (names.some((n) => !isMceCorruption(n))) out.push('* extra corruption, not part of mCE');
  }
  if (s.mce || s.relative_mce) {
    out.push(
      `mCE ${pct(s.mce?.value)}${incompleteNote(s.mce)} · relative mCE ${pct(s.relative_mce?.value)}${incompleteNote(s.relative_mce)}`,
    );
  }
  const sweeps = (['size', 'location', 'rotation'] as const).filter((k) => s.sweeps[k]);
  if (sweeps.length)
    out.push(`SI-Score sweep means: ${sweeps.map((k) => `${k} ${pct(s.sweeps[k]!.mean)}`).join(' · ')}`);
  const res = numericKeys(Object.keys(s.resolutions));
  if (res.length)
    out.push(`top-1 by test resolution: ${res.map((r) => `${r} ${pct(s.resolutions[r].top1)}`).join(' · ')}`);
  const { t } = transferOf(s, undefined);
  if (t) {
    const parts = [
      ...numericKeys(Object.keys(t.fewshot ?? {})).map((k) => `${k}-shot ${pct(t.fewshot![k].mean)}`),
      ...(t.probe ? [`linear probe ${pct(t.probe.accuracy)}`] : []),
      ...(t.vtab1k ? [`VTAB-1k ${pct(t.vtab1k.accuracy)}`] : []),
    ];
    out.push(`transfer: ${parts.join(' · ')}`);
  }
  out.push(`unreadable images: ${s.unreadable.length}`);
  return out.join('\n');
}

// ---- chart series (computed here, drawn by the page) ---------------------------------------

/** Smallest gap between sorted distinct values (the grid step), 1 for a single value. */
function step(vals: number[]): number {
  let d = Infinity;
  for (let i = 1; i < vals.length; i++) d = Math.min(d, vals[i] - vals[i - 1]);
  return Number.isFinite(d) && d > 0 ? d : 1;
}

function chartData(s: Summary, t: TransferSummary | undefined): RobustnessCharts {
  const d: RobustnessCharts = {};
  const names = corruptionOrder(Object.keys(s.corruptions));
  if (names.length) {
    const sevs = severitiesOf(s).filter((k) => names.some((n) => s.corruptions[n][k]));
    d.severity = {
      labels: ['clean', ...sevs],
      series: names.map((n) => ({
        label: n,
        data: [toPct(s.clean?.top1), ...sevs.map((k) => toPct(s.corruptions[n][k]?.top1))],
      })),
    };
  }
  const ceNames = corruptionOrder(Object.keys(s.mce?.per_corruption ?? {}));
  if (s.mce && ceNames.length) {
    const rel = s.relative_mce;
    d.ce = {
      labels: ceNames,
      ce: ceNames.map((n) => toPct(s.mce!.per_corruption[n])),
      ...(rel && Object.keys(rel.per_corruption).length
        ? { rel: ceNames.map((n) => toPct(rel.per_corruption[n])) }
        : {}),
      mce: toPct(s.mce.value),
    };
  }
  const bins = s.clean?.reliability ?? [];
  if (bins.some((b) => b.count > 0)) {
    const m = bins.length;
    d.reliability = {
      labels: bins.map((_, i) => `${(i / m).toFixed(2)}–${((i + 1) / m).toFixed(2)}`),
      acc: bins.map((b) => (b.count > 0 ? toPct(b.acc) : null)),
      conf: bins.map((b) => (b.count > 0 ? toPct(b.conf) : null)),
      count: bins.map((b) => b.count),
      diag: bins.map((_, i) => (100 * (i + 0.5)) / m),
    };
  }
  const size = s.sweeps.size?.accuracy;
  if (size && Object.keys(size).length) {
    d.size = numericKeys(Object.keys(size))
      .filter((k) => isNum(Number(k)))
      .map((k) => ({ x: 100 * Number(k), y: toPct(size[k]) }));
  }
  const rot = s.sweeps.rotation?.accuracy;
  if (rot && Object.keys(rot).length) {
    const byArea = new Map<number, XY[]>();
    for (const [k, v] of Object.entries(rot)) {
      const p = parsePair(k, '@');
      if (!p) continue;
      if (!byArea.has(p[0])) byArea.set(p[0], []);
      byArea.get(p[0])!.push({ x: p[1], y: toPct(v) });
    }
    d.rotation = [...byArea.keys()]
      .sort((a, b) => a - b)
      .map((a) => ({
        label: `area ${(100 * a).toFixed(0)}%`,
        data: byArea.get(a)!.sort((p, q) => p.x - q.x),
      }));
  }
  const loc = s.sweeps.location?.accuracy;
  if (loc && Object.keys(loc).length) {
    const cells = Object.entries(loc).flatMap(([k, v]) => {
      const p = parsePair(k, ',');
      return p && isNum(v) ? [{ x: p[0], y: p[1], v: 100 * v, c: '' }] : [];
    });
    if (cells.length) {
      const xs = [...new Set(cells.map((c) => c.x))].sort((a, b) => a - b);
      const ys = [...new Set(cells.map((c) => c.y))].sort((a, b) => a - b);
      const dx = step(xs),
        dy = step(ys);
      const { lo, hi } = locationRange(cells.map((c) => c.v / 100));
      for (const c of cells) c.c = viridis(hi > lo ? (c.v / 100 - lo) / (hi - lo) : 0.5);
      d.location = {
        cells,
        xs,
        ys,
        dx,
        dy,
        xr: [xs[0] - dx / 2, xs[xs.length - 1] + dx / 2],
        yr: [ys[0] - dy / 2, ys[ys.length - 1] + dy / 2],
      };
    }
  }
  const res = numericKeys(Object.keys(s.resolutions)).filter((k) => isNum(Number(k)));
  if (res.length >= 2) {
    d.resolution = {
      top1: res.map((k) => ({ x: Number(k), y: toPct(s.resolutions[k].top1) })),
      top5: res.map((k) => ({ x: Number(k), y: toPct(s.resolutions[k].top5) })),
      native: s.preprocessing?.size,
    };
  }
  const fs = t?.fewshot;
  const shots = numericKeys(Object.keys(fs ?? {})).filter((k) => Number(k) > 0);
  if (fs && shots.length) {
    d.fewshot = {
      mean: shots.map((k) => ({ x: Number(k), y: toPct(fs[k].mean) })),
      seeds: shots.flatMap((k) => fs[k].per_seed.map((a) => ({ x: Number(k), y: toPct(a) }))),
      log: Number(shots[shots.length - 1]) / Number(shots[0]) > 4,
    };
  }
  return d;
}

// ---- the page --------------------------------------------------------------------------------

/**
 * The report page (report/robustness.ts): static tables and text, with charts drawn by Chart.js
 * (inlined from `o.chartJs`) and the report chart module (`o.charts`; read from its bundle in
 * dist/ when not given, as in Node).
 */
export function renderRobustnessReport(
  s: Summary,
  o: { chartJs: string; charts?: string; transfer?: TransferSummary },
): string {
  const transfer = transferOf(s, o.transfer);
  const names = corruptionOrder(Object.keys(s.corruptions));
  return robustnessHtml(
    {
      summary: s,
      transferData: o.transfer,
      transfer,
      corruptions: names.map((name) => ({ name, mce: isMceCorruption(name) })),
      severities: severitiesOf(s),
      charts: chartData(s, transfer.t),
    },
    { chartJs: o.chartJs, charts: o.charts ?? chartsBundle() },
  );
}
