// Numbers as the reports print them, in the HTML pages and in the terminal tables alike; a
// missing number (undefined, null from a NaN written to JSON, or not finite) reads '—'.

export const DASH = '—';

export type Num = number | null | undefined;

export const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** A fraction as a percentage ('76.1%'). */
export function pct(x: Num, digits = 1): string {
  return isNum(x) ? `${(100 * x).toFixed(digits)}%` : DASH;
}

export function fix(x: Num, digits: number): string {
  return isNum(x) ? x.toFixed(digits) : DASH;
}

/** Milliseconds with about three significant digits. */
export function fmtMs(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return DASH;
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toPrecision(3);
}

export function fmtNum(x: number | undefined, digits = 1): string {
  if (x === undefined || !Number.isFinite(x)) return DASH;
  return x >= 1000 ? x.toFixed(0) : x.toFixed(digits);
}

export function fmtBytes(x: number | undefined): string {
  if (x === undefined) return DASH;
  return x >= 1 << 30 ? `${(x / (1 << 30)).toFixed(2)} GiB` : `${(x / (1 << 20)).toFixed(1)} MiB`;
}

/** A max|Δ| against a reference: '0', or one significant digit in exponent form. */
export function fmtDiff(x: number | undefined): string {
  return x === undefined ? DASH : x === 0 ? '0' : x.toExponential(1);
}

/** A logits check: ✓ matched, ✗ did not, — not checked. */
export const tick = (m: boolean | null | undefined) => (m === true ? '✓' : m === false ? '✗' : DASH);

/** Keys that are numbers ('224', '0.37', '10') in numeric order, then any others as strings. */
export function numericKeys(keys: Iterable<string>): string[] {
  const all = [...keys];
  const num = all.filter((k) => Number.isFinite(Number(k))).sort((a, b) => Number(a) - Number(b));
  return [...num, ...all.filter((k) => !Number.isFinite(Number(k))).sort()];
}
