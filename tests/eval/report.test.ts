// The robustness report: the HTML page (inlined JSON, escaping, sections present exactly when
// the summary has their data) and the terminal table, on a hand-built summary.json; then the
// page with the real Chart.js UMD build opened from file:// in headless Chromium, where every
// chart must be drawn without errors and without a request leaving the page.

import { describe, expect, it } from 'vitest';
import { formatRobustnessTable, renderRobustnessReport, type TransferSummary } from '../../eval/report.js';
import type { ConditionMetrics, Summary } from '../../eval/summary-schema.js';
import { escapeHtml } from '../../report/html.js';
import { chartJsSource, haveChromium, openReport } from '../report-harness.js';

const EVIL = 'cannot decode: <script>alert("pwned")</script> & "quotes" \'single\'';
const EVIL_ID = 'n01440364/<img src=x onerror="window.__hacked=1">.jpg';

const cm = (top1: number, n = 50): ConditionMetrics => ({ n, top1, top5: Math.min(1, top1 + 0.15) });

function summary(): Summary {
  const sev = (base: number, drop: number) =>
    Object.fromEntries([1, 2, 3, 4, 5].map((s) => [String(s), cm(base - drop * s)]));
  // 5×5 location grid (cx,cy), two rotation areas × 18 angles, 20 sizes.
  const g = [0, 0.25, 0.5, 0.75, 1];
  const location = Object.fromEntries(
    g.flatMap((x) =>
      g.map((y) => [`${x.toFixed(2)},${y.toFixed(2)}`, 0.2 + 0.5 * (1 - Math.abs(x - 0.5) - Math.abs(y - 0.5))]),
    ),
  );
  const angles = Array.from({ length: 18 }, (_, i) => 1 + 20 * i);
  const rotation = Object.fromEntries(
    ['0.20', '0.80'].flatMap((a) =>
      angles.map((t) => [`${a}@${t}`, Number(a) * 0.6 + 0.1 * Math.cos((t * Math.PI) / 180)]),
    ),
  );
  const size = Object.fromEntries(
    Array.from({ length: 20 }, (_, i) => [((i + 1) * 0.05).toFixed(2), Math.min(0.9, 0.05 + 0.045 * i)]),
  );
  const sweep = (acc: Record<string, number>) => ({
    accuracy: acc,
    n: Object.fromEntries(Object.keys(acc).map((k) => [k, 12])),
    mean: Object.values(acc).reduce((a, b) => a + b, 0) / Object.keys(acc).length,
  });
  const missing = [
    'shot_noise',
    'impulse_noise',
    'defocus_blur',
    'glass_blur',
    'motion_blur',
    'zoom_blur',
    'snow',
    'fog',
    'brightness',
    'contrast',
    'elastic_transform',
    'pixelate',
    'jpeg_compression',
  ];
  return {
    version: 1,
    model: 'resnet50',
    weights: 'weights/resnet50.safetensors',
    data: '/data/imagenet/val',
    preprocessing: {
      size: 224,
      resizeMode: 'short',
      cropPct: 0.875,
      interpolation: 'bilinear',
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    },
    created: '2025-11-26T09:15:00.000Z',
    shards: { merged: [0, 1], of: 2 },
    clean: {
      n: 5000,
      top1: 0.7613,
      top5: 0.9286,
      nll: 0.9618,
      brier: 0.3342,
      ece: { adaptive_100: 0.0321, equal_width_15: 0.029 },
      reliability: Array.from({ length: 15 }, (_, i) =>
        i < 3
          ? { conf: NaN, acc: NaN, count: 0 } // empty bins, as NaN would come back from JSON: null
          : { conf: (i + 0.5) / 15, acc: Math.min(1, (i + 0.2) / 15), count: 10 * i },
      ),
    },
    corruptions: { gaussian_noise: sev(0.7, 0.1), frost: sev(0.65, 0.08), speckle_noise: sev(0.72, 0.06) },
    mce: { value: 0.7789, complete: false, missing, per_corruption: { gaussian_noise: 0.8123, frost: 0.7455 } },
    relative_mce: { value: 1.0512, complete: false, missing, per_corruption: { gaussian_noise: 1.1, frost: 1.0024 } },
    sweeps: { size: sweep(size), location: sweep(location), rotation: sweep(rotation) },
    resolutions: { '160': cm(0.701, 5000), '224': cm(0.7613, 5000), '288': cm(0.772, 5000) },
    unreadable: [
      { id: 'n01440364/broken.JPEG', error: 'VipsJpeg: Premature end of input file' },
      { id: EVIL_ID, error: EVIL },
    ],
  };
}

const transfer: TransferSummary = {
  fewshot: {
    '1': { mean: 0.31, std: 0.02, per_seed: [0.29, 0.31, 0.33] },
    '5': { mean: 0.55, std: 0.01, per_seed: [0.54, 0.55, 0.56] },
    '10': { mean: 0.63, std: 0.01, per_seed: [0.62, 0.63, 0.64] },
    '25': { mean: 0.71, std: 0.005, per_seed: [0.705, 0.71, 0.715] },
  },
  probe: { accuracy: 0.802, l2: 1024 },
  vtab1k: { accuracy: 0.654 },
  features: 'pre-logits (2048)',
};

/** The summary as it comes back from summary.json: NaN → null. */
const viaJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const FAKE_CHART = 'window.FAKE_CHART_JS_9c1e = 1;';

function jsonOf(html: string, id: string): unknown {
  const m = new RegExp(`<script type="application/json" id="${id}">([\\s\\S]*?)</script>`).exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]);
}

describe('renderRobustnessReport', () => {
  const s = viaJson(summary());
  const html = renderRobustnessReport(s, { chartJs: FAKE_CHART, transfer });

  it('inlines Chart.js, the summary and the transfer results, which round-trip', () => {
    expect(html).toContain(FAKE_CHART);
    expect(jsonOf(html, 'summary-data')).toEqual(s);
    expect(jsonOf(html, 'transfer-data')).toEqual(transfer);
    const charts = jsonOf(html, 'chart-data') as Record<string, unknown>;
    expect(Object.keys(charts).sort()).toEqual([
      'ce',
      'fewshot',
      'location',
      'reliability',
      'resolution',
      'rotation',
      'severity',
      'size',
    ]);
    expect(html).not.toMatch(/src="https?:|href="https?:/);
  });

  it('escapes strings from the JSON everywhere', () => {
    expect(html).toContain(escapeHtml(EVIL));
    expect(html).toContain(escapeHtml(EVIL_ID));
    expect(html).not.toContain('<script>alert');
    expect(html).not.toContain('<img src=x');
    // Five script tags: summary, transfer, chart series, Chart.js, the page's own script.
    expect(html.match(/<script\b/g)).toHaveLength(5);
    expect(html.match(/<\/script>/g)).toHaveLength(5);
    expect(html).toContain('\\u003cscript>alert(\\"pwned\\")\\u003c/script> & ');
  });

  it('has the header, the headline numbers, tables and how-to-read text', () => {
    for (const x of [
      'resnet50',
      'weights/resnet50.safetensors',
      '/data/imagenet/val',
      '2025-11-26T09:15:00.000Z',
      '0, 1 of 2 (0-based)',
      '224×224',
      '= 256, then centre crop',
      'bilinear',
      '0.875',
      '0.485, 0.456, 0.406',
      '0.229, 0.224, 0.225',
    ]) {
      expect(html).toContain(x);
    }
    const tile = (label: string, value: string) => `<span>${escapeHtml(label)}</span><b>${escapeHtml(value)}</b>`;
    expect(html).toContain(tile('top-1', '76.13%'));
    expect(html).toContain(tile('top-5', '92.86%'));
    expect(html).toContain(tile('ECE (100 adaptive bins)', '0.0321'));
    expect(html).toContain(tile('ECE (15 equal-width bins)', '0.0290'));
    expect(html).toContain(tile('NLL', '0.962'));
    expect(html).toContain(tile('Brier', '0.3342'));
    expect(html).toContain(tile('mCE', '77.9%'));
    expect(html).toContain(tile('relative mCE', '105.1%'));
    expect(html).toContain('(incomplete: missing shot_noise, impulse_noise, defocus_blur,');
    expect(html).toContain(tile('location', pct(s.sweeps.location!.mean)));
    expect(html).toContain(tile('unreadable images', '2'));
    expect(html).toContain(tile('10-shot linear', '63.0%'));
    expect(html).toContain(tile('VTAB-1k', '65.4%'));
    // Corruption table: ImageNet-C order, then the extra; CE and relative CE; the mCE footer.
    const at = ['gaussian_noise', 'frost', 'speckle_noise'].map((c) => html.indexOf(`<tr><td>${c}`));
    expect(at.every((i) => i > 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(html).toContain('speckle_noise<span>extra: not in mCE</span>');
    expect(html).toMatch(
      /<tr><td>gaussian_noise<\/td><td class="num" title="n = 50 · top-5 75.0%">60.0%<\/td>.*<td class="num">40.0%<\/td><td class="num">81.2%<\/td><td class="num">110.0%<\/td><\/tr>/,
    );
    expect(html).toContain('<td class="num">77.9%</td><td class="num">105.1%</td></tr></tfoot>');
    // Resolutions with the change from clean; the native one marked.
    expect(html).toContain(
      '<td>160×160</td><td class="num">5000</td><td class="num">70.1%</td><td class="num">85.1%</td><td class="num">−6.0</td>',
    );
    expect(html).toContain('<tr class="native"><td>224×224<span>');
    // Transfer table and details.
    expect(html).toContain(
      '<td>25</td><td class="num">71.0%</td><td class="num">0.5%</td><td class="num">70.5%, 71.0%, 71.5%</td>',
    );
    expect(html).toContain('pre-logits (2048)');
    expect(html).toContain('80.2% (L2 1024)');
    for (const id of ['severity', 'ce', 'reliability', 'size', 'rotation', 'location', 'resolution', 'fewshot'])
      expect(html).toContain(`id="chart-${id}"`);
    expect(html).toContain('(5×5 grid)');
    for (const x of [
      'How to read this',
      'AlexNet-normalised',
      'lower is better',
      'GPU ports of ImageNet-C',
      'generated frost texture',
      '100 equal-mass bins',
      'SI-Score',
    ]) {
      expect(html).toContain(x);
    }
  });

  it('leaves out sections without data', () => {
    const bare: Summary = {
      ...summary(),
      shards: null,
      corruptions: {},
      mce: null,
      relative_mce: null,
      sweeps: {},
      resolutions: {},
      unreadable: [],
      clean: { ...summary().clean!, reliability: [] },
    };
    const h = renderRobustnessReport(bare, { chartJs: FAKE_CHART });
    for (const x of [
      '<h2>Charts</h2>',
      '<h2>ImageNet-C</h2>',
      '<h2>Test resolution</h2>',
      '<h2>Unreadable images</h2>',
      '<h2>Transfer</h2>',
      'id="chart-',
      'id="transfer-data"',
      'id="chart-data"',
      FAKE_CHART,
      'mCE',
      'SI-Score sweep means',
    ]) {
      expect(h).not.toContain(x);
    }
    expect(h).toContain('single run');
    expect(h).toContain('ECE (100 adaptive bins)');
    expect(h).toContain('<span>unreadable images</span><b>0</b>');
    expect(h.match(/<script\b/g)).toHaveLength(1);
    // One resolution: a table row, no chart; only a size sweep: only its chart.
    const some = renderRobustnessReport(
      { ...bare, resolutions: { '224': cm(0.76) }, sweeps: { size: summary().sweeps.size } },
      { chartJs: FAKE_CHART },
    );
    expect(some).toContain('<h2>Test resolution</h2>');
    expect(some).not.toContain('id="chart-resolution"');
    expect(some).toContain('id="chart-size"');
    expect(some).not.toContain('id="chart-location"');
    expect(some).not.toContain('id="chart-rotation"');
  });

  it('shows transfer results that the summary itself carries', () => {
    const h = renderRobustnessReport({ ...summary(), transfer }, { chartJs: FAKE_CHART });
    expect(h).toContain('<h2>Transfer</h2>');
    expect(h).toContain('id="chart-fewshot"');
    expect(h).not.toContain('id="transfer-data"');
    const odd = renderRobustnessReport({ ...summary(), transfer: { task: '<b>x</b>' } }, { chartJs: FAKE_CHART });
    expect(odd).toContain('<h2>Transfer</h2>');
    expect(odd).toContain('&lt;b&gt;x&lt;/b&gt;');
    expect(odd).not.toContain('id="chart-fewshot"');
  });
});

function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

describe('formatRobustnessTable', () => {
  it('lists clean metrics, corruption rows, mCE, sweeps, resolutions and unreadable files', () => {
    const t = formatRobustnessTable(viaJson({ ...summary(), transfer }));
    const lines = t.split('\n');
    expect(lines[0]).toBe(
      'resnet50 · weights weights/resnet50.safetensors · data /data/imagenet/val · 2025-11-26T09:15:00.000Z · shards 0,1 of 2',
    );
    expect(lines[1]).toBe(
      'clean (n=5000): top-1 76.13%  top-5 92.86%  ECE (100 adaptive bins) 0.0321  ECE (15 equal-width bins) 0.0290  NLL 0.962  Brier 0.3342',
    );
    expect(lines[2]).toMatch(/^corruption\s+s1\s+s2\s+s3\s+s4\s+s5\s+CE\s+rel CE$/);
    expect(lines[3]).toMatch(/^gaussian_noise\s+60\.0%\s+50\.0%\s+40\.0%\s+30\.0%\s+20\.0%\s+81\.2%\s+110\.0%$/);
    expect(lines[4]).toMatch(/^frost\s+57\.0%\s+49\.0%\s+41\.0%\s+33\.0%\s+25\.0%\s+74\.6%\s+100\.2%$/);
    expect(lines[5]).toMatch(/^speckle_noise\*\s+66\.0%.*\s+—\s+—$/);
    expect(new Set(lines.slice(2, 6).map((l) => l.length)).size).toBe(1);
    expect(lines[6]).toBe('* extra corruption, not part of mCE');
    expect(lines[7]).toMatch(
      /^mCE 77\.9% \(incomplete: missing shot_noise, .*jpeg_compression\) · relative mCE 105\.1% \(incomplete: missing /,
    );
    expect(lines[8]).toMatch(/^SI-Score sweep means: size \d+\.\d% · location \d+\.\d% · rotation \d+\.\d%$/);
    expect(lines[9]).toBe('top-1 by test resolution: 160 70.1% · 224 76.1% · 288 77.2%');
    expect(lines[10]).toBe(
      'transfer: 1-shot 31.0% · 5-shot 55.0% · 10-shot 63.0% · 25-shot 71.0% · linear probe 80.2% · VTAB-1k 65.4%',
    );
    expect(lines[11]).toBe('unreadable images: 2');
  });

  it('copes with a summary that has only clean results', () => {
    const t = formatRobustnessTable({
      ...summary(),
      shards: null,
      corruptions: {},
      mce: null,
      relative_mce: null,
      sweeps: {},
      resolutions: {},
      unreadable: [],
    });
    expect(t.split('\n')).toHaveLength(3);
    expect(t).toContain('unreadable images: 0');
    expect(formatRobustnessTable({ ...summary(), clean: null })).toContain('clean: not run');
  });
});

describe.skipIf(!haveChromium)('robustness report in headless Chromium', () => {
  it('draws every chart from file:// with the real Chart.js and no page errors', async () => {
    const html = renderRobustnessReport(viaJson(summary()), { chartJs: chartJsSource(), transfer });
    const {
      errors,
      requests,
      result: r,
    } = await openReport(html, () => {
      const w = window as unknown as {
        __charts: { canvas: HTMLCanvasElement; data: { datasets: unknown[] } }[];
        __hacked?: number;
      };
      // The heat map's centre cell is painted (not the white background).
      const loc = w.__charts.find((c) => c.canvas.id === 'chart-location')!;
      const ch = loc as unknown as {
        scales: Record<string, { getPixelForValue(v: number): number }>;
        ctx: CanvasRenderingContext2D;
        currentDevicePixelRatio: number;
      };
      const px = ch.scales.x.getPixelForValue(0.5) * ch.currentDevicePixelRatio,
        py = ch.scales.y.getPixelForValue(0.5) * ch.currentDevicePixelRatio;
      return {
        ids: w.__charts.map((c) => c.canvas.id),
        datasets: w.__charts.map((c) => c.data.datasets.length),
        sizes: w.__charts.map((c) => [c.canvas.width, c.canvas.height]),
        centre: Array.from(ch.ctx.getImageData(Math.round(px), Math.round(py), 1, 1).data),
        hacked: w.__hacked,
        errorText: Array.from(document.querySelectorAll('td.msg pre')).map((e) => e.textContent),
      };
    });
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(r.ids).toEqual([
      'chart-severity',
      'chart-ce',
      'chart-reliability',
      'chart-size',
      'chart-rotation',
      'chart-location',
      'chart-resolution',
      'chart-fewshot',
    ]);
    // severity: a line per corruption; CE and relative CE; reliability: diagonal, confidence, accuracy;
    // size; two rotation areas; the heat map; top-1 and top-5; few-shot mean and seeds.
    expect(r.datasets).toEqual([3, 2, 3, 1, 2, 1, 2, 2]);
    for (const [w, h] of r.sizes) {
      expect(w).toBeGreaterThan(100);
      expect(h).toBeGreaterThan(100);
    }
    // The best cell (centre) is the top of the colour scale: viridis yellow #fde725.
    expect(r.centre.slice(0, 3)).toEqual([0xfd, 0xe7, 0x25]);
    expect(r.hacked).toBeUndefined();
    expect(r.errorText).toContain(EVIL);
  });
});
