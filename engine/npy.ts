// NumPy .npy reader and writer for little-endian float32 C-order arrays, the one kind cnnlab
// exchanges (features, logits, reference activations). Anything else is refused with a message
// that says what the file holds and the NumPy line that converts it.
//
// Layout: "\x93NUMPY" | major | minor | header length (u16 LE in 1.0, u32 LE in 2.0/3.0) |
// header (a Python dict literal, latin-1 in 1.0/2.0, UTF-8 in 3.0) | raw data.

import type { HostTensor } from '../kernels/kernel.js';
import { type ByteSource, WeightFileError, bufferSource, fileSource, toFloat32 } from './safetensors.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;
/** numpy leaves room after the header for the first axis to grow in place. */
const GROWTH_AXIS_MAX_DIGITS = 21;

export async function readNpyPath(path: string): Promise<HostTensor> {
  return readNpy(await fileSource(path));
}

export function decodeNpy(bytes: Uint8Array, name?: string): Promise<HostTensor> {
  return readNpy(bufferSource(bytes, name));
}

/** Reads the prefix, then the header, then exactly the data it announces. */
export async function readNpy(src: ByteSource): Promise<HostTensor> {
  const file = src.name ?? 'npy';
  const fail = (msg: string): never => {
    throw new WeightFileError(`${file}: ${msg}`);
  };
  if (src.size < 10) fail(`${src.size} bytes is too short for a .npy file`);
  const prefix = await src.read(0, Math.min(12, src.size));
  if (!MAGIC.every((b, i) => prefix[i] === b)) {
    fail(
      `not a .npy file (bad magic: expected \\x93NUMPY, found ${[...prefix.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(' ')})`,
    );
  }
  const [major, minor] = [prefix[6], prefix[7]];
  if (!(major >= 1 && major <= 3 && minor === 0))
    fail(`.npy format version ${major}.${minor} is not one of 1.0, 2.0, 3.0`);
  const lenBytes = major === 1 ? 2 : 4;
  if (src.size < 8 + lenBytes) fail(`${src.size} bytes is too short for a version ${major}.0 .npy header`);
  const dv = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const dataStart = 8 + lenBytes + hlen;
  if (dataStart > src.size)
    fail(`header length ${hlen} runs past the end of the file (${src.size} bytes); the file is truncated`);

  let text = '';
  try {
    text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1', { fatal: true }).decode(
      await src.read(8 + lenBytes, hlen),
    );
  } catch (e) {
    if (e instanceof WeightFileError) throw e;
    fail('header is not valid UTF-8');
  }
  const shape = checkHeader(text, fail);

  const need = shape.reduce((a, d) => a * d, 1) * 4;
  const have = src.size - dataStart;
  const shapeStr = `(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
  if (have < need) fail(`truncated: shape ${shapeStr} float32 needs ${need} bytes of data, the file has ${have}`);
  if (have > need)
    fail(
      `shape ${shapeStr} float32 needs ${need} bytes of data but the file has ${have} (${have - need} extra); the header does not match the data`,
    );
  return { shape, data: toFloat32(await src.read(dataStart, need), 'F32') };
}

/** Validates the header dict and returns the shape; refuses anything that is not '<f4' in C order. */
function checkHeader(text: string, fail: (msg: string) => never): number[] {
  let d: PyValue;
  try {
    d = parsePyLiteral(text);
  } catch (e) {
    return fail(
      `header is not a Python dict literal (${(e as Error).message}): ${JSON.stringify(text.trim().slice(0, 120))}`,
    );
  }
  if (!(d instanceof Map)) return fail(`header is not a dict: ${JSON.stringify(text.trim().slice(0, 120))}`);
  const keys = [...d.keys()].sort();
  if (keys.join() !== 'descr,fortran_order,shape')
    fail(`header keys are [${keys.join(', ')}]; expected descr, fortran_order, shape`);

  const descr = d.get('descr');
  if (typeof descr !== 'string') {
    fail(
      `structured dtype ${pyRepr(descr)}; cnnlab needs a plain float32 array ('<f4'): save one field, e.g. x['name'].astype(np.float32)`,
    );
  }
  if (descr !== '<f4') fail(describeDtype(descr as string));

  const fortran = d.get('fortran_order');
  if (typeof fortran !== 'boolean') fail(`fortran_order is ${pyRepr(fortran)}, not True or False`);
  if (fortran) fail(`fortran_order is True (column-major); cnnlab needs C order: save np.ascontiguousarray(x)`);

  const shape = d.get('shape');
  if (
    !(shape instanceof PyTuple) ||
    !shape.items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)
  ) {
    fail(`shape ${pyRepr(shape)} is not a tuple of non-negative integers`);
  }
  return (shape as PyTuple).items as number[];
}

const KIND: Record<string, string> = {
  f: 'float',
  i: 'int',
  u: 'uint',
  c: 'complex',
  b: 'bool',
  U: 'str',
  S: 'bytes',
  O: 'object',
  V: 'void',
  M: 'datetime64',
  m: 'timedelta64',
};

function describeDtype(descr: string): string {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)/.exec(descr);
  const need = `cnnlab needs float32 ('<f4')`;
  if (!m) return `dtype '${descr}' is not a NumPy dtype string; ${need}`;
  const [, order, kind, bytes] = m;
  const bits = Number(bytes || 0) * 8;
  const sized = 'fiuc'.includes(kind) && bits > 0;
  const name = KIND[kind] ? `${KIND[kind]}${sized ? bits : ''}` : `kind '${kind}'`;
  if (kind === 'f' && bytes === '4') {
    // Only the byte order is wrong.
    return `dtype '${descr}' (${order === '>' ? 'big-endian' : 'native-order'} float32); cnnlab needs little-endian float32 ('<f4'): convert with x.astype('<f4')`;
  }
  return `dtype '${descr}' (${name}); ${need}: convert with x.astype(np.float32)`;
}

/** Version 1.0 (2.0 only if the header outgrows 64 KiB), '<f4', C order, byte-identical to np.save. */
export function encodeNpy(t: HostTensor): Uint8Array<ArrayBuffer> {
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw new Error(`encodeNpy: invalid shape [${t.shape.join(', ')}]`);
  const numel = t.shape.reduce((a, d) => a * d, 1);
  if (numel !== t.data.length)
    throw new Error(`encodeNpy: shape [${t.shape.join(', ')}] has ${numel} elements but data has ${t.data.length}`);
  const shapeRepr = `(${t.shape.join(', ')}${t.shape.length === 1 ? ',' : ''})`;
  let dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeRepr}, }`;
  if (t.shape.length > 0) dict += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(t.shape[0]).length);
  const header = new TextEncoder().encode(dict); // ASCII
  const hlen = header.byteLength + 1; // with the final newline
  const padFor = (prefix: number) => ALIGN - ((prefix + hlen) % ALIGN);
  const major = hlen + padFor(10) <= 0xffff ? 1 : 2;
  const prefix = major === 1 ? 10 : 12;
  const pad = padFor(prefix);
  const dataStart = prefix + hlen + pad;
  const out = new Uint8Array(dataStart + 4 * numel);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  if (major === 1) dv.setUint16(8, hlen + pad, true);
  else dv.setUint32(8, hlen + pad, true);
  out.set(header, prefix);
  out.fill(0x20, prefix + header.byteLength, dataStart - 1);
  out[dataStart - 1] = 0x0a;
  for (let i = 0; i < numel; i++) dv.setFloat32(dataStart + 4 * i, t.data[i], true);
  return out;
}

// --- a parser for the Python literals .npy headers use -------------------------------------

class PyTuple {
  constructor(readonly items: PyValue[]) {}
}
type PyValue = string | number | boolean | null | PyValue[] | PyTuple | Map<string, PyValue>;

/** Dicts with string keys, tuples, lists, strings, ints (Python 2 'L' suffix allowed), True/False/None. */
export function parsePyLiteral(src: string): PyValue {
  let i = 0;
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const err = (what: string): never => {
    throw new Error(`${what} at character ${i}`);
  };
  const expect = (c: string) => {
    ws();
    if (src[i] !== c) err(`expected '${c}'`);
    i++;
  };
  // Items up to `close`, with an optional trailing comma; `one` parses one item.
  const seq = <T>(close: string, one: () => T): { items: T[]; trailingComma: boolean } => {
    const items: T[] = [];
    let trailingComma = false;
    for (;;) {
      ws();
      if (src[i] === close) {
        i++;
        return { items, trailingComma };
      }
      items.push(one());
      ws();
      trailingComma = src[i] === ',';
      if (trailingComma) i++;
      else if (src[i] !== close) err(`expected ',' or '${close}'`);
    }
  };
  const value = (): PyValue => {
    ws();
    const c = src[i];
    if (c === '{') {
      i++;
      const map = new Map<string, PyValue>();
      seq('}', () => {
        const k = value();
        if (typeof k !== 'string') err('dict key is not a string');
        expect(':');
        map.set(k as string, value());
      });
      return map;
    }
    if (c === '(') {
      i++;
      const { items, trailingComma } = seq(')', value);
      // (x) is x in Python; (x,) is a tuple.
      return items.length === 1 && !trailingComma ? items[0] : new PyTuple(items);
    }
    if (c === '[') {
      i++;
      return seq(']', value).items;
    }
    if (c === "'" || c === '"') {
      i++;
      let s = '';
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\\') i++;
        s += src[i++] ?? '';
      }
      if (i >= src.length) err('unterminated string');
      i++;
      return s;
    }
    const m = /^(-?\d+)L?|^(True|False|None)\b/.exec(src.slice(i));
    if (!m) return err(i >= src.length ? 'unexpected end' : `unexpected '${src[i]}'`);
    i += m[0].length;
    if (m[1] !== undefined) return Number(m[1]);
    return m[2] === 'True' ? true : m[2] === 'False' ? false : null;
  };
  const v = value();
  ws();
  if (i < src.length) err('unexpected text after the literal');
  return v;
}

function pyRepr(v: PyValue | undefined): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'number') return String(v);
  if (v instanceof PyTuple) return `(${v.items.map(pyRepr).join(', ')}${v.items.length === 1 ? ',' : ''})`;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${[...v].map(([k, x]) => `'${k}': ${pyRepr(x)}`).join(', ')}}`;
}
