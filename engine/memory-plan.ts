// Static memory plan: intermediate tensors whose lifetimes do not overlap share a buffer.
//
// Greedy by size (as TFLite's arena planner): take tensors largest first, and put each into
// the smallest existing slot whose tensors are all dead before it is born or born after it
// dies; otherwise open a new slot. A slot's size is that of its first (largest) tensor.

export interface Lifetime {
  id: string;
  bytes: number;
  /** Index of the step that writes it first and the step that reads it last (inclusive). */
  first: number;
  last: number;
}

export interface MemoryPlan {
  slotBytes: number[];
  slotOf: Map<string, number>;
  /** Bytes of all slots: what the intermediates cost at peak. */
  totalBytes: number;
  /** Bytes if every intermediate had its own buffer, for comparison. */
  naiveBytes: number;
}

export function planMemory(lifetimes: Lifetime[]): MemoryPlan {
  const order = [...lifetimes].sort((a, b) => b.bytes - a.bytes || a.first - b.first);
  const slots: { bytes: number; members: Lifetime[] }[] = [];
  const slotOf = new Map<string, number>();
  for (const t of order) {
    let best = -1;
    for (let s = 0; s < slots.length; s++) {
      const fits = slots[s].members.every((m) => m.last < t.first || m.first > t.last);
      if (fits && (best < 0 || slots[s].bytes < slots[best].bytes)) best = s;
    }
    if (best < 0) {
      best = slots.length;
      slots.push({ bytes: t.bytes, members: [] });
    }
    slots[best].members.push(t);
    slotOf.set(t.id, best);
  }
  const slotBytes = slots.map((s) => s.bytes);
  return {
    slotBytes,
    slotOf,
    totalBytes: slotBytes.reduce((a, b) => a + b, 0),
    naiveBytes: lifetimes.reduce((a, b) => a + b.bytes, 0),
  };
}
