// The VJP rule registry: every forward op autodiff can differentiate, by name. Each file here
// exports one table; a new differentiable op adds its rule to its family's table.

import { basicRules } from './basic.js';
import { convRules } from './conv.js';
import { normRules } from './norm.js';
import type { VjpRule } from './types.js';

const tables = [basicRules, convRules, normRules];

const rules = new Map<string, VjpRule>();
for (const [op, rule] of tables.flat()) {
  if (rules.has(op)) throw new Error(`VJP rule for "${op}" is defined twice`);
  rules.set(op, rule);
}

export const VJP_RULES: ReadonlyMap<string, VjpRule> = rules;
