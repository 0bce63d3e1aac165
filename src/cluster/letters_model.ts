/**
 * The model and the local training of one task: the original's one-hidden-layer network (16 → h →
 * ReLU → 26, softmax cross-entropy), built from our `nn` layers and trained through our autograd.
 *
 * Training is full-batch gradient descent on the *summed* cross-entropy over the shard (the
 * original's meaning of eta: the gradient of the sum, not the mean), for up to `epochs` epochs,
 * stopping early once the summed loss changes by at most EARLY_STOP_DELTA between epochs. With the
 * same starting weights and shard the result is the same bits on any node: a task's outcome never
 * depends on where it ran.
 */
import { buildMlp } from '../nn/models/mlp.js';
import type { ParamArena } from '../nn/arena.js';
import type { Module } from '../nn/module.js';
import { SGD } from '../nn/optim/sgd.js';
import { backward, noGrad } from '../tensor/autograd.js';
import { crossEntropy } from '../tensor/ops/loss.js';
import { argmax } from '../tensor/ops/reduce.js';
import { BufferRecycler } from '../tensor/recycler.js';
import { Tensor } from '../tensor/tensor.js';
import { LETTER_CLASSES, LETTER_FEATURES, type LetterShard } from '../data/letters.js';

/** The original's rule: stop when the summed loss moved by this much or less. */
export const EARLY_STOP_DELTA = 0.2;

export function buildLettersModel(hidden: number, seed: number): Module {
  return buildMlp({ type: 'mlp', inputDim: LETTER_FEATURES, hidden, out: LETTER_CLASSES }, seed);
}

/** The number of parameters of the letters model with `hidden` units (the length of the weights on the wire). */
export function lettersParamCount(hidden: number): number {
  return LETTER_FEATURES * hidden + hidden + hidden * LETTER_CLASSES + LETTER_CLASSES;
}

export interface LocalFit {
  /** Final weights minus starting weights. */
  delta: Float32Array;
  /** Misclassified fraction of the shard at the last evaluated weights. */
  trainError: number;
  /** Summed cross-entropy at the last evaluated weights. */
  trainLoss: number;
  /** Epochs with a weight update (≤ epochs; fewer after an early stop). */
  epochs: number;
}

/** Trains the model from `start` on one shard and returns the weight delta (all in one go). */
export function fitShard(model: Module, start: Float32Array, shard: LetterShard, epochs: number, lr: number): LocalFit {
  const fit = new ShardFit(model, start, shard, lr);
  while (fit.updates < epochs && fit.epoch()) {
    // each pass of the loop is one epoch with an update
  }
  return fit.result();
}

/**
 * fitShard, handing the event loop a turn at least every `sliceMs` of training (between epochs),
 * so a node's heartbeats and incoming frames keep flowing while it trains a long task. The same
 * epochs in the same order: the same bits as fitShard.
 */
export async function fitShardInSlices(model: Module, start: Float32Array, shard: LetterShard, epochs: number, lr: number, sliceMs: number): Promise<LocalFit> {
  const fit = new ShardFit(model, start, shard, lr);
  let sliceStart = performance.now();
  while (fit.updates < epochs && fit.epoch()) {
    if (performance.now() - sliceStart < sliceMs) continue;
    await new Promise<void>((resolve) => setImmediate(resolve));
    sliceStart = performance.now();
  }
  return fit.result();
}

/** The engine's buffers of one model's epochs, reused from epoch to epoch and task to task. */
const recyclers = new WeakMap<Module, BufferRecycler>();

/**
 * One task's training state. Each epoch builds the graph through our layers and autograd as usual;
 * its buffers come from the model's recycler (the previous epoch's, zeroed), which spares the
 * allocations and garbage collection that cost ~20% of an epoch of this small model.
 */
class ShardFit {
  private readonly arena: ParamArena;
  private readonly x: Tensor;
  private readonly opt: SGD;
  /** Seeding backward with the row count turns the mean loss's gradient into the summed loss's. */
  private readonly seed: Float32Array;
  private readonly recycler: BufferRecycler;
  private previous = Infinity;
  /** Epochs with a weight update. */
  updates = 0;
  /** The last forward pass: its logits (valid until the next epoch) and summed loss. */
  private last: { logits: Tensor; loss: number } | null = null;

  constructor(
    private readonly model: Module,
    private readonly start: Float32Array,
    private readonly shard: LetterShard,
    lr: number,
  ) {
    this.arena = model.arena();
    if (start.length !== this.arena.size) throw new Error(`fitShard: ${start.length} weights for a model of ${this.arena.size}`);
    this.arena.params.write(start);
    this.x = Tensor.fromHost(shard.features, [shard.rows, LETTER_FEATURES]);
    this.opt = new SGD(this.arena, { lr });
    this.seed = Float32Array.of(shard.rows);
    let recycler = recyclers.get(model);
    if (!recycler) recyclers.set(model, (recycler = new BufferRecycler()));
    this.recycler = recycler;
  }

  /** Forward, and unless the loss has stopped moving, backward and one update. False: stopped early. */
  epoch(): boolean {
    return this.recycler.run(() => {
      this.model.zeroGrad();
      const logits = this.model.forward(this.x);
      const mean = crossEntropy(logits, this.shard.labels);
      const loss = mean.item() * this.shard.rows;
      this.last = { logits, loss };
      if (Math.abs(this.previous - loss) <= EARLY_STOP_DELTA) return false;
      this.previous = loss;
      backward(mean, this.seed);
      this.opt.step();
      this.updates++;
      return true;
    });
  }

  result(): LocalFit {
    const { arena, start, last } = this;
    const delta = new Float32Array(arena.size);
    const params = arena.params.readSync();
    for (let i = 0; i < delta.length; i++) delta[i] = params[i] - start[i];
    // The error of the last forward pass only (an argmax per epoch would cost ~10% of the task).
    return { delta, trainError: last ? errorRate(last.logits, this.shard.labels) : 1, trainLoss: last?.loss ?? 0, epochs: this.updates };
  }
}

/** Misclassified fraction of a shard under `weights`. */
export function evaluateShard(model: Module, weights: Float32Array, shard: LetterShard): number {
  model.arena().params.write(weights);
  return noGrad(() => errorRate(model.forward(Tensor.fromHost(shard.features, [shard.rows, LETTER_FEATURES])), shard.labels));
}

function errorRate(logits: Tensor, labels: Int32Array): number {
  const predicted = argmax(logits);
  let wrong = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] !== labels[i]) wrong++;
  return wrong / labels.length;
}
