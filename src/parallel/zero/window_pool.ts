/**
 * ZeRO-3's gathered windows (a layer group's full parameters, or its gradient) kept for reuse, by
 * size: a step gathers every group and makes a gradient window for each, and fresh windows each
 * time are garbage the collector frees late (V8 lets tens of MB of dead array buffers pile up), so
 * a rank's peak memory grew with every step. A window comes back only once nothing reads it (the
 * staged step knows when: staged_step.ts); the pool then holds at most what was alive at once.
 */
import { type Device, type Storage, deviceMemory } from '../../tensor/storage.js';

export class WindowPool {
  private spare = new Map<number, Storage<Float32Array>[]>();

  constructor(private readonly device: Device) {}

  /** A window of n floats: a spare one (zeroed when asked: a gradient window), else a fresh, zeroed one. */
  take(n: number, zeroed: boolean): Storage<Float32Array> {
    const spare = this.spare.get(n)?.pop();
    if (!spare) return deviceMemory(this.device).alloc('float32', n) as Storage<Float32Array>;
    if (zeroed) spare.zero();
    return spare;
  }

  /** A window nothing reads or writes any more. */
  give(window: Storage<Float32Array>): void {
    const list = this.spare.get(window.size);
    if (list) list.push(window);
    else this.spare.set(window.size, [window]);
  }

  /** Bytes of the spare windows. */
  get bytes(): number {
    let n = 0;
    for (const list of this.spare.values()) for (const w of list) n += w.byteLength;
    return n;
  }
}
