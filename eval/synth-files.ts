// Synthetic data on disk (Node only: node:fs, sharp): ImageFolder classification sets and
// SI-Score cut-out folders, written from synth.ts's renderers and read back as a SynthSource.
// The page never imports this module; sharp is imported lazily so that importing it costs
// nothing until a PNG is written or read.
//
// ImageFolder:  <dir>/<class name>/<split>-<k>.png   RGB, one pasted object per image
// Cut-outs:     <dir>/foregrounds/<class name>/*.png  RGBA cut-outs (alpha = the object's mask)
//               <dir>/backgrounds/*.png|jpg|jpeg|webp  any size; centre-cropped square and resized
// The cut-out layout is SI-Score's own (foregrounds/<class>/<file>, backgrounds/<file>).

import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ImageFolderOptions,
  type RgbImage,
  type RgbaImage,
  type SynthSource,
  classOf,
  proceduralSource,
  renderSynthImage,
  SYNTH_CLASSES,
  SYNTH_TRAIN_CLASSES,
  trimAlpha,
} from './synth.js';

async function sharpModule() {
  return (await import('sharp')).default;
}

async function writePng(path: string, img: RgbImage | RgbaImage, channels: 3 | 4): Promise<void> {
  const sharp = await sharpModule();
  await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), {
    raw: { width: img.width, height: img.height, channels },
  })
    .png({ compressionLevel: 6 })
    .toFile(path);
}

/** Runs async jobs with a few in flight, so PNG encoding (libuv threads) overlaps rendering. */
class Pending {
  private q: Promise<void>[] = [];
  async add(p: Promise<void>): Promise<void> {
    this.q.push(p);
    if (this.q.length >= 4) await this.q.shift();
  }
  async drain(): Promise<void> {
    await Promise.all(this.q.splice(0));
  }
}

/** A classification set of renderSynthImage()s in ImageFolder layout. Returns the files written. */
export async function writeSynthImageFolder(dir: string, o: ImageFolderOptions): Promise<string[]> {
  const split = o.split ?? 'train';
  const files: string[] = [],
    pending = new Pending();
  for (const c of o.classes ?? SYNTH_TRAIN_CLASSES) {
    const name = classOf(c).name,
      folder = join(dir, name);
    await mkdir(folder, { recursive: true });
    for (let k = 0; k < o.perClass; k++) {
      const file = join(folder, `${split}-${String(k).padStart(5, '0')}.png`);
      await pending.add(writePng(file, renderSynthImage(c, k, o), 3));
      files.push(file);
    }
  }
  await pending.drain();
  return files;
}

export interface CutoutOptions {
  /** Class indices into SYNTH_CLASSES (default: all). */
  classes?: number[];
  perClass: number;
  /** Longer side of the cut-outs and side of the backgrounds. */
  size: number;
  seed: number;
  /** Number of backgrounds (default 8). */
  backgrounds?: number;
}

/** Writes procedural cut-outs and backgrounds in the layout loadCutouts (and SI-Score) reads. */
export async function writeCutouts(
  dir: string,
  o: CutoutOptions,
): Promise<{ foregrounds: string[]; backgrounds: string[] }> {
  const src = proceduralSource(o.seed, o.size),
    pending = new Pending();
  const foregrounds: string[] = [],
    backgrounds: string[] = [];
  for (const c of o.classes ?? SYNTH_CLASSES.map((_, i) => i)) {
    const folder = join(dir, 'foregrounds', classOf(c).name);
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < o.perClass; i++) {
      const file = join(folder, `${String(i).padStart(4, '0')}.png`);
      await pending.add(writePng(file, src.objects(c, i), 4));
      foregrounds.push(file);
    }
  }
  await mkdir(join(dir, 'backgrounds'), { recursive: true });
  for (let i = 0; i < (o.backgrounds ?? 8); i++) {
    const file = join(dir, 'backgrounds', `${String(i).padStart(4, '0')}.png`);
    await pending.add(writePng(file, src.background(i), 3));
    backgrounds.push(file);
  }
  await pending.drain();
  return { foregrounds, backgrounds };
}

export interface LoadedCutouts extends SynthSource {
  /** foregrounds[class][instance], classes sorted by name as SI-Score sorts them. */
  foregrounds: RgbaImage[][];
  backgrounds: RgbImage[];
}

/**
 * Reads <dir>/foregrounds/<class>/*.png|webp (RGBA; images without alpha become opaque
 * rectangles) and <dir>/backgrounds/*.png|jpg|jpeg|webp, files in name order. Cut-outs are trimmed
 * to their alpha > 0 box so `area` means the object's box, as for the procedural ones.
 */
export async function loadCutouts(dir: string, o: { trim?: boolean } = {}): Promise<LoadedCutouts> {
  const sharp = await sharpModule();
  const list = async (d: string, re: RegExp) =>
    (await readdir(d, { withFileTypes: true }))
      .filter((e) => e.isFile() && re.test(e.name))
      .map((e) => e.name)
      .sort();
  const fgDir = join(dir, 'foregrounds'),
    bgDir = join(dir, 'backgrounds');
  const classNames = (await readdir(fgDir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const foregrounds: RgbaImage[][] = [];
  for (const name of classNames) {
    const imgs: RgbaImage[] = [];
    for (const f of await list(join(fgDir, name), /\.(png|webp|tiff?)$/i)) {
      const { data, info } = await sharp(join(fgDir, name, f))
        .ensureAlpha()
        .toColourspace('srgb')
        .raw()
        .toBuffer({ resolveWithObject: true });
      const img = {
        width: info.width,
        height: info.height,
        data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      };
      imgs.push(o.trim === false ? img : trimAlpha(img));
    }
    if (imgs.length === 0) throw new Error(`${join(fgDir, name)}: no cut-outs (.png/.webp)`);
    foregrounds.push(imgs);
  }
  if (classNames.length === 0) throw new Error(`${fgDir}: no class folders`);
  const backgrounds: RgbImage[] = [];
  for (const f of await list(bgDir, /\.(png|jpe?g|webp)$/i)) {
    const { data, info } = await sharp(join(bgDir, f))
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    backgrounds.push({
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    });
  }
  if (backgrounds.length === 0) throw new Error(`${bgDir}: no backgrounds (.png/.jpg/.webp)`);
  return {
    classNames,
    foregrounds,
    backgrounds,
    objects: (c, i) => foregrounds[c][(i >>> 0) % foregrounds[c].length],
    background: (i) => backgrounds[(i >>> 0) % backgrounds.length],
  };
}
