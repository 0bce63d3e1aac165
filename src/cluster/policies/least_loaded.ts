import type { Choice, NodeView, SchedulingPolicy } from './policy.js';

/**
 * The node with the fewest tasks in flight; ties go to the faster recent task time (a node not yet
 * measured counts as fastest, so new nodes get tried), then to the id. Busy nodes may reject.
 */
export class LeastLoadedPolicy implements SchedulingPolicy {
  readonly name = 'least-loaded';
  readonly allowReject = true;

  pick(candidates: readonly NodeView[]): Choice {
    let best = candidates[0];
    for (const c of candidates.slice(1)) if (better(c, best)) best = c;
    const ms = best.recentMs === null ? 'not yet measured' : `${best.recentMs.toFixed(1)} ms recent task time`;
    return { node: best, why: `fewest in flight (${best.inFlight}), ${ms}` };
  }
}

function better(a: NodeView, b: NodeView): boolean {
  if (a.inFlight !== b.inFlight) return a.inFlight < b.inFlight;
  const am = a.recentMs ?? -1;
  const bm = b.recentMs ?? -1;
  if (am !== bm) return am < bm;
  return a.id < b.id;
}
