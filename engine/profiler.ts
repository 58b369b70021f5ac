// Per-dispatch GPU times, from timestamp queries when the adapter has them (a compute pass per
// dispatch, each writing begin/end timestamps), otherwise from CPU wall time around one
// dispatch per submit (labelled 'cpu-wall': it includes submit and sync overhead).

export interface ProfileEntry {
  node: string;
  family: string;
  key: string;
  ms: number;
  flops?: number;
  bytes?: number;
}

export interface Profile {
  mode: 'timestamp' | 'cpu-wall';
  entries: ProfileEntry[];
  totalMs: number;
}

export interface FamilyRow {
  family: string;
  calls: number;
  ms: number;
  share: number;
  gflops?: number;
  gbps?: number;
}

/** Aggregate a profile by kernel family, slowest first. */
export function byFamily(p: Profile): FamilyRow[] {
  const rows = new Map<
    string,
    { calls: number; ms: number; flops: number; bytes: number; hasF: boolean; hasB: boolean }
  >();
  for (const e of p.entries) {
    const r = rows.get(e.family) ?? { calls: 0, ms: 0, flops: 0, bytes: 0, hasF: false, hasB: false };
    r.calls++;
    r.ms += e.ms;
    if (e.flops) {
      r.flops += e.flops;
      r.hasF = true;
    }
    if (e.bytes) {
      r.bytes += e.bytes;
      r.hasB = true;
    }
    rows.set(e.family, r);
  }
  return [...rows.entries()]
    .map(([family, r]) => ({
      family,
      calls: r.calls,
      ms: r.ms,
      share: p.totalMs > 0 ? r.ms / p.totalMs : 0,
      gflops: r.hasF && r.ms > 0 ? r.flops / r.ms / 1e6 : undefined,
      gbps: r.hasB && r.ms > 0 ? r.bytes / r.ms / 1e6 : undefined,
    }))
    .sort((a, b) => b.ms - a.ms);
}

/** A plain-text table of kernels by time. */
export function formatProfile(p: Profile, top = 0): string {
  const rows = byFamily(p);
  const lines = [
    `GPU time by kernel (${p.mode === 'timestamp' ? 'timestamp queries' : 'CPU wall time per dispatch: timestamp-query unavailable'}), total ${p.totalMs.toFixed(2)} ms`,
    `${'kernel'.padEnd(22)}${'calls'.padStart(6)}${'ms'.padStart(11)}${'share'.padStart(8)}${'GFLOP/s'.padStart(10)}${'GB/s'.padStart(9)}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.family.padEnd(22)}${String(r.calls).padStart(6)}${r.ms.toFixed(3).padStart(11)}${`${(100 * r.share).toFixed(1)}%`.padStart(8)}` +
        `${(r.gflops?.toFixed(2) ?? '-').padStart(10)}${(r.gbps?.toFixed(2) ?? '-').padStart(9)}`,
    );
  }
  if (top > 0) {
    lines.push('', `slowest dispatches:`);
    for (const e of [...p.entries].sort((a, b) => b.ms - a.ms).slice(0, top)) {
      lines.push(`  ${e.ms.toFixed(3).padStart(9)} ms  ${e.node} (${e.family})`);
    }
  }
  return lines.join('\n');
}
