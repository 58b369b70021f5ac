// ONNX on the wire: the subset of onnx.proto (package onnx, proto2) that the exporter
// (bench/peers/onnx-export.ts) writes and the importer (models/onnx-import.ts) reads, as a protobufjs
// JSON descriptor; plain-object views of its messages; a builder that collects one graph's nodes
// and initialisers under unique names; encode and decode of a ModelProto. It sits in the models
// layer so that both can use it (bench may import models, not the other way round).
//
// Field numbers are copied from onnx/onnx `onnx/onnx.proto`; fields neither side uses (training
// info, sparse tensors, segments, quantization annotations) are left out, which a proto2 decoder
// skips. Repeated scalars are unpacked (the proto2 default) except TensorProto.float_data,
// which onnx.proto declares [packed = true]. Initialisers use raw_data, little-endian.

import protobuf from 'protobufjs';

/** TensorProto.DataType values used here (the importer reads all of these; the exporter writes FLOAT and INT64). */
export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11 } as const;

/** AttributeProto.AttributeType values used here. */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

const unpacked = { packed: false };

export const ONNX_DESCRIPTOR = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            ref_attr_name: { type: 'string', id: 21 },
            doc_string: { type: 'string', id: 13 },
            type: { type: 'AttributeType', id: 20 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            g: { type: 'GraphProto', id: 6 },
            floats: { rule: 'repeated', type: 'float', id: 7, options: unpacked },
            ints: { rule: 'repeated', type: 'int64', id: 8, options: unpacked },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
            tensors: { rule: 'repeated', type: 'TensorProto', id: 10 },
            graphs: { rule: 'repeated', type: 'GraphProto', id: 11 },
          },
          nested: {
            AttributeType: {
              values: {
                UNDEFINED: 0,
                FLOAT: 1,
                INT: 2,
                STRING: 3,
                TENSOR: 4,
                GRAPH: 5,
                SPARSE_TENSOR: 11,
                FLOATS: 6,
                INTS: 7,
                STRINGS: 8,
                TENSORS: 9,
                GRAPHS: 10,
                SPARSE_TENSORS: 12,
              },
            },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'TypeProto', id: 2 },
            doc_string: { type: 'string', id: 3 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            op_type: { type: 'string', id: 4 },
            domain: { type: 'string', id: 7 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            doc_string: { type: 'string', id: 6 },
          },
        },
        ModelProto: {
          fields: {
            ir_version: { type: 'int64', id: 1 },
            opset_import: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producer_name: { type: 'string', id: 2 },
            producer_version: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            model_version: { type: 'int64', id: 5 },
            doc_string: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadata_props: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        StringStringEntryProto: {
          fields: {
            key: { type: 'string', id: 1 },
            value: { type: 'string', id: 2 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            doc_string: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            value_info: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1, options: unpacked },
            data_type: { type: 'int32', id: 2 },
            float_data: { rule: 'repeated', type: 'float', id: 4, options: { packed: true } },
            int32_data: { rule: 'repeated', type: 'int32', id: 5, options: { packed: true } },
            int64_data: { rule: 'repeated', type: 'int64', id: 7, options: { packed: true } },
            name: { type: 'string', id: 8 },
            doc_string: { type: 'string', id: 12 },
            raw_data: { type: 'bytes', id: 9 },
            external_data: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            data_location: { type: 'int32', id: 14 },
          },
        },
        TensorShapeProto: {
          fields: {
            dim: { rule: 'repeated', type: 'Dimension', id: 1 },
          },
          nested: {
            Dimension: {
              oneofs: { value: { oneof: ['dim_value', 'dim_param'] } },
              fields: {
                dim_value: { type: 'int64', id: 1 },
                dim_param: { type: 'string', id: 2 },
                denotation: { type: 'string', id: 3 },
              },
            },
          },
        },
        TypeProto: {
          oneofs: { value: { oneof: ['tensor_type'] } },
          fields: {
            tensor_type: { type: 'Tensor', id: 1 },
            denotation: { type: 'string', id: 6 },
          },
          nested: {
            Tensor: {
              fields: {
                elem_type: { type: 'int32', id: 1 },
                shape: { type: 'TensorShapeProto', id: 2 },
              },
            },
          },
        },
        OperatorSetIdProto: {
          fields: {
            domain: { type: 'string', id: 1 },
            version: { type: 'int64', id: 2 },
          },
        },
      },
    },
  },
};

// ---- plain-object views of the messages (what the exporter builds and the tests decode) -----------

export interface OnnxTensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  float_data?: number[];
  int32_data?: number[];
  int64_data?: number[];
  /** Set when the data lives in another file (models over 2 GB); the importer refuses those. */
  external_data?: { key: string; value: string }[];
  data_location?: number;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
}

export interface OnnxNode {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute: OnnxAttribute[];
  domain?: string;
}

export interface OnnxValueInfo {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: { dim_value?: number; dim_param?: string }[] } } };
}

export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  doc_string?: string;
}

export interface OnnxModel {
  ir_version: number;
  opset_import: { domain: string; version: number }[];
  producer_name: string;
  producer_version: string;
  graph: OnnxGraph;
  metadata_props?: { key: string; value: string }[];
  doc_string?: string;
}

// ---- writing a graph: unique names, nodes, initialisers ------------------------------------------

/** An attribute value with its ONNX type made explicit (an integer-valued float stays a float). */
export type Attr = { f: number } | { i: number } | { ints: number[] } | { s: string };
export const i = (v: number): Attr => ({ i: v });
export const f = (v: number): Attr => ({ f: v });
export const ints = (v: number[]): Attr => ({ ints: v });

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function f32Bytes(data: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4),
    v = new DataView(out.buffer);
  data.forEach((x, k) => v.setFloat32(4 * k, x, true));
  return out;
}

function i64Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8),
    v = new DataView(out.buffer);
  values.forEach((x, k) => v.setBigInt64(8 * k, BigInt(x), true));
  return out;
}

/** Collects the nodes and initialisers of one ONNX graph, handing out unique tensor names. */
export class OnnxBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();
  private readonly keyed = new Map<string, string>();

  constructor(readonly opset: number) {}

  /** Mark names as taken (graph inputs and outputs). */
  reserve(name: string): void {
    this.used.add(name);
  }

  fresh(base: string): string {
    let name = base;
    for (let k = 1; this.used.has(name); k++) name = `${base}_${k}`;
    this.used.add(name);
    return name;
  }

  /** Emit a node; `outs` are the base names of its outputs. */
  node(op: string, inputs: string[], attrs: Record<string, Attr>, outs: string[]): string[] {
    const output = outs.map((o) => this.fresh(o));
    const attribute: OnnxAttribute[] = Object.entries(attrs).map(([name, a]) => {
      if ('f' in a) return { name, type: AttributeType.FLOAT, f: a.f };
      if ('i' in a) return { name, type: AttributeType.INT, i: a.i };
      if ('ints' in a) return { name, type: AttributeType.INTS, ints: a.ints };
      return { name, type: AttributeType.STRING, s: new TextEncoder().encode(a.s) };
    });
    this.nodes.push({ name: output[0], op_type: op, input: inputs, output, attribute });
    return output;
  }

  one(op: string, inputs: string[], attrs: Record<string, Attr>, out: string): string {
    return this.node(op, inputs, attrs, [out])[0];
  }

  /** Identity into a reserved name (a graph output that is an input, a constant or another output). */
  identity(from: string, to: string): void {
    this.nodes.push({ name: to, op_type: 'Identity', input: [from], output: [to], attribute: [] });
  }

  floats(base: string, dims: number[], data: Float32Array, key?: string): string {
    const hit = key === undefined ? undefined : this.keyed.get(key);
    if (hit) return hit;
    const name = this.fresh(base);
    this.initializers.push({ name, dims: [...dims], data_type: DataType.FLOAT, raw_data: f32Bytes(data) });
    if (key !== undefined) this.keyed.set(key, name);
    return name;
  }

  /** A rank-0 f32 constant (Clip bounds, eps, GELU's constants), shared by value. */
  scalar(v: number): string {
    const text = Object.is(v, -0) ? '-0' : String(v);
    return this.floats(`const_${text}`, [], new Float32Array([v]), `f32:${text}`);
  }

  /** A 1-D int64 constant (shapes, axes, pads), shared by value. */
  int64(values: number[]): string {
    const key = `i64:${values.join(',')}`;
    const hit = this.keyed.get(key);
    if (hit) return hit;
    const name = this.fresh(`i64_${values.join('_').replace(/-/g, 'm')}`);
    this.initializers.push({ name, dims: [values.length], data_type: DataType.INT64, raw_data: i64Bytes(values) });
    this.keyed.set(key, name);
    return name;
  }

  /** Rename a node output everywhere (graph outputs take their cnnlab names at the end). */
  rename(from: string, to: string): boolean {
    const producer = this.nodes.find((n) => n.output.includes(from));
    if (!producer) return false;
    for (const n of this.nodes) {
      n.input = n.input.map((x) => (x === from ? to : x));
      n.output = n.output.map((x) => (x === from ? to : x));
    }
    return true;
  }
}

let root: protobuf.Root | undefined;

/** The onnx.ModelProto message type (built once). */
export function modelProto(): protobuf.Type {
  root ??= protobuf.Root.fromJSON(ONNX_DESCRIPTOR);
  return root.lookupType('onnx.ModelProto');
}

export function encodeModel(m: OnnxModel): Uint8Array {
  const T = modelProto();
  const err = T.verify(m);
  if (err) throw new Error(`ONNX model does not fit onnx.ModelProto: ${err}`);
  return T.encode(T.fromObject(m)).finish();
}

/** Decode a ModelProto into plain objects (int64 as numbers, bytes as Uint8Array). */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const T = modelProto();
  return T.toObject(T.decode(bytes), { longs: Number, defaults: true, arrays: true }) as OnnxModel;
}
