// The transfer section of the page: frozen features of the chosen model on the synthetic held-out
// classes (or two picked ImageFolders: train and test), then few-shot LSR, a linear probe and
// VTAB-1k-style selection, as `npx cnnlab transfer` does (without its disk cache).

import type { Device } from '../engine/device.js';
import { blobSource, openSafetensors } from '../engine/safetensors.js';
import { assignLabels, loadBatch, preprocessOnGpu, selectItems } from '../eval/data.js';
import { decodeImageBlob } from '../eval/decode-browser.js';
import { extractFeatures } from '../eval/features.js';
import type { ImageSource } from '../eval/robustness.js';
import { datasetSource, synthClassSource } from '../eval/sources.js';
import { SYNTH_HELDOUT_CLASSES } from '../eval/synth.js';
import { fewshotLsr, linearProbe, subset, vtab1k } from '../eval/transfer.js';
import { getModel } from '../models/registry.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function folderSource(
  device: Device,
  files: File[],
  labelOf?: Map<string, number>,
): { source: ImageSource; labels: Map<string, number> } {
  const byPath = new Map<string, File>();
  for (const f of files) {
    const parts = (f.webkitRelativePath || f.name).split('/');
    if (parts.length >= 3 && /\.(jpe?g|png|webp)$/i.test(f.name)) byPath.set(parts.slice(1).join('/'), f);
  }
  const paths = [...byPath.keys()].sort();
  const classes = [...new Set(paths.map((p) => p.split('/')[0]))].sort();
  const labels = labelOf ?? new Map(classes.map((c, i) => [c, assignLabels(classes, { labels: 'sorted' }).labels[i]]));
  const items = paths.map((p) => {
    const label = labels.get(p.split('/')[0]);
    if (label === undefined) throw new Error(`test class "${p.split('/')[0]}" is not among the train classes`);
    return { path: p, label, classFolder: p.split('/')[0] };
  });
  const ds = { root: '', source: 'url' as const, classes, labelSource: 'sorted' as const, items };
  return {
    source: datasetSource(device, ds, selectItems(ds), (p) => decodeImageBlob(byPath.get(p)!), {
      loadBatch,
      preprocessOnGpu,
    }),
    labels,
  };
}

export function setupTransferUi(getDevice: () => Promise<Device>): void {
  $('tr-run').addEventListener('click', async () => {
    const out = $('tr-out');
    const button = $<HTMLButtonElement>('tr-run');
    button.disabled = true;
    out.textContent = '';
    const log = (s: string) => {
      out.textContent += `${s}\n`;
    };
    try {
      const device = await getDevice();
      const def = getModel($<HTMLSelectElement>('rob-model').value);
      const wFile = $<HTMLInputElement>('rob-weights').files?.[0];
      const weights = wFile
        ? await openSafetensors(blobSource(wFile))
        : def.builtinWeights
          ? await openSafetensors(blobSource(await (await fetch(`/${def.builtinWeights}`)).blob(), def.builtinWeights))
          : ('random' as const);
      const trainFiles = [...($<HTMLInputElement>('tr-train').files ?? [])],
        testFiles = [...($<HTMLInputElement>('tr-test').files ?? [])];
      let train: ImageSource, test: ImageSource;
      if (trainFiles.length && testFiles.length) {
        const tr = folderSource(device, trainFiles);
        train = tr.source;
        test = folderSource(device, testFiles, tr.labels).source;
      } else {
        const perClass = Number($<HTMLInputElement>('tr-per-class').value);
        train = synthClassSource([...SYNTH_HELDOUT_CLASSES], { perClass, seed: 0, split: 'train' });
        test = synthClassSource([...SYNTH_HELDOUT_CLASSES], { perClass: 20, seed: 0, split: 'test' });
      }
      const req = {
        model: def.name,
        weights,
        weightsName: wFile?.name ?? 'builtin',
        seed: 0,
        datasetKey: 'page',
        batch: 16,
      };
      const trF = await extractFeatures(device, req, train, def.preprocess, (d, t) => {
        out.textContent = `train features ${d}/${t}`;
      });
      const teF = await extractFeatures(device, req, test, def.preprocess, (d, t) => {
        out.textContent = `test features ${d}/${t}`;
      });
      out.textContent = '';
      log(`${def.name}: ${trF.n} train, ${teF.n} test images, ${trF.d} features`);
      const protocols = [...document.querySelectorAll<HTMLInputElement>('input[name=tr-protocol]:checked')].map(
        (i) => i.value,
      );
      if (protocols.includes('fewshot')) {
        const shots = $<HTMLInputElement>('tr-shots').value.split(',').map(Number);
        for (const [k, r] of Object.entries(fewshotLsr(trF, teF, { shots, seeds: 3 }))) {
          log(`${k.padStart(2)}-shot: ${(100 * r.mean).toFixed(1)}% ± ${(100 * r.std).toFixed(1)}`);
        }
      }
      if (protocols.includes('probe')) {
        const idx = Array.from({ length: trF.n }, (_, i) => i);
        const r = linearProbe(
          subset(
            trF,
            idx.filter((i) => i % 5 !== 4),
          ),
          subset(
            trF,
            idx.filter((i) => i % 5 === 4),
          ),
          teF,
        );
        log(`linear probe: ${(100 * r.accuracy).toFixed(1)}% (L2 ${r.l2})`);
      }
      if (protocols.includes('vtab1k')) {
        const r = vtab1k(trF, teF, { allowFewer: true });
        log(`VTAB-1k-style: ${(100 * r.accuracy).toFixed(1)}% (L2 ${r.l2})`);
      }
    } catch (e) {
      log(`error: ${(e as Error).message}`);
    } finally {
      button.disabled = false;
    }
  });
}
