/**
 * The step plan: which (epoch, batch) each step of this process takes, where a resumed run stands,
 * and how a checkpoint of another number of workers maps onto this run's batches.
 */
import type { BatchLoader } from '../../data/loader.js';
import type { LoopPosition } from '../run/checkpoints.js';
import type { AnyBatch } from './objective.js';

/** What decides which step comes when: batches per epoch, epochs, steps, and whether this process computes. */
export interface StepPlan {
  numBatches: number;
  epochs: number;
  totalSteps: number;
  compute: boolean;
  /** Step number minus batch index: non-zero after resuming a checkpoint written at another number of workers. */
  offset: number;
}

/** Where the plan stands after `step` steps. A process that computes nothing spreads its steps over the epochs. */
export function positionAt(p: StepPlan, step: number): LoopPosition {
  if (!p.compute) return { step, epoch: Math.min(p.epochs - 1, Math.floor((step * p.epochs) / p.totalSteps)), batch: 0 };
  const index = step - p.offset;
  return { step, epoch: Math.floor(index / p.numBatches), batch: index % p.numBatches, batches: p.numBatches };
}

/**
 * A checkpoint of a run with another number of batches per epoch (another number of workers):
 * the run goes on at the same share of the same epoch, its steps numbered on from the saved step.
 * Shuffling is a function of (seed, epoch), so the rest of the epoch is drawn from the same order,
 * cut into this run's shards (load balancing's shares of the global batch too). Strategies that plan
 * their own steps keep their own schedules and are refused.
 */
export function resumeOffset(saved: LoopPosition, p: Pick<StepPlan, 'compute' | 'numBatches'>, ownSchedule: boolean, file: string): number {
  if (!p.compute || saved.batches === undefined || saved.batches === p.numBatches) return 0;
  if (ownSchedule) throw new Error(`${file}: written with ${saved.batches} batches per epoch, this run has ${p.numBatches} (another number of workers); strategies that plan their own steps resume only on the same number`);
  const index = saved.epoch * p.numBatches + Math.round((saved.batch * p.numBatches) / saved.batches);
  return saved.step - index;
}

export function checkPosition(saved: LoopPosition, expected: LoopPosition, file: string): void {
  if (saved.batches !== undefined && saved.batches !== expected.batches) return; // mapped by resumeOffset
  if (saved.epoch !== expected.epoch || saved.batch !== expected.batch) {
    throw new Error(`${file}: position epoch ${saved.epoch} batch ${saved.batch} does not fit this run (step ${saved.step} is epoch ${expected.epoch} batch ${expected.batch})`);
  }
}

/**
 * (epoch, batch) for every step this process takes from step `start` on: its shard's batches, or —
 * for a process that computes nothing (a parameter server) — empty steps spread over the epochs.
 */
export function* stepPlan(loader: BatchLoader, p: StepPlan, start: number): Generator<[number, AnyBatch | null]> {
  if (!p.compute) {
    for (let s = start; s < p.totalSteps; s++) yield [positionAt(p, s).epoch, null];
    return;
  }
  let step = start;
  const from = positionAt(p, start);
  for (let epoch = from.epoch; epoch < p.epochs; epoch++) {
    for (const batch of loader.batches(epoch, epoch === from.epoch ? from.batch : 0)) {
      if (step++ >= p.totalSteps) return;
      yield [epoch, batch];
    }
  }
}
