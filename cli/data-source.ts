// An ImageFolder on disk as a robustness ImageSource (Node): sharp decodes, the GPU resizes and crops.

import type { Device } from '../engine/device.js';
import { loadBatch, preprocessOnGpu, scanImageFolder, selectItems } from '../eval/data.js';
import { decodeImageFile } from '../eval/decode-node.js';
import type { ImageSource } from '../eval/robustness.js';

export async function imageFolderSource(
  device: Device,
  dir: string,
  o: {
    limit: number | null;
    seed?: number;
    shard: { k: number; n: number } | null;
    classes: number;
    labelMap?: Record<string, number>;
  },
): Promise<ImageSource & { labelSource: string; classCount: number }> {
  const ds = await scanImageFolder(dir, { classes: o.classes, labelMap: o.labelMap });
  const items = selectItems(ds, { limit: o.limit ?? undefined, seed: o.seed, shard: o.shard ?? undefined });
  const s = (p: { size: number }) => p.size * p.size * 3;
  return {
    labelSource: ds.labelSource,
    classCount: ds.classes.length,
    items: items.map((it) => ({ id: it.id, index: it.index, label: it.label })),
    async load(batch, p) {
      const want = new Set(batch.map((b) => b.id));
      const loaded = await loadBatch(
        ds,
        items.filter((it) => want.has(it.id)),
        decodeImageFile,
      );
      const flat = loaded.images.length
        ? await preprocessOnGpu(device, loaded.images, p, { normalize: false })
        : new Float32Array(0);
      const crops = loaded.items.map((_, i) => flat.subarray(i * s(p), (i + 1) * s(p)));
      const byId = new Map(batch.map((b) => [b.id, b]));
      return { crops, ok: loaded.items.map((it) => byId.get(it.id)!), unreadable: loaded.unreadable };
    },
  };
}
