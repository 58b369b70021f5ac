// The robustness section of the page, for interactive use in any WebGPU browser: pick a model,
// a weight file and an image folder (or use the built-in synthetic set), watch progress, read
// the report in place and download results.jsonl / summary.json. Records stay in memory here;
// the CLI (`npx cnnlab robustness`) is the way to resumable, sharded runs.

import type { Device } from '../engine/device.js';
import { blobSource, openSafetensors } from '../engine/safetensors.js';
import { corruptionNames } from '../eval/corruptions/index.js';
import { assignLabels, type Dataset, loadBatch, preprocessOnGpu, selectItems } from '../eval/data.js';
import { decodeImageBlob } from '../eval/decode-browser.js';
import type { RunRecord, RunSettings } from '../eval/record-format.js';
import { renderRobustnessReport } from '../eval/report.js';
import { runRobustness } from '../eval/robustness.js';
import { datasetSource, syntheticRunSources } from '../eval/sources.js';
import { summarizeRun } from '../eval/summary.js';
import { SWEEPS } from '../eval/synth.js';
import { OnnxNet, onnxModelDef } from '../models/onnx-import.js';
import { getModel, listModels, registerModel } from '../models/registry.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const sha256Hex = async (data: BufferSource | string) =>
  [
    ...new Uint8Array(
      await crypto.subtle.digest('SHA-256', typeof data === 'string' ? new TextEncoder().encode(data) : data),
    ),
  ]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('');

/** A folder picked with <input webkitdirectory> as an ImageFolder dataset: <class>/<file>. */
function folderDataset(files: File[]): { ds: Dataset; byPath: Map<string, File> } {
  const byPath = new Map<string, File>();
  for (const f of files) {
    const parts = (f.webkitRelativePath || f.name).split('/');
    if (parts.length >= 3 && /\.(jpe?g|png|webp)$/i.test(f.name)) byPath.set(parts.slice(1).join('/'), f);
  }
  const paths = [...byPath.keys()].sort();
  const classes = [...new Set(paths.map((p) => p.split('/')[0]))].sort();
  if (!classes.length) throw new Error('the folder has no class sub-folders with JPEG, PNG or WebP images');
  const { labels, labelSource } = assignLabels(classes);
  const labelOf = new Map(classes.map((c, i) => [c, labels[i]]));
  return {
    byPath,
    ds: {
      root: '',
      source: 'url',
      classes,
      labelSource,
      items: paths.map((p) => ({ path: p, label: labelOf.get(p.split('/')[0])!, classFolder: p.split('/')[0] })),
    },
  };
}

export function setupRobustnessUi(getDevice: () => Promise<Device>): void {
  const select = $<HTMLSelectElement>('rob-model');
  for (const m of listModels()) select.add(new Option(m.name, m.name, false, m.name === 'mobilenet_v2_synth'));
  // An ONNX file joins the model list under its file name (docs/onnx-import.md); its weights are inside it.
  const onnxBytes = new Map<string, ArrayBuffer>();
  $<HTMLInputElement>('rob-onnx').addEventListener('change', async (ev) => {
    const file = (ev.target as HTMLInputElement).files?.[0];
    if (!file) return;
    const out = $('rob-progress');
    try {
      const bytes = await file.arrayBuffer();
      const net = OnnxNet.parse(new Uint8Array(bytes), file.name);
      registerModel(onnxModelDef(file.name, net));
      onnxBytes.set(file.name, bytes);
      if (![...select.options].some((o) => o.value === file.name)) select.add(new Option(file.name, file.name));
      select.value = file.name;
      out.textContent = `${file.name}: ONNX opset ${net.opset}, input [${net.inputShape.map((d) => d ?? '?').join(',')}]`;
    } catch (e) {
      out.textContent = `error: ${(e as Error).message}`;
    }
  });
  const corr = $<HTMLInputElement>('rob-corruption-list');
  corr.value = corruptionNames().join(',');
  let last: { records: RunRecord[]; summary: unknown } | null = null;

  $('rob-run').addEventListener('click', async () => {
    const out = $('rob-progress');
    const button = $<HTMLButtonElement>('rob-run');
    button.disabled = true;
    try {
      const device = await getDevice();
      const def = getModel(select.value);
      const embedded = def.embeddedWeights !== undefined ? onnxBytes.get(def.name) : undefined;
      const wFile = $<HTMLInputElement>('rob-weights').files?.[0];
      if (embedded && wFile) throw new Error(`${def.name} carries its own weights; clear the weights file`);
      const wBlob = wFile ?? (def.builtinWeights ? await (await fetch(`/${def.builtinWeights}`)).blob() : null);
      const weights = wBlob
        ? await openSafetensors(wFile ? blobSource(wFile) : blobSource(wBlob, def.builtinWeights))
        : ('random' as const);
      const files = [...($<HTMLInputElement>('rob-folder').files ?? [])];
      const severities = $<HTMLInputElement>('rob-severities').value.split(',').map(Number);
      const corruptions = corr.value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const sweeps = files.length ? [] : [...SWEEPS];
      const synth = syntheticRunSources(def, {
        perClass: Number($<HTMLInputElement>('rob-per-class').value),
        seed: 0,
        sweeps,
        limit: null,
        shard: null,
        noTestSet: files.length > 0,
      });
      let source = synth.source;
      let data = {
        data_key: `synthetic:test:per-class=${$<HTMLInputElement>('rob-per-class').value}`,
        labels: 'synthetic',
      };
      if (files.length) {
        const { ds, byPath } = folderDataset(files);
        // The same content key as the CLI's (eval/provenance.ts): sorted relative paths and sizes.
        const list = ds.items.map((it) => `${it.path}\t${byPath.get(it.path)!.size}\n`).join('');
        data = { data_key: `files-sha256:${await sha256Hex(list)}`, labels: ds.labelSource };
        source = datasetSource(device, ds, selectItems(ds), (p) => decodeImageBlob(byPath.get(p)!), {
          loadBatch,
          preprocessOnGpu,
        });
      }
      const records: RunRecord[] = [];
      const settings: RunSettings = {
        model: def.name,
        weights: def.embeddedWeights ?? wFile?.name ?? (def.builtinWeights ? 'builtin' : 'random'),
        data: files.length ? `${files.length} picked files` : 'built-in synthetic test set',
        weights_sha256: embedded
          ? await sha256Hex(embedded)
          : wBlob
            ? await sha256Hex(await wBlob.arrayBuffer())
            : null,
        weights_path: null,
        ...data,
        corruptions,
        severities,
        sweeps,
        resolutions: [def.preprocess.size],
        limit: null,
        seed: 0,
        imagenet_c_protocol: false,
        shard: null,
      };
      await runRobustness(
        device,
        { model: def.name, weights, seed: 0, corruptions, severities, resolutions: [def.preprocess.size], batch: 8 },
        source,
        synth.sweeps,
        {
          done: new Set(),
          append: async (r) => {
            records.push(...r);
          },
          progress: (p) => {
            out.textContent = `${p.done}/${p.total} · ${p.imagesPerSecond.toFixed(1)} img/s · ETA ${p.etaSeconds.toFixed(0)} s · ${p.cond}`;
          },
        },
      );
      const summary = summarizeRun(settings, def.preprocess, records);
      last = { records, summary };
      const [chartJs, charts] = await Promise.all(
        ['/vendor/chart/chart.umd.js', '/report-charts.js'].map(async (u) => {
          const r = await fetch(u);
          if (!r.ok) throw new Error(`${u}: ${r.status} ${r.statusText}`);
          return r.text();
        }),
      );
      $<HTMLIFrameElement>('rob-report').srcdoc = renderRobustnessReport(summary, { chartJs, charts });
      $<HTMLButtonElement>('rob-save').disabled = false;
      out.textContent += ' · done';
    } catch (e) {
      out.textContent = `error: ${(e as Error).message}`;
    } finally {
      button.disabled = false;
    }
  });

  $('rob-save').addEventListener('click', () => {
    if (!last) return;
    for (const [name, text, type] of [
      ['results.jsonl', `${last.records.map((r) => JSON.stringify(r)).join('\n')}\n`, 'application/x-ndjson'],
      ['summary.json', JSON.stringify(last.summary, null, 1), 'application/json'],
    ] as const) {
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([text], { type }));
      a.download = name;
      a.click();
    }
  });
}
