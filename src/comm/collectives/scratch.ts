/**
 * Reusable float32 scratch buffers, so a training step's all-reduce allocates nothing. Concurrent
 * operations each take their own buffer; a failed operation does not return its buffer (late messages
 * may still land in it).
 */
export class ScratchPool {
  private free: Float32Array[] = [];

  constructor(private readonly keep = 4) {}

  /** A buffer of at least `floats` elements (use subarray for the exact size). */
  acquire(floats: number): Float32Array {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.length >= floats && (best < 0 || b.length < this.free[best].length)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    return new Float32Array(Math.max(floats, 1));
  }

  release(buf: Float32Array): void {
    this.free.push(buf);
    if (this.free.length > this.keep) {
      this.free.sort((a, b) => b.length - a.length);
      this.free.length = this.keep;
    }
  }
}
