// Backward ops (gradients, losses, optimisers): listed here, registered with the forward ops
// in kernels/index.ts. Each file exports its family's OpDefs.

import type { OpDef } from '../kernel.js';
import { attentionGradOps } from './attention.js';
import { convGradOps } from './conv2d.js';
import { elementwiseGradOps } from './elementwise.js';
import { layoutGradOps } from './layout.js';
import { normGradOps } from './norm.js';
import { optimOps } from './optim.js';
import { poolGradOps } from './pool.js';

export const BACKWARD_OPS: readonly OpDef[] = [
  ...elementwiseGradOps,
  ...layoutGradOps,
  ...convGradOps,
  ...poolGradOps,
  ...normGradOps,
  ...attentionGradOps,
  ...optimOps,
];
