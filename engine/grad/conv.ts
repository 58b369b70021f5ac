// VJP rules for conv2d (dense, grouped, depthwise) and pooling.

import type { VjpTable } from './types.js';

export const convRules: VjpTable = [];
