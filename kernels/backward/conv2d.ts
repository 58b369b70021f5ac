// Backward kernels: conv2d input/weight/bias gradients and pooling backward.

import type { OpDef } from '../kernel.js';

export const convGradOps: OpDef[] = [];
