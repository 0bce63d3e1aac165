/**
 * A scheduling policy picks the node for the next task among the live nodes with a free slot, and
 * says why (the reason goes to events.jsonl with the decision). Policies only choose: retries,
 * deaths and the round's arithmetic are the scheduler's, so a policy never changes a result.
 */

/** What a policy may look at for one candidate node. */
export interface NodeView {
  /** "host:port", stable across restarts of the node. */
  id: string;
  inFlight: number;
  /** Mean duration of the node's recent tasks (ms), null before its first. */
  recentMs: number | null;
}

export interface Choice {
  node: NodeView;
  why: string;
}

export interface SchedulingPolicy {
  readonly name: PolicyName;
  /** Busy nodes may reject tasks under this policy (the original's load-balancing mode) rather than delay them. */
  readonly allowReject: boolean;
  /** `candidates` is never empty and is sorted by id. */
  pick(candidates: readonly NodeView[]): Choice;
}

export const POLICY_NAMES = ['random', 'round-robin', 'least-loaded'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];
