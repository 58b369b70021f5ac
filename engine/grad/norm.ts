// VJP rules for batchnorm, group norm, weight standardisation, layernorm and attention
// (docs/backward-norm.md). Each rule adds one backward node (kernels/backward/norm.ts,
// kernels/backward/attention.ts) that reads the forward node's inputs and the incoming gradient;
// statistics and attention probabilities are recomputed there, not kept from the forward.
//
// Every rule asserts that the node has no fused activation: autodiff splits those off first.

import type { VjpArgs, VjpRule, VjpTable } from './types.js';

function noActivation({ node }: VjpArgs): void {
  const act = node.attrs.act;
  if (act !== undefined && act !== 'none') {
    throw new Error(
      `VJP of node "${node.name}" (${node.op}): fused activation "${String(act)}" must be split off before differentiating`,
    );
  }
}

/** Throws unless no gradient is wanted for inputs `idx` (running statistics, for instance). */
function noGradFor({ node, need }: VjpArgs, idx: number[], why: string): void {
  for (const i of idx) {
    if (need[i]) throw new Error(`VJP of node "${node.name}" (${node.op}): input ${i} ("${node.inputs[i]}") ${why}`);
  }
}

/**
 * Adds `op` reading `inputs` with outputs [dx, dgamma, dbeta] (or fewer) and hands each output to
 * the forward input it differentiates (`to[k]` is the input index of output k), where needed.
 */
function backward(
  a: VjpArgs,
  op: string,
  inputs: string[],
  attrs: Record<string, unknown>,
  to: number[],
): (string | undefined)[] {
  const outs = a.g.add(op, inputs, attrs, a.name(op));
  const res: (string | undefined)[] = a.node.inputs.map(() => undefined);
  to.forEach((input, k) => {
    if (a.need[input]) res[input] = outs[k];
  });
  return res;
}

/** The forward node's attrs named in `keys` that are set (unset ones keep the backward op's default). */
function pick(a: VjpArgs, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => a.node.attrs[k] !== undefined).map((k) => [k, a.node.attrs[k]]));
}

const none = (a: VjpArgs): undefined[] => a.node.inputs.map(() => undefined);

/** batchnorm with running statistics [x, gamma, beta, mean, var]: the statistics are constants. */
const batchnormFrozen: VjpRule = (a) => {
  noActivation(a);
  noGradFor(a, [3, 4], 'is a running statistic; it gets no gradient');
  const dy = a.dOut[0];
  if (dy === undefined || !a.need.slice(0, 3).some(Boolean)) return none(a);
  const [x, gamma, , mean, variance] = a.node.inputs;
  return backward(a, 'batchnorm_grad', [x, gamma, mean, variance, dy], pick(a, ['eps']), [0, 1, 2]);
};

/** batchnorm_train [x, gamma, beta] -> [y, mean, var]: the batch statistics depend on x. */
const batchnormTrain: VjpRule = (a) => {
  noActivation(a);
  if (a.dOut[1] !== undefined || a.dOut[2] !== undefined) {
    throw new Error(
      `VJP of node "${a.node.name}" (batchnorm_train): a gradient flows into its batch mean or variance; ` +
        'only y is differentiable (the running-stat update is not part of the loss)',
    );
  }
  const dy = a.dOut[0];
  if (dy === undefined) return none(a);
  const [x, gamma] = a.node.inputs;
  const [, mean, variance] = a.node.outputs;
  return backward(a, 'batchnorm_train_grad', [x, gamma, mean, variance, dy], pick(a, ['eps']), [0, 1, 2]);
};

const groupNorm: VjpRule = (a) => {
  noActivation(a);
  const dy = a.dOut[0];
  if (dy === undefined) return none(a);
  const [x, gamma] = a.node.inputs;
  return backward(a, 'group_norm_grad', [x, gamma, dy], pick(a, ['groups', 'eps']), [0, 1, 2]);
};

const layernorm: VjpRule = (a) => {
  noActivation(a);
  const dy = a.dOut[0];
  if (dy === undefined) return none(a);
  const [x, gamma] = a.node.inputs;
  return backward(a, 'layernorm_grad', [x, gamma, dy], pick(a, ['eps']), [0, 1, 2]);
};

const weightStandardize: VjpRule = (a) => {
  const dy = a.dOut[0];
  if (dy === undefined) return none(a);
  return backward(a, 'weight_standardize_grad', [a.node.inputs[0], dy], pick(a, ['eps']), [0]);
};

/** attention(qkv) -> [d qkv], attention(q, k, v) -> [dq, dk, dv]. */
const attention: VjpRule = (a) => {
  noActivation(a);
  const dy = a.dOut[0];
  if (dy === undefined) return none(a);
  const ins = a.node.inputs;
  return backward(
    a,
    'attention_grad',
    [...ins, dy],
    pick(a, ['heads', 'scale']),
    ins.map((_, i) => i),
  );
};

export const normRules: VjpTable = [
  ['batchnorm', batchnormFrozen],
  ['batchnorm_train', batchnormTrain],
  ['group_norm', groupNorm],
  ['layernorm', layernorm],
  ['weight_standardize', weightStandardize],
  ['attention', attention],
];
