// ONNX import: a model file (opset 11–18, as torch.onnx.export writes it) becomes cnnlab graph
// nodes in NHWC that run on our own kernels through the same passes, memory plan and tuner as the
// built-in families. docs/onnx-import.md has the supported operators, the layout decision, the
// patterns and the tolerance.
//
//   parse      models/onnx/proto.ts decodes the ModelProto; attributes and initialisers are
//              decoded (models/onnx/tensor.ts); Constant nodes become constants
//   patterns   LayerNorm, exact GELU and SiLU subgraphs become one op (models/onnx/patterns.ts)
//   check      every node's op type is one we convert, else one error listing every unsupported
//              node, before anything is built or run
//   convert    node by node on the actual input shape (models/onnx/convert.ts): shape arithmetic
//              folds to constants, the rest becomes cnnlab nodes, NCHW values held NHWC
//
// `OnnxNet.emit` adds the network to a graph on an NHWC input, as a ModelDef's build does, so an
// ONNX model plugs into loadModel (batch, size, input layout, preludes) like a built-in name
// (`onnxModelDef`).

import { Graph } from '../engine/graph.js';
import type { NetBuilder } from './layers.js';
import { Converter, SUPPORTED_OPS } from './onnx/convert.js';
import { constantAttr } from './onnx/fold.js';
import { type AttrValue, fusePatterns, type INode } from './onnx/patterns.js';
import { AttributeType, decodeModel, type OnnxAttribute, type OnnxModel } from './onnx/proto.js';
import { type ConstTensor, fromProto, OnnxImportError } from './onnx/tensor.js';
import { type BuiltModel, IMAGENET_MEAN, IMAGENET_STD, type ModelDef, type Preprocess } from './types.js';

export { OnnxImportError } from './onnx/tensor.js';

/** The opsets whose semantics the converter follows (the default domain). */
export const OPSET_RANGE = [11, 18] as const;

export interface OnnxEmitReport {
  /** transpose nodes the layout needed inside the network (0 for CNNs; see convert.ts). */
  transposes: number;
  /** Pattern replacements by kind (LayerNormalization, Gelu, Silu). */
  patterns: Record<string, number>;
  /** ONNX nodes by op type, after the patterns. */
  ops: Record<string, number>;
}

export interface OnnxEmitted extends BuiltModel {
  report: OnnxEmitReport;
}

const decoder = new TextDecoder();

function attrValue(a: OnnxAttribute, where: string): AttrValue {
  switch (a.type) {
    case AttributeType.FLOAT:
      return a.f ?? 0;
    case AttributeType.INT:
      return Number(a.i ?? 0);
    case AttributeType.STRING:
      return decoder.decode(a.s ?? new Uint8Array());
    case AttributeType.TENSOR:
      return fromProto(a.t!, where);
    case AttributeType.FLOATS:
      return [...(a.floats ?? [])];
    case AttributeType.INTS:
      return (a.ints ?? []).map(Number);
    case 8: // STRINGS
      return (a.strings ?? []).map((s) => decoder.decode(s));
    default:
      throw new OnnxImportError(
        `node "${where}": attribute "${a.name}" has type ${a.type} (graphs, sparse tensors), which is not supported`,
      );
  }
}

/** A parsed, pattern-fused and checked ONNX network, ready to emit into graphs. */
export class OnnxNet {
  readonly opset: number;
  /** The image input's ONNX name and shape (null for a dynamic dim). */
  readonly inputName: string;
  readonly inputShape: (number | null)[];
  readonly outputName: string;
  readonly producer: string;
  private readonly consts = new Map<string, ConstTensor>();
  private readonly nodes: INode[];
  private readonly patterns: Record<string, number>;

  private constructor(model: OnnxModel, file: string) {
    const opset = model.opset_import.find((o) => !o.domain || o.domain === 'ai.onnx');
    if (!opset) throw new OnnxImportError(`${file}: no opset for the default ONNX domain`);
    this.opset = Number(opset.version);
    if (this.opset < OPSET_RANGE[0] || this.opset > OPSET_RANGE[1])
      throw new OnnxImportError(`${file}: opset ${this.opset}, supported ${OPSET_RANGE[0]}–${OPSET_RANGE[1]}`);
    this.producer = `${model.producer_name ?? ''} ${model.producer_version ?? ''}`.trim();
    const g = model.graph;
    for (const t of g.initializer) this.consts.set(t.name, fromProto(t, file));
    const inputs = g.input.filter((v) => !this.consts.has(v.name));
    if (inputs.length !== 1)
      throw new OnnxImportError(
        `${file}: expected one image input, found ${inputs.length} (${inputs.map((v) => v.name).join(', ')})`,
      );
    this.inputName = inputs[0].name;
    const dims = inputs[0].type?.tensor_type?.shape?.dim ?? [];
    this.inputShape = dims.map((d) => (d.dim_value ? Number(d.dim_value) : null));
    if (this.inputShape.length !== 4 || (this.inputShape[1] !== null && this.inputShape[1] !== 3))
      throw new OnnxImportError(
        `${file}: input "${this.inputName}" is [${this.inputShape.map((d) => d ?? '?')}], expected an NCHW image [N,3,H,W]`,
      );
    if (g.output.length < 1) throw new OnnxImportError(`${file}: the graph has no output`);
    this.outputName = g.output[0].name;

    const raw: INode[] = [];
    g.node.forEach((n, k) => {
      const name = n.name || `${n.op_type}_${k}`;
      const domain = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : '';
      const attrs: Record<string, AttrValue> = {};
      for (const a of n.attribute) attrs[a.name] = attrValue(a, name);
      raw.push({ name, op: `${domain}${n.op_type}`, inputs: [...n.input], outputs: [...n.output], attrs });
    });
    // Constant nodes are values, not work.
    const rest: INode[] = [];
    for (const n of raw) {
      if (n.op === 'Constant') this.consts.set(n.outputs[0], constantAttr(n));
      else rest.push(n);
    }
    const fused = fusePatterns(rest, this.consts, new Set(g.output.map((o) => o.name)));
    this.nodes = fused.nodes;
    this.patterns = fused.counts;
    const bad = this.nodes.filter((n) => !SUPPORTED_OPS.has(n.op));
    if (bad.length > 0) {
      const types = [...new Set(bad.map((n) => n.op))];
      throw new OnnxImportError(
        `${file}: unsupported ONNX operator${types.length > 1 ? 's' : ''} ${types.join(', ')} ` +
          `(${bad.length} node${bad.length > 1 ? 's' : ''}: ${bad.map((n) => `"${n.name}" (${n.op})`).join(', ')}); ` +
          'docs/onnx-import.md lists what is supported',
      );
    }
  }

  /** Decode and check an ONNX file; `file` names it in errors. */
  static parse(bytes: Uint8Array, file = 'ONNX model'): OnnxNet {
    let model: OnnxModel;
    try {
      model = decodeModel(bytes);
    } catch (e) {
      throw new OnnxImportError(`${file} is not an ONNX model: ${(e as Error).message}`);
    }
    if (!model.graph) throw new OnnxImportError(`${file} is not an ONNX model (no graph)`);
    return new OnnxNet(model, file);
  }

  /** The input side the file was exported at, if it fixed one. */
  get size(): number | undefined {
    const [, , h, w] = this.inputShape;
    return h !== null && h === w ? h : undefined;
  }

  /** Add the network to `g`, reading the NHWC image `x` [N,H,W,3]; returns logits [N,K] and the pre-logit features. */
  emit(g: Graph, x: string): OnnxEmitted {
    const [n, h, w, c] = g.shape(x);
    const want = this.inputShape;
    const got = [n, c, h, w];
    if (want.some((d, k) => d !== null && d !== got[k]))
      throw new OnnxImportError(
        `the ONNX input "${this.inputName}" is [${want.map((d) => d ?? '?')}], the graph feeds [${got}] (NCHW); ` +
          'export the model with dynamic axes for the sizes you want to vary',
      );
    const cv = new Converter(g, this.opset);
    for (const [name, t] of this.consts) cv.env.set(name, { kind: 'const', t });
    cv.env.set(this.inputName, { kind: 'act', v: x, shape: got, perm: [0, 2, 3, 1] });
    const ops: Record<string, number> = {};
    for (const node of this.nodes) {
      ops[node.op] = (ops[node.op] ?? 0) + 1;
      cv.convert(node);
    }
    const out = cv.env.get(this.outputName);
    if (out?.kind !== 'act' || out.shape.length !== 2)
      throw new OnnxImportError(
        `the ONNX output "${this.outputName}" must be computed logits [N,K], got ${out?.kind === 'act' ? `[${out.shape}]` : 'a constant'}`,
      );
    const logits = cv.plain(out);
    return {
      logits,
      features: cv.linearInput.get(logits) ?? logits,
      report: { transposes: cv.transposes, patterns: { ...this.patterns }, ops },
    };
  }
}

export interface OnnxImportOptions {
  batch?: number;
  /** Input side; default the file's. */
  size?: number;
  /** 'nchw' (default): input 'image' [N,3,H,W] as PyTorch feeds it, transposed at the graph boundary; 'nhwc': [N,H,W,3]. */
  inputLayout?: 'nchw' | 'nhwc';
}

export interface OnnxImported extends OnnxEmitted {
  graph: Graph;
  input: string;
  classes: number;
}

/** An ONNX file as a complete cnnlab graph with input 'image' and outputs logits and features. */
export function importOnnx(bytes: Uint8Array | OnnxNet, o: OnnxImportOptions = {}): OnnxImported {
  const net = bytes instanceof OnnxNet ? bytes : OnnxNet.parse(bytes);
  const size = o.size ?? net.size;
  if (size === undefined) throw new OnnxImportError('the ONNX input has dynamic H/W: give the input size');
  const n = o.batch ?? net.inputShape[0] ?? 1;
  const g = new Graph();
  let x: string;
  if ((o.inputLayout ?? 'nchw') === 'nchw') {
    g.input('image', [n, 3, size, size]);
    x = g.op('transpose', ['image'], { perm: [0, 2, 3, 1] }, 'to_nhwc');
  } else x = g.input('image', [n, size, size, 3]);
  const built = net.emit(g, x);
  g.markOutputs(built.logits, ...(built.features === built.logits ? [] : [built.features]));
  g.prune();
  return { ...built, graph: g, input: 'image', classes: g.shape(built.logits)[1] };
}

/** ImageNet evaluation defaults (short side ⌊size/0.875⌋, centre crop, bilinear, ImageNet mean/std). */
export function defaultOnnxPreprocess(size: number): Preprocess {
  return {
    size,
    resizeMode: 'short',
    cropPct: 0.875,
    interpolation: 'bilinear',
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
  };
}

/** Checks a preprocessing description (a `--preprocess` JSON or a sidecar file) over `base`; names every bad field. */
export function parsePreprocess(json: unknown, base: Preprocess, where: string): Preprocess {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${where}: expected a JSON object`);
  const o = json as Record<string, unknown>;
  const known = ['size', 'resizeMode', 'cropPct', 'interpolation', 'mean', 'std'];
  const bad: string[] = Object.keys(o)
    .filter((k) => !known.includes(k))
    .map((k) => `unknown field "${k}" (known: ${known.join(', ')})`);
  const triple = (v: unknown) =>
    Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  const p = { ...base, ...o } as Preprocess;
  if (!Number.isInteger(p.size) || p.size < 1) bad.push(`size ${JSON.stringify(p.size)} is not a positive integer`);
  if (p.resizeMode !== 'short' && p.resizeMode !== 'squash')
    bad.push(`resizeMode ${JSON.stringify(p.resizeMode)} is not short or squash`);
  if (typeof p.cropPct !== 'number' || !(p.cropPct > 0 && p.cropPct <= 1))
    bad.push(`cropPct ${JSON.stringify(p.cropPct)} is not in (0, 1]`);
  if (p.interpolation !== 'bilinear' && p.interpolation !== 'bicubic')
    bad.push(`interpolation ${JSON.stringify(p.interpolation)} is not bilinear or bicubic`);
  if (!triple(p.mean)) bad.push(`mean ${JSON.stringify(p.mean)} is not three numbers`);
  if (!triple(p.std) || !p.std.every((s) => s > 0))
    bad.push(`std ${JSON.stringify(p.std)} is not three positive numbers`);
  if (bad.length > 0) throw new Error(`${where}: ${bad.join('; ')}`);
  return p;
}

/**
 * A ModelDef for an ONNX file, registered under `name` (the path the user gave): its build emits
 * the file's network (weights included: the weight source is not asked for anything).
 */
export function onnxModelDef(name: string, net: OnnxNet, preprocess?: Preprocess): ModelDef {
  return {
    name,
    family: 'onnx',
    preprocess: preprocess ?? defaultOnnxPreprocess(net.size ?? 224),
    headWeight: '',
    mapping: {},
    embeddedWeights: `${name.split(/[\\/]/).pop()} (ONNX${net.producer ? `, ${net.producer}` : ''})`,
    fixedSize: net.inputShape[2] !== null && net.inputShape[3] !== null ? net.size : undefined,
    build(b: NetBuilder, x: string, _classes: number): BuiltModel {
      const { logits, features } = net.emit(b.g, x);
      return { logits, features };
    },
  };
}
