// Image decoding in Node through sharp (libvips): JPEG, PNG, WebP and more, to 8-bit RGB.
// In the browser the platform decodes (createImageBitmap), see web/.

import type { RgbImage } from '../models/preprocess.js';

export class UnreadableImageError extends Error {
  override name = 'UnreadableImageError';
}

export async function decodeImageFile(path: string): Promise<RgbImage> {
  const { default: sharp } = await import('sharp');
  try {
    const { data, info } = await sharp(path)
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (e) {
    throw new UnreadableImageError(`${path}: cannot decode as an image (${(e as Error).message})`);
  }
}
