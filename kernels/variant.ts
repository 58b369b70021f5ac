// Kernel variants: one typed choice per kernel family, one string syntax for all of them.
//
// A family that has variants (conv2d's path and register tile, matmul's kind and workgroup
// shape, …) declares a typed object (Conv2dVariant, MatmulVariant, …) and a small schema of its
// fields here with defineVariant(). The schema parses the one canonical string form into that
// object, checks an object given directly, and formats an object back into the string, so the
// CLI, tuning files, tuneSpace candidates, logs and tests all spell a variant the same way:
//
//   tokens joined by ',' in schema order, unset fields left out (the heuristic picks them):
//     a bare value    the family's main choice (path, kind, mode …):  gemm   fused   workgroup
//     a bare name     a flag that is on:                               sg     pk
//     name=N          a number:                                        wg=64  splitk=4
//     name=AxB        a pair of numbers, e.g. the register tile tm×tn: tile=4x16
//     name=value      any other choice among names:                    head=loop
//
//   e.g. conv2d 'gemm,tile=4x16,sg', matmul 'reg,tile=8x8,wg=4x4,tk=8', layernorm 'workgroup,wg=64'.
//
// An unknown field, a repeated one, a value out of range or a malformed token is an error naming
// the family, the token and the valid fields; nothing is silently ignored. '' is the empty
// choice (every field to the heuristic). format(parse(s)) === s for every canonical s, and
// parse(format(v)) equals v (flags that are off are left out).
//
// ctx.prefer (LowerContext, CompileOptions) maps a family name to its choice, as the typed object
// or as its string; a family reads it with `schema.of(ctx.prefer)`. kernels/variant-families.ts
// lists every family's schema for code that handles choices of any family (tuning files).

/** A field value of a variant object. */
export type VariantValue = string | number | boolean;
/** A variant object of some family (the typed ones, e.g. Conv2dVariant, are assignable to it). */
export type VariantObject = { readonly [field: string]: VariantValue | undefined };
/** Variant choices by family name: the typed object or its string form. */
export type Prefer = { readonly [family: string]: string | VariantObject | undefined };

export class VariantError extends Error {
  override name = 'VariantError';
}

type Key<V> = keyof V & string;

/** One field of a family's variant. */
export type VariantField<V> =
  /** A choice among names; `bare`: written as the value alone (at most one such field, written first). */
  | { kind: 'enum'; key: Key<V>; values: readonly string[]; bare?: boolean; name?: string }
  /** A flag: written as its name when true. */
  | { kind: 'flag'; key: Key<V>; name?: string }
  /** An integer ≥ min (≤ max when given). */
  | { kind: 'int'; key: Key<V>; name?: string; min: number; max?: number }
  /** Two integers written AxB into two keys, each ≥ min[i] and a multiple of multipleOf[i]. */
  | {
      kind: 'pair';
      keys: readonly [Key<V>, Key<V>];
      name: string;
      min: readonly [number, number];
      multipleOf?: readonly [number, number];
    };

export interface VariantSchema<V extends object> {
  readonly family: string;
  readonly fields: readonly VariantField<V>[];
  /** The typed object of a string in the syntax above ('' → {}); throws VariantError. */
  parse(s: string): V;
  /** The canonical string of a (checked) object. */
  format(v: V): string;
  /** `v` checked field by field (unknown keys and bad values throw VariantError). */
  check(v: unknown): V;
  /** This family's choice in `prefer` (a string is parsed, an object checked), undefined if none or ''. */
  of(prefer: Prefer | undefined): V | undefined;
  /** The syntax of every field, for messages: 'direct|gemm, tile=<tm>x<tn>, sg'. */
  readonly syntax: string;
}

const fieldName = <V>(f: VariantField<V>): string => (f.kind === 'pair' ? f.name : (f.name ?? f.key));

function fieldSyntax<V>(f: VariantField<V>): string {
  switch (f.kind) {
    case 'enum':
      return f.bare ? f.values.join('|') : `${fieldName(f)}=${f.values.join('|')}`;
    case 'flag':
      return fieldName(f);
    case 'int':
      return `${fieldName(f)}=<${f.max !== undefined ? `${f.min}..${f.max}` : `≥${f.min}`}>`;
    case 'pair':
      return `${f.name}=<${f.keys[0]}>x<${f.keys[1]}>`;
  }
}

export function defineVariant<V extends object>(family: string, fields: readonly VariantField<V>[]): VariantSchema<V> {
  const bare = fields.filter((f) => f.kind === 'enum' && f.bare);
  if (bare.length > 1) throw new Error(`variant schema ${family}: more than one bare field`);
  const names = new Set<string>();
  for (const f of fields) {
    const words = [fieldName(f), ...(f.kind === 'enum' && f.bare ? f.values : [])];
    for (const w of words) {
      if (names.has(w)) throw new Error(`variant schema ${family}: "${w}" is used twice`);
      names.add(w);
    }
  }
  const syntax = fields.map(fieldSyntax).join(', ');
  const fail = (what: string, detail: string): never => {
    throw new VariantError(`${family} variant ${what}: ${detail}; valid fields: ${syntax}`);
  };
  const int = (s: string): number => (/^\d+$/.test(s) ? Number(s) : NaN);
  const keysOf = (f: VariantField<V>): readonly string[] => (f.kind === 'pair' ? f.keys : [f.key]);

  /** Throws unless value(s) of `f` are valid; `what` names the input and `raw` the token in the message. */
  function checkField(f: VariantField<V>, o: Record<string, unknown>, what: string, raw?: string): void {
    const tok = (): string => raw ?? formatField(f, o) ?? fieldName(f);
    switch (f.kind) {
      case 'enum':
        if (typeof o[f.key] !== 'string' || !f.values.includes(o[f.key] as string)) {
          fail(what, `${fieldName(f)} must be one of ${f.values.join(', ')}, got ${JSON.stringify(o[f.key])}`);
        }
        return;
      case 'flag':
        if (typeof o[f.key] !== 'boolean') {
          fail(what, `${fieldName(f)} is a flag (true or false), got ${JSON.stringify(o[f.key])}`);
        }
        return;
      case 'int': {
        const v = o[f.key];
        if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min || (f.max !== undefined && v > f.max)) {
          const range = f.max !== undefined ? `in ${f.min}..${f.max}` : `≥ ${f.min}`;
          fail(what, `"${tok()}": ${fieldName(f)} must be an integer ${range}`);
        }
        return;
      }
      case 'pair':
        f.keys.forEach((k, i) => {
          const v = o[k];
          const m = f.multipleOf?.[i] ?? 1;
          if (typeof v !== 'number' || !Number.isInteger(v) || v < f.min[i] || v % m !== 0) {
            fail(what, `"${tok()}": ${k} must be an integer ≥ ${f.min[i]}${m > 1 ? ` and a multiple of ${m}` : ''}`);
          }
        });
    }
  }

  function formatField(f: VariantField<V>, o: Record<string, unknown>): string | undefined {
    switch (f.kind) {
      case 'enum':
        return o[f.key] === undefined ? undefined : f.bare ? String(o[f.key]) : `${fieldName(f)}=${o[f.key]}`;
      case 'flag':
        return o[f.key] ? fieldName(f) : undefined;
      case 'int':
        return o[f.key] === undefined ? undefined : `${fieldName(f)}=${o[f.key]}`;
      case 'pair':
        if (o[f.keys[0]] === undefined && o[f.keys[1]] === undefined) return undefined;
        return `${f.name}=${o[f.keys[0]]}x${o[f.keys[1]]}`;
    }
  }

  const check = (v: unknown): V => {
    const what = `${JSON.stringify(v)}`;
    if (!v || typeof v !== 'object' || Array.isArray(v)) fail(what, 'expected an object or a string');
    const o = v as Record<string, unknown>;
    const known = new Set(fields.flatMap(keysOf));
    for (const k of Object.keys(o)) if (!known.has(k)) fail(what, `unknown field "${k}"`);
    for (const f of fields) {
      const set = keysOf(f).filter((k) => o[k] !== undefined);
      if (set.length === 0) continue;
      if (set.length < keysOf(f).length) fail(what, `${keysOf(f).join(' and ')} go together`);
      checkField(f, o, what);
    }
    return o as V;
  };

  const parse = (s: string): V => {
    const what = `"${s}"`;
    if (typeof s !== 'string') fail(JSON.stringify(s), 'expected a string');
    const o: Record<string, unknown> = {};
    const seen = new Set<VariantField<V>>();
    for (const tok of s === '' ? [] : s.split(',')) {
      const eq = tok.indexOf('=');
      const name = eq < 0 ? tok : tok.slice(0, eq);
      const val = eq < 0 ? undefined : tok.slice(eq + 1);
      const f =
        eq < 0
          ? fields.find(
              (x) =>
                (x.kind === 'enum' && x.bare && x.values.includes(tok)) || (x.kind === 'flag' && fieldName(x) === tok),
            )
          : fields.find((x) => !(x.kind === 'enum' && x.bare) && x.kind !== 'flag' && fieldName(x) === name);
      if (!f) {
        const asName = fields.find((x) => fieldName(x) === name);
        const why = asName ? `"${tok}" is malformed (${fieldSyntax(asName)})` : `unknown token "${tok}"`;
        fail(what, tok === '' ? 'empty token' : why);
      }
      if (seen.has(f!)) fail(what, `"${fieldName(f!)}" given twice`);
      seen.add(f!);
      switch (f!.kind) {
        case 'enum':
          o[f!.key] = f!.bare ? tok : val;
          break;
        case 'flag':
          o[f!.key] = true;
          break;
        case 'int':
          o[f!.key] = int(val!);
          break;
        case 'pair': {
          const m = /^(\d+)x(\d+)$/.exec(val!);
          if (!m) fail(what, `"${tok}" is malformed (${fieldSyntax(f!)})`);
          [o[f!.keys[0]], o[f!.keys[1]]] = [Number(m![1]), Number(m![2])];
        }
      }
      checkField(f!, o, what, tok);
    }
    return o as V;
  };

  const format = (v: V): string => {
    const o = check(v) as Record<string, unknown>;
    return fields
      .map((f) => formatField(f, o))
      .filter((t): t is string => t !== undefined)
      .join(',');
  };

  return {
    family,
    fields,
    parse,
    format,
    check,
    syntax,
    of(prefer) {
      const p = prefer?.[family];
      if (p === undefined || p === '') return undefined;
      return typeof p === 'string' ? parse(p) : check(p);
    },
  };
}
