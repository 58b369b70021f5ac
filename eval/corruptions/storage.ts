// ImageNet-C's storage step (`--imagenet-c-protocol`): what the released data set did to every
// corrupted image before a model saw it. hendrycks/robustness `ImageNet-C/create_c/
// make_imagenet_c.py` saves each corruption's float output with
// `Image.fromarray(np.uint8(img)).save(path, quality=85, optimize=True)`: 8 bits by truncation
// (np.uint8 of a float truncates), then a JPEG at quality 85 (Pillow's defaults: 4:2:0, islow DCT;
// `optimize` only changes the Huffman tables, so the decoded pixels are those of a plain save),
// which the evaluation reads back. docs/imagenet-c.md has the details and the measured agreement.
//
// One graph op, `imagenet_c_store` ([N,H,W,3] in [0,1] → same), lowered to jpeg-compression.ts's
// integer codec (bit-exact with libjpeg-turbo) with truncating 8-bit input; its TS reference is
// that codec's. Deviation from the reference: the truncation reads our f32 corruption output where
// the reference truncates its f64 one, so a value within ~1e-5 of an integer may land one grey
// level apart (and the slack of 2^-10 grey level, jpeg-compression.ts's jpegToU8).

import type { Graph } from '../../engine/graph.js';
import { OPS, registerOp } from '../../kernels/index.js';
import { type OpDef, fmtShape, ShapeError } from '../../kernels/kernel.js';
import { jpegLowering, jpegRef } from './jpeg-compression.js';

/** The JPEG quality of the released ImageNet-C files. */
export const IMAGENET_C_JPEG_QUALITY = 85;

export interface StoreAttrs {
  quality: number;
}

export const imagenetCStoreOp: OpDef<StoreAttrs> = {
  op: 'imagenet_c_store',
  arity: [1, 1],
  infer(a, [x]) {
    if (x.length !== 4 || x[3] !== 3)
      throw new ShapeError(`imagenet_c_store needs RGB images [N,H,W,3], got ${fmtShape(x)}`);
    if (!Number.isInteger(a.quality) || a.quality < 1 || a.quality > 100)
      throw new ShapeError(`JPEG quality must be 1..100, got ${a.quality}`);
    return [x];
  },
  lower: (a, [x], _o, ctx) => jpegLowering(a.quality, 'trunc', x, ctx),
  ref: (a, [x]) => [jpegRef(a.quality, 'trunc', x)],
};

if (!OPS.has(imagenetCStoreOp.op)) registerOp(imagenetCStoreOp);

/** Add ImageNet-C's storage step (8-bit truncation, JPEG quality 85 round trip) after `x`. */
export function addImagenetCStorage(g: Graph, x: string, name = 'imagenet_c_store'): string {
  return g.op(imagenetCStoreOp.op, [x], { quality: IMAGENET_C_JPEG_QUALITY }, name);
}
