// SwiftShader (or any adapter) times of the real-GPU variants against the heuristic on one large
// conv, one matmul and one depthwise layer (bench/variant-timings.ts). Run:
//   npx esbuild scripts/variant-timings.ts --bundle --platform=node --format=esm \
//     --external:webgpu --outfile=dist/variant-timings.mjs && node dist/variant-timings.mjs
import { formatVariantTimings, timeVariants } from '../bench/variant-timings.js';
import { createDevice, describeDevice } from '../engine/device.js';

const device = await createDevice();
console.log(describeDevice(device));
const rows = await timeVariants(device, [
  {
    name: 'conv 3x3 [1,28,28,128]→128 pad 1',
    op: 'conv2d',
    attrs: { pad: [1, 1, 1, 1], act: 'relu' },
    inputs: [[1, 28, 28, 128], [3, 3, 128, 128], [128]],
    family: 'conv2d',
    variants: [
      '',
      'gemm,tile=4x4,wgmem,wg=16x16,tk=16',
      'gemm,tile=8x8,wgmem,wg=8x8,tk=8',
      'gemm,tile=4x4,wgmem,wg=8x8,tk=32',
      'gemm,tile=4x32,sg,f16=w',
    ],
  },
  {
    name: 'matmul [197,768]x[768,768]',
    op: 'matmul',
    attrs: { act: 'gelu' },
    inputs: [[197, 768], [768, 768], [768]],
    family: 'matmul',
    variants: [
      '',
      'wgmem,tile=4x4,wg=16x16,tk=16',
      'wgmem,tile=8x8,wg=8x8,tk=8',
      'wgmem,tile=4x4,wg=8x8,tk=32',
      'tile=8x16,wg=1x8,sg,f16=w',
    ],
  },
  {
    name: 'depthwise 3x3 [1,56,56,144] pad 1',
    op: 'conv2d',
    attrs: { groups: 144, pad: [1, 1, 1, 1], act: 'relu6' },
    inputs: [[1, 56, 56, 144], [3, 3, 1, 144], [144]],
    family: 'depthwise',
    variants: ['', 'wgmem', 'wgmem,block=2x2'],
  },
]);
console.log(formatVariantTimings(rows));
device.destroy();
process.exit(0);
