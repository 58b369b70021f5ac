// A robustness run inside the page: the CLI's `--runtime chrome` drives it, handing over the
// settings; records go back through window.cnnlabRecords (the CLI appends them to results.jsonl
// before the page goes on), progress through window.cnnlabProgress.

import type { Device } from '../engine/device.js';
import { blobSource, openSafetensors } from '../engine/safetensors.js';
import { datasetFromIndex, loadBatch, preprocessOnGpu, selectItems } from '../eval/data.js';
import { decodeImageUrl } from '../eval/decode-browser.js';
import { KeySet, type PackedKeys, type RunRecord } from '../eval/record-format.js';
import { type Progress, runRobustness } from '../eval/robustness.js';
import { datasetSource, syntheticRunSources } from '../eval/sources.js';
import type { SweepName } from '../eval/synth.js';
import { getModel, type Preprocess } from '../models/registry.js';

export interface PageRunOptions {
  model: string;
  /** Preprocessing in place of the model's own (a Hub repository's config). */
  preprocess?: Preprocess;
  seed: number;
  corruptions: string[];
  severities: number[];
  resolutions: number[];
  batch: number;
  sweeps: string[];
  limit: number | null;
  shard: { k: number; n: number } | null;
  perClass: number;
  weightsPath: string | null;
  data: string | null;
  imagenetCProtocol: boolean;
}

type Hooks = {
  cnnlabRecords?: (json: string) => Promise<void>;
  cnnlabProgress?: (json: string) => void;
  cnnlabLog?: (s: string) => void;
};

export async function runRobustnessInPage(
  device: Device,
  o: PageRunOptions & { weightsUrl: string | null; dataIndexUrl: string | null; done: PackedKeys },
): Promise<void> {
  const w = window as unknown as Hooks;
  const registered = getModel(o.model);
  const def = o.preprocess ? { ...registered, preprocess: o.preprocess } : registered;
  const weights = o.weightsUrl
    ? await openSafetensors(
        blobSource(await (await fetch(o.weightsUrl)).blob(), decodeURIComponent(o.weightsUrl.split('/').pop()!)),
      )
    : 'random';
  const synth = syntheticRunSources(def, {
    perClass: o.perClass,
    seed: o.seed,
    sweeps: o.sweeps as SweepName[],
    limit: o.limit,
    shard: o.shard,
    noTestSet: !!o.dataIndexUrl,
  });
  let source = synth.source;
  if (o.dataIndexUrl) {
    const index = await (await fetch(o.dataIndexUrl)).json();
    const ds = datasetFromIndex(index, { root: '/data/' });
    const items = selectItems(ds, { limit: o.limit ?? undefined, seed: o.seed, shard: o.shard ?? undefined });
    source = datasetSource(device, ds, items, decodeImageUrl, { loadBatch, preprocessOnGpu });
  }
  await runRobustness(
    device,
    {
      model: def.name,
      preprocess: def.preprocess,
      weights,
      seed: o.seed,
      corruptions: o.corruptions,
      severities: o.severities,
      resolutions: o.resolutions,
      batch: o.batch,
      imagenetCProtocol: o.imagenetCProtocol,
    },
    source,
    synth.sweeps,
    {
      done: KeySet.unpack(o.done),
      append: async (recs: RunRecord[]) => {
        await w.cnnlabRecords?.(JSON.stringify(recs));
      },
      progress: (p: Progress) => w.cnnlabProgress?.(JSON.stringify(p)),
      log: (s) => w.cnnlabLog?.(s),
    },
  );
}
