// VJP rules for elementwise, matmul, layout ops, softmax and the loss.

import type { VjpTable } from './types.js';

export const basicRules: VjpTable = [];
