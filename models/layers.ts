// A thin typed layer over the graph IR that model builders use: each call adds a node named
// after its parameters and asks a WeightSource for the tensors it needs, by the builder's own
// names and shapes (NHWC activations, HWIO conv weights, [in,out] linear weights). A source
// maps those names to a file's tensors, or makes seeded random ones.

import type { Graph } from '../engine/graph.js';
import type { Activation } from '../kernels/kernel.js';
import { Rng, bnParams, heNormal } from './init.js';

/** What a parameter is: decides its PyTorch layout (conv, linear) and its random init.
 *  'gamma_last' is the BN scale ending a residual branch: random init keeps it small (0.1×),
 *  as torchvision's zero_init_residual does, so deep random ResNets keep logits of order 1. */
export type ParamKind = 'conv' | 'linear' | 'bias' | 'gamma' | 'gamma_last' | 'beta' | 'mean' | 'var' | 'embed';

export interface WeightSource {
  /** The tensor `name` of shape `shape`; `fanIn` lets random sources scale their init. */
  get(name: string, shape: number[], kind: ParamKind, fanIn: number): Float32Array;
}

/** Seeded random weights: He-normal convs and linears, near-identity norms, small embeddings. */
export class RandomWeights implements WeightSource {
  private rng: Rng;
  constructor(readonly seed = 0) {
    this.rng = new Rng(seed);
  }
  get(_name: string, shape: number[], kind: ParamKind, fanIn: number): Float32Array {
    const n = shape.reduce((a, b) => a * b, 1);
    const bn = () => bnParams(this.rng, n);
    switch (kind) {
      case 'conv':
      case 'linear':
        return heNormal(this.rng, n, fanIn);
      case 'bias':
        return this.rng.normals(n, 0.02);
      case 'gamma':
        return bn().gamma;
      case 'gamma_last':
        return bn().gamma.map((v) => 0.1 * v);
      case 'beta':
        return bn().beta;
      case 'mean':
        return bn().mean;
      case 'var':
        return bn().variance;
      case 'embed':
        return this.rng.normals(n, 0.02);
    }
  }
}

export interface ConvOpts {
  stride?: number;
  pad?: number | [number, number, number, number];
  dilation?: number;
  groups?: number;
  bias?: boolean;
  act?: Activation;
}

export class NetBuilder {
  constructor(
    readonly g: Graph,
    readonly w: WeightSource,
  ) {}

  param(name: string, shape: number[], kind: ParamKind, fanIn = 1): string {
    return this.g.constant(name, shape, this.w.get(name, shape, kind, fanIn));
  }

  channels(x: string): number {
    const s = this.g.shape(x);
    return s[s.length - 1];
  }

  conv(name: string, x: string, cout: number, k: number, o: ConvOpts = {}): string {
    const cin = this.channels(x);
    const groups = o.groups ?? 1;
    const pad = o.pad ?? Math.floor(((o.dilation ?? 1) * (k - 1)) / 2);
    const w = this.param(`${name}.weight`, [k, k, cin / groups, cout], 'conv', k * k * (cin / groups));
    const inputs = [x, w];
    if (o.bias) inputs.push(this.param(`${name}.bias`, [cout], 'bias'));
    return this.g.op(
      'conv2d',
      inputs,
      {
        stride: [o.stride ?? 1, o.stride ?? 1],
        pad: typeof pad === 'number' ? [pad, pad, pad, pad] : pad,
        dilation: [o.dilation ?? 1, o.dilation ?? 1],
        groups,
        act: o.act ?? 'none',
      },
      name,
    );
  }

  /** `residualLast`: this BN ends a residual branch (affects random init only). */
  batchnorm(name: string, x: string, act: Activation = 'none', eps = 1e-5, residualLast = false): string {
    const c = this.channels(x);
    const p = (n: string, kind: ParamKind) => this.param(`${name}.${n}`, [c], kind);
    return this.g.op(
      'batchnorm',
      [
        x,
        p('weight', residualLast ? 'gamma_last' : 'gamma'),
        p('bias', 'beta'),
        p('running_mean', 'mean'),
        p('running_var', 'var'),
      ],
      { eps, act },
      name,
    );
  }

  groupnorm(name: string, x: string, groups: number, act: Activation = 'none', eps = 1e-5): string {
    const c = this.channels(x);
    return this.g.op(
      'group_norm',
      [x, this.param(`${name}.weight`, [c], 'gamma'), this.param(`${name}.bias`, [c], 'beta')],
      { groups, eps, act },
      name,
    );
  }

  layernorm(name: string, x: string, eps = 1e-6): string {
    const d = this.channels(x);
    return this.g.op(
      'layernorm',
      [x, this.param(`${name}.weight`, [d], 'gamma'), this.param(`${name}.bias`, [d], 'beta')],
      { eps },
      name,
    );
  }

  linear(name: string, x: string, out: number, o: { bias?: boolean; act?: Activation } = {}): string {
    const k = this.channels(x);
    const inputs = [x, this.param(`${name}.weight`, [k, out], 'linear', k)];
    if (o.bias ?? true) inputs.push(this.param(`${name}.bias`, [out], 'bias'));
    return this.g.op('matmul', inputs, { act: o.act ?? 'none' }, name);
  }

  act(x: string, act: Activation, name?: string): string {
    return this.g.op('activation', [x], { act }, name);
  }

  add(a: string, b: string, act: Activation = 'none', name?: string): string {
    return this.g.op('add', [a, b], { act }, name);
  }
}
