// The I/O-free half of `--weights hf:…` (models/hub.ts): the name's forms, the Hub's URLs, what
// its headers say about a file, and timm config.json → model and preprocessing.

import { describe, expect, it } from 'vitest';
import {
  hubFileMeta,
  hubUrl,
  modelFromHubConfig,
  normalizeEtag,
  parseHubSpec,
  preprocessFromTimm,
} from '../../models/hub.js';
import { runReference } from '../../engine/graph.js';
import { bufferSource, encodeSafetensors, openSafetensors } from '../../engine/safetensors.js';
import { getModel, loadModel, randomCheckpoint } from '../../models/registry.js';
import { expectClose, rand } from '../helpers.js';

const headers = (h: Record<string, string>) => (n: string) => h[n] ?? null;
const SHA256 = 'a'.repeat(64);
const SHA1 = 'b'.repeat(40);

describe('hf: names', () => {
  it('parses ORG/REPO, @REVISION and /FILE', () => {
    expect(parseHubSpec('hf:timm/resnet50.a1_in1k')).toEqual({
      repo: 'timm/resnet50.a1_in1k',
      revision: 'main',
      file: 'model.safetensors',
    });
    expect(parseHubSpec('hf:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k@v1.0')).toMatchObject({
      revision: 'v1.0',
      file: 'model.safetensors',
    });
    expect(parseHubSpec('hf:org/repo@0123abc/weights/best.safetensors')).toEqual({
      repo: 'org/repo',
      revision: '0123abc',
      file: 'weights/best.safetensors',
    });
    expect(parseHubSpec('hf:org/repo/other.safetensors')).toMatchObject({
      revision: 'main',
      file: 'other.safetensors',
    });
  });

  it('rejects malformed names, saying what the form is', () => {
    expect(() => parseHubSpec('hf:resnet50')).toThrow(/expected hf:ORG\/REPO\[@REVISION\]\[\/FILE\]/);
    expect(() => parseHubSpec('hf:org/re--po')).toThrow(/"re--po" is not a valid repository name/);
    expect(() => parseHubSpec('hf:org/repo@')).toThrow(/expected hf:ORG/);
    expect(() => parseHubSpec('hf:org/repo/../x')).toThrow(/not a file path inside the repository/);
    expect(() => parseHubSpec('timm/resnet50')).toThrow(/not a Hub name/);
  });

  it('builds the resolve URL, each part encoded', () => {
    const r = parseHubSpec('hf:org/repo@refs%2Fpr%2F1/a b/c.safetensors');
    expect(r.revision).toBe('refs%2Fpr%2F1');
    expect(hubUrl('http://127.0.0.1:9/', { repo: 'org/repo', revision: 'refs/pr/1', file: 'a b/c.safetensors' })).toBe(
      'http://127.0.0.1:9/org/repo/resolve/refs%2Fpr%2F1/a%20b/c.safetensors',
    );
  });
});

describe('file metadata from headers', () => {
  it('prefers X-Linked-Etag / X-Linked-Size (LFS) over ETag / Content-Length', () => {
    const m = hubFileMeta(
      headers({
        'x-linked-etag': `"${SHA256}"`,
        'x-linked-size': '12345',
        etag: `"${SHA1}"`,
        'content-length': '1',
        'x-repo-commit': 'c'.repeat(40),
      }),
      'f',
    );
    expect(m).toEqual({ etag: SHA256, size: 12345, commit: 'c'.repeat(40), digest: { kind: 'sha256', hex: SHA256 } });
  });

  it('takes a plain git file’s ETag as its blob SHA-1, and refuses what it cannot verify', () => {
    expect(hubFileMeta(headers({ etag: `W/"${SHA1}"`, 'content-length': '7' }), 'f')).toEqual({
      etag: SHA1,
      size: 7,
      commit: null,
      digest: { kind: 'git-sha1', hex: SHA1 },
    });
    expect(() => hubFileMeta(headers({ etag: '"xyz"', 'content-length': '7' }), 'f')).toThrow(
      /ETag ""xyz"" is neither a SHA-256/,
    );
    expect(() => hubFileMeta(headers({ 'content-length': '7' }), 'f')).toThrow(/no ETag/);
    expect(() => hubFileMeta(headers({ etag: SHA1 }), 'f')).toThrow(/no usable size/);
    expect(normalizeEtag(' W/"abc" ')).toBe('abc');
  });
});

describe('timm config.json', () => {
  it('maps architecture and pretrained_cfg onto our model and its preprocessing', () => {
    const m = modelFromHubConfig(
      {
        architecture: 'resnet50',
        num_classes: 1000,
        pretrained_cfg: {
          input_size: [3, 224, 224],
          test_input_size: [3, 288, 288],
          interpolation: 'bicubic',
          crop_pct: 0.95,
          crop_mode: 'center',
          mean: [0.485, 0.456, 0.406],
          std: [0.229, 0.224, 0.225],
        },
      },
      'hf:timm/resnet50.a1_in1k',
    );
    expect(m.def.name).toBe('resnet50');
    expect(m.def.build).toBe(getModel('resnet50').build);
    expect(m.def.preprocess).toEqual({ ...getModel('resnet50').preprocess, interpolation: 'bicubic', cropPct: 0.95 });
    expect(getModel('resnet50').preprocess.cropPct).toBe(0.875); // the registry is untouched
    expect(m.numClasses).toBe(1000);
  });

  it('reads squash crops (BiT), top-level fields of older configs, and keeps defaults for missing ones', () => {
    const bit = modelFromHubConfig(
      {
        architecture: 'resnetv2_50x1_bit',
        pretrained_cfg: { input_size: [3, 384, 384], crop_pct: 1, crop_mode: 'squash' },
      },
      'x',
    );
    expect(bit.def.preprocess).toMatchObject({ size: 384, resizeMode: 'squash', cropPct: 1, mean: [0.5, 0.5, 0.5] });
    const old = modelFromHubConfig({ architecture: 'vit_tiny_patch16_224', crop_pct: 0.875, num_classes: 10 }, 'x');
    expect(old.def.preprocess).toMatchObject({
      size: 224,
      cropPct: 0.875,
      resizeMode: 'short',
      interpolation: 'bicubic',
    });
    expect(old.numClasses).toBe(10);
  });

  it('names what it cannot take', () => {
    expect(() => modelFromHubConfig({ architecture: 'efficientnet_b0' }, 'hf:timm/efficientnet_b0.ra_in1k')).toThrow(
      /hf:timm\/efficientnet_b0.ra_in1k: architecture "efficientnet_b0" has no cnnlab builder\. Supported: .*resnet50.*--model path\/to\/model\.onnx/,
    );
    expect(() => modelFromHubConfig({ num_classes: 3 }, 'x')).toThrow(/no "architecture"/);
    expect(modelFromHubConfig({ num_classes: 3 }, 'x', 'resnet18').def.name).toBe('resnet18');
    expect(() => modelFromHubConfig({ architecture: 'resnet18' }, 'x', 'resnet50')).toThrow(/--model resnet50, but/);
    expect(() => modelFromHubConfig({ architecture: 'resnet18', model_args: { drop_rate: 0.1 } }, 'x')).toThrow(
      /model_args/,
    );
    expect(() => modelFromHubConfig({ architecture: 'resnet18', num_classes: 0 }, 'x')).toThrow(/num_classes 0/);
    expect(() => modelFromHubConfig([], 'x')).toThrow(/not a JSON object/);
    const base = getModel('resnet18').preprocess;
    expect(() => preprocessFromTimm({ input_size: [3, 224, 200] }, base, 'c')).toThrow(/not \[3, S, S\]/);
    expect(() => preprocessFromTimm({ interpolation: 'lanczos' }, base, 'c')).toThrow(/"lanczos" is not supported/);
    expect(() => preprocessFromTimm({ crop_mode: 'border' }, base, 'c')).toThrow(/crop_mode "border"/);
    expect(() => preprocessFromTimm({ crop_pct: 1.5 }, base, 'c')).toThrow(/crop_pct 1.5/);
    expect(() => preprocessFromTimm({ std: [1, 0, 1] }, base, 'c')).toThrow(/std/);
    expect(() => preprocessFromTimm({ mean: [1, 2] }, base, 'c')).toThrow(/mean \[1,2\] is not three numbers/);
  });
});

describe("timm's mobilenetv2_100 (torchvision's network under timm's names)", () => {
  it('asks for exactly the tensors a timm mobilenetv2_100 state_dict has, with their shapes', () => {
    // timm's EfficientNet builder: conv_stem/bn1, blocks.{stage}.{i} with the stage depths of the
    // MobileNetV2 table, depthwise-separable first block, inverted residuals after, conv_head/bn2.
    const bn = (p: string) => ['weight', 'bias', 'running_mean', 'running_var'].map((x) => `${p}.${x}`);
    const want = ['conv_stem.weight', ...bn('bn1')];
    want.push(
      'blocks.0.0.conv_dw.weight',
      ...bn('blocks.0.0.bn1'),
      'blocks.0.0.conv_pw.weight',
      ...bn('blocks.0.0.bn2'),
    );
    [2, 3, 4, 3, 3, 1].forEach((depth, s) => {
      for (let i = 0; i < depth; i++) {
        const b = `blocks.${s + 1}.${i}`;
        want.push(`${b}.conv_pw.weight`, ...bn(`${b}.bn1`), `${b}.conv_dw.weight`, ...bn(`${b}.bn2`));
        want.push(`${b}.conv_pwl.weight`, ...bn(`${b}.bn3`));
      }
    });
    want.push('conv_head.weight', ...bn('bn2'), 'classifier.weight', 'classifier.bias');
    const ckpt = randomCheckpoint('mobilenetv2_100');
    expect(Object.keys(ckpt).sort()).toEqual(want.sort());
    const shape = (n: string) => ckpt[n].shape;
    expect(shape('conv_stem.weight')).toEqual([32, 3, 3, 3]);
    expect(shape('blocks.0.0.conv_dw.weight')).toEqual([32, 1, 3, 3]);
    expect(shape('blocks.0.0.conv_pw.weight')).toEqual([16, 32, 1, 1]);
    expect(shape('blocks.1.0.conv_pw.weight')).toEqual([96, 16, 1, 1]);
    expect(shape('blocks.5.2.conv_dw.weight')).toEqual([960, 1, 3, 3]);
    expect(shape('blocks.6.0.conv_pwl.weight')).toEqual([320, 960, 1, 1]);
    expect(shape('conv_head.weight')).toEqual([1280, 320, 1, 1]);
    expect(shape('classifier.weight')).toEqual([1000, 1280]);
    expect(getModel('mobilenetv2_100').preprocess).toMatchObject({ interpolation: 'bicubic', cropPct: 0.875 });
  });

  it('gives the same logits from a timm-named checkpoint as mobilenet_v2 from the torchvision-named one', async () => {
    // Same seed, same builder, same request order: the same values under the two naming schemes.
    const open = (name: string) =>
      openSafetensors(bufferSource(encodeSafetensors(randomCheckpoint(name, { seed: 4, classes: 7 })), name));
    const x = rand(2 * 3 * 33 * 33, 9);
    const logits = async (name: string) => {
      const m = await loadModel(name, { weights: await open(name), batch: 2, size: 33 });
      expect(m.classes).toBe(7);
      return runReference(m.graph, { image: x }, [m.logits])[m.logits];
    };
    const timm = await logits('mobilenetv2_100');
    expectClose(timm, await logits('mobilenet_v2'), { atol: 0, rtol: 0 }, 'timm names vs torchvision names');
    expect(Math.max(...timm.data) - Math.min(...timm.data)).toBeGreaterThan(1e-3);
  });
});
