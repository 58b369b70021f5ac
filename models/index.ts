// The models folder's public face: the registry (which lists every family itself) and its types.
export * from './registry.js';
