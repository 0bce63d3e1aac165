/**
 * ZeRO-3's forward and backward of one micro-batch, stage by stage (the model's layer list, nn/layer_list.ts), with each layer
 * group's parameters gathered just before the first stage that needs them and dropped after:
 *
 *  - forward: before stage s runs, its groups are awaited and stage s+1's are already being
 *    gathered (prefetch). A group read by one stage only, not the last, is dropped right after it;
 *    a group read by several stages (GPT-2's tied token embedding) or by the last stage stays
 *    gathered until backward is done with it, so it is gathered once per step.
 *  - the graph is cut between stages (each stage's input is a fresh leaf sharing the previous
 *    output's values), so backward runs stage by stage in reverse, and a dropped group is gathered
 *    again (prefetched one stage ahead) before its stage's backward.
 *  - after the backward of the first stage that reads a group, the group's gradient is final: it is
 *    reduce-scattered into the shard's gradient and dropped, and so are its parameters.
 *
 * Evaluation (`forwardPass`) gathers each group once per pass over many chunks and keeps no graph.
 *
 * Bytes per rank per step: every group gathered at most twice (Ψ(N−1)/N each) and reduce-scattered
 * once: at most 3Ψ(N−1)/N, 1.5× one ring all-reduce of the gradient.
 */
import { backward, noGrad } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ModelLayer } from '../../nn/layer_list.js';
import { settled } from '../../nn/layers/maybe_async.js';
import type { FrozenShards } from './frozen_shards.js';
import type { LayerGroup } from './layer_groups.js';
import type { ShardedModel } from './sharded_model.js';

/** The evaluation loop's hooks for a layer-major pass (train/loop/layered_evaluation.ts LayeredRun). */
export interface LayeredPieces {
  piece<T>(fn: () => T): T;
  keep(k: number, output: Tensor): Tensor;
  score(k: number, output: Tensor): Promise<void>;
}

/** What a gather is for: the training forward, the backward, or an evaluation. */
type Phase = 'forward' | 'backward' | 'eval';

/** Frozen parameters sharded too (frozen_shards.ts), with their layer groups: gathered beside the trained ones, never reduced. */
export interface FrozenGroups {
  shards: FrozenShards;
  groups: readonly LayerGroup[];
  byStage: readonly number[][];
}

export class StagedStep {
  /** Gathers in flight or done, by group. */
  private gathered = new Map<number, Promise<unknown>>();
  /** Every group, the trained ones first; a frozen group names its shards. */
  private readonly groups: readonly (LayerGroup & { frozen?: FrozenShards })[];
  private readonly byStage: readonly number[][];

  constructor(
    private readonly sharded: ShardedModel,
    private readonly stages: readonly ModelLayer[],
    groups: readonly LayerGroup[],
    byStage: readonly number[][],
    /** Sees each group's gradient before it leaves (the strategy counts non-finite values). */
    private readonly inspect: (values: Float32Array) => void = () => {},
    frozen: readonly FrozenGroups[] = [],
  ) {
    const all: (LayerGroup & { frozen?: FrozenShards })[] = [...groups];
    const stageGroups = byStage.map((gs) => [...gs]);
    for (const f of frozen) {
      const base = all.length;
      all.push(...f.groups.map((g) => ({ ...g, frozen: f.shards })));
      f.byStage.forEach((gs, s) => stageGroups[s].push(...gs.map((g) => base + g)));
    }
    this.groups = all;
    this.byStage = stageGroups;
  }

  /** Whether a group stays gathered from its first forward use to its last backward use. */
  private pinned(g: number): boolean {
    const uses = this.groups[g].stages;
    return uses.length > 1 || uses[uses.length - 1] === this.stages.length - 1;
  }

  /**
   * Starts gathering stage s's groups not gathered yet (no wait). A group gets its gradient window
   * when backward will write it: gathered for backward, or kept from forward to backward (pinned).
   * A window for a forward-only gather would be memory held until the group is gathered again.
   */
  private prefetch(s: number, phase: Phase): void {
    if (s < 0 || s >= this.stages.length) return;
    for (const g of this.byStage[s]) {
      if (this.gathered.has(g)) continue;
      const { first, last, frozen } = this.groups[g];
      const p = frozen ? frozen.gather(first, last) : this.sharded.gather(first, last, phase === 'backward' || (phase === 'forward' && this.pinned(g)));
      p.catch(() => {}); // awaited when its stage runs
      this.gathered.set(g, p);
    }
  }

  private async ready(s: number, phase: Phase): Promise<void> {
    this.prefetch(s, phase);
    for (const g of this.byStage[s]) await this.gathered.get(g);
  }

  /**
   * Drops group g's gathered parameters. In evaluation (`reuse`: no graph reads them) a trained
   * group's window goes back to the pool for the next gather. In training it is left to the
   * collector: ops keep their operands' buffers for backward, so a window dropped after the forward
   * is still read there, and a pool filled by a whole step's windows held about 3× the model idle
   * between steps (GPT-2 124M at 4 ranks: 1172 MB a rank against 892–953). Frozen groups (LoRA's
   * base) are released by their own shards.
   */
  private drop(g: number, reuse: boolean): void {
    const { first, last, frozen } = this.groups[g];
    this.gathered.delete(g);
    if (frozen) {
      frozen.release(first, last);
      return;
    }
    const window = this.sharded.release(first, last);
    if (reuse && window) this.sharded.recycle(window);
  }

  /**
   * Forward only (evaluation), layer-major over a pass's chunks: each stage's groups gathered once
   * (the next stage's prefetched), the stage run on every chunk, the groups dropped after the last
   * stage that reads them; no graph is kept. Each chunk's stage runs as one `run.piece` (the
   * evaluation's recycled run) and its output is kept for the next stage (`run.keep`); the last
   * stage's output is scored at once (`run.score`), before the next chunk's piece. A rank with no
   * chunks (its share of the pass is empty) takes part in every gather. The gathers never run in a
   * piece, as they outlive it.
   */
  async forwardPass(inputs: readonly Tensor[], run: LayeredPieces): Promise<void> {
    const last = this.stages.length - 1;
    let xs = inputs;
    for (let s = 0; s <= last; s++) {
      await this.ready(s, 'eval');
      this.prefetch(s + 1, 'eval');
      const stage = this.stages[s];
      const outs: Tensor[] = [];
      for (const [k, x] of xs.entries()) {
        const out = run.piece(() => noGrad(() => runLayer(stage, x)));
        if (s < last) outs.push(run.keep(k, out));
        else await run.score(k, out);
      }
      xs = outs;
      for (const g of this.byStage[s]) if (this.groups[g].stages[this.groups[g].stages.length - 1] === s) this.drop(g, true);
    }
  }

  /**
   * Forward of `input` through every stage, the loss from the output (`lossOf`), then backward
   * seeded with `seed`; gradients end reduce-scattered (added) into the shard's gradient. Returns
   * the loss tensor.
   */
  async run(input: Tensor, lossOf: (output: Tensor) => Tensor, seed: Float32Array): Promise<Tensor> {
    const last = this.stages.length - 1;
    const leaves: Tensor[] = [];
    const outputs: Tensor[] = [];
    let x = input;
    for (let s = 0; s <= last; s++) {
      await this.ready(s, 'forward');
      this.prefetch(s + 1, 'forward');
      if (s > 0) {
        x = new Tensor(outputs[s - 1].storage, outputs[s - 1].shape, true);
        leaves[s] = x;
      }
      outputs[s] = runLayer(this.stages[s], x);
      for (const g of this.byStage[s]) if (!this.pinned(g)) this.drop(g, false);
    }
    const loss = lossOf(outputs[last]);
    const reductions: Promise<void>[] = [];
    for (let s = last; s >= 0; s--) {
      await this.ready(s, 'backward');
      this.prefetch(s - 1, 'backward');
      if (s === last) backward(loss, seed);
      else if (leaves[s + 1].grad && outputs[s].requiresGrad) backward(outputs[s], leaves[s + 1].grad!);
      if (leaves[s + 1]) leaves[s + 1].grad = null;
      for (const g of this.byStage[s]) {
        if (this.groups[g].stages[0] !== s) continue; // a stage before this one still adds to its gradient
        if (this.groups[g].frozen) {
          this.drop(g, false); // no gradient: only backward's dX read it
          continue;
        }
        const { first, last: end } = this.groups[g];
        const grads = this.sharded.takeGradients(first, end);
        // On a device the gradients are still being read: they are inspected once on the host.
        const values = grads.values instanceof Float32Array ? grads.values : grads.values.then((v) => (this.inspect(v), v));
        if (grads.values instanceof Float32Array) this.inspect(grads.values);
        this.drop(g, false);
        const p = this.sharded.reduceScatter(grads.start, grads.end, values, true, true);
        p.catch(() => {});
        reductions.push(p);
      }
    }
    await Promise.all(reductions);
    return loss;
  }
}

/** A layer's forward with its own tied weight, at once (ZeRO's layers hold no tensor-parallel group sums). */
function runLayer(layer: ModelLayer, x: Tensor): Tensor {
  return settled(layer.forward(x, layer.tied?.tensor), layer.name);
}
