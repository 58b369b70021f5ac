// The part of TFLite's FlatBuffer schema (tensorflow/compiler/mlir/lite/schema/schema.fbs,
// file identifier "TFL3", schema version 3) that bench/peers/tflite-export.ts writes, as
// hand-written table builders over the `flatbuffers` package, and a reader for the same subset
// (tests read an exported file back with it). docs/peers.md describes the format as we use it.
//
// A FlatBuffer table's fields are addressed by their slot: the field's position in its `table`
// declaration in schema.fbs (0-based, deprecated fields keep their slot). A union is two fields:
// its type (slot k, a ubyte; 0 is NONE, then the union's members in declaration order) and its
// value (slot k + 1). The slots and enum values below are copied from schema.fbs by hand.
//
//   Model        0 version:uint  1 operator_codes:[OperatorCode]  2 subgraphs:[SubGraph]
//                3 description:string  4 buffers:[Buffer]  7 signature_defs:[SignatureDef]
//   SubGraph     0 tensors:[Tensor]  1 inputs:[int]  2 outputs:[int]  3 operators:[Operator]  4 name
//   Tensor       0 shape:[int]  1 type:TensorType(byte)  2 buffer:uint  3 name:string  8 has_rank:bool
//   Buffer       0 data:[ubyte] (force_align 16)
//   OperatorCode 0 deprecated_builtin_code:byte  2 version:int = 1  3 builtin_code:BuiltinOperator(int)
//   Operator     0 opcode_index:uint  1 inputs:[int]  2 outputs:[int]  3 builtin_options_type:ubyte
//                4 builtin_options:table
//   SignatureDef 0 inputs:[TensorMap]  1 outputs:[TensorMap]  2 signature_key:string  4 subgraph_index:uint
//   TensorMap    0 name:string  1 tensor_index:uint

import { Builder, ByteBuffer } from 'flatbuffers';

export const FILE_IDENTIFIER = 'TFL3';
export const SCHEMA_VERSION = 3;

/** enum TensorType : byte (the two we write). */
export const TensorType = { FLOAT32: 0, INT32: 2 } as const;
export type TensorTypeValue = (typeof TensorType)[keyof typeof TensorType];

/** enum BuiltinOperator : int32 (the ones the exporter emits). */
export const BuiltinOperator = {
  ADD: 0,
  AVERAGE_POOL_2D: 1,
  CONCATENATION: 2,
  CONV_2D: 3,
  DEPTHWISE_CONV_2D: 4,
  FULLY_CONNECTED: 9,
  LOGISTIC: 14,
  MAX_POOL_2D: 17,
  MUL: 18,
  RELU: 19,
  RELU6: 21,
  RESHAPE: 22,
  SOFTMAX: 25,
  PAD: 34,
  TRANSPOSE: 39,
  MEAN: 40,
  SUB: 41,
  STRIDED_SLICE: 45,
  PADV2: 60,
  RSQRT: 76,
  HARD_SWISH: 117,
  BATCH_MATMUL: 126,
  GELU: 150,
} as const;
export type BuiltinOperatorName = keyof typeof BuiltinOperator;
/** PLACEHOLDER_FOR_GREATER_OP_CODES: codes from here on only live in OperatorCode.builtin_code. */
const GREATER_OP_CODES = 127;

export const opName = (code: number): string =>
  (Object.entries(BuiltinOperator).find(([, c]) => c === code)?.[0] as string | undefined) ?? `builtin ${code}`;

/** enum Padding : byte. */
export const Padding = { SAME: 0, VALID: 1 } as const;
export type PaddingValue = (typeof Padding)[keyof typeof Padding];
/** enum ActivationFunctionType : byte (the fused activations we use). */
export const FusedActivation = { NONE: 0, RELU: 1, RELU6: 3 } as const;
export type FusedActivationValue = (typeof FusedActivation)[keyof typeof FusedActivation];

/** union BuiltinOptions: the member index of each options table we write (schema.fbs order, NONE = 0). */
export const BuiltinOptionsType = {
  Conv2DOptions: 1,
  DepthwiseConv2DOptions: 2,
  Pool2DOptions: 5,
  FullyConnectedOptions: 8,
  SoftmaxOptions: 9,
  ConcatenationOptions: 10,
  AddOptions: 11,
  ReshapeOptions: 17,
  MulOptions: 21,
  PadOptions: 22,
  TransposeOptions: 26,
  ReducerOptions: 27,
  SubOptions: 28,
  StridedSliceOptions: 32,
  PadV2Options: 43,
  HardSwishOptions: 91,
  BatchMatMulOptions: 101,
  GeluOptions: 116,
} as const;

/** An operator's builtin options: one variant per options table, fields as in schema.fbs. */
export type BuiltinOptions =
  | {
      table: 'Conv2DOptions';
      padding: PaddingValue;
      strideW: number;
      strideH: number;
      act: FusedActivationValue;
      dilationW: number;
      dilationH: number;
    }
  | {
      table: 'DepthwiseConv2DOptions';
      padding: PaddingValue;
      strideW: number;
      strideH: number;
      depthMultiplier: number;
      act: FusedActivationValue;
      dilationW: number;
      dilationH: number;
    }
  | {
      table: 'Pool2DOptions';
      padding: PaddingValue;
      strideW: number;
      strideH: number;
      filterW: number;
      filterH: number;
      act: FusedActivationValue;
    }
  | { table: 'FullyConnectedOptions'; act: FusedActivationValue; keepNumDims: boolean }
  | { table: 'SoftmaxOptions'; beta: number }
  | { table: 'ConcatenationOptions'; axis: number; act: FusedActivationValue }
  | { table: 'AddOptions' | 'MulOptions' | 'SubOptions'; act: FusedActivationValue }
  | { table: 'ReshapeOptions'; newShape: number[] }
  | { table: 'ReducerOptions'; keepDims: boolean }
  | { table: 'BatchMatMulOptions'; adjX: boolean; adjY: boolean }
  | { table: 'GeluOptions'; approximate: boolean }
  | { table: 'PadOptions' | 'PadV2Options' | 'TransposeOptions' | 'StridedSliceOptions' | 'HardSwishOptions' };

export interface TfliteTensor {
  name: string;
  shape: number[];
  type: TensorTypeValue;
  /** Index into the model's buffers; 0 (the empty sentinel) for a tensor computed at run time. */
  buffer: number;
}

export interface TfliteOperator {
  op: BuiltinOperatorName;
  inputs: number[];
  outputs: number[];
  options?: BuiltinOptions;
}

/** One subgraph, one signature: what the exporter produces. */
export interface TfliteModel {
  description: string;
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfliteOperator[];
  /** Buffer data; index 0 must be the empty sentinel. */
  buffers: Uint8Array[];
  /** The signature's key (LiteRT.js runs a model's signatures; tensors keep their names there). */
  signatureKey: string;
}

// ---- writing ----------------------------------------------------------------------------------

function intVector(b: Builder, v: readonly number[]): number {
  b.startVector(4, v.length, 4);
  for (let k = v.length - 1; k >= 0; k--) b.addInt32(v[k]);
  return b.endVector();
}

function offsetVector(b: Builder, v: readonly number[]): number {
  b.startVector(4, v.length, 4);
  for (let k = v.length - 1; k >= 0; k--) b.addOffset(v[k]);
  return b.endVector();
}

/**
 * Buffer.data: [ubyte] with force_align 16 (weights are read in place, as floats). prep(16, n)
 * pads so that the n bytes written next end 16-aligned; createByteVector then copies them in one
 * go (its own alignment, 4 and 1, already holds).
 */
function alignedBytes(b: Builder, data: Uint8Array): number {
  b.prep(16, data.length);
  return b.createByteVector(data);
}

function writeOptions(b: Builder, o: BuiltinOptions): number {
  const start = (fields: number) => b.startObject(fields);
  switch (o.table) {
    case 'Conv2DOptions':
      start(7);
      b.addFieldInt8(0, o.padding, 0);
      b.addFieldInt32(1, o.strideW, 0);
      b.addFieldInt32(2, o.strideH, 0);
      b.addFieldInt8(3, o.act, 0);
      b.addFieldInt32(4, o.dilationW, 1);
      b.addFieldInt32(5, o.dilationH, 1);
      return b.endObject();
    case 'DepthwiseConv2DOptions':
      start(7);
      b.addFieldInt8(0, o.padding, 0);
      b.addFieldInt32(1, o.strideW, 0);
      b.addFieldInt32(2, o.strideH, 0);
      b.addFieldInt32(3, o.depthMultiplier, 0);
      b.addFieldInt8(4, o.act, 0);
      b.addFieldInt32(5, o.dilationW, 1);
      b.addFieldInt32(6, o.dilationH, 1);
      return b.endObject();
    case 'Pool2DOptions':
      start(6);
      b.addFieldInt8(0, o.padding, 0);
      b.addFieldInt32(1, o.strideW, 0);
      b.addFieldInt32(2, o.strideH, 0);
      b.addFieldInt32(3, o.filterW, 0);
      b.addFieldInt32(4, o.filterH, 0);
      b.addFieldInt8(5, o.act, 0);
      return b.endObject();
    case 'FullyConnectedOptions':
      start(5);
      b.addFieldInt8(0, o.act, 0);
      b.addFieldInt8(2, o.keepNumDims ? 1 : 0, 0);
      return b.endObject();
    case 'SoftmaxOptions':
      start(1);
      b.addFieldFloat32(0, o.beta, 0);
      return b.endObject();
    case 'ConcatenationOptions':
      start(2);
      b.addFieldInt32(0, o.axis, 0);
      b.addFieldInt8(1, o.act, 0);
      return b.endObject();
    case 'AddOptions':
    case 'MulOptions':
    case 'SubOptions':
      start(2);
      b.addFieldInt8(0, o.act, 0);
      return b.endObject();
    case 'ReshapeOptions': {
      const shape = intVector(b, o.newShape);
      start(1);
      b.addFieldOffset(0, shape, 0);
      return b.endObject();
    }
    case 'ReducerOptions':
      start(1);
      b.addFieldInt8(0, o.keepDims ? 1 : 0, 0);
      return b.endObject();
    case 'BatchMatMulOptions':
      start(3);
      b.addFieldInt8(0, o.adjX ? 1 : 0, 0);
      b.addFieldInt8(1, o.adjY ? 1 : 0, 0);
      return b.endObject();
    case 'GeluOptions':
      start(1);
      b.addFieldInt8(0, o.approximate ? 1 : 0, 0);
      return b.endObject();
    default:
      start(0);
      return b.endObject();
  }
}

function writeTensor(b: Builder, t: TfliteTensor): number {
  const shape = intVector(b, t.shape);
  const name = b.createString(t.name);
  b.startObject(9);
  b.addFieldOffset(0, shape, 0);
  b.addFieldInt8(1, t.type, 0);
  b.addFieldInt32(2, t.buffer, 0);
  b.addFieldOffset(3, name, 0);
  b.addFieldInt8(8, 1, 0); // has_rank: every shape we write is known
  return b.endObject();
}

function writeTensorMap(b: Builder, name: string, index: number): number {
  const s = b.createString(name);
  b.startObject(2);
  b.addFieldOffset(0, s, 0);
  b.addFieldInt32(1, index, 0);
  return b.endObject();
}

/** Serialise `m` as a .tflite file (FlatBuffer with identifier TFL3). */
export function encodeTflite(m: TfliteModel): Uint8Array {
  if (m.buffers[0]?.length) throw new Error('tflite: buffer 0 must be the empty sentinel');
  const weightBytes = m.buffers.reduce((a, d) => a + d.length + 16, 0);
  const b = new Builder(weightBytes + 64 * 1024 + 256 * (m.tensors.length + m.operators.length));
  // Buffers first: the bulk of the file, written once each.
  const buffers = m.buffers.map((d) => {
    const data = d.length ? alignedBytes(b, d) : 0;
    b.startObject(3);
    if (data) b.addFieldOffset(0, data, 0);
    return b.endObject();
  });
  const codes: number[] = [];
  const opcodeIndex = (op: BuiltinOperatorName) => {
    const c = BuiltinOperator[op];
    const k = codes.indexOf(c);
    return k >= 0 ? k : codes.push(c) - 1;
  };
  const operators = m.operators.map((o) => {
    const index = opcodeIndex(o.op);
    const inputs = intVector(b, o.inputs);
    const outputs = intVector(b, o.outputs);
    const options = o.options ? writeOptions(b, o.options) : 0;
    b.startObject(5);
    b.addFieldInt32(0, index, 0);
    b.addFieldOffset(1, inputs, 0);
    b.addFieldOffset(2, outputs, 0);
    if (o.options) {
      b.addFieldInt8(3, BuiltinOptionsType[o.options.table], 0);
      b.addFieldOffset(4, options, 0);
    }
    return b.endObject();
  });
  const operatorCodes = codes.map((c) => {
    b.startObject(4);
    b.addFieldInt8(0, Math.min(c, GREATER_OP_CODES), 0);
    b.addFieldInt32(2, 1, 1);
    b.addFieldInt32(3, c, 0);
    return b.endObject();
  });
  const tensors = m.tensors.map((t) => writeTensor(b, t));
  const subgraph = (() => {
    const t = offsetVector(b, tensors);
    const i = intVector(b, m.inputs);
    const o = intVector(b, m.outputs);
    const ops = offsetVector(b, operators);
    const name = b.createString('main');
    b.startObject(5);
    b.addFieldOffset(0, t, 0);
    b.addFieldOffset(1, i, 0);
    b.addFieldOffset(2, o, 0);
    b.addFieldOffset(3, ops, 0);
    b.addFieldOffset(4, name, 0);
    return b.endObject();
  })();
  const signature = (() => {
    const ins = offsetVector(
      b,
      m.inputs.map((k) => writeTensorMap(b, m.tensors[k].name, k)),
    );
    const outs = offsetVector(
      b,
      m.outputs.map((k) => writeTensorMap(b, m.tensors[k].name, k)),
    );
    const key = b.createString(m.signatureKey);
    b.startObject(5);
    b.addFieldOffset(0, ins, 0);
    b.addFieldOffset(1, outs, 0);
    b.addFieldOffset(2, key, 0);
    b.addFieldInt32(4, 0, 0);
    return b.endObject();
  })();
  const codesVec = offsetVector(b, operatorCodes);
  const subgraphs = offsetVector(b, [subgraph]);
  const description = b.createString(m.description);
  const buffersVec = offsetVector(b, buffers);
  const signatures = offsetVector(b, [signature]);
  b.startObject(8);
  b.addFieldInt32(0, SCHEMA_VERSION, 0);
  b.addFieldOffset(1, codesVec, 0);
  b.addFieldOffset(2, subgraphs, 0);
  b.addFieldOffset(3, description, 0);
  b.addFieldOffset(4, buffersVec, 0);
  b.addFieldOffset(7, signatures, 0);
  b.finish(b.endObject(), FILE_IDENTIFIER);
  return b.asUint8Array();
}

// ---- reading (tests check what was written) --------------------------------------------------------

/** What readTflite gives back: the fields encodeTflite writes. */
export interface ReadModel {
  version: number;
  description: string;
  /** Each operator code: builtin_code, deprecated_builtin_code (capped at 127) and version. */
  operatorCodes: { code: number; deprecated: number; version: number }[];
  tensors: TfliteTensor[];
  inputs: number[];
  outputs: number[];
  /** Operators with their builtin options decoded (the table named by the union type). */
  operators: (Omit<TfliteOperator, 'op'> & { op: string })[];
  buffers: Uint8Array[];
  signatures: { key: string; subgraph: number; inputs: [string, number][]; outputs: [string, number][] }[];
}

class Reader {
  constructor(readonly bb: ByteBuffer) {}
  private at(table: number, slot: number): number {
    return this.bb.__offset(table, 4 + 2 * slot);
  }
  u8(table: number, slot: number, dflt = 0): number {
    const o = this.at(table, slot);
    return o ? this.bb.readUint8(table + o) : dflt;
  }
  i8(table: number, slot: number, dflt = 0): number {
    const o = this.at(table, slot);
    return o ? this.bb.readInt8(table + o) : dflt;
  }
  i32(table: number, slot: number, dflt = 0): number {
    const o = this.at(table, slot);
    return o ? this.bb.readInt32(table + o) : dflt;
  }
  f32(table: number, slot: number, dflt = 0): number {
    const o = this.at(table, slot);
    return o ? this.bb.readFloat32(table + o) : dflt;
  }
  str(table: number, slot: number): string {
    const o = this.at(table, slot);
    return o ? (this.bb.__string(table + o) as string) : '';
  }
  table(table: number, slot: number): number {
    const o = this.at(table, slot);
    return o ? this.bb.__indirect(table + o) : 0;
  }
  ints(table: number, slot: number): number[] {
    const o = this.at(table, slot);
    if (!o) return [];
    const at = this.bb.__vector(table + o),
      n = this.bb.__vector_len(table + o);
    return Array.from({ length: n }, (_, k) => this.bb.readInt32(at + 4 * k));
  }
  tables(table: number, slot: number): number[] {
    const o = this.at(table, slot);
    if (!o) return [];
    const at = this.bb.__vector(table + o),
      n = this.bb.__vector_len(table + o);
    return Array.from({ length: n }, (_, k) => this.bb.__indirect(at + 4 * k));
  }
  bytes(table: number, slot: number): Uint8Array {
    const o = this.at(table, slot);
    if (!o) return new Uint8Array(0);
    const at = this.bb.__vector(table + o);
    return this.bb.bytes().subarray(at, at + this.bb.__vector_len(table + o));
  }
}

/** The inverse of writeOptions: the options table of union member `type` at `t`. */
function readOptions(r: Reader, type: number, t: number): BuiltinOptions | undefined {
  const table = (Object.entries(BuiltinOptionsType).find(([, v]) => v === type)?.[0] ?? '') as BuiltinOptions['table'];
  const act = (slot: number) => r.i8(t, slot) as FusedActivationValue;
  const pad = () => r.i8(t, 0) as PaddingValue;
  switch (table) {
    case 'Conv2DOptions':
      return {
        table,
        padding: pad(),
        strideW: r.i32(t, 1),
        strideH: r.i32(t, 2),
        act: act(3),
        dilationW: r.i32(t, 4, 1),
        dilationH: r.i32(t, 5, 1),
      };
    case 'DepthwiseConv2DOptions':
      return {
        table,
        padding: pad(),
        strideW: r.i32(t, 1),
        strideH: r.i32(t, 2),
        depthMultiplier: r.i32(t, 3),
        act: act(4),
        dilationW: r.i32(t, 5, 1),
        dilationH: r.i32(t, 6, 1),
      };
    case 'Pool2DOptions':
      return {
        table,
        padding: pad(),
        strideW: r.i32(t, 1),
        strideH: r.i32(t, 2),
        filterW: r.i32(t, 3),
        filterH: r.i32(t, 4),
        act: act(5),
      };
    case 'FullyConnectedOptions':
      return { table, act: act(0), keepNumDims: r.u8(t, 2) === 1 };
    case 'SoftmaxOptions':
      return { table, beta: r.f32(t, 0) };
    case 'ConcatenationOptions':
      return { table, axis: r.i32(t, 0), act: act(1) };
    case 'AddOptions':
    case 'MulOptions':
    case 'SubOptions':
      return { table, act: act(0) };
    case 'ReshapeOptions':
      return { table, newShape: r.ints(t, 0) };
    case 'ReducerOptions':
      return { table, keepDims: r.u8(t, 0) === 1 };
    case 'BatchMatMulOptions':
      return { table, adjX: r.u8(t, 0) === 1, adjY: r.u8(t, 1) === 1 };
    case 'GeluOptions':
      return { table, approximate: r.u8(t, 0) === 1 };
    case 'PadOptions':
    case 'PadV2Options':
    case 'TransposeOptions':
    case 'StridedSliceOptions':
    case 'HardSwishOptions':
      return { table };
    default:
      return undefined;
  }
}

/** Read back a file written by encodeTflite (the fields it writes; the first subgraph). */
export function readTflite(bytes: Uint8Array): ReadModel {
  const bb = new ByteBuffer(bytes);
  if (!bb.__has_identifier(FILE_IDENTIFIER)) throw new Error(`tflite: not a ${FILE_IDENTIFIER} FlatBuffer`);
  const r = new Reader(bb);
  const model = bb.readInt32(bb.position()) + bb.position();
  const codes = r.tables(model, 1).map((t) => ({ deprecated: r.i8(t, 0), version: r.i32(t, 2, 1), code: r.i32(t, 3) }));
  const [sg] = r.tables(model, 2);
  return {
    version: r.i32(model, 0),
    description: r.str(model, 3),
    operatorCodes: codes,
    tensors: r.tables(sg, 0).map((t) => ({
      shape: r.ints(t, 0),
      type: r.i8(t, 1) as TensorTypeValue,
      buffer: r.i32(t, 2),
      name: r.str(t, 3),
    })),
    inputs: r.ints(sg, 1),
    outputs: r.ints(sg, 2),
    operators: r.tables(sg, 3).map((t) => {
      const type = r.u8(t, 3);
      const options = type ? readOptions(r, type, r.table(t, 4)) : undefined;
      return {
        op: opName(codes[r.i32(t, 0)].code),
        inputs: r.ints(t, 1),
        outputs: r.ints(t, 2),
        ...(options ? { options } : {}),
      };
    }),
    buffers: r.tables(model, 4).map((t) => r.bytes(t, 0)),
    signatures: r.tables(model, 7).map((t) => ({
      key: r.str(t, 2),
      subgraph: r.i32(t, 4),
      inputs: r.tables(t, 0).map((m): [string, number] => [r.str(m, 0), r.i32(m, 1)]),
      outputs: r.tables(t, 1).map((m): [string, number] => [r.str(m, 0), r.i32(m, 1)]),
    })),
  };
}
