// The corruption registry: every corruption this folder defines, in ImageNet-C's order (noise,
// blur, weather, digital; each group's extra last), by name. A new corruption adds its file to
// the imports and its def to CORRUPTIONS. The `corrupt` graph op that runs them is op.ts.
//
// mCE's 15: gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur,
// zoom_blur, snow, frost, fog, contrast, elastic_transform, pixelate, jpeg_compression,
// brightness. The 4 extras: speckle_noise, gaussian_blur, spatter, saturate.

import { ShapeError } from '../../kernels/kernel.js';
import { contrast } from './contrast.js';
import { defocusBlur } from './defocus-blur.js';
import { elasticTransform } from './elastic-transform.js';
import { fog } from './fog.js';
import { frost } from './frost.js';
import { gaussianBlur } from './gaussian-blur.js';
import { glassBlur } from './glass-blur.js';
import { brightness, saturate } from './hsv.js';
import { jpegCompression } from './jpeg-compression.js';
import { motionBlur } from './motion-blur.js';
import { gaussianNoise, impulseNoise, shotNoise, speckleNoise } from './noise.js';
import { pixelate } from './pixelate.js';
import { snow } from './snow.js';
import { spatter } from './spatter.js';
import { zoomBlur } from './zoom-blur.js';
import type { CorruptAttrs, CorruptionDef } from './corruption.js';

export type { CorruptAttrs, CorruptionDef } from './corruption.js';

// biome-ignore lint/suspicious/noExplicitAny: each corruption has its own parameter type; the list holds all of them
export const CORRUPTIONS: readonly CorruptionDef<any>[] = [
  gaussianNoise,
  shotNoise,
  impulseNoise,
  speckleNoise,
  defocusBlur,
  glassBlur,
  motionBlur,
  zoomBlur,
  gaussianBlur,
  snow,
  frost,
  fog,
  spatter,
  contrast,
  elasticTransform,
  pixelate,
  jpegCompression,
  brightness,
  saturate,
];

const defs = new Map<string, CorruptionDef>();
for (const d of CORRUPTIONS) {
  if (defs.has(d.name)) throw new Error(`corruption "${d.name}" listed twice`);
  defs.set(d.name, d as CorruptionDef);
}

export function getCorruption(name: string): CorruptionDef {
  const d = defs.get(name);
  if (!d) throw new Error(`unknown corruption "${name}"; known: ${[...defs.keys()].join(', ')}`);
  return d;
}

export function corruptionNames(o: { extras?: boolean } = {}): string[] {
  return [...defs.values()].filter((d) => o.extras !== false || !d.extra).map((d) => d.name);
}

/** The parameters of (name, severity); a severity outside 1..5 is a ShapeError. */
export function corruptionParams(a: CorruptAttrs): unknown {
  const d = getCorruption(a.name);
  if (!Number.isInteger(a.severity) || a.severity < 1 || a.severity > 5) {
    throw new ShapeError(`corruption severity must be 1..5, got ${a.severity}`);
  }
  return d.params[a.severity - 1];
}
