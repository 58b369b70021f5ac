// Static memory plan: intermediate tensors whose lifetimes do not overlap share a buffer.
//
// Greedy strategies, keeping whichever needs fewer bytes (none is optimal on every graph):
// - by size (as TFLite's arena planner): largest tensors first, each into the smallest slot
//   whose tensors are all dead before it is born or born after it dies, else a new slot. Equal
//   sizes are common (every block of a stage), and the order among them matters, so it runs
//   with three tie-breaks: earliest birth, longest life, latest birth first;
// - by birth (a linear scan): in order of first use, each into the best-fitting slot free by
//   then, growing a slot when none is big enough.

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

const TIE_BREAKS: ((a: Lifetime, b: Lifetime) => number)[] = [
  (a, b) => a.first - b.first,
  (a, b) => b.last - b.first - (a.last - a.first) || a.first - b.first,
  (a, b) => b.first - a.first,
];

export function planMemory(lifetimes: Lifetime[]): MemoryPlan {
  let best = byBirth(lifetimes);
  for (const tie of TIE_BREAKS) {
    const p = bySize(lifetimes, tie);
    if (p.totalBytes < best.totalBytes) best = p;
  }
  return best;
}

function finish(lifetimes: Lifetime[], slotBytes: number[], slotOf: Map<string, number>): MemoryPlan {
  return {
    slotBytes,
    slotOf,
    totalBytes: slotBytes.reduce((x, y) => x + y, 0),
    naiveBytes: lifetimes.reduce((x, y) => x + y.bytes, 0),
  };
}

function byBirth(lifetimes: Lifetime[]): MemoryPlan {
  const order = [...lifetimes].sort((a, b) => a.first - b.first || b.bytes - a.bytes);
  const slots: { bytes: number; freeAfter: number }[] = [];
  const slotOf = new Map<string, number>();
  for (const t of order) {
    let best = -1;
    for (let s = 0; s < slots.length; s++) {
      if (slots[s].freeAfter >= t.first) continue;
      const fit = slots[s].bytes >= t.bytes,
        bestFit = best >= 0 && slots[best].bytes >= t.bytes;
      // Prefer the smallest slot that fits; failing that, the largest one (least growth).
      if (
        best < 0 ||
        (fit && (!bestFit || slots[s].bytes < slots[best].bytes)) ||
        (!fit && !bestFit && slots[s].bytes > slots[best].bytes)
      )
        best = s;
    }
    if (best < 0) {
      slots.push({ bytes: 0, freeAfter: -1 });
      best = slots.length - 1;
    }
    slots[best].bytes = Math.max(slots[best].bytes, t.bytes);
    slots[best].freeAfter = t.last;
    slotOf.set(t.id, best);
  }
  return finish(
    lifetimes,
    slots.map((s) => s.bytes),
    slotOf,
  );
}

function bySize(lifetimes: Lifetime[], tie: (a: Lifetime, b: Lifetime) => number): MemoryPlan {
  const order = [...lifetimes].sort((a, b) => b.bytes - a.bytes || tie(a, b));
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
  return finish(
    lifetimes,
    slots.map((s) => s.bytes),
    slotOf,
  );
}
