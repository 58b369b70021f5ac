// Importing this registers the `corrupt` op and every corruption.
import { OPS, registerOp } from '../../kernels/index.js';
import { corruptOp } from './common.js';
import './noise.js';
import './blur.js';
import './weather.js';
import './digital.js';

if (!OPS.has(corruptOp.op)) registerOp(corruptOp);

export * from './common.js';
