// The executor: compiles a graph into a Plan (buffers laid out by the memory plan, pipelines
// created once and cached by config key, bind groups made once), then runs it by recording
// every dispatch into one command buffer and submitting it once. Only requested outputs are
// read back. Nodes whose inputs are all constants (weight standardisation, say) run once at
// compile time, not on every run.
//
// compile() runs in phases, one function each below it: static values and aliases, lowerNodes
// (kernels + tuned variants), planConstLayouts (weights relaid out for the chosen kernels),
// persistentValues and planActivations (the memory plan), allocateBuffers, createPipelines,
// makeBindGroups, then the compile-time nodes run once.
//
// Training (docs/autodiff.md): parameters (graph values of kind 'param') get their own buffers,
// uploaded once and kept across runs; each update's source is copied into its target parameter
// in the same command buffer, right after the node that makes it when no later node reads the
// parameter (so the source's slot is free again at once), else at the end of the run; optimiser
// and running-statistics nodes write their parameter in place instead when nothing later reads
// its old value (inPlaceUpdates; docs/autodiff.md "In-place updates"). A second
// plan may bind the same parameter buffers (CompileOptions.shareParams), so an evaluation plan
// sees the trained weights as they are.

import { getOp } from '../kernels/index.js';
import {
  type BindingRef,
  type ConstLayout,
  type Dispatch,
  type HostTensor,
  type Limits,
  type LowerContext,
  type Lowering,
  fmtShape,
  numel,
} from '../kernels/kernel.js';
import { VARIANT_FAMILIES } from '../kernels/variant-families.js';
import type { Prefer } from '../kernels/variant.js';
import { BufferPool, poolFor } from './buffer-pool.js';
import { type Device, DeviceLostError, assertAlive, kernelContext } from './device.js';
import { InputError, KernelError, TensorTooLargeError } from './errors.js';
import { type Graph, type Node, validateGraph } from './graph.js';
import { type Lifetime, planMemory } from './memory-plan.js';
import type { Profile, ProfileEntry } from './profiler.js';
import { type TuningTable, layerKey } from './tuning.js';

// The WebGPU enums by value: in Node the GPU* globals exist only once a device was created.
const Usage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
const MAP_READ = 0x1;
const STORAGE = Usage.STORAGE | Usage.COPY_DST | Usage.COPY_SRC;
const READBACK = Usage.MAP_READ | Usage.COPY_DST;

export interface CompileOptions {
  /** Variant choices by kernel family, e.g. { conv2d: 'direct,tile=4x8' } (kernels/variant.ts); they override `tuning`. */
  prefer?: Prefer;
  /** Tuned per-layer choices for this adapter (engine/tuning.ts); other layers use the heuristics. */
  tuning?: TuningTable;
  /**
   * Plans whose parameter buffers this plan binds for its parameters of the same name and shape
   * (first match wins), instead of allocating and uploading its own: a predict plan reads the
   * weights a training plan updates. Those plans must outlive this one.
   */
  shareParams?: Plan | readonly Plan[];
  /**
   * Optimiser and running-statistics updates write parameters and slots in place where nothing
   * after the update reads the old values (default true); false: every update goes through a new
   * buffer and a copy, as before (for comparison).
   */
  inPlaceUpdates?: boolean;
  /**
   * Cold start: return as soon as the buffers are allocated and every pipeline is requested (in
   * node order), without waiting for the pipelines to be built; the first run then records and
   * submits its dispatches in chunks as their pipelines resolve, so the GPU works while later
   * pipelines still compile (docs/kernels-gpu.md, "Cold start"). Results are the same; a kernel
   * that fails to build is then reported by the first run instead of by compile().
   */
  streamPipelines?: boolean;
  /**
   * Shape-generic kernels on a CPU adapter (LowerContext.cpuAdapter; docs/kernels-gpu.md, "Cold
   * start"): a layer with no tuned choice and no preference for its family, whose op offers a
   * shape-generic variant (a 'generic' candidate in its tune space) and whose heuristic kernels do
   * at most this many FLOPs, uses that variant: one pipeline shared by many layers, so far fewer
   * pipelines to build. Limits by kernel family (the tune space's: conv2d, depthwise, matmul); a
   * number applies to every family, {} turns it off. Default: GENERIC_MAX_FLOPS on a CPU adapter;
   * other adapters never use it.
   */
  genericMaxFlops?: number | Readonly<Record<string, number>>;
}

/**
 * The default CompileOptions.genericMaxFlops, measured on SwiftShader at 224², batch 1, on an idle
 * machine (docs/kernels-gpu.md): the generic convs (pointwise, k×k, depthwise) build 4-5× faster
 * per model and run as fast as the specialised ones, so every conv uses them; the generic matmul
 * runs ViT-B/16's large linears 1.5× slower, so only matmuls up to 50 MFLOP (classifier heads) do.
 */
export const GENERIC_MAX_FLOPS: Readonly<Record<string, number>> = {
  conv2d: Number.POSITIVE_INFINITY,
  depthwise: Number.POSITIVE_INFINITY,
  matmul: 50e6,
};

export interface MemoryReport {
  /** Constants (weights) and what compile-time nodes made from them. */
  weightBytes: number;
  /** Parameters this plan owns (trainable weights, optimiser state); shared ones count in their owner. */
  paramBytes: number;
  /** Graph inputs and outputs. */
  ioBytes: number;
  /** Intermediates after the liveness plan, and what they would take without it. */
  activationBytes: number;
  activationBytesUnplanned: number;
  /** Everything this plan holds on the GPU at once. */
  peakBytes: number;
  largestTensorBytes: number;
  /** The largest intermediate (what the memory plan places). */
  largestActivationBytes: number;
}

export interface TuningReport {
  /** Nodes whose variant came from the tuning table (the heuristic's own wins included). */
  used: number;
  /** Tuned choices that could not be used, and why. */
  notes: string[];
}

export interface RunOptions {
  /** Which values to read back (default: the graph's outputs). */
  outputs?: string[];
  profile?: boolean;
}

export interface RunResult {
  outputs: Record<string, HostTensor>;
  /** Wall time from submit to the outputs being on the host. */
  ms: number;
  profile?: Profile;
}

interface Step {
  node: Node;
  dispatch: Dispatch;
  label: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
}

/**
 * A step of a streamed plan (CompileOptions.streamPipelines) whose pipeline may still be building:
 * `ready` resolves once it is built; the bind group is made at the first recording after that.
 * Reading `pipeline` or `bindGroup` before then is an error, never an undefined pipeline.
 */
class PendingStep implements Step {
  private built?: GPUComputePipeline;
  private group?: GPUBindGroup;
  readonly ready: Promise<void>;

  constructor(
    readonly node: Node,
    readonly dispatch: Dispatch,
    readonly label: string,
    pipeline: Promise<GPUComputePipeline>,
    private readonly makeGroup: (pipeline: GPUComputePipeline) => GPUBindGroup,
  ) {
    this.ready = pipeline.then((p) => {
      this.built = p;
    });
    // A plan that is never run must not leave an unhandled rejection; the first run awaits `ready`.
    this.ready.catch(() => undefined);
  }

  get isBuilt(): boolean {
    return this.built !== undefined;
  }

  get pipeline(): GPUComputePipeline {
    if (!this.built) throw new KernelError(`${this.label}: its pipeline is not built yet`);
    return this.built;
  }

  get bindGroup(): GPUBindGroup {
    this.group ??= this.makeGroup(this.pipeline);
    return this.group;
  }
}

// ---------------------------------------------------------------------------------------------
// Pipeline cache: per device, by key. Shared by all plans, so a layer shape compiles once.

const pipelineCache = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();
/** Pipelines compiled (or compiling) on `device` so far: the bench checks a cold start begins at 0. */
export const cachedPipelineCount = (device: GPUDevice): number => pipelineCache.get(device)?.size ?? 0;

function debugPrintFilter(): string | undefined {
  const g = globalThis as { CNNLAB_PRINT_WGSL?: string; process?: { env?: Record<string, string | undefined> } };
  return g.CNNLAB_PRINT_WGSL ?? g.process?.env?.CNNLAB_PRINT_WGSL;
}

async function pipelineFor(device: GPUDevice, d: Dispatch, label: string): Promise<GPUComputePipeline> {
  let cache = pipelineCache.get(device);
  if (!cache) pipelineCache.set(device, (cache = new Map()));
  const hit = cache.get(d.key);
  if (hit) return hit;
  const p = (async () => {
    const code = d.wgsl();
    const filter = debugPrintFilter();
    if (filter !== undefined && (filter === '' || filter === '1' || d.key.includes(filter))) {
      console.log(`// ---- WGSL ${d.key}\n${code}`);
    }
    const module = device.createShaderModule({ code, label: d.key });
    try {
      return await device.createComputePipelineAsync({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
        label: d.family,
      });
    } catch (e) {
      const info = await module.getCompilationInfo().catch(() => null);
      const msgs =
        info?.messages.filter((m) => m.type === 'error').map((m) => `  line ${m.lineNum}:${m.linePos} ${m.message}`) ??
        [];
      throw new KernelError(
        `kernel ${d.family} for ${label} failed to build: ${(e as Error).message}` +
          (msgs.length ? `\n${msgs.join('\n')}` : '') +
          `\n(set CNNLAB_PRINT_WGSL=${d.family} to print its WGSL)`,
      );
    }
  })();
  cache.set(d.key, p);
  p.catch(() => cache!.delete(d.key));
  return p;
}

/** WebGPU reports validation errors asynchronously; turn them into a KernelError naming `what`. */
async function withErrorScope<T>(device: GPUDevice, what: string, f: () => T): Promise<T> {
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const r = f();
  const [validation, oom] = [await device.popErrorScope(), await device.popErrorScope()];
  if (validation) throw new KernelError(`${what}: WebGPU validation error: ${validation.message}`);
  if (oom) throw new KernelError(`${what}: GPU out of memory: ${oom.message}`);
  return r;
}

// ---------------------------------------------------------------------------------------------

export async function compile(device: Device, graph: Graph, opts: CompileOptions = {}): Promise<Plan> {
  assertAlive(device, 'compile');
  validateGraph(graph);
  const gpu = device.gpu;
  const pool = poolFor(gpu);
  const ctx: LowerContext = { ...kernelContext(device.info), prefer: opts.prefer };
  const staticValues = findStaticValues(graph);
  const isStatic = (n: Node) => n.inputs.length > 0 && n.inputs.every((x) => staticValues.has(x));
  const viewRoots = aliasRoots(graph);
  const copyAfter = scheduleUpdates(graph, staticValues, viewRoots);
  const inPlace =
    opts.inPlaceUpdates === false ? new Map<string, string>() : inPlaceUpdates(graph, copyAfter, viewRoots);
  const rootOf = aliasRoots(graph, inPlace);
  const inPlaceNodes = new Set([...inPlace.keys()].map((src) => graph.nodes.find((n) => n.outputs.includes(src))!));
  const { lowered, tuning } = lowerNodes(graph, ctx, opts, inPlaceNodes);
  const layouts = planConstLayouts(graph, lowered, rootOf);
  const sizes = new Sizes(ctx.limits);
  const persistent = persistentValues(graph, staticValues, rootOf, layouts);
  const atEnd = graph.updates.filter(([t]) => !copyAfter.has(t)).map(([, src]) => src);
  const { mem, lifetimes } = planActivations(graph, lowered, persistent, rootOf, sizes, atEnd);
  const owned: GPUBuffer[] = [];
  const shared = opts.shareParams === undefined ? [] : [opts.shareParams].flat();
  try {
    const { buffers, weightBytes, paramBytes, ioBytes } = await allocateBuffers(
      gpu,
      pool,
      graph,
      persistent,
      staticValues,
      layouts,
      mem,
      sizes,
      owned,
      shared,
    );
    let steps: Step[];
    if (opts.streamPipelines) {
      // Every pipeline is requested now, in node order; only the compile-time nodes' are awaited.
      const { flat, requested } = requestPipelines(gpu, lowered);
      const bufferFor = bindingResolver(graph, buffers, layouts, rootOf);
      const staticIdx = flat.flatMap((f, i) => (isStatic(f.node) ? [i] : []));
      const staticPipelines = await Promise.all(staticIdx.map((i) => requested[i]));
      const made = await makeBindGroups(
        gpu,
        staticIdx.map((i) => flat[i]),
        staticPipelines,
        bufferFor,
      );
      const madeAt = new Map(staticIdx.map((i, k) => [i, made[k]]));
      steps = flat.map(
        ({ node, d, label }, i) =>
          madeAt.get(i) ??
          new PendingStep(node, d, label, requested[i], (p) => bindGroupFor(gpu, p, node, d, bufferFor)),
      );
    } else {
      const { flat, requested } = requestPipelines(gpu, lowered);
      const pipelines = await Promise.all(requested);
      steps = await makeBindGroups(gpu, flat, pipelines, bindingResolver(graph, buffers, layouts, rootOf));
    }
    const liveSteps = steps.filter((s) => !isStatic(s.node));
    const copies = graph.updates
      .filter(([, source]) => !inPlace.has(source))
      .map(([target, source]): Copy => {
        const to = buffers.get(target)!;
        const from = buffers.get(rootOf(source));
        if (!from) throw new KernelError(`update of "${target}": its source "${source}" has no buffer`);
        if (from === to) throw new KernelError(`update of "${target}" from "${source}": both are the same buffer`);
        const producer = copyAfter.get(target);
        const after = producer ? lastIndex(liveSteps, (s) => s.node === producer) : -1;
        return { target, from, to, bytes: numel(graph.shape(target)) * 4, after };
      });

    const staticSteps = steps.filter((s) => isStatic(s.node));
    const plan = new Plan(
      device,
      graph,
      liveSteps,
      buffers,
      persistent,
      rootOf,
      owned,
      {
        weightBytes,
        paramBytes,
        ioBytes,
        activationBytes: mem.totalBytes,
        activationBytesUnplanned: mem.naiveBytes,
        peakBytes: weightBytes + paramBytes + ioBytes + mem.totalBytes,
        largestTensorBytes: sizes.largest,
        largestActivationBytes: Math.max(
          0,
          ...[...lifetimes.values()].filter((l) => !l.id.includes('#temp')).map((l) => l.bytes),
        ),
      },
      tuning,
      copies,
    );
    // Constant pre-computation: nodes whose inputs are all constants run once, here.
    if (staticSteps.length) await plan.submitSteps(staticSteps, 'compile-time nodes');
    return plan;
  } catch (e) {
    for (const b of owned) pool.release(b);
    throw e;
  }
}

// ---- compile()'s phases ---------------------------------------------------------------------

interface LoweredNode {
  node: Node;
  low: Lowering;
}

/** Constant values: constants and what is computed from them alone, before any input arrives. */
function findStaticValues(graph: Graph): Set<string> {
  const staticValues = new Set<string>();
  for (const v of graph.values.values()) if (v.kind === 'const') staticValues.add(v.name);
  const isStatic = (n: Node) => n.inputs.length > 0 && n.inputs.every((x) => staticValues.has(x));
  for (const n of graph.nodes) if (isStatic(n)) n.outputs.forEach((o) => staticValues.add(o));
  return staticValues;
}

/**
 * Aliases (reshape): an output shares its input's storage; rootOf(v) names the value owning v's
 * buffer. `inPlace` (update source → its parameter) adds the updates written in place.
 */
function aliasRoots(graph: Graph, inPlace: ReadonlyMap<string, string> = new Map()): (v: string) => string {
  const root = new Map<string, string>(inPlace);
  const rootOf = (v: string): string => root.get(v) ?? v;
  for (const n of graph.nodes) if (getOp(n.op).alias) root.set(n.outputs[0], rootOf(n.inputs[0]));
  return rootOf;
}

/**
 * Lower every node to dispatches, with its tuned variant where the table has one. A choice that
 * no longer lowers (a stale table from another version, say) falls back to the heuristic, with a note.
 */
function lowerNodes(
  graph: Graph,
  ctx: LowerContext,
  opts: CompileOptions,
  inPlace: ReadonlySet<Node> = new Set(),
): { lowered: LoweredNode[]; tuning: TuningReport } {
  const tuning = { used: 0, notes: [] as string[] };
  const limits = genericLimits(opts);
  const lowered = graph.nodes.map((n) => {
    const def = getOp(n.op);
    const ins = n.inputs.map((x) => graph.shape(x));
    const outs = n.outputs.map((x) => graph.shape(x));
    if (def.alias) return { node: n, low: { dispatches: [] } as Lowering };
    const nctx = {
      ...ctx,
      constInputs: n.inputs.map((x) => graph.value(x).kind === 'const'),
      ...(inPlace.has(n) ? { inPlace: true } : {}),
    };
    const t = opts.tuning?.get(layerKey(n.op, n.attrs, ins));
    if (t?.prefer && opts.prefer?.[t.family] === undefined) {
      try {
        const low = def.lower(n.attrs, ins, outs, { ...nctx, prefer: { ...ctx.prefer, [t.family]: t.prefer } });
        tuning.used++;
        return { node: n, low };
      } catch (e) {
        tuning.notes.push(
          `node "${n.name}": tuned ${t.family} "${t.prefer}" failed to lower (${(e as Error).message}); used the heuristic`,
        );
      }
    } else if (t) {
      tuning.used++;
    }
    const low = def.lower(n.attrs, ins, outs, nctx);
    if (t || !ctx.cpuAdapter) return { node: n, low };
    // Cold start: the shape-generic variant for an untuned layer (CompileOptions.genericMaxFlops).
    const space = def.tuneSpace?.(n.attrs, ins, nctx);
    const generic = space?.candidates.find((c) => c.split(',').includes('generic'));
    if (!space || !generic || opts.prefer?.[space.family] !== undefined) return { node: n, low };
    const limit = typeof limits === 'number' ? limits : (limits[space.family] ?? -1);
    const flops = low.dispatches.reduce((a, d) => a + (d.flops ?? 0), 0);
    if (flops > limit) return { node: n, low };
    return {
      node: n,
      low: def.lower(n.attrs, ins, outs, { ...nctx, prefer: { ...ctx.prefer, [space.family]: generic } }),
    };
  });
  return { lowered, tuning };
}

/** CompileOptions.genericMaxFlops (or its default), checked: FLOP counts ≥ 0 for known kernel families. */
function genericLimits(opts: CompileOptions): number | Readonly<Record<string, number>> {
  const limits = opts.genericMaxFlops ?? GENERIC_MAX_FLOPS;
  const check = (v: unknown, what: string) => {
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
      throw new Error(`compile option genericMaxFlops${what}: a FLOP count >= 0 (or Infinity), got ${String(v)}`);
    }
  };
  if (typeof limits !== 'object' || limits === null) {
    check(limits, '');
    return limits;
  }
  for (const [family, v] of Object.entries(limits)) {
    if (!VARIANT_FAMILIES.has(family)) {
      throw new Error(
        `compile option genericMaxFlops: unknown kernel family "${family}" (families: ${[...VARIANT_FAMILIES.keys()].join(', ')})`,
      );
    }
    check(v, `.${family}`);
  }
  return limits;
}

interface ConstLayouts {
  /** Relaid-out copies by name ("<constant>@<layout>"). */
  relaid: Map<string, { source: string; layout: ConstLayout }>;
  /** Per node, the inputs bound to a relaid copy instead of the constant. */
  inputOverride: Map<Node, Map<number, string>>;
  /** Values some node reads in their own layout. */
  readsAsIs: Set<string>;
}

/**
 * Weights in the layouts the chosen kernels read (Lowering.constLayouts): one copy per
 * (constant, layout), bound in place of the constant for the nodes that asked.
 */
function planConstLayouts(graph: Graph, lowered: LoweredNode[], rootOf: (v: string) => string): ConstLayouts {
  const relaid = new Map<string, { source: string; layout: ConstLayout }>();
  const inputOverride = new Map<Node, Map<number, string>>();
  const readsAsIs = new Set<string>();
  for (const { node, low } of lowered) {
    const over = new Map<number, string>();
    for (const cl of low.constLayouts ?? []) {
      const src = node.inputs[cl.input];
      if (graph.value(src).kind !== 'const')
        throw new KernelError(
          `node "${node.name}": input ${cl.input} ("${src}") is not a constant, so it cannot be relaid out as ${cl.layout}`,
        );
      const name = `${src}@${cl.layout}`;
      if (!relaid.has(name)) relaid.set(name, { source: src, layout: cl });
      over.set(cl.input, name);
    }
    if (over.size) inputOverride.set(node, over);
    node.inputs.forEach((x, i) => {
      if (!over.has(i)) readsAsIs.add(rootOf(x));
    });
  }
  return { relaid, inputOverride, readsAsIs };
}

/** Buffer sizes, with the binding limit checked up front; remembers the largest. */
class Sizes {
  largest = 0;
  constructor(private readonly limits: Limits) {}

  bytesOf(name: string, elements: number, shape?: readonly number[]): number {
    const b = BufferPool.round(elements * 4);
    this.largest = Math.max(this.largest, b);
    if (b > this.limits.maxStorageBufferBindingSize) {
      throw new TensorTooLargeError(
        `tensor "${name}"${shape ? ` ${fmtShape(shape)}` : ''} needs ${b} bytes, over this device's maxStorageBufferBindingSize of ` +
          `${this.limits.maxStorageBufferBindingSize} bytes; use a smaller batch or input size`,
      );
    }
    return b;
  }
}

/**
 * Persistent buffers: inputs, constants, static results and graph outputs. Everything else is an
 * intermediate placed by the memory plan. A constant that every reader takes in another layout
 * is not uploaded in its own.
 */
function persistentValues(
  graph: Graph,
  staticValues: ReadonlySet<string>,
  rootOf: (v: string) => string,
  layouts: ConstLayouts,
): Set<string> {
  const persistent = new Set<string>();
  for (const v of graph.values.values()) {
    if (v.kind !== 'node' || staticValues.has(v.name)) persistent.add(v.name);
  }
  for (const o of graph.outputs) persistent.add(rootOf(o));
  for (const { source } of layouts.relaid.values()) {
    if (!layouts.readsAsIs.has(source) && !graph.outputs.includes(source)) persistent.delete(source);
  }
  return persistent;
}

function lastIndex<T>(xs: readonly T[], f: (x: T) => boolean): number {
  for (let i = xs.length - 1; i >= 0; i--) if (f(xs[i])) return i;
  return -1;
}

/**
 * When each update's copy can run: right after the node that makes its source (the node is the
 * map's value) when no later node reads the target parameter; updates not in the map copy at the
 * end of the run (their sources are not made by a node of the run, or the parameter is read later).
 */
function scheduleUpdates(
  graph: Graph,
  staticValues: ReadonlySet<string>,
  rootOf: (v: string) => string,
): Map<string, Node> {
  const after = new Map<string, Node>();
  const targets = new Set(graph.updates.map(([t]) => t));
  for (const [target, source] of graph.updates) {
    const root = rootOf(source);
    if (targets.has(root))
      throw new KernelError(
        `update of "${target}" reads "${source}", a parameter that is updated itself in the same run`,
      );
    if (staticValues.has(root)) continue;
    const at = graph.nodes.findIndex((n) => n.outputs.includes(root));
    if (at < 0) continue;
    const lastRead = lastIndex(graph.nodes, (n) => n.inputs.some((x) => rootOf(x) === target));
    if (lastRead <= at) after.set(target, graph.nodes[at]);
  }
  return after;
}

/**
 * The updates written in place, as source → target parameter. A node whose op lists in-place
 * pairs (OpDef.inPlace) writes all of them into their inputs when, for every pair, the output is
 * the update source of exactly that input, a parameter that the node reads once (views
 * included), that no later node reads (the update is in `copyAfter` at this node) and that is not
 * a graph output. Then the sources are aliases of their
 * parameters: no buffer of their own, no copy. Any other update keeps its buffer and copy.
 */
function inPlaceUpdates(
  graph: Graph,
  copyAfter: ReadonlyMap<string, Node>,
  rootOf: (v: string) => string,
): Map<string, string> {
  const targetOf = new Map(graph.updates.map(([t, src]) => [src, t]));
  const out = new Map<string, string>();
  for (const n of graph.nodes) {
    const pairs = getOp(n.op).inPlace;
    if (!pairs?.length) continue;
    const ok = pairs.every(([o, i]) => {
      const target = n.inputs[i];
      return (
        targetOf.get(n.outputs[o]) === target &&
        copyAfter.get(target) === n &&
        n.inputs.filter((x) => rootOf(x) === target).length === 1 &&
        !graph.outputs.some((x) => rootOf(x) === target)
      );
    });
    if (ok && pairs.length === n.outputs.length) for (const [o, i] of pairs) out.set(n.outputs[o], n.inputs[i]);
  }
  return out;
}

/**
 * Memory plan: the lifetime of every intermediate and scratch buffer, packed into shared slots.
 * The sources of updates copied at the end of the run (`atEnd`) live to the end.
 */
function planActivations(
  graph: Graph,
  lowered: LoweredNode[],
  persistent: ReadonlySet<string>,
  rootOf: (v: string) => string,
  sizes: Sizes,
  atEnd: readonly string[],
): { mem: ReturnType<typeof planMemory>; lifetimes: Map<string, Lifetime> } {
  const lifetimes = new Map<string, Lifetime>();
  const touch = (id: string, bytes: number, step: number) => {
    const t = lifetimes.get(id);
    if (t) t.last = Math.max(t.last, step);
    else lifetimes.set(id, { id, bytes, first: step, last: step });
  };
  lowered.forEach(({ node, low }, step) => {
    for (const v of [...node.inputs, ...node.outputs]) {
      const r = rootOf(v);
      if (!persistent.has(r) && graph.value(r).kind === 'node')
        touch(r, sizes.bytesOf(r, numel(graph.shape(r)), graph.shape(r)), step);
    }
    (low.temps ?? []).forEach((elems, i) =>
      touch(`${node.name}#temp${i}`, sizes.bytesOf(`${node.name} scratch ${i}`, elems), step),
    );
  });
  for (const source of atEnd) {
    const r = rootOf(source);
    if (lifetimes.has(r)) touch(r, 0, lowered.length);
  }
  return { mem: planMemory([...lifetimes.values()]), lifetimes };
}

/**
 * Buffers: one per persistent value (constants and parameters uploaded; a parameter another plan
 * shares is bound, not copied), one per relaid constant, one per memory-plan slot; every buffer
 * taken is pushed to `owned` (released on failure or dispose).
 */
async function allocateBuffers(
  gpu: GPUDevice,
  pool: BufferPool,
  graph: Graph,
  persistent: ReadonlySet<string>,
  staticValues: ReadonlySet<string>,
  layouts: ConstLayouts,
  mem: ReturnType<typeof planMemory>,
  sizes: Sizes,
  owned: GPUBuffer[],
  shared: readonly Plan[],
): Promise<{ buffers: Map<string, GPUBuffer>; weightBytes: number; paramBytes: number; ioBytes: number }> {
  const take = (bytes: number, label: string) => {
    const b = pool.acquire(bytes, STORAGE, label);
    owned.push(b);
    return b;
  };
  const buffers = new Map<string, GPUBuffer>();
  let weightBytes = 0;
  let paramBytes = 0;
  let ioBytes = 0;
  const slots: GPUBuffer[] = [];
  await withErrorScope(gpu, 'allocating plan buffers', () => {
    for (const name of persistent) {
      const v = graph.value(name);
      if (v.kind === 'param') {
        const other = shared.map((p) => p.paramBuffer(name)).find((x) => x !== undefined);
        if (other) {
          if (fmtShape(other.shape) !== fmtShape(v.shape))
            throw new KernelError(
              `parameter "${name}" ${fmtShape(v.shape)} cannot share the buffer of ${fmtShape(other.shape)}`,
            );
          buffers.set(name, other.buffer);
          continue;
        }
        const b = take(sizes.bytesOf(name, numel(v.shape), v.shape), name);
        buffers.set(name, b);
        gpu.queue.writeBuffer(b, 0, v.data!.buffer, v.data!.byteOffset, v.data!.byteLength);
        paramBytes += b.size;
        continue;
      }
      const b = take(sizes.bytesOf(name, numel(v.shape), v.shape), name);
      buffers.set(name, b);
      if (v.kind === 'const') gpu.queue.writeBuffer(b, 0, v.data!.buffer, v.data!.byteOffset, v.data!.byteLength);
      if (v.kind === 'const' || (v.kind === 'node' && staticValues.has(name))) weightBytes += b.size;
      else ioBytes += b.size;
    }
    for (const [name, { source, layout }] of layouts.relaid) {
      const data = layout.apply(graph.value(source).data!);
      if (data.length !== layout.elements)
        throw new KernelError(
          `layout ${layout.layout} of "${source}" made ${data.length} elements, expected ${layout.elements}`,
        );
      const b = take(sizes.bytesOf(name, data.length), name);
      buffers.set(name, b);
      gpu.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
      weightBytes += b.size;
    }
    mem.slotBytes.forEach((bytes, i) => slots.push(take(bytes, `slot${i}`)));
    for (const [id, s] of mem.slotOf) buffers.set(id, slots[s]);
  });
  return { buffers, weightBytes, paramBytes, ioBytes };
}

interface FlatDispatch {
  node: Node;
  d: Dispatch;
  label: string;
}

/**
 * The pipeline of every dispatch, requested now in node order (the order the first run needs
 * them; cached per device by key, so a repeated key is requested once, where it is first used).
 */
function requestPipelines(
  gpu: GPUDevice,
  lowered: LoweredNode[],
): { flat: FlatDispatch[]; requested: Promise<GPUComputePipeline>[] } {
  const flat = lowered.flatMap(({ node, low }) =>
    low.dispatches.map((d, i) => ({
      node,
      d,
      label: `node "${node.name}" (${node.op}${low.dispatches.length > 1 ? ` dispatch ${i}` : ''})`,
    })),
  );
  return { flat, requested: flat.map(({ d, label }) => pipelineFor(gpu, d, label)) };
}

type BufferFor = (node: Node, ref: BindingRef) => { buffer: GPUBuffer; size: number };

/** Resolves a dispatch's binding to its buffer (relaid copies of constants included). */
function bindingResolver(
  graph: Graph,
  buffers: Map<string, GPUBuffer>,
  layouts: ConstLayouts,
  rootOf: (v: string) => string,
): BufferFor {
  return (node: Node, ref: BindingRef): { buffer: GPUBuffer; size: number } => {
    const relaidName = ref.kind === 'input' ? layouts.inputOverride.get(node)?.get(ref.index) : undefined;
    if (relaidName) {
      const buffer = buffers.get(relaidName)!;
      return { buffer, size: BufferPool.round(layouts.relaid.get(relaidName)!.layout.elements * 4) };
    }
    const name =
      ref.kind === 'input'
        ? rootOf(node.inputs[ref.index])
        : ref.kind === 'output'
          ? rootOf(node.outputs[ref.index])
          : `${node.name}#temp${ref.index}`;
    const buffer = buffers.get(name);
    if (!buffer) throw new KernelError(`node "${node.name}": binding ${ref.kind} ${ref.index} has no buffer`);
    const elems = ref.kind === 'temp' ? null : numel(graph.shape(name));
    return { buffer, size: elems === null ? buffer.size : BufferPool.round(elems * 4) };
  };
}

function bindGroupFor(
  gpu: GPUDevice,
  pipeline: GPUComputePipeline,
  node: Node,
  d: Dispatch,
  bufferFor: BufferFor,
): GPUBindGroup {
  return gpu.createBindGroup({
    label: `${node.name}:${d.family}`,
    layout: pipeline.getBindGroupLayout(0),
    entries: d.bindings.map((ref, binding) => ({ binding, resource: bufferFor(node, ref) })),
  });
}

/** Bind groups, made once: each dispatch's bindings resolved to the buffers (relaid copies included). */
function makeBindGroups(
  gpu: GPUDevice,
  flat: FlatDispatch[],
  pipelines: GPUComputePipeline[],
  bufferFor: BufferFor,
): Promise<Step[]> {
  return withErrorScope(gpu, 'creating bind groups', () =>
    flat.map(({ node, d, label }, i) => ({
      node,
      dispatch: d,
      label,
      pipeline: pipelines[i],
      bindGroup: bindGroupFor(gpu, pipelines[i], node, d, bufferFor),
    })),
  );
}

/** An update's copy: `from` (the source's buffer) into parameter `target`, after step `after` (−1: at the end). */
interface Copy {
  target: string;
  from: GPUBuffer;
  to: GPUBuffer;
  bytes: number;
  after: number;
}

export class Plan {
  private readback = new Map<string, GPUBuffer>();
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  readonly dispatchCount: number;

  constructor(
    readonly device: Device,
    readonly graph: Graph,
    readonly steps: Step[],
    private readonly buffers: Map<string, GPUBuffer>,
    private readonly persistent: ReadonlySet<string>,
    private readonly rootOf: (v: string) => string,
    private readonly owned: GPUBuffer[],
    readonly memory: MemoryReport,
    readonly tuning: TuningReport = { used: 0, notes: [] },
    copies: readonly Copy[] = [],
  ) {
    this.dispatchCount = steps.length;
    for (const c of copies) {
      const list = this.copiesAfter.get(c.after) ?? [];
      list.push(c);
      this.copiesAfter.set(c.after, list);
    }
  }

  /** Update copies by the step they follow (−1: the end of the run). */
  private readonly copiesAfter = new Map<number, Copy[]>();

  private encodeCopies(enc: GPUCommandEncoder, after: number): boolean {
    const list = this.copiesAfter.get(after);
    for (const c of list ?? []) enc.copyBufferToBuffer(c.from, 0, c.to, 0, c.bytes);
    return list !== undefined;
  }

  /** Names of the graph's parameters, in definition order. */
  get paramNames(): string[] {
    return [...this.graph.values.values()].filter((v) => v.kind === 'param').map((v) => v.name);
  }

  /** The buffer holding parameter `name` and its shape, or undefined if this plan has no such parameter. */
  paramBuffer(name: string): { buffer: GPUBuffer; shape: number[] } | undefined {
    const v = this.graph.values.get(name);
    if (v?.kind !== 'param' || this.disposed) return undefined;
    return { buffer: this.buffers.get(name)!, shape: v.shape };
  }

  private checkParam(name: string): number[] {
    const v = this.graph.values.get(name);
    if (v?.kind !== 'param') {
      throw new InputError(`"${name}" is not a parameter of this plan (parameters: ${this.paramNames.join(', ')})`);
    }
    return v.shape;
  }

  /** The current data of parameters `names` (default: all), read back after every queued run. */
  readParams(names: readonly string[] = this.paramNames): Promise<Map<string, HostTensor>> {
    const r = this.queue.then(() => this.readParamsNow(names));
    this.queue = r.catch(() => undefined);
    return r;
  }

  /** Overwrite parameter `name` (checkpoint load, resume): takes effect before the next run. */
  writeParam(name: string, data: Float32Array): Promise<void> {
    const r = this.queue.then(async () => {
      if (this.disposed) throw new Error('this plan was disposed');
      const shape = this.checkParam(name);
      if (data.length !== numel(shape))
        throw new InputError(`parameter "${name}" ${fmtShape(shape)} needs ${numel(shape)} values, got ${data.length}`);
      const gpu = this.device.gpu;
      await withErrorScope(gpu, `writing parameter "${name}"`, () =>
        gpu.queue.writeBuffer(this.buffers.get(name)!, 0, data.buffer, data.byteOffset, data.byteLength),
      );
    });
    this.queue = r.catch(() => undefined);
    return r;
  }

  private async readParamsNow(names: readonly string[]): Promise<Map<string, HostTensor>> {
    if (this.disposed) throw new Error('this plan was disposed');
    const shapes = names.map((n) => this.checkParam(n));
    const gpu = this.device.gpu;
    const reads = names.map((n, i) => {
      const bytes = BufferPool.round(numel(shapes[i]) * 4);
      return { n, shape: shapes[i], rb: gpu.createBuffer({ size: bytes, usage: READBACK, label: `read ${n}` }) };
    });
    await withErrorScope(gpu, 'reading parameters', () => {
      const enc = gpu.createCommandEncoder({ label: 'read parameters' });
      for (const { n, rb } of reads) enc.copyBufferToBuffer(this.buffers.get(n)!, 0, rb, 0, rb.size);
      gpu.queue.submit([enc.finish()]);
    });
    const out = new Map<string, HostTensor>();
    await this.settle(
      Promise.all(
        reads.map(async ({ n, shape, rb }) => {
          await rb.mapAsync(MAP_READ);
          out.set(n, { shape: [...shape], data: new Float32Array(rb.getMappedRange().slice(0, numel(shape) * 4)) });
          rb.unmap();
          rb.destroy();
        }),
      ),
      'reading parameters',
    );
    return new Map(names.map((n) => [n, out.get(n)!]));
  }

  /** Pipeline keys this plan uses, in order. */
  get kernels(): string[] {
    return this.steps.map((s) => s.dispatch.key);
  }

  /** Runs are serialised: each waits for the one before, since they share buffers. */
  run(inputs: Record<string, Float32Array>, opts: RunOptions = {}): Promise<RunResult> {
    const r = this.queue.then(() => this.runNow(inputs, opts));
    this.queue = r.catch(() => undefined);
    return r;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const pool = poolFor(this.device.gpu);
    for (const b of this.owned) pool.release(b);
    for (const b of this.readback.values()) pool.release(b);
    this.readback.clear();
  }

  async submitSteps(steps: Step[], what: string): Promise<void> {
    const gpu = this.device.gpu;
    await withErrorScope(gpu, what, () => {
      const enc = gpu.createCommandEncoder({ label: what });
      const pass = enc.beginComputePass({ label: what });
      for (const s of steps) this.encode(pass, s);
      pass.end();
      gpu.queue.submit([enc.finish()]);
    });
    await this.settle(gpu.queue.onSubmittedWorkDone(), what);
  }

  private encode(pass: GPUComputePassEncoder, s: Step): void {
    pass.setPipeline(s.pipeline);
    pass.setBindGroup(0, s.bindGroup);
    pass.dispatchWorkgroups(...s.dispatch.workgroups);
  }

  private checkInputs(inputs: Record<string, Float32Array>): void {
    const expected = [...this.graph.values.values()].filter((v) => v.kind === 'input');
    for (const k of Object.keys(inputs)) {
      if (!expected.some((v) => v.name === k))
        throw new InputError(`unknown input "${k}" (the graph's inputs: ${expected.map((v) => v.name).join(', ')})`);
    }
    for (const v of expected) {
      const d = inputs[v.name];
      if (!d) throw new InputError(`missing input "${v.name}" ${fmtShape(v.shape)}`);
      if (!(d instanceof Float32Array)) throw new InputError(`input "${v.name}" must be a Float32Array`);
      if (d.length !== numel(v.shape)) {
        throw new InputError(
          `input "${v.name}" has ${d.length} values but the graph expects ${fmtShape(v.shape)} = ${numel(v.shape)}`,
        );
      }
    }
  }

  private async runNow(inputs: Record<string, Float32Array>, opts: RunOptions): Promise<RunResult> {
    if (this.disposed) throw new Error('this plan was disposed');
    assertAlive(this.device, 'run');
    this.checkInputs(inputs);
    const gpu = this.device.gpu;
    const wanted = opts.outputs ?? this.graph.outputs;
    for (const o of wanted) {
      const root = this.rootOf(o);
      if (!this.graph.values.has(o)) throw new InputError(`unknown output "${o}"`);
      if (!this.persistent.has(root)) {
        throw new InputError(`"${o}" is an intermediate whose buffer is reused; mark it as a graph output to read it`);
      }
    }
    const pool = poolFor(gpu);
    const t0 = performance.now();
    let profile: Profile | undefined;

    await withErrorScope(gpu, 'recording the run', () => {
      for (const [name, data] of Object.entries(inputs))
        gpu.queue.writeBuffer(this.buffers.get(name)!, 0, data.buffer, data.byteOffset, data.byteLength);
    });

    // A streamed plan's first run (CompileOptions.streamPipelines) runs its steps as they are built.
    let streamed = false;
    if (this.steps.some((s) => s instanceof PendingStep && !s.isBuilt)) {
      if (opts.profile)
        await this.settle(Promise.all(this.steps.map((s) => (s instanceof PendingStep ? s.ready : null))), 'building');
      else streamed = await this.runAsBuilt();
    }

    let timestamps: { set: GPUQuerySet; resolve: GPUBuffer; read: GPUBuffer } | undefined;
    if (opts.profile && !this.device.hasTimestamps) {
      profile = await this.profileByWallTime();
    }
    await this.blame(
      withErrorScope(gpu, 'recording the run', () => {
        const enc = gpu.createCommandEncoder({ label: 'run' });
        if (opts.profile && this.device.hasTimestamps) {
          const n = Math.min(this.steps.length, 2048);
          const set = gpu.createQuerySet({ type: 'timestamp', count: 2 * n });
          const resolve = gpu.createBuffer({ size: 16 * n, usage: Usage.QUERY_RESOLVE | Usage.COPY_SRC });
          const read = gpu.createBuffer({ size: 16 * n, usage: Usage.MAP_READ | Usage.COPY_DST });
          timestamps = { set, resolve, read };
          this.steps.forEach((s, i) => {
            const pass = enc.beginComputePass({
              label: s.label,
              timestampWrites:
                i < n ? { querySet: set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } : undefined,
            });
            this.encode(pass, s);
            pass.end();
            this.encodeCopies(enc, i);
          });
          enc.resolveQuerySet(set, 0, 2 * n, resolve, 0);
          enc.copyBufferToBuffer(resolve, 0, read, 0, 16 * n);
        } else if (!opts.profile && !streamed) {
          // A copy is not a compute command: the pass ends before one and a new one begins after.
          let pass = enc.beginComputePass({ label: 'run' });
          this.steps.forEach((s, i) => {
            this.encode(pass, s);
            if (this.copiesAfter.has(i)) {
              pass.end();
              this.encodeCopies(enc, i);
              pass = enc.beginComputePass({ label: 'run' });
            }
          });
          pass.end();
        }
        this.encodeCopies(enc, -1);
        for (const o of wanted) {
          const src = this.buffers.get(this.rootOf(o))!;
          let rb = this.readback.get(o);
          if (!rb) this.readback.set(o, (rb = pool.acquire(src.size, READBACK, `readback ${o}`)));
          enc.copyBufferToBuffer(src, 0, rb, 0, src.size);
        }
        gpu.queue.submit([enc.finish()]);
      }),
    );

    const outputs: Record<string, HostTensor> = {};
    await this.settle(
      Promise.all(
        wanted.map(async (o) => {
          const rb = this.readback.get(o)!;
          await rb.mapAsync(MAP_READ);
          const shape = [...this.graph.shape(o)];
          outputs[o] = {
            shape,
            data: new Float32Array(rb.getMappedRange(0, BufferPool.round(numel(shape) * 4)).slice(0, numel(shape) * 4)),
          };
          rb.unmap();
        }),
      ),
      'reading outputs',
    );
    if (timestamps) {
      const { set, resolve, read } = timestamps;
      await this.settle(read.mapAsync(MAP_READ), 'reading timestamps');
      const ts = new BigInt64Array(read.getMappedRange().slice(0));
      read.unmap();
      const entries: ProfileEntry[] = this.steps
        .slice(0, ts.length / 2)
        .map((s, i) => this.entry(s, Number(ts[2 * i + 1] - ts[2 * i]) / 1e6));
      profile = { mode: 'timestamp', entries, totalMs: entries.reduce((a, e) => a + e.ms, 0) };
      set.destroy();
      resolve.destroy();
      read.destroy();
    }
    return { outputs, ms: performance.now() - t0, profile };
  }

  /**
   * Records and submits the steps in order, each chunk as soon as its pipelines are built: wait
   * for the next step's pipeline, take it and every following step already built, submit them
   * (with the update copies that follow them), repeat. The same dispatches in the same order as
   * one command buffer would hold, so the same results. Returns true (the steps were submitted).
   */
  private async runAsBuilt(): Promise<boolean> {
    const gpu = this.device.gpu;
    const steps = this.steps;
    const built = (s: Step) => !(s instanceof PendingStep) || s.isBuilt;
    let i = 0;
    while (i < steps.length) {
      const next = steps[i];
      if (next instanceof PendingStep) await next.ready;
      let j = i + 1;
      while (j < steps.length && built(steps[j])) j++;
      const chunk = steps.slice(i, j);
      const from = i;
      await this.blame(
        withErrorScope(gpu, 'recording the run', () => {
          const enc = gpu.createCommandEncoder({ label: 'run' });
          let pass = enc.beginComputePass({ label: 'run' });
          chunk.forEach((s, k) => {
            this.encode(pass, s);
            if (this.copiesAfter.has(from + k)) {
              pass.end();
              this.encodeCopies(enc, from + k);
              pass = enc.beginComputePass({ label: 'run' });
            }
          });
          pass.end();
          gpu.queue.submit([enc.finish()]);
        }),
        chunk,
      );
      i = j;
    }
    return true;
  }

  /**
   * One pass holds every dispatch, so a validation error there cannot say which kernel it was.
   * On such an error, encode each step on its own (without submitting) to find the culprit.
   */
  private async blame<T>(p: Promise<T>, steps: readonly Step[] = this.steps): Promise<T> {
    try {
      return await p;
    } catch (e) {
      if (!(e instanceof KernelError)) throw e;
      const gpu = this.device.gpu;
      for (const s of steps) {
        gpu.pushErrorScope('validation');
        const enc = gpu.createCommandEncoder({ label: s.label });
        const pass = enc.beginComputePass({ label: s.label });
        this.encode(pass, s);
        pass.end();
        enc.finish();
        const err = await gpu.popErrorScope();
        if (err)
          throw new KernelError(`${s.label}, kernel ${s.dispatch.family}: WebGPU validation error: ${err.message}`);
      }
      throw e;
    }
  }

  private entry(s: Step, ms: number): ProfileEntry {
    return {
      node: s.node.name,
      family: s.dispatch.family,
      key: s.dispatch.key,
      ms,
      flops: s.dispatch.flops,
      bytes: s.dispatch.bytes,
    };
  }

  private async profileByWallTime(): Promise<Profile> {
    const gpu = this.device.gpu;
    const entries: ProfileEntry[] = [];
    for (const [i, s] of this.steps.entries()) {
      const t = performance.now();
      const enc = gpu.createCommandEncoder();
      const pass = enc.beginComputePass({ label: s.label });
      this.encode(pass, s);
      pass.end();
      this.encodeCopies(enc, i);
      gpu.queue.submit([enc.finish()]);
      await this.settle(gpu.queue.onSubmittedWorkDone(), s.label);
      entries.push(this.entry(s, performance.now() - t));
    }
    return { mode: 'cpu-wall', entries, totalMs: entries.reduce((a, e) => a + e.ms, 0) };
  }

  /** Await GPU work; if the device was lost meanwhile, say so instead of returning garbage. */
  private async settle<T>(p: Promise<T>, what: string): Promise<T> {
    try {
      const r = await p;
      assertAlive(this.device, what);
      return r;
    } catch (e) {
      await new Promise((res) => setTimeout(res, 0));
      if (this.device.lost)
        throw new DeviceLostError(
          `${what}: the GPU device was lost (${this.device.lost.reason}): ${this.device.lost.message}`,
        );
      throw e;
    }
  }
}
