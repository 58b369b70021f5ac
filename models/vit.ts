// Vision Transformer (Dosovitskiy et al., 2021) with timm's names and defaults: a patch-embedding
// conv, a class token, learned absolute position embeddings, pre-norm blocks
//   x = x + proj(attn(norm1(x)));  x = x + fc2(gelu(fc1(norm2(x))))
// (qkv with bias, LayerNorm eps 1e-6, exact erf GELU), a final norm and a linear head on the
// class token (timm global_pool='token').
//
// In NHWC the patch embedding [B, h, w, D] is already the token tensor [B, h·w, D] (row-major
// h then w, as timm's flatten(2).transpose(1, 2)), so the reshape is free. At an input side
// other than the checkpoint's, the position embedding's grid is resampled on the CPU at build
// time, as timm's resample_abs_pos_embed (see resample.ts).

import type { ModelDef, Preprocess } from './types.js';
import type { NetBuilder } from './layers.js';
import { resamplePosEmbed } from './resample.js';

export interface ViTConfig {
  /** Patch side P (the patch-embedding conv is P×P, stride P). */
  patch: number;
  /** Embedding width D. */
  dim: number;
  depth: number;
  heads: number;
  /** MLP hidden width = mlpRatio · D. */
  mlpRatio: number;
  /** Training input side: the checkpoint's pos_embed grid is imgSize / patch. */
  imgSize: number;
}

const vit = (patch: number, dim: number, depth: number, heads: number): ViTConfig => ({
  patch,
  dim,
  depth,
  heads,
  mlpRatio: 4,
  imgSize: 224,
});

export const VIT_CONFIGS: Record<string, ViTConfig> = {
  vit_tiny_patch16_224: vit(16, 192, 12, 3),
  vit_small_patch16_224: vit(16, 384, 12, 6),
  vit_base_patch16_224: vit(16, 768, 12, 12),
  vit_base_patch32_224: vit(32, 768, 12, 12),
  vit_large_patch16_224: vit(16, 1024, 24, 16),
};

/** timm's default_cfg for the augreg ViTs: resize 248, centre crop 224, bicubic, mean = std = 0.5. */
export const VIT_PREPROCESS: Preprocess = {
  size: 224,
  resizeMode: 'short',
  cropPct: 0.9,
  interpolation: 'bicubic',
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
};

const LN_EPS = 1e-6;

/** Tokens of the patch grid of an input of side `side`; throws unless P divides it. */
export function vitGrid(cfg: ViTConfig, h: number, w: number): number {
  for (const s of [h, w]) {
    if (s % cfg.patch !== 0) {
      throw new Error(
        `ViT input side ${s} is not a multiple of the patch size ${cfg.patch}: use a side like ${Math.max(1, Math.round(s / cfg.patch)) * cfg.patch}`,
      );
    }
  }
  if (h !== w) throw new Error(`ViT input must be square, got ${h}×${w}`);
  return h / cfg.patch;
}

function block(b: NetBuilder, cfg: ViTConfig, x: string, i: number): string {
  const p = `blocks.${i}`;
  const D = cfg.dim;
  let h = b.layernorm(`${p}.norm1`, x, LN_EPS);
  h = b.linear(`${p}.attn.qkv`, h, 3 * D);
  h = b.g.op('attention', [h], { heads: cfg.heads }, `${p}.attn`);
  h = b.linear(`${p}.attn.proj`, h, D);
  x = b.add(x, h, 'none', `${p}.residual1`);
  h = b.layernorm(`${p}.norm2`, x, LN_EPS);
  h = b.linear(`${p}.mlp.fc1`, h, Math.round(cfg.mlpRatio * D), { act: 'gelu' });
  h = b.linear(`${p}.mlp.fc2`, h, D);
  return b.add(x, h, 'none', `${p}.residual2`);
}

/** The ViT graph on NHWC `x` [B, S, S, 3]; S must be a multiple of the patch size. */
export function buildViT(
  b: NetBuilder,
  cfg: ViTConfig,
  x: string,
  classes: number,
): { logits: string; features: string } {
  const [B, H, W] = b.g.shape(x);
  const D = cfg.dim;
  const grid = vitGrid(cfg, H, W);
  const ckptGrid = cfg.imgSize / cfg.patch;
  if (!Number.isInteger(ckptGrid))
    throw new Error(`ViT imgSize ${cfg.imgSize} is not a multiple of the patch size ${cfg.patch}`);

  let t = b.conv('patch_embed.proj', x, D, cfg.patch, { stride: cfg.patch, pad: 0, bias: true });
  t = b.g.op('reshape', [t], { shape: [B, grid * grid, D] }, 'patch_embed.tokens');
  const cls = b.param('cls_token', [1, 1, D], 'embed');
  t = b.g.op('concat', [cls, t], { axis: 1 }, 'cls_token.concat');

  // Ask for the checkpoint's pos_embed, then fit its grid to this input's (bicubic with antialias,
  // as timm ≥ 0.9's resample_abs_pos_embed does by default).
  const ckptTokens = 1 + ckptGrid * ckptGrid;
  const pos = resamplePosEmbed(b.w.get('pos_embed', [1, ckptTokens, D], 'embed', 1), D, grid, 1, { antialias: true });
  t = b.add(t, b.g.constant('pos_embed', [1, 1 + grid * grid, D], pos), 'none', 'pos_embed.add');

  for (let i = 0; i < cfg.depth; i++) t = block(b, cfg, t, i);
  t = b.layernorm('norm', t, LN_EPS);
  const clsOut = b.g.op('slice', [t], { axis: 1, start: 0, end: 1 }, 'pool');
  const features = b.g.op('reshape', [clsOut], { shape: [B, D] }, 'pool.flatten');
  const logits = b.linear('head', features, classes);
  return { logits, features };
}

export function makeViT(name: string, cfg: ViTConfig): ModelDef {
  return {
    name,
    family: 'vit',
    preprocess: { ...VIT_PREPROCESS, size: cfg.imgSize },
    headWeight: 'head.weight',
    mapping: {},
    build: (b, x, classes) => buildViT(b, cfg, x, classes),
  };
}

/** Every ViT in VIT_CONFIGS, for the registry. */
export const VIT_MODELS: ModelDef[] = Object.entries(VIT_CONFIGS).map(([name, cfg]) => makeViT(name, cfg));
