// The graph IR: values (graph inputs, constants, parameters, node outputs) with shapes, and nodes
// in topological order. Shapes are inferred as nodes are added, so a mismatch is reported
// where it is made, naming the node and both shapes.
//
// Training adds two things (docs/autodiff.md): 'param' values, trainable state with initial data
// that lives in its own GPU buffer across runs (never folded at compile time, never relaid out),
// and `updates`, pairs [target param, source value]: after a run's dispatches, the executor copies
// each source into its target, so the next run sees the new weights.

import { getOp } from '../kernels/index.js';
import { type HostTensor, type Shape, fmtShape, numel, ShapeError } from '../kernels/kernel.js';

export type Attrs = Record<string, unknown>;

export interface Node {
  name: string;
  op: string;
  attrs: Attrs;
  inputs: string[];
  outputs: string[];
}

export interface Value {
  name: string;
  shape: number[];
  kind: 'input' | 'const' | 'param' | 'node';
  /** Constant data, or a parameter's initial data (row-major f32), for kinds 'const' and 'param'. */
  data?: Float32Array;
}

export class Graph {
  readonly values = new Map<string, Value>();
  nodes: Node[] = [];
  outputs: string[] = [];
  /** [target param, source value]: after each run the source's data becomes the param's. */
  updates: [target: string, source: string][] = [];
  private counter = 0;

  input(name: string, shape: Shape): string {
    this.define({ name, shape: [...shape], kind: 'input' });
    return name;
  }

  constant(name: string, shape: Shape, data: Float32Array): string {
    if (data.length !== numel(shape)) {
      throw new ShapeError(
        `constant "${name}": shape ${fmtShape(shape)} needs ${numel(shape)} values, got ${data.length}`,
      );
    }
    this.define({ name, shape: [...shape], kind: 'const', data });
    return name;
  }

  /** A parameter: trainable state, initialised with `data`, kept on the GPU across runs. */
  param(name: string, shape: Shape, data: Float32Array): string {
    this.constant(name, shape, data);
    this.values.get(name)!.kind = 'param';
    return name;
  }

  /** Turn constant `name` into a parameter (same data): it then persists and may be updated. */
  makeParam(name: string): void {
    const v = this.value(name);
    if (v.kind !== 'const' && v.kind !== 'param')
      throw new Error(`"${name}" is a graph ${v.kind}, not a constant, so it cannot become a parameter`);
    v.kind = 'param';
  }

  /** After each run, copy `source` into parameter `target` (same shape). */
  update(target: string, source: string): void {
    const t = this.value(target);
    if (t.kind !== 'param') throw new Error(`update target "${target}" is a ${t.kind}, not a parameter`);
    const s = this.value(source);
    if (fmtShape(s.shape) !== fmtShape(t.shape))
      throw new ShapeError(`update of "${target}" ${fmtShape(t.shape)} from "${source}" ${fmtShape(s.shape)}`);
    if (this.updates.some(([x]) => x === target)) throw new Error(`parameter "${target}" already has an update`);
    this.updates.push([target, source]);
  }

  /** Add a node; returns its output value names. */
  add(op: string, inputs: string[], attrs: Attrs = {}, name?: string): string[] {
    return this.addAt(this.nodes.length, op, inputs, attrs, name);
  }

  /** Add a node at position `index` of the node list (its inputs must be defined before it). */
  addAt(index: number, op: string, inputs: string[], attrs: Attrs = {}, name?: string): string[] {
    const nodeName = name ?? `${op}_${this.counter++}`;
    if (this.nodes.some((n) => n.name === nodeName)) throw new Error(`duplicate node name "${nodeName}"`);
    const shapes = inferNode(this, { name: nodeName, op, attrs, inputs, outputs: [] });
    const outputs = shapes.map((_, i) => (shapes.length === 1 ? nodeName : `${nodeName}:${i}`));
    shapes.forEach((s, i) => this.define({ name: outputs[i], shape: [...s], kind: 'node' }));
    this.nodes.splice(index, 0, { name: nodeName, op, attrs, inputs: [...inputs], outputs });
    return outputs;
  }

  /** A node name not yet used, from `base` (base itself when free). */
  freshName(base: string): string {
    let name = base;
    for (let k = 1; this.values.has(name) || this.nodes.some((n) => n.name === name); k++) name = `${base}_${k}`;
    return name;
  }

  /** Add a node with exactly one output. */
  op(op: string, inputs: string[], attrs: Attrs = {}, name?: string): string {
    const outs = this.add(op, inputs, attrs, name);
    if (outs.length !== 1) throw new Error(`op ${op} has ${outs.length} outputs; use add()`);
    return outs[0];
  }

  markOutputs(...names: string[]): this {
    for (const n of names) this.value(n);
    this.outputs.push(...names);
    return this;
  }

  value(name: string): Value {
    const v = this.values.get(name);
    if (!v) throw new Error(`unknown value "${name}"`);
    return v;
  }

  shape(name: string): number[] {
    return this.value(name).shape;
  }

  /** The nodes that read `value`. */
  consumers(value: string): Node[] {
    return this.nodes.filter((n) => n.inputs.includes(value));
  }

  producer(value: string): Node | undefined {
    return this.nodes.find((n) => n.outputs.includes(value));
  }

  clone(): Graph {
    const g = new Graph();
    for (const [k, v] of this.values) g.values.set(k, { ...v, shape: [...v.shape] });
    g.nodes = this.nodes.map((n) => ({ ...n, attrs: { ...n.attrs }, inputs: [...n.inputs], outputs: [...n.outputs] }));
    g.outputs = [...this.outputs];
    g.updates = this.updates.map(([t, s]) => [t, s]);
    g.counter = this.counter;
    return g;
  }

  /** Drop nodes and constants that no graph output or update depends on. */
  prune(): this {
    const live = new Set([...this.outputs, ...this.updates.flat()]);
    const keep: Node[] = [];
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const n = this.nodes[i];
      if (n.outputs.some((o) => live.has(o))) {
        keep.push(n);
        n.inputs.forEach((x) => live.add(x));
      }
    }
    this.nodes = keep.reverse();
    for (const [k, v] of this.values) if (v.kind !== 'input' && !live.has(k)) this.values.delete(k);
    return this;
  }

  /** Define a value directly (graph rewrites that rename a node's output). */
  define(v: Value): void {
    if (this.values.has(v.name)) throw new Error(`value "${v.name}" is already defined`);
    this.values.set(v.name, v);
  }
}

function inferNode(g: Graph, n: Node): Shape[] {
  const def = getOp(n.op);
  const [lo, hi] = def.arity;
  if (n.inputs.length < lo || n.inputs.length > hi) {
    throw new ShapeError(
      `node "${n.name}" (${n.op}): takes ${lo === hi ? lo : `${lo}..${hi}`} inputs, got ${n.inputs.length}`,
    );
  }
  const shapes = n.inputs.map((x) => {
    const v = g.values.get(x);
    if (!v) throw new ShapeError(`node "${n.name}" (${n.op}): input "${x}" is not defined before it`);
    return v.shape;
  });
  try {
    return def.infer(n.attrs, shapes);
  } catch (e) {
    if (e instanceof ShapeError) {
      throw new ShapeError(`node "${n.name}" (${n.op}): ${e.message}; input shapes ${shapes.map(fmtShape).join(', ')}`);
    }
    throw e;
  }
}

/** Re-check every node's shapes (after passes rewrote the graph). */
export function validateGraph(g: Graph): void {
  for (const n of g.nodes) {
    const shapes = inferNode(g, n);
    shapes.forEach((s, i) => {
      const have = g.value(n.outputs[i]).shape;
      if (fmtShape(have) !== fmtShape(s)) {
        throw new ShapeError(
          `node "${n.name}" (${n.op}): output ${i} recorded as ${fmtShape(have)} but inferred ${fmtShape(s)}`,
        );
      }
    });
  }
  for (const o of g.outputs) g.value(o);
  for (const [t, src] of g.updates) {
    if (g.value(t).kind !== 'param') throw new Error(`update target "${t}" is not a parameter`);
    if (fmtShape(g.shape(t)) !== fmtShape(g.shape(src)))
      throw new ShapeError(`update of "${t}" ${fmtShape(g.shape(t))} from "${src}" ${fmtShape(g.shape(src))}`);
  }
}

/**
 * Run the graph on the CPU with every op's reference: the oracle for kernels, passes and models.
 * Parameters read their initial data (or `params`, by name, where given); updates are not applied
 * (the caller reads the update sources it wants).
 */
export function runReference(
  g: Graph,
  inputs: Record<string, Float32Array>,
  outputs = g.outputs,
  params?: ReadonlyMap<string, Float32Array>,
): Record<string, HostTensor> {
  const env = new Map<string, HostTensor>();
  for (const v of g.values.values()) {
    if (v.kind === 'const') env.set(v.name, { shape: v.shape, data: v.data! });
    if (v.kind === 'param') {
      const d = params?.get(v.name) ?? v.data!;
      if (d.length !== numel(v.shape))
        throw new ShapeError(
          `param "${v.name}": expected ${numel(v.shape)} values for ${fmtShape(v.shape)}, got ${d.length}`,
        );
      env.set(v.name, { shape: v.shape, data: d });
    }
    if (v.kind === 'input') {
      const d = inputs[v.name];
      if (!d) throw new Error(`missing input "${v.name}"`);
      if (d.length !== numel(v.shape))
        throw new ShapeError(
          `input "${v.name}": expected ${numel(v.shape)} values for ${fmtShape(v.shape)}, got ${d.length}`,
        );
      env.set(v.name, { shape: v.shape, data: d });
    }
  }
  for (const n of g.nodes) {
    const res = getOp(n.op).ref(
      n.attrs,
      n.inputs.map((x) => env.get(x)!),
    );
    res.forEach((t, i) => env.set(n.outputs[i], t));
  }
  return Object.fromEntries(outputs.map((o) => [o, env.get(o)!]));
}

/** A graph as plain JSON (constants as number arrays): to hand a graph to a page or a file. */
export interface GraphJSON {
  values: { name: string; shape: number[]; kind: Value['kind']; data?: number[] }[];
  nodes: Node[];
  outputs: string[];
  updates?: [string, string][];
}

export function graphToJSON(g: Graph): GraphJSON {
  return {
    values: [...g.values.values()].map((v) => ({
      name: v.name,
      shape: v.shape,
      kind: v.kind,
      data: v.data ? [...v.data] : undefined,
    })),
    nodes: g.nodes,
    outputs: g.outputs,
    ...(g.updates.length ? { updates: g.updates } : {}),
  };
}

export function graphFromJSON(j: GraphJSON): Graph {
  const g = new Graph();
  for (const v of j.values) {
    if (v.kind === 'input') g.input(v.name, v.shape);
    if (v.kind === 'const') g.constant(v.name, v.shape, new Float32Array(v.data ?? []));
    if (v.kind === 'param') g.param(v.name, v.shape, new Float32Array(v.data ?? []));
  }
  for (const n of j.nodes) {
    const outs = g.add(n.op, n.inputs, n.attrs, n.name);
    if (outs.join() !== n.outputs.join())
      throw new Error(`node "${n.name}": outputs ${n.outputs.join()} do not match ${outs.join()}`);
  }
  g.markOutputs(...j.outputs);
  for (const [t, s] of j.updates ?? []) g.update(t, s);
  return g;
}
