declare module 'wgsl-preprocessor' {
  /** Template tag: `#if ${cond}` / `#elif ${cond}` / `#else` / `#endif`, then plain interpolation. */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
