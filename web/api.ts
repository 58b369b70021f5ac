// What the page exposes as `window.cnnlab`: the engine for interactive use in the console and
// for the CLI, which drives this same page in headless Chromium.

import { demoNetwork, formatDemo, runDemo } from '../bench/demo.js';
import { createDevice, describeDevice, type Device } from '../engine/device.js';
import { compile } from '../engine/executor.js';
import { Graph, type GraphJSON, graphFromJSON, runReference } from '../engine/graph.js';
import { optimize } from '../engine/passes.js';
import { formatProfile } from '../engine/profiler.js';

let device: Promise<Device> | undefined;

/** The page's one device, created on first use. */
export function getDevice(): Promise<Device> {
  return (device ??= createDevice());
}

/** Run a graph built by `build` on the GPU and return its outputs as plain arrays (for automation). */
export async function runGraph(build: () => Graph, inputs: Record<string, number[]>): Promise<Record<string, { shape: number[]; data: number[] }>> {
  const g = build();
  const plan = await compile(await getDevice(), g);
  try {
    const feed = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, new Float32Array(v)]));
    const { outputs } = await plan.run(feed);
    return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, { shape: t.shape, data: [...t.data] }]));
  } finally {
    plan.dispose();
  }
}

export const api = {
  getDevice, describeDevice, createDevice, Graph, compile, optimize, runReference, formatProfile,
  demoNetwork, runDemo, formatDemo, runGraph,
  /** Run a graph serialised with graphToJSON (how tests and the CLI hand graphs to the page). */
  runGraphJSON: (j: GraphJSON, inputs: Record<string, number[]>) => runGraph(() => graphFromJSON(j), inputs),
  /** The demo network's logits for a given input: used by the browser test against Node. */
  async demoLogits(o: { size: number; batch: number; seed: number }, image: number[]): Promise<number[]> {
    const out = await runGraph(() => optimize(demoNetwork(o)).graph, { image });
    return Object.values(out)[0].data;
  },
};

export type CnnlabApi = typeof api;
