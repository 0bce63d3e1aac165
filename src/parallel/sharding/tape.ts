/**
 * Megatron's two conjugate operators over an autograd whose backward is synchronous.
 *
 *   f: identity forward, all-reduce of the gradient backward (before a column-parallel layer);
 *   g: all-reduce forward, identity backward (after a row-parallel layer).
 *
 * Collectives are async and autograd's GradFns are not, so an all-reduce cannot run inside a
 * GradFn. g is easy: the forward is ours (awaited between ops), and its backward is an identity op.
 * f needs the summed gradient of its input before anything below it is differentiated, so the graph
 * is cut there: f's output is a fresh leaf, and backward runs in segments. `TensorParallelTape`
 * records each cut as the forward makes it; `backward` back-propagates the loss, then the cuts in
 * reverse order of creation: all-reduce the leaf's gradient (f cuts only), then back-propagate it
 * into the graph the leaf was cut from. Reverse creation order is a valid order: a cut's leaf is only
 * read by ops made after it, whose graphs end at later cuts or at the loss, so every contribution
 * to its gradient is in by the time it is reached. A tensor read by two later segments (a residual
 * stream) must be cut with `cut` so that no graph is walked twice.
 */
import { backward } from '../../tensor/autograd.js';
import { record } from '../../tensor/autograd.js';
import { kernelsFor } from '../../tensor/dispatch.js';
import { CPU, type Storage } from '../../tensor/storage.js';
import { Tensor } from '../../tensor/tensor.js';

/** The collective a tensor-parallel model is given: an in-place sum over its tensor-parallel group. */
export interface TensorParallelComm {
  readonly rank: number;
  readonly size: number;
  allReduce(data: Float32Array): Promise<unknown>;
}

interface Cut {
  /** The tensor the cut was made at (its graph continues below). */
  source: Tensor;
  /** The leaf that stands for it above the cut. */
  leaf: Tensor;
  /** f's cut: the leaf's gradient is summed over the group before it goes below. */
  reduce: boolean;
}

export class TensorParallelTape {
  private cuts: Cut[] = [];

  constructor(readonly comm: TensorParallelComm) {}

  /** A plain cut (no communication): a leaf sharing `x`'s values, for a tensor later segments share. */
  cut(x: Tensor): Tensor {
    return this.leafFor(x, false);
  }

  /** Megatron's f: identity forward; backward sums the leaf's gradient over the group. */
  f(x: Tensor): Tensor {
    return this.leafFor(x, true);
  }

  /**
   * Megatron's g: the sum over the group of every rank's partial result (in place: nothing reads a
   * linear layer's output in its backward); backward hands the gradient through unchanged.
   */
  async g(partial: Tensor): Promise<Tensor> {
    await this.sumOverGroup(partial.storage);
    const out = new Tensor(partial.storage, partial.shape);
    return record(out, 'tp_all_reduce', [partial], (gy) => kernelsFor(partial).axpy(1, gy, partial.ensureGrad()));
  }

  /**
   * Back-propagates `loss` (seeded with `seed`, default 1), then every cut in reverse, with the f
   * cuts' all-reduces between. Parameter gradients accumulate as in autograd's backward.
   */
  async backward(loss: Tensor, seed?: Float32Array): Promise<void> {
    const cuts = this.cuts;
    this.cuts = [];
    backward(loss, seed);
    for (let i = cuts.length - 1; i >= 0; i--) {
      const { source, leaf, reduce } = cuts[i];
      if (!leaf.grad) continue; // nothing above read it (e.g. a branch that was not taken)
      if (reduce) await this.sumOverGroup(leaf.grad);
      if (source.requiresGrad) backward(source, leaf.grad);
      leaf.grad = null;
    }
  }

  /** Forgets a forward's cuts without a backward (evaluation). */
  clear(): void {
    this.cuts = [];
  }

  /**
   * Sums a storage over the group in place: on the cpu its own memory is all-reduced; a GPU's
   * values are read (awaited), summed on the host and written back.
   */
  private async sumOverGroup(s: Storage): Promise<void> {
    if (s.device === CPU) {
      await this.comm.allReduce(s.readSync() as Float32Array);
      return;
    }
    const values = (await s.read()) as Float32Array;
    await this.comm.allReduce(values);
    s.write(values);
  }

  private leafFor(x: Tensor, reduce: boolean): Tensor {
    const leaf = new Tensor(x.storage, x.shape, x.requiresGrad);
    if (x.requiresGrad) this.cuts.push({ source: x, leaf, reduce });
    return leaf;
  }
}
