import type { Choice, NodeView, SchedulingPolicy } from './policy.js';

/** Cycles through the nodes in id order: the next node after the last one picked that has a free slot. */
export class RoundRobinPolicy implements SchedulingPolicy {
  readonly name = 'round-robin';
  readonly allowReject = false;
  private last: string | null = null;

  pick(candidates: readonly NodeView[]): Choice {
    const last = this.last;
    const next = (last === null ? undefined : candidates.find((c) => c.id > last)) ?? candidates[0];
    this.last = next.id;
    return { node: next, why: last === null ? 'first in the cycle' : `next after ${last}` };
  }
}
