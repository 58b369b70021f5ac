// Backward kernels: optimiser updates (SGD with momentum, AdamW), gradient clipping.

import type { OpDef } from '../kernel.js';

export const optimOps: OpDef[] = [];
