import type { BuildOptions } from 'esbuild';

export declare const reportChartsBuild: BuildOptions & { outdir: string };
