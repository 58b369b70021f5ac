// The VJP rule registry: every forward op autodiff can differentiate, by name. Each file here
// exports one table; a new differentiable op adds its rule to its family's table.

import { basicRules } from './basic.js';
import { convRules } from './conv.js';
import { normRules } from './norm.js';
import type { VjpRule } from './types.js';

const tables = [basicRules, convRules, normRules];

export const VJP_RULES: ReadonlyMap<string, VjpRule> = new Map(tables.flat());
