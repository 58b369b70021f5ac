// TF.js's training step on a cnnlab Graph, as a TF.js user writes one by hand: the network rebuilt
// from tf ops by bench/peers/tfjs.ts (the inference peer's builder) with the trainable weights as
// tf.variable, the loss tf.losses.softmaxCrossEntropy (mean over the batch), the gradients from
// tf.variableGrads and the update by tf.train.momentum's applyGradients (what optimizer.minimize
// does), all in one tf.tidy; a step ends when its loss has been read back with data().
//
// The same step as cnnlab's Trainer (engine/train.ts) with SGD + momentum and no weight decay:
// TF.js's MomentumOptimizer keeps accum ← momentum · accum + g, w ← w − lr · accum, which is
// PyTorch's SGD (dampening 0, buffer starting at the first gradient) and cnnlab's sgd_update.
// BatchNorm trains on batch statistics; its running mean and variance are non-trainable variables
// updated as PyTorch does (r ← (1 − m)·r + m·s, the variance unbiased by n/(n − 1), n = N·H·W),
// inside the traced forward: the update is on the tape but not on the loss's path, so no gradient
// flows through it. The rebuilt model runs the unoptimised graph: folding BN into the convs is an
// inference-only rewrite.
//
// The protocol and why its checks are what they are: docs/peers.md, "The training bench". The `tf`
// namespace is a parameter, as in bench/peers/tfjs.ts (the page passes the WebGPU build).

import type * as TF from '@tensorflow/tfjs';
import type { Graph, Node } from '../../engine/graph.js';
import { numel } from '../../kernels/kernel.js';
import { buildTfjsModel } from './tfjs.js';

type Tf = typeof TF;

export interface TfjsTrainSpec {
  /** The forward graph's logits value, [N, K]. */
  logits: string;
  /** Graph constants to train (the others stay constant tensors). */
  trainable: string[];
  lr: number;
  momentum: number;
  /** BN running-statistics momentum (PyTorch's default 0.1). */
  bnMomentum?: number;
}

export interface TfjsTrainer {
  /** One training step on images `x` and targets [N, K]; resolves with the loss read back to the host. */
  step(x: Float32Array, targets: Float32Array): Promise<number>;
  /** Bytes of the variables (trainable weights and BN running statistics). */
  variableBytes: number;
  /** The trainable weights and BN running statistics as tf.variable, by graph value name. */
  variables: Map<string, TF.Variable>;
  dispose(): void;
}

/** The graph's BN running statistics (inputs 3 and 4 of every batchnorm node). */
export function bnStatistics(graph: Graph): string[] {
  return [...new Set(graph.nodes.filter((n) => n.op === 'batchnorm').flatMap((n) => n.inputs.slice(3, 5)))];
}

export function buildTfjsTrainer(tf: Tf, graph: Graph, spec: TfjsTrainSpec): TfjsTrainer {
  const input = [...graph.values.values()].filter((v) => v.kind === 'input');
  if (input.length !== 1) throw new Error(`tfjs trainer: the graph needs one input, has ${input.length}`);
  const [N, K] = graph.shape(spec.logits);
  const stats = bnStatistics(graph);
  const variables = new Map<string, boolean>([
    ...spec.trainable.map((n) => [n, true] as const),
    ...stats.map((n) => [n, false] as const),
  ]);
  const m = spec.bnMomentum ?? 0.1;
  const batchStats: [Node, TF.Tensor, TF.Tensor][] = [];
  const model = buildTfjsModel(tf, graph, {
    variables,
    batchNorm: 'train',
    onBatchStats: (node, mean, variance) => batchStats.push([node, mean, variance]),
  });
  const vars = spec.trainable.map((n) => model.variables.get(n)!);
  const optimizer = tf.train.momentum(spec.lr, spec.momentum);
  const updateRunningStats = () => {
    for (const [node, mean, variance] of batchStats.splice(0)) {
      const xs = graph.shape(node.inputs[0]);
      const n = numel(xs) / xs[xs.length - 1];
      const [rm, rv] = [model.variables.get(node.inputs[3])!, model.variables.get(node.inputs[4])!];
      rm.assign(rm.mul(1 - m).add(mean.mul(m)));
      rv.assign(rv.mul(1 - m).add(variance.mul((m * n) / Math.max(1, n - 1))));
    }
  };
  return {
    variableBytes: [...model.variables.values()].reduce((s, v) => s + 4 * v.size, 0),
    variables: model.variables,
    async step(x, targets) {
      if (targets.length !== N * K)
        throw new Error(`tfjs trainer: targets need ${N * K} values, got ${targets.length}`);
      const loss = tf.tidy(() => {
        const xt = tf.tensor(x, input[0].shape, 'float32');
        const yt = tf.tensor2d(targets, [N, K]);
        const { value, grads } = tf.variableGrads(() => {
          const [logits] = model.forward({ [input[0].name]: xt }, [spec.logits]);
          updateRunningStats();
          return tf.losses.softmaxCrossEntropy(yt, logits) as TF.Scalar;
        }, vars);
        optimizer.applyGradients(grads as Parameters<typeof optimizer.applyGradients>[0]);
        return value;
      });
      try {
        return (await loss.data())[0];
      } finally {
        loss.dispose();
      }
    },
    dispose() {
      optimizer.dispose();
      model.dispose();
    },
  };
}
