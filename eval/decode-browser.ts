// Image decoding in the browser: the platform's decoders (createImageBitmap), pixels read back
// through an sRGB OffscreenCanvas, to the 8-bit RGB that eval/decode-node.ts gives in Node.
//
// Choices, against PIL (what torchvision/timm evaluation decodes with):
// - colorSpaceConversion 'none': embedded ICC profiles are ignored, as PIL ignores them, so the
//   bytes are the file's decoded values.
// - Alpha: a canvas stores premultiplied colour, so fully transparent pixels read back black and
//   semi-transparent ones lose a little precision; PIL's convert('RGB') and sharp's removeAlpha
//   keep the stored colour. Only PNG/WebP with alpha are affected (ImageNet has none).
// - EXIF orientation: Chromium applies it (imageOrientation 'none' is an alias of 'from-image'
//   there now); PIL does not. A handful of ImageNet JPEGs carry an orientation tag.
// This file must not import Node modules: it is bundled into the page.

import type { RgbImage } from '../models/preprocess.js';

/** The browser's twin of decode-node.ts's error of the same name. */
export class UnreadableImageError extends Error {
  override name = 'UnreadableImageError';
}

export async function decodeImageBlob(blob: Blob): Promise<RgbImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    throw new UnreadableImageError(`cannot decode as an image (${(e as Error)?.message ?? e})`);
  }
  try {
    const { width, height } = bitmap;
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { colorSpace: 'srgb', willReadFrequently: true });
    if (!ctx) throw new UnreadableImageError('this browser gives no 2d context on an OffscreenCanvas');
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, height, { colorSpace: 'srgb' }).data;
    const data = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; j < data.length; i += 4, j += 3) {
      data[j] = rgba[i];
      data[j + 1] = rgba[i + 1];
      data[j + 2] = rgba[i + 2];
    }
    return { width, height, data };
  } finally {
    bitmap.close();
  }
}

/** Fetch and decode one image (the decoder eval/data.ts's loadBatch takes in the page). */
export async function decodeImageUrl(url: string): Promise<RgbImage> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new UnreadableImageError(`${url}: cannot fetch (${(e as Error)?.message ?? e})`);
  }
  if (!res.ok) throw new UnreadableImageError(`${url}: HTTP ${res.status} ${res.statusText}`);
  try {
    return await decodeImageBlob(await res.blob());
  } catch (e) {
    throw new UnreadableImageError(`${url}: ${(e as Error).message}`);
  }
}
