import type { BackwardHooks } from '../../tensor/autograd.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Bucket } from '../exchange/buckets.js';

/**
 * A step's gradient buckets, each reduce-scattered once: from backward's hooks as soon as its last
 * gradient is final (--overlap), or by finish() in plan order (the rest, or all of them).
 */
export class BucketSends {
  private readonly bucketOf = new Map<Tensor, number>();
  private readonly remaining: number[];
  private readonly pending: Array<Promise<void> | null>;
  private inFlight = 0;

  constructor(private readonly plan: readonly Bucket[], tensors: readonly Tensor[], private readonly launch: (b: Bucket) => Promise<void>) {
    plan.forEach((b, k) => b.entries.forEach((e) => this.bucketOf.set(tensors[e], k)));
    this.remaining = plan.map((b) => b.entries.length);
    this.pending = plan.map(() => null);
  }

  hooks(): BackwardHooks {
    return {
      onLeafReady: (leaf) => {
        const k = this.bucketOf.get(leaf);
        if (k === undefined || --this.remaining[k] > 0) return false;
        this.send(k);
        return true;
      },
      keepYielding: () => this.inFlight > 0,
    };
  }

  private send(k: number): void {
    this.inFlight++;
    const p = this.launch(this.plan[k]).finally(() => this.inFlight--);
    p.catch(() => {}); // awaited in finish()
    this.pending[k] = p;
  }

  async finish(): Promise<void> {
    for (let k = 0; k < this.plan.length; k++) if (!this.pending[k]) this.send(k);
    await Promise.all(this.pending);
  }
}
