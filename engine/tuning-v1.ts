// Reading version 1 tuning files: before kernels/variant.ts each family parsed its own variant
// grammar ('gemm:4x16:sg', 'sg-8x16-wg1x8-pk', 'unrolled:2x4', 'fused-k4-r2-loop', 'workgroup:64',
// …). These legacy parsers turn such a string into the family's typed variant, which the family's
// schema then formats in the one syntax. They live here only, for that conversion; nothing else
// reads the old grammars.

import type { VariantObject } from '../kernels/variant.js';

const num = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));

function conv2d(s: string): VariantObject | undefined {
  const m = /^(direct|gemm)(?::(\d+)x(\d+))?(:sg)?$/.exec(s);
  return m ? { path: m[1], tm: num(m[2]), tn: num(m[3]), sg: m[4] ? true : undefined } : undefined;
}

function matmul(s: string): VariantObject | undefined {
  const o: Record<string, string | number | boolean> = {};
  for (const tok of s.split('-').filter(Boolean)) {
    let m: RegExpMatchArray | null;
    if ((m = tok.match(/^(reg|wgmem)?(?:(\d+)x(\d+))?$/)) && (m[1] || m[2])) {
      if (m[1]) o.kind = m[1];
      if (m[2]) [o.tm, o.tn] = [+m[2], +m[3]];
    } else if ((m = tok.match(/^splitk(\d+)$/))) o.splitk = Math.max(1, +m[1]);
    else if ((m = tok.match(/^wg(\d+)x(\d+)$/))) [o.wgx, o.wgy] = [+m[1], +m[2]];
    else if ((m = tok.match(/^tk(\d+)$/))) o.tk = Math.max(1, +m[1]);
    else if (tok === 'sg' || tok === 'pk') o[tok] = true;
    else return undefined;
  }
  return o;
}

function depthwise(s: string): VariantObject | undefined {
  const m = /^(unrolled|loop)(?::(\d+)x(\d+))?$/.exec(s);
  return m ? { variant: m[1], ph: num(m[2]), pw: num(m[3]) } : undefined;
}

function attention(s: string): VariantObject | undefined {
  const o: Record<string, string | number> = {};
  for (const tok of s.split('-').filter(Boolean)) {
    let m: RegExpMatchArray | null;
    if (tok === 'naive' || tok === 'fused') o.path = tok;
    else if ((m = tok.match(/^k(\d+)$/))) o.ktile = Math.max(1, +m[1]);
    else if ((m = tok.match(/^r(\d+)$/))) o.rows = Math.max(1, +m[1]);
    else if ((m = tok.match(/^wg(\d+)$/))) o.wg = Math.max(1, +m[1]);
    else if (tok === 'unroll' || tok === 'loop') o.head = tok === 'unroll' ? 'unrolled' : 'loop';
    else return undefined;
  }
  return o;
}

/** 'mode' or 'mode:wg' (layernorm, softmax, group_norm). */
function modeWg(modes: readonly string[]) {
  return (s: string): VariantObject | undefined => {
    const m = /^([a-z]+)(?::(\d+))?$/.exec(s);
    return m && modes.includes(m[1]) ? { mode: m[1], wg: num(m[2]) } : undefined;
  };
}

const one =
  (key: string, values: readonly string[]) =>
  (s: string): VariantObject | undefined =>
    values.includes(s) ? { [key]: s } : undefined;

const LEGACY: Record<string, (s: string) => VariantObject | undefined> = {
  conv2d,
  matmul,
  depthwise,
  attention,
  layernorm: modeWg(['thread', 'workgroup']),
  softmax: modeWg(['thread', 'workgroup']),
  group_norm: modeWg(['fused', 'split']),
  global_avgpool: one('partition', ['serial', 'workgroup']),
  transpose: one('variant', ['generic', 'tile2d']),
};

/** The typed variant of a version 1 choice of `family`; throws naming the string when it is not one. */
export function convertV1(family: string, old: string): VariantObject {
  const parse = LEGACY[family];
  if (!parse) throw new Error(`unknown kernel family "${family}"`);
  const v = parse(old);
  if (!v) throw new Error(`"${old}" is not a ${family} variant of the version 1 grammar`);
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined));
}
