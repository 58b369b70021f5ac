// Backward kernels: normalisation and attention backward, batchnorm in training mode.

import type { OpDef } from '../kernel.js';

export const normGradOps: OpDef[] = [];
