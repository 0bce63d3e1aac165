/**
 * transformers' `logits_to_keep` as a scope: while `withLogitsToKeep(k, fn)` runs, a causal LM's head
 * (GPT-2, the Llama family: attention.ts headPositions) computes the logits of each row's last k
 * positions only. A trainer that scores a completion (rl/token_logps.ts, as TRL's GRPOTrainer)
 * reads none of the prompt's logits: over a GRPO step's prompt positions the head is about a
 * twentieth of its training FLOPs, forward and backward (the SmolLM2 shape, 128-token completions).
 * A scope, not a forward argument, so every model that reads it keeps its forward(ids, cache); a
 * model that does not (a pipeline, an encoder) returns every position, which the caller checks by
 * the logits' shape.
 */
let keep: number | null = null;

/** fn(), with causal LMs' heads keeping each row's last `k` positions (k ≥ 1, a whole number). */
export function withLogitsToKeep<T>(k: number, fn: () => T): T {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`withLogitsToKeep: k must be a whole number ≥ 1, got ${k}`);
  const before = keep;
  keep = k;
  try {
    return fn();
  } finally {
    keep = before;
  }
}

/** The positions a head keeps from the end of each row now (null: every position). */
export function logitsToKeep(): number | null {
  return keep;
}
