// Every GPUBuffer the engine makes comes from one pool per device, so the engine can count
// what is alive (tests assert a plan run 1000 times does not grow it) and reuse buffers
// that released plans leave behind.

const ALIGN = 16;

export interface PoolStats {
  /** Buffers created and not yet destroyed. */
  live: number;
  /** Of those, handed out and not released. */
  inUse: number;
  liveBytes: number;
  freeBytes: number;
}

export class BufferPool {
  private free = new Map<string, GPUBuffer[]>();
  private sizes = new WeakMap<GPUBuffer, { key: string; size: number }>();
  private stats_: PoolStats = { live: 0, inUse: 0, liveBytes: 0, freeBytes: 0 };

  constructor(
    private readonly device: GPUDevice,
    readonly maxFreeBytes = 512 * 2 ** 20,
  ) {}

  static round(bytes: number): number {
    return Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
  }

  acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    const size = BufferPool.round(bytes);
    const key = `${usage}:${size}`;
    const list = this.free.get(key);
    const reused = list?.pop();
    this.stats_.inUse++;
    if (reused) {
      this.stats_.freeBytes -= size;
      reused.label = label;
      return reused;
    }
    const buf = this.device.createBuffer({ size, usage, label });
    this.sizes.set(buf, { key, size });
    this.stats_.live++;
    this.stats_.liveBytes += size;
    return buf;
  }

  release(buf: GPUBuffer): void {
    const meta = this.sizes.get(buf);
    if (!meta) throw new Error(`buffer "${buf.label}" does not belong to this pool`);
    this.stats_.inUse--;
    if (buf.mapState !== 'unmapped') buf.unmap();
    if (this.stats_.freeBytes + meta.size > this.maxFreeBytes) {
      this.destroy(buf, meta.size);
      return;
    }
    let list = this.free.get(meta.key);
    if (!list) this.free.set(meta.key, (list = []));
    list.push(buf);
    this.stats_.freeBytes += meta.size;
  }

  /** Destroy every buffer not in use. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) this.destroy(b, this.sizes.get(b)!.size);
    this.free.clear();
    this.stats_.freeBytes = 0;
  }

  stats(): PoolStats {
    return { ...this.stats_ };
  }

  private destroy(buf: GPUBuffer, size: number): void {
    buf.destroy();
    this.stats_.live--;
    this.stats_.liveBytes -= size;
  }
}

const pools = new WeakMap<GPUDevice, BufferPool>();

export function poolFor(device: GPUDevice): BufferPool {
  let p = pools.get(device);
  if (!p) pools.set(device, (p = new BufferPool(device)));
  return p;
}
