/**
 * ZeRO-3's gathered windows kept for reuse, by size: an evaluation gathers every group once a pass,
 * and fresh windows each time were garbage the collector freed late. Only windows nothing reads go
 * back (an evaluation's, which builds no graph: staged_step.ts); a training step's are left to the
 * collector, as its graph reads them until backward and pooling a whole step's windows held about
 * 3× the model idle between steps.
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
