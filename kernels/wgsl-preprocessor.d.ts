// Types for wgsl-preprocessor (the package ships none). Its package.json names no `main`, so the
// module is imported by its file path; kernels/wgsl.ts is the one place that imports it.
declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  /**
   * Template tag: `#if ${cond}` / `#elif ${cond}` / `#else` / `#endif` keep or drop the text between
   * them by the truthiness of cond (blocks nest); every other `${value}` is interpolated as usual.
   */
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
