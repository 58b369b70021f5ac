// The ONNX importer (models/onnx-import.ts) against PyTorch: torchvision's EfficientNet-B0,
// ConvNeXt-Tiny, RegNetY-400MF, ResNeXt-50, MobileNetV3 and ViT-B/16 at reduced width and depth
// (tests/fixtures/make_onnx.py, exported by torch.onnx.export at opsets 11–17), each imported,
// run by the CPU reference and on the GPU (optimised graph), logits within
// max|Δ| ≤ 1e-3·max|ref| of PyTorch's. Then our own exporter's files round-trip, and an
// unsupported operator is refused with every offending node named.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exportOnnx } from '../../bench/peers/onnx-export.js';
import { compile } from '../../engine/executor.js';
import { runReference } from '../../engine/graph.js';
import { readNpyPath } from '../../engine/npy.js';
import { optimize } from '../../engine/passes.js';
import type { HostTensor } from '../../kernels/kernel.js';
import { OnnxBuilder, encodeModel, type OnnxValueInfo } from '../../models/onnx/proto.js';
import { importOnnx, OnnxImportError } from '../../models/onnx-import.js';
import { loadModel } from '../../models/registry.js';
import { rand, testDevice } from '../helpers.js';

const FIXTURES = ['efficientnet_b0', 'convnext_tiny', 'regnety_400mf', 'resnext50', 'mobilenet_v3', 'vit_b16'];

function maxDiff(got: HostTensor, want: HostTensor): { diff: number; ref: number } {
  expect(got.shape).toEqual(want.shape);
  let diff = 0;
  let ref = 0;
  want.data.forEach((v, i) => {
    diff = Math.max(diff, Math.abs(v - got.data[i]));
    ref = Math.max(ref, Math.abs(v));
  });
  return { diff, ref };
}

async function fixture(name: string) {
  const x = await readNpyPath(`tests/fixtures/onnx/${name}.input.npy`);
  const want = await readNpyPath(`tests/fixtures/onnx/${name}.logits.npy`);
  const m = importOnnx(readFileSync(`tests/fixtures/onnx/${name}.onnx`), { batch: x.shape[0], size: x.shape[2] });
  return { x, want, m };
}

describe('torchvision models from ONNX files match PyTorch', () => {
  for (const name of FIXTURES) {
    it(`${name}: reference and GPU within 1e-3·max|ref|`, async () => {
      const { x, want, m } = await fixture(name);
      const ref = maxDiff(runReference(m.graph, { image: x.data })[m.logits], want);
      expect(ref.diff, `${name} reference: max|Δ| ${ref.diff}, max|ref| ${ref.ref}`).toBeLessThanOrEqual(
        1e-3 * ref.ref,
      );
      expect(ref.ref).toBeGreaterThan(0.1); // the fixture's logits are not ~0
      const { graph } = optimize(m.graph);
      const plan = await compile(await testDevice(), graph);
      try {
        const { outputs } = await plan.run({ image: x.data }, { outputs: [m.logits] });
        const gpu = maxDiff(outputs[m.logits], want);
        console.log(
          `${name}: GPU max|Δ| ${gpu.diff.toExponential(2)}, max|ref| ${gpu.ref.toFixed(3)}, ${graph.nodes.length} nodes`,
        );
        expect(gpu.diff, `${name} GPU: max|Δ| ${gpu.diff}, max|ref| ${gpu.ref}`).toBeLessThanOrEqual(1e-3 * gpu.ref);
      } finally {
        plan.dispose();
      }
    }, 300_000);
  }

  it('CNNs need no transposes inside the network; ViT only in attention', async () => {
    for (const name of FIXTURES) {
      const { m } = await fixture(name);
      const inner = m.graph.nodes.filter((n) => n.op === 'transpose' && n.name !== 'to_nhwc');
      expect(inner.length, name).toBe(m.report.transposes);
      if (name === 'vit_b16')
        expect(m.report.transposes).toBe(12); // 2 blocks × (q, k, v, q·kᵀ, ·v, merge)
      else expect(m.report.transposes, name).toBe(0);
    }
  });

  it('recognises the patterns torch writes (SiLU, exact GELU, LayerNorm below opset 17)', async () => {
    expect((await fixture('efficientnet_b0')).m.report.patterns).toEqual({ Silu: 31 });
    expect((await fixture('convnext_tiny')).m.report.patterns).toEqual({ Gelu: 5 });
    expect((await fixture('vit_b16')).m.report.patterns).toEqual({ LayerNormalization: 5, Gelu: 2 });
    const vit = (await fixture('vit_b16')).m.graph;
    expect(vit.nodes.filter((n) => n.op === 'layernorm')).toHaveLength(5);
    expect(vit.nodes.some((n) => n.op === 'binary' && n.attrs.op === 'div' && n.name.includes('ln_'))).toBe(false);
  });

  it('batch size follows the graph (the batch axis is dynamic in the files)', async () => {
    const { x, want } = await fixture('regnety_400mf');
    const one = importOnnx(readFileSync('tests/fixtures/onnx/regnety_400mf.onnx'), { batch: 1, size: x.shape[2] });
    const half = x.data.length / 2;
    const got = runReference(one.graph, { image: x.data.subarray(half) })[one.logits];
    const second = { shape: [1, want.shape[1]], data: want.data.subarray(want.shape[1]) };
    const d = maxDiff(got, second);
    expect(d.diff).toBeLessThanOrEqual(1e-3 * d.ref);
  });
});

describe('round trip through our own exporter', () => {
  const cases: [string, number, 13 | 17][] = [
    ['mobilenet_v2', 33, 13],
    ['resnet18', 35, 13],
    ['vit_tiny_patch16_224', 32, 17],
    ['vit_tiny_patch16_224', 48, 13],
  ];
  for (const [model, size, opset] of cases) {
    it(`${model} at ${size}px, opset ${opset}: export → import → same logits`, async () => {
      const m = await loadModel(model, { weights: 'random', seed: 3, batch: 2, size, classes: 11 });
      const { graph } = optimize(m.graph);
      const back = importOnnx(exportOnnx(graph, { opset }), { batch: 2, size });
      const x = rand(2 * 3 * size * size, 5);
      const want = runReference(m.graph, { image: x })[m.logits];
      const got = runReference(back.graph, { image: x })[back.logits];
      const d = maxDiff(got, want);
      expect(d.diff, `max|Δ| ${d.diff} vs max|ref| ${d.ref}`).toBeLessThanOrEqual(1e-5 * Math.max(1, d.ref));
      if (!model.startsWith('vit')) expect(back.report.transposes).toBe(0);
    }, 300_000);
  }
});

describe('errors', () => {
  const info = (name: string, dims: number[]): OnnxValueInfo => ({
    name,
    type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => ({ dim_value: d })) } } },
  });
  function model(build: (b: OnnxBuilder) => string, opset = 13): Uint8Array {
    const b = new OnnxBuilder(opset);
    b.reserve('x');
    const out = build(b);
    return encodeModel({
      ir_version: 8,
      opset_import: [{ domain: '', version: opset }],
      producer_name: 'test',
      producer_version: '0',
      graph: {
        name: 'g',
        node: b.nodes,
        initializer: b.initializers,
        input: [info('x', [1, 3, 5, 5])],
        output: [info(out, [1, 3])],
      },
    });
  }

  it('names every unsupported operator and node at once, before anything is built', () => {
    const bytes = model((b) => {
      const a = b.one('LpNormalization', ['x'], {}, 'norm');
      const c = b.one('Erf', [a], {}, 'lonely_erf');
      const d = b.one('GridSample', [c, c], {}, 'warp');
      const e = b.one('LpNormalization', [d], {}, 'norm2');
      return b.one('GlobalAveragePool', [e], {}, 'pool');
    });
    let err: unknown;
    try {
      importOnnx(bytes, { size: 5 });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OnnxImportError);
    const msg = (err as Error).message;
    expect(msg).toContain('unsupported ONNX operators LpNormalization, Erf, GridSample');
    for (const node of [
      '"norm" (LpNormalization)',
      '"lonely_erf" (Erf)',
      '"warp" (GridSample)',
      '"norm2" (LpNormalization)',
    ])
      expect(msg).toContain(node);
    expect(msg).toContain('4 nodes');
  });

  it('recognises the LayerNorm pattern at opset 18 (ReduceMean axes as an input)', () => {
    const bytes = model((b) => {
      const f = b.one('Flatten', [b.one('GlobalAveragePool', ['x'], {}, 'gap')], {}, 'flat');
      const axes = b.int64([-1]);
      const mean = b.one('ReduceMean', [f, axes], {}, 'mean');
      const d = b.one('Sub', [f, mean], {}, 'd');
      const v = b.one('ReduceMean', [b.one('Pow', [d, b.scalar(2)], {}, 'sq'), axes], {}, 'var');
      const s = b.one('Sqrt', [b.one('Add', [v, b.scalar(1e-5)], {}, 'veps')], {}, 'std');
      const n = b.one('Div', [d, s], {}, 'norm');
      return b.one(
        'Add',
        [b.one('Mul', [n, b.floats('g', [3], new Float32Array([1, 2, 3]))], {}, 'scale'), b.scalar(0.5)],
        {},
        'ln',
      );
    }, 18);
    const m = importOnnx(bytes, { size: 5 });
    expect(m.report.patterns).toEqual({ LayerNormalization: 1 });
    const x = rand(75, 4);
    const got = runReference(m.graph, { image: x })[m.logits].data;
    const mean = [0, 1, 2].map((c) => x.slice(25 * c, 25 * c + 25).reduce((a, v) => a + v, 0) / 25);
    const mu = (mean[0] + mean[1] + mean[2]) / 3;
    const sd = Math.sqrt(mean.reduce((a, v) => a + (v - mu) ** 2, 0) / 3 + 1e-5);
    mean.forEach((v, c) => expect(got[c]).toBeCloseTo(((v - mu) / sd) * (c + 1) + 0.5, 5));
  });

  it('refuses what a supported op cannot do, naming the node', () => {
    const bytes = model((b) => b.one('Clip', ['x', b.scalar(-1), b.scalar(1)], {}, 'clamp'));
    expect(() => importOnnx(bytes, { size: 5 })).toThrow(/node "clamp": Clip to \[-1, 1\]/);
  });

  it('refuses an input size the file fixes otherwise, and files that are not ONNX', () => {
    const bytes = model((b) => b.one('Flatten', [b.one('GlobalAveragePool', ['x'], {}, 'p')], {}, 'f'));
    expect(() => importOnnx(bytes, { size: 7 })).toThrow(/"x" is \[1,3,5,5\], the graph feeds \[1,3,7,7\]/);
    expect(() => importOnnx(new Uint8Array([1, 2, 3]))).toThrow(OnnxImportError);
    expect(() => importOnnx(model((b) => b.one('Flatten', ['x'], {}, 'f'), 9))).toThrow(/opset 9, supported 11–18/);
  });
});
