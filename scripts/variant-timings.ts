// SwiftShader (or any adapter) times of kernel variants against the heuristic, each checked
// against the heuristic's output first (bench/variant-timings.ts). Two sets:
//   (default) the real-GPU variants on one large conv, one matmul and one depthwise layer;
//   peak      the variants aimed at SwiftShader's FMA peak (matmul 'sg2', conv2d 'sg2' and 'pk')
//             against the heuristic on ResNet-50 and ViT-B/16 layer shapes, with each one's share
//             of the adapter's measured FMA peak (bench/roofline.ts). `peak <layer,...>` runs
//             only the named layers (see PEAK_CASES), `--quick` one rep each.
// Run:
//   npx esbuild scripts/variant-timings.ts --bundle --platform=node --format=esm \
//     --external:webgpu --outfile=dist/variant-timings.mjs && node dist/variant-timings.mjs [peak [layers]]
import { measureRoofline } from '../bench/roofline.js';
import { type VariantCase, formatVariantTimings, timeVariants } from '../bench/variant-timings.js';
import { createDevice, describeDevice } from '../engine/device.js';

const GPU_CASES: VariantCase[] = [
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
];

/** Representative heavy layers at batch 1, 224² (ResNet-50 stage 3 and 4 convs, ViT-B/16 linears). */
const PEAK_CASES: Record<string, VariantCase> = {
  'vit-fc1': {
    name: 'ViT-B fc1 [197,768]x[768,3072] gelu',
    op: 'matmul',
    attrs: { act: 'gelu' },
    inputs: [[197, 768], [768, 3072], [3072]],
    family: 'matmul',
    variants: ['', 'tile=8x16,wg=1x8,sg,pk', 'tile=16x8,wg=1x16,sg2', 'tile=16x16,wg=1x8,sg2'],
  },
  'vit-proj': {
    name: 'ViT-B proj [197,768]x[768,768]',
    op: 'matmul',
    attrs: {},
    inputs: [[197, 768], [768, 768], [768]],
    family: 'matmul',
    variants: ['', 'tile=8x8,wg=1x16,sg2', 'tile=8x16,wg=1x16,sg2', 'tile=16x8,wg=1x16,sg2'],
  },
  'r50-3x3': {
    name: 'ResNet-50 layer3 3x3 [1,14,14,256]→256 p1 relu',
    op: 'conv2d',
    attrs: { pad: [1, 1, 1, 1], act: 'relu' },
    inputs: [[1, 14, 14, 256], [3, 3, 256, 256], [256]],
    family: 'conv2d',
    variants: ['', 'pk', 'gemm,tile=4x16,sg', 'gemm,tile=4x16,sg,pk'],
  },
  'r50-1x1': {
    name: 'ResNet-50 layer2 1x1 [1,28,28,128]→512',
    op: 'conv2d',
    attrs: {},
    inputs: [[1, 28, 28, 128], [1, 1, 128, 512], [512]],
    family: 'conv2d',
    variants: ['', 'pk', 'gemm,tile=8x32,sg', 'gemm,tile=8x32,sg,pk'],
  },
};

const args = process.argv.slice(2).filter((a) => a !== '--quick');
const reps = process.argv.includes('--quick') ? 1 : 2;
const device = await createDevice();
console.log(describeDevice(device));
if (args[0] === 'peak') {
  const names = args[1] ? args[1].split(',') : Object.keys(PEAK_CASES);
  const unknown = names.filter((n) => !PEAK_CASES[n]);
  if (unknown.length)
    throw new Error(`unknown layer(s) ${unknown.join(', ')}; known: ${Object.keys(PEAK_CASES).join(', ')}`);
  const roof = await measureRoofline(device, { scale: 0.1 });
  console.log(`FMA peak ${roof.fmaGflops.toFixed(1)} GFLOP/s, copy ${roof.copyGBps.toFixed(2)} GB/s`);
  for (const n of names) {
    const rows = await timeVariants(device, [PEAK_CASES[n]], reps);
    console.log(formatVariantTimings(rows));
    for (const r of rows) console.log(`  ${r.variant}: ${((100 * r.gflops) / roof.fmaGflops).toFixed(1)}% of FMA peak`);
  }
} else {
  console.log(formatVariantTimings(await timeVariants(device, GPU_CASES, reps)));
}
device.destroy();
process.exit(0);
