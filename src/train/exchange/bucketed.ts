/**
 * Sends gradient buckets as soon as backward has produced them (DDP's overlap): every parameter's
 * gradient-ready hook counts down its bucket; the bucket whose last gradient is final is handed to
 * `launch` (an all-reduce, possibly compressed) at once, and backward yields to the event loop so
 * the messages move while the remaining layers are differentiated. Without overlap the same
 * buckets are launched after backward, in plan order: the same collectives on the same ranges, so
 * the same bits either way.
 *
 * Node runs JavaScript on one thread: the overlap is what the OS moves while backward computes plus
 * the reductions run between backward's ops. It is measured per bucket (launch → done), not assumed.
 *
 * On a GPU a bucket's values must reach the host before they go out: when its last gradient is
 * final the bucket's range is read asynchronously (host_arena.ts `gradRange`: a copy to a staging
 * buffer and its mapping, queued behind backward's kernels so far) and sent when it arrives, while
 * the GPU goes on with the rest of backward — what DDP does on CUDA with its copy stream. The
 * reduced buckets go back to the device at the loop's flush, before the optimizer. A bucket's span
 * includes its read.
 */
import type { Storage } from '../../tensor/storage.js';
import { performance } from 'node:perf_hooks';
import type { Module } from '../../nn/module.js';
import type { BackwardHooks } from '../../tensor/autograd.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { Bucket } from './buckets.js';
import type { BucketSpan } from '../../metrics/records.js';
import { hostArena } from '../boundary/host_arena.js';

/** One bucket's exchange (a step record's field, so its type lives with the records). */
export type { BucketSpan };

export type LaunchBucket = (view: Float32Array, bucket: Bucket) => Promise<void>;

export class BucketedExchange {
  private readonly entryOf: Map<Tensor, number>;
  private readonly bucketOf: number[];
  private remaining: number[] = [];
  private pending: Array<Promise<void> | null> = [];
  private spans: BucketSpan[] = [];
  private inFlight = 0;
  private launch: LaunchBucket = async () => {};

  constructor(private readonly model: Module, readonly plan: readonly Bucket[]) {
    // Indexed as the arena's entries: the trainable parameters only (frozen ones send nothing).
    this.entryOf = new Map(model.namedTrainable().map(([, p], i) => [p, i]));
    this.bucketOf = [];
    plan.forEach((b, k) => b.entries.forEach((e) => (this.bucketOf[e] = k)));
  }

  /**
   * The whole gradient arena on the host (bucket ranges index into it): the arena itself on the
   * cpu; a GPU arena's copy, which the strategy read before the step's exchange (host_arena.ts).
   */
  get gradients(): Float32Array {
    return hostArena(this.model.arena()).gradsNow();
  }

  /** A storage handle over those host gradients (for kernels over bucket ranges). */
  get gradStorage(): Storage<Float32Array> {
    return hostArena(this.model.arena()).gradStorageNow();
  }

  /** Starts a step: no bucket sent yet; `launch` sends one. */
  begin(launch: LaunchBucket): void {
    this.launch = launch;
    this.remaining = this.plan.map((b) => b.entries.length);
    this.pending = this.plan.map(() => null);
    this.spans = [];
  }

  /** Hooks for backward: a bucket goes out when its last gradient is final. */
  hooks(): BackwardHooks {
    return {
      onLeafReady: (leaf) => {
        const e = this.entryOf.get(leaf);
        if (e === undefined) return false;
        const k = this.bucketOf[e];
        if (--this.remaining[k] > 0) return false;
        this.send(k);
        return true;
      },
      keepYielding: () => this.inFlight > 0,
    };
  }

  /** Sends every bucket not sent yet (all of them without overlap; unused parameters' with it), then waits for all. */
  async finish(): Promise<BucketSpan[]> {
    for (let k = 0; k < this.plan.length; k++) if (!this.pending[k]) this.send(k);
    await Promise.all(this.pending);
    return this.spans;
  }

  private send(k: number): void {
    const b = this.plan[k];
    const start = performance.now();
    this.inFlight++;
    const span: BucketSpan = { start: wall(start), end: 0, floats: b.end - b.start };
    this.spans.push(span);
    const values = hostArena(this.model.arena()).gradRange(b.start, b.end);
    const sent = values instanceof Float32Array ? this.launch(values, b) : values.then((v) => this.launch(v, b));
    this.pending[k] = sent.finally(() => {
      this.inFlight--;
      span.end = wall(performance.now());
    });
    this.pending[k]!.catch(() => {}); // awaited in finish(); a failure must not go unhandled before
  }
}

function wall(t: number): number {
  return performance.timeOrigin + t;
}

/** Time in ms during which any of the spans ran and `[from, to]` also ran (their union, clipped). */
export function coveredMs(spans: readonly BucketSpan[], from: number, to: number): number {
  const parts = spans.map((s) => [Math.max(s.start, from), Math.min(s.end, to)] as const).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let reach = -Infinity;
  for (const [a, b] of parts) {
    if (b <= reach) continue;
    total += b - Math.max(a, reach);
    reach = b;
  }
  return total;
}
