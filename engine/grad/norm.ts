// VJP rules for batchnorm, group norm, weight standardisation, layernorm and attention.

import type { VjpTable } from './types.js';

export const normRules: VjpTable = [];
