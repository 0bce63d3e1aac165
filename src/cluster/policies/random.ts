import { Rng } from '../../util/rng.js';
import type { Choice, NodeView, SchedulingPolicy } from './policy.js';

/** Uniform over the live nodes with a free slot, from a seeded generator (the same seed, the same picks). */
export class RandomPolicy implements SchedulingPolicy {
  readonly name = 'random';
  readonly allowReject = false;
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  pick(candidates: readonly NodeView[]): Choice {
    const i = this.rng.int(candidates.length);
    return { node: candidates[i], why: `uniform draw ${i + 1} of ${candidates.length} live nodes` };
  }
}
