// Backward kernels: activation gradients, reductions, the softmax cross-entropy loss.

import type { OpDef } from '../kernel.js';

export const elementwiseGradOps: OpDef[] = [];
