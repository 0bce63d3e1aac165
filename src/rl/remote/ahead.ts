/**
 * Asynchronous GRPO's schedule (`--max-staleness K` > 0): when step k begins, the rollouts of steps
 * k+1 … k+K are asked of the workers too, so they sample while step k trains (prime-rl's
 * one-step-off pipeline at K = 1). A request is sent before the weights of the steps after it, and a
 * worker serves its messages in order, so a step's rollouts are at most K versions behind the policy
 * that trains on them — the bound holds by construction, and each step's `staleness` metric reports
 * it. Prompts a dead worker left unserved are sampled by the trainer when the step takes them.
 */
import type { CausalLm } from '../../generate/generate.js';
import type { RolloutOptions } from '../rollouts.js';
import type { RolloutPool } from './pool.js';
import { type RemoteRequest, type RemoteSampled, requestRemote, takeRemote } from './sampler.js';

export class RolloutsAhead {
  private readonly requests = new Map<number, RemoteRequest>();
  private next: number;

  constructor(
    private readonly pool: RolloutPool,
    private readonly local: CausalLm,
    private readonly maxStaleness: number,
    private readonly steps: number,
    /** Step s's prompts (called once per step, in step order) and its sampling options. */
    private readonly promptsOf: (step: number) => readonly (readonly number[])[],
    private readonly optionsOf: (step: number) => RolloutOptions,
    /** The run's first step (a resumed run's checkpoint step). */
    first = 0,
  ) {
    this.next = first;
  }

  /** Asks for the rollouts of steps up to `step` + K not yet asked for, then hands over `step`'s (sampled at most K versions ago). */
  take(step: number): Promise<RemoteSampled> {
    for (; this.next <= Math.min(step + this.maxStaleness, this.steps - 1); this.next++) {
      this.requests.set(this.next, requestRemote(this.pool, this.promptsOf(this.next), this.optionsOf(this.next)));
    }
    const request = this.requests.get(step);
    if (!request) throw new RangeError(`rollouts of step ${step} were not asked for`);
    this.requests.delete(step);
    return takeRemote(request, this.local, step);
  }
}
