// Importing this registers every model family.
export * from './registry.js';
import './resnetv2.js';
import './vit.js';
import './resnet.js';
import './mobilenetv2.js';
import './synth-model.js';
